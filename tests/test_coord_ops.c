/* test_coord_ops.c - the real reelfarm-coordinator's operations side: a config file, CURVE
 * on both tcp endpoints with ZAP, a rejected worker told so, SIGHUP adding its key,
 * /metrics and /healthz (checked by promtool when installed), the refusal to serve a
 * reachable endpoint without CURVE, and --insecure.
 *
 * Waits are bounded so a broken coordinator fails instead of hanging; nothing is timed.
 */
#include "curve.h"
#include "rf_test.h"
#include "support/proc.h"
#include "tests/support/fake_worker.h"
#include "tests/support/farm.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* ---- cleanup that survives a failed check ----------------------------------------------
 * A failed RF_CHECK leaves the test function at once, so every process a test starts is
 * registered here and killed at exit if the test did not end it. */

#define S_MAX_LIVE 16
static rf_proc *s_procs[S_MAX_LIVE];
static rf_farm *s_farms[S_MAX_LIVE];
static pid_t s_pids[S_MAX_LIVE];

static void s_cleanup(void)
{
    for (int i = 0; i < S_MAX_LIVE; i++) {
        rf_proc_destroy(&s_procs[i]);
        if (s_farms[i])
            rf_farm_kill(s_farms[i]);
        if (s_pids[i] > 0) {
            kill(s_pids[i], SIGKILL);
            waitpid(s_pids[i], NULL, 0);
        }
    }
}

static void s_cleanup_once(void)
{
    static int registered;
    if (!registered)
        atexit(s_cleanup);
    registered = 1;
}

static rf_proc *s_proc_start(const char *const argv[], rf_error *err)
{
    s_cleanup_once();
    rf_proc *p = rf_proc_start(argv, NULL, err);
    for (int i = 0; p && i < S_MAX_LIVE; i++)
        if (!s_procs[i]) {
            s_procs[i] = p;
            break;
        }
    return p;
}

static void s_proc_end(rf_proc **p)
{
    for (int i = 0; *p && i < S_MAX_LIVE; i++)
        if (s_procs[i] == *p)
            s_procs[i] = NULL;
    rf_proc_destroy(p);
}

/* Runs a command to its end (registered for cleanup); its exit status, output in *out. */
static int s_ctl(const char *const argv[], char **out)
{
    rf_error err;
    rf_proc *p = s_proc_start(argv, &err);
    *out = NULL;
    if (!p)
        return -1;
    int status = -1;
    if (rf_proc_wait(p, 30000, &status, &err) != 0)
        status = -1;
    *out = rf_proc_log(p, NULL);
    s_proc_end(&p);
    return status;
}

/* f must be static storage (it outlives a failed test). */
static int s_farm_start(rf_farm *f, const char *name, const char *extra)
{
    s_cleanup_once();
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < S_MAX_LIVE; i++)
        if (!s_farms[i] || s_farms[i] == f) {
            s_farms[i] = f;
            break;
        }
    return rf_farm_start(f, name, extra);
}

static pid_t s_worker(rf_fake_worker_opts *o)
{
    s_cleanup_once();
    pid_t pid = rf_fake_worker_spawn(o);
    for (int i = 0; pid > 0 && i < S_MAX_LIVE; i++)
        if (s_pids[i] <= 0) {
            s_pids[i] = pid;
            break;
        }
    return pid;
}

/* A fake worker of f's model named name (started with s_worker). */
static pid_t s_farm_worker(const rf_farm *f, const char *name)
{
    rf_fake_worker_opts o;
    memset(&o, 0, sizeof(o));
    o.endpoint = f->wep;
    o.name = name;
    o.model_hash = f->model_hash;
    return s_worker(&o);
}

static void s_worker_end(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < S_MAX_LIVE; i++)
        if (s_pids[i] == pid)
            s_pids[i] = 0;
}

typedef struct s_buf {
    char *data;
    size_t len;
} s_buf;

static size_t s_write_cb(char *p, size_t size, size_t n, void *ud)
{
    s_buf *b = ud;
    size_t add = size * n;
    char *d = realloc(b->data, b->len + add + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, add);
    b->len += add;
    d[b->len] = '\0';
    b->data = d;
    return add;
}

static long s_get(const char *url, char **body)
{
    CURL *c = curl_easy_init();
    s_buf b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    *body = b.data ? b.data : strdup("");
    return status;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void s_keys(const char *dir, const char *name, rf_curve_keypair *kp)
{
    char base[700];
    snprintf(base, sizeof(base), "%s/%s", dir, name);
    rf_error err;
    RF_CHECK_MSG(rf_curve_keygen_files(base, kp, &err) == 0, "%s", err.msg);
}

static int s_free_port(void)
{
    int p = 0;
    RF_CHECK_EQ_INT(rf_proc_free_port(&p, NULL), 0);
    return p;
}

/* A client socket set up from key files; returns the monitor's verdict (0 connected). */
static int s_handshake(void *ctx, const char *dir, const char *who, const char *role,
                       const char *ep, rf_error *err)
{
    char sec[700], pub[700];
    snprintf(sec, sizeof(sec), "%s/%s.key_secret", dir, who);
    snprintf(pub, sizeof(pub), "%s/coord.key", dir);
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof(zero));
    rf_curve_monitor *mon = NULL;
    int rc = rf_curve_client_setup(ctx, d, sec, pub, role, ep, &mon, err);
    if (!rc && zmq_connect(d, ep) != 0)
        rc = rf_error_set(err, RF_EIO, "connect %s", ep);
    if (!rc) {
        rc = rf_error_set(err, RF_EAGAIN, "no handshake result within 10 s");
        for (int i = 0; i < 100; i++) {
            int r = rf_curve_monitor_check(mon, 100, err);
            if (r) {
                rc = r;
                break;
            }
            if (rf_curve_monitor_connected(mon)) {
                rc = 0;
                break;
            }
        }
    }
    rf_curve_monitor_destroy(&mon);
    zmq_close(d);
    return rc;
}

