/* bench_scale.c - the coordinator under many simulated workers: dispatch rate and latency.
 *
 * Starts build/bin/reelfarm-coordinator on ipc:// sockets in a temporary state dir
 * (/dev/shm when it exists, so SQLite's fsyncs measure the coordinator rather than this
 * machine's disk; RF_BENCH_SCALE_STATE=DIR picks another), then runs N simulated workers
 * in this one process and thread: N DEALER sockets, each a worker with one task slot that
 * answers every TaskAssign at once (ENCODE_TEXT -> a [4, 8] embedding, DENOISE -> the
 * chunk's latent [4, n, 1, 1], DECODE -> a few segment bytes) and beats every second.
 * The job: one shot of 40001 pixel frames in independent mode with 5-frame chunks
 * overlapping by 4 (stride 1 latent frame) = 10,000 DENOISE tasks, 1 step each, then
 * 1,250 DECODE segments and the byte-concatenated output.
 *
 * Measured: dispatches per second over the DENOISE phase (first to last DENOISE
 * TaskAssign received), the dispatch latency (a worker's TaskResult sent -> its next
 * TaskAssign received: the coordinator's receive, commit, placement and both hops),
 * p50/p99, the coordinator's CPU seconds (utime + stime) and peak RSS, for 100 and 1000
 * workers (RF_BENCH_SCALE_WORKERS="100 1000"). The peer is the goal: >= 20,000
 * dispatches/s and p99 < 5 ms; ratios against it are printed.
 */
#include "hash.h"
#include "model_id.h"
#include "wire.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define CHUNKS      10000
#define GOAL_RATE   20000.0
#define GOAL_P99_MS 5.0

typedef struct sim {
    void *sock;
    char name[32];
    int64_t freed_us; /* when its slot was freed by a result (0: never) */
    int64_t next_beat_ms;
    uint64_t req;
} sim;

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
    s_send(w->sock, &env, NULL, 0, &w->req);
}

