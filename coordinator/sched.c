/* sched.c - dispatch, leases, the ownership fence and task outcomes.
 *
 * Each dispatch is an attempt: a new coordinator-wide id (store counter "attempt"), a
 * worker and a lease deadline, committed before the TaskAssign leaves. Progress extends
 * the lease; a lease that runs out or a lost worker ends the attempt and requeues the
 * task; a result, error, progress, overlap or checkpoint counts only when its attempt
 * is the task's current one and comes from the worker holding it (the fence), otherwise
 * it is dropped and logged. A task that failed on 3 different workers fails its job
 * with the errors gathered. Placement: jobs by priority, round-robin between jobs of one
 * priority (fair share); a worker must hold the job's model; among those, the worker
 * holding the chunk's state, then the least busy. A lockstep timeline's DENOISE tasks
 * are placed together (gang) so no chunk waits on a round whose partner has no slot.
 */
#include "coord.h"

#include "chunk_wire.h"
#include "fusion.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_lease_push(rf_coord *c, c_task *t);

/* src into dst (cap bytes, cut to fit, NUL-terminated): the copies made per dispatch and
 * per result, without snprintf's format parsing. */
static void s_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

#define MAX_FAILED_WORKERS 3
#define TENSOR_MAGIC       "RFTENS1"

/* ---- stored tensors (text embeddings): magic, u32 dtype, u32 ndim, i64 shape[], data */

int c_tensor_put(rf_coord *c, const rf_wire_blob *b, const char *job_id, char *hex, rf_error *err)
{
    size_t head = 8 + 4 + 4 + 8 * (size_t)b->ndim;
    unsigned char *buf = malloc(head + b->len);
    if (!buf)
        return rf_error_set(err, RF_ENOMEM, "out of memory storing '%s'", b->name);
    memcpy(buf, TENSOR_MAGIC, 8);
    uint32_t dt = (uint32_t)b->dtype, nd = (uint32_t)b->ndim;
    memcpy(buf + 8, &dt, 4);
    memcpy(buf + 12, &nd, 4);
    memcpy(buf + 16, b->shape, 8 * (size_t)b->ndim);
    memcpy(buf + head, b->data, b->len);
    int rc = rf_store_begin(c->store, err);
    if (!rc)
        rc = rf_store_blob_put_packed(c->store, buf, head + b->len, job_id, hex, err);
    free(buf);
    return rc;
}

/* The cache of stored tensors: a text embedding goes out with every DENOISE task of its
 * prompt, so it is read from the store (and its hash verified) once, not per dispatch. */
#define TCACHE_BYTES   ((size_t)256 << 20)
#define TCACHE_ENTRIES 4096

void c_tcache_free(rf_coord *c)
{
    for (int i = 0; i < c->ntcache; i++)
        free(c->tcache[i].data);
    free(c->tcache);
    c->tcache = NULL;
    c->ntcache = c->captcache = 0;
    c->tcache_bytes = 0;
}

static uint64_t s_hex_key(const char *hex)
{
    uint64_t k = 0;
    for (int i = 0; i < 16 && hex[i]; i++)
        k = k << 4 | (uint64_t)(hex[i] <= '9' ? hex[i] - '0' : (hex[i] | 32) - 'a' + 10);
    return k;
}

/* The stored bytes of blob hex, borrowed from the cache (valid until the next call that
 * misses: entries used since the last tick are never evicted). */
static int s_tcache_get(rf_coord *c, const char *hex, const void **data, size_t *len, rf_error *err)
{
    uint64_t key = s_hex_key(hex);
    for (int i = 0; i < c->ntcache; i++) {
        struct c_tcache *e = &c->tcache[i];
        if (e->key == key && strcmp(e->hex, hex) == 0) {
            e->used = c->tcache_tick;
            *data = e->data;
            *len = e->len;
            return 0;
        }
    }
    void *buf = NULL;
    size_t n = 0;
    int rc = rf_store_blob_get(c->store, hex, &buf, &n, err);
    if (rc)
        return rc;
    /* evict the least recently used (never one used in this tick) until it fits */
    while (c->ntcache > 0 && (c->tcache_bytes + n > TCACHE_BYTES || c->ntcache >= TCACHE_ENTRIES)) {
        int lru = -1;
        for (int i = 0; i < c->ntcache; i++)
            if (c->tcache[i].used != c->tcache_tick &&
                (lru < 0 || c->tcache[i].used < c->tcache[lru].used))
                lru = i;
        if (lru < 0)
            break;
        c->tcache_bytes -= c->tcache[lru].len;
        free(c->tcache[lru].data);
        c->tcache[lru] = c->tcache[--c->ntcache];
    }
    if (c->ntcache == c->captcache) {
        int cap = c->captcache ? c->captcache * 2 : 16;
        void *p = realloc(c->tcache, (size_t)cap * sizeof(*c->tcache));
        if (!p) {
            free(buf);
            return rf_error_set(err, RF_ENOMEM, "out of memory caching blob %s", hex);
        }
        c->tcache = p;
        c->captcache = cap;
    }
    struct c_tcache *e = &c->tcache[c->ntcache++];
    snprintf(e->hex, sizeof(e->hex), "%s", hex);
    e->key = key;
    e->data = buf;
    e->len = n;
    e->used = c->tcache_tick;
    c->tcache_bytes += n;
    *data = buf;
    *len = n;
    return 0;
}

/* Points blob at the values of a stored tensor's bytes (header checked). */
static int s_tensor_parse(const char *hex, const char *name, const void *data, size_t len,
                          rf_wire_blob *b, rf_error *err)
{
    uint32_t dt, nd;
    if (len < 16 || memcmp(data, TENSOR_MAGIC, 8) != 0 ||
        (memcpy(&dt, (const char *)data + 8, 4), memcpy(&nd, (const char *)data + 12, 4), nd > 8) ||
        len < 16 + 8 * (size_t)nd)
        return rf_error_set(err, RF_EINVAL, "stored tensor %s is damaged", hex);
    memset(b, 0, sizeof(*b));
    b->name = name;
    b->dtype = (rf_dtype)dt;
    b->ndim = (int)nd;
    memcpy(b->shape, (const char *)data + 16, 8 * (size_t)nd);
    b->frame_axis = -1;
    b->data = (const char *)data + 16 + 8 * (size_t)nd;
    b->len = len - 16 - 8 * (size_t)nd;
    return 0;
}

