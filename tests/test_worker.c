/* test_worker.c - the worker's side of the protocol, against a scripted coordinator.
 *
 * The test binds a ROUTER on an ipc:// socket and plays the coordinator message by
 * message; the worker (library, simulated executor) runs in a thread. Covers hello and
 * heartbeats, ENCODE_TEXT, DENOISE with lockstep rounds and checkpoints, restoring
 * from a checkpoint bit-identically, cancel, drain (hand back with a checkpoint),
 * garbage on the socket, a refusal and a reconnect after silence.
 */
#include "chunk_wire.h"
#include "rf_test.h"
#include "wire.h"
#include "worker/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zmq.h>

typedef struct s_coord {
    void *zctx, *router;
    char ep[600];
    unsigned char peer[256];
    size_t peer_len;
    rf_worker *worker;
    pthread_t thread;
    int run_rc;
    rf_error run_err;
} s_coord;

static void *s_worker_thread(void *arg)
{
    s_coord *c = arg;
    c->run_rc = rf_worker_run(c->worker, &c->run_err);
    return NULL;
}

static void s_start(s_coord *c, const char *name, int step_ms)
{
    memset(c, 0, sizeof(*c));
    char path[512];
    rf_test_path(path, sizeof(path), name);
    snprintf(c->ep, sizeof(c->ep), "ipc://%s", path);
    c->zctx = zmq_ctx_new();
    c->router = zmq_socket(c->zctx, ZMQ_ROUTER);
    int zero = 0, timeout = 5000;
    zmq_setsockopt(c->router, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(c->router, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
    RF_CHECK_EQ_INT(zmq_bind(c->router, c->ep), 0);
    rf_worker_config cfg = {0};
    cfg.coordinator = c->ep;
    cfg.name = "w-test";
    cfg.threads = 1;
    cfg.max_tasks = 4;
    rf_error err;
    rf_executor *ex = rf_exec_sim_new(step_ms, NULL, &err);
    RF_CHECK(ex);
    c->worker = rf_worker_new(&cfg, ex, &err);
    RF_CHECK_MSG(c->worker, "%s", err.msg);
    RF_CHECK_EQ_INT(pthread_create(&c->thread, NULL, s_worker_thread, c), 0);
}

/* Receives the next message of the wanted kind, skipping heartbeats and progress. */
static void s_expect(s_coord *c, int kind, rf_wire_msg *out)
{
    for (int i = 0; i < 200; i++) {
        memset(out, 0, sizeof(*out));
        rf_error err;
        int rc = rf_wire_recv(c->router, out, NULL, &err);
        RF_CHECK_MSG(rc == 0, "waiting for %s: %s", rf_wire_kind_name(kind), err.msg);
        memcpy(c->peer, out->peer, out->peer_len);
        c->peer_len = out->peer_len;
        if ((int)out->env->kind_case == kind)
            return;
        int k = out->env->kind_case;
        rf_wire_msg_release(out);
        if (k != REELFARM__ENVELOPE__KIND_HEARTBEAT && k != REELFARM__ENVELOPE__KIND_PROGRESS &&
            k != REELFARM__ENVELOPE__KIND_HELLO)
            rf_test_fail(__FILE__, __LINE__, "wanted %s, got %s", rf_wire_kind_name(kind),
                         rf_wire_kind_name(k));
    }
    rf_test_fail(__FILE__, __LINE__, "no %s", rf_wire_kind_name(kind));
}

static void s_send(s_coord *c, Reelfarm__Envelope *env, const rf_wire_blob *blobs, size_t n)
{
    rf_wire_msg m;
    memset(&m, 0, sizeof(m));
    memcpy(m.peer, c->peer, c->peer_len);
    m.peer_len = c->peer_len;
    m.env = env;
    m.blobs = (rf_wire_blob *)blobs;
    m.n_blobs = n;
    rf_error err;
    RF_CHECK_MSG(rf_wire_send(c->router, &m, &err) == 0, "%s", err.msg);
}

static void s_hello(s_coord *c, int heartbeat_ms)
{
    rf_wire_msg m;
    s_expect(c, REELFARM__ENVELOPE__KIND_HELLO, &m);
    RF_CHECK_EQ_STR(m.env->hello->name, "w-test");
    RF_CHECK_EQ_INT(m.env->hello->n_model_hashes, 1);
    rf_wire_msg_release(&m);
    Reelfarm__HelloAck ack = REELFARM__HELLO_ACK__INIT;
    ack.worker_id = "w1";
    ack.heartbeat_ms = (uint32_t)heartbeat_ms;
    ack.liveness = 3;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_HELLO_ACK;
    env.hello_ack = &ack;
    s_send(c, &env, NULL, 0);
}

static void s_stop(s_coord *c)
{
    rf_worker_drain(c->worker);
    pthread_join(c->thread, NULL);
    rf_worker_destroy(&c->worker);
    zmq_close(c->router);
    zmq_ctx_term(c->zctx);
}

static float s_ctx[2 * 4096];

/* Assigns a DENOISE of a 6-frame chunk [4, 10) with overlap [4, 6), 5 steps. */
static void s_assign_denoise(s_coord *c, const char *id, uint64_t attempt, int sync_every,
                             int checkpoint_every, const Reelfarm__ChunkState *restore,
                             const rf_wire_blob *state_blobs, size_t n_state)
{
    Reelfarm__FrameRange fr = REELFARM__FRAME_RANGE__INIT, ov = REELFARM__FRAME_RANGE__INIT;
    fr.start = 4;
    fr.end = 10;
    ov.start = 4;
    ov.end = 6;
    Reelfarm__FrameRange *ovp[1] = {&ov};
    Reelfarm__Denoise d = REELFARM__DENOISE__INIT;
    d.timeline = 0;
    d.chunk = 1;
    d.frames = &fr;
    d.timeline_frames = 10;
    d.step_begin = restore ? restore->step : 0;
    d.step_end = 5;
    d.steps_total = 5;
    d.sampler = REELFARM__SAMPLER__SAMPLER_EULER;
    d.seed = 42;
    d.sync_every = (uint32_t)sync_every;
    d.checkpoint_every = (uint32_t)checkpoint_every;
    d.n_overlaps = 1;
    d.overlaps = ovp;
    d.source =
        restore ? REELFARM__STATE_SOURCE__STATE_RESTORE : REELFARM__STATE_SOURCE__STATE_FRESH;
    d.restore = (Reelfarm__ChunkState *)restore;
    d.width = 32;
    d.height = 16;
    Reelfarm__TaskAssign a = REELFARM__TASK_ASSIGN__INIT;
    a.task_id = (char *)id;
    a.attempt = attempt;
    a.job_id = "job-1";
    a.kind = REELFARM__TASK_KIND__TASK_DENOISE;
    a.lease_ms = 3000;
    a.task_case = REELFARM__TASK_ASSIGN__TASK_DENOISE;
    a.denoise = &d;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_ASSIGN;
    env.assign = &a;
    rf_wire_blob blobs[24];
    memset(blobs, 0, sizeof(blobs));
    for (int i = 0; i < 2 * 4096; i++)
        s_ctx[i] = (float)(i % 7) * 0.25f - 0.5f;
    blobs[0].name = "context";
    blobs[0].dtype = RF_DTYPE_F32;
    blobs[0].ndim = 2;
    blobs[0].shape[0] = 2;
    blobs[0].shape[1] = 4096;
    blobs[0].frame_axis = -1;
    blobs[0].data = s_ctx;
    blobs[0].len = sizeof(s_ctx);
    size_t n = 1;
    for (size_t i = 0; i < n_state; i++)
        blobs[n++] = state_blobs[i];
    s_send(c, &env, blobs, n);
}

/* Answers an OverlapUp with its own frames scaled by 0.5 (a "fused" value). */
static void s_fuse_back(s_coord *c, const rf_wire_msg *up, int round)
{
    const Reelfarm__OverlapUp *u = up->env->overlap_up;
    RF_CHECK_EQ_INT(u->state->round, round);
    RF_CHECK(up->n_blobs >= 1);
    rf_wire_blob out[16];
    static float buf[16][16 * 2 * 2 * 4];
    for (size_t i = 0; i < up->n_blobs; i++) {
        out[i] = up->blobs[i];
        RF_CHECK(up->blobs[i].len <= sizeof(buf[i]));
        const float *src = up->blobs[i].data;
        for (size_t k = 0; k < up->blobs[i].len / 4; k++)
            buf[i][k] = src[k] * 0.5f;
        out[i].data = buf[i];
    }
    Reelfarm__OverlapDown od = REELFARM__OVERLAP_DOWN__INIT;
    od.task_id = u->task_id;
    od.attempt = u->attempt;
    od.round = (uint32_t)round;
    od.chunk = u->chunk;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_OVERLAP_DOWN;
    env.overlap_down = &od;
    s_send(c, &env, out, up->n_blobs);
}

RF_TEST(hello_heartbeat_and_encode_text)
{
    s_coord c;
    s_start(&c, "w1.sock", 0);
    s_hello(&c, 100);
    rf_wire_msg m;
    s_expect(&c, REELFARM__ENVELOPE__KIND_HEARTBEAT, &m); /* beats within the interval */
    rf_wire_msg_release(&m);
    char *prompts[2] = {"a red circle moves to the right", "a star"};
    Reelfarm__EncodeText et = REELFARM__ENCODE_TEXT__INIT;
    et.n_prompts = 2;
    et.prompts = prompts;
    Reelfarm__TaskAssign a = REELFARM__TASK_ASSIGN__INIT;
    a.task_id = "t-text";
    a.attempt = 7;
    a.kind = REELFARM__TASK_KIND__TASK_ENCODE_TEXT;
    a.task_case = REELFARM__TASK_ASSIGN__TASK_ENCODE_TEXT;
    a.encode_text = &et;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_ASSIGN;
    env.assign = &a;
    s_send(&c, &env, NULL, 0);
    s_expect(&c, REELFARM__ENVELOPE__KIND_RESULT, &m);
    RF_CHECK_EQ_STR(m.env->result->task_id, "t-text");
    RF_CHECK_EQ_INT(m.env->result->attempt, 7);
    const rf_wire_blob *t0 = rf_wire_msg_blob(&m, "text/0");
    const rf_wire_blob *t1 = rf_wire_msg_blob(&m, "text/1");
    RF_CHECK(t0 && t1);
    RF_CHECK_EQ_INT(t0->shape[0], 7); /* the simulation: one row per word */
    RF_CHECK_EQ_INT(t1->shape[0], 2);
    RF_CHECK_EQ_INT(t0->shape[1], 4096);
    rf_wire_msg_release(&m);
    s_stop(&c);
    RF_CHECK_EQ_INT(c.run_rc, 0);
}

/* Runs a whole DENOISE (sync every 2 steps, checkpoint every round) and returns the final
 * latent; keeps the checkpoint of round `keep_round` when asked. */
static void s_run_denoise(s_coord *c, float *latent, size_t cap, int keep_round, rf_wire_msg *kept)
{
    s_assign_denoise(c, "t-dn", 11, 2, 1, NULL, NULL, 0);
    int round = 1; /* rounds are numbered from 1; they end after steps 2 and 4 */
    for (;;) {
        rf_wire_msg m;
        memset(&m, 0, sizeof(m));
        rf_error err;
        RF_CHECK_MSG(rf_wire_recv(c->router, &m, NULL, &err) == 0, "%s", err.msg);
        int k = m.env->kind_case;
        if (k == REELFARM__ENVELOPE__KIND_OVERLAP_UP) {
            RF_CHECK_EQ_INT(m.env->overlap_up->state->step, 2 * round);
            s_fuse_back(c, &m, round);
            round++;
        } else if (k == REELFARM__ENVELOPE__KIND_CHECKPOINT) {
            RF_CHECK_EQ_INT(m.env->checkpoint->state->round, round - 1);
            if (kept && round - 1 == keep_round) {
                *kept = m;
                continue;
            }
        } else if (k == REELFARM__ENVELOPE__KIND_RESULT) {
            RF_CHECK_EQ_INT(round, 3); /* two rounds done; step 5 needs no sync */
            const rf_wire_blob *x = rf_wire_msg_blob(&m, "latent");
            RF_CHECK(x && x->ndim == 4 && x->shape[0] == 16 && x->shape[1] == 6);
            RF_CHECK(x->len <= cap);
            memcpy(latent, x->data, x->len);
            rf_wire_msg_release(&m);
            return;
        } else {
            RF_CHECK_MSG(k == REELFARM__ENVELOPE__KIND_HEARTBEAT ||
                             k == REELFARM__ENVELOPE__KIND_PROGRESS,
                         "unexpected %s", rf_wire_kind_name(k));
        }
        rf_wire_msg_release(&m);
    }
}

RF_TEST(denoise_rounds_checkpoints_and_restore_are_bit_identical)
{
    static float a[16 * 6 * 2 * 4], b[16 * 6 * 2 * 4];
    s_coord c;
    s_start(&c, "w2.sock", 0);
    s_hello(&c, 200);
    rf_wire_msg cp;
    memset(&cp, 0, sizeof(cp));
    s_run_denoise(&c, a, sizeof(a), 1, &cp);
    RF_CHECK(cp.env);

    /* a second attempt restored from the round-1 checkpoint, answered with the same
     * fused values, must end bit-identical */
    const Reelfarm__ChunkState *st = cp.env->checkpoint->state;
    s_assign_denoise(&c, "t-dn2", 12, 2, 0, st, cp.blobs, cp.n_blobs);
    int round = (int)st->round + 1;
    for (;;) {
        rf_wire_msg m;
        memset(&m, 0, sizeof(m));
        rf_error err;
        RF_CHECK_MSG(rf_wire_recv(c.router, &m, NULL, &err) == 0, "%s", err.msg);
        int k = m.env->kind_case;
        if (k == REELFARM__ENVELOPE__KIND_OVERLAP_UP) {
            s_fuse_back(&c, &m, round);
            round++;
        } else if (k == REELFARM__ENVELOPE__KIND_RESULT) {
            /* the attempt's own compute: its simulated steps, not the waits for rounds */
            RF_CHECK(m.env->result->compute_seconds > 0);
            const rf_wire_blob *x = rf_wire_msg_blob(&m, "latent");
            RF_CHECK(x && x->len == sizeof(b));
            memcpy(b, x->data, x->len);
            rf_wire_msg_release(&m);
            break;
        } else {
            RF_CHECK_MSG(k != REELFARM__ENVELOPE__KIND_TASK_ERROR, "task error: %s",
                         m.env->task_error->message);
        }
        rf_wire_msg_release(&m);
    }
    rf_wire_msg_release(&cp);
    RF_CHECK(memcmp(a, b, sizeof(a)) == 0);
    s_stop(&c);
}

RF_TEST(drain_hands_a_chunk_back_with_a_checkpoint)
{
    s_coord c;
    s_start(&c, "w3.sock", 0);
    s_hello(&c, 200);
    s_assign_denoise(&c, "t-drain", 21, 2, 0, NULL, NULL, 0);
    rf_wire_msg m;
    s_expect(&c, REELFARM__ENVELOPE__KIND_OVERLAP_UP, &m);
    rf_worker_drain(c.worker);
    rf_wire_msg d;
    s_expect(&c, REELFARM__ENVELOPE__KIND_DRAIN, &d);
    rf_wire_msg_release(&d);
    s_fuse_back(&c, &m, 1);
    rf_wire_msg_release(&m);
    s_expect(&c, REELFARM__ENVELOPE__KIND_CHECKPOINT, &m);
    RF_CHECK_EQ_INT(m.env->checkpoint->state->round, 1);
    RF_CHECK_EQ_INT(m.env->checkpoint->state->step, 2);
    RF_CHECK(rf_wire_msg_blob(&m, "state/latent") != NULL);
    rf_wire_msg_release(&m);
    s_expect(&c, REELFARM__ENVELOPE__KIND_TASK_ERROR, &m);
    RF_CHECK(m.env->task_error->retryable);
    RF_CHECK_CONTAINS(m.env->task_error->message, "handed back");
    rf_wire_msg_release(&m);
    pthread_join(c.thread, NULL); /* exits by itself once nothing is held */
    RF_CHECK_EQ_INT(c.run_rc, 0);
    rf_worker_destroy(&c.worker);
    zmq_close(c.router);
    zmq_ctx_term(c.zctx);
}

RF_TEST(cancel_and_garbage_do_not_stop_the_worker)
{
    s_coord c;
    s_start(&c, "w4.sock", 20);
    s_hello(&c, 200);
    s_assign_denoise(&c, "t-cancel", 31, 0, 0, NULL, NULL, 0);
    /* garbage frames straight on the socket */
    zmq_send(c.router, c.peer, c.peer_len, ZMQ_SNDMORE);
    zmq_send(c.router, "\xff\x00garbage", 9, 0);
    Reelfarm__CancelTask ct = REELFARM__CANCEL_TASK__INIT;
    ct.task_id = "t-cancel";
    ct.attempt = 31;
    ct.reason = "job canceled";
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_CANCEL_TASK;
    env.cancel_task = &ct;
    s_send(&c, &env, NULL, 0);
    /* the heartbeat lists no task once the cancel is through */
    for (int i = 0; i < 50; i++) {
        rf_wire_msg m;
        s_expect(&c, REELFARM__ENVELOPE__KIND_HEARTBEAT, &m);
        int n = (int)m.env->heartbeat->n_running;
        rf_wire_msg_release(&m);
        if (n == 0)
            break;
        RF_CHECK_MSG(i < 49, "the canceled task is still running");
    }
    s_stop(&c);
    RF_CHECK_EQ_INT(c.run_rc, 0);
}

RF_TEST(refusal_stops_and_silence_reconnects)
{
    s_coord c;
    s_start(&c, "w5.sock", 0);
    s_hello(&c, 50);
    /* say nothing: after 3 x 50 ms the worker reconnects with a new Hello */
    int64_t t0 = time(NULL);
    rf_wire_msg m;
    s_expect(&c, REELFARM__ENVELOPE__KIND_HELLO, &m);
    RF_CHECK(time(NULL) - t0 < 5);
    rf_wire_msg_release(&m);
    Reelfarm__Refuse r = REELFARM__REFUSE__INIT;
    r.code = RF_EVERSION;
    r.reason = "protocol 9 required";
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_REFUSE;
    env.refuse = &r;
    s_send(&c, &env, NULL, 0);
    pthread_join(c.thread, NULL);
    RF_CHECK(c.run_rc != 0);
    RF_CHECK_CONTAINS(c.run_err.msg, "protocol 9 required");
    rf_worker_destroy(&c.worker);
    zmq_close(c.router);
    zmq_ctx_term(c.zctx);
}
