/* bench_scale.c - the coordinator under many simulated workers: dispatch rate, latency, cost.
 *
 * Starts build/bin/reelfarm-coordinator on ipc:// sockets in a temporary state dir
 * (/dev/shm when it exists, so SQLite's fsyncs measure the coordinator rather than this
 * machine's disk; RF_BENCH_SCALE_STATE=DIR picks another) and runs N simulated workers in
 * this one process and thread: N connections speaking ZMTP by hand (zmtp_dealer.c; with
 * RF_BENCH_SCALE_HARNESS=zmq, N libzmq DEALER sockets, which cost this process more CPU
 * than the coordinator uses), epoll over them, each a worker with one task slot,
 * answering every TaskAssign (ENCODE_TEXT -> a [4, 8] embedding,
 * DENOISE -> the chunk's latent [4, n, 1, 1], DECODE -> a few segment bytes).
 * The job: one shot of 40001 pixel frames in independent mode, 5-frame chunks
 * overlapping by 4 (stride 1 latent frame) = 10,000 DENOISE tasks of 1 step, then 1,250
 * DECODE segments and the byte-concatenated output.
 *
 * For each worker count (RF_BENCH_SCALE_WORKERS, default "100 1000"):
 *  - saturated: workers answer at once; DENOISE dispatches/s (first to last DENOISE
 *    TaskAssign), the coordinator's CPU per dispatch over that phase, its CPU for the
 *    whole job and its peak RSS. (Latency here is only queueing: N workers / rate.)
 *  - paced: each worker answers N / R s after its assignment, so R tasks/s are offered
 *    (R: half the saturated rate, at most 20,000; the first tasks end spread over that
 *    time, as a running farm's do); the achieved rate and the dispatch latency (a
 *    worker's TaskResult sent -> its next TaskAssign received: receive, durable result,
 *    commit, placement, both hops) p50/p99, and the p99 from each worker's third task on
 *    (steady state: the first rounds grow every connection's buffers); for DECODE
 *    segments, from when both the worker and the segment (its whole timeline denoised)
 *    were ready; the coordinator's own turn times from its /metrics.
 *  - peer: the same harness against a no-op ROUTER that answers every message with a
 *    TaskAssign at once (no state, no store): the ZeroMQ + protobuf + harness ceiling.
 * Peers measured once: the durable floor (what the store must do per task through
 * coordinator/store.c: the result blob packed as the coordinator packs it, the task row
 * twice, 64 tasks per commit; beside it with a blob row, the blob in a file of its own,
 * and the rows alone)
 * and lockstep mode: reelfarm-worker --backend sim --count 32 on a 256-chunk lockstep job
 * (sync every step): rounds/s and the coordinator's fusion round latency from /metrics.
 * And many short jobs: the same 10,000 chunks as 1,000 jobs of 10 on 100 workers
 * (RF_BENCH_SCALE_NO_JOBS / RF_BENCH_SCALE_NO_LOCKSTEP skip those).
 * Ratios: against the goal (>= 20,000 dispatches/s, p99 < 5 ms), the peers, and
 * the first worker count.
 */
#include "coordinator/store.h"
#include "hash.h"
#include "model_id.h"
#include "wire.h"
#include "zmtp_dealer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* DENOISE chunks of the job (RF_BENCH_SCALE_CHUNKS: a longer one, to profile) */
static int s_chunks = 10000;
#define GOAL_RATE   20000.0
#define GOAL_P99_MS 5.0

typedef struct sim {
    void *sock;   /* a libzmq DEALER (RF_BENCH_SCALE_HARNESS=zmq), or */
    rf_zmtp *raw; /* ZMTP spoken by hand (the default: the bench's own CPU stays small) */
    char name[32];
    int64_t freed_us; /* when its slot was freed by a result (0: never) */
    int64_t next_beat_ms;
    uint64_t req;
    int ndenoise; /* DENOISE tasks it was given */
} sim;

/* an assignment held back (paced mode); answered in arrival order (one delay for all) */
typedef struct pend {
    int w;
    int64_t due_us;
    char task_id[64];
    uint64_t attempt;
    int kind;
    int64_t fstart, fend;
    uint32_t keep;
} pend;

#define TURN_B 16 /* buckets of reelfarm_loop_turn_duration_seconds read back */
static double s_turn_le[TURN_B];

typedef struct harness {
    sim *ws;
    int n;
    int ep;
    int64_t delay_us; /* <0: answer at once */
    int echo;         /* the peer: no job, stop after s_chunks assignments */
    pend *q;
    size_t qhead, qtail, qcap;
    int64_t *lat;
    size_t nlat;
    int64_t *slat; /* the same from each worker's third DENOISE task on (steady state: */
    size_t nslat;  /* the first rounds grow every connection's buffers on both sides) */
    int64_t *dlat; /* DECODE dispatches: a worker's result -> its next (DECODE) assignment */
    size_t ndlat;
    long denoise, assigns;
    int64_t t_first, t_last;
    pid_t coord;
    double cpu_first, cpu_last;
    int mport;                           /* the coordinator's --metrics port (0: none) */
    double turn0[TURN_B], turn1[TURN_B]; /* its loop-turn histogram at the DENOISE phase's */
    int nturn;                           /* first and last dispatch (cumulative buckets) */
    int nfirst;                          /* first tasks received (paced: their phases) */
} harness;

/* the simulated workers speak ZMTP by hand (0: as libzmq DEALER sockets) */
static int s_raw = 1;

/* DENOISE results sent in this run, and when the last one went (0: not yet) */
static long s_denoised;
static int64_t s_all_denoised_us;

typedef struct result {
    double rate, p50, p99, cpu_phase_us, cpu_total, rss;
    double sp99;       /* p99 from each worker's third DENOISE task on */
    double dp99, dmax; /* DECODE dispatch latency (ms): p99 and the worst, from when both
                        * the worker and the segment (its timeline denoised) were ready */
    double turns, turn_p50, turn_p99; /* the coordinator's loop turns in the DENOISE phase
                                       * (its /metrics histogram): count, bucket bounds (ms) */
    long denoise, other;
    int done;
} result;