/* Points blob at a stored tensor (borrowed from the cache; see s_tcache_get). */
static int s_tensor_get(rf_coord *c, const char *hex, const char *name, rf_wire_blob *b,
                        rf_error *err)
{
    const void *data = NULL;
    size_t len = 0;
    int rc = s_tcache_get(c, hex, &data, &len, err);
    return rc ? rc : s_tensor_parse(hex, name, data, len, b, err);
}

/* Loads a stored tensor into blob (data malloc'd into *owned). */
int c_tensor_get(rf_coord *c, const char *hex, const char *name, rf_wire_blob *b, void **owned,
                 rf_error *err)
{
    void *data = NULL;
    size_t len = 0;
    int rc = rf_store_blob_get(c->store, hex, &data, &len, err);
    if (!rc)
        rc = s_tensor_parse(hex, name, data, len, b, err);
    if (rc) {
        free(data);
        return rc;
    }
    *owned = data;
    return 0;
}

/* Tells worker w to stop attempt `attempt` of task_id (docs/protocol.md CancelTask). */
static void s_send_cancel(rf_coord *c, const c_worker *w, const char *task_id, uint64_t attempt,
                          const char *reason)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__CancelTask ct = REELFARM__CANCEL_TASK__INIT;
    ct.task_id = (char *)task_id;
    ct.attempt = attempt;
    ct.reason = (char *)reason;
    env.kind_case = REELFARM__ENVELOPE__KIND_CANCEL_TASK;
    env.cancel_task = &ct;
    rf_wire_msg m = {0};
    memcpy(m.peer, w->peer, w->peer_len);
    m.peer_len = w->peer_len;
    m.env = &env;
    c_send(c, c->wsock, &m);
}

/* ---- the fence ------------------------------------------------------------------- */

c_task *c_fence(rf_coord *c, c_worker *w, const char *task_id, uint64_t attempt, const char *what)
{
    c_task *t = task_id ? c_task_find(c, task_id) : NULL;
    if (t && t->row.attempt == attempt && t->row.state == REELFARM__UNIT_STATE__UNIT_RUNNING &&
        strcmp(t->row.worker, w->id) == 0 && !c_job_terminal(t->job))
        return t;
    rf_log_kv(RF_LOG_WARN, "sched", "stale result dropped",
              "what=%s task=%s attempt=%llu current=%llu worker=%s", what, task_id ? task_id : "",
              (unsigned long long)attempt, t ? (unsigned long long)t->row.attempt : 0ull, w->name);
    if (t && attempt != t->row.attempt && strcmp(what, "result") != 0) {
        /* a superseded attempt still running there: stop it */
        s_send_cancel(c, w, t->row.id, attempt, "attempt superseded");
    }
    return NULL;
}

static c_worker *s_owner(rf_coord *c, const c_task *t)
{
    return t->row.worker[0] ? c_worker_find(c, t->row.worker) : NULL;
}

/* t went back to PENDING: the dispatcher must look at it again. */
static void s_pending(rf_coord *c, c_task *t)
{
    int i = (int)(t - t->job->tasks);
    if (i < t->job->ready_from)
        t->job->ready_from = i;
    c_job_wake(c, t->job);
}

/* Ends the attempt's bookkeeping on its worker. */
static void s_release(rf_coord *c, c_task *t)
{
    c_worker *w = s_owner(c, t);
    if (w && w->running > 0)
        w->running--;
    if (w)
        c_worker_may_free(c, w);
    c->dirty = 1;
}

void c_cancel_attempt(rf_coord *c, c_task *t, const char *reason)
{
    c_worker *w = s_owner(c, t);
    if (w) {
        uint64_t attempt = t->row.attempt;
        s_release(c, t);
        t->row.state = REELFARM__UNIT_STATE__UNIT_PENDING;
        t->row.worker[0] = 0;
        s_pending(c, t);
        c_task_put(c, t);
        s_send_cancel(c, w, t->row.id, attempt, reason);
        return;
    }
    t->row.state = REELFARM__UNIT_STATE__UNIT_PENDING;
    t->row.worker[0] = 0;
    s_pending(c, t);
    c_task_put(c, t);
}

static int s_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

static int s_count_listed(const char *list)
{
    if (!list || !*list)
        return 0;
    int n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

static void s_append(char **dst, const char *sep, const char *add)
{
    size_t a = *dst ? strlen(*dst) : 0, b = strlen(add), s = strlen(sep);
    char *p = realloc(*dst, a + s + b + 1);
    if (!p)
        return;
    if (a) {
        memcpy(p + a, sep, s);
        a += s;
    }
    memcpy(p + a, add, b + 1);
    *dst = p;
}

void c_task_requeue(rf_coord *c, c_task *t, const char *worker, const char *why, int counts)
{
    s_release(c, t);
    c_job *job = t->job;
    if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE)
        job->chunks[t->row.unit].row.worker[0] = 0;
    t->row.state = REELFARM__UNIT_STATE__UNIT_PENDING;
    t->row.worker[0] = 0;
    t->orphan = 0;
    s_pending(c, t);
    if (counts) {
        t->row.failures++;
        if (!s_listed(t->row.failed_workers, worker))
            s_append(&t->row.failed_workers, ",", worker);
        char line[1200];
        snprintf(line, sizeof(line), "%s: %s", worker, why);
        s_append(&t->row.error, "; ", line);
    }
    c_job_event(c, job, "warn", "task %s requeued: %s (worker %s)", t->row.id, why, worker);
    if (s_count_listed(t->row.failed_workers) >= MAX_FAILED_WORKERS) {
        t->row.state = REELFARM__UNIT_STATE__UNIT_FAILED;
        c_task_put(c, t);
        char text[2048];
        snprintf(text, sizeof(text), "task %s failed on %d different workers: %s", t->row.id,
                 MAX_FAILED_WORKERS, t->row.error ? t->row.error : "");
        c_job_fail(c, job, text);
        return;
    }
    c_task_put(c, t);
}

/* ---- readiness and placement ------------------------------------------------------- */

static int s_ready(const c_task *t)
{
    const c_job *job = t->job;
    if (t->row.state != REELFARM__UNIT_STATE__UNIT_PENDING)
        return 0;
    switch (t->row.kind) {
    case REELFARM__TASK_KIND__TASK_ENCODE_TEXT: return 1;
    case REELFARM__TASK_KIND__TASK_ENCODE_MEDIA: return c_inputs_ready(t);
    case REELFARM__TASK_KIND__TASK_DENOISE: {
        const c_chunk *ch = &job->chunks[t->row.unit];
        return job->text[ch->prompt][0] && (ch->negative < 0 || job->text[ch->negative][0]) &&
               c_inputs_ready(t);
    }
    case REELFARM__TASK_KIND__TASK_DECODE: {
        const c_timeline *tl = &job->timelines[job->plan->segments[t->row.unit].timeline];
        return tl->ndone >= tl->nchunks;
    }
    default: return 0;
    }
}

