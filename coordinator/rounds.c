/* rounds.c - lockstep rounds: barrier per timeline, fusion, persistence, replay.
 *
 * Round r of a timeline completes when every chunk of it has sent its OverlapUp for r.
 * The partial states are fused with rf_fusion_fuse (sums in chunk order: deterministic),
 * the fused partials of all chunks are stored as one blob ("RFROUND1", u32 count, then
 * per chunk u64 length + a packed chunk state) under (job, timeline, r), the round is
 * committed, and only then does each chunk's current attempt get its OverlapDown.
 * A chunk restored from a checkpoint replays: its OverlapUp for a round already fused
 * is answered at once from the stored blob, so it reproduces bit-identically what was
 * lost and the other chunks wait for nothing but the current round. Checkpoints are
 * full states; fused rounds older than every chunk's checkpoint are pruned.
 */
#include "coord.h"

#include "chunk_wire.h"
#include "crash.h"
#include "fusion.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUND_MAGIC "RFROUND1"

static void s_down(rf_coord *c, c_chunk *ch, int round, const rf_chunk_state *fused)
{
    c_task *t = ch->task;
    c_worker *w = t->row.worker[0] ? c_worker_find(c, t->row.worker) : NULL;
    if (t->row.state != REELFARM__UNIT_STATE__UNIT_RUNNING || !w)
        return; /* it will replay this round from the store when it runs again */
    rf_chunk_wire *cw = malloc(sizeof(*cw));
    rf_error err;
    if (!cw || rf_chunk_wire_from_state(cw, fused, "", (uint32_t)(round * t->job->sync_every),
                                        (uint32_t)round, &err)) {
        free(cw);
        rf_log_kv(RF_LOG_ERROR, "rounds", "cannot build an OverlapDown", "task=%s", t->row.id);
        return;
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__OverlapDown d = REELFARM__OVERLAP_DOWN__INIT;
    d.task_id = t->row.id;
    d.attempt = t->row.attempt;
    d.timeline = (uint32_t)ch->plan.timeline;
    d.chunk = (uint32_t)ch->plan.index;
    d.round = (uint32_t)round;
    d.job_id = t->job->row.id;
    d.state = &cw->msg;
    env.kind_case = REELFARM__ENVELOPE__KIND_OVERLAP_DOWN;
    env.overlap_down = &d;
    rf_wire_msg m = {0};
    memcpy(m.peer, w->peer, w->peer_len);
    m.peer_len = w->peer_len;
    m.env = &env;
    m.blobs = cw->blobs;
    m.n_blobs = cw->n_blobs;
    c_send(c, c->wsock, &m);
    c_ops_state_bytes(c, "overlap_down", cw->blobs, cw->n_blobs);
    free(cw);
}

typedef struct s_found {
    int round;
    char hex[RF_HASH_HEX];
} s_found;

static int s_first_round(void *ctx, int timeline, int round, const char *hex)
{
    (void)timeline;
    s_found *f = ctx;
    f->round = round;
    snprintf(f->hex, sizeof(f->hex), "%s", hex);
    return 1;
}

/* Loads chunk k's fused partial state of a stored round. */
static rf_chunk_state *s_round_load(rf_coord *c, c_job *job, int timeline, int round, int k,
                                    rf_error *err)
{
    s_found f = {-1, ""};
    int rc = rf_store_round_each(c->store, job->row.id, timeline, round, s_first_round, &f, err);
    if (rc)
        return NULL;
    if (f.round != round) {
        rf_error_set(err, RF_ENOTFOUND, "fused round %d of timeline %d is not stored", round,
                     timeline);
        return NULL;
    }
    void *buf = NULL;
    size_t len = 0;
    if (rf_store_blob_get(c->store, f.hex, &buf, &len, err))
        return NULL;
    rf_chunk_state *s = NULL;
    uint32_t n = 0;
    size_t off = 12;
    if (len < 12 || memcmp(buf, ROUND_MAGIC, 8) != 0 ||
        (memcpy(&n, (char *)buf + 8, 4), (int)n <= k)) {
        rf_error_set(err, RF_EINVAL, "stored round %s is damaged", f.hex);
    } else {
        for (int i = 0; i <= k; i++) {
            uint64_t l = 0;
            if (len - off < 8 || (memcpy(&l, (char *)buf + off, 8), len - off - 8 < l)) {
                rf_error_set(err, RF_EINVAL, "stored round %s is truncated", f.hex);
                break;
            }
            off += 8;
            if (i == k)
                s = rf_chunk_state_unpack((char *)buf + off, (size_t)l, NULL, NULL, err);
            off += (size_t)l;
        }
    }
    free(buf);
    return s;
}

static int s_store_round(rf_coord *c, c_job *job, c_timeline *tl, int round,
                         rf_chunk_state *const *states, rf_error *err)
{
    size_t cap = 12, len = 12;
    void **parts = calloc((size_t)tl->nchunks, sizeof(void *));
    size_t *lens = calloc((size_t)tl->nchunks, sizeof(size_t));
    int rc = parts && lens ? 0 : rf_error_set(err, RF_ENOMEM, "out of memory");
    for (int k = 0; !rc && k < tl->nchunks; k++) {
        rc = rf_chunk_state_pack(states[k], (uint32_t)(round * job->sync_every), (uint32_t)round,
                                 &parts[k], &lens[k], err);
        cap += 8 + lens[k];
    }
    unsigned char *buf = rc ? NULL : malloc(cap);
    if (!rc && !buf)
        rc = rf_error_set(err, RF_ENOMEM, "out of memory");
    if (!rc) {
        memcpy(buf, ROUND_MAGIC, 8);
        uint32_t n = (uint32_t)tl->nchunks;
        memcpy(buf + 8, &n, 4);
        for (int k = 0; k < tl->nchunks; k++) {
            uint64_t l = lens[k];
            memcpy(buf + len, &l, 8);
            memcpy(buf + len + 8, parts[k], lens[k]);
            len += 8 + lens[k];
        }
        char hex[RF_HASH_HEX];
        rc = rf_store_begin(c->store, err);
        if (!rc)
            rc = rf_store_blob_put_packed(c->store, buf, len, job->row.id, hex, err);
        if (!rc)
            rc = rf_store_round_put(c->store, job->row.id, tl->index, round, hex, err);
        for (int k = 0; !rc && k < tl->nchunks; k++) {
            tl->chunks[k]->row.round = round;
            rc = rf_store_chunk_put(c->store, &tl->chunks[k]->row, err);
        }
    }
    for (int k = 0; parts && k < tl->nchunks; k++)
        free(parts[k]);
    free(parts);
    free(lens);
    free(buf);
    return rc;
}

static void s_try_fuse(rf_coord *c, c_job *job, c_timeline *tl)
{
    int round = tl->fused_round + 1;
    if (tl->nchunks < 1)
        return;
    for (int k = 0; k < tl->nchunks; k++)
        if (!tl->chunks[k]->up || tl->chunks[k]->up_round != round)
            return;
    /* fuse copies: the gathered ups stay untouched until the round is committed, so a
     * refused commit (full disk) can fuse the same inputs again, bit-identically */
    rf_chunk_state **states = calloc((size_t)tl->nchunks, sizeof(*states));
    if (!states)
        return;
    rf_error err;
    int rc = 0;
    for (int k = 0; k < tl->nchunks && !rc; k++)
        if (!(states[k] = rf_chunk_state_clone(tl->chunks[k]->up, &err)))
            rc = err.code ? (int)err.code : RF_ENOMEM;
    if (!rc && tl->nchunks > 1)
        rc = rf_fusion_fuse(states, (size_t)tl->nchunks, (rf_fusion_ramp)job->spec->chunk.weights,
                            &err);
    if (rc) {
        for (int k = 0; k < tl->nchunks; k++)
            rf_chunk_state_destroy(&states[k]);
        free(states);
        char why[1200];
        snprintf(why, sizeof(why), "fusion of round %d of timeline %d refused: %s", round,
                 tl->index, err.msg);
        c_job_fail(c, job, why);
        return;
    }
    rf_crash_point("mid-fusion"); /* fused in memory, nothing of it stored */
    rc = s_store_round(c, job, tl, round, states, &err);
    if (rc) {
        for (int k = 0; k < tl->nchunks; k++)
            rf_chunk_state_destroy(&states[k]);
        free(states);
        rf_log_kv(RF_LOG_ERROR, "rounds", "cannot store a fused round",
                  "job=%s timeline=%d round=%d error=\"%s\"", job->row.id, tl->index, round,
                  err.msg);
        /* the ups stay (a reload keeps them); c_rounds_retry fuses again when the store
         * works. Fusion is deterministic, so fusing the same ups again gives the same round. */
        c_store_failed(c, &err);
        return;
    }
    if (c_commit(c) == 0) {
        tl->fused_round = round;
        c_ops_round_fused(c, tl);
        rf_log_kv(RF_LOG_DEBUG, "rounds", "round fused", "job=%s timeline=%d round=%d", job->row.id,
                  tl->index, round);
        for (int k = 0; k < tl->nchunks; k++)
            s_down(c, tl->chunks[k], round, states[k]);
        for (int k = 0; k < tl->nchunks; k++)
            rf_chunk_state_destroy(&tl->chunks[k]->up);
    } /* else: not durable; the reload keeps the ups and the retry fuses them again */
    for (int k = 0; k < tl->nchunks; k++)
        rf_chunk_state_destroy(&states[k]);
    free(states);
    c_job_rate_sample(job, c_now_ms());
    c_job_notify(c, job, REELFARM__EVENT_KIND__EVENT_PROGRESS);
}

void c_rounds_retry(rf_coord *c, c_job *job)
{
    for (int t = 0; job->timelines && t < job->plan->timeline_count && !c_job_terminal(job); t++)
        s_try_fuse(c, job, &job->timelines[t]);
}

void c_on_overlap_up(rf_coord *c, c_worker *w, rf_wire_msg *msg)
{
    const Reelfarm__OverlapUp *up = msg->env->overlap_up;
    c_task *t = c_fence(c, w, up->task_id, up->attempt, "overlap");
    if (!t)
        return;
    c_job *job = t->job;
    rf_error err;
    if (t->row.kind != REELFARM__TASK_KIND__TASK_DENOISE || !up->state || job->sync_every == 0) {
        c_reply_error(c, c->wsock, msg, RF_EPROTO, "OverlapUp for a task that has no rounds");
        return;
    }
    c_chunk *ch = &job->chunks[t->row.unit];
    c_timeline *tl = &job->timelines[ch->plan.timeline];
    int round = (int)up->state->round;
    t->row.lease_deadline_ms = c_now_ms() + c->cfg.lease_ms;
    t->steps_done = (int)up->state->step;
    if (round < 1 || round > job->rounds_total || round > tl->fused_round + 1 ||
        (int)up->timeline != ch->plan.timeline || (int)up->chunk != ch->plan.index) {
        char text[256];
        snprintf(text, sizeof(text),
                 "OverlapUp for round %d of timeline %u chunk %u: expected round <= %d of "
                 "timeline %d chunk %d",
                 round, up->timeline, up->chunk, tl->fused_round + 1, ch->plan.timeline,
                 ch->plan.index);
        c_reply_error(c, c->wsock, msg, RF_EPROTO, text);
        return;
    }
    if (round <= tl->fused_round) {
        rf_chunk_state *fused = s_round_load(c, job, tl->index, round, ch->plan.index, &err);
        if (!fused) {
            c_task_requeue(c, t, w->name, err.msg, 0);
            return;
        }
        rf_log_kv(RF_LOG_INFO, "rounds", "round replayed from the store",
                  "job=%s timeline=%d chunk=%d round=%d", job->row.id, tl->index, ch->plan.index,
                  round);
        s_down(c, ch, round, fused);
        rf_chunk_state_destroy(&fused);
        return;
    }
    rf_chunk_state *s = rf_chunk_wire_to_state(up->state, msg->blobs, msg->n_blobs, "", &err);
    if (!s) {
        c_reply_error(c, c->wsock, msg, RF_EPROTO, err.msg);
        return;
    }
    if (s->window_start != ch->plan.start || s->window_len != ch->plan.end - ch->plan.start) {
        rf_chunk_state_destroy(&s);
        c_reply_error(c, c->wsock, msg, RF_EPROTO, "OverlapUp window is not the chunk's window");
        return;
    }
    c_ops_state_bytes(c, "overlap_up", msg->blobs, msg->n_blobs);
    rf_chunk_state_destroy(&ch->up);
    ch->up = s;
    ch->up_round = round;
    c_ops_round_up(c, tl);
    s_try_fuse(c, job, tl);
}

void c_on_checkpoint(rf_coord *c, c_worker *w, rf_wire_msg *msg)
{
    const Reelfarm__Checkpoint *cp = msg->env->checkpoint;
    c_task *t = c_fence(c, w, cp->task_id, cp->attempt, "checkpoint");
    if (!t)
        return;
    c_job *job = t->job;
    rf_error err;
    if (t->row.kind != REELFARM__TASK_KIND__TASK_DENOISE || !cp->state) {
        c_reply_error(c, c->wsock, msg, RF_EPROTO, "Checkpoint for a task that is not DENOISE");
        return;
    }
    c_chunk *ch = &job->chunks[t->row.unit];
    rf_chunk_state *s = rf_chunk_wire_to_state(cp->state, msg->blobs, msg->n_blobs, "state/", &err);
    int rc = s ? 0 : RF_EPROTO;
    if (!rc &&
        (s->window_start != ch->plan.start || s->window_len != ch->plan.end - ch->plan.start ||
         s->nspans != 1 || s->spans[0].len != s->window_len || s->ntensors == 0))
        rc = rf_error_set(&err, RF_EPROTO, "a Checkpoint must be the chunk's full state");
    void *buf = NULL;
    size_t len = 0;
    char hex[RF_HASH_HEX];
    if (!rc)
        rc = rf_chunk_state_pack(s, cp->state->step, cp->state->round, &buf, &len, &err);
    if (!rc)
        rc = rf_store_begin(c->store, &err);
    if (!rc)
        rc = rf_store_blob_put_packed(c->store, buf, len, job->row.id, hex, &err);
    free(buf);
    rf_chunk_state_destroy(&s);
    if (rc) {
        rf_log_kv(RF_LOG_WARN, "rounds", "checkpoint refused", "task=%s error=\"%s\"", t->row.id,
                  err.msg);
        if (rc == RF_ENOSPC || rc == RF_EIO)
            c_store_failed(c, &err);
        else
            c_reply_error(c, c->wsock, msg, rc, err.msg);
        return;
    }
    c_ops_state_bytes(c, "checkpoint", msg->blobs, msg->n_blobs);
    t->row.lease_deadline_ms = c_now_ms() + c->cfg.lease_ms;
    snprintf(ch->row.checkpoint, sizeof(ch->row.checkpoint), "%s", hex);
    ch->row.checkpoint_round = (int)cp->state->round;
    ch->row.step = (int)cp->state->step;
    rf_store_chunk_put(c->store, &ch->row, &err);
    c_timeline *tl = &job->timelines[ch->plan.timeline];
    int oldest = ch->row.checkpoint_round;
    for (int k = 0; k < tl->nchunks; k++)
        if (tl->chunks[k]->row.checkpoint_round < oldest)
            oldest = tl->chunks[k]->row.checkpoint_round;
    rf_store_round_prune(c->store, job->row.id, tl->index, oldest + 1, &err);
    rf_log_kv(RF_LOG_DEBUG, "rounds", "checkpoint stored", "task=%s round=%u step=%u", t->row.id,
              cp->state->round, cp->state->step);
}

int c_rounds_restore(rf_coord *c, c_job *job, rf_error *err)
{
    (void)c;
    (void)err;
    for (int t = 0; t < job->plan->timeline_count; t++) {
        c_timeline *tl = &job->timelines[t];
        tl->fused_round = 0;
        tl->ndone = 0;
        for (int k = 0; k < tl->nchunks; k++) {
            if (tl->chunks[k]->row.round > tl->fused_round)
                tl->fused_round = tl->chunks[k]->row.round;
            tl->ndone += tl->chunks[k]->task->row.state == REELFARM__UNIT_STATE__UNIT_DONE;
        }
    }
    return 0;
}

int c_timeline_reads(const c_job *job, int timeline, int64_t f0, int64_t f1)
{
    const c_timeline *tl = &job->timelines[timeline];
    size_t lo, hi;
    rf_fusion_needed(tl->windows, (size_t)tl->nchunks, tl->maxlen, f0, f1, &lo, &hi);
    return (int)(hi - lo);
}

rf_chunk_state *c_timeline_latent(rf_coord *c, c_job *job, int timeline, int64_t f0, int64_t f1,
                                  rf_error *err)
{
    c_timeline *tl = &job->timelines[timeline];
    size_t lo, hi;
    rf_fusion_needed(tl->windows, (size_t)tl->nchunks, tl->maxlen, f0, f1, &lo, &hi);
    const size_t n = hi - lo;
    if (n == 0 || f1 <= f0) {
        rf_error_set(err, RF_EINVAL, "no chunk of timeline %d covers latent frames [%lld, %lld)",
                     timeline, (long long)f0, (long long)f1);
        return NULL;
    }
    rf_chunk_state **states = calloc(n, sizeof(*states));
    if (!states) {
        rf_error_set(err, RF_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = 0;
    for (size_t k = 0; !rc && k < n; k++) {
        void *buf = NULL;
        size_t len = 0;
        rc = rf_store_blob_get(c->store, tl->chunks[lo + k]->task->row.result, &buf, &len, err);
        if (!rc && !(states[k] = rf_chunk_state_unpack(buf, len, NULL, NULL, err)))
            rc = err->code;
        free(buf);
    }
    c_ops_decode_reads(c, (int)n);
    /* lockstep: a no-op on frames already fused; independent: the latent crossfade. Only
     * the chunks that decide [f0, f1) (rf_fusion_needed): the same bits there as fusing
     * the whole timeline, at the cost of this segment */
    if (!rc && n > 1)
        rc = rf_fusion_fuse(states, n, (rf_fusion_ramp)job->spec->chunk.weights, err);
    const int64_t nf = f1 - f0;
    rf_chunk_state *out = NULL;
    if (!rc) {
        const rf_cs_tensor *l0 = rf_chunk_state_tensor(states[0], "latent");
        int64_t shape[RF_CS_MAX_DIMS];
        if (!l0 || l0->ndim < 2 || l0->frame_axis != 1) {
            rc = rf_error_set(err, RF_ESHAPE,
                              "the result of chunk %zu of timeline %d has no latent [C, T, ...]",
                              lo, timeline);
        } else {
            memcpy(shape, l0->shape, sizeof(shape));
            shape[1] = nf;
            out = rf_chunk_state_new(f0, nf, err);
        }
        rf_cs_tensor *ot =
            out ? rf_chunk_state_add(out, "latent", l0->ndim, shape, 1, NULL, err) : NULL;
        if (!rc && !ot) {
            rc = err->code ? err->code : RF_ENOMEM;
        } else if (!rc) {
            int64_t inner = 1;
            for (int d = 2; d < l0->ndim; d++)
                inner *= l0->shape[d];
            for (size_t k = 0; !rc && k < n; k++) {
                const rf_cs_tensor *lt = rf_chunk_state_tensor(states[k], "latent");
                if (!lt || lt->ndim != l0->ndim || lt->shape[0] != l0->shape[0] ||
                    memcmp(lt->shape + 2, l0->shape + 2,
                           sizeof(int64_t) * (size_t)(l0->ndim - 2))) {
                    rc = rf_error_set(err, RF_ESHAPE,
                                      "chunk latents of timeline %d disagree in "
                                      "shape",
                                      timeline);
                    break;
                }
                /* the frames of [f0, f1) this chunk holds (fused: every holder agrees) */
                int64_t w0 = states[k]->window_start, wn = states[k]->window_len;
                int64_t a = w0 > f0 ? w0 : f0, b = w0 + wn < f1 ? w0 + wn : f1;
                if (a >= b)
                    continue;
                for (int64_t ci = 0; ci < lt->shape[0]; ci++)
                    memcpy(ot->data + (ci * nf + (a - f0)) * inner,
                           lt->data + (ci * wn + (a - w0)) * inner,
                           (size_t)((b - a) * inner) * sizeof(float));
            }
        }
    }
    for (size_t k = 0; k < n; k++)
        rf_chunk_state_destroy(&states[k]);
    free(states);
    if (rc) {
        rf_chunk_state_destroy(&out);
        return NULL;
    }
    return out;
}