static int64_t s_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void s_proc(pid_t pid, double *cpu_s, double *rss_mb)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    *cpu_s = 0;
    if (rss_mb)
        *rss_mb = 0;
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        fclose(f);
        const char *p = strrchr(buf, ')');
        unsigned long ut = 0, st = 0;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    if (!rss_mb)
        return;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    while (f && fgets(buf, sizeof(buf), f))
        if (strncmp(buf, "VmHWM:", 6) == 0)
            *rss_mb = atof(buf + 6) / 1024.0;
    if (f)
        fclose(f);
}

static int s_send(void *sock, Reelfarm__Envelope *env, rf_wire_blob *b, size_t nb, uint64_t *req)
{
    rf_wire_msg m = {0};
    env->request_id = ++*req;
    m.env = env;
    m.blobs = b;
    m.n_blobs = nb;
    return rf_wire_send(sock, &m, NULL);
}

/* Sends from a simulated worker, through libzmq or by hand (the same frames). */
static int s_sim_send(sim *w, Reelfarm__Envelope *env, rf_wire_blob *b, size_t nb)
{
    if (w->sock)
        return s_send(w->sock, env, b, nb, &w->req);
    rf_wire_msg m = {0};
    env->request_id = ++w->req;
    m.env = env;
    m.blobs = b;
    m.n_blobs = nb;
    uint8_t *packed = NULL;
    size_t len = 0;
    if (nb > 7 || rf_wire_pack(&m, &packed, &len, NULL))
        return -1;
    struct iovec iov[8] = {{packed, len}};
    for (size_t i = 0; i < nb; i++)
        iov[1 + i] = (struct iovec){(void *)b[i].data, b[i].len};
    int rc = rf_zmtp_send(w->raw, iov, 1 + nb);
    free(packed);
    return rc;
}

static void s_hello(sim *w, const char *hash)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Hello h = REELFARM__HELLO__INIT;
    char *models[1] = {(char *)hash};
    h.name = w->name;
    h.backend = "sim";
    h.threads = 1;
    h.tp = 1;
    h.max_tasks = 1;
    h.model_hashes = models;
    h.n_model_hashes = 1;
    env.kind_case = REELFARM__ENVELOPE__KIND_HELLO;
    env.hello = &h;
    s_sim_send(w, &env, NULL, 0);
}

/* Answers an assignment (as recorded in p). */
static void s_answer(sim *w, const pend *p)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__TaskResult r = REELFARM__TASK_RESULT__INIT;
    r.task_id = (char *)p->task_id;
    r.attempt = p->attempt;
    r.kind = (Reelfarm__TaskKind)p->kind;
    env.kind_case = REELFARM__ENVELOPE__KIND_RESULT;
    env.result = &r;
    float buf[64] = {0};
    unsigned char seg[16] = "SIMSEG";
    rf_wire_blob b = {0};
    if (p->kind == REELFARM__TASK_KIND__TASK_ENCODE_TEXT) {
        b = (rf_wire_blob){
            .name = "text/0", .dtype = RF_DTYPE_F32, .ndim = 2, .shape = {4, 8}, .frame_axis = -1};
        b.len = 32 * sizeof(float);
    } else if (p->kind == REELFARM__TASK_KIND__TASK_DENOISE) {
        int64_t n = p->fend - p->fstart;
        if (n < 1 || n > 16)
            n = 1;
        b = (rf_wire_blob){
            .name = "latent", .dtype = RF_DTYPE_F32, .ndim = 4, .shape = {4, n, 1, 1}};
        b.frame_axis = 1;
        b.frame_start = p->fstart;
        b.len = (size_t)(4 * n) * sizeof(float);
        for (int64_t i = 0; i < 4 * n; i++)
            buf[i] = (float)((p->fstart + i) % 97) / 97.0f;
    } else {
        b = (rf_wire_blob){
            .name = "segment", .dtype = RF_DTYPE_U8, .ndim = 1, .shape = {6}, .frame_axis = -1};
        b.len = 6;
        r.frames = p->keep;
    }
    if (b.dtype == RF_DTYPE_U8)
        b.data = seg;
    else
        b.data = buf;
    s_sim_send(w, &env, &b, 1);
    w->freed_us = s_us();
    if (p->kind == REELFARM__TASK_KIND__TASK_DENOISE && ++s_denoised == s_chunks)
        s_all_denoised_us = w->freed_us; /* the timeline's DECODE segments can go from now */
}

static void s_push(harness *h, const pend *p)
{
    if (h->qtail - h->qhead == h->qcap) { /* grow the ring (linearized) */
        size_t cap = h->qcap ? h->qcap * 2 : 1024, n = h->qtail - h->qhead;
        pend *q = malloc(cap * sizeof(*q));
        if (!q)
            return;
        for (size_t i = 0; i < n; i++)
            q[i] = h->q[(h->qhead + i) % (h->qcap ? h->qcap : 1)];
        free(h->q);
        h->q = q;
        h->qcap = cap;
        h->qhead = 0;
        h->qtail = n;
    }
    h->q[h->qtail++ % h->qcap] = *p;
}

static int s_scrape_hist(int port, const char *name, double *le, double *cum, int max);

/* What worker i does with a message from the coordinator: an assignment is answered (at
 * once, or queued when paced) and its latency recorded. */