static int s_free(const c_worker *w)
{
    return w->draining ? 0 : (int)w->max_tasks - w->running;
}

/* Drops the workers without a free slot from the free set; returns its size. */
static int s_prune_free(rf_coord *c)
{
    for (int i = 0; i < c->nwfree;) {
        c_worker *w = c->wfree[i];
        if (s_free(w) <= 0)
            c_worker_unfree(c, w); /* the last one moved to i: look at i again */
        else
            i++;
    }
    return c->nwfree;
}

/* The worker holding the chunk's state when it can take the task, else the least busy
 * worker with a free slot that holds the job's model and has not failed the task. Looks
 * only at the free set (workers with a free slot), so a busy farm costs nothing here. */
static c_worker *s_pick(rf_coord *c, const c_task *t)
{
    const c_job *job = t->job;
    const char *holder =
        t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE ? job->chunks[t->row.unit].row.worker : "";
    if (holder[0]) {
        c_worker *h = c_worker_find(c, holder);
        if (h && strcmp(h->id, holder) == 0 && s_free(h) > 0 &&
            c_worker_has_model(h, job->row.model_hash) && !s_listed(t->row.failed_workers, h->name))
            return h;
    }
    c_worker *best = NULL;
    for (int i = 0; i < c->nwfree;) {
        c_worker *w = c->wfree[i];
        if (s_free(w) <= 0) {
            c_worker_unfree(c, w);
            continue;
        }
        i++;
        if ((best && w->running >= best->running) || !c_worker_has_model(w, job->row.model_hash) ||
            s_listed(t->row.failed_workers, w->name))
            continue;
        best = w;
        if (!best->running)
            break; /* nobody is less busy */
    }
    return best;
}

/* ---- TaskAssign ---------------------------------------------------------------------- */

#define MAX_ASSIGN_BLOBS (RF_CS_MAX_TENSORS + 4)

static Reelfarm__Codec s_codec(rf_codec k)
{
    return (Reelfarm__Codec)(k + 1);
}

/* Claims t for w: a new attempt, RUNNING, leased (store writes, not yet committed). The
 * TaskAssign leaves in s_send_assign after the dispatch pass's one commit. */
static int s_claim(rf_coord *c, c_task *t, c_worker *w)
{
    c_job *job = t->job;
    rf_error err;
    uint64_t attempt = 0;
    if (c->nclaims == c->capclaims) {
        int cap = c->capclaims ? c->capclaims * 2 : 256;
        void *p = realloc(c->claims, (size_t)cap * sizeof(*c->claims));
        if (!p)
            return -1;
        c->claims = p;
        c->capclaims = cap;
    }
    if (rf_store_begin(c->store, &err) || rf_store_next(c->store, "attempt", &attempt, &err)) {
        rf_log_kv(RF_LOG_ERROR, "sched", "cannot allocate an attempt", "error=\"%s\"", err.msg);
        c_store_failed(c, &err);
        return -1;
    }
    int step_begin = 0;
    if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE &&
        job->chunks[t->row.unit].row.checkpoint[0])
        step_begin = job->chunks[t->row.unit].row.step;
    t->row.attempt = attempt;
    t->row.state = REELFARM__UNIT_STATE__UNIT_RUNNING;
    s_copy(t->row.worker, sizeof(t->row.worker), w->id);
    s_copy(t->row.worker_name, sizeof(t->row.worker_name), w->name);
    t->row.step_begin = step_begin;
    t->row.lease_deadline_ms = c_now_ms() + c->cfg.lease_ms;
    t->steps_done = step_begin;
    t->orphan = 0;
    if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE)
        s_copy(job->chunks[t->row.unit].row.worker, RF_STORE_ID_MAX, w->id);
    w->running++;
    s_lease_push(c, t);
    c_task_put(c, t);
    c_job_advance(c, job);
    c->claims[c->nclaims].task = t;
    c->claims[c->nclaims].worker = w;
    c->claims[c->nclaims].attempt = attempt;
    c->nclaims++;
    return 0;
}

