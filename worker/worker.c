/* worker.c - the worker's protocol loop, its task table and its compute thread.
 *
 * Main thread: one DEALER to the coordinator, polled with an inproc PAIR on which the
 * compute thread reports finished units. Every message the worker sends is rebuilt
 * from task state at the moment it is sent, so after a reconnect the worker simply
 * says Hello and re-sends what each task is waiting on (an OverlapUp or a result);
 * the coordinator's fence decides what still counts. The compute thread takes one
 * unit at a time from a queue: a sampler step of a chunk, the prompts of an
 * ENCODE_TEXT, a DECODE segment. While a unit runs, the main thread touches only the
 * task's atomic cancel flag and reads its progress counter.
 */
#include "worker.h"

#include "chunk_wire.h"
#include "curve.h"
#include "log.h"
#include "wire.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define COMP            "worker"
#define MAX_TASKS_LIMIT 256
#define MAX_PROMPTS     64

typedef enum s_tstate {
    T_READY = 0, /* queued for its next compute unit */
    T_COMPUTING, /* a unit is on the compute thread */
    T_WAITING,   /* sent OverlapUp, waiting for OverlapDown */
    T_FINISHED,  /* outputs ready, result not yet sent (disconnected) */
} s_tstate;

typedef struct s_task {
    int used;
    char id[64];
    char job_id[64];
    uint64_t attempt;
    int kind;
    uint32_t lease_ms;
    int64_t next_progress_ms;
    s_tstate state;
    rf_wire_msg assign; /* the TaskAssign as received: owns the envelope and input blobs */

    /* DENOISE */
    rf_exec_denoise d;
    rf_chunk_state *cs;
    int step, step_end, round;
    int sync_every, checkpoint_every, checkpoint_at_end;
    rf_cs_span overlaps[RF_CS_MAX_SPANS];
    int noverlaps;
    int handback; /* draining: checkpoint at the next round boundary and hand back */

    /* ENCODE_TEXT outputs */
    int nprompts;
    float *text[MAX_PROMPTS];
    int64_t text_rows[MAX_PROMPTS], text_dim[MAX_PROMPTS];

    /* ENCODE_MEDIA input and output */
    rf_exec_media media;
    float *media_z;
    int64_t media_T, media_h, media_w;

    /* DECODE outputs */
    rf_exec_decode dec;
    void *seg;
    size_t seg_len;
    uint32_t seg_frames;

    /* shared with the compute thread */
    atomic_int cancel;
    atomic_int progress;
    int unit_rc;
    rf_error unit_err;
    double compute_s; /* wall seconds of this attempt's units on the compute thread */
    struct s_task *next_queued;
} s_task;

struct rf_worker {
    rf_worker_config cfg;
    char name[128];
    rf_model_set *models; /* what it serves; executors are loaded on the compute thread */
    void *zctx;
    void *sock;            /* DEALER to the coordinator (NULL while backing off) */
    rf_curve_monitor *mon; /* CURVE handshake monitor of sock (NULL without CURVE) */
    void *notify;          /* PAIR: compute -> main */
    char notify_ep[64];
    volatile sig_atomic_t drain_requested;
    int draining;
    int drain_sent;

    /* session */
    int connected; /* HelloAck received on the current socket */
    int heartbeat_ms, liveness;
    int64_t last_rx_ms, last_tx_ms, next_connect_ms, hello_sent_ms;
    int backoff_ms;
    uint64_t beat_seq;
    uint64_t request_seq;
    char worker_id[64];

    s_task tasks[MAX_TASKS_LIMIT];
    int ntasks_max;