RF_TEST(curve_metrics_and_sighup_on_a_live_coordinator)
{
    if (!rf_curve_available())
        RF_SKIP("libzmq without CURVE");
    char dir[512], bin[512];
    rf_test_path(dir, sizeof(dir), "ops");
    RF_CHECK_EQ_INT(mkdir(dir, 0700), 0);
    rf_curve_keypair coord, client, worker;
    s_keys(dir, "coord", &coord);
    s_keys(dir, "client", &client);
    s_keys(dir, "worker", &worker);
    char wkeys[700], ckeys[700], cfgp[700], text[4096], line[128];
    snprintf(wkeys, sizeof(wkeys), "%s/allowed-worker-keys", dir);
    snprintf(ckeys, sizeof(ckeys), "%s/allowed-client-keys", dir);
    RF_CHECK_EQ_INT(rf_test_write_file(wkeys, "# none yet\n", 11), 0);
    snprintf(line, sizeof(line), "%s reelctl\n", client.public_z85);
    RF_CHECK_EQ_INT(rf_test_write_file(ckeys, line, strlen(line)), 0);
    int pw = s_free_port(), pa = s_free_port(), pm = s_free_port();
    snprintf(cfgp, sizeof(cfgp), "%s/coordinator.yaml", dir);
    snprintf(text, sizeof(text),
             "listen: tcp://127.0.0.1:%d\napi: tcp://127.0.0.1:%d\nmetrics: 127.0.0.1:%d\n"
             "state: state\noutput_root: %s\nlog_level: info\n"
             "keys:\n  server_secret_key: coord.key_secret\n"
             "  allowed_worker_keys: allowed-worker-keys\n"
             "  allowed_client_keys: allowed-client-keys\n",
             pw, pa, pm, dir);
    RF_CHECK_EQ_INT(rf_test_write_file(cfgp, text, strlen(text)), 0);
    rf_proc_bin(bin, sizeof(bin), "reelfarm-coordinator");
    const char *argv[] = {bin, "--config", cfgp, NULL};
    rf_error err;
    rf_proc *p = s_proc_start(argv, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    char mep[64], wep[64], aep[64], url[128];
    snprintf(mep, sizeof(mep), "tcp://127.0.0.1:%d", pm);
    snprintf(wep, sizeof(wep), "tcp://127.0.0.1:%d", pw);
    snprintf(aep, sizeof(aep), "tcp://127.0.0.1:%d", pa);
    RF_CHECK_MSG(rf_proc_wait_endpoint(p, mep, 20000, &err) == 0, "%s", err.msg);
    RF_CHECK_MSG(rf_proc_wait_endpoint(p, aep, 20000, &err) == 0, "%s", err.msg);

    char *body = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", pm);
    RF_CHECK_EQ_INT(s_get(url, &body), 200);
    free(body);

    void *ctx = zmq_ctx_new();
    RF_CHECK_MSG(s_handshake(ctx, dir, "client", "client", aep, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(s_handshake(ctx, dir, "worker", "worker", wep, &err), RF_EPROTO);
    RF_CHECK_CONTAINS(err.msg, "rejected this worker's key");
    RF_CHECK_MSG(rf_proc_wait_log(p, "connection rejected", 10000, &err) == 0, "%s", err.msg);
    /* the client key is not a worker key, and the reverse */
    RF_CHECK_EQ_INT(s_handshake(ctx, dir, "client", "worker", wep, &err), RF_EPROTO);

    /* SIGHUP after listing the worker */
    snprintf(line, sizeof(line), "%s worker-1\n", worker.public_z85);
    RF_CHECK_EQ_INT(rf_test_write_file(wkeys, line, strlen(line)), 0);
    RF_CHECK_EQ_INT(rf_proc_signal(p, SIGHUP, &err), 0);
    RF_CHECK_MSG(rf_proc_wait_log(p, "keys and allow-lists reloaded", 10000, &err) == 0, "%s",
                 err.msg);
    RF_CHECK_MSG(s_handshake(ctx, dir, "worker", "worker", wep, &err) == 0, "%s", err.msg);
    zmq_ctx_term(ctx);

    /* the metrics see the rejections (gauges refresh each second) */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", pm);
    int seen = 0;
    for (int i = 0; i < 50 && !seen; i++) {
        RF_CHECK_EQ_INT(s_get(url, &body), 200);
        seen = strstr(body, "reelfarm_curve_handshakes_total{outcome=\"rejected\"} 0\n") == NULL &&
               strstr(body, "reelfarm_curve_handshakes_total{outcome=\"rejected\"}") != NULL;
        if (!seen) {
            free(body);
            body = NULL;
            s_sleep_ms(100);
        }
    }
    RF_CHECK_MSG(seen, "no rejected handshakes in /metrics");
    RF_CHECK_CONTAINS(body, "reelfarm_jobs{state=\"queued\"} 0\n");
    RF_CHECK_CONTAINS(body, "reelfarm_workers{state=\"idle\"}");
    RF_CHECK_CONTAINS(body, "reelfarm_healthy 1\n");
    /* the loop's turns are timed: the workers' hellos made some */
    RF_CHECK_CONTAINS(body, "reelfarm_loop_turn_duration_seconds_count ");
    RF_CHECK(strstr(body, "reelfarm_loop_turn_duration_seconds_count 0\n") == NULL);
    if (system("command -v promtool >/dev/null 2>&1") == 0) {
        char scrape[700], out[700], cmd[1600];
        snprintf(scrape, sizeof(scrape), "%s/scrape.txt", dir);
        snprintf(out, sizeof(out), "%s/promtool.out", dir);
        RF_CHECK_EQ_INT(rf_test_write_file(scrape, body, strlen(body)), 0);
        snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > '%s' 2>&1", scrape, out);
        int rc = system(cmd);
        RF_CHECK_MSG(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "promtool check metrics failed (%s)",
                     out);
    }
    free(body);

    int status = -1;
    RF_CHECK_EQ_INT(rf_proc_signal(p, SIGTERM, &err), 0);
    RF_CHECK_MSG(rf_proc_wait(p, 20000, &status, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(status, 0);
    s_proc_end(&p);
}

RF_TEST(reachable_endpoints_need_curve_or_insecure)
{
    char dir[512], bin[512], state[700], lep[64], aep[64];
    rf_test_path(dir, sizeof(dir), "plain");
    RF_CHECK_EQ_INT(mkdir(dir, 0700), 0);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(lep, sizeof(lep), "tcp://127.0.0.1:%d", s_free_port());
    snprintf(aep, sizeof(aep), "tcp://127.0.0.1:%d", s_free_port());
    rf_proc_bin(bin, sizeof(bin), "reelfarm-coordinator");
    const char *argv[] = {bin, "--listen", lep, "--api", aep, "--state", state, NULL, NULL};
    rf_error err;
    rf_proc *p = s_proc_start(argv, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    int status = 0;
    RF_CHECK_MSG(rf_proc_wait(p, 20000, &status, &err) == 0, "%s", err.msg);
    RF_CHECK(status != 0);
    RF_CHECK(rf_proc_log_contains(p, "refusing to serve without CURVE"));
    RF_CHECK(rf_proc_log_contains(p, "--insecure"));
    s_proc_end(&p);

    argv[7] = "--insecure";
    p = s_proc_start(argv, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    RF_CHECK_MSG(rf_proc_wait_endpoint(p, aep, 20000, &err) == 0, "%s", err.msg);
    RF_CHECK(rf_proc_log_contains(p, "serving without CURVE"));
    RF_CHECK_EQ_INT(rf_proc_signal(p, SIGTERM, &err), 0);
    RF_CHECK_MSG(rf_proc_wait(p, 20000, &status, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(status, 0);
    s_proc_end(&p);

    /* a config file mistake stops the start with file:line */
    char cfgp[700];
    snprintf(cfgp, sizeof(cfgp), "%s/bad.yaml", dir);
    RF_CHECK_EQ_INT(rf_test_write_file(cfgp, "listen: tcp://x:1\nlisen: 2\n", 27), 0);
    const char *argv2[] = {bin, "--config", cfgp, NULL};
    p = s_proc_start(argv2, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    RF_CHECK_MSG(rf_proc_wait(p, 20000, &status, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(status, 2);
    RF_CHECK(rf_proc_log_contains(p, "bad.yaml:2: unknown key lisen; did you mean listen?"));
    s_proc_end(&p);
}

/* Timeline 0: 41 pixel frames (3 chunks with overlaps, so fusion rounds), timeline 1 one
 * chunk; the fake worker of tests/support computes stand-in tensors. */
static const char *SPEC = "name: film\nmodel: fake\nwidth: 32\nheight: 32\nseed: 7\nsteps: 6\n"
                          "guidance: 3\nchunk:\n  frames: 17\n  overlap: 8\n  sync_every: 1\n"
                          "  checkpoint_every: 2\nshots:\n  - prompt: a fox in the snow\n"
                          "    frames: 41\n  - prompt: a lighthouse\n    frames: 17\n"
                          "    transition: cut\noutput:\n  path: film.mp4\n";

/* The value of the first sample line starting with prefix, or -1. */
static double s_sample(const char *text, const char *prefix)
{
    const char *p = text;
    size_t n = strlen(prefix);
    while ((p = strstr(p, prefix))) {
        if (p == text || p[-1] == '\n')
            return strtod(p + n, NULL);
        p += n;
    }
    return -1;
}

/* Starts Debian's prometheus on a free loopback port scraping 127.0.0.1:target every
 * second and asks its API for query until the answer holds want (bounded). Returns 1 when
 * it did, 0 when not (why in msg), -1 when prometheus is not installed. */
static int s_prometheus_sees(int target, const char *query_enc, const char *want, char *msg,
                             size_t cap)
{
    if (system("command -v prometheus >/dev/null 2>&1") != 0)
        return -1;
    char dir[600], cfg[700], text[512], f1[800], f2[800], f3[100], url[512];
    int pport = s_free_port();
    snprintf(dir, sizeof(dir), "%s/prom-%d", rf_test_tmpdir(), pport);
    if (mkdir(dir, 0700) != 0)
        return snprintf(msg, cap, "mkdir %s", dir), 0;
    snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", dir);
    snprintf(text, sizeof(text),
             "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
             "scrape_configs:\n  - job_name: reelfarm\n    static_configs:\n"
             "      - targets: ['127.0.0.1:%d']\n",
             target);
    if (rf_test_write_file(cfg, text, strlen(text)))
        return snprintf(msg, cap, "cannot write %s", cfg), 0;
    snprintf(f1, sizeof(f1), "--config.file=%s", cfg);
    snprintf(f2, sizeof(f2), "--storage.tsdb.path=%s/data", dir);
    snprintf(f3, sizeof(f3), "--web.listen-address=127.0.0.1:%d", pport);
    const char *argv[] = {"prometheus", f1, f2, f3, "--log.level=warn", NULL};
    rf_error err;
    rf_proc *p = s_proc_start(argv, &err);
    if (!p)
        return snprintf(msg, cap, "%s", err.msg), 0;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/query?query=%s", pport, query_enc);
    int found = 0;
    char *body = NULL;
    for (int i = 0; i < 100 && !found && rf_proc_running(p); i++) {
        free(body);
        body = NULL;
        found = s_get(url, &body) == 200 && strstr(body, want) != NULL;
        if (!found)
            s_sleep_ms(200);
    }
    if (!found)
        snprintf(msg, cap, "prometheus never answered %s with %s; last: %.500s", query_enc, want,
                 body ? body : "(none)");
    free(body);
    s_proc_end(&p);
    return found;
}

RF_TEST(a_job_shows_in_the_metrics)
{
    int pm = s_free_port();
    char extra[64], url[128];
    snprintf(extra, sizeof(extra), "--metrics 127.0.0.1:%d", pm);
    static rf_farm f;
    RF_CHECK_MSG(s_farm_start(&f, "metrics", extra) == 0, "coordinator did not start (%s)", f.log);
    pid_t pid = s_farm_worker(&f, "mw");
    RF_CHECK(pid > 0);
    char job[64], errs[1024];
    RF_CHECK_MSG(rf_farm_submit(&f, SPEC, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    int st = rf_farm_wait(&f, job, 60000);
    s_worker_end(pid);
    RF_CHECK_MSG(st == REELFARM__JOB_STATE__JOB_DONE, "job ended in state %d (log %s)", st, f.log);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", pm);
    char *body = NULL;
    int done = 0;
    for (int i = 0; i < 50 && !done; i++) { /* gauges refresh once a second */
        free(body);
        RF_CHECK_EQ_INT(s_get(url, &body), 200);
        done = s_sample(body, "reelfarm_jobs{state=\"done\"} ") == 1;
        if (!done)
            s_sleep_ms(100);
    }
    RF_CHECK_MSG(done, "reelfarm_jobs{state=\"done\"} never became 1:\n%s", body);
    RF_CHECK(s_sample(body, "reelfarm_tasks_total{kind=\"DENOISE\",outcome=\"ok\"} ") >= 4);
    RF_CHECK(s_sample(body, "reelfarm_tasks_total{kind=\"DECODE\",outcome=\"ok\"} ") >= 1);
    RF_CHECK(s_sample(body, "reelfarm_task_duration_seconds_count{kind=\"DENOISE\"} ") >= 4);
    RF_CHECK(s_sample(body, "reelfarm_chunk_steps_total ") >= 4 * 6);
    RF_CHECK(s_sample(body, "reelfarm_frames_rendered_total ") >= 41 + 17);
    RF_CHECK(s_sample(body, "reelfarm_fusion_round_duration_seconds_count ") >= 1);
    RF_CHECK(s_sample(body, "reelfarm_transfer_bytes_total{direction=\"received\"} ") > 0);
    RF_CHECK(s_sample(body, "reelfarm_transfer_bytes_total{direction=\"sent\"} ") > 0);
    /* sync overlaps, checkpoints and results are counted apart */
    RF_CHECK(s_sample(body, "reelfarm_chunk_states_total{part=\"overlap_up\"} ") >= 1);
    RF_CHECK(s_sample(body, "reelfarm_chunk_states_total{part=\"overlap_down\"} ") >= 1);
    RF_CHECK(s_sample(body, "reelfarm_chunk_states_total{part=\"result\"} ") >= 4);
    RF_CHECK(s_sample(body, "reelfarm_chunk_state_bytes_total{part=\"result\"} ") >
             s_sample(body, "reelfarm_chunk_state_bytes_total{part=\"overlap_up\"} ") /
                 s_sample(body, "reelfarm_chunk_states_total{part=\"overlap_up\"} "));
    RF_CHECK_EQ_INT(s_sample(body, "reelfarm_tasks_queued{kind=\"DENOISE\"} "), 0);
    free(body);
    /* a real Prometheus scrapes the live coordinator */
    char why[1024] = "";
    int seen =
        s_prometheus_sees(pm, "reelfarm_jobs%7Bstate%3D%22done%22%7D", "\"1\"]", why, sizeof(why));
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
    RF_CHECK_MSG(seen != 0, "%s", why);
}

static int s_count_files(const char *dir)
{
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "find '%s' -type f | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

RF_TEST(finished_jobs_blobs_are_collected_after_retention)
{
    static rf_farm f;
    RF_CHECK_MSG(s_farm_start(&f, "gc", "--retention 0") == 0, "coordinator did not start (%s)",
                 f.log);
    pid_t pid = s_farm_worker(&f, "gw");
    RF_CHECK(pid > 0);
    char job[64], errs[1024], blobs[700], out[700];
    RF_CHECK_MSG(rf_farm_submit(&f, SPEC, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    int st = rf_farm_wait(&f, job, 60000);
    s_worker_end(pid);
    RF_CHECK_MSG(st == REELFARM__JOB_STATE__JOB_DONE, "job ended in state %d (log %s)", st, f.log);
    int gone = 0;
    for (int i = 0; i < 100 && !gone; i++) {
        gone = rf_farm_log_has(&f, "blobs of finished jobs collected");
        if (!gone)
            s_sleep_ms(100);
    }
    RF_CHECK_MSG(gone, "no collection logged (%s)", f.log);
    snprintf(blobs, sizeof(blobs), "%s/state/blobs", f.dir);
    int left = s_count_files(blobs);
    snprintf(out, sizeof(out), "%s/out/film.mp4", f.dir);
    struct stat sb;
    RF_CHECK_MSG(stat(out, &sb) == 0 && sb.st_size > 0, "the output %s is gone", out);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
    /* only the shared text embeddings stay: two prompts and the model's negative */
    RF_CHECK_MSG(left >= 0 && left <= 3, "%d blob files left in %s", left, blobs);
}

/* The value of reelfarm_jobs_resident once it equals want while reelfarm_jobs{state="done"}
 * equals done (gauges refresh once a second); the last value seen otherwise. */
static double s_resident_becomes(const char *url, double want, double done)
{
    double v = -1, d = -1;
    for (int i = 0; i < 60 && (v != want || d != done); i++) {
        char *body = NULL;
        if (s_get(url, &body) == 200) {
            v = s_sample(body, "reelfarm_jobs_resident ");
            d = s_sample(body, "reelfarm_jobs{state=\"done\"} ");
        }
        free(body);
        if (v != want || d != done)
            s_sleep_ms(100);
    }
    return d == done ? v : -1;
}

RF_TEST(finished_jobs_leave_memory_and_are_answered_from_the_store)
{
    enum { NJOBS = 8 };
    int pm = s_free_port();
    char extra[64], url[128];
    snprintf(extra, sizeof(extra), "--metrics 127.0.0.1:%d", pm);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", pm);
    static rf_farm f;
    RF_CHECK_MSG(s_farm_start(&f, "evict", extra) == 0, "coordinator did not start (%s)", f.log);
    RF_CHECK_MSG(s_resident_becomes(url, 0, 0) == 0, "jobs in memory before any was submitted");
    pid_t pid = s_farm_worker(&f, "ew");
    RF_CHECK(pid > 0);
    char jobs[NJOBS][64], errs[1024], spec[512];
    for (int i = 0; i < NJOBS; i++) {
        snprintf(spec, sizeof(spec),
                 "name: small-%d\nmodel: fake\nwidth: 32\nheight: 32\nseed: %d\nsteps: 2\n"
                 "mode: independent\nshots:\n  - prompt: variant %d\n    frames: 17\n"
                 "output:\n  path: small-%d.mp4\n",
                 i, i + 1, i, i);
        RF_CHECK_MSG(rf_farm_submit(&f, spec, jobs[i], sizeof(jobs[i]), errs, sizeof(errs)) == 0,
                     "%s", errs);
    }
    for (int i = 0; i < NJOBS; i++) {
        int st = rf_farm_wait(&f, jobs[i], 60000);
        RF_CHECK_MSG(st == REELFARM__JOB_STATE__JOB_DONE, "%s ended in state %d (log %s)", jobs[i],
                     st, f.log);
    }
    /* every job finished: the coordinator holds none of them any more (and counts them) */
    double left = s_resident_becomes(url, 0, NJOBS);
    RF_CHECK_MSG(left == 0,
                 "%.0f jobs still in memory after all finished, or not %d counted "
                 "done (log %s)",
                 left, NJOBS, f.log);

    /* JobStatus on the oldest: what it said when it finished, from the store */
    rf_wire_msg rep = {0};
    RF_CHECK_EQ_INT(rf_farm_job_info(&f, jobs[0], &rep, 5000), 0);
    const Reelfarm__JobInfo *ji = rep.env->job_info;
    RF_CHECK_EQ_STR(ji->job_id, jobs[0]);
    RF_CHECK_EQ_STR(ji->name, "small-0");
    RF_CHECK_EQ_INT(ji->state, REELFARM__JOB_STATE__JOB_DONE);
    RF_CHECK_EQ_INT(ji->steps, 2);
    RF_CHECK(ji->chunk_steps_total > 0);
    RF_CHECK_EQ_INT((int)ji->chunk_steps_done, (int)ji->chunk_steps_total);
    RF_CHECK(ji->segments_total > 0);
    RF_CHECK_EQ_INT((int)ji->segments_done, (int)ji->segments_total);
    RF_CHECK_CONTAINS(ji->output_path, "small-0.mp4");
    RF_CHECK(ji->n_timelines == 1 && ji->timelines[0]->n_chunks > 0);
    for (size_t k = 0; k < ji->timelines[0]->n_chunks; k++) {
        const Reelfarm__ChunkInfo *ci = ji->timelines[0]->chunks[k];
        RF_CHECK_EQ_INT(ci->state, REELFARM__UNIT_STATE__UNIT_DONE);
        RF_CHECK_EQ_INT((int)ci->index, (int)k);
        RF_CHECK(ci->frames && ci->frames->start < ci->frames->end); /* its latent frames */
        if (k > 0 && ci->frames)
            RF_CHECK(ci->frames->start > ji->timelines[0]->chunks[k - 1]->frames->start);
    }
    for (size_t k = 0; k < ji->n_segments; k++) {
        RF_CHECK_EQ_INT(ji->segments[k]->state, REELFARM__UNIT_STATE__UNIT_DONE);
        RF_CHECK(ji->segments[k]->frames &&
                 ji->segments[k]->frames->start < ji->segments[k]->frames->end);
    }
    uint64_t steps_total = ji->chunk_steps_total;
    rf_wire_msg_release(&rep);

    /* a summary of it comes from its row: the same progress, no per-chunk detail */
    RF_CHECK_EQ_INT(rf_farm_job_summary(&f, jobs[0], &rep, 5000), 0);
    ji = rep.env->job_info;
    RF_CHECK_EQ_INT(ji->state, REELFARM__JOB_STATE__JOB_DONE);
    RF_CHECK_EQ_INT((int)ji->chunk_steps_done, (int)steps_total);
    RF_CHECK_EQ_INT((int)ji->segments_done, (int)ji->segments_total);
    RF_CHECK_EQ_INT((int)ji->n_timelines, 0);
    RF_CHECK_EQ_INT((int)ji->n_segments, 0);
    rf_wire_msg_release(&rep);

    /* its log, the job list, and cancel/retry refusals still answer */
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__LogsRequest lr = REELFARM__LOGS_REQUEST__INIT;
    lr.job_id = jobs[0];
    env.kind_case = REELFARM__ENVELOPE__KIND_LOGS_REQUEST;
    env.logs_request = &lr;
    RF_CHECK_EQ_INT(rf_farm_call(&f, &env, &rep, 5000), 0);
    RF_CHECK_EQ_INT(rep.env->kind_case, REELFARM__ENVELOPE__KIND_LOGS_REPLY);
    int wrote = 0;
    for (size_t k = 0; k < rep.env->logs_reply->n_lines; k++)
        wrote |= strstr(rep.env->logs_reply->lines[k]->text, "done: wrote") != NULL;
    RF_CHECK_MSG(wrote, "the finished job's log has no 'done: wrote' line");
    rf_wire_msg_release(&rep);

    Reelfarm__Envelope le = REELFARM__ENVELOPE__INIT;
    Reelfarm__JobListRequest jl = REELFARM__JOB_LIST_REQUEST__INIT;
    le.kind_case = REELFARM__ENVELOPE__KIND_JOB_LIST_REQUEST;
    le.job_list_request = &jl;
    RF_CHECK_EQ_INT(rf_farm_call(&f, &le, &rep, 5000), 0);
    RF_CHECK_EQ_INT(rep.env->kind_case, REELFARM__ENVELOPE__KIND_JOB_LIST);
    RF_CHECK_EQ_INT((int)rep.env->job_list->n_jobs, NJOBS);
    for (size_t k = 0; k < rep.env->job_list->n_jobs; k++) {
        const Reelfarm__JobInfo *in = rep.env->job_list->jobs[k];
        RF_CHECK_EQ_STR(in->job_id, jobs[k]); /* submission order */
        RF_CHECK_EQ_INT(in->state, REELFARM__JOB_STATE__JOB_DONE);
        RF_CHECK(in->chunk_steps_total > 0 && in->chunk_steps_done == in->chunk_steps_total);
    }
    RF_CHECK_EQ_INT((int)rep.env->job_list->matched, NJOBS);
    rf_wire_msg_release(&rep);
    /* a limit lists the newest (still in submission order) and says how many matched */
    jl.limit = 3;
    RF_CHECK_EQ_INT(rf_farm_call(&f, &le, &rep, 5000), 0);
    RF_CHECK_EQ_INT(rep.env->kind_case, REELFARM__ENVELOPE__KIND_JOB_LIST);
    RF_CHECK_EQ_INT((int)rep.env->job_list->n_jobs, 3);
    RF_CHECK_EQ_INT((int)rep.env->job_list->matched, NJOBS);
    for (size_t k = 0; k < rep.env->job_list->n_jobs && k < 3; k++)
        RF_CHECK_EQ_STR(rep.env->job_list->jobs[k]->job_id, jobs[NJOBS - 3 + k]);
    rf_wire_msg_release(&rep);
    /* states filter before the limit: none failed; done ones counted */
    Reelfarm__JobState want = REELFARM__JOB_STATE__JOB_FAILED;
    jl.states = &want;
    jl.n_states = 1;
    RF_CHECK_EQ_INT(rf_farm_call(&f, &le, &rep, 5000), 0);
    RF_CHECK_EQ_INT(rep.env->kind_case, REELFARM__ENVELOPE__KIND_JOB_LIST);
    RF_CHECK_EQ_INT((int)rep.env->job_list->n_jobs, 0);
    RF_CHECK_EQ_INT((int)rep.env->job_list->matched, 0);
    rf_wire_msg_release(&rep);
    want = REELFARM__JOB_STATE__JOB_DONE;
    jl.limit = 1;
    RF_CHECK_EQ_INT(rf_farm_call(&f, &le, &rep, 5000), 0);
    RF_CHECK_EQ_INT(rep.env->kind_case, REELFARM__ENVELOPE__KIND_JOB_LIST);
    RF_CHECK_EQ_INT((int)rep.env->job_list->n_jobs, 1);
    RF_CHECK_EQ_INT((int)rep.env->job_list->matched, NJOBS);
    RF_CHECK_EQ_STR(rep.env->job_list->jobs[0]->job_id, jobs[NJOBS - 1]);
    rf_wire_msg_release(&rep);
    /* reelctl jobs: the newest N, and it says how many were left out; --all lists every one */
    {
        char bin[1024], *out = NULL;
        rf_proc_bin(bin, sizeof(bin), "reelctl");
        const char *lim[] = {bin, "--api", f.aep, "jobs", "--limit", "2", NULL};
        RF_CHECK_EQ_INT(s_ctl(lim, &out), 0);
        RF_CHECK_CONTAINS(out, jobs[NJOBS - 1]);
        RF_CHECK_CONTAINS(out, jobs[NJOBS - 2]);
        RF_CHECK_MSG(strstr(out, jobs[0]) == NULL, "the oldest job is listed: %s", out);
        RF_CHECK_CONTAINS(out, "2 newest of 8 jobs shown; 6 older left out");
        free(out);
        const char *all[] = {bin, "--api", f.aep, "jobs", "--all", NULL};
        RF_CHECK_EQ_INT(s_ctl(all, &out), 0);
        RF_CHECK_CONTAINS(out, jobs[0]);
        RF_CHECK_CONTAINS(out, jobs[NJOBS - 1]);
        RF_CHECK_MSG(strstr(out, "left out") == NULL, "--all left jobs out: %s", out);
        free(out);
        const char *dflt[] = {bin, "--api", f.aep, "jobs", NULL}; /* 50 by default: all 8 */
        RF_CHECK_EQ_INT(s_ctl(dflt, &out), 0);
        RF_CHECK_CONTAINS(out, jobs[0]);
        RF_CHECK_MSG(strstr(out, "left out") == NULL, "8 jobs left some out: %s", out);
        free(out);
        const char *bad[] = {bin, "--api", f.aep, "jobs", "--limit", "0", NULL};
        RF_CHECK_EQ_INT(s_ctl(bad, &out), 2);
        RF_CHECK_CONTAINS(out, "--limit needs a count");
        free(out);
        const char *bad2[] = {bin, "--api", f.aep, "jobs", "--limit", "2x", NULL};
        RF_CHECK_EQ_INT(s_ctl(bad2, &out), 2);
        free(out);
    }

    RF_CHECK_EQ_INT(rf_farm_cancel(&f, jobs[1], &rep, 5000), 0);
    RF_CHECK_EQ_INT(rep.env->kind_case, REELFARM__ENVELOPE__KIND_ERROR);
    RF_CHECK_CONTAINS(rep.env->error->message, "already finished");
    rf_wire_msg_release(&rep);
    RF_CHECK_EQ_INT(rf_farm_retry(&f, jobs[1], &rep, 5000), 0);
    RF_CHECK_EQ_INT(rep.env->kind_case, REELFARM__ENVELOPE__KIND_ERROR);
    rf_wire_msg_release(&rep);
    /* a job nobody submitted is still unknown */
    RF_CHECK(rf_farm_job_info(&f, "job-999", &rep, 5000) != 0);
    /* nothing of this brought a job back into memory */
    RF_CHECK_EQ_INT((int)s_resident_becomes(url, 0, NJOBS), 0);
    s_worker_end(pid);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);

    /* restarted on the same state: finished jobs are counted, not loaded, and still answer */
    pm = s_free_port();
    snprintf(extra, sizeof(extra), "--metrics 127.0.0.1:%d", pm);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", pm);
    RF_CHECK_MSG(s_farm_start(&f, "evict", extra) == 0, "coordinator did not restart (%s)", f.log);
    RF_CHECK_EQ_INT((int)s_resident_becomes(url, 0, NJOBS), 0);
    RF_CHECK_EQ_INT(rf_farm_job_info(&f, jobs[NJOBS - 1], &rep, 5000), 0);
    RF_CHECK_EQ_INT(rep.env->job_info->state, REELFARM__JOB_STATE__JOB_DONE);
    RF_CHECK_EQ_STR(rep.env->job_info->name, "small-7");
    rf_wire_msg_release(&rep);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}

RF_TEST(a_canceled_job_out_of_memory_is_watched_and_retried)
{
    int pm = s_free_port();
    char extra[64], url[128];
    snprintf(extra, sizeof(extra), "--metrics 127.0.0.1:%d", pm);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", pm);
    static rf_farm f;
    RF_CHECK_MSG(s_farm_start(&f, "evict-retry", extra) == 0, "coordinator did not start (%s)",
                 f.log);
    const char *small = "name: again\nmodel: fake\nwidth: 32\nheight: 32\nseed: 3\nsteps: 2\n"
                        "mode: independent\nshots:\n  - prompt: one\n    frames: 17\n"
                        "output:\n  path: again.mp4\n";
    char job[64], errs[1024];
    RF_CHECK_MSG(rf_farm_submit(&f, small, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    /* no worker yet: canceled while queued, then out of memory */
    rf_wire_msg rep;
    RF_CHECK_EQ_INT(rf_farm_cancel(&f, job, &rep, 5000), 0);
    RF_CHECK_EQ_INT(rep.env->kind_case, REELFARM__ENVELOPE__KIND_OK);
    rf_wire_msg_release(&rep);
    RF_CHECK_EQ_INT((int)s_resident_becomes(url, 0, 0), 0);

    /* a watch on it gets its final state at once, from the store */
    Reelfarm__Envelope we = REELFARM__ENVELOPE__INIT;
    Reelfarm__Watch wr = REELFARM__WATCH__INIT;
    wr.job_id = job;
    we.kind_case = REELFARM__ENVELOPE__KIND_WATCH;
    we.watch = &wr;
    we.request_id = ++f.req;
    rf_wire_msg out = {0};
    out.env = &we;
    RF_CHECK_EQ_INT(rf_wire_send(f.api, &out, NULL), 0);
    int state = -1;
    for (int i = 0; i < 50 && state < 0; i++) {
        zmq_pollitem_t it = {f.api, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        rf_wire_msg ev = {0};
        if (rf_wire_recv(f.api, &ev, NULL, NULL) == 0 && ev.env->reply_to == we.request_id &&
            ev.env->kind_case == REELFARM__ENVELOPE__KIND_EVENT)
            state = (int)ev.env->event->state;
        rf_wire_msg_release(&ev);
    }
    RF_CHECK_EQ_INT(state, REELFARM__JOB_STATE__JOB_CANCELED);

    /* retried: back in memory, rendered by a worker, and out again once done */
    pid_t pid = s_farm_worker(&f, "rw");
    RF_CHECK(pid > 0);
    RF_CHECK_EQ_INT(rf_farm_retry(&f, job, &rep, 5000), 0);
    RF_CHECK_MSG(rep.env->kind_case == REELFARM__ENVELOPE__KIND_OK, "retry refused: %s",
                 rep.env->kind_case == REELFARM__ENVELOPE__KIND_ERROR ? rep.env->error->message
                                                                      : "?");
    rf_wire_msg_release(&rep);
    int st = rf_farm_wait(&f, job, 60000);
    s_worker_end(pid);
    RF_CHECK_MSG(st == REELFARM__JOB_STATE__JOB_DONE, "the retried job ended in state %d (log %s)",
                 st, f.log);
    char path[700];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/out/again.mp4", f.dir);
    RF_CHECK_MSG(stat(path, &sb) == 0 && sb.st_size > 0, "no output at %s", path);
    RF_CHECK_EQ_INT((int)s_resident_becomes(url, 0, 1), 0);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}

RF_TEST(submit_limits_from_the_config)
{
    static rf_farm f;
    RF_CHECK_MSG(s_farm_start(&f, "limits", "--max-jobs 1 --max-frames 50") == 0,
                 "coordinator did not start (%s)", f.log);
    char job[64], errs[1024];
    /* 41 + 17 frames > 50 */
    RF_CHECK(rf_farm_submit(&f, SPEC, job, sizeof(job), errs, sizeof(errs)) != 0);
    RF_CHECK_CONTAINS(errs, "limits.max_frames");
    const char *small = "name: s\nmodel: fake\nwidth: 32\nheight: 32\nseed: 1\nsteps: 2\n"
                        "shots:\n  - prompt: one\n    frames: 17\noutput:\n  path: s.mp4\n";
    RF_CHECK_MSG(rf_farm_submit(&f, small, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    /* no worker: it stays unfinished, so the next one is over max_jobs */
    RF_CHECK(rf_farm_submit(&f, small, job, sizeof(job), errs, sizeof(errs)) != 0);
    RF_CHECK_CONTAINS(errs, "limits.max_jobs");
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}

RF_TEST(inputs_follow_the_operators_policy)
{
    char root[600], extra[800];
    rf_test_path(root, sizeof(root), "in-root");
    RF_CHECK_EQ_INT(mkdir(root, 0700), 0);
    snprintf(extra, sizeof(extra), "--input-root %s --allow-url-host cdn.example.com", root);
    char pic[700];
    snprintf(pic, sizeof(pic), "%s/pic.png", root);
    RF_CHECK_EQ_INT(rf_test_write_file(pic, "png", 3), 0);
    static rf_farm f;
    RF_CHECK_MSG(s_farm_start(&f, "inputs", extra) == 0, "coordinator did not start (%s)", f.log);
    static const char *fmt = "name: i\nmodel: fake\nwidth: 32\nheight: 32\nseed: 1\nsteps: 2\n"
                             "inputs:\n  image: %s\n"
                             "shots:\n  - prompt: one\n    frames: 17\noutput:\n  path: i.mp4\n";
    char spec[1024], job[64], errs[1024];
    struct {
        const char *input, *says;
    } cases[] = {
        {"http://evil.example/x.png", "allowed_url_hosts"},
        {"../pic.png", "'..'"},
        {"/etc/hostname", "outside input_root"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(spec, sizeof(spec), fmt, cases[i].input);
        RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) != 0,
                     "%s was accepted", cases[i].input);
        RF_CHECK_CONTAINS(errs, cases[i].says);
    }
    /* what the policy allows is accepted (rendering them: test_farm_inputs) */
    const char *fine[] = {"http://cdn.example.com/x.png", "pic.png"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(spec, sizeof(spec), fmt, fine[i]);
        RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) == 0,
                     "%s was refused: %s", fine[i], errs);
    }
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}

/* A long independent timeline (300 chunks, stride 1 latent frame) on 16 simulated workers
 * (one process): its DECODE segments are built from the results of the chunks that decide
 * their frames only, a dispatch pass reads at most 64 of them however many workers are
 * free (the first DECODE used to read every chunk's result in one loop turn), every chunk
 * is read, and the film is complete. */
RF_TEST(decode_latents_are_read_a_bounded_amount_per_pass)
{
    int pm = s_free_port();
    char extra[64], url[128];
    snprintf(extra, sizeof(extra), "--metrics 127.0.0.1:%d", pm);
    static rf_farm f;
    RF_CHECK_MSG(s_farm_start(&f, "longtl", extra) == 0, "coordinator did not start (%s)", f.log);
    char bin[1024], model[700];
    rf_proc_bin(bin, sizeof(bin), "reelfarm-worker");
    snprintf(model, sizeof(model), "%s/models/fake", f.dir);
    const char *argv[] = {bin,   "--coordinator", f.wep,  "--backend",   "sim", "--sim-step-ms",
                          "1",   "--count",       "16",   "--max-tasks", "1",   "--model",
                          model, "--name",        "long", NULL};
    rf_error err;
    rf_proc *w = s_proc_start(argv, &err);
    RF_CHECK_MSG(w, "%s", err.msg);
    char job[64], errs[1024];
    const char *spec = "model: fake\nwidth: 16\nheight: 16\nsteps: 1\nmode: independent\n"
                       "chunk:\n  frames: 5\n  overlap: 4\n"
                       "shots:\n  - prompt: a long take\n    frames: 1201\n"
                       "output:\n  path: long.mkv\n";
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), errs, sizeof(errs)) == 0, "%s", errs);
    int st = rf_farm_wait(&f, job, 120000);
    RF_CHECK_MSG(st == REELFARM__JOB_STATE__JOB_DONE, "job ended in state %d (log %s)", st, f.log);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", pm);
    char *body = NULL;
    RF_CHECK_EQ_INT(s_get(url, &body), 200);
    double reads = s_sample(body, "reelfarm_decode_chunk_reads_total ");
    double most = s_sample(body, "reelfarm_decode_chunk_reads_per_pass_max ");
    double decodes = s_sample(body, "reelfarm_tasks_total{kind=\"DECODE\",outcome=\"ok\"} ");
    free(body);
    RF_CHECK_MSG(decodes >= 38, "%g DECODE segments done (38 planned)", decodes);
    RF_CHECK_MSG(reads >= 300 && reads <= 3 * 300, "%g chunk results read for 300 chunks", reads);
    RF_CHECK_MSG(most >= 1 && most <= 64, "a dispatch pass read %g chunk results", most);
    char out[700];
    snprintf(out, sizeof(out), "%s/out/long.mkv", f.dir);
    struct stat sb;
    RF_CHECK(stat(out, &sb) == 0 && sb.st_size > 0);
    RF_CHECK_EQ_INT(rf_proc_signal(w, SIGTERM, &err), 0);
    int status = -1;
    RF_CHECK_MSG(rf_proc_wait(w, 20000, &status, &err) == 0, "%s", err.msg);
    s_proc_end(&w);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}