/* Builds and sends the TaskAssign of a committed claim. */
static int s_send_assign(rf_coord *c, c_task *t, c_worker *w, uint64_t attempt)
{
    c_job *job = t->job;
    rf_error err;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__TaskAssign a = REELFARM__TASK_ASSIGN__INIT;
    Reelfarm__EncodeText et = REELFARM__ENCODE_TEXT__INIT;
    Reelfarm__Denoise dn = REELFARM__DENOISE__INIT;
    Reelfarm__Decode dc = REELFARM__DECODE__INIT;
    Reelfarm__EncodeMedia em = REELFARM__ENCODE_MEDIA__INIT;
    Reelfarm__BlobRef mref = REELFARM__BLOB_REF__INIT;
    c_cond_msg cm;
    Reelfarm__CodecSettings cs = REELFARM__CODEC_SETTINGS__INIT;
    Reelfarm__FrameRange fr = REELFARM__FRAME_RANGE__INIT;
    Reelfarm__FrameRange ov[RF_CS_MAX_SPANS], *ovp[RF_CS_MAX_SPANS];
    Reelfarm__BlobRef ctx = REELFARM__BLOB_REF__INIT, nctx = REELFARM__BLOB_REF__INIT;
    rf_wire_blob blobs[MAX_ASSIGN_BLOBS];
    size_t nb = 0;
    void *owned[3] = {NULL, NULL, NULL}; /* [2]: the media input (the contexts are cached) */
    rf_chunk_state *restore = NULL;
    rf_chunk_wire *cw = NULL;
    rf_chunk_state *lat = NULL; /* DECODE: the segment's latent frames */
    char *prompt_ptr[1];
    int rc = 0;
    const rf_job_spec *sp = job->spec;
    memset(&cm, 0, sizeof(cm));
    a.task_id = t->row.id;
    a.attempt = attempt;
    a.job_id = job->row.id;
    a.kind = t->row.kind;
    a.model_hash = job->row.model_hash;
    a.lease_ms = (uint32_t)c->cfg.lease_ms;
    a.priority = job->row.priority;
    int step_begin = 0;
    if (t->row.kind == REELFARM__TASK_KIND__TASK_ENCODE_TEXT) {
        prompt_ptr[0] = job->prompts[t->row.unit];
        et.prompts = prompt_ptr;
        et.n_prompts = 1;
        a.task_case = REELFARM__TASK_ASSIGN__TASK_ENCODE_TEXT;
        a.encode_text = &et;
    } else if (t->row.kind == REELFARM__TASK_KIND__TASK_ENCODE_MEDIA) {
        rc = c_inputs_assign_media(c, t, &em, &mref, &blobs[nb], &owned[2], &err);
        nb += !rc;
        a.task_case = REELFARM__TASK_ASSIGN__TASK_ENCODE_MEDIA;
        a.encode_media = &em;
    } else if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE) {
        c_chunk *ch = &job->chunks[t->row.unit];
        c_timeline *tl = &job->timelines[ch->plan.timeline];
        dn.timeline = (uint32_t)ch->plan.timeline;
        dn.chunk = (uint32_t)ch->plan.index;
        fr.start = (uint32_t)ch->plan.start;
        fr.end = (uint32_t)ch->plan.end;
        dn.frames = &fr;
        dn.timeline_frames = (uint32_t)job->plan->timelines[ch->plan.timeline].latent_frames;
        dn.step_end = (uint32_t)sp->steps;
        dn.steps_total = (uint32_t)sp->steps;
        dn.sampler = (Reelfarm__Sampler)(sp->sampler + 1);
        dn.shift = (float)sp->shift;
        dn.guidance = (float)sp->guidance;
        dn.seed = sp->seed;
        dn.sync_every = (uint32_t)job->sync_every;
        dn.checkpoint_every = (uint32_t)job->checkpoint_every;
        dn.width = (uint32_t)sp->width;
        dn.height = (uint32_t)sp->height;
        rf_cs_span spans[RF_CS_MAX_SPANS];
        int nspans = 0;
        /* only the windows that touch this one (sorted by start, all of one length): the
         * fusion helper checks every pair it is given */
        int k = ch->plan.index, lo = k, hi = k;
        int64_t ks = tl->windows[k].start, ke = ks + tl->windows[k].len;
        while (lo > 0 && tl->windows[lo - 1].start + tl->windows[lo - 1].len > ks)
            lo--;
        while (hi + 1 < tl->nchunks && tl->windows[hi + 1].start < ke)
            hi++;
        if (job->sync_every > 0 &&
            rf_fusion_overlap_spans(tl->windows + lo, (size_t)(hi - lo + 1), (size_t)(k - lo),
                                    spans, &nspans, &err) == 0) {
            for (int i = 0; i < nspans; i++) {
                reelfarm__frame_range__init(&ov[i]);
                ov[i].start = (uint32_t)spans[i].start;
                ov[i].end = (uint32_t)(spans[i].start + spans[i].len);
                ovp[i] = &ov[i];
            }
            dn.overlaps = ovp;
            dn.n_overlaps = (size_t)nspans;
        }
        c->tcache_tick++;
        rc = s_tensor_get(c, job->text[ch->prompt], "context", &blobs[nb], &err);
        if (!rc) {
            ctx.hash = job->text[ch->prompt];
            ctx.name = "context";
            dn.context = &ctx;
            nb++;
        }
        if (!rc && ch->negative >= 0) {
            rc = s_tensor_get(c, job->text[ch->negative], "negative_context", &blobs[nb], &err);
            if (!rc) {
                nctx.hash = job->text[ch->negative];
                nctx.name = "negative_context";
                dn.negative_context = &nctx;
                nb++;
            }
        }
        if (!rc)
            rc = c_inputs_assign_denoise(c, t, &dn, &cm, blobs, &nb, &err);
        dn.source = REELFARM__STATE_SOURCE__STATE_FRESH;
        if (!rc && ch->row.checkpoint[0]) {
            void *buf = NULL;
            size_t len = 0;
            uint32_t st = 0, rd = 0;
            rc = rf_store_blob_get(c->store, ch->row.checkpoint, &buf, &len, &err);
            if (!rc && !(restore = rf_chunk_state_unpack(buf, len, &st, &rd, &err)))
                rc = err.code;
            free(buf);
            cw = rc ? NULL : malloc(sizeof(*cw));
            if (!rc && !cw)
                rc = rf_error_set(&err, RF_ENOMEM, "out of memory");
            if (!rc)
                rc = rf_chunk_wire_from_state(cw, restore, "state/", st, rd, &err);
            if (!rc)
                rc = rf_chunk_wire_append(cw, blobs, &nb, MAX_ASSIGN_BLOBS, &err);
            if (!rc) {
                dn.source = REELFARM__STATE_SOURCE__STATE_RESTORE;
                dn.restore = &cw->msg;
                step_begin = (int)st;
                c_job_event(c, job, "info",
                            "chunk %d restored from a checkpoint at round %u (step %u) on "
                            "worker %s; replaying to round %d",
                            t->row.unit, rd, st, w->name, tl->fused_round);
            }
        }
        dn.step_begin = (uint32_t)step_begin;
        a.task_case = REELFARM__TASK_ASSIGN__TASK_DENOISE;
        a.denoise = &dn;
    } else {
        const rf_plan_segment *seg = &job->plan->segments[t->row.unit];
        const int64_t f0 = seg->start - seg->warmup;
        lat = c_timeline_latent(c, job, seg->timeline, f0, seg->end, &err);
        const rf_cs_tensor *lt = lat ? rf_chunk_state_tensor(lat, "latent") : NULL;
        if (!lt) {
            rc = lat ? rf_error_set(&err, RF_EINVAL, "timeline latent has no 'latent'")
                     : (int)err.code;
        } else {
            rf_wire_blob *b = &blobs[nb++];
            memset(b, 0, sizeof(*b));
            b->name = "latent";
            b->dtype = RF_DTYPE_F32;
            b->ndim = lt->ndim;
            for (int d = 0; d < lt->ndim; d++)
                b->shape[d] = lt->shape[d];
            b->frame_axis = 1;
            b->frame_start = f0;
            b->data = lt->data;
            b->len = rf_cs_numel(lt) * sizeof(float);
        }
        dc.timeline = (uint32_t)seg->timeline;
        dc.segment = (uint32_t)t->row.unit;
        fr.start = (uint32_t)seg->start;
        fr.end = (uint32_t)seg->end;
        dc.frames = &fr;
        dc.warmup = (uint32_t)seg->warmup;
        dc.keep_pixel_frames = (uint32_t)(seg->pixel_end - seg->pixel_start);
        /* PNG (stills, frame sequences): workers send lossless FFV1 segments and the
         * coordinator writes the images (stitch.c) */
        cs.codec = s_codec(sp->output.codec == RF_CODEC_PNG ? RF_CODEC_FFV1 : sp->output.codec);
        cs.crf = sp->output.crf > 0 ? (uint32_t)sp->output.crf : 0;
        cs.width = (uint32_t)sp->output.scale_width;
        cs.height = (uint32_t)sp->output.scale_height;
        cs.fps_num = (uint32_t)sp->fps;
        cs.fps_den = 1;
        dc.codec = &cs;
        a.task_case = REELFARM__TASK_ASSIGN__TASK_DECODE;
        a.decode = &dc;
    }
    if (rc) {
        c_job_fail(c, job, err.msg);
    } else {
        env.kind_case = REELFARM__ENVELOPE__KIND_ASSIGN;
        env.assign = &a;
        rf_wire_msg m = {0};
        memcpy(m.peer, w->peer, w->peer_len);
        m.peer_len = w->peer_len;
        m.env = &env;
        m.blobs = blobs;
        m.n_blobs = nb;
        rf_log_kv(RF_LOG_DEBUG, "sched", "task dispatched", "task=%s attempt=%llu worker=%s",
                  t->row.id, (unsigned long long)attempt, w->name);
        if (c_send(c, c->wsock, &m) == RF_ENOTFOUND)
            c_worker_lost(c, w, "its socket is gone");
    }
    for (int i = 0; i < 3; i++)
        free(owned[i]);
    rf_chunk_state_destroy(&lat);
    free(cm.data);
    free(cw);
    rf_chunk_state_destroy(&restore);
    return rc ? -1 : 0;
}