static void s_on_message(harness *h, int i, const Reelfarm__Envelope *env)
{
    sim *w = &h->ws[i];
    if (env->kind_case == REELFARM__ENVELOPE__KIND_ASSIGN) {
        const Reelfarm__TaskAssign *a = env->assign;
        int64_t now = s_us();
        pend p = {.w = i, .due_us = now + (h->delay_us > 0 ? h->delay_us : 0)};
        /* a worker's first task ends sooner: the workers' phases spread over one task's
         * time, as a farm's are, instead of one convoy; by arrival, so that the queue stays
         * in due order */
        if (h->delay_us > 0 && !w->freed_us && h->nfirst < h->n)
            p.due_us = now + h->delay_us * ++h->nfirst / h->n;
        snprintf(p.task_id, sizeof(p.task_id), "%s", a->task_id ? a->task_id : "");
        p.attempt = a->attempt;
        p.kind = (int)a->kind;
        if (a->denoise && a->denoise->frames) {
            p.fstart = a->denoise->frames->start;
            p.fend = a->denoise->frames->end;
        }
        p.keep = a->decode ? a->decode->keep_pixel_frames : 0;
        h->assigns++;
        if (p.kind == REELFARM__TASK_KIND__TASK_DENOISE) {
            if (!h->t_first) {
                h->t_first = now;
                if (h->coord)
                    s_proc(h->coord, &h->cpu_first, NULL);
                if (h->mport)
                    s_scrape_hist(h->mport, "reelfarm_loop_turn_duration_seconds", s_turn_le,
                                  h->turn0, TURN_B);
            }
            h->t_last = now;
            if (w->freed_us && h->denoise >= h->n && h->nlat < (size_t)s_chunks + 16)
                h->lat[h->nlat++] = now - w->freed_us;
            if (++w->ndenoise >= 3 && w->freed_us && h->nslat < (size_t)s_chunks + 16)
                h->slat[h->nslat++] = now - w->freed_us;
            h->denoise++;
            if (h->denoise == s_chunks && h->coord)
                s_proc(h->coord, &h->cpu_last, NULL);
            if (h->denoise == s_chunks && h->mport)
                h->nturn = s_scrape_hist(h->mport, "reelfarm_loop_turn_duration_seconds", s_turn_le,
                                         h->turn1, TURN_B);
        } else if (p.kind == REELFARM__TASK_KIND__TASK_DECODE && w->freed_us && s_all_denoised_us &&
                   h->ndlat < (size_t)s_chunks + 16) {
            /* from when both the worker and the segment were ready: a segment waits
             * for its whole timeline, which is the job's shape, not dispatch latency */
            int64_t from = w->freed_us > s_all_denoised_us ? w->freed_us : s_all_denoised_us;
            h->dlat[h->ndlat++] = now - from;
        }
        if (h->delay_us > 0)
            s_push(h, &p);
        else
            s_answer(w, &p);
    }
}

/* Receives everything waiting on worker i (libzmq's ZMQ_FD is edge-triggered: read to
 * EAGAIN; a raw connection's fd is level-triggered: one read takes what is there). */
static void s_drain(harness *h, int i)
{
    sim *w = &h->ws[i];
    if (w->raw) {
        rf_zmtp_frame fr[4];
        size_t nf = 0;
        if (rf_zmtp_fill(w->raw) < 0) {
            fprintf(stderr, "bench_scale: worker %d: the coordinator closed its connection\n", i);
            epoll_ctl(h->ep, EPOLL_CTL_DEL, rf_zmtp_fd(w->raw), NULL);
            return;
        }
        while (rf_zmtp_next(w->raw, fr, 4, &nf) == 1) {
            Reelfarm__Envelope *env =
                nf ? reelfarm__envelope__unpack(NULL, fr[0].len, fr[0].data) : NULL;
            if (env)
                s_on_message(h, i, env);
            reelfarm__envelope__free_unpacked(env, NULL);
        }
        return;
    }
    for (;;) {
        rf_wire_msg m = {0};
        if (rf_wire_recv(w->sock, &m, NULL, NULL) != 0) {
            rf_wire_msg_release(&m);
            return;
        }
        s_on_message(h, i, m.env);
        rf_wire_msg_release(&m);
    }
}

static int s_api_call(void *api, Reelfarm__Envelope *env, rf_wire_msg *rep, uint64_t *req)
{
    if (s_send(api, env, NULL, 0, req))
        return -1;
    zmq_pollitem_t it = {api, 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < 100; i++) {
        if (zmq_poll(&it, 1, 100) > 0 && rf_wire_recv(api, rep, NULL, NULL) == 0) {
            if (rep->env->reply_to == *req)
                return 0;
            rf_wire_msg_release(rep);
        }
    }
    return -1;
}

static int s_job_state(void *api, const char *job, uint64_t *areq, uint64_t *steps)
{
    Reelfarm__Envelope e = REELFARM__ENVELOPE__INIT;
    Reelfarm__JobStatus js = REELFARM__JOB_STATUS__INIT;
    js.job_id = (char *)job;
    js.summary = 1; /* polled every 100 ms: no per-chunk detail */
    e.kind_case = REELFARM__ENVELOPE__KIND_JOB_STATUS;
    e.job_status = &js;
    rf_wire_msg r2 = {0};
    int state = -1;
    if (s_api_call(api, &e, &r2, areq) == 0 &&
        r2.env->kind_case == REELFARM__ENVELOPE__KIND_JOB_INFO) {
        state = (int)r2.env->job_info->state;
        if (steps)
            *steps = r2.env->job_info->chunk_steps_done;
    }
    rf_wire_msg_release(&r2);
    return state;
}

/* 3 (like JOB_DONE) when no job is queued or running, else 0; -1 on no answer. */
static int s_farm_idle(void *api, uint64_t *areq)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__StatusRequest sr = REELFARM__STATUS_REQUEST__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_STATUS_REQUEST;
    env.status_request = &sr;
    rf_wire_msg rep = {0};
    int state = -1;
    if (s_api_call(api, &env, &rep, areq) == 0 &&
        rep.env->kind_case == REELFARM__ENVELOPE__KIND_FARM_STATUS)
        state = rep.env->farm_status->jobs_queued + rep.env->farm_status->jobs_running == 0 ? 3 : 0;
    rf_wire_msg_release(&rep);
    return state;
}

static int s_submit(void *api, const char *spec, uint64_t *areq, char *job, size_t cap)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Submit sub = REELFARM__SUBMIT__INIT;
    sub.spec = (char *)spec;
    sub.spec_name = "scale.yaml";
    env.kind_case = REELFARM__ENVELOPE__KIND_SUBMIT;
    env.submit = &sub;
    rf_wire_msg rep = {0};
    job[0] = 0;
    if (s_api_call(api, &env, &rep, areq) == 0 &&
        rep.env->kind_case == REELFARM__ENVELOPE__KIND_SUBMIT_REPLY &&
        rep.env->submit_reply->job_id)
        snprintf(job, cap, "%s", rep.env->submit_reply->job_id);
    if (!job[0] && rep.env && rep.env->kind_case == REELFARM__ENVELOPE__KIND_SUBMIT_REPLY &&
        rep.env->submit_reply->n_errors)
        fprintf(stderr, "bench_scale: submit refused: %s: %s\n",
                rep.env->submit_reply->errors[0]->field, rep.env->submit_reply->errors[0]->message);
    rf_wire_msg_release(&rep);
    return job[0] ? 0 : -1;
}

