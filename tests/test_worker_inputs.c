/* test_worker_inputs.c - ENCODE_MEDIA and DENOISE with conditions on a real worker (engine
 * executor, the tiny random model of tests/support/tiny_model), against a scripted
 * coordinator on ipc://: the latent of an input file's bytes equals the pipeline's own
 * encoding bit for bit; a chunk carrying the image's latent as condition ends with that
 * frame exactly; video -> video at strength 0 returns its condition; garbage bytes, a too
 * short clip and malformed conditions are refused with errors the coordinator can show.
 */
#include "pipeline.h"
#include "rf_test.h"
#include "tests/support/tiny_model.h"
#include "video.h"
#include "wire.h"
#include "worker/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

#define S 32

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

static void s_start(s_coord *c, const char *model)
{
    memset(c, 0, sizeof(*c));
    char path[512];
    rf_test_path(path, sizeof(path), "wi.sock");
    snprintf(c->ep, sizeof(c->ep), "ipc://%s", path);
    c->zctx = zmq_ctx_new();
    c->router = zmq_socket(c->zctx, ZMQ_ROUTER);
    int zero = 0, timeout = 20000;
    zmq_setsockopt(c->router, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(c->router, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
    RF_CHECK_EQ_INT(zmq_bind(c->router, c->ep), 0);
    rf_worker_config cfg = {0};
    cfg.coordinator = c->ep;
    cfg.name = "w-inputs";
    cfg.threads = 1;
    cfg.max_tasks = 4;
    rf_error err = {0};
    rf_executor *ex = rf_exec_engine_new(model, NULL, 1, &err);
    RF_CHECK_MSG(ex, "%s", err.msg);
    c->worker = rf_worker_new(&cfg, ex, &err);
    RF_CHECK_MSG(c->worker, "%s", err.msg);
    RF_CHECK_EQ_INT(pthread_create(&c->thread, NULL, s_worker_thread, c), 0);
}

static void s_expect(s_coord *c, int kind, rf_wire_msg *out)
{
    for (int i = 0; i < 400; i++) {
        memset(out, 0, sizeof(*out));
        rf_error err;
        int rc = rf_wire_recv(c->router, out, NULL, &err);
        RF_CHECK_MSG(rc == 0, "waiting for %s: %s", rf_wire_kind_name(kind), err.msg);
        memcpy(c->peer, out->peer, out->peer_len);
        c->peer_len = out->peer_len;
        if ((int)out->env->kind_case == kind)
            return;
        int k = out->env->kind_case;
        if (k == REELFARM__ENVELOPE__KIND_TASK_ERROR)
            rf_test_fail(__FILE__, __LINE__, "wanted %s, got a task error: %s",
                         rf_wire_kind_name(kind), out->env->task_error->message);
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

static void s_hello(s_coord *c)
{
    rf_wire_msg m;
    s_expect(c, REELFARM__ENVELOPE__KIND_HELLO, &m);
    rf_wire_msg_release(&m);
    Reelfarm__HelloAck ack = REELFARM__HELLO_ACK__INIT;
    ack.worker_id = "w1";
    ack.heartbeat_ms = 1000;
    ack.liveness = 5;
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

static void *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    RF_CHECK(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)n);
    RF_CHECK(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void s_write_image(const char *path)
{
    rf_video_opts vo = {RF_CODEC_PNG, S, S, 0, 0, 8, -1};
    rf_error err = {0};
    rf_video_writer *w = rf_video_writer_open(path, &vo, &err);
    RF_CHECK_MSG(w, "%s", err.msg);
    uint8_t rgb[S * S * 3];
    for (int i = 0; i < S * S * 3; i++)
        rgb[i] = (uint8_t)((i * 37) & 255);
    RF_CHECK_EQ_INT(rf_video_writer_write_u8(w, rgb, &err), 0);
    RF_CHECK_EQ_INT(rf_video_writer_close(&w, &err), 0);
}

/* Sends ENCODE_MEDIA of bytes (frames pixel frames). */
static void s_assign_media(s_coord *c, const char *id, const void *bytes, size_t len, int frames)
{
    Reelfarm__EncodeMedia em = REELFARM__ENCODE_MEDIA__INIT;
    em.size_bytes = len;
    em.frames = (uint32_t)frames;
    em.role = REELFARM__MEDIA_ROLE__MEDIA_IMAGE;
    em.width = S;
    em.height = S;
    Reelfarm__TaskAssign a = REELFARM__TASK_ASSIGN__INIT;
    a.task_id = (char *)id;
    a.attempt = 1;
    a.job_id = "job-in";
    a.kind = REELFARM__TASK_KIND__TASK_ENCODE_MEDIA;
    a.task_case = REELFARM__TASK_ASSIGN__TASK_ENCODE_MEDIA;
    a.encode_media = &em;
    a.lease_ms = 10000;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_ASSIGN;
    env.assign = &a;
    rf_wire_blob b;
    memset(&b, 0, sizeof(b));
    b.name = "input";
    b.dtype = RF_DTYPE_U8;
    b.ndim = 1;
    b.shape[0] = (int64_t)len;
    b.frame_axis = -1;
    b.data = (void *)bytes;
    b.len = len;
    s_send(c, &env, &b, 1);
}

/* DENOISE of the whole 3-latent-frame timeline [0, 3) with one condition over
 * [cfirst, cfirst + cn) and strength; ctx [rows, 64]. */
static void s_assign_denoise(s_coord *c, const char *id, const float *cond, int cfirst, int cn,
                             float strength, const float *ctx, int rows)
{
    Reelfarm__FrameRange fr = REELFARM__FRAME_RANGE__INIT, cf = REELFARM__FRAME_RANGE__INIT;
    fr.start = 0;
    fr.end = 3;
    cf.start = (uint32_t)cfirst;
    cf.end = (uint32_t)(cfirst + cn);
    Reelfarm__FrameRange *cfp[1] = {&cf};
    Reelfarm__BlobRef ref = REELFARM__BLOB_REF__INIT;
    ref.name = "condition/0";
    Reelfarm__BlobRef *refp[1] = {&ref};
    Reelfarm__Denoise d = REELFARM__DENOISE__INIT;
    d.frames = &fr;
    d.timeline_frames = 3;
    d.step_end = 4;
    d.steps_total = 4;
    d.sampler = REELFARM__SAMPLER__SAMPLER_UNIPC;
    d.shift = 3.0f;
    d.guidance = 1.0f;
    d.seed = 5;
    d.source = REELFARM__STATE_SOURCE__STATE_FRESH;
    d.width = S;
    d.height = S;
    d.n_conditions = 1;
    d.conditions = refp;
    d.n_condition_frames = 1;
    d.condition_frames = cfp;
    d.strength = strength;
    Reelfarm__TaskAssign a = REELFARM__TASK_ASSIGN__INIT;
    a.task_id = (char *)id;
    a.attempt = 1;
    a.job_id = "job-in";
    a.kind = REELFARM__TASK_KIND__TASK_DENOISE;
    a.lease_ms = 10000;
    a.task_case = REELFARM__TASK_ASSIGN__TASK_DENOISE;
    a.denoise = &d;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_ASSIGN;
    env.assign = &a;
    rf_wire_blob b[2];
    memset(b, 0, sizeof(b));
    b[0].name = "context";
    b[0].dtype = RF_DTYPE_F32;
    b[0].ndim = 2;
    b[0].shape[0] = rows;
    b[0].shape[1] = 64;
    b[0].frame_axis = -1;
    b[0].data = (void *)ctx;
    b[0].len = (size_t)rows * 64 * sizeof(float);
    b[1].name = "condition/0";
    b[1].dtype = RF_DTYPE_F32;
    b[1].ndim = 4;
    b[1].shape[0] = 16;
    b[1].shape[1] = cn;
    b[1].shape[2] = S / 8;
    b[1].shape[3] = S / 8;
    b[1].frame_axis = 1;
    b[1].data = (void *)cond;
    b[1].len = (size_t)(16 * cn * (S / 8) * (S / 8)) * sizeof(float);
    s_send(c, &env, b, 2);
}

#define FR ((S / 8) * (S / 8)) /* one latent frame's plane */

RF_TEST(encode_media_and_conditioned_denoise)
{
    char model[1024], img[1024];
    RF_CHECK(rf_test_tiny_model(model, sizeof(model)));
    s_write_image(rf_test_path(img, sizeof(img), "in.png"));
    size_t len = 0;
    void *bytes = s_slurp(img, &len);
    /* what the pipeline itself makes of the file */
    rf_pipeline_opts po = {1};
    rf_error err = {0};
    rf_pipeline *p = rf_pipeline_open(model, &po, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    float *want = NULL;
    int64_t T = 0;
    RF_CHECK_EQ_INT(rf_pipeline_encode_media(p, img, S, S, 0, 1, &want, &T, &err), 0);
    float ctx[5 * 64];
    for (int i = 0; i < 5 * 64; i++)
        ctx[i] = (float)((i * 13) % 11) * 0.1f - 0.5f;

    s_coord c;
    s_start(&c, model);
    s_hello(&c);
    s_assign_media(&c, "t-media", bytes, len, 1);
    rf_wire_msg m;
    s_expect(&c, REELFARM__ENVELOPE__KIND_RESULT, &m);
    const rf_wire_blob *lat = rf_wire_msg_blob(&m, "latent");
    RF_CHECK(lat && lat->ndim == 4 && lat->shape[0] == 16 && lat->shape[1] == 1 &&
             lat->shape[2] == S / 8 && lat->shape[3] == S / 8);
    RF_CHECK_EQ_INT(m.env->result->frames, 1);
    RF_CHECK(memcmp(lat->data, want, 16 * FR * sizeof(float)) == 0);
    rf_wire_msg_release(&m);

    /* image -> video: frame 0 comes back exactly */
    s_assign_denoise(&c, "t-i2v", want, 0, 1, 0.0f, ctx, 5);
    s_expect(&c, REELFARM__ENVELOPE__KIND_RESULT, &m);
    lat = rf_wire_msg_blob(&m, "latent");
    RF_CHECK(lat && lat->shape[1] == 3);
    const float *z = lat->data;
    for (int ch = 0; ch < 16; ch++)
        RF_CHECK(memcmp(z + (size_t)ch * 3 * FR, want + (size_t)ch * FR, FR * sizeof(float)) == 0);
    rf_wire_msg_release(&m);

    /* video -> video at strength 0 (a 3-frame condition): the condition itself */
    float clip[16 * 3 * FR];
    for (int i = 0; i < 16 * 3 * FR; i++)
        clip[i] = (float)((i * 7) % 13) * 0.1f - 0.6f;
    s_assign_denoise(&c, "t-v2v", clip, 0, 3, 1e-9f, ctx, 5);
    s_expect(&c, REELFARM__ENVELOPE__KIND_RESULT, &m);
    lat = rf_wire_msg_blob(&m, "latent");
    RF_CHECK(lat && memcmp(lat->data, clip, sizeof(clip)) == 0);
    rf_wire_msg_release(&m);

    /* garbage bytes: refused with an error the coordinator can show */
    s_assign_media(&c, "t-junk", "not an image at all", 19, 1);
    s_expect(&c, REELFARM__ENVELOPE__KIND_TASK_ERROR, &m);
    RF_CHECK_EQ_STR(m.env->task_error->task_id, "t-junk");
    rf_wire_msg_release(&m);
    /* an image asked for 5 frames: too short */
    s_assign_media(&c, "t-short", bytes, len, 5);
    s_expect(&c, REELFARM__ENVELOPE__KIND_TASK_ERROR, &m);
    RF_CHECK_CONTAINS(m.env->task_error->message, "has 1 frames; 5 are needed");
    RF_CHECK(!m.env->task_error->retryable);
    rf_wire_msg_release(&m);
    /* a strength out of range */
    s_assign_denoise(&c, "t-bad", clip, 0, 3, 2.0f, ctx, 5);
    s_expect(&c, REELFARM__ENVELOPE__KIND_TASK_ERROR, &m);
    RF_CHECK_CONTAINS(m.env->task_error->message, "strength");
    rf_wire_msg_release(&m);

    s_stop(&c);
    RF_CHECK_EQ_INT(c.run_rc, 0);
    rf_pipeline_destroy(&p);
    free(want);
    free(bytes);
}