/* ---- the run queue: jobs that may have a task to dispatch ------------------------------ */

/* A job is in the run queue (job->queued) while it may have a ready task: put there by
 * c_job_wake when something that can make a task ready happens to it (it was added,
 * loaded or retried, a task of it ended or went back to PENDING, its input arrived), and
 * taken out by the dispatcher when it finds nothing ready. Within one priority the queue
 * is a ring: a job that got a dispatch goes to the back (fair share). So a dispatch pass
 * costs what it dispatches plus the jobs it looks at once, never a walk over every job. */

/* Queues job; dirty: the loop runs the dispatcher again (not for jobs put back by the
 * dispatcher itself, which would spin on a job that waits for a worker). */
static void s_wake(rf_coord *c, c_job *job, int dirty)
{
    if (job->queued || c_job_terminal(job))
        return;
    if (dirty)
        c->dirty = 1;
    int b = 0;
    while (b < c->nrunq && c->runq[b].prio > job->row.priority)
        b++;
    if (b == c->nrunq || c->runq[b].prio != job->row.priority) { /* a new priority level */
        if (c->nrunq == c->caprunq) {
            int cap = c->caprunq ? c->caprunq * 2 : 4;
            void *p = realloc(c->runq, (size_t)cap * sizeof(*c->runq));
            if (!p)
                return; /* the periodic wake (c_jobs_wake_all) finds it again */
            c->runq = p;
            c->caprunq = cap;
        }
        memmove(&c->runq[b + 1], &c->runq[b], (size_t)(c->nrunq - b) * sizeof(*c->runq));
        memset(&c->runq[b], 0, sizeof(*c->runq));
        c->runq[b].prio = job->row.priority;
        c->nrunq++;
    }
    struct c_runq *q = &c->runq[b];
    if (q->n == q->cap) { /* grow the ring, linearized */
        int cap = q->cap ? q->cap * 2 : 64;
        c_job **ring = malloc((size_t)cap * sizeof(*ring));
        if (!ring)
            return;
        for (int i = 0; i < q->n; i++)
            ring[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->n++) % q->cap] = job;
    job->queued = 1;
}

void c_job_wake(rf_coord *c, c_job *job)
{
    s_wake(c, job, 1);
}

/* The first job of the highest priority waiting, out of the queue; NULL when none. */
static c_job *s_runq_pop(rf_coord *c)
{
    for (int b = 0; b < c->nrunq; b++) {
        struct c_runq *q = &c->runq[b];
        if (!q->n)
            continue;
        c_job *j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        j->queued = 0;
        return j;
    }
    return NULL;
}

void c_job_unqueue(rf_coord *c, c_job *job)
{
    for (int b = 0; job->queued && b < c->nrunq; b++) {
        struct c_runq *q = &c->runq[b];
        for (int i = 0; i < q->n; i++) {
            if (q->ring[(q->head + i) % q->cap] != job)
                continue;
            for (int k = i; k + 1 < q->n; k++)
                q->ring[(q->head + k) % q->cap] = q->ring[(q->head + k + 1) % q->cap];
            q->n--;
            job->queued = 0;
            break;
        }
    }
    job->queued = 0;
}

void c_runq_clear(rf_coord *c)
{
    /* the jobs are not touched (they may be freed already): they are all going away */
    for (int b = 0; b < c->nrunq; b++)
        free(c->runq[b].ring);
    free(c->runq);
    c->runq = NULL;
    c->nrunq = c->caprunq = 0;
    free(c->parked);
    c->parked = NULL;
    c->nparked = c->capparked = 0;
}

void c_jobs_wake_all(rf_coord *c)
{
    for (c_job *j = c->jobs; j; j = j->next)
        s_wake(c, j, 0);
}

/* Dispatches a lockstep timeline's pending DENOISE tasks together, or none of them;
 * *short_of_slots: they were ready but the free workers had too few slots. */
static int s_gang(rf_coord *c, c_job *job, c_timeline *tl, int *short_of_slots)
{
    int pending = 0, free_slots = 0;
    for (int k = 0; k < tl->nchunks; k++) {
        c_task *t = tl->chunks[k]->task;
        if (t->row.state == REELFARM__UNIT_STATE__UNIT_PENDING) {
            if (!s_ready(t))
                return 0;
            pending++;
        }
    }
    if (!pending)
        return 0;
    s_prune_free(c);
    for (int i = 0; i < c->nwfree; i++)
        if (c_worker_has_model(c->wfree[i], job->row.model_hash))
            free_slots += s_free(c->wfree[i]);
    if (free_slots < pending) {
        *short_of_slots = 1;
        return 0;
    }
    int n = 0;
    for (int k = 0; k < tl->nchunks && !c_job_terminal(job); k++) {
        c_task *t = tl->chunks[k]->task;
        if (t->row.state != REELFARM__UNIT_STATE__UNIT_PENDING)
            continue;
        c_worker *w = s_pick(c, t);
        if (!w)
            break;
        if (s_claim(c, t, w) == 0)
            n++;
    }
    return n;
}

/* Chunk results a dispatch pass may read to build DECODE latents (each ~10 us from the
 * store, packed): the first DECODE of a 10,000-chunk timeline read them all in one turn. */
