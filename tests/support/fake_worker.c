/* fake_worker.c - the fake worker's loop (see fake_worker.h).
 *
 * One DEALER socket, one thread. Each DENOISE task is a small state machine (STEP or
 * WAIT for OverlapDown); the loop handles every waiting message, then advances one
 * runnable task by one step, round-robin, so a single worker holds many chunks of a
 * lockstep timeline at once. The fake step: x' = 0.95 x + 0.05 sin(1.3 x + ctx +
 * 0.01 (step+1) + 0.001 frame), ctx the sum of the context minus half the negative
 * context's (so both prompts show in the film), with "prev" keeping the old x (a second
 * framed tensor, as a multistep solver's history would be).
 */
#include "fake_worker.h"

#include "chunk_state.h"
#include "chunk_wire.h"
#include "hash.h"
#include "rng.h"
#include "wire.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_TASKS 64
#define LAT_C     4

typedef struct ftask {
    int used;
    char id[128];
    uint64_t attempt;
    int kind;
    /* DENOISE */
    rf_chunk_state *st;
    int step, step_end, sync_every, ckpt_every, waiting, round;
    float ctx;
    rf_cs_span ov[RF_CS_MAX_SPANS];
    int nov;
    char job[64];
    int timeline, chunk;
    /* DECODE */
    unsigned char *seg;
    size_t seg_len;
    uint32_t frames;
    int64_t due_ms, next_progress;
    int64_t finished_ms; /* DENOISE result sent at this time: kept a while for re-sending */
} ftask;

#define KEEP_FINISHED_MS 4000

typedef struct fw {
    const rf_fake_worker_opts *o;
    void *ctx, *sock;
    ftask t[MAX_TASKS];
    int draining, hb_ms, rr;
    int64_t next_beat;
    uint64_t req;
} fw;

static int64_t s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s_send(fw *w, Reelfarm__Envelope *env, rf_wire_blob *blobs, size_t n)
{
    rf_wire_msg m = {0};
    env->request_id = ++w->req;
    m.env = env;
    m.blobs = blobs;
    m.n_blobs = n;
    return rf_wire_send(w->sock, &m, NULL);
}

static int s_connect(fw *w)
{
    if (w->sock)
        zmq_close(w->sock);
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    int zero = 0, tmo = 2000;
    zmq_setsockopt(w->sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(w->sock, ZMQ_SNDTIMEO, &tmo, sizeof(tmo));
    zmq_setsockopt(w->sock, ZMQ_RCVTIMEO, &zero, sizeof(zero));
    if (zmq_connect(w->sock, w->o->endpoint) != 0)
        return -1;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Hello h = REELFARM__HELLO__INIT;
    char *models[1] = {(char *)w->o->model_hash};
    h.name = (char *)w->o->name;
    h.backend = "fake";
    h.threads = 1;
    h.tp = 1;
    h.max_tasks = (uint32_t)(w->o->max_tasks > 0 ? w->o->max_tasks : MAX_TASKS);
    h.model_hashes = models;
    h.n_model_hashes = 1;
    Reelfarm__ChunkKey keys[MAX_TASKS], *kp[MAX_TASKS];
    size_t nk = 0;
    for (int i = 0; i < MAX_TASKS; i++) {
        const ftask *t = &w->t[i];
        if (!t->used || t->kind != REELFARM__TASK_KIND__TASK_DENOISE || !t->st)
            continue;
        reelfarm__chunk_key__init(&keys[nk]);
        keys[nk].job_id = (char *)t->job;
        keys[nk].timeline = (uint32_t)t->timeline;
        keys[nk].chunk = (uint32_t)t->chunk;
        keys[nk].step = (uint32_t)t->step;
        kp[nk] = &keys[nk];
        nk++;
    }
    h.resident = kp;
    h.n_resident = nk;
    env.kind_case = REELFARM__ENVELOPE__KIND_HELLO;
    env.hello = &h;
    return s_send(w, &env, NULL, 0);
}

static void s_drop(ftask *t)
{
    rf_chunk_state_destroy(&t->st);
    free(t->seg);
    memset(t, 0, sizeof(*t));
}

static void s_task_error(fw *w, ftask *t, int code, const char *text, int retryable)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__TaskError e = REELFARM__TASK_ERROR__INIT;
    e.task_id = t->id;
    e.attempt = t->attempt;
    e.code = (uint32_t)code;
    e.message = (char *)text;
    e.retryable = retryable;
    env.kind_case = REELFARM__ENVELOPE__KIND_TASK_ERROR;
    env.task_error = &e;
    s_send(w, &env, NULL, 0);
    s_drop(t);
}

