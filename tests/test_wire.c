/* test_wire.c - common/wire: round trips over inproc:// and ipc:// DEALER/ROUTER pairs,
 * every kind of malformed message (each must come back as an error, with its frames
 * drained so the next good message still arrives), error replies to the sender, and
 * a fuzz loop of random and mutated frames that must never crash.
 */
#include "rf_test.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>
#include <zmq.h>

typedef struct pair {
    void *ctx;
    void *router;
    void *dealer;
} pair;

static int s_pair_seq;

/* A ROUTER bound to an endpoint of the given transport and a DEALER with routing id
 * "w1" connected to it; receives time out after 5 s so a lost message fails, not hangs. */
static void s_pair_open(pair *p, const char *transport)
{
    char ep[512];
    if (strcmp(transport, "ipc") == 0) {
        char path[400];
        snprintf(path, sizeof(path), "wire-%d.sock", ++s_pair_seq);
        snprintf(ep, sizeof(ep), "ipc://%s/%s", rf_test_tmpdir(), path);
    } else {
        snprintf(ep, sizeof(ep), "inproc://wire-%d", ++s_pair_seq);
    }
    p->ctx = zmq_ctx_new();
    RF_CHECK(p->ctx);
    p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
    p->dealer = zmq_socket(p->ctx, ZMQ_DEALER);
    RF_CHECK(p->router && p->dealer);
    int ms = 5000, zero = 0;
    void *socks[2] = {p->router, p->dealer};
    for (int i = 0; i < 2; i++) {
        zmq_setsockopt(socks[i], ZMQ_RCVTIMEO, &ms, sizeof(ms));
        zmq_setsockopt(socks[i], ZMQ_SNDTIMEO, &ms, sizeof(ms));
        zmq_setsockopt(socks[i], ZMQ_LINGER, &zero, sizeof(zero));
    }
    zmq_setsockopt(p->dealer, ZMQ_ROUTING_ID, "w1", 2);
    RF_CHECK_MSG(zmq_bind(p->router, ep) == 0, "bind %s: %s", ep, zmq_strerror(zmq_errno()));
    RF_CHECK(zmq_connect(p->dealer, ep) == 0);
}

static void s_pair_close(pair *p)
{
    zmq_close(p->router);
    zmq_close(p->dealer);
    zmq_ctx_term(p->ctx);
}

/* Packs env as-is (no wire layer): for building hostile messages. Caller frees. */
static uint8_t *s_pack(const Reelfarm__Envelope *env, size_t *len)
{
    *len = reelfarm__envelope__get_packed_size(env);
    uint8_t *buf = malloc(*len ? *len : 1);
    RF_CHECK(buf);
    RF_CHECK_EQ_INT(reelfarm__envelope__pack(env, buf), *len);
    return buf;
}

