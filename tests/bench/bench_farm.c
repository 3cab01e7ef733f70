/* bench_farm.c - the farm's own cost: a lockstep render on 2 CPU workers against the
 * engine compute those workers report for the same tasks.
 *
 * Starts build/bin/reelfarm-coordinator (ipc:// sockets in a private temporary directory,
 * Prometheus metrics on a free loopback port) and two reelfarm-worker processes with one
 * thread each, submits a two-chunk single-shot film of the demo model (models/reel-tiny)
 * at 320x320 whose steps take about a second per chunk (33-frame chunks overlapping by 8
 * frames, i.e. 2 of 9 latent frames), waits for it, then reads the job
 * (reelctl --json job) and the coordinator's metrics. Printed:
 *   - overhead: the job's wall time (started -> finished) over the workers' compute
 *     seconds (reelfarm_task_duration_seconds_sum, all kinds) divided by the number of
 *     workers, i.e. against a perfect split of the same engine work (goal <= 1.10);
 *   - bytes per round: the overlap frames up and down at each sync
 *     (reelfarm_chunk_state_bytes_total{part="overlap_*"} / rounds) against the full
 *     sampler states of the round's chunks (part="checkpoint", per checkpoint, times the
 *     chunks), and the same with the checkpoints' own traffic spread over the rounds.
 * RF_BENCH_FARM_STEPS (default 20) and RF_BENCH_FARM_SIZE (default 320) tune it.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 2
#define GOAL    1.10

static char s_build[1024], s_dir[256];

static pid_t s_spawn(const char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (f)
            dup2(fileno(stdout), 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void s_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* GET http://127.0.0.1:port/metrics; the body, malloc'd, or NULL. */
static char *s_scrape(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    const char *req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf && (r = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (n + 1 == cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    close(fd);
    if (buf)
        buf[n] = 0;
    return buf;
}

/* The sum of every sample whose line starts with prefix (0 when none). */
static double s_sum(const char *text, const char *prefix)
{
    double v = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; (p = strstr(p, prefix)); p += n)
        if (p == text || p[-1] == '\n') {
            const char *sp = strchr(p, ' ');
            if (sp)
                v += strtod(sp + 1, NULL);
        }
    return v;
}

/* Runs a shell command, returns its stdout (malloc'd) or NULL when it fails. */
static char *s_capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *q = realloc(buf, cap * 2);
            if (!q)
                break;
            buf = q;
            cap *= 2;
        }
    }
    int rc = pclose(p);
    if (!buf || rc != 0) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static int s_fail(const char *what)
{
    fprintf(stderr, "bench_farm: %s (logs in %s)\n", what, s_dir);
    return 1;
}