static void s_progress(fw *w, ftask *t)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Progress p = REELFARM__PROGRESS__INIT;
    p.task_id = t->id;
    p.attempt = t->attempt;
    p.steps_done = (uint32_t)t->step;
    p.steps_total = (uint32_t)t->step_end;
    env.kind_case = REELFARM__ENVELOPE__KIND_PROGRESS;
    env.progress = &p;
    s_send(w, &env, NULL, 0);
}

static void s_encode_text(fw *w, const Reelfarm__TaskAssign *a)
{
    const char *prompt = a->encode_text->n_prompts ? a->encode_text->prompts[0] : "";
    rf_hash h;
    rf_blake2b(prompt, strlen(prompt), &h);
    float v[32];
    for (int i = 0; i < 32; i++)
        v[i] = (float)h.bytes[i] / 255.0f - 0.5f;
    rf_wire_blob b = {.name = "text/0",
                      .dtype = RF_DTYPE_F32,
                      .ndim = 2,
                      .shape = {4, 8},
                      .frame_axis = -1,
                      .data = v,
                      .len = sizeof(v)};
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__TaskResult r = REELFARM__TASK_RESULT__INIT;
    r.task_id = a->task_id;
    r.attempt = a->attempt;
    r.kind = a->kind;
    env.kind_case = REELFARM__ENVELOPE__KIND_RESULT;
    env.result = &r;
    s_send(w, &env, &b, 1);
}