/* Sends frames raw from sock; the last without SNDMORE. */
static void s_send_raw(void *sock, const void *const *data, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        RF_CHECK(zmq_send(sock, data[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
}

/* A heartbeat from dealer with seq; the router must get it intact. */
static void s_send_heartbeat(void *sock, uint64_t seq, const rf_wire_msg *to)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Heartbeat hb = REELFARM__HEARTBEAT__INIT;
    hb.seq = seq;
    env.request_id = 1000 + seq;
    env.kind_case = REELFARM__ENVELOPE__KIND_HEARTBEAT;
    env.heartbeat = &hb;
    rf_wire_msg m = {.env = &env};
    if (to)
        rf_wire_msg_copy_peer(&m, to);
    rf_error err = {0};
    int rc = rf_wire_send(sock, &m, &err);
    RF_CHECK_MSG(rc == 0, "send heartbeat: %s", err.msg);
}

static void s_expect_heartbeat(void *sock, uint64_t seq, const rf_wire_limits *lim)
{
    rf_wire_msg m;
    rf_error err = {0};
    int rc = rf_wire_recv(sock, &m, lim, &err);
    RF_CHECK_MSG(rc == 0, "a good message after a bad one must arrive: %s", err.msg);
    RF_CHECK_EQ_INT(m.env->kind_case, REELFARM__ENVELOPE__KIND_HEARTBEAT);
    RF_CHECK_EQ_INT(m.env->heartbeat->seq, seq);
    RF_CHECK_EQ_INT(m.request_id, 1000 + seq);
    rf_wire_msg_release(&m);
}

/* Receives on router: must fail with code and a message containing needle; then the
 * router answers with an Error the dealer must get, and a good heartbeat must follow. */
static void s_expect_bad(pair *p, const rf_wire_limits *lim, int code, const char *needle)
{
    rf_wire_msg m;
    rf_error err = {0};
    int rc = rf_wire_recv(p->router, &m, lim, &err);
    RF_CHECK_MSG(rc == code, "expected %s, got %s: %s", rf_status_name(code), rf_status_name(rc),
                 err.msg);
    RF_CHECK_CONTAINS(err.msg, needle);
    RF_CHECK(m.env == NULL && m.blobs == NULL && m.rx == NULL);
    RF_CHECK_EQ_INT(m.peer_len, 2);
    RF_CHECK(memcmp(m.peer, "w1", 2) == 0);

    rf_error err2 = {0};
    uint64_t rid = m.request_id;
    RF_CHECK_MSG(rf_wire_reply_error(p->router, &m, rc, err.msg, &err2) == 0, "%s", err2.msg);
    rf_wire_msg_release(&m);
    rf_wire_msg r;
    RF_CHECK_MSG(rf_wire_recv(p->dealer, &r, NULL, &err2) == 0, "%s", err2.msg);
    RF_CHECK_EQ_INT(r.env->kind_case, REELFARM__ENVELOPE__KIND_ERROR);
    RF_CHECK_EQ_INT(r.env->error->code, code);
    RF_CHECK_EQ_STR(r.env->error->message, err.msg);
    RF_CHECK_EQ_INT(r.env->reply_to, rid);
    rf_wire_msg_release(&r);

    static uint64_t seq = 1;
    seq++;
    s_send_heartbeat(p->dealer, seq, NULL);
    s_expect_heartbeat(p->router, seq, lim);
}

/* A well-formed envelope with a Progress and n blob descriptors for blobs of 4 floats
 * named b0.. with the given data; descriptors can be edited before packing. */
typedef struct raw_msg {
    Reelfarm__Envelope env;
    Reelfarm__Progress progress;
    Reelfarm__Blob descs[8];
    Reelfarm__Blob *ptrs[8];
    int64_t shapes[8][1];
    char names[8][8];
    float data[8][4];
} raw_msg;

static void s_raw_init(raw_msg *r, int n)
{
    memset(r, 0, sizeof(*r));
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Progress pr = REELFARM__PROGRESS__INIT;
    r->env = env;
    r->progress = pr;
    r->progress.task_id = "t1";
    r->progress.steps_done = 3;
    r->env.version = RF_PROTOCOL_VERSION;
    r->env.request_id = 77;
    r->env.kind_case = REELFARM__ENVELOPE__KIND_PROGRESS;
    r->env.progress = &r->progress;
    r->env.n_blobs = (size_t)n;
    r->env.blobs = r->ptrs;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 4; j++)
            r->data[i][j] = (float)(i * 10 + j);
        snprintf(r->names[i], sizeof(r->names[i]), "b%d", i);
        reelfarm__blob__init(&r->descs[i]);
        r->descs[i].name = r->names[i];
        r->descs[i].dtype = REELFARM__DTYPE__DTYPE_F32;
        r->shapes[i][0] = 4;
        r->descs[i].n_shape = 1;
        r->descs[i].shape = r->shapes[i];
        r->descs[i].frame_axis = -1;
        r->descs[i].byte_length = sizeof(r->data[i]);
        r->descs[i].xxh64 = XXH64(r->data[i], sizeof(r->data[i]), 0);
        r->ptrs[i] = &r->descs[i];
    }
}

/* Sends the raw message from the dealer: envelope then `frames` blob frames (which may
 * differ from what the envelope declares). */
static void s_raw_send(pair *p, raw_msg *r, int frames)
{
    size_t elen;
    uint8_t *e = s_pack(&r->env, &elen);
    const void *data[9] = {e};
    size_t lens[9] = {elen};
    for (int i = 0; i < frames; i++) {
        data[1 + i] = r->data[i % 8];
        lens[1 + i] = sizeof(r->data[i % 8]);
    }
    s_send_raw(p->dealer, data, lens, 1 + frames);
    free(e);
}

/* ---------------------------------------------------------------- round trips */