/* A temporary farm directory with a fake model folder; fills hash. */
static int s_farm_dir(char *dir, size_t cap, char hash[RF_HASH_HEX])
{
    const char *base = getenv("RF_BENCH_SCALE_STATE");
    struct stat sb;
    if (!base)
        base = stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, cap, "%s/rfscale.XXXXXX", base);
    if (!mkdtemp(dir))
        return fprintf(stderr, "bench_scale: mkdtemp %s: %s\n", dir, strerror(errno)), -1;
    char p[1024];
    snprintf(p, sizeof(p), "%s/models", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/models/fake", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/out", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/models/fake/model.json", dir);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fputs("{\"defaults\": {\"decode_warmup\": 1}}\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/models/fake", dir);
    rf_hash h;
    return rf_model_hash(p, &h, hash, NULL) ? -1 : 0;
}

static void s_rmdir(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (!getenv("RF_BENCH_SCALE_KEEP") && system(cmd) != 0)
        fprintf(stderr, "bench_scale: could not remove %s\n", dir);
}

static pid_t s_spawn(const char *cmd)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static pid_t s_start_coord(const char *build, const char *dir, const char *extra)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "exec %s/bin/reelfarm-coordinator --listen ipc://%s/w.sock --api ipc://%s/a.sock "
             "--state %s/state --models %s/models --output-root %s/out --concat bytes "
             "--log-level warn --heartbeat-ms 1000 --liveness 30 %s >%s/coord.log 2>&1",
             build, dir, dir, dir, dir, dir, extra ? extra : "", dir);
    return s_spawn(cmd);
}

static void *s_api_open(void *ctx, const char *dir, uint64_t *areq)
{
    char p[1024];
    void *api = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(api, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(api, ZMQ_RCVTIMEO, &zero, sizeof(zero));
    snprintf(p, sizeof(p), "ipc://%s/a.sock", dir);
    zmq_connect(api, p);
    for (int i = 0; i < 50; i++) { /* the coordinator answers Status when it is up */
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        Reelfarm__StatusRequest sr = REELFARM__STATUS_REQUEST__INIT;
        env.kind_case = REELFARM__ENVELOPE__KIND_STATUS_REQUEST;
        env.status_request = &sr;
        rf_wire_msg rep = {0};
        int up = s_api_call(api, &env, &rep, areq) == 0;
        rf_wire_msg_release(&rep);
        if (up)
            return api;
    }
    zmq_close(api);
    return NULL;
}

/* The no-op peer: a ROUTER that answers every message with a DENOISE TaskAssign. */
static void s_echo_main(const char *ep)
{
    void *ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(r, ZMQ_LINGER, &zero, sizeof(zero));
    if (zmq_bind(r, ep) != 0)
        _exit(1);
    uint64_t n = 0;
    for (;;) {
        rf_wire_msg m = {0};
        zmq_pollitem_t it = {r, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 1000) <= 0)
            continue;
        while (rf_wire_recv(r, &m, NULL, NULL) == 0) {
            Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
            Reelfarm__TaskAssign a = REELFARM__TASK_ASSIGN__INIT;
            Reelfarm__Denoise dn = REELFARM__DENOISE__INIT;
            Reelfarm__FrameRange fr = REELFARM__FRAME_RANGE__INIT;
            char id[64];
            n++;
            snprintf(id, sizeof(id), "job-1/denoise/%llu", (unsigned long long)n);
            a.task_id = id;
            a.attempt = n;
            a.job_id = "job-1";
            a.kind = REELFARM__TASK_KIND__TASK_DENOISE;
            fr.start = (uint32_t)(n % s_chunks);
            fr.end = fr.start + 4;
            dn.frames = &fr;
            a.task_case = REELFARM__TASK_ASSIGN__TASK_DENOISE;
            a.denoise = &dn;
            env.kind_case = REELFARM__ENVELOPE__KIND_ASSIGN;
            env.assign = &a;
            rf_wire_msg out = {0};
            rf_wire_msg_copy_peer(&out, &m);
            out.env = &env;
            rf_wire_send(r, &out, NULL);
            rf_wire_msg_release(&m);
            memset(&m, 0, sizeof(m));
        }
        rf_wire_msg_release(&m);
    }
}

/* Runs the harness until the job is done (or s_chunks assignments in echo mode). */
static void s_loop(harness *h, void *api, const char *job, uint64_t *areq, int *state)
{
    struct epoll_event evs[1024];
    int64_t t_end = s_us() + 600LL * 1000000, next_poll = 0, next_sweep = 0;
    *state = 0;
    while (s_us() < t_end && *state < 3) {
        int64_t now = s_us();
        long timeout = 10;
        if (h->qtail > h->qhead) {
            int64_t due = h->q[h->qhead % h->qcap].due_us - now;
            timeout = due <= 0 ? 0 : (long)((due + 999) / 1000);
            if (timeout > 10)
                timeout = 10;
        }
        int n = epoll_wait(h->ep, evs, 1024, (int)timeout);
        for (int k = 0; k < n; k++)
            s_drain(h, (int)evs[k].data.u32);
        now = s_us();
        for (int k = 1; h->qtail > h->qhead && h->q[h->qhead % h->qcap].due_us <= now; k++) {
            pend p = h->q[h->qhead++ % h->qcap];
            s_answer(&h->ws[p.w], &p);
            if (!s_raw)
                s_drain(h, p.w); /* a send may have taken the fd's signal */
            if (k % 8 == 0) {    /* a long run of answers must not hold back the receipts (and
                               * their timestamps) of assignments that came meanwhile */
                n = epoll_wait(h->ep, evs, 1024, 0);
                for (int e = 0; e < n; e++)
                    s_drain(h, (int)evs[e].data.u32);
            }
        }
        int64_t now_ms = now / 1000;
        if (now_ms >= next_sweep) { /* heartbeats, and a sweep of every socket */
            next_sweep = now_ms + 100;
            for (int i = 0; i < h->n; i++) {
                if (!h->echo && now_ms >= h->ws[i].next_beat_ms) {
                    h->ws[i].next_beat_ms = now_ms + 1000;
                    Reelfarm__Envelope hb = REELFARM__ENVELOPE__INIT;
                    Reelfarm__Heartbeat b = REELFARM__HEARTBEAT__INIT;
                    hb.kind_case = REELFARM__ENVELOPE__KIND_HEARTBEAT;
                    hb.heartbeat = &b;
                    s_sim_send(&h->ws[i], &hb, NULL, 0);
                }
                if (!s_raw)
                    s_drain(h, i);
            }
        }
        if (h->echo) {
            if (h->denoise >= s_chunks)
                *state = 3;
            continue;
        }
        if (now_ms >= next_poll && h->denoise >= s_chunks) {
            next_poll = now_ms + 100;
            *state = job ? s_job_state(api, job, areq, NULL) : s_farm_idle(api, areq);
        }
    }
}