#define DECODE_READS_PER_PASS 64

/* One dispatch for job (a task, or a lockstep gang); returns how many were claimed.
 * *waiting: nothing was claimed although a task is ready (no free worker fits it). */
static int s_dispatch_one(rf_coord *c, c_job *job, int *waiting)
{
    /* tasks before ready_from are running or finished; it only moves back on a requeue */
    while (job->ready_from < job->ntasks &&
           job->tasks[job->ready_from].row.state != REELFARM__UNIT_STATE__UNIT_PENDING)
        job->ready_from++;
    const int first_decode = job->ntasks - job->plan->segment_count;
    for (int i = job->ready_from; i < job->ntasks && !c_job_terminal(job); i++) {
        c_task *t = &job->tasks[i];
        if (!s_ready(t)) {
            if (t->row.kind == REELFARM__TASK_KIND__TASK_DECODE &&
                t->row.state == REELFARM__UNIT_STATE__UNIT_PENDING) {
                /* its timeline is still denoising: so are its other segments (contiguous) */
                const rf_plan_timeline *pt =
                    &job->plan->timelines[job->plan->segments[t->row.unit].timeline];
                int last = first_decode + pt->first_segment + pt->segment_count - 1;
                if (last > i)
                    i = last;
            }
            continue;
        }
        if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE && job->sync_every > 0) {
            int n =
                s_gang(c, job, &job->timelines[job->chunks[t->row.unit].plan.timeline], waiting);
            if (n)
                return n;
            continue;
        }
        int reads = 0;
        if (t->row.kind == REELFARM__TASK_KIND__TASK_DECODE) {
            /* its latent is read from the chunks' results when it is sent: a pass reads at
             * most DECODE_READS_PER_PASS of them (one segment at least), the rest waits for
             * the next turn, so the loop never stalls on a long timeline's results */
            const rf_plan_segment *seg = &job->plan->segments[t->row.unit];
            reads = c_timeline_reads(job, seg->timeline, seg->start - seg->warmup, seg->end);
            if (c->pass_reads > 0 && c->pass_reads + reads > DECODE_READS_PER_PASS) {
                c->pass_full = 1;
                *waiting = 1;
                return 0;
            }
        }
        c_worker *w = s_pick(c, t);
        if (!w && !(t->row.failed_workers && t->row.failed_workers[0])) {
            *waiting = 1;
            return 0; /* no free worker holds the job's model: nothing else fits either */
        }
        if (!w) {
            *waiting = 1;
            continue; /* only workers it failed on are free; another task may fit */
        }
        if (s_claim(c, t, w) == 0) {
            c->pass_reads += reads;
            return 1;
        }
    }
    return 0;
}

void c_dispatch(rf_coord *c)
{
    int64_t now = c_now_ms();
    if (now >= c->next_wake_ms) {
        /* a safety net, once a second: every unfinished job is looked at again, so a job
         * whose wake-up was missed (or not queued for want of memory) waits at most that */
        c->next_wake_ms = now + 1000;
        c_jobs_wake_all(c);
    }
    c->nparked = 0;
    c->pass_reads = 0;
    c->pass_full = 0;
    /* each job popped either dispatches (and goes to the back of its ring), waits for a
     * free worker that fits (parked: queued again after this pass), or has nothing ready
     * (left out until c_job_wake); the pass ends when no worker has a free slot */
    while (!c->need_reload && s_prune_free(c) > 0) {
        c_job *j = s_runq_pop(c);
        if (!j)
            break;
        if (c_job_terminal(j))
            continue;
        int waiting = 0;
        int got = s_dispatch_one(c, j, &waiting);
        if (got > 0) {
            s_wake(c, j, 0);
        } else if (waiting) {
            if (c->nparked == c->capparked) {
                int cap = c->capparked ? c->capparked * 2 : 64;
                void *p = realloc(c->parked, (size_t)cap * sizeof(*c->parked));
                if (!p)
                    continue; /* the periodic wake finds it again */
                c->parked = p;
                c->capparked = cap;
            }
            c->parked[c->nparked++] = j;
        }
    }
    /* parked jobs wait for the next pass; so do the queued ones when the slots ran out */
    for (int i = 0; i < c->nparked; i++)
        s_wake(c, c->parked[i], 0);
    c->nparked = 0;
    /* group commit: every claim of this pass becomes durable at once, then leaves */
    int n = c->nclaims;
    c->nclaims = 0;
    if (!n || c_commit(c))
        return; /* refused: the reload puts the tasks back as the store has them */
    for (int i = 0; i < n; i++) {
        struct c_claim *cl = &c->claims[i];
        c_task *t = cl->task;
        /* a worker lost while sending an earlier claim requeued its tasks: skip those */
        if (t->row.state != REELFARM__UNIT_STATE__UNIT_RUNNING || t->row.attempt != cl->attempt ||
            c_job_terminal(t->job))
            continue;
        s_send_assign(c, t, cl->worker, cl->attempt);
    }
    c_ops_pass_done(c);
    if (c->pass_full)
        c->dirty = 1; /* DECODE segments held back by the read budget go next turn */
}

/* ---- leases ----------------------------------------------------------------------- */