    /* compute thread */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    s_task *queue_head, *queue_tail;
    int stopping;
    int computing; /* a unit is on the compute thread */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- compute thread ------------------------------------------------------------- */

static int s_progress_cb(void *ctx, int done)
{
    s_task *t = ctx;
    atomic_store(&t->progress, done);
    return atomic_load(&t->cancel);
}

static void s_run_unit_body(rf_worker *self, s_task *t);

/* One unit, timed: the seconds go into the TaskResult (compute_seconds), so the
 * coordinator's task durations and a job's compute are the engine's, not the wire's. */
static void s_run_unit(rf_worker *self, s_task *t)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    s_run_unit_body(self, t);
    clock_gettime(CLOCK_MONOTONIC, &b);
    t->compute_s += (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
}

static void s_run_unit_body(rf_worker *self, s_task *t)
{
    rf_error_clear(&t->unit_err);
    t->unit_rc = 0;
    atomic_store(&t->progress, 0);
    rf_executor *ex =
        rf_model_set_get(self->models, t->assign.env->assign->model_hash, &t->unit_err);
    if (!ex) {
        t->unit_rc = t->unit_err.code ? (int)t->unit_err.code : RF_EIO;
        return;
    }
    const rf_executor_ops *ops = ex->ops;
    if (t->kind == REELFARM__TASK_KIND__TASK_DENOISE) {
        if (!t->cs) {
            t->cs = ops->denoise_init(ex->ctx, &t->d, &t->unit_err);
            if (!t->cs) {
                t->unit_rc = t->unit_err.code ? (int)t->unit_err.code : RF_EIO;
                return;
            }
        }
        t->unit_rc = ops->denoise_steps(ex->ctx, &t->d, t->cs, t->step, t->step + 1, s_progress_cb,
                                        t, &t->unit_err);
        if (!t->unit_rc)
            t->step++;
    } else if (t->kind == REELFARM__TASK_KIND__TASK_ENCODE_TEXT) {
        const Reelfarm__EncodeText *et = t->assign.env->assign->encode_text;
        for (int i = 0; i < t->nprompts && !t->unit_rc; i++) {
            t->unit_rc = ops->encode_text(ex->ctx, et->prompts[i], &t->text[i], &t->text_rows[i],
                                          &t->text_dim[i], &t->unit_err);
            atomic_store(&t->progress, i + 1);
            if (!t->unit_rc && atomic_load(&t->cancel))
                t->unit_rc = rf_error_set(&t->unit_err, RF_ECANCELED, "canceled");
        }
    } else if (t->kind == REELFARM__TASK_KIND__TASK_ENCODE_MEDIA) {
        t->unit_rc = ops->encode_media(ex->ctx, &t->media, &t->media_z, &t->media_T, &t->unit_err);
    } else if (t->kind == REELFARM__TASK_KIND__TASK_DECODE) {
        t->unit_rc = ops->decode(ex->ctx, &t->dec, &t->seg, &t->seg_len, &t->seg_frames,
                                 s_progress_cb, t, &t->unit_err);
    } else {
        t->unit_rc = rf_error_set(&t->unit_err, RF_EUNSUPPORTED, "task kind %d", t->kind);
    }
}

static void *s_compute_main(void *arg)
{
    rf_worker *self = arg;
    void *pair = zmq_socket(self->zctx, ZMQ_PAIR);
    zmq_connect(pair, self->notify_ep);
    for (;;) {
        pthread_mutex_lock(&self->mu);
        while (!self->queue_head && !self->stopping)
            pthread_cond_wait(&self->cv, &self->mu);
        if (self->stopping) {
            pthread_mutex_unlock(&self->mu);
            break;
        }
        s_task *t = self->queue_head;
        self->queue_head = t->next_queued;
        if (!self->queue_head)
            self->queue_tail = NULL;
        pthread_mutex_unlock(&self->mu);
        s_run_unit(self, t);
        zmq_send(pair, &t, sizeof(t), 0);
    }
    zmq_close(pair);
    return NULL;
}

static void s_enqueue(rf_worker *self, s_task *t)
{
    t->state = T_COMPUTING;
    t->next_queued = NULL;
    self->computing++;
    pthread_mutex_lock(&self->mu);
    if (self->queue_tail)
        self->queue_tail->next_queued = t;
    else
        self->queue_head = t;
    self->queue_tail = t;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
}

/* ---- sending -------------------------------------------------------------------- */

static int s_send(rf_worker *self, Reelfarm__Envelope *env, const rf_wire_blob *blobs, size_t n)
{
    if (!self->sock)
        return RF_EAGAIN;
    rf_wire_msg msg;
    memset(&msg, 0, sizeof(msg));
    env->request_id = ++self->request_seq;
    msg.env = env;
    msg.blobs = (rf_wire_blob *)blobs;
    msg.n_blobs = n;
    rf_error err;
    int rc = rf_wire_send(self->sock, &msg, &err);
    if (rc)
        rf_log_kv(RF_LOG_WARN, COMP, "send failed", "kind=%s error=\"%s\"",
                  rf_wire_kind_name(env->kind_case), err.msg);
    else
        self->last_tx_ms = s_now_ms();
    return rc;
}

static void s_send_hello(rf_worker *self)
{
    Reelfarm__Hello h = REELFARM__HELLO__INIT;
    h.name = self->name;
    h.backend =
        (char *)(self->cfg.backend ? self->cfg.backend : rf_model_set_backend(self->models));
    h.memory_bytes = self->cfg.memory_bytes;
    h.threads = (uint32_t)self->cfg.threads;
    h.tp = (uint32_t)(self->cfg.tp > 0 ? self->cfg.tp : 1);
    char *hashes[RF_MODEL_SET_MAX];
    int nh = rf_model_set_count(self->models);
    for (int i = 0; i < nh; i++)
        hashes[i] = (char *)rf_model_set_hash(self->models, i);
    h.n_model_hashes = (size_t)nh;
    h.model_hashes = hashes;
    h.software = "reelfarm-worker";
    h.max_tasks = (uint32_t)self->ntasks_max;
    Reelfarm__ChunkKey keys[MAX_TASKS_LIMIT], *kp[MAX_TASKS_LIMIT];
    size_t nk = 0;
    for (int i = 0; i < self->ntasks_max; i++) {
        s_task *t = &self->tasks[i];
        if (!t->used || t->kind != REELFARM__TASK_KIND__TASK_DENOISE || !t->cs)
            continue;
        Reelfarm__ChunkKey k = REELFARM__CHUNK_KEY__INIT;
        k.job_id = t->job_id;
        k.timeline = t->assign.env->assign->denoise->timeline;
        k.chunk = t->assign.env->assign->denoise->chunk;
        k.step = (uint32_t)t->step;
        keys[nk] = k;
        kp[nk] = &keys[nk];
        nk++;
    }
    h.n_resident = nk;
    h.resident = kp;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_HELLO;
    env.hello = &h;
    s_send(self, &env, NULL, 0);
    self->hello_sent_ms = s_now_ms();
}

static void s_send_heartbeat(rf_worker *self)
{
    Reelfarm__Heartbeat hb = REELFARM__HEARTBEAT__INIT;
    Reelfarm__TaskRef refs[MAX_TASKS_LIMIT], *rp[MAX_TASKS_LIMIT];
    size_t n = 0;
    for (int i = 0; i < self->ntasks_max; i++) {
        if (!self->tasks[i].used)
            continue;
        Reelfarm__TaskRef r = REELFARM__TASK_REF__INIT;
        r.task_id = self->tasks[i].id;
        r.attempt = self->tasks[i].attempt;
        refs[n] = r;
        rp[n] = &refs[n];
        n++;
    }
    hb.seq = ++self->beat_seq;
    hb.time_ms = s_wall_ms();
    hb.n_running = n;
    hb.running = rp;
    hb.draining = self->draining;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_HEARTBEAT;
    env.heartbeat = &hb;
    s_send(self, &env, NULL, 0);
}

static void s_send_progress(rf_worker *self, s_task *t)
{
    Reelfarm__Progress p = REELFARM__PROGRESS__INIT;
    p.task_id = t->id;
    p.attempt = t->attempt;
    if (t->kind == REELFARM__TASK_KIND__TASK_DENOISE) {
        int inflight = t->state == T_COMPUTING ? atomic_load(&t->progress) : 0;
        p.steps_done = (uint32_t)(t->step + inflight);
        p.steps_total = (uint32_t)t->step_end;
    } else if (t->kind == REELFARM__TASK_KIND__TASK_DECODE) {
        p.frames_decoded = (uint32_t)atomic_load(&t->progress);
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_PROGRESS;
    env.progress = &p;
    if (s_send(self, &env, NULL, 0) == 0)
        t->next_progress_ms = s_now_ms() + (t->lease_ms ? t->lease_ms / 3 : 1000);
}

static void s_send_task_error(rf_worker *self, const char *task_id, uint64_t attempt, int code,
                              const char *message, int retryable)
{
    Reelfarm__TaskError te = REELFARM__TASK_ERROR__INIT;
    te.task_id = (char *)task_id;
    te.attempt = attempt;
    te.code = (uint32_t)code;
    te.message = (char *)message;
    te.retryable = retryable;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_TASK_ERROR;
    env.task_error = &te;
    s_send(self, &env, NULL, 0);
}

/* The overlap frames of every framed tensor, named after the tensor. */
static int s_send_overlap_up(rf_worker *self, s_task *t)
{
    rf_error err;
    rf_chunk_state *part = NULL;
    if (t->noverlaps) {
        part = rf_chunk_state_extract(t->cs, t->overlaps, t->noverlaps, &err);
    } else { /* nothing overlaps: the scalars only, no frames */
        part = rf_chunk_state_new(t->cs->window_start, t->cs->window_len, &err);
        for (int i = 0; part && i < t->cs->nscalars; i++)
            part->scalars[part->nscalars++] = t->cs->scalars[i];
    }
    if (!part)
        return err.code;
    /* rounds are numbered from 1: this OverlapUp completes round t->round + 1 */
    rf_chunk_wire w;
    int rc =
        rf_chunk_wire_from_state(&w, part, "", (uint32_t)t->step, (uint32_t)(t->round + 1), &err);
    if (rc) {
        rf_chunk_state_destroy(&part);
        return rc;
    }
    if (!t->noverlaps)
        w.msg.n_held = 0;
    Reelfarm__OverlapUp up = REELFARM__OVERLAP_UP__INIT;
    up.task_id = t->id;
    up.attempt = t->attempt;
    up.job_id = t->job_id;
    up.timeline = t->assign.env->assign->denoise->timeline;
    up.chunk = t->assign.env->assign->denoise->chunk;
    up.state = &w.msg;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_OVERLAP_UP;
    env.overlap_up = &up;
    rc = s_send(self, &env, w.blobs, t->noverlaps ? w.n_blobs : 0);
    rf_chunk_state_destroy(&part);
    return rc;
}

static int s_send_checkpoint(rf_worker *self, s_task *t)
{
    rf_error err;
    rf_chunk_wire w;
    int rc =
        rf_chunk_wire_from_state(&w, t->cs, "state/", (uint32_t)t->step, (uint32_t)t->round, &err);
    if (rc)
        return rc;
    const Reelfarm__Denoise *dn = t->assign.env->assign->denoise;
    Reelfarm__Checkpoint cp = REELFARM__CHECKPOINT__INIT;
    Reelfarm__FrameRange fr = REELFARM__FRAME_RANGE__INIT;
    fr.start = (uint32_t)t->d.window_start;
    fr.end = (uint32_t)(t->d.window_start + t->d.window_len);
    cp.task_id = t->id;
    cp.attempt = t->attempt;
    cp.job_id = t->job_id;
    cp.timeline = dn->timeline;
    cp.chunk = dn->chunk;
    cp.frames = &fr;
    cp.state = &w.msg;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_CHECKPOINT;
    env.checkpoint = &cp;
    return s_send(self, &env, w.blobs, w.n_blobs);
}

static int s_send_result(rf_worker *self, s_task *t)
{
    Reelfarm__TaskResult r = REELFARM__TASK_RESULT__INIT;
    r.task_id = t->id;
    r.attempt = t->attempt;
    r.kind = (Reelfarm__TaskKind)t->kind;
    r.compute_seconds = t->compute_s;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_RESULT;
    env.result = &r;
    rf_wire_blob blobs[RF_CS_MAX_TENSORS + MAX_PROMPTS + 1];
    char names[MAX_PROMPTS][32];
    size_t nb = 0;
    rf_chunk_wire w;
    rf_error err;
    if (t->kind == REELFARM__TASK_KIND__TASK_DENOISE) {
        int rc = rf_chunk_wire_from_state(&w, t->cs, "state/", (uint32_t)t->step,
                                          (uint32_t)t->round, &err);
        if (rc)
            return rc;
        r.state = &w.msg;
        const rf_cs_tensor *x = rf_chunk_state_tensor(t->cs, RF_EXEC_LATENT);
        if (!x)
            return RF_EINVAL;
        rf_wire_blob *b = &blobs[nb++];
        memset(b, 0, sizeof(*b));
        b->name = "latent";
        b->dtype = RF_DTYPE_F32;
        b->ndim = x->ndim;
        memcpy(b->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
        b->frame_axis = x->frame_axis;
        b->frame_start = t->d.window_start;
        b->data = x->data;
        b->len = rf_cs_numel(x) * sizeof(float);
        if (t->checkpoint_at_end &&
            rf_chunk_wire_append(&w, blobs, &nb, sizeof(blobs) / sizeof(blobs[0]), &err))
            return err.code;
    } else if (t->kind == REELFARM__TASK_KIND__TASK_ENCODE_TEXT) {
        for (int i = 0; i < t->nprompts; i++) {
            rf_wire_blob *b = &blobs[nb++];
            memset(b, 0, sizeof(*b));
            snprintf(names[i], sizeof(names[i]), "text/%d", i);
            b->name = names[i];
            b->dtype = RF_DTYPE_F32;
            b->ndim = 2;
            b->shape[0] = t->text_rows[i];
            b->shape[1] = t->text_dim[i];
            b->frame_axis = -1;
            b->data = t->text[i];
            b->len = (size_t)(t->text_rows[i] * t->text_dim[i]) * sizeof(float);
        }
    } else if (t->kind == REELFARM__TASK_KIND__TASK_ENCODE_MEDIA) {
        rf_wire_blob *b = &blobs[nb++];
        memset(b, 0, sizeof(*b));
        b->name = "latent";
        b->dtype = RF_DTYPE_F32;
        b->ndim = 4;
        b->shape[0] = 16;
        b->shape[1] = t->media_T;
        b->shape[2] = t->media_h;
        b->shape[3] = t->media_w;
        b->frame_axis = 1;
        b->data = t->media_z;
        b->len = (size_t)(16 * t->media_T * t->media_h * t->media_w) * sizeof(float);
        r.frames = (uint32_t)t->media_T;
    } else if (t->kind == REELFARM__TASK_KIND__TASK_DECODE) {
        rf_wire_blob *b = &blobs[nb++];
        memset(b, 0, sizeof(*b));
        b->name = "segment";
        b->dtype = RF_DTYPE_U8;
        b->ndim = 1;
        b->shape[0] = (int64_t)t->seg_len;
        b->frame_axis = -1;
        b->data = t->seg;
        b->len = t->seg_len;
        r.frames = t->seg_frames;
        r.container = (char *)rf_codec_extension(t->dec.codec);
    }
    return s_send(self, &env, blobs, nb);
}

/* ---- task table ------------------------------------------------------------------- */

static void s_task_free(s_task *t)
{
    rf_wire_msg_release(&t->assign);
    rf_chunk_state_destroy(&t->cs);
    for (int i = 0; i < t->nprompts; i++)
        free(t->text[i]);
    free(t->seg);
    free(t->media_z);
    memset(t, 0, sizeof(*t));
}

static s_task *s_find(rf_worker *self, const char *id, uint64_t attempt)
{
    for (int i = 0; i < self->ntasks_max; i++) {
        s_task *t = &self->tasks[i];
        if (t->used && strcmp(t->id, id) == 0 && (attempt == 0 || t->attempt == attempt))
            return t;
    }
    return NULL;
}

static int s_active(const rf_worker *self)
{
    int n = 0;
    for (int i = 0; i < self->ntasks_max; i++)
        n += self->tasks[i].used;
    return n;
}

/* Finishes a task: sends its result (kept for re-sending while disconnected). */
static void s_finish(rf_worker *self, s_task *t)
{
    t->state = T_FINISHED;
    if (self->connected && s_send_result(self, t) == 0) {
        rf_log_kv(RF_LOG_INFO, COMP, "task done", "task=%s attempt=%llu", t->id,
                  (unsigned long long)t->attempt);
        s_task_free(t);
    }
}

/* The chunk reached a round boundary after its fused values were applied. */
static void s_after_round(rf_worker *self, s_task *t)
{
    if (t->checkpoint_every > 0 && t->round % t->checkpoint_every == 0 && t->step < t->step_end)
        s_send_checkpoint(self, t);
    if (t->step >= t->step_end) {
        s_finish(self, t);
    } else if (t->handback) {
        s_send_checkpoint(self, t);
        s_send_task_error(self, t->id, t->attempt, RF_ECANCELED,
                          "worker draining: chunk handed back with a checkpoint", 1);
        rf_log_kv(RF_LOG_INFO, COMP, "chunk handed back", "task=%s step=%d round=%d", t->id,
                  t->step, t->round);
        s_task_free(t);
    } else {
        s_enqueue(self, t);
    }
}

static int s_is_sync_point(const s_task *t)
{
    if (t->sync_every <= 0)
        return 0;
    return t->step > 0 && t->step % t->sync_every == 0; /* round r ends after step r*sync */
}

static void s_unit_done(rf_worker *self, s_task *t)
{
    self->computing--;
    if (atomic_load(&t->cancel)) {
        rf_log_kv(RF_LOG_INFO, COMP, "task canceled", "task=%s", t->id);
        s_task_free(t);
        return;
    }
    if (t->unit_rc) {
        int retryable =
            t->unit_rc != RF_EINVAL && t->unit_rc != RF_ESHAPE && t->unit_rc != RF_EUNSUPPORTED;
        rf_log_kv(RF_LOG_WARN, COMP, "task failed", "task=%s code=%s error=\"%s\"", t->id,
                  rf_status_name(t->unit_rc), t->unit_err.msg);
        s_send_task_error(self, t->id, t->attempt, t->unit_rc, t->unit_err.msg, retryable);
        s_task_free(t);
        return;
    }
    if (t->kind != REELFARM__TASK_KIND__TASK_DENOISE) {
        s_finish(self, t);
        return;
    }
    if (s_is_sync_point(t)) {
        t->state = T_WAITING;
        if (self->connected)
            s_send_overlap_up(self, t);
        return;
    }
    if (t->step >= t->step_end) {
        s_finish(self, t);
    } else if (t->handback && t->sync_every <= 0) {
        s_send_checkpoint(self, t);
        s_send_task_error(self, t->id, t->attempt, RF_ECANCELED,
                          "worker draining: chunk handed back with a checkpoint", 1);
        s_task_free(t);
    } else {
        s_enqueue(self, t);
    }
}

/* Fills a DENOISE task from its message; the state comes from the message (restore),
 * or is made on the compute thread (fresh). */
static int s_setup_denoise(s_task *t, rf_error *err)
{
    const Reelfarm__TaskAssign *a = t->assign.env->assign;
    const Reelfarm__Denoise *dn = a->denoise;
    if (!dn || !dn->frames || dn->frames->end <= dn->frames->start)
        return rf_error_set(err, RF_EPROTO, "DENOISE without a frame range");
    if (dn->step_end > dn->steps_total || dn->step_begin > dn->step_end)
        return rf_error_set(err, RF_EPROTO, "DENOISE steps [%u, %u) outside 0..%u", dn->step_begin,
                            dn->step_end, dn->steps_total);
    if (dn->width % 16 || dn->height % 16 || !dn->width || !dn->height)
        return rf_error_set(err, RF_EPROTO, "DENOISE size %ux%u is not a multiple of 16", dn->width,
                            dn->height);
    rf_exec_denoise *d = &t->d;
    d->seed = dn->seed;
    d->timeline = (int)dn->timeline;
    d->window_start = dn->frames->start;
    d->window_len = (int64_t)dn->frames->end - dn->frames->start;
    d->timeline_frames = dn->timeline_frames;
    d->steps_total = (int)dn->steps_total;
    d->sampler = dn->sampler;
    d->shift = dn->shift;
    d->guidance = dn->guidance;
    d->width = (int)dn->width;
    d->height = (int)dn->height;
    const rf_wire_blob *ctx = rf_wire_msg_blob(&t->assign, "context");
    if (!ctx || ctx->dtype != RF_DTYPE_F32 || ctx->ndim != 2)
        return rf_error_set(err, RF_EPROTO, "DENOISE needs a context blob [L, dim] f32");
    d->context = ctx->data;
    d->ctx_rows = ctx->shape[0];
    d->ctx_dim = ctx->shape[1];
    const rf_wire_blob *neg = rf_wire_msg_blob(&t->assign, "negative_context");
    if (neg) {
        if (neg->dtype != RF_DTYPE_F32 || neg->ndim != 2 || neg->shape[1] != ctx->shape[1])
            return rf_error_set(err, RF_EPROTO, "negative_context must be [L, %lld] f32",
                                (long long)ctx->shape[1]);
        d->negative = neg->data;
        d->neg_rows = neg->shape[0];
    }
    /* inputs: condition latents [16, n, h, w] named by Denoise.conditions */
    if (dn->n_conditions > RF_EXEC_MAX_COND || dn->n_conditions != dn->n_condition_frames)
        return rf_error_set(err, RF_EPROTO,
                            "DENOISE with %zu conditions and %zu condition ranges (at most %d)",
                            dn->n_conditions, dn->n_condition_frames, RF_EXEC_MAX_COND);
    if (!(dn->strength >= 0.0f && dn->strength <= 1.0f))
        return rf_error_set(err, RF_EPROTO, "DENOISE strength %g outside [0, 1]",
                            (double)dn->strength);
    d->ncond = (int)dn->n_conditions;
    d->strength = dn->strength;
    for (int i = 0; i < d->ncond; i++) {
        const Reelfarm__FrameRange *fr = dn->condition_frames[i];
        const char *name = dn->conditions[i] ? dn->conditions[i]->name : NULL;
        const rf_wire_blob *b = name ? rf_wire_msg_blob(&t->assign, name) : NULL;
        if (!fr || fr->end <= fr->start || !b || b->dtype != RF_DTYPE_F32 || b->ndim != 4 ||
            b->shape[0] != 16 || b->shape[1] != (int64_t)fr->end - fr->start ||
            b->shape[2] != dn->height / 8 || b->shape[3] != dn->width / 8)
            return rf_error_set(err, RF_EPROTO,
                                "DENOISE condition %d ('%s') must be an f32 blob [16, frames of "
                                "its range, %u, %u]",
                                i, name ? name : "", dn->height / 8, dn->width / 8);
        d->cond[i] = b->data;
        d->cond_first[i] = fr->start;
        d->cond_n[i] = (int64_t)fr->end - fr->start;
    }
    t->step = (int)dn->step_begin;
    t->step_end = (int)dn->step_end;
    t->sync_every = (int)dn->sync_every;
    t->checkpoint_every = (int)dn->checkpoint_every;
    t->checkpoint_at_end = dn->checkpoint_at_end;
    t->noverlaps = 0;
    for (size_t i = 0; i < dn->n_overlaps && i < RF_CS_MAX_SPANS; i++) {
        const Reelfarm__FrameRange *o = dn->overlaps[i];
        if (o->end <= o->start || o->start < dn->frames->start || o->end > dn->frames->end)
            return rf_error_set(err, RF_EPROTO, "overlap [%u, %u) outside the chunk [%u, %u)",
                                o->start, o->end, dn->frames->start, dn->frames->end);
        t->overlaps[t->noverlaps].start = o->start;
        t->overlaps[t->noverlaps].len = (int64_t)o->end - o->start;
        t->noverlaps++;
    }
    if (dn->source == REELFARM__STATE_SOURCE__STATE_RESTORE) {
        if (!dn->restore)
            return rf_error_set(err, RF_EPROTO, "STATE_RESTORE without a state");
        t->cs =
            rf_chunk_wire_to_state(dn->restore, t->assign.blobs, t->assign.n_blobs, "state/", err);
        if (!t->cs)
            return err ? (int)err->code : RF_EPROTO;
        t->step = (int)dn->restore->step;
        t->round = (int)dn->restore->round;
        rf_log_kv(RF_LOG_INFO, COMP, "chunk restored from checkpoint", "task=%s step=%d round=%d",
                  t->id, t->step, t->round);
    } else if (dn->source == REELFARM__STATE_SOURCE__STATE_RESIDENT) {
        return rf_error_set(err, RF_ENOTFOUND, "this worker does not hold the chunk's state");
    } else if (t->step != 0) {
        return rf_error_set(err, RF_EPROTO, "a fresh chunk must start at step 0, not %d", t->step);
    }
    return 0;
}

static int s_setup_decode(s_task *t, rf_error *err)
{
    const Reelfarm__Decode *dc = t->assign.env->assign->decode;
    const rf_wire_blob *lat = rf_wire_msg_blob(&t->assign, "latent");
    if (!dc || !dc->frames || !lat || lat->dtype != RF_DTYPE_F32 || lat->ndim != 4)
        return rf_error_set(err, RF_EPROTO, "DECODE needs a latent blob [C, T, h, w] f32");
    rf_exec_decode *d = &t->dec;
    d->latent = lat->data;
    d->channels = lat->shape[0];
    d->frames = lat->shape[1];
    d->h = lat->shape[2];
    d->w = lat->shape[3];
    d->warmup = (int)dc->warmup;
    if (dc->warmup > dc->frames->start || dc->frames->end <= dc->frames->start ||
        (int64_t)(dc->frames->end - dc->frames->start) + dc->warmup != d->frames)
        return rf_error_set(err, RF_EPROTO,
                            "DECODE of [%u, %u) with warm-up %u does not match its latent of "
                            "%lld frames",
                            dc->frames->start, dc->frames->end, dc->warmup, (long long)d->frames);
    d->first_frame = (int64_t)dc->frames->start - dc->warmup;
    d->keep_pixel_frames = (int)dc->keep_pixel_frames;
    if (dc->codec) {
        rf_codec c;
        static const char *names[] = {"", "h264", "h265", "prores", "ffv1", "png"};
        if (dc->codec->codec < 1 || dc->codec->codec > 5 ||
            rf_codec_parse(names[dc->codec->codec], &c) != 0)
            return rf_error_set(err, RF_EPROTO, "unknown codec %d", dc->codec->codec);
        d->codec = c;
        d->crf = (int)dc->codec->crf;
        d->out_width = (int)dc->codec->width;
        d->out_height = (int)dc->codec->height;
        d->fps = dc->codec->fps_den ? (int)(dc->codec->fps_num / dc->codec->fps_den) : 16;
    }
    return 0;
}

static int s_setup_encode_media(rf_worker *self, s_task *t, rf_error *err)
{
    const Reelfarm__EncodeMedia *em = t->assign.env->assign->encode_media;
    const rf_wire_blob *in = rf_wire_msg_blob(&t->assign, "input");
    if (!rf_model_set_encodes_media(self->models))
        return rf_error_set(err, RF_EUNSUPPORTED, "the %s executor cannot encode media",
                            rf_model_set_backend(self->models));
    if (!em || !in || in->dtype != RF_DTYPE_U8 || in->len == 0)
        return rf_error_set(err, RF_EPROTO, "ENCODE_MEDIA needs a U8 blob 'input' (the file)");
    if (!em->width || !em->height || em->width % 16 || em->height % 16 || em->width > 16384 ||
        em->height > 16384)
        return rf_error_set(err, RF_EPROTO, "ENCODE_MEDIA size %ux%u is not a multiple of 16",
                            em->width, em->height);
    if (em->frames < 1 || (em->frames - 1) % 4)
        return rf_error_set(err, RF_EPROTO, "ENCODE_MEDIA frames must be 4n+1, got %u", em->frames);
    t->media.bytes = in->data;
    t->media.len = in->len;
    t->media.width = (int)em->width;
    t->media.height = (int)em->height;
    t->media.first_frame = em->first_frame;
    t->media.frames = em->frames;
    t->media_h = em->height / 8;
    t->media_w = em->width / 8;
    return 0;
}

static void s_on_assign(rf_worker *self, rf_wire_msg *msg)
{
    const Reelfarm__TaskAssign *a = msg->env->assign;
    if (!a || !a->task_id || !*a->task_id) {
        rf_log(RF_LOG_WARN, COMP, "assignment without a task id ignored");
        rf_wire_msg_release(msg);
        return;
    }
    if (self->draining) {
        s_send_task_error(self, a->task_id, a->attempt, RF_EAGAIN,
                          "worker draining: takes no new task", 1);
        rf_wire_msg_release(msg);
        return;
    }
    if (s_find(self, a->task_id, 0)) {
        rf_log_kv(RF_LOG_WARN, COMP, "duplicate assignment ignored", "task=%s", a->task_id);
        rf_wire_msg_release(msg);
        return;
    }
    if (!rf_model_set_has(self->models, a->model_hash)) {
        s_send_task_error(self, a->task_id, a->attempt, RF_ENOTFOUND,
                          "this worker does not hold the job's model", 1);
        rf_wire_msg_release(msg);
        return;
    }
    s_task *t = NULL;
    for (int i = 0; i < self->ntasks_max && !t; i++)
        if (!self->tasks[i].used)
            t = &self->tasks[i];
    if (!t) {
        s_send_task_error(self, a->task_id, a->attempt, RF_EAGAIN,
                          "worker full: it holds its maximum number of tasks", 1);
        rf_wire_msg_release(msg);
        return;
    }
    memset(t, 0, sizeof(*t));
    t->used = 1;
    t->assign = *msg; /* takes ownership of the envelope and blobs */
    memset(msg, 0, sizeof(*msg));
    snprintf(t->id, sizeof(t->id), "%s", a->task_id);
    snprintf(t->job_id, sizeof(t->job_id), "%s", a->job_id ? a->job_id : "");
    t->attempt = a->attempt;
    t->kind = a->kind;
    t->lease_ms = a->lease_ms ? a->lease_ms : 30000;
    rf_error err;
    rf_error_clear(&err);
    int rc = 0;
    switch (t->kind) {
    case REELFARM__TASK_KIND__TASK_DENOISE: rc = s_setup_denoise(t, &err); break;
    case REELFARM__TASK_KIND__TASK_DECODE: rc = s_setup_decode(t, &err); break;
    case REELFARM__TASK_KIND__TASK_ENCODE_TEXT:
        if (!a->encode_text || a->encode_text->n_prompts == 0 ||
            a->encode_text->n_prompts > MAX_PROMPTS)
            rc = rf_error_set(&err, RF_EPROTO, "ENCODE_TEXT needs 1..%d prompts", MAX_PROMPTS);
        else
            t->nprompts = (int)a->encode_text->n_prompts;
        break;
    case REELFARM__TASK_KIND__TASK_ENCODE_MEDIA: rc = s_setup_encode_media(self, t, &err); break;
    default: rc = rf_error_set(&err, RF_EUNSUPPORTED, "unknown task kind %d", t->kind);
    }
    if (rc) {
        rf_log_kv(RF_LOG_WARN, COMP, "task refused", "task=%s error=\"%s\"", t->id, err.msg);
        s_send_task_error(self, t->id, t->attempt, rc, err.msg, 0);
        s_task_free(t);
        return;
    }
    rf_log_kv(RF_LOG_INFO, COMP, "task accepted", "task=%s attempt=%llu kind=%d", t->id,
              (unsigned long long)t->attempt, t->kind);
    t->next_progress_ms = s_now_ms() + t->lease_ms / 3;
    s_enqueue(self, t);
}

static void s_on_overlap_down(rf_worker *self, const rf_wire_msg *msg)
{
    const Reelfarm__OverlapDown *od = msg->env->overlap_down;
    s_task *t = od && od->task_id ? s_find(self, od->task_id, od->attempt) : NULL;
    if (!t || t->state != T_WAITING) {
        rf_log_kv(RF_LOG_WARN, COMP, "unexpected fused overlaps ignored", "task=%s",
                  od && od->task_id ? od->task_id : "?");
        return;
    }
    if (od->round != (uint32_t)t->round + 1) {
        rf_log_kv(RF_LOG_WARN, COMP, "fused overlaps of another round ignored",
                  "task=%s got=%u want=%d", t->id, od->round, t->round + 1);
        return;
    }
    if (t->noverlaps > 0) {
        rf_error err;
        Reelfarm__ChunkState cs = REELFARM__CHUNK_STATE__INIT;
        Reelfarm__FrameRange win = REELFARM__FRAME_RANGE__INIT;
        Reelfarm__FrameRange held[RF_CS_MAX_SPANS], *hp[RF_CS_MAX_SPANS];
        win.start = (uint32_t)t->cs->window_start;
        win.end = (uint32_t)(t->cs->window_start + t->cs->window_len);
        for (int i = 0; i < t->noverlaps; i++) {
            Reelfarm__FrameRange h = REELFARM__FRAME_RANGE__INIT;
            h.start = (uint32_t)t->overlaps[i].start;
            h.end = (uint32_t)(t->overlaps[i].start + t->overlaps[i].len);
            held[i] = h;
            hp[i] = &held[i];
        }
        cs.window = &win;
        cs.n_held = (size_t)t->noverlaps;
        cs.held = hp;
        /* scalars: the fused part must be compatible with our state: copy ours */
        rf_chunk_state *fused = rf_chunk_wire_to_state(&cs, msg->blobs, msg->n_blobs, "", &err);
        int rc = fused ? 0 : err.code;
        if (fused) {
            for (int i = 0; i < t->cs->nscalars; i++)
                fused->scalars[i] = t->cs->scalars[i];
            fused->nscalars = t->cs->nscalars;
            rc = rf_chunk_state_apply(t->cs, fused, &err);
        }
        rf_chunk_state_destroy(&fused);
        if (rc) {
            rf_log_kv(RF_LOG_WARN, COMP, "bad fused overlaps", "task=%s error=\"%s\"", t->id,
                      err.msg);
            s_send_task_error(self, t->id, t->attempt, RF_EPROTO, err.msg, 1);
            s_task_free(t);
            return;
        }
    }
    t->round++;
    s_after_round(self, t);
}

static void s_on_cancel(rf_worker *self, const Reelfarm__CancelTask *c)
{
    s_task *t = c && c->task_id ? s_find(self, c->task_id, c->attempt) : NULL;
    if (!t)
        return;
    rf_log_kv(RF_LOG_INFO, COMP, "cancel", "task=%s reason=\"%s\"", t->id,
              c->reason ? c->reason : "");
    if (t->state == T_COMPUTING)
        atomic_store(&t->cancel, 1); /* dropped when the unit returns */
    else
        s_task_free(t);
}

/* ---- session -------------------------------------------------------------------- */

static void s_close_socket(rf_worker *self)
{
    rf_curve_monitor_destroy(&self->mon);
    if (self->sock)
        zmq_close(self->sock);
    self->sock = NULL;
    self->connected = 0;
}

static int s_open_socket(rf_worker *self, rf_error *err)
{
    s_close_socket(self);
    self->sock = zmq_socket(self->zctx, ZMQ_DEALER);
    if (!self->sock)
        return rf_error_set(err, RF_EIO, "cannot create a socket: %s", zmq_strerror(errno));
    int zero = 0, sndtimeo = 2000;
    zmq_setsockopt(self->sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(self->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo));
    rf_wire_limits lim = rf_wire_limits_default();
    rf_wire_socket_limits(self->sock, &lim, NULL);
    if ((self->cfg.key_secret || self->cfg.server_key) &&
        rf_curve_client_setup(self->zctx, self->sock, self->cfg.key_secret, self->cfg.server_key,
                              "worker", self->cfg.coordinator, &self->mon, err)) {
        s_close_socket(self);
        return err ? (int)err->code : RF_EINVAL;
    }
    if (zmq_connect(self->sock, self->cfg.coordinator) != 0) {
        int e = errno;
        s_close_socket(self);
        return rf_error_set(err, RF_EINVAL, "cannot connect to %s: %s", self->cfg.coordinator,
                            zmq_strerror(e));
    }
    self->last_rx_ms = s_now_ms();
    s_send_hello(self);
    return 0;
}

/* Drops the connection and schedules a new one after the backoff. */
static void s_lose_coordinator(rf_worker *self, const char *why, int retry_after_ms)
{
    rf_log_kv(RF_LOG_WARN, COMP, "coordinator lost; reconnecting", "reason=\"%s\" backoff_ms=%d",
              why, retry_after_ms > 0 ? retry_after_ms : self->backoff_ms);
    s_close_socket(self);
    int wait = retry_after_ms > 0 ? retry_after_ms : self->backoff_ms;
    wait += rand() % (wait / 4 + 1);
    self->next_connect_ms = s_now_ms() + wait;
    if (retry_after_ms <= 0) {
        self->backoff_ms *= 2;
        if (self->backoff_ms > 30000)
            self->backoff_ms = 30000;
    }
}

/* After a (re)connect: re-send what each task is waiting on. */
static void s_resume_tasks(rf_worker *self)
{
    for (int i = 0; i < self->ntasks_max; i++) {
        s_task *t = &self->tasks[i];
        if (!t->used)
            continue;
        if (t->state == T_WAITING)
            s_send_overlap_up(self, t);
        else if (t->state == T_FINISHED)
            s_finish(self, t);
    }
}

/* Handles one message from the coordinator. Returns nonzero when the worker must stop
 * (refused for good); err says why. */
static int s_on_message(rf_worker *self, rf_wire_msg *msg, rf_error *err)
{
    self->last_rx_ms = s_now_ms();
    Reelfarm__Envelope *env = msg->env;
    switch (env->kind_case) {
    case REELFARM__ENVELOPE__KIND_HELLO_ACK: {
        const Reelfarm__HelloAck *ack = env->hello_ack;
        self->connected = 1;
        self->backoff_ms = 500;
        self->heartbeat_ms = ack->heartbeat_ms ? (int)ack->heartbeat_ms : 1000;
        self->liveness = ack->liveness ? (int)ack->liveness : 5;
        snprintf(self->worker_id, sizeof(self->worker_id), "%s", ack->worker_id);
        rf_log_kv(RF_LOG_INFO, COMP, "connected", "coordinator=%s worker_id=%s",
                  self->cfg.coordinator, self->worker_id);
        s_resume_tasks(self);
        if (self->draining)
            self->drain_sent = 0; /* tell the new session too */
        break;
    }
    case REELFARM__ENVELOPE__KIND_REFUSE: {
        const Reelfarm__Refuse *r = env->refuse;
        if (r->retry_after_ms == 0) {
            rf_error_set(err, RF_EINVAL, "the coordinator refused this worker: %s", r->reason);
            return 1;
        }
        s_lose_coordinator(self, r->reason, (int)r->retry_after_ms);
        break;
    }
    case REELFARM__ENVELOPE__KIND_HEARTBEAT: break;
    case REELFARM__ENVELOPE__KIND_ASSIGN: s_on_assign(self, msg); break;
    case REELFARM__ENVELOPE__KIND_OVERLAP_DOWN: s_on_overlap_down(self, msg); break;
    case REELFARM__ENVELOPE__KIND_CANCEL_TASK: s_on_cancel(self, env->cancel_task); break;
    case REELFARM__ENVELOPE__KIND_DRAIN:
        rf_log_kv(RF_LOG_INFO, COMP, "drain requested by the coordinator", "reason=\"%s\"",
                  env->drain->reason ? env->drain->reason : "");
        self->drain_requested = 1;
        break;
    case REELFARM__ENVELOPE__KIND_ERROR:
        rf_log_kv(RF_LOG_WARN, COMP, "coordinator reported an error", "code=%u error=\"%s\"",
                  env->error->code, env->error->message);
        break;
    default:
        rf_log_kv(RF_LOG_WARN, COMP, "unexpected message ignored", "kind=%s",
                  rf_wire_kind_name(env->kind_case));
    }
    return 0;
}

static void s_start_drain(rf_worker *self)
{
    if (self->draining)
        return;
    self->draining = 1;
    rf_log_kv(RF_LOG_INFO, COMP, "draining", "tasks=%d", s_active(self));
    for (int i = 0; i < self->ntasks_max; i++) {
        s_task *t = &self->tasks[i];
        if (!t->used || t->kind != REELFARM__TASK_KIND__TASK_DENOISE)
            continue;
        t->handback = 1;
        if (t->state == T_READY && t->cs) {
            s_send_checkpoint(self, t);
            s_send_task_error(self, t->id, t->attempt, RF_ECANCELED,
                              "worker draining: chunk handed back with a checkpoint", 1);
            s_task_free(t);
        }
    }
}

static void s_send_drain(rf_worker *self)
{
    Reelfarm__Drain d = REELFARM__DRAIN__INIT;
    d.reason = "worker draining (SIGTERM or reelctl drain)";
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_DRAIN;
    env.drain = &d;
    if (s_send(self, &env, NULL, 0) == 0)
        self->drain_sent = 1;
}

/* ---- lifecycle ------------------------------------------------------------------ */

rf_worker *rf_worker_new(const rf_worker_config *cfg, rf_executor *ex, rf_error *err)
{
    rf_model_set *models =
        rf_model_set_new(ex->ops->name, NULL, NULL, 1, ex->ops->encode_media != NULL, err);
    if (!models) {
        rf_executor_destroy(&ex);
        return NULL;
    }
    if (rf_model_set_add_loaded(models, ex, err)) {
        rf_model_set_destroy(&models);
        return NULL;
    }
    return rf_worker_new_models(cfg, models, err);
}

rf_worker *rf_worker_new_models(const rf_worker_config *cfg, rf_model_set *models, rf_error *err)
{
    if (!cfg->coordinator || !*cfg->coordinator) {
        rf_model_set_destroy(&models);
        return rf_error_set(err, RF_EINVAL, "no coordinator endpoint (--coordinator)"), NULL;
    }
    if (rf_model_set_count(models) == 0) {
        rf_model_set_destroy(&models);
        return rf_error_set(err, RF_EINVAL, "no model to serve (--model DIR or --models DIR)"),
               NULL;
    }
    rf_worker *self = calloc(1, sizeof(*self));
    if (!self) {
        rf_model_set_destroy(&models);
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    }
    self->cfg = *cfg;
    self->models = models;
    self->ntasks_max = cfg->max_tasks > 0 ? cfg->max_tasks : 64;
    if (self->ntasks_max > MAX_TASKS_LIMIT)
        self->ntasks_max = MAX_TASKS_LIMIT;
    if (cfg->name && *cfg->name) {
        snprintf(self->name, sizeof(self->name), "%s", cfg->name);
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof(host) - 1);
        snprintf(self->name, sizeof(self->name), "%s-%d", host, (int)getpid());
    }
    self->backoff_ms = 500;
    self->heartbeat_ms = 1000;
    self->liveness = 5;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    self->zctx = cfg->zctx ? cfg->zctx : zmq_ctx_new();
    snprintf(self->notify_ep, sizeof(self->notify_ep), "inproc://rf-worker-%p", (void *)self);
    self->notify = self->zctx ? zmq_socket(self->zctx, ZMQ_PAIR) : NULL;
    if (!self->notify || zmq_bind(self->notify, self->notify_ep) != 0 ||
        pthread_create(&self->thread, NULL, s_compute_main, self) != 0) {
        rf_error_set(err, RF_EIO, "cannot start the worker: %s", zmq_strerror(errno));
        rf_worker_destroy(&self);
        return NULL;
    }
    self->thread_started = 1;
    srand((unsigned)(getpid() ^ time(NULL)));
    return self;
}

void rf_worker_destroy(rf_worker **pself)
{
    if (!pself || !*pself)
        return;
    rf_worker *self = *pself;
    if (self->thread_started) {
        pthread_mutex_lock(&self->mu);
        self->stopping = 1;
        for (int i = 0; i < self->ntasks_max; i++)
            atomic_store(&self->tasks[i].cancel, 1);
        pthread_cond_signal(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->thread, NULL);
    }
    for (int i = 0; i < self->ntasks_max; i++)
        if (self->tasks[i].used)
            s_task_free(&self->tasks[i]);
    s_close_socket(self);
    if (self->notify)
        zmq_close(self->notify);
    if (self->zctx && self->zctx != self->cfg.zctx)
        zmq_ctx_term(self->zctx);
    pthread_mutex_destroy(&self->mu);
    pthread_cond_destroy(&self->cv);
    rf_model_set_destroy(&self->models);
    free(self);
    *pself = NULL;
}

void rf_worker_drain(rf_worker *self)
{
    self->drain_requested = 1;
}

int rf_worker_run(rf_worker *self, rf_error *err)
{
    int rc = s_open_socket(self, err);
    if (rc)
        return rc;
    rf_log_kv(RF_LOG_INFO, COMP, "worker started", "name=%s coordinator=%s executor=%s", self->name,
              self->cfg.coordinator, rf_model_set_backend(self->models));
    for (;;) {
        int64_t now = s_now_ms();
        if (self->drain_requested && !self->draining)
            s_start_drain(self);
        if (self->draining) {
            if (self->connected && !self->drain_sent)
                s_send_drain(self);
            if (s_active(self) == 0) {
                rf_log(RF_LOG_INFO, COMP, "drained; exiting");
                return 0;
            }
        }
        /* (re)connect */
        if (!self->sock && now >= self->next_connect_ms) {
            rc = s_open_socket(self, err);
            if (rc)
                return rc;
        }
        if (self->sock && !self->connected && now - self->hello_sent_ms >= self->backoff_ms) {
            s_send_hello(self); /* the coordinator may not be up yet */
            self->backoff_ms = self->backoff_ms * 2 > 30000 ? 30000 : self->backoff_ms * 2;
        }
        /* liveness and heartbeats */
        if (self->connected) {
            if (now - self->last_rx_ms > (int64_t)self->heartbeat_ms * self->liveness) {
                s_lose_coordinator(self, "no message within the liveness window", 0);
            } else if (now - self->last_tx_ms >= self->heartbeat_ms) {
                s_send_heartbeat(self);
            }
        }
        if (self->connected) {
            for (int i = 0; i < self->ntasks_max; i++) {
                s_task *t = &self->tasks[i];
                if (t->used && t->state != T_FINISHED && now >= t->next_progress_ms)
                    s_send_progress(self, t);
            }
        }
        zmq_pollitem_t items[3] = {
            {self->notify, 0, ZMQ_POLLIN, 0},
            {self->sock, 0, ZMQ_POLLIN, 0},
            {self->mon ? rf_curve_monitor_socket(self->mon) : NULL, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, self->sock ? (self->mon ? 3 : 2) : 1, 100);
        if (n < 0 && errno != EINTR)
            return rf_error_set(err, RF_EIO, "poll failed: %s", zmq_strerror(errno));
        if (n <= 0)
            continue;
        if (self->mon && (items[2].revents & ZMQ_POLLIN) &&
            rf_curve_monitor_check(self->mon, 0, err))
            return err ? (int)err->code : RF_EPROTO; /* the coordinator rejected our key */
        if (items[0].revents & ZMQ_POLLIN) {
            s_task *t = NULL;
            if (zmq_recv(self->notify, &t, sizeof(t), ZMQ_DONTWAIT) == (int)sizeof(t) && t)
                s_unit_done(self, t);
        }
        if (self->sock && (items[1].revents & ZMQ_POLLIN)) {
            rf_wire_msg msg;
            memset(&msg, 0, sizeof(msg));
            rf_error rerr;
            rc = rf_wire_recv(self->sock, &msg, NULL, &rerr);
            if (rc == 0) {
                int stop = s_on_message(self, &msg, err);
                rf_wire_msg_release(&msg);
                if (stop)
                    return err ? (int)err->code : RF_EINVAL;
            } else if (rc != RF_EAGAIN) {
                rf_log_kv(RF_LOG_WARN, COMP, "malformed message from the coordinator dropped",
                          "error=\"%s\"", rerr.msg);
                rf_wire_msg_release(&msg);
            }
        }
    }
}