static int s_harness_open(harness *h, void *ctx, int n, const char *ep, const char *hash,
                          int64_t delay_us, int echo)
{
    memset(h, 0, sizeof(*h));
    s_denoised = 0;
    s_all_denoised_us = 0;
    h->n = n;
    h->delay_us = delay_us;
    h->echo = echo;
    h->ep = -1;
    h->ws = calloc((size_t)n, sizeof(*h->ws));
    h->lat = calloc(s_chunks + 16, sizeof(int64_t));
    h->slat = calloc(s_chunks + 16, sizeof(int64_t));
    h->dlat = calloc(s_chunks + 16, sizeof(int64_t));
    h->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!h->ws || !h->lat || !h->slat || !h->dlat || h->ep < 0)
        return -1;
    int zero = 0;
    for (int i = 0; i < n; i++) {
        sim *w = &h->ws[i];
        snprintf(w->name, sizeof(w->name), "sim-%d", i);
        w->next_beat_ms = s_us() / 1000 + (int64_t)i * 1000 / n; /* beats spread over 1 s */
        if (s_raw) {
            char why[256];
            w->raw = rf_zmtp_connect(ep, 10000, why, sizeof(why));
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
            if (!w->raw || epoll_ctl(h->ep, EPOLL_CTL_ADD, rf_zmtp_fd(w->raw), &ev) != 0) {
                fprintf(stderr, "bench_scale: worker %d: %s\n", i, w->raw ? "epoll" : why);
                return -1;
            }
            s_hello(w, hash);
            continue;
        }
        w->sock = zmq_socket(ctx, ZMQ_DEALER);
        if (!w->sock) {
            fprintf(stderr, "bench_scale: socket %d: %s\n", i, zmq_strerror(errno));
            return -1;
        }
        zmq_setsockopt(w->sock, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(w->sock, ZMQ_RCVTIMEO, &zero, sizeof(zero));
        zmq_connect(w->sock, ep);
        int fd = -1;
        size_t sz = sizeof(fd);
        zmq_getsockopt(w->sock, ZMQ_FD, &fd, &sz);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = (uint32_t)i};
        if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            return -1;
        s_hello(w, hash);
    }
    return 0;
}

static void s_harness_close(harness *h)
{
    for (int i = 0; h->ws && i < h->n; i++) {
        if (h->ws[i].sock)
            zmq_close(h->ws[i].sock);
        rf_zmtp_close(&h->ws[i].raw);
    }
    if (h->ws && h->ep >= 0)
        close(h->ep);
    free(h->ws);
    free(h->lat);
    free(h->slat);
    free(h->dlat);
    free(h->q);
    memset(h, 0, sizeof(*h));
}

static void s_fill(harness *h, result *r)
{
    qsort(h->lat, h->nlat, sizeof(*h->lat), s_cmp);
    double secs = (double)(h->t_last - h->t_first) / 1e6;
    r->rate = secs > 0 ? (double)(h->denoise - 1) / secs : 0;
    r->p50 = h->nlat ? (double)h->lat[h->nlat / 2] / 1000.0 : -1;
    r->p99 = h->nlat ? (double)h->lat[(size_t)((double)h->nlat * 0.99)] / 1000.0 : -1;
    qsort(h->slat, h->nslat, sizeof(*h->slat), s_cmp);
    r->sp99 = h->nslat ? (double)h->slat[(size_t)((double)h->nslat * 0.99)] / 1000.0 : -1;
    qsort(h->dlat, h->ndlat, sizeof(*h->dlat), s_cmp);
    r->dp99 = h->ndlat ? (double)h->dlat[(size_t)((double)h->ndlat * 0.99)] / 1000.0 : -1;
    r->dmax = h->ndlat ? (double)h->dlat[h->ndlat - 1] / 1000.0 : -1;
    r->denoise = h->denoise;
    r->other = h->assigns - h->denoise;
    r->cpu_phase_us =
        h->denoise > 1 ? (h->cpu_last - h->cpu_first) * 1e6 / (double)(h->denoise - 1) : 0;
    r->turns = h->nturn > 0 ? h->turn1[h->nturn - 1] - h->turn0[h->nturn - 1] : 0;
    r->turn_p50 = r->turn_p99 = -1;
    for (int b = 0; b < h->nturn && r->turns > 0; b++) { /* the first bucket holding it */
        double below = h->turn1[b] - h->turn0[b];
        if (r->turn_p50 < 0 && below >= 0.5 * r->turns)
            r->turn_p50 = s_turn_le[b] * 1000;
        if (r->turn_p99 < 0 && below >= 0.99 * r->turns)
            r->turn_p99 = s_turn_le[b] * 1000;
    }
}

/* A loopback TCP port free just now (the kernel's pick), for a coordinator's --metrics;
 * a fixed guess could be taken, and the coordinator refuses to start without it. */
static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port > 0 ? port : 20000 + (int)(getpid() % 20000);
}

/* One coordinator run with n workers answering after delay_us (<0: at once): the
 * 10,000-chunk job, or (njobs > 1) njobs jobs of s_chunks / njobs chunks submitted first. */