static void s_heap_up(struct c_lease *h, int i)
{
    struct c_lease e = h[i];
    while (i > 0 && h[(i - 1) / 2].deadline > e.deadline) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static void s_heap_down(struct c_lease *h, int n, int i)
{
    struct c_lease e = h[i];
    for (;;) {
        int k = 2 * i + 1;
        if (k >= n)
            break;
        if (k + 1 < n && h[k + 1].deadline < h[k].deadline)
            k++;
        if (h[k].deadline >= e.deadline)
            break;
        h[i] = h[k];
        i = k;
    }
    h[i] = e;
}

static int s_lease_add(rf_coord *c, c_task *t)
{
    if (c->nleases == c->capleases) {
        int cap = c->capleases ? c->capleases * 2 : 1024;
        void *p = realloc(c->leases, (size_t)cap * sizeof(*c->leases));
        if (!p)
            return -1;
        c->leases = p;
        c->capleases = cap;
    }
    c->leases[c->nleases].deadline = t->row.lease_deadline_ms;
    c->leases[c->nleases].task = t;
    c->leases[c->nleases].attempt = t->row.attempt;
    s_heap_up(c->leases, c->nleases++);
    return 0;
}

void c_leases_rebuild(rf_coord *c)
{
    c->nleases = 0;
    for (c_job *j = c->jobs; j; j = j->next) {
        if (c_job_terminal(j))
            continue;
        for (int i = 0; i < j->ntasks; i++)
            if (j->tasks[i].row.state == REELFARM__UNIT_STATE__UNIT_RUNNING)
                s_lease_add(c, &j->tasks[i]);
    }
    /* entries of finished attempts wait for their deadline: compact when they pile up */
    c->leases_limit = 4 * c->nleases > 65536 ? 4 * c->nleases : 65536;
}

/* A new lease (a dispatch). Without memory for the entry the heap is rebuilt from the
 * tasks, which always works, only slower. */
static void s_lease_push(rf_coord *c, c_task *t)
{
    if (c->nleases >= c->leases_limit || s_lease_add(c, t))
        c_leases_rebuild(c);
}

static void s_lease_expire(rf_coord *c, c_task *t)
{
    c_worker *w = s_owner(c, t);
    char name[128];
    snprintf(name, sizeof(name), "%s",
             w                       ? w->name
             : t->row.worker_name[0] ? t->row.worker_name
                                     : t->row.worker);
    rf_log_kv(RF_LOG_WARN, "sched", "lease expired", "task=%s attempt=%llu worker=%s", t->row.id,
              (unsigned long long)t->row.attempt, name);
    if (w)
        s_send_cancel(c, w, t->row.id, t->row.attempt, "lease expired");
    c_ops_lease_expired(c, t);
    c_task_requeue(c, t, name, "lease expired without progress", 1);
}

void c_leases_tick(rf_coord *c, int64_t now)
{
    /* only entries whose deadline has passed are looked at: O(log n) each */
    while (c->nleases > 0 && c->leases[0].deadline < now) {
        struct c_lease e = c->leases[0];
        c->leases[0] = c->leases[--c->nleases];
        if (c->nleases > 0)
            s_heap_down(c->leases, c->nleases, 0);
        c_task *t = e.task;
        if (t->row.state != REELFARM__UNIT_STATE__UNIT_RUNNING || t->row.attempt != e.attempt ||
            c_job_terminal(t->job))
            continue; /* that attempt ended */
        if (now <= t->row.lease_deadline_ms) {
            s_lease_push(c, t); /* extended by progress since: wait for the new deadline */
            continue;
        }
        s_lease_expire(c, t);
    }
}

/* ---- outcomes --------------------------------------------------------------------- */

void c_on_progress(rf_coord *c, c_worker *w, rf_wire_msg *msg)
{
    const Reelfarm__Progress *p = msg->env->progress;
    c_task *t = c_fence(c, w, p->task_id, p->attempt, "progress");
    if (!t)
        return;
    t->row.lease_deadline_ms = c_now_ms() + c->cfg.lease_ms;
    if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE && p->steps_done <= p->steps_total)
        t->steps_done = (int)p->steps_done;
    int64_t now = c_now_ms();
    c_job_rate_sample(t->job, now);
    if (now - t->job->rate_t0_ms >= 250) {
        t->job->rate_t0_ms = now;
        c_job_notify(c, t->job, REELFARM__EVENT_KIND__EVENT_PROGRESS);
    }
}

static int s_result_blob(rf_coord *c, c_task *t, rf_wire_msg *msg, rf_error *err)
{
    c_job *job = t->job;
    if (t->row.kind == REELFARM__TASK_KIND__TASK_ENCODE_TEXT) {
        const rf_wire_blob *b = rf_wire_msg_blob(msg, "text/0");
        if (!b || b->dtype != RF_DTYPE_F32 || b->ndim != 2)
            return rf_error_set(err, RF_EPROTO, "ENCODE_TEXT result needs an f32 [L, D] 'text/0'");
        int rc = c_tensor_put(c, b, "", t->row.result, err);
        if (!rc)
            rc = rf_store_text_put(c->store, job->row.model_hash, job->prompts[t->row.unit],
                                   t->row.result, err);
        if (!rc)
            snprintf(job->text[t->row.unit], RF_HASH_HEX, "%s", t->row.result);
        return rc;
    }
    if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE) {
        const c_chunk *ch = &job->chunks[t->row.unit];
        const rf_wire_blob *b = rf_wire_msg_blob(msg, "latent");
        if (!b || b->dtype != RF_DTYPE_F32 || b->ndim < 2 || b->frame_axis != 1 ||
            b->shape[1] != ch->plan.end - ch->plan.start || b->frame_start != ch->plan.start)
            return rf_error_set(err, RF_EPROTO,
                                "DENOISE result needs an f32 'latent' framed on axis 1 holding "
                                "frames [%d, %d)",
                                ch->plan.start, ch->plan.end);
        rf_chunk_state *s = rf_chunk_state_new(ch->plan.start, ch->plan.end - ch->plan.start, err);
        if (!s)
            return err->code;
        int rc =
            rf_chunk_state_add(s, "latent", b->ndim, b->shape, 1, b->data, err) ? 0 : RF_EPROTO;
        void *buf = NULL;
        size_t len = 0;
        if (!rc)
            rc = rf_chunk_state_pack(s, (uint32_t)job->spec->steps, 0, &buf, &len, err);
        if (!rc)
            rc = rf_store_blob_put_ref(c->store, buf, len, job->row.id, t->row.result, err);
        free(buf);
        rf_chunk_state_destroy(&s);
        return rc;
    }
    if (t->row.kind == REELFARM__TASK_KIND__TASK_ENCODE_MEDIA)
        return c_inputs_result(c, t, msg, err);
    const rf_wire_blob *b = rf_wire_msg_blob(msg, "segment");
    if (!b || b->dtype != RF_DTYPE_U8 || b->len == 0)
        return rf_error_set(err, RF_EPROTO, "DECODE result needs a non-empty u8 'segment'");
    int rc = rf_store_blob_put(c->store, b->data, b->len, job->row.id, t->row.result, err);
    if (!rc)
        job->done_segments++;
    return rc;
}

/* ---- results kept until durable ----------------------------------------------------- */

static void s_apply_result(rf_coord *c, c_worker *w, c_task *t, rf_wire_msg *msg, int kept);

static int s_held_add(struct c_held **arr, int *n, int *cap)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        void *p = realloc(*arr, (size_t)nc * sizeof(**arr));
        if (!p)
            return -1;
        *arr = p;
        *cap = nc;
    }
    return (*n)++;
}

/* Takes msg (from w) into the held results; returns the kept message (msg itself, not
 * taken, when there is no memory for it). */