static void s_round_trip(const char *transport)
{
    pair p;
    s_pair_open(&p, transport);
    rf_error err = {0};

    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Hello hello = REELFARM__HELLO__INIT;
    char *hashes[2] = {"aa11", "bb22"};
    hello.name = "worker-1";
    hello.backend = "cpu";
    hello.memory_bytes = 1ull << 34;
    hello.threads = 2;
    hello.tp = 1;
    hello.n_model_hashes = 2;
    hello.model_hashes = hashes;
    env.request_id = 42;
    env.kind_case = REELFARM__ENVELOPE__KIND_HELLO;
    env.hello = &hello;

    float lat[2 * 3];
    for (int i = 0; i < 6; i++)
        lat[i] = 0.5f * (float)i - 1.0f;
    uint8_t seg[3] = {1, 2, 3};
    size_t big_n = 100000; /* a large frame: its own allocation in libzmq */
    float *big = malloc(big_n * sizeof(float));
    RF_CHECK(big);
    for (size_t i = 0; i < big_n; i++)
        big[i] = (float)i;
    rf_wire_blob blobs[3] = {
        {.name = "state/x",
         .dtype = RF_DTYPE_F32,
         .ndim = 2,
         .shape = {2, 3},
         .frame_axis = 0,
         .frame_start = 5,
         .data = lat,
         .len = sizeof(lat)},
        {.name = "segment",
         .dtype = RF_DTYPE_U8,
         .ndim = 1,
         .shape = {3},
         .frame_axis = -1,
         .data = seg,
         .len = sizeof(seg)},
        {.name = "big",
         .dtype = RF_DTYPE_F32,
         .ndim = 1,
         .shape = {(int64_t)big_n},
         .frame_axis = 0,
         .data = big,
         .len = big_n * sizeof(float)},
    };
    rf_wire_msg m = {.env = &env, .blobs = blobs, .n_blobs = 3};
    RF_CHECK_MSG(rf_wire_send(p.dealer, &m, &err) == 0, "%s", err.msg);

    rf_wire_msg got;
    RF_CHECK_MSG(rf_wire_recv(p.router, &got, NULL, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(got.peer_len, 2);
    RF_CHECK(memcmp(got.peer, "w1", 2) == 0);
    RF_CHECK_EQ_INT(got.env->version, RF_PROTOCOL_VERSION);
    RF_CHECK_EQ_INT(got.request_id, 42);
    RF_CHECK_EQ_STR(rf_wire_kind_name(got.env->kind_case), "hello");
    RF_CHECK_EQ_STR(got.env->hello->name, "worker-1");
    RF_CHECK_EQ_STR(got.env->hello->backend, "cpu");
    RF_CHECK_EQ_INT(got.env->hello->memory_bytes, 1ull << 34);
    RF_CHECK_EQ_INT(got.env->hello->n_model_hashes, 2);
    RF_CHECK_EQ_STR(got.env->hello->model_hashes[1], "bb22");
    RF_CHECK_EQ_INT(got.n_blobs, 3);
    const rf_wire_blob *x = rf_wire_msg_blob(&got, "state/x");
    RF_CHECK(x && x == &got.blobs[0]);
    RF_CHECK_EQ_INT(x->dtype, RF_DTYPE_F32);
    RF_CHECK_EQ_INT(x->ndim, 2);
    RF_CHECK_EQ_INT(x->shape[0], 2);
    RF_CHECK_EQ_INT(x->shape[1], 3);
    RF_CHECK_EQ_INT(x->frame_axis, 0);
    RF_CHECK_EQ_INT(x->frame_start, 5);
    RF_CHECK_EQ_INT(x->len, sizeof(lat));
    RF_CHECK(((uintptr_t)x->data % 8) == 0);
    RF_CHECK(memcmp(x->data, lat, sizeof(lat)) == 0);
    const rf_wire_blob *s = rf_wire_msg_blob(&got, "segment");
    RF_CHECK(s && s->dtype == RF_DTYPE_U8 && s->frame_axis == -1 && s->len == 3);
    RF_CHECK(memcmp(s->data, seg, 3) == 0);
    const rf_wire_blob *b = rf_wire_msg_blob(&got, "big");
    RF_CHECK(b && b->len == big_n * sizeof(float));
    RF_CHECK(((uintptr_t)b->data % 8) == 0);
    RF_CHECK(memcmp(b->data, big, b->len) == 0);
    RF_CHECK(rf_wire_msg_blob(&got, "missing") == NULL);

    /* Answer on the ROUTER: the identity is added again, the dealer sees none. */
    Reelfarm__Envelope ack = REELFARM__ENVELOPE__INIT;
    Reelfarm__HelloAck ha = REELFARM__HELLO_ACK__INIT;
    ha.worker_id = "w-0001";
    ha.heartbeat_ms = 1000;
    ack.reply_to = got.request_id;
    ack.kind_case = REELFARM__ENVELOPE__KIND_HELLO_ACK;
    ack.hello_ack = &ha;
    rf_wire_msg reply = {.env = &ack};
    rf_wire_msg_copy_peer(&reply, &got);
    rf_wire_msg_release(&got);
    RF_CHECK(got.env == NULL && got.rx == NULL);
    rf_wire_msg_release(&got); /* twice is safe */
    RF_CHECK_MSG(rf_wire_send(p.router, &reply, &err) == 0, "%s", err.msg);
    rf_wire_msg back;
    RF_CHECK_MSG(rf_wire_recv(p.dealer, &back, NULL, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(back.peer_len, 0);
    RF_CHECK_EQ_INT(back.n_blobs, 0);
    RF_CHECK_EQ_INT(back.env->reply_to, 42);
    RF_CHECK_EQ_STR(back.env->hello_ack->worker_id, "w-0001");
    RF_CHECK_EQ_INT(back.env->hello_ack->heartbeat_ms, 1000);
    rf_wire_msg_release(&back);
    free(big);
    s_pair_close(&p);
}

RF_TEST(round_trip_with_blobs_inproc)
{
    s_round_trip("inproc");
}

RF_TEST(round_trip_with_blobs_ipc)
{
    s_round_trip("ipc");
}

RF_TEST(denoise_assign_round_trip)
{
    pair p;
    s_pair_open(&p, "inproc");
    rf_error err = {0};
    s_send_heartbeat(p.dealer, 1, NULL); /* the router learns the dealer's id */
    rf_wire_msg first;
    RF_CHECK(rf_wire_recv(p.router, &first, NULL, &err) == 0);

    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__TaskAssign as = REELFARM__TASK_ASSIGN__INIT;
    Reelfarm__Denoise dn = REELFARM__DENOISE__INIT;
    Reelfarm__FrameRange fr = REELFARM__FRAME_RANGE__INIT;
    fr.start = 15;
    fr.end = 36;
    dn.frames = &fr;
    dn.step_begin = 4;
    dn.step_end = 5;
    dn.steps_total = 30;
    dn.sampler = REELFARM__SAMPLER__SAMPLER_UNIPC;
    dn.shift = 5.0f;
    dn.guidance = 6.0f;
    dn.seed = 0xfeedbeefcafeull;
    dn.sync_every = 1;
    dn.source = REELFARM__STATE_SOURCE__STATE_RESIDENT;
    as.task_id = "job1/dn/0/3";
    as.attempt = 9;
    as.kind = REELFARM__TASK_KIND__TASK_DENOISE;
    as.model_hash = "0123abcd";
    as.task_case = REELFARM__TASK_ASSIGN__TASK_DENOISE;
    as.denoise = &dn;
    env.kind_case = REELFARM__ENVELOPE__KIND_ASSIGN;
    env.assign = &as;
    rf_wire_msg m = {.env = &env};
    rf_wire_msg_copy_peer(&m, &first);
    rf_wire_msg_release(&first);
    RF_CHECK_MSG(rf_wire_send(p.router, &m, &err) == 0, "%s", err.msg);

    rf_wire_msg got;
    RF_CHECK_MSG(rf_wire_recv(p.dealer, &got, NULL, &err) == 0, "%s", err.msg);
    const Reelfarm__TaskAssign *g = got.env->assign;
    RF_CHECK_EQ_STR(rf_wire_kind_name(got.env->kind_case), "assign");
    RF_CHECK_EQ_INT(g->task_case, REELFARM__TASK_ASSIGN__TASK_DENOISE);
    RF_CHECK_EQ_INT(g->attempt, 9);
    RF_CHECK_EQ_INT(g->denoise->frames->start, 15);
    RF_CHECK_EQ_INT(g->denoise->frames->end, 36);
    RF_CHECK_EQ_INT(g->denoise->seed, 0xfeedbeefcafeull);
    RF_CHECK_EQ_INT(g->denoise->sampler, REELFARM__SAMPLER__SAMPLER_UNIPC);
    RF_CHECK_NEAR(g->denoise->shift, 5.0, 0);
    rf_wire_msg_release(&got);
    s_pair_close(&p);
}

RF_TEST(kind_names)
{
    RF_CHECK_EQ_STR(rf_wire_kind_name(REELFARM__ENVELOPE__KIND__NOT_SET), "none");
    RF_CHECK_EQ_STR(rf_wire_kind_name(REELFARM__ENVELOPE__KIND_OVERLAP_UP), "overlap_up");
    RF_CHECK_EQ_STR(rf_wire_kind_name(REELFARM__ENVELOPE__KIND_ERROR), "error");
    RF_CHECK_EQ_STR(rf_wire_kind_name(2), "unknown"); /* request_id: not a kind */
    RF_CHECK_EQ_STR(rf_wire_kind_name(9999), "unknown");
}

RF_TEST(small_blobs_are_aligned)
{
    /* Frames of a few bytes live inside libzmq's message struct: the wire layer must
     * still hand out 8-byte aligned data. */
    pair p;
    s_pair_open(&p, "inproc");
    rf_error err = {0};
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Ok ok = REELFARM__OK__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_OK;
    env.ok = &ok;
    uint8_t one[1] = {7};
    double d[2] = {1.5, -2.25};
    int64_t q[3] = {-1, 0, 1};
    rf_wire_blob blobs[4] = {
        {.name = "one",
         .dtype = RF_DTYPE_U8,
         .ndim = 1,
         .shape = {1},
         .frame_axis = -1,
         .data = one,
         .len = 1},
        {.name = "d",
         .dtype = RF_DTYPE_F64,
         .ndim = 1,
         .shape = {2},
         .frame_axis = -1,
         .data = d,
         .len = 16},
        {.name = "q",
         .dtype = RF_DTYPE_I64,
         .ndim = 1,
         .shape = {3},
         .frame_axis = -1,
         .data = q,
         .len = 24},
        {.name = "empty",
         .dtype = RF_DTYPE_F32,
         .ndim = 2,
         .shape = {0, 4},
         .frame_axis = 0,
         .data = NULL,
         .len = 0},
    };
    rf_wire_msg m = {.env = &env, .blobs = blobs, .n_blobs = 4};
    RF_CHECK_MSG(rf_wire_send(p.dealer, &m, &err) == 0, "%s", err.msg);
    rf_wire_msg got;
    RF_CHECK_MSG(rf_wire_recv(p.router, &got, NULL, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(got.n_blobs, 4);
    for (size_t i = 0; i < 3; i++) {
        RF_CHECK(((uintptr_t)got.blobs[i].data % 8) == 0);
        RF_CHECK(memcmp(got.blobs[i].data, blobs[i].data, blobs[i].len) == 0);
    }
    RF_CHECK_EQ_INT(got.blobs[3].len, 0);
    RF_CHECK_EQ_INT(got.blobs[3].shape[0], 0);
    rf_wire_msg_release(&got);
    s_pair_close(&p);
}

/* ---------------------------------------------------------------- bad sends */

RF_TEST(send_refuses_bad_blobs_and_sends_nothing)
{
    pair p;
    s_pair_open(&p, "inproc");
    rf_error err = {0};
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Ok ok = REELFARM__OK__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_OK;
    env.ok = &ok;
    float f[4] = {0};
    rf_wire_blob b = {.name = "x",
                      .dtype = RF_DTYPE_F32,
                      .ndim = 1,
                      .shape = {5},
                      .frame_axis = -1,
                      .data = f,
                      .len = sizeof(f)};
    rf_wire_msg m = {.env = &env, .blobs = &b, .n_blobs = 1};
    RF_CHECK_EQ_INT(rf_wire_send(p.dealer, &m, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "blob 'x'");
    RF_CHECK_CONTAINS(err.msg, "20 bytes but 16 given");
    b.shape[0] = 4;
    b.frame_axis = 1;
    RF_CHECK_EQ_INT(rf_wire_send(p.dealer, &m, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "frame_axis");
    b.frame_axis = -1;
    b.dtype = (rf_dtype)99;
    RF_CHECK_EQ_INT(rf_wire_send(p.dealer, &m, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "unknown dtype");
    b.dtype = RF_DTYPE_F32;
    b.name = "";
    RF_CHECK_EQ_INT(rf_wire_send(p.dealer, &m, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "no name");
    b.name = "x";
    b.ndim = RF_WIRE_MAX_DIMS + 1;
    RF_CHECK_EQ_INT(rf_wire_send(p.dealer, &m, &err), RF_EINVAL);
    b.ndim = 1;
    env.kind_case = REELFARM__ENVELOPE__KIND__NOT_SET;
    RF_CHECK_EQ_INT(rf_wire_send(p.dealer, &m, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "no message kind");
    env.kind_case = REELFARM__ENVELOPE__KIND_OK;
    /* A ROUTER needs to know where to send. */
    rf_wire_msg nopeer = {.env = &env};
    RF_CHECK_EQ_INT(rf_wire_send(p.router, &nopeer, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "routing id");
    /* Nothing of the refused sends reached the router: the next message is this one. */
    s_send_heartbeat(p.dealer, 5, NULL);
    s_expect_heartbeat(p.router, 5, NULL);
    s_pair_close(&p);
}

RF_TEST(router_mandatory_unknown_peer)
{
    pair p;
    s_pair_open(&p, "inproc");
    int one = 1;
    zmq_setsockopt(p.router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Ok ok = REELFARM__OK__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_OK;
    env.ok = &ok;
    rf_wire_msg m = {.env = &env};
    memcpy(m.peer, "nobody", 6);
    m.peer_len = 6;
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_wire_send(p.router, &m, &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "not connected");
    s_pair_close(&p);
}

/* ---------------------------------------------------------------- bad receives */

RF_TEST(truncated_fewer_blob_frames_than_declared)
{
    pair p;
    s_pair_open(&p, "inproc");
    raw_msg r;
    s_raw_init(&r, 3);
    s_raw_send(&p, &r, 2);
    s_expect_bad(&p, NULL, RF_EPROTO, "truncated message: the envelope declares 3 blobs but 2");
    s_raw_init(&r, 1);
    s_raw_send(&p, &r, 0);
    s_expect_bad(&p, NULL, RF_EPROTO, "truncated");
    s_pair_close(&p);
}

RF_TEST(extra_frames)
{
    pair p;
    s_pair_open(&p, "ipc");
    raw_msg r;
    s_raw_init(&r, 1);
    s_raw_send(&p, &r, 3);
    s_expect_bad(&p, NULL, RF_EPROTO, "extra frames");
    s_pair_close(&p);
}

RF_TEST(oversized_total)
{
    pair p;
    s_pair_open(&p, "inproc");
    rf_wire_limits lim = rf_wire_limits_default();
    lim.max_total_bytes = 100;
    raw_msg r;
    s_raw_init(&r, 8); /* 8 x 16 bytes of blobs alone: over 100 */
    s_raw_send(&p, &r, 8);
    s_expect_bad(&p, &lim, RF_ENOMEM, "larger than 100 bytes");
    /* Each frame is small: it is the whole message that is bounded. */
    s_pair_close(&p);
}

RF_TEST(too_many_frames)
{
    pair p;
    s_pair_open(&p, "inproc");
    rf_wire_limits lim = rf_wire_limits_default();
    lim.max_blobs = 2;
    raw_msg r;
    s_raw_init(&r, 5);
    s_raw_send(&p, &r, 5);
    s_expect_bad(&p, &lim, RF_ENOMEM, "more than 2 blobs");
    /* A lying count with few frames is refused on the count too. */
    s_raw_init(&r, 5);
    s_raw_send(&p, &r, 2);
    s_expect_bad(&p, &lim, RF_ENOMEM, "declares 5 blobs (limit max_blobs 2)");
    s_pair_close(&p);
}

RF_TEST(wrong_checksum)
{
    pair p;
    s_pair_open(&p, "inproc");
    raw_msg r;
    s_raw_init(&r, 2);
    r.descs[1].xxh64 ^= 1;
    s_raw_send(&p, &r, 2);
    s_expect_bad(&p, NULL, RF_EPROTO, "blob 'b1': checksum mismatch");
    s_pair_close(&p);
}

RF_TEST(wrong_length)
{
    pair p;
    s_pair_open(&p, "inproc");
    raw_msg r;
    s_raw_init(&r, 2);
    r.descs[0].byte_length = 20;
    s_raw_send(&p, &r, 2);
    s_expect_bad(&p, NULL, RF_EPROTO, "blob 'b0' declares 20 bytes but its frame has 16");
    /* The length matches the frame but not the shape. */
    s_raw_init(&r, 1);
    r.shapes[0][0] = 5;
    s_raw_send(&p, &r, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "shape x dtype size is 20 bytes but its frame has 16");
    /* A shape whose product overflows. */
    s_raw_init(&r, 1);
    int64_t huge[3] = {1ll << 40, 1ll << 40, 4};
    r.descs[0].shape = huge;
    r.descs[0].n_shape = 3;
    s_raw_send(&p, &r, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "overflows");
    s_raw_init(&r, 1);
    int64_t neg[1] = {-4};
    r.descs[0].shape = neg;
    s_raw_send(&p, &r, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "negative dim");
    s_pair_close(&p);
}

RF_TEST(bad_descriptors)
{
    pair p;
    s_pair_open(&p, "inproc");
    raw_msg r;
    s_raw_init(&r, 2);
    r.descs[1].name = "b0";
    s_raw_send(&p, &r, 2);
    s_expect_bad(&p, NULL, RF_EPROTO, "'b0' appears twice");
    s_raw_init(&r, 1);
    r.descs[0].name = "";
    s_raw_send(&p, &r, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "blob 0 has no name");
    s_raw_init(&r, 1);
    r.descs[0].dtype = (Reelfarm__DType)42;
    s_raw_send(&p, &r, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "unknown dtype 42");
    s_raw_init(&r, 1);
    r.descs[0].frame_axis = 1;
    s_raw_send(&p, &r, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "frame_axis 1 outside -1..0");
    s_raw_init(&r, 1);
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 4};
    r.descs[0].shape = nine;
    r.descs[0].n_shape = 9;
    s_raw_send(&p, &r, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "9 dims");
    s_pair_close(&p);
}

RF_TEST(garbage_instead_of_envelope)
{
    pair p;
    s_pair_open(&p, "inproc");
    const char junk[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff garbage";
    const void *d[1] = {junk};
    size_t l[1] = {sizeof(junk) - 1};
    s_send_raw(p.dealer, d, l, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "not a valid reelfarm protobuf message");
    /* Valid protobuf that is not one of ours (no version). */
    const uint8_t other[] = {0xa2, 0x06, 0x03, 'a', 'b', 'c'}; /* field 100, 3 bytes */
    d[0] = other;
    l[0] = sizeof(other);
    s_send_raw(p.dealer, d, l, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "no protocol version");
    /* An HTTP request, as a confused client would send. */
    const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    d[0] = http;
    l[0] = sizeof(http) - 1;
    s_send_raw(p.dealer, d, l, 1);
    rf_wire_msg m;
    rf_error err = {0};
    int rc = rf_wire_recv(p.router, &m, NULL, &err);
    RF_CHECK(rc == RF_EPROTO || rc == RF_EVERSION);
    rf_wire_msg_release(&m);
    s_send_heartbeat(p.dealer, 900, NULL);
    s_expect_heartbeat(p.router, 900, NULL);
    s_pair_close(&p);
}

RF_TEST(empty_message)
{
    pair p;
    s_pair_open(&p, "inproc");
    const void *d[1] = {""};
    size_t l[1] = {0};
    s_send_raw(p.dealer, d, l, 1);
    s_expect_bad(&p, NULL, RF_EPROTO, "empty envelope frame");
    /* An envelope with a version but no kind. */
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.version = RF_PROTOCOL_VERSION;
    env.request_id = 5;
    size_t len;
    uint8_t *e = s_pack(&env, &len);
    d[0] = e;
    l[0] = len;
    s_send_raw(p.dealer, d, l, 1);
    free(e);
    s_expect_bad(&p, NULL, RF_EPROTO, "no message kind");
    s_pair_close(&p);
}

RF_TEST(unknown_kind_from_newer_peer)
{
    pair p;
    s_pair_open(&p, "inproc");
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.version = RF_PROTOCOL_VERSION;
    size_t len;
    uint8_t *e = s_pack(&env, &len);
    uint8_t buf[64];
    memcpy(buf, e, len);
    free(e);
    /* field 1000, length-delimited, 2 bytes: tag varint (1000 << 3 | 2) = 0xc2 0x3e */
    const uint8_t extra[] = {0xc2, 0x3e, 0x02, 0x08, 0x01};
    memcpy(buf + len, extra, sizeof(extra));
    const void *d[1] = {buf};
    size_t l[1] = {len + sizeof(extra)};
    s_send_raw(p.dealer, d, l, 1);
    s_expect_bad(&p, NULL, RF_EUNSUPPORTED, "field 1000");
    s_pair_close(&p);
}

RF_TEST(version_mismatch)
{
    pair p;
    s_pair_open(&p, "ipc");
    raw_msg r;
    s_raw_init(&r, 1);
    r.env.version = RF_PROTOCOL_VERSION + 1;
    s_raw_send(&p, &r, 1);
    char want[128];
    snprintf(want, sizeof(want), "peer speaks protocol %u, this build speaks %u; upgrade this side",
             RF_PROTOCOL_VERSION + 1, RF_PROTOCOL_VERSION);
    s_expect_bad(&p, NULL, RF_EVERSION, want);
    s_raw_init(&r, 0);
    r.env.version = 1000000;
    s_raw_send(&p, &r, 0);
    s_expect_bad(&p, NULL, RF_EVERSION, "peer speaks protocol 1000000");
    s_pair_close(&p);
}

RF_TEST(oversized_envelope_and_decode_budget)
{
    pair p;
    s_pair_open(&p, "inproc");
    rf_wire_limits lim = rf_wire_limits_default();
    lim.max_envelope_bytes = 64;
    raw_msg r;
    s_raw_init(&r, 4); /* four descriptors: well over 64 bytes */
    s_raw_send(&p, &r, 4);
    s_expect_bad(&p, &lim, RF_ENOMEM, "limit max_envelope_bytes 64");

    /* 20000 empty strings: 40 KB on the wire, far more once decoded. */
    lim = rf_wire_limits_default();
    lim.max_decoded_bytes = 64 * 1024;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Hello h = REELFARM__HELLO__INIT;
    size_t n = 20000;
    char **hashes = calloc(n, sizeof(char *));
    RF_CHECK(hashes);
    for (size_t i = 0; i < n; i++)
        hashes[i] = "";
    h.n_model_hashes = n;
    h.model_hashes = hashes;
    env.version = RF_PROTOCOL_VERSION;
    env.kind_case = REELFARM__ENVELOPE__KIND_HELLO;
    env.hello = &h;
    size_t len;
    uint8_t *e = s_pack(&env, &len);
    free(hashes);
    const void *d[1] = {e};
    size_t l[1] = {len};
    s_send_raw(p.dealer, d, l, 1);
    free(e);
    s_expect_bad(&p, &lim, RF_ENOMEM, "limit max_decoded_bytes");
    s_pair_close(&p);
}

RF_TEST(dealer_side_refuses_bad_messages_too)
{
    pair p;
    s_pair_open(&p, "ipc");
    rf_error err = {0};
    s_send_heartbeat(p.dealer, 1, NULL);
    rf_wire_msg first;
    RF_CHECK(rf_wire_recv(p.router, &first, NULL, &err) == 0);
    /* From the router: identity, then a garbage envelope and two stray frames. */
    const char junk[] = "\x0a\xff\xff\xff\xff";
    const void *d[4] = {first.peer, junk, "a", "b"};
    size_t l[4] = {first.peer_len, sizeof(junk) - 1, 1, 1};
    s_send_raw(p.router, d, l, 4);
    rf_wire_msg m;
    RF_CHECK_EQ_INT(rf_wire_recv(p.dealer, &m, NULL, &err), RF_EPROTO);
    RF_CHECK_EQ_INT(m.peer_len, 0);
    rf_wire_msg_release(&m);
    /* Then a truncated one (declares one blob, sends none). */
    raw_msg r;
    s_raw_init(&r, 1);
    size_t elen;
    uint8_t *e = s_pack(&r.env, &elen);
    const void *d2[2] = {first.peer, e};
    size_t l2[2] = {first.peer_len, elen};
    s_send_raw(p.router, d2, l2, 2);
    free(e);
    RF_CHECK_EQ_INT(rf_wire_recv(p.dealer, &m, NULL, &err), RF_EPROTO);
    RF_CHECK_CONTAINS(err.msg, "truncated");
    s_send_heartbeat(p.router, 33, &first);
    s_expect_heartbeat(p.dealer, 33, NULL);
    rf_wire_msg_release(&first);
    s_pair_close(&p);
}

RF_TEST(recv_timeout_is_eagain)
{
    pair p;
    s_pair_open(&p, "inproc");
    int ms = 0; /* do not wait: nothing is queued */
    zmq_setsockopt(p.router, ZMQ_RCVTIMEO, &ms, sizeof(ms));
    rf_wire_msg m;
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_wire_recv(p.router, &m, NULL, &err), RF_EAGAIN);
    RF_CHECK(m.env == NULL);
    rf_wire_limits lim = rf_wire_limits_default();
    RF_CHECK_EQ_INT(rf_wire_socket_limits(p.router, &lim, &err), 0);
    int64_t max = 0;
    size_t sz = sizeof(max);
    zmq_getsockopt(p.router, ZMQ_MAXMSGSIZE, &max, &sz);
    RF_CHECK_EQ_INT(max, (int64_t)lim.max_total_bytes);
    s_pair_close(&p);
}

/* ---------------------------------------------------------------- fuzz */

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;
static uint64_t s_next(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

RF_TEST(fuzz_random_and_mutated_frames_never_crash)
{
    pair p;
    s_pair_open(&p, "inproc");
    rf_wire_limits lim = rf_wire_limits_default();
    lim.max_total_bytes = 4096;
    lim.max_blobs = 6;
    lim.max_decoded_bytes = 256 * 1024;
    raw_msg r;
    s_raw_init(&r, 3);
    size_t vlen;
    uint8_t *valid = s_pack(&r.env, &vlen);
    int ok = 0, bad = 0;
    for (int it = 0; it < 3000; it++) {
        uint8_t frames[7][160];
        const void *d[7];
        size_t l[7];
        int n = 1 + (int)(s_next() % 7);
        int exact = it % 10 == 0; /* the valid message itself: must be accepted, in sync */
        if (exact)
            n = 4;
        for (int i = 0; i < n && exact; i++) {
            d[i] = i == 0 ? (const void *)valid : (const void *)r.data[i - 1];
            l[i] = i == 0 ? vlen : sizeof(r.data[0]);
        }
        for (int i = 0; i < n && !exact; i++) {
            size_t len = (size_t)(s_next() % sizeof(frames[i]));
            if (i == 0 && (it & 1)) {
                /* a valid envelope with a few bytes flipped, truncated or extended */
                len = vlen <= sizeof(frames[i]) ? vlen : sizeof(frames[i]);
                memcpy(frames[i], valid, len);
                int flips = 1 + (int)(s_next() % 4);
                for (int k = 0; k < flips; k++)
                    frames[i][s_next() % len] ^= (uint8_t)(1u << (s_next() % 8));
                if (s_next() % 4 == 0)
                    len = (size_t)(s_next() % len);
            } else if (i > 0 && (it & 2)) {
                len = sizeof(r.data[0]); /* blob-sized frames, sometimes the real ones */
                memcpy(frames[i], r.data[(i - 1) % 8], len);
            } else {
                for (size_t k = 0; k < len; k++)
                    frames[i][k] = (uint8_t)s_next();
            }
            d[i] = frames[i];
            l[i] = len;
        }
        s_send_raw(p.dealer, d, l, n);
        rf_wire_msg m;
        rf_error err = {0};
        int rc = rf_wire_recv(p.router, &m, &lim, &err);
        RF_CHECK_MSG(rc != RF_EAGAIN, "iteration %d: a message went missing: %s", it, err.msg);
        RF_CHECK_MSG(!exact || rc == 0, "iteration %d: the valid message was refused: %s", it,
                     err.msg);
        if (rc == 0) {
            ok++;
            RF_CHECK(m.env != NULL);
            for (size_t b = 0; b < m.n_blobs; b++)
                RF_CHECK(m.blobs[b].len == 0 || m.blobs[b].data != NULL);
        } else {
            bad++;
            RF_CHECK(m.env == NULL && err.msg[0]);
        }
        rf_wire_msg_release(&m);
    }
    free(valid);
    RF_CHECK(bad > 0);
    /* The socket still works after all that. */
    s_send_heartbeat(p.dealer, 4242, NULL);
    s_expect_heartbeat(p.router, 4242, &lim);
    printf("# fuzz: %d accepted, %d refused\n", ok, bad);
    s_pair_close(&p);
}