/* Answers an assignment at once. Returns its kind. */
static int s_answer(sim *w, const rf_wire_msg *msg)
{
    const Reelfarm__TaskAssign *a = msg->env->assign;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__TaskResult r = REELFARM__TASK_RESULT__INIT;
    r.task_id = a->task_id;
    r.attempt = a->attempt;
    r.kind = a->kind;
    env.kind_case = REELFARM__ENVELOPE__KIND_RESULT;
    env.result = &r;
    float buf[64] = {0};
    unsigned char seg[16] = "SIMSEG";
    rf_wire_blob b = {0};
    if (a->kind == REELFARM__TASK_KIND__TASK_ENCODE_TEXT) {
        b = (rf_wire_blob){
            .name = "text/0", .dtype = RF_DTYPE_F32, .ndim = 2, .shape = {4, 8}, .frame_axis = -1};
        b.len = 32 * sizeof(float);
    } else if (a->kind == REELFARM__TASK_KIND__TASK_DENOISE && a->denoise && a->denoise->frames) {
        int64_t n = (int64_t)a->denoise->frames->end - a->denoise->frames->start;
        b = (rf_wire_blob){
            .name = "latent", .dtype = RF_DTYPE_F32, .ndim = 4, .shape = {4, n, 1, 1}};
        b.frame_axis = 1;
        b.frame_start = a->denoise->frames->start;
        b.len = (size_t)(4 * n) * sizeof(float);
        for (int64_t i = 0; i < 4 * n && i < 64; i++)
            buf[i] = (float)((a->denoise->frames->start + i) % 97) / 97.0f;
    } else {
        b = (rf_wire_blob){
            .name = "segment", .dtype = RF_DTYPE_U8, .ndim = 1, .shape = {6}, .frame_axis = -1};
        b.len = 6;
        r.frames = a->decode ? a->decode->keep_pixel_frames : 0;
    }
    if (b.dtype == RF_DTYPE_U8)
        b.data = seg;
    else
        b.data = buf;
    s_send(w->sock, &env, &b, 1, &w->req);
    w->freed_us = s_us();
    return (int)a->kind;
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

static int s_run(int nworkers, const char *build, double *out)
{
    char dir[512];
    const char *base = getenv("RF_BENCH_SCALE_STATE");
    struct stat sb;
    if (!base)
        base = stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof(dir), "%s/rfscale.XXXXXX", base);
    if (!mkdtemp(dir))
        return fprintf(stderr, "bench_scale: mkdtemp %s: %s\n", dir, strerror(errno)), -1;
    char p[1024], hash[RF_HASH_HEX];
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
    if (rf_model_hash(p, &h, hash, NULL))
        return -1;
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "exec %s/bin/reelfarm-coordinator --listen ipc://%s/w.sock --api ipc://%s/a.sock "
             "--state %s/state --models %s/models --output-root %s/out --concat bytes "
             "--log-level warn --heartbeat-ms 1000 --liveness 30 >%s/coord.log 2>&1",
             build, dir, dir, dir, dir, dir, dir);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 2);
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, nworkers + 64);
    void *api = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(api, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(api, ZMQ_RCVTIMEO, &zero, sizeof(zero));
    snprintf(p, sizeof(p), "ipc://%s/a.sock", dir);
    zmq_connect(api, p);
    uint64_t areq = 0;
    /* the coordinator answers Status when it is up */
    int up = 0;
    for (int i = 0; i < 50 && !up; i++) {
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        Reelfarm__StatusRequest sr = REELFARM__STATUS_REQUEST__INIT;
        env.kind_case = REELFARM__ENVELOPE__KIND_STATUS_REQUEST;
        env.status_request = &sr;
        rf_wire_msg rep = {0};
        up = s_api_call(api, &env, &rep, &areq) == 0;
        rf_wire_msg_release(&rep);
    }
    if (!up) {
        fprintf(stderr, "bench_scale: the coordinator did not start (%s/coord.log)\n", dir);
        kill(pid, SIGKILL);
        return -1;
    }
    sim *ws = calloc((size_t)nworkers, sizeof(*ws));
    zmq_pollitem_t *items = calloc((size_t)nworkers, sizeof(*items));
    snprintf(p, sizeof(p), "ipc://%s/w.sock", dir);
    for (int i = 0; i < nworkers; i++) {
        ws[i].sock = zmq_socket(ctx, ZMQ_DEALER);
        if (!ws[i].sock) {
            fprintf(stderr, "bench_scale: socket %d: %s\n", i, zmq_strerror(errno));
            return -1;
        }
        zmq_setsockopt(ws[i].sock, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(ws[i].sock, ZMQ_RCVTIMEO, &zero, sizeof(zero));
        zmq_connect(ws[i].sock, p);
        snprintf(ws[i].name, sizeof(ws[i].name), "sim-%d", i);
        s_hello(&ws[i], hash);
        items[i].socket = ws[i].sock;
        items[i].events = ZMQ_POLLIN;
    }
    usleep(300000);
    char spec[1024];
    snprintf(spec, sizeof(spec),
             "name: scale\nmodel: fake\nwidth: 16\nheight: 16\nseed: 1\nsteps: 1\n"
             "guidance: 1\nmode: independent\nchunk:\n  frames: 5\n  overlap: 4\n"
             "shots:\n  - prompt: a long take\n    frames: %d\noutput:\n  path: out.mp4\n",
             4 * CHUNKS + 1);
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Submit sub = REELFARM__SUBMIT__INIT;
    sub.spec = spec;
    sub.spec_name = "scale.yaml";
    env.kind_case = REELFARM__ENVELOPE__KIND_SUBMIT;
    env.submit = &sub;
    rf_wire_msg rep = {0};
    char job[64] = "";
    double cpu0, rss;
    s_proc(pid, &cpu0, &rss);
    if (s_api_call(api, &env, &rep, &areq) == 0 &&
        rep.env->kind_case == REELFARM__ENVELOPE__KIND_SUBMIT_REPLY &&
        rep.env->submit_reply->job_id)
        snprintf(job, sizeof(job), "%s", rep.env->submit_reply->job_id);
    if (!job[0] && rep.env && rep.env->submit_reply && rep.env->submit_reply->n_errors)
        fprintf(stderr, "bench_scale: submit refused: %s: %s\n",
                rep.env->submit_reply->errors[0]->field, rep.env->submit_reply->errors[0]->message);
    rf_wire_msg_release(&rep);
    if (!job[0]) {
        kill(pid, SIGKILL);
        return -1;
    }
    int64_t *lat = calloc(CHUNKS + 16, sizeof(int64_t));
    size_t nlat = 0;
    long denoise = 0, assigns = 0;
    int64_t t_first = 0, t_last = 0, t_end = s_us() + 600LL * 1000000, next_poll = 0;
    int state = 0;
    while (s_us() < t_end && state < 3) {
        int n = zmq_poll(items, nworkers, 10);
        for (int i = 0; n > 0 && i < nworkers; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            for (;;) {
                rf_wire_msg m = {0};
                if (rf_wire_recv(ws[i].sock, &m, NULL, NULL) != 0) {
                    rf_wire_msg_release(&m);
                    break;
                }
                if (m.env->kind_case == REELFARM__ENVELOPE__KIND_ASSIGN) {
                    int64_t now = s_us();
                    int kind = (int)m.env->assign->kind;
                    assigns++;
                    if (kind == REELFARM__TASK_KIND__TASK_DENOISE) {
                        if (!t_first)
                            t_first = now;
                        t_last = now;
                        if (ws[i].freed_us && denoise >= nworkers && nlat < CHUNKS + 16)
                            lat[nlat++] = now - ws[i].freed_us;
                        denoise++;
                    }
                    s_answer(&ws[i], &m);
                }
                rf_wire_msg_release(&m);
            }
        }
        int64_t now_ms = s_us() / 1000;
        for (int i = 0; i < nworkers; i++)
            if (now_ms >= ws[i].next_beat_ms) {
                ws[i].next_beat_ms = now_ms + 1000;
                Reelfarm__Envelope hb = REELFARM__ENVELOPE__INIT;
                Reelfarm__Heartbeat b = REELFARM__HEARTBEAT__INIT;
                hb.kind_case = REELFARM__ENVELOPE__KIND_HEARTBEAT;
                hb.heartbeat = &b;
                s_send(ws[i].sock, &hb, NULL, 0, &ws[i].req);
            }
        if (now_ms >= next_poll && denoise >= CHUNKS) {
            next_poll = now_ms + 200;
            Reelfarm__Envelope e = REELFARM__ENVELOPE__INIT;
            Reelfarm__JobStatus js = REELFARM__JOB_STATUS__INIT;
            js.job_id = job;
            e.kind_case = REELFARM__ENVELOPE__KIND_JOB_STATUS;
            e.job_status = &js;
            rf_wire_msg r2 = {0};
            if (s_api_call(api, &e, &r2, &areq) == 0 &&
                r2.env->kind_case == REELFARM__ENVELOPE__KIND_JOB_INFO)
                state = (int)r2.env->job_info->state;
            rf_wire_msg_release(&r2);
        }
    }
    double cpu1;
    s_proc(pid, &cpu1, &rss);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < nworkers; i++)
        zmq_close(ws[i].sock);
    zmq_close(api);
    zmq_ctx_term(ctx);
    qsort(lat, nlat, sizeof(*lat), s_cmp);
    double secs = (double)(t_last - t_first) / 1e6;
    out[0] = secs > 0 ? (double)(denoise - 1) / secs : 0;
    out[1] = nlat ? (double)lat[nlat / 2] / 1000.0 : -1;
    out[2] = nlat ? (double)lat[(size_t)((double)nlat * 0.99)] / 1000.0 : -1;
    out[3] = cpu1 - cpu0;
    out[4] = rss;
    out[5] = (double)assigns;
    printf("workers %5d: job %s, %ld DENOISE + %ld other dispatches; DENOISE phase %.2f s = %.0f "
           "dispatches/s; latency p50 %.2f ms p99 %.2f ms (%zu samples); coordinator CPU %.2f s, "
           "peak RSS %.1f MiB\n",
           nworkers, state == 3 ? "DONE" : "NOT DONE", denoise, assigns - denoise, secs, out[0],
           out[1], out[2], nlat, out[3], out[4]);
    fflush(stdout);
    free(lat);
    free(ws);
    free(items);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (state == 3 && !getenv("RF_BENCH_SCALE_KEEP") && system(cmd) != 0)
        fprintf(stderr, "bench_scale: could not remove %s\n", dir);
    return state == 3 ? 0 : -1;
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
    const char *list =
        getenv("RF_BENCH_SCALE_WORKERS") ? getenv("RF_BENCH_SCALE_WORKERS") : "100 1000";
    printf("bench_scale: one %d-chunk job (independent mode, 1 step per chunk), workers answer "
           "at once; goal >= %.0f dispatches/s, p99 < %.1f ms\n",
           CHUNKS, GOAL_RATE, GOAL_P99_MS);
    double first[6] = {0}, r[6];
    int rc = 0, k = 0;
    for (const char *s = list; *s;) {
        char *end;
        long n = strtol(s, &end, 10);
        if (end == s)
            break;
        s = end;
        if (n < 1)
            continue;
        if (s_run((int)n, build, r)) {
            rc = 1;
            continue;
        }
        printf("  vs goal: rate %.2fx, p99 %.2fx of the %.1f ms budget\n", r[0] / GOAL_RATE,
               r[2] / GOAL_P99_MS, GOAL_P99_MS);
        if (k++ == 0)
            memcpy(first, r, sizeof(r));
        else
            printf("  vs the first run: rate %.2fx, p99 %.2fx, CPU %.2fx, peak RSS %.2fx\n",
                   r[0] / first[0], r[2] / first[2], r[3] / first[3], r[4] / first[4]);
    }
    return rc;
}