static rf_wire_msg *s_hold(rf_coord *c, const c_worker *w, rf_wire_msg *msg)
{
    int i = s_held_add(&c->held, &c->nheld, &c->capheld);
    if (i < 0)
        return msg;
    c->held[i].msg = *msg;
    s_copy(c->held[i].worker, sizeof(c->held[i].worker), w->id);
    memset(msg, 0, sizeof(*msg));
    return &c->held[i].msg;
}

void c_results_durable(rf_coord *c)
{
    /* the result being applied (a commit in the middle of it: an event to a watcher) stays
     * held: the rest of its writes are in the next transaction */
    int keep = c->held_busy >= 0 && c->held_busy < c->nheld ? c->held_busy : -1;
    for (int i = 0; i < c->nheld; i++)
        if (i != keep)
            rf_wire_msg_release(&c->held[i].msg);
    c->nheld = 0;
    if (keep >= 0) {
        c->held[0] = c->held[keep];
        c->held_busy = 0;
        c->nheld = 1;
    }
}

void c_results_refused(rf_coord *c)
{
    for (int i = 0; i < c->nheld; i++) {
        int k = s_held_add(&c->replay, &c->nreplay, &c->capreplay);
        if (k < 0) { /* no memory: its attempt runs out its lease and is computed again */
            rf_wire_msg_release(&c->held[i].msg);
            continue;
        }
        c->replay[k] = c->held[i];
    }
    c->nheld = 0;
    c->held_busy = -1;
}

void c_results_replay(rf_coord *c)
{
    struct c_held *list = c->replay;
    int n = c->nreplay;
    c->replay = NULL;
    c->nreplay = c->capreplay = 0;
    for (int i = 0; i < n; i++) {
        c_worker *w = c_worker_find(c, list[i].worker);
        if (w && strcmp(w->id, list[i].worker) == 0 && !c->need_reload) {
            rf_log_kv(RF_LOG_INFO, "sched", "result kept through the pause applied",
                      "task=%s worker=%s", list[i].msg.env->result->task_id, w->name);
            c_on_result(c, w, &list[i].msg); /* refused again: it is held again */
        }
        rf_wire_msg_release(&list[i].msg);
    }
    free(list);
}

void c_results_free(rf_coord *c)
{
    c_results_durable(c);
    for (int i = 0; i < c->nreplay; i++)
        rf_wire_msg_release(&c->replay[i].msg);
    free(c->held);
    free(c->replay);
    c->held = c->replay = NULL;
    c->nheld = c->capheld = c->nreplay = c->capreplay = 0;
}

void c_on_result(rf_coord *c, c_worker *w, rf_wire_msg *in)
{
    c_task *t = c_fence(c, w, in->env->result->task_id, in->env->result->attempt, "result");
    if (!t)
        return;
    /* kept until the commit that makes it durable: a refused commit cannot lose it */
    rf_wire_msg *msg = s_hold(c, w, in);
    c->held_busy = msg != in ? c->nheld - 1 : -1;
    s_apply_result(c, w, t, msg, msg != in);
    c->held_busy = -1;
}

/* The work of c_on_result on the kept message (kept: it is in rf_coord.held). */
static void s_apply_result(rf_coord *c, c_worker *w, c_task *t, rf_wire_msg *msg, int kept)
{
    const Reelfarm__TaskResult *r = msg->env->result;
    rf_error err;
    int rc = rf_store_begin(c->store, &err);
    if (!rc)
        rc = s_result_blob(c, t, msg, &err);
    if ((rc == RF_ENOSPC || rc == RF_EIO) && kept) {
        /* the store refused it (disk full): nobody is blamed; it is applied again when the
         * store works again (c_results_replay) */
        c_store_failed(c, &err);
        return;
    }
    if (rc == RF_ENOSPC || rc == RF_EIO) {
        /* refused and not kept (no memory): the attempt is requeued, nobody blamed, when
         * the store works again (c_jobs_resume) */
        if (c->nlost == c->caplost) {
            int cap = c->caplost ? c->caplost * 2 : 16;
            void *p = realloc(c->lost, (size_t)cap * sizeof(*c->lost));
            if (p) {
                c->lost = p;
                c->caplost = cap;
            }
        }
        if (c->nlost < c->caplost) {
            snprintf(c->lost[c->nlost].task_id, RF_STORE_ID_MAX, "%s", t->row.id);
            c->lost[c->nlost++].attempt = t->row.attempt;
        }
        c_store_failed(c, &err);
        return;
    }
    if (rc) {
        w->tasks_failed++;
        c_ops_task_end(c, t, "failed", r->compute_seconds);
        c_task_requeue(c, t, w->name, err.msg, 1);
        return;
    }
    c_ops_task_end(c, t, "ok", r->compute_seconds);
    if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE)
        c_ops_state_bytes(c, "result", msg->blobs, msg->n_blobs);
    s_release(c, t);
    w->tasks_done++;
    t->row.state = REELFARM__UNIT_STATE__UNIT_DONE;
    if (t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE) {
        t->steps_done = t->job->spec->steps;
        t->job->timelines[t->job->chunks[t->row.unit].plan.timeline].ndone++;
    }
    c_task_put(c, t);
    c_job_rate_sample(t->job, c_now_ms());
    rf_log_kv(RF_LOG_INFO, "sched", "task done", "task=%s attempt=%llu worker=%s seconds=%.3f",
              t->row.id, (unsigned long long)t->row.attempt, w->name, r->compute_seconds);
    c_job_notify(c, t->job, REELFARM__EVENT_KIND__EVENT_TASK);
    c_job_advance(c, t->job);
    c_job_wake(c, t->job); /* its end may have made others ready (text -> chunks -> segments) */
}

void c_on_task_error(rf_coord *c, c_worker *w, rf_wire_msg *msg)
{
    const Reelfarm__TaskError *e = msg->env->task_error;
    c_task *t = c_fence(c, w, e->task_id, e->attempt, "error");
    if (!t)
        return;
    const char *text = e->message && e->message[0] ? e->message : rf_status_name((int)e->code);
    if (w->draining && e->code == RF_ECANCELED) {
        c_task_requeue(c, t, w->name, "handed back by a draining worker", 0);
        return;
    }
    w->tasks_failed++;
    c_ops_task_end(c, t, "failed", -1);
    if (!e->retryable) {
        s_release(c, t);
        t->row.state = REELFARM__UNIT_STATE__UNIT_FAILED;
        free(t->row.error);
        t->row.error = strdup(text);
        c_task_put(c, t);
        char why[1400];
        snprintf(why, sizeof(why), "task %s: %s (worker %s; not retryable)", t->row.id, text,
                 w->name);
        c_job_fail(c, t->job, why);
        return;
    }
    c_task_requeue(c, t, w->name, text, 1);
}