int main(void)
{
    const char *b = getenv("RF_BUILD");
    snprintf(s_build, sizeof(s_build), "%s", b ? b : RF_SOURCE_DIR "/build");
    const char *steps_env = getenv("RF_BENCH_FARM_STEPS");
    const char *size_env = getenv("RF_BENCH_FARM_SIZE");
    int steps = steps_env ? atoi(steps_env) : 20;
    int size = size_env ? atoi(size_env) : 320;
    snprintf(s_dir, sizeof(s_dir), "/tmp/reelfarm-bench-farm-XXXXXX");
    if (!mkdtemp(s_dir))
        return s_fail("cannot make a temporary directory");
    int port = s_free_port();
    if (port <= 0)
        return s_fail("no free loopback port");

    char wep[400], aep[400], state[400], out[400], models[1200], metrics[64], spec[400];
    char coord_bin[1200], worker_bin[1200], log[400], model[1300];
    snprintf(wep, sizeof(wep), "ipc://%s/w.sock", s_dir);
    snprintf(aep, sizeof(aep), "ipc://%s/a.sock", s_dir);
    snprintf(state, sizeof(state), "%s/state", s_dir);
    snprintf(out, sizeof(out), "%s/out", s_dir);
    snprintf(models, sizeof(models), "%s/models", RF_SOURCE_DIR);
    snprintf(model, sizeof(model), "%s/reel-tiny", models);
    snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", port);
    snprintf(coord_bin, sizeof(coord_bin), "%s/bin/reelfarm-coordinator", s_build);
    snprintf(worker_bin, sizeof(worker_bin), "%s/bin/reelfarm-worker", s_build);
    mkdir(out, 0700);

    /* two chunks of 33 frames (9 latent) overlapping by 8 (2 latent): 61 frames, one sync
     * per step, a checkpoint every 5 rounds (the spec's defaults) */
    snprintf(spec, sizeof(spec), "%s/film.yaml", s_dir);
    FILE *f = fopen(spec, "w");
    if (!f)
        return s_fail("cannot write the spec");
    fprintf(f,
            "name: bench-farm\nmodel: reel-tiny\nwidth: %d\nheight: %d\nframes: 61\n"
            "steps: %d\nseed: 7\nmode: lockstep\nchunk:\n  frames: 33\n  overlap: 8\n"
            "prompt: a red circle moves to the right on a dark blue background\n"
            "output:\n  path: bench-farm.mkv\n  codec: ffv1\n",
            size, size, steps);
    fclose(f);

    snprintf(log, sizeof(log), "%s/coord.log", s_dir);
    const char *cargv[] = {coord_bin, "--listen",      wep,        "--api", aep,
                           "--state", state,           "--models", models,  "--metrics",
                           metrics,   "--output-root", out,        NULL};
    pid_t coord = s_spawn(cargv, log);
    pid_t workers[WORKERS] = {0};
    for (int i = 0; i < WORKERS; i++) {
        char name[32], wlog[400];
        snprintf(name, sizeof(name), "bench-w%d", i);
        snprintf(wlog, sizeof(wlog), "%s/%s.log", s_dir, name);
        const char *wargv[] = {worker_bin, "--coordinator", wep,      "--threads", "1",
                               "--model",  model,           "--name", name,        NULL};
        workers[i] = s_spawn(wargv, wlog);
    }
    int rc = 0;
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "%s/bin/reelctl --api %s --timeout 30 submit %s 2>&1", s_build, aep,
             spec);
    printf("farm: %d workers x 1 thread, reel-tiny %dx%d, 61 frames = 2 chunks of 33 "
           "(overlap 8), %d steps, lockstep\n",
           WORKERS, size, size, steps);
    fflush(stdout);
    char *id = s_capture(cmd);
    if (!id) {
        rc = s_fail("the coordinator refused the job");
        goto done;
    }
    id[strcspn(id, "\n")] = 0;
    snprintf(cmd, sizeof(cmd), "%s/bin/reelctl --api %s --json job %s", s_build, aep, id);
    free(id);
    json_t *job = NULL;
    const char *st = NULL;
    for (int polls = 0; polls < 6000; polls++) { /* an upper bound, not a measurement */
        for (int i = 0; i < WORKERS; i++)
            if (waitpid(workers[i], NULL, WNOHANG) == workers[i]) {
                workers[i] = 0;
                rc = s_fail("a worker exited");
                goto done;
            }
        json_decref(job);
        char *text = s_capture(cmd);
        json_error_t je;
        job = text ? json_loads(text, 0, &je) : NULL;
        free(text);
        st = json_string_value(json_object_get(job, "state"));
        if (st && (!strcmp(st, "done") || !strcmp(st, "failed") || !strcmp(st, "canceled")))
            break;
        usleep(200000);
    }
    if (!st || strcmp(st, "done") != 0) {
        json_decref(job);
        rc = s_fail("the job did not end done");
        goto done;
    }
    double wall = (double)(json_integer_value(json_object_get(job, "finished_ms")) -
                           json_integer_value(json_object_get(job, "started_ms"))) /
                  1000.0;
    json_decref(job);

    char *m = NULL;
    for (int i = 0;
         i < 30 && !(m && s_sum(m, "reelfarm_tasks_total{kind=\"DECODE\",outcome=\"ok\"}")); i++) {
        free(m);
        m = s_scrape(port);
        if (!m || !s_sum(m, "reelfarm_tasks_total{kind=\"DECODE\",outcome=\"ok\"}"))
            usleep(100000);
    }
    if (!m) {
        rc = s_fail("cannot read the metrics");
        goto done;
    }
    double compute = s_sum(m, "reelfarm_task_duration_seconds_sum");
    double denoise = s_sum(m, "reelfarm_task_duration_seconds_sum{kind=\"DENOISE\"}");
    double rounds = s_sum(m, "reelfarm_fusion_round_duration_seconds_count");
    double round_s = s_sum(m, "reelfarm_fusion_round_duration_seconds_sum");
    double up = s_sum(m, "reelfarm_chunk_state_bytes_total{part=\"overlap_up\"}");
    double down = s_sum(m, "reelfarm_chunk_state_bytes_total{part=\"overlap_down\"}");
    double full = s_sum(m, "reelfarm_chunk_state_bytes_total{part=\"checkpoint\"}");
    double nfull = s_sum(m, "reelfarm_chunk_states_total{part=\"checkpoint\"}");
    free(m);
    if (compute <= 0 || rounds <= 0 || nfull <= 0) {
        rc = s_fail("the metrics lack task durations, rounds or states");
        goto done;
    }
    double ideal = compute / WORKERS;
    printf("farm: wall %.2f s; workers' compute %.2f s (DENOISE %.2f s), %.2f s per worker "
           "if split perfectly\n",
           wall, compute, denoise, ideal);
    printf("farm_overhead wall/compute-per-worker=%.3f (goal <= %.2f: %s)\n", wall / ideal, GOAL,
           wall / ideal <= GOAL ? "met" : "not met");
    double per_round = (up + down) / rounds, state_b = full / nfull;
    printf("farm_sync %.0f rounds: %.1f KiB moved per round (overlaps up + down) vs %.1f KiB "
           "of full states (2 chunks x %.1f KiB): ratio %.3f; with the %.0f checkpoints spread "
           "over the rounds %.1f KiB, ratio %.3f; fusion %.1f ms per round\n",
           rounds, per_round / 1024, 2 * state_b / 1024, state_b / 1024, per_round / (2 * state_b),
           nfull, (up + down + full) / rounds / 1024, (up + down + full) / rounds / (2 * state_b),
           1000 * round_s / rounds);
done:
    for (int i = 0; i < WORKERS; i++)
        s_stop(workers[i]);
    s_stop(coord);
    if (!rc) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_farm: could not remove %s\n", s_dir);
    }
    return rc;
}