static int s_run(int n, const char *build, int64_t delay_us, int njobs, result *r)
{
    char dir[512], hash[RF_HASH_HEX], p[1024], job[64];
    memset(r, 0, sizeof(*r));
    if (s_farm_dir(dir, sizeof(dir), hash))
        return -1;
    char extra[64];
    int mport = s_free_port();
    snprintf(extra, sizeof(extra), "--metrics 127.0.0.1:%d", mport);
    pid_t pid = s_start_coord(build, dir, extra);
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 2);
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, n + 64);
    uint64_t areq = 0;
    void *api = s_api_open(ctx, dir, &areq);
    harness h;
    memset(&h, 0, sizeof(h));
    int rc = -1, state = 0;
    snprintf(p, sizeof(p), "ipc://%s/w.sock", dir);
    if (!api) {
        fprintf(stderr, "bench_scale: the coordinator did not start (%s/coord.log)\n", dir);
    } else {
        char spec[1024];
        int per = njobs > 1 ? s_chunks / njobs : s_chunks, ok = 1;
        double cpu0;
        s_proc(pid, &cpu0, NULL);
        for (int j = 0; ok && j < njobs; j++) { /* before the workers: all queued at once */
            snprintf(spec, sizeof(spec),
                     "name: scale\nmodel: fake\nwidth: 16\nheight: 16\nseed: 1\nsteps: 1\n"
                     "guidance: 1\nmode: independent\nchunk:\n  frames: 5\n  overlap: 4\n"
                     "shots:\n  - prompt: variant %d\n    frames: %d\noutput:\n  path: "
                     "out-%d.mp4\n",
                     njobs > 1 ? j : 0, 4 * per + 1, j);
            ok = s_submit(api, spec, &areq, job, sizeof(job)) == 0;
        }
        if (ok && s_harness_open(&h, ctx, n, p, hash, delay_us, 0) == 0) {
            h.coord = pid;
            h.mport = mport;
            s_loop(&h, api, njobs > 1 ? NULL : job, &areq, &state);
            s_proc(pid, &r->cpu_total, &r->rss);
            r->cpu_total -= cpu0;
            s_fill(&h, r);
            r->done = state == 3;
            rc = r->done ? 0 : -1;
        }
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    if (h.ws)
        s_harness_close(&h);
    if (api)
        zmq_close(api);
    zmq_ctx_term(ctx);
    if (rc == 0)
        s_rmdir(dir);
    else
        fprintf(stderr, "bench_scale: run failed; state kept in %s\n", dir);
    return rc;
}

/* The no-op peer with n workers. */
static int s_run_echo(int n, int64_t delay_us, result *r)
{
    char dir[512], ep[600];
    memset(r, 0, sizeof(*r));
    snprintf(dir, sizeof(dir), "/tmp/rfecho.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(ep, sizeof(ep), "ipc://%s/e.sock", dir);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        s_echo_main(ep);
        _exit(0);
    }
    usleep(100000);
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 2);
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, n + 64);
    harness h;
    int rc = -1, state = 0;
    if (s_harness_open(&h, ctx, n, ep, "0", delay_us, 1) == 0) {
        h.coord = pid;
        s_loop(&h, NULL, NULL, NULL, &state);
        s_fill(&h, r);
        s_proc(pid, &r->cpu_total, &r->rss);
        r->done = state == 3;
        rc = r->done ? 0 : -1;
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s_harness_close(&h);
    zmq_ctx_term(ctx);
    char p[700];
    snprintf(p, sizeof(p), "%s/e.sock", dir);
    unlink(p);
    rmdir(dir);
    return rc;
}

/* The durable floor: per task what the store must do (result blob, task row at dispatch
 * and at completion), 64 tasks per commit, through coordinator/store.c. Tasks/s. */
/* with_blob: 0 rows only, 1 the blob in a file of its own, 2 packed without a blob row (as
 * the coordinator stores results), 3 packed with a blob row */
static double s_durable_floor(int with_blob)
{
    char dir[512], hash[RF_HASH_HEX];
    if (s_farm_dir(dir, sizeof(dir), hash))
        return 0;
    char sd[600];
    snprintf(sd, sizeof(sd), "%s/state", dir);
    rf_error err;
    rf_store *st = rf_store_open(sd, &err);
    if (!st) {
        fprintf(stderr, "bench_scale: %s\n", err.msg);
        return 0;
    }
    rf_store_task t = {0};
    snprintf(t.job_id, sizeof(t.job_id), "job-1");
    t.kind = REELFARM__TASK_KIND__TASK_DENOISE;
    unsigned char blob[232];
    memset(blob, 7, sizeof(blob));
    int64_t t0 = s_us();
    int rc = 0;
    for (int i = 0; i < s_chunks && !rc; i++) {
        snprintf(t.id, sizeof(t.id), "job-1/denoise/%d", i);
        t.unit = i;
        t.attempt = (uint64_t)i + 1;
        t.state = REELFARM__UNIT_STATE__UNIT_RUNNING;
        snprintf(t.worker, sizeof(t.worker), "w%d", i % 100);
        memcpy(blob, &i, sizeof(i));
        rc = rf_store_begin(st, &err);
        if (!rc)
            rc = rf_store_task_put(st, &t, &err);
        if (!rc && with_blob == 1)
            rc = rf_store_blob_put(st, blob, sizeof(blob), "job-1", t.result, &err);
        if (!rc && with_blob == 2) /* as the coordinator stores a chunk's result */
            rc = rf_store_blob_put_ref(st, blob, sizeof(blob), "job-1", t.result, &err);
        if (!rc && with_blob == 3) /* with a blob row (hash-keyed), as before schema 6 */
            rc = rf_store_blob_put_packed(st, blob, sizeof(blob), "job-1", t.result, &err);
        t.state = REELFARM__UNIT_STATE__UNIT_DONE;
        if (!rc)
            rc = rf_store_task_put(st, &t, &err);
        if (!rc && (i % 64 == 63 || i == s_chunks - 1))
            rc = rf_store_commit(st, &err);
    }
    double secs = (double)(s_us() - t0) / 1e6;
    if (rc)
        fprintf(stderr, "bench_scale: durable floor: %s\n", err.msg);
    rf_store_destroy(&st);
    s_rmdir(dir);
    return rc || secs <= 0 ? 0 : s_chunks / secs;
}

/* GET /metrics from 127.0.0.1:port: the response (a static buffer; "" when unreachable). */
static const char *s_metrics_body(int port)
{
    static char buf[1 << 20];
    buf[0] = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return buf;
    }
    const char *req = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return buf;
    }
    size_t n = 0;
    ssize_t k;
    while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = 0;
    close(fd);
    return buf;
}

/* The value of the metric line starting with name in 127.0.0.1:port/metrics (-1: none). */
static double s_scrape(int port, const char *name)
{
    const char *body = s_metrics_body(port);
    size_t len = strlen(name);
    double v = -1;
    for (const char *line = body; line && *line;) {
        const char *nl = strchr(line, '\n');
        if (strncmp(line, name, len) == 0 && line[len] == ' ')
            v = atof(line + len + 1);
        line = nl ? nl + 1 : NULL;
    }
    return v;
}