static void s_decode(fw *w, ftask *t, const rf_wire_msg *msg)
{
    const Reelfarm__Decode *d = msg->env->assign->decode;
    const rf_wire_blob *b = rf_wire_msg_blob(msg, "latent");
    if (!b || b->ndim < 2 || !d->frames) {
        s_task_error(w, t, 1, "DECODE without a latent", 0);
        return;
    }
    int64_t nf = b->shape[1], inner = 1;
    for (int i = 2; i < b->ndim; i++)
        inner *= b->shape[i];
    char head[128];
    int hl =
        snprintf(head, sizeof(head), "FAKESEG t=%u s=%u [%u,%u) w=%u keep=%u\n", d->timeline,
                 d->segment, d->frames->start, d->frames->end, d->warmup, d->keep_pixel_frames);
    int64_t keep = nf - d->warmup;
    size_t len = (size_t)hl + (size_t)(b->shape[0] * keep * inner);
    t->seg = malloc(len);
    memcpy(t->seg, head, (size_t)hl);
    const float *x = b->data;
    size_t o = (size_t)hl;
    for (int64_t c = 0; c < b->shape[0]; c++)
        for (int64_t f = d->warmup; f < nf; f++)
            for (int64_t i = 0; i < inner; i++) {
                float v = x[(c * nf + f) * inner + i] * 40.0f + 128.0f;
                t->seg[o++] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    t->seg_len = len;
    t->frames = d->keep_pixel_frames;
    t->due_ms = s_now() + w->o->hang_decode_ms;
}

static void s_send_decode(fw *w, ftask *t)
{
    rf_wire_blob b = {.name = "segment",
                      .dtype = RF_DTYPE_U8,
                      .ndim = 1,
                      .shape = {(int64_t)t->seg_len},
                      .frame_axis = -1,
                      .data = t->seg,
                      .len = t->seg_len};
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__TaskResult r = REELFARM__TASK_RESULT__INIT;
    r.task_id = t->id;
    r.attempt = t->attempt;
    r.kind = REELFARM__TASK_KIND__TASK_DECODE;
    r.frames = t->frames;
    r.container = "fake";
    env.kind_case = REELFARM__ENVELOPE__KIND_RESULT;
    env.result = &r;
    s_send(w, &env, &b, 1);
    s_drop(t);
}

static void s_denoise(fw *w, ftask *t, const rf_wire_msg *msg)
{
    const Reelfarm__Denoise *d = msg->env->assign->denoise;
    const rf_wire_blob *cb = rf_wire_msg_blob(msg, "context");
    if (!d->frames || !cb) {
        s_task_error(w, t, 1, "DENOISE without frames or context", 0);
        return;
    }
    float cv = 0;
    for (size_t i = 0; i < cb->len / 4; i++)
        cv += ((const float *)cb->data)[i];
    const rf_wire_blob *nb = rf_wire_msg_blob(msg, "negative_context"); /* guided jobs only */
    for (size_t i = 0; nb && i < nb->len / 4; i++)
        cv -= 0.5f * ((const float *)nb->data)[i];
    t->ctx = cv;
    t->step_end = (int)d->step_end;
    t->sync_every = (int)d->sync_every;
    t->ckpt_every = (int)d->checkpoint_every;
    t->timeline = (int)d->timeline;
    t->chunk = (int)d->chunk;
    snprintf(t->job, sizeof(t->job), "%s", msg->env->assign->job_id);
    t->nov = 0;
    for (size_t i = 0; i < d->n_overlaps && i < RF_CS_MAX_SPANS; i++) {
        t->ov[t->nov].start = d->overlaps[i]->start;
        t->ov[t->nov].len = (int64_t)d->overlaps[i]->end - d->overlaps[i]->start;
        t->nov++;
    }
    if (d->source == REELFARM__STATE_SOURCE__STATE_RESTORE) {
        t->st = rf_chunk_wire_to_state(d->restore, msg->blobs, msg->n_blobs, "state/", NULL);
        t->step = d->restore ? (int)d->restore->step : 0;
        t->round = d->restore ? (int)d->restore->round : 0;
    } else {
        int64_t n = (int64_t)d->frames->end - d->frames->start;
        int64_t hh = d->height / 16 ? d->height / 16 : 1, ww = d->width / 16 ? d->width / 16 : 1;
        t->st = rf_chunk_state_new(d->frames->start, n, NULL);
        int64_t shape[4] = {LAT_C, n, hh, ww};
        rf_cs_tensor *x =
            t->st ? rf_chunk_state_add(t->st, "latent", 4, shape, 1, NULL, NULL) : NULL;
        if (x)
            rf_noise_latent(d->seed, d->timeline, d->frames->start, LAT_C, n, hh, ww, x->data,
                            NULL);
        if (!x || !rf_chunk_state_add(t->st, "prev", 4, shape, 1, NULL, NULL)) {
            s_task_error(w, t, 1, "cannot create the fake state", 0);
            return;
        }
        rf_chunk_state_set_str(t->st, "sampler", "fake", NULL);
        t->step = (int)d->step_begin;
        t->round = 0;
    }
    if (!t->st) {
        s_task_error(w, t, 1, "bad restore state", 0);
        return;
    }
    rf_chunk_state_set_i64(t->st, "step", t->step, NULL);
}

static void s_result_denoise(fw *w, ftask *t)
{
    rf_cs_tensor *x = rf_chunk_state_tensor(t->st, "latent");
    rf_wire_blob b = {.name = "latent",
                      .dtype = RF_DTYPE_F32,
                      .ndim = x->ndim,
                      .frame_axis = 1,
                      .frame_start = t->st->window_start,
                      .data = x->data,
                      .len = rf_cs_numel(x) * 4};
    for (int i = 0; i < x->ndim; i++)
        b.shape[i] = x->shape[i];
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__TaskResult r = REELFARM__TASK_RESULT__INIT;
    r.task_id = t->id;
    r.attempt = t->attempt;
    r.kind = REELFARM__TASK_KIND__TASK_DENOISE;
    env.kind_case = REELFARM__ENVELOPE__KIND_RESULT;
    env.result = &r;
    s_send(w, &env, &b, 1);
    t->finished_ms = s_now(); /* kept a while: re-sent if the coordinator restarts */
}

static void s_checkpoint(fw *w, ftask *t)
{
    rf_chunk_wire *cw = malloc(sizeof(*cw));
    if (!cw || rf_chunk_wire_from_state(cw, t->st, "state/", (uint32_t)t->step, (uint32_t)t->round,
                                        NULL)) {
        free(cw);
        return;
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Checkpoint c = REELFARM__CHECKPOINT__INIT;
    c.task_id = t->id;
    c.attempt = t->attempt;
    c.job_id = t->job;
    c.timeline = (uint32_t)t->timeline;
    c.chunk = (uint32_t)t->chunk;
    c.state = &cw->msg;
    env.kind_case = REELFARM__ENVELOPE__KIND_CHECKPOINT;
    env.checkpoint = &c;
    s_send(w, &env, cw->blobs, cw->n_blobs);
    free(cw);
}

/* The OverlapUp of `round`: the overlap frames of the current state (or its scalars). */
static void s_send_up(fw *w, ftask *t, int round)
{
    rf_chunk_state *part = t->nov ? rf_chunk_state_extract(t->st, t->ov, t->nov, NULL) : NULL;
    rf_chunk_wire *cw = malloc(sizeof(*cw));
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__OverlapUp up = REELFARM__OVERLAP_UP__INIT;
    if (part) {
        rf_chunk_wire_from_state(cw, part, "", (uint32_t)t->step, (uint32_t)round, NULL);
    } else { /* nothing overlaps: scalars only */
        rf_chunk_state *bare = rf_chunk_state_new(t->st->window_start, t->st->window_len, NULL);
        for (int i = 0; i < t->st->nscalars; i++)
            bare->scalars[bare->nscalars++] = t->st->scalars[i];
        rf_chunk_wire_from_state(cw, bare, "", (uint32_t)t->step, (uint32_t)round, NULL);
        cw->msg.n_held = 0;
        part = bare;
    }
    up.task_id = t->id;
    up.attempt = t->attempt;
    up.job_id = t->job;
    up.timeline = (uint32_t)t->timeline;
    up.chunk = (uint32_t)t->chunk;
    up.state = &cw->msg;
    env.kind_case = REELFARM__ENVELOPE__KIND_OVERLAP_UP;
    env.overlap_up = &up;
    s_send(w, &env, cw->blobs, cw->n_blobs);
    free(cw);
    rf_chunk_state_destroy(&part);
}

static void s_step(fw *w, ftask *t)
{
    rf_cs_tensor *x = rf_chunk_state_tensor(t->st, "latent");
    rf_cs_tensor *p = rf_chunk_state_tensor(t->st, "prev");
    int64_t n = x->shape[1], inner = x->shape[2] * x->shape[3];
    for (int64_t c = 0; c < x->shape[0]; c++)
        for (int64_t f = 0; f < n; f++)
            for (int64_t i = 0; i < inner; i++) {
                size_t k = (size_t)((c * n + f) * inner + i);
                float v = x->data[k];
                p->data[k] = v;
                x->data[k] =
                    0.95f * v + 0.05f * sinf(1.3f * v + t->ctx + 0.01f * (float)(t->step + 1) +
                                             0.001f * (float)(t->st->window_start + f));
            }
    t->step++;
    if (w->o->steps_executed)
        __atomic_fetch_add(w->o->steps_executed, 1, __ATOMIC_SEQ_CST);
    rf_chunk_state_set_i64(t->st, "step", t->step, NULL);
    s_progress(w, t);
    if (t->sync_every > 0 && t->step % t->sync_every == 0) {
        int round = t->step / t->sync_every;
        s_send_up(w, t, round);
        t->waiting = round;
        if (w->o->crash_after_round > 0 && round == w->o->crash_after_round) {
            /* die while waiting for this round's OverlapDown, after what was sent so far left
             * the socket (a SIGKILL drops ZeroMQ's unsent queue) */
            usleep(300000);
            raise(SIGKILL);
        }
        return;
    }
    if (t->step >= t->step_end)
        s_result_denoise(w, t);
}

static void s_on_down(fw *w, const rf_wire_msg *msg)
{
    const Reelfarm__OverlapDown *d = msg->env->overlap_down;
    for (int i = 0; i < MAX_TASKS; i++) {
        ftask *t = &w->t[i];
        if (!t->used || t->finished_ms || strcmp(t->id, d->task_id) || t->attempt != d->attempt ||
            t->waiting != (int)d->round)
            continue;
        rf_chunk_state *f = rf_chunk_wire_to_state(d->state, msg->blobs, msg->n_blobs, "", NULL);
        if (!f || (f->ntensors && rf_chunk_state_apply(t->st, f, NULL))) {
            rf_chunk_state_destroy(&f);
            s_task_error(w, t, 4, "bad OverlapDown", 1);
            return;
        }
        rf_chunk_state_destroy(&f);
        t->waiting = 0;
        t->round = (int)d->round;
        if (w->o->drain_after_round > 0 && t->round == w->o->drain_after_round && !w->draining) {
            w->draining = 1;
            Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
            Reelfarm__Drain dr = REELFARM__DRAIN__INIT;
            dr.reason = "fake worker drains itself";
            env.kind_case = REELFARM__ENVELOPE__KIND_DRAIN;
            env.drain = &dr;
            s_send(w, &env, NULL, 0);
        }
        if (w->draining) { /* hand the chunk back */
            s_checkpoint(w, t);
            s_task_error(w, t, 11 /* RF_ECANCELED */, "worker draining: chunk handed back", 1);
            return;
        }
        if (t->ckpt_every > 0 && t->round % t->ckpt_every == 0)
            s_checkpoint(w, t);
        if (t->step >= t->step_end)
            s_result_denoise(w, t);
        return;
    }
}

static void s_on_message(fw *w, rf_wire_msg *msg)
{
    Reelfarm__Envelope *e = msg->env;
    switch (e->kind_case) {
    case REELFARM__ENVELOPE__KIND_HELLO_ACK:
        w->hb_ms = e->hello_ack->heartbeat_ms ? (int)e->hello_ack->heartbeat_ms : 1000;
        for (int i = 0; i < MAX_TASKS; i++) { /* what each task waits on, again */
            ftask *t = &w->t[i];
            if (!t->used || t->kind != REELFARM__TASK_KIND__TASK_DENOISE)
                continue;
            if (t->finished_ms) {
                t->finished_ms = 0;
                s_result_denoise(w, t);
            } else if (t->waiting) {
                s_send_up(w, t, t->waiting);
            }
        }
        break;
    case REELFARM__ENVELOPE__KIND_REFUSE:
        if (e->refuse->retry_after_ms == 0)
            exit(1);
        /* the coordinator restarted or forgot us: keep the tasks, say Hello again */
        for (int i = 0; i < MAX_TASKS; i++)
            if (w->t[i].used && w->t[i].kind != REELFARM__TASK_KIND__TASK_DENOISE)
                s_drop(&w->t[i]);
        usleep(100000);
        s_connect(w);
        break;
    case REELFARM__ENVELOPE__KIND_DRAIN: w->draining = 1; break;
    case REELFARM__ENVELOPE__KIND_CANCEL_TASK:
        for (int i = 0; i < MAX_TASKS; i++)
            if (w->t[i].used && !w->t[i].finished_ms &&
                strcmp(w->t[i].id, e->cancel_task->task_id) == 0 &&
                w->t[i].attempt == e->cancel_task->attempt &&
                !(w->o->hang_decode_ms > 0 && w->t[i].kind == REELFARM__TASK_KIND__TASK_DECODE))
                s_drop(&w->t[i]);
        break;
    case REELFARM__ENVELOPE__KIND_OVERLAP_DOWN: s_on_down(w, msg); break;
    case REELFARM__ENVELOPE__KIND_ASSIGN: {
        const Reelfarm__TaskAssign *a = e->assign;
        if (a->kind == REELFARM__TASK_KIND__TASK_ENCODE_TEXT && a->encode_text) {
            s_encode_text(w, a);
            break;
        }
        ftask *t = NULL;
        for (int i = 0; i < MAX_TASKS && !t; i++)
            if (!w->t[i].used)
                t = &w->t[i];
        if (!t)
            break;
        t->used = 1;
        snprintf(t->id, sizeof(t->id), "%s", a->task_id);
        t->attempt = a->attempt;
        t->kind = a->kind;
        if (a->kind == REELFARM__TASK_KIND__TASK_DENOISE && a->denoise)
            s_denoise(w, t, msg);
        else if (a->kind == REELFARM__TASK_KIND__TASK_DECODE && a->decode)
            s_decode(w, t, msg);
        else
            s_task_error(w, t, 10, "the fake worker does not run this task", 0);
        break;
    }
    default: break;
    }
}

int rf_fake_worker_run(const rf_fake_worker_opts *o)
{
    fw *w = calloc(1, sizeof(*w));
    w->o = o;
    w->hb_ms = 1000;
    w->ctx = zmq_ctx_new();
    if (s_connect(w))
        return 1;
    for (;;) {
        int busy = 0, runnable = 0;
        int64_t now = s_now();
        for (int i = 0; i < MAX_TASKS; i++) {
            ftask *t = &w->t[i];
            if (!t->used)
                continue;
            if (t->finished_ms) {
                if (now - t->finished_ms > KEEP_FINISHED_MS)
                    s_drop(t);
                continue;
            }
            busy = 1;
            if (t->kind == REELFARM__TASK_KIND__TASK_DENOISE && !t->waiting)
                runnable = 1;
            if (t->kind == REELFARM__TASK_KIND__TASK_DECODE && now >= t->due_ms)
                s_send_decode(w, t);
            else if (t->kind == REELFARM__TASK_KIND__TASK_DENOISE && t->waiting &&
                     now >= t->next_progress) {
                t->next_progress = now + 200;
                s_progress(w, t); /* waiting for a round is part of the task */
            }
        }
        if (w->draining && !busy)
            break;
        zmq_pollitem_t it = {w->sock, 0, ZMQ_POLLIN, 0};
        int tmo = runnable ? o->step_delay_ms : 5;
        zmq_poll(&it, 1, tmo);
        for (;;) {
            rf_wire_msg msg = {0};
            int rc = rf_wire_recv(w->sock, &msg, NULL, NULL);
            if (rc == RF_EAGAIN) {
                rf_wire_msg_release(&msg);
                break;
            }
            if (rc == 0)
                s_on_message(w, &msg);
            rf_wire_msg_release(&msg);
        }
        if (s_now() >= w->next_beat) {
            w->next_beat = s_now() + w->hb_ms;
            Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
            Reelfarm__Heartbeat hb = REELFARM__HEARTBEAT__INIT;
            hb.draining = w->draining;
            env.kind_case = REELFARM__ENVELOPE__KIND_HEARTBEAT;
            env.heartbeat = &hb;
            s_send(w, &env, NULL, 0);
        }
        for (int k = 0; k < MAX_TASKS; k++) {
            ftask *t = &w->t[(w->rr + k) % MAX_TASKS];
            if (t->used && !t->finished_ms && t->kind == REELFARM__TASK_KIND__TASK_DENOISE &&
                !t->waiting) {
                w->rr = (w->rr + k + 1) % MAX_TASKS;
                if (t->step >= t->step_end)
                    s_result_denoise(w, t);
                else
                    s_step(w, t);
                break;
            }
        }
    }
    zmq_close(w->sock);
    zmq_ctx_term(w->ctx);
    free(w);
    return 0;
}

pid_t rf_fake_worker_spawn(const rf_fake_worker_opts *opts)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the test that forked it */
        _exit(rf_fake_worker_run(opts));
    }
    return pid;
}