/* The histogram name's buckets from 127.0.0.1:port/metrics, in order: le[] (seconds; +Inf
 * as HUGE_VAL) and cum[] (cumulative counts); how many (0 when unreachable). */
static int s_scrape_hist(int port, const char *name, double *le, double *cum, int max)
{
    const char *body = s_metrics_body(port);
    char pre[160];
    int n = snprintf(pre, sizeof(pre), "%s_bucket{le=\"", name), k = 0;
    for (const char *line = body; line && *line && k < max;) {
        const char *nl = strchr(line, '\n');
        if (strncmp(line, pre, (size_t)n) == 0) {
            const char *q = strchr(line + n, '"');
            le[k] = strncmp(line + n, "+Inf", 4) == 0 ? HUGE_VAL : atof(line + n);
            cum[k] = q && q[1] == '}' ? atof(q + 2) : 0;
            k++;
        }
        line = nl ? nl + 1 : NULL;
    }
    return k;
}

/* Lockstep mode with reelfarm-worker --backend sim --count: rounds/s, fusion latency. */
static int s_lockstep(const char *build, int workers, int chunks, int steps)
{
    char dir[512], hash[RF_HASH_HEX], job[64], cmd[4096], extra[128];
    if (s_farm_dir(dir, sizeof(dir), hash))
        return -1;
    int port = s_free_port();
    snprintf(extra, sizeof(extra), "--metrics 127.0.0.1:%d", port);
    pid_t pid = s_start_coord(build, dir, extra);
    void *ctx = zmq_ctx_new();
    uint64_t areq = 0;
    void *api = s_api_open(ctx, dir, &areq);
    pid_t wp = -1;
    int rc = -1;
    if (api) {
        snprintf(cmd, sizeof(cmd),
                 "exec %s/bin/reelfarm-worker --coordinator ipc://%s/w.sock --backend sim "
                 "--sim-step-ms 0 --count %d --max-tasks %d --model %s/models/fake --name lock "
                 "--log-level warn >%s/workers.log 2>&1",
                 build, dir, workers, (chunks + workers - 1) / workers, dir, dir);
        wp = s_spawn(cmd);
        usleep(500000);
        char spec[1024];
        snprintf(spec, sizeof(spec),
                 "name: lockstep\nmodel: fake\nwidth: 16\nheight: 16\nseed: 1\nsteps: %d\n"
                 "guidance: 1\nmode: lockstep\nchunk:\n  frames: 9\n  overlap: 4\n"
                 "  sync_every: 1\n  checkpoint_every: 4\n"
                 "shots:\n  - prompt: a long take\n    frames: %d\noutput:\n  path: out.mp4\n",
                 steps, 4 * (3 + 2 * (chunks - 1) - 1) + 1); /* C 3, stride 2 latent */
        double cpu0 = 0, cpu1 = 0;
        s_proc(pid, &cpu0, NULL);
        int64_t t0 = 0, t1 = 0;
        uint64_t st_steps = 0, total = (uint64_t)chunks * (uint64_t)steps;
        if (s_submit(api, spec, &areq, job, sizeof(job)) == 0) {
            int state = 0;
            int64_t end = s_us() + 300LL * 1000000;
            while (s_us() < end && state < 3) {
                state = s_job_state(api, job, &areq, &st_steps);
                if (st_steps > 0 && !t0)
                    t0 = s_us();
                if (st_steps >= total && !t1) {
                    t1 = s_us();
                    s_proc(pid, &cpu1, NULL);
                }
                usleep(20000);
            }
            double sum = s_scrape(port, "reelfarm_fusion_round_duration_seconds_sum");
            double cnt = s_scrape(port, "reelfarm_fusion_round_duration_seconds_count");
            double secs = (double)(t1 - t0) / 1e6;
            if (state == 3 && t1 > t0) {
                /* the first progress sample comes after round 1: count rounds from there */
                double rounds = (double)steps - 1;
                printf("lockstep: %d chunks x %d steps (a round every step) on reelfarm-worker "
                       "--backend sim --count %d: %.1f rounds/s (%.0f chunk-steps/s); fusion "
                       "round latency mean %.2f ms over %.0f rounds; coordinator CPU %.2f ms "
                       "per round\n",
                       chunks, steps, workers, rounds / secs, rounds * chunks / secs,
                       cnt > 0 ? sum / cnt * 1000.0 : -1, cnt, (cpu1 - cpu0) * 1000.0 / steps);
                rc = 0;
            } else {
                fprintf(stderr, "bench_scale: the lockstep job did not finish (%s)\n", dir);
            }
        }
    }
    if (wp > 0) {
        kill(wp, SIGTERM);
        waitpid(wp, NULL, 0);
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    if (api)
        zmq_close(api);
    zmq_ctx_term(ctx);
    if (rc == 0)
        s_rmdir(dir);
    return rc;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        printf("open-file limit raised to %llu\n", (unsigned long long)rl.rlim_cur);
    }
    const char *build = getenv("RF_BUILD") ? getenv("RF_BUILD") : "build";
    if (getenv("RF_BENCH_SCALE_CHUNKS") && atoi(getenv("RF_BENCH_SCALE_CHUNKS")) >= 1000)
        s_chunks = atoi(getenv("RF_BENCH_SCALE_CHUNKS"));
    const char *harness_kind = getenv("RF_BENCH_SCALE_HARNESS");
    s_raw = !(harness_kind && strcmp(harness_kind, "zmq") == 0);
    const char *list =
        getenv("RF_BENCH_SCALE_WORKERS") ? getenv("RF_BENCH_SCALE_WORKERS") : "100 1000";
    printf("bench_scale: one %d-chunk job (independent mode, 1 step per chunk); goal >= %.0f "
           "dispatches/s, p99 < %.1f ms; simulated workers: %s\n",
           s_chunks, GOAL_RATE, GOAL_P99_MS,
           s_raw ? "ZMTP by hand (tests/bench/zmtp_dealer.c)"
                 : "libzmq DEALER sockets (RF_BENCH_SCALE_HARNESS=zmq)");
    double floor = s_durable_floor(2), row = s_durable_floor(3), loose = s_durable_floor(1),
           rows = s_durable_floor(0);
    printf("peer: durable floor (coordinator/store.c alone, 64 tasks per commit): result blob "
           "packed + task row twice per task %.0f tasks/s (%.1f us each); with a blob row "
           "(hash-keyed) %.0f tasks/s (%.1f us); with the blob in a file of its own %.0f "
           "tasks/s (%.1f us); the rows alone %.0f tasks/s (%.1f us)\n",
           floor, floor > 0 ? 1e6 / floor : 0, row, row > 0 ? 1e6 / row : 0, loose,
           loose > 0 ? 1e6 / loose : 0, rows, rows > 0 ? 1e6 / rows : 0);
    result first = {0}, sat, paced;
    int rc = 0, k = 0;
    for (const char *s = list; *s;) {
        char *end;
        long n = strtol(s, &end, 10);
        if (end == s)
            break;
        s = end;
        if (n < 1)
            continue;
        if (s_run((int)n, build, -1, 1, &sat)) {
            rc = 1;
            continue;
        }
        printf("workers %5ld saturated: %ld DENOISE + %ld other dispatches; %.0f dispatches/s; "
               "coordinator %.1f us CPU per dispatch (DENOISE phase), %.2f s CPU for the job, "
               "peak RSS %.1f MiB; queueing p50 %.2f ms\n",
               n, sat.denoise, sat.other, sat.rate, sat.cpu_phase_us, sat.cpu_total, sat.rss,
               sat.p50);
        /* latency at half the measured capacity (or at the goal rate if that is less):
         * at saturation it is only queueing (workers / rate) */
        double offered = sat.rate / 2 < GOAL_RATE ? sat.rate / 2 : GOAL_RATE;
        int64_t delay = (int64_t)((double)n / offered * 1e6);
        if (s_run((int)n, build, delay, 1, &paced)) {
            rc = 1;
            continue;
        }
        printf("workers %5ld paced (each task %.2f ms, %.0f tasks/s offered): %.0f "
               "dispatches/s; dispatch latency p50 %.2f ms p99 %.2f ms (from each worker's third "
               "task: p99 %.2f ms); DECODE dispatch latency p99 %.2f ms, worst %.2f ms\n",
               n, (double)delay / 1000.0, offered, paced.rate, paced.p50, paced.p99, paced.sp99,
               paced.dp99, paced.dmax);
        if (paced.turns > 0)
            printf("workers %5ld paced, the coordinator's loop (its /metrics, DENOISE phase): %.0f "
                   "turns, p50 <= %.2f ms, p99 <= %.2f ms per turn (a message waits about one)\n",
                   n, paced.turns, paced.turn_p50, paced.turn_p99);
        result echo_paced = {.p99 = -1}, echo = {0};
        if (s_run_echo((int)n, delay, &echo_paced) == 0)
            printf("workers %5ld peer paced alike: dispatch latency p50 %.2f ms p99 %.2f ms (from "
                   "each worker's third task: p99 %.2f ms)\n",
                   n, echo_paced.p50, echo_paced.p99, echo_paced.sp99);
        if (s_run_echo((int)n, -1, &echo) == 0)
            printf("workers %5ld peer (no-op ROUTER answering at once): %.0f round trips/s, "
                   "queueing p50 %.2f ms\n",
                   n, echo.rate, echo.p50);
        /* the machine is shared (this harness, other work): what the coordinator's own CPU
         * per dispatch allows on a core of its own */
        double cap = sat.cpu_phase_us > 0 ? 1e6 / sat.cpu_phase_us : 0;
        printf("  vs goal (%.0f/s, p99 %.1f ms), workers %ld:\n"
               "    coordinator here:      %7.0f dispatches/s = %.2fx; paced p99 %6.2f ms = "
               "%.2fx the budget (steady %.2f ms = %.2fx)\n"
               "    its own core:          %7.0f dispatches/s = %.2fx (1e6 / %.1f us CPU per "
               "dispatch: what the coordinator allows)\n"
               "    no-op peer, this box:  %7.0f round trips/s = %.2fx; paced p99 %6.2f ms = "
               "%.2fx the budget (steady %.2f ms = %.2fx; what this machine and harness "
               "allow)\n",
               GOAL_RATE, GOAL_P99_MS, n, sat.rate, sat.rate / GOAL_RATE, paced.p99,
               paced.p99 / GOAL_P99_MS, paced.sp99, paced.sp99 / GOAL_P99_MS, cap, cap / GOAL_RATE,
               sat.cpu_phase_us, echo.rate, echo.rate / GOAL_RATE, echo_paced.p99,
               echo_paced.p99 / GOAL_P99_MS, echo_paced.sp99, echo_paced.sp99 / GOAL_P99_MS);
        printf("  vs peers: %.2fx the no-op ROUTER, %.2fx the durable floor\n",
               echo.rate > 0 ? sat.rate / echo.rate : 0, floor > 0 ? sat.rate / floor : 0);
        if (k++ == 0) {
            first = sat;
        } else {
            printf("  vs the first count: rate %.2fx, CPU per dispatch %.2fx, CPU for the job "
                   "%.2fx, peak RSS %.2fx\n",
                   sat.rate / first.rate, sat.cpu_phase_us / first.cpu_phase_us,
                   sat.cpu_total / first.cpu_total, sat.rss / first.rss);
        }
    }
    /* many short jobs (batch ad variants): the same 10,000 chunks as 1,000 jobs of 10 */
    result many;
    if (!getenv("RF_BENCH_SCALE_NO_JOBS")) {
        if (s_run(100, build, -1, 1000, &many) == 0) {
            printf("jobs: 1,000 jobs of %d chunks (each its own prompt), 100 workers saturated: "
                   "%ld DENOISE + %ld other dispatches; %.0f dispatches/s; coordinator %.1f us "
                   "CPU per dispatch, %.2f s CPU in all, peak RSS %.1f MiB\n",
                   s_chunks / 1000, many.denoise, many.other, many.rate, many.cpu_phase_us,
                   many.cpu_total, many.rss);
            if (first.cpu_phase_us > 0)
                printf("  vs one 10,000-chunk job on as many workers: CPU per dispatch %.2fx\n",
                       many.cpu_phase_us / first.cpu_phase_us);
        } else {
            rc = 1;
        }
    }
    if (!getenv("RF_BENCH_SCALE_NO_LOCKSTEP") && s_lockstep(build, 32, 256, 9))
        rc = 1;
    return rc;
}
