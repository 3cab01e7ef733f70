/* test_metrics.c - the Prometheus registry's text, the HTTP endpoint, promtool's lint, and
 * a real Prometheus server scraping us on loopback.
 *
 * promtool and prometheus come from Debian's `prometheus` package (deploy/install-deps.sh);
 * the tests that need them are skipped, saying so, when they are not installed.
 */
#include "coordinator/metrics.h"
#include "rf_test.h"
#include "support/proc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* GET (or another method) url; returns the HTTP status (-1 on a transport error) and the
 * body in *body (caller frees). */
static long s_http(const char *method, const char *url, char **body, char *ctype, size_t ccap)
{
    CURL *c = curl_easy_init();
    s_buf b = {NULL, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        char *ct = NULL;
        if (ctype && curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(ctype, ccap, "%s", ct);
    }
    curl_easy_cleanup(c);
    if (body)
        *body = b.data ? b.data : strdup("");
    else
        free(b.data);
    return status;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

RF_TEST(registry_text_format)
{
    rf_error err;
    rf_metrics *m = rf_metrics_registry_new(&err);
    RF_CHECK(m);
    const char *l2[] = {"kind", "outcome"};
    rf_metric *c =
        rf_metrics_counter(m, "t_done_total", "Done \\ things.\nTwo lines.", l2, 2, &err);
    RF_CHECK_MSG(c, "%s", err.msg);
    rf_metric *g = rf_metrics_gauge(m, "t_depth", "Depth.", NULL, 0, &err);
    const double b[] = {0.5, 1, 2.5};
    const char *l1[] = {"kind"};
    rf_metric *h = rf_metrics_histogram(m, "t_seconds", "Secs.", l1, 1, b, 3, &err);
    RF_CHECK(g && h);
    const char *v1[] = {"DENOISE", "ok"}, *v2[] = {"we\"ird\\\n", "failed"};
    rf_metric_add(c, v1, 1);
    rf_metric_add(c, v1, 2);
    rf_metric_add(c, v1, -5); /* counters never go down */
    rf_metric_add(c, v2, 1);
    rf_metric_set(g, NULL, 7);
    rf_metric_add(g, NULL, -2);
    const char *k[] = {"DECODE"};
    rf_metric_observe(h, k, 0.5);
    rf_metric_observe(h, k, 2);
    rf_metric_observe(h, k, 100);
    char *text = rf_metrics_render(m, NULL);
    const char *want = "# HELP t_done_total Done \\\\ things.\\nTwo lines.\n"
                       "# TYPE t_done_total counter\n"
                       "t_done_total{kind=\"DENOISE\",outcome=\"ok\"} 3\n"
                       "t_done_total{kind=\"we\\\"ird\\\\\\n\",outcome=\"failed\"} 1\n"
                       "# HELP t_depth Depth.\n"
                       "# TYPE t_depth gauge\n"
                       "t_depth 5\n"
                       "# HELP t_seconds Secs.\n"
                       "# TYPE t_seconds histogram\n"
                       "t_seconds_bucket{kind=\"DECODE\",le=\"0.5\"} 1\n"
                       "t_seconds_bucket{kind=\"DECODE\",le=\"1\"} 1\n"
                       "t_seconds_bucket{kind=\"DECODE\",le=\"2.5\"} 2\n"
                       "t_seconds_bucket{kind=\"DECODE\",le=\"+Inf\"} 3\n"
                       "t_seconds_sum{kind=\"DECODE\"} 102.5\n"
                       "t_seconds_count{kind=\"DECODE\"} 3\n";
    RF_CHECK_EQ_STR(text, want);
    free(text);
    /* a mirrored total only grows */
    rf_metric_set(c, v1, 10);
    rf_metric_set(c, v1, 4);
    text = rf_metrics_render(m, NULL);
    RF_CHECK_CONTAINS(text, "t_done_total{kind=\"DENOISE\",outcome=\"ok\"} 10\n");
    free(text);
    rf_metrics_destroy(&m);
    rf_metrics_destroy(&m);
}

RF_TEST(registry_refuses_bad_declarations)
{
    rf_error err;
    rf_metrics *m = rf_metrics_registry_new(&err);
    const char *le[] = {"le"}, *bad[] = {"1x"};
    RF_CHECK(rf_metrics_counter(m, "no_suffix", "", NULL, 0, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "_total");
    RF_CHECK(rf_metrics_gauge(m, "g_total", "", NULL, 0, &err) == NULL);
    RF_CHECK(rf_metrics_gauge(m, "bad-name", "", NULL, 0, &err) == NULL);
    RF_CHECK(rf_metrics_gauge(m, "g", "", le, 1, &err) == NULL);
    RF_CHECK(rf_metrics_gauge(m, "g", "", bad, 1, &err) == NULL);
    const double down[] = {1, 0.5};
    RF_CHECK(rf_metrics_histogram(m, "h_seconds", "", NULL, 0, down, 2, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "increasing");
    RF_CHECK(rf_metrics_gauge(m, "g", "", NULL, 0, &err) != NULL);
    RF_CHECK(rf_metrics_gauge(m, "g", "", NULL, 0, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "twice");
    rf_metrics_destroy(&m);
}

RF_TEST(series_are_bounded)
{
    rf_metrics *m = rf_metrics_registry_new(NULL);
    const char *l[] = {"id"};
    rf_metric *c = rf_metrics_counter(m, "x_total", "x", l, 1, NULL);
    char id[32];
    for (int i = 0; i < RF_METRIC_MAX_SERIES + 10; i++) {
        snprintf(id, sizeof(id), "%d", i);
        const char *v[] = {id};
        rf_metric_add(c, v, 1);
    }
    char *text = rf_metrics_render(m, NULL);
    RF_CHECK(strstr(text, "x_total{id=\"4095\"} 1\n") != NULL);
    RF_CHECK(strstr(text, "x_total{id=\"4096\"}") == NULL);
    free(text);
    rf_metrics_destroy(&m);
}

/* A registry with every reelfarm family fed a little. */
static rf_metrics *s_farm_metrics(void)
{
    rf_error err;
    rf_metrics *m = rf_metrics_new(&err);
    RF_CHECK_MSG(m, "%s", err.msg);
    rf_metrics_task_done(m, "DENOISE", "ok", 1.5);
    rf_metrics_task_done(m, "DENOISE", "ok", 3);
    rf_metrics_task_done(m, "DENOISE", "ok", 0.2);
    rf_metrics_task_done(m, "DECODE", "failed", 20);
    rf_metrics_task_done(m, "ENCODE_TEXT", "lost", -1);
    rf_metrics_lease_expired(m, "ENCODE_TEXT");
    rf_metrics_steps(m, 120);
    rf_metrics_frames(m, 81);
    rf_metrics_bytes(m, "received", 1 << 20);
    rf_metrics_bytes(m, "sent", 4096);
    rf_metrics_round(m, 0.003);
    rf_metrics_turn(m, 0.0004);
    rf_metrics_turn(m, 0.003);
    rf_metrics_jobs(m, "running", 2);
    rf_metrics_jobs(m, "done", 5);
    rf_metrics_queue(m, "DENOISE", 7);
    rf_metrics_workers(m, "busy", 3);
    rf_metrics_workers(m, "idle", 1);
    rf_metrics_handshakes(m, 4, 1);
    rf_metrics_state(m, "overlap_up", 1000);
    rf_metrics_state(m, "overlap_up", 24);
    rf_metrics_state(m, "checkpoint", 5000);
    return m;
}

RF_TEST(reelfarm_families)
{
    rf_metrics *m = s_farm_metrics();
    char *t = rf_metrics_render(m, NULL);
    RF_CHECK_CONTAINS(t, "reelfarm_tasks_total{kind=\"DENOISE\",outcome=\"ok\"} 3\n");
    RF_CHECK_CONTAINS(t, "reelfarm_task_duration_seconds_count{kind=\"DENOISE\"} 3\n");
    RF_CHECK_CONTAINS(t, "reelfarm_task_duration_seconds_bucket{kind=\"DENOISE\",le=\"2.5\"} 2\n");
    RF_CHECK_CONTAINS(t, "reelfarm_task_duration_seconds_sum{kind=\"DENOISE\"} 4.7\n");
    RF_CHECK(strstr(t, "reelfarm_task_duration_seconds_count{kind=\"ENCODE_TEXT\"}") == NULL);
    RF_CHECK_CONTAINS(t, "reelfarm_lease_expiries_total{kind=\"ENCODE_TEXT\"} 1\n");
    RF_CHECK_CONTAINS(t, "reelfarm_chunk_steps_total 120\n");
    RF_CHECK_CONTAINS(t, "reelfarm_frames_rendered_total 81\n");
    RF_CHECK_CONTAINS(t, "reelfarm_transfer_bytes_total{direction=\"received\"} 1048576\n");
    RF_CHECK_CONTAINS(t, "reelfarm_fusion_round_duration_seconds_bucket{le=\"0.005\"} 1\n");
    RF_CHECK_CONTAINS(t, "reelfarm_loop_turn_duration_seconds_bucket{le=\"0.0005\"} 1\n");
    RF_CHECK_CONTAINS(t, "reelfarm_loop_turn_duration_seconds_bucket{le=\"0.005\"} 2\n");
    RF_CHECK_CONTAINS(t, "reelfarm_jobs{state=\"running\"} 2\n");
    RF_CHECK_CONTAINS(t, "reelfarm_tasks_queued{kind=\"DENOISE\"} 7\n");
    RF_CHECK_CONTAINS(t, "reelfarm_workers{state=\"busy\"} 3\n");
    RF_CHECK_CONTAINS(t, "reelfarm_curve_handshakes_total{outcome=\"rejected\"} 1\n");
    RF_CHECK_CONTAINS(t, "reelfarm_healthy 1\n");
    RF_CHECK_CONTAINS(t, "reelfarm_chunk_state_bytes_total{part=\"overlap_up\"} 1024\n");
    RF_CHECK_CONTAINS(t, "reelfarm_chunk_states_total{part=\"overlap_up\"} 2\n");
    RF_CHECK_CONTAINS(t, "reelfarm_chunk_state_bytes_total{part=\"checkpoint\"} 5000\n");
    RF_CHECK_CONTAINS(t, "# TYPE reelfarm_task_duration_seconds histogram\n");
    free(t);
    rf_metrics_destroy(&m);
}

RF_TEST(http_metrics_and_healthz)
{
    rf_metrics *m = s_farm_metrics();
    rf_error err;
    RF_CHECK(rf_metrics_server_start(m, "nocolon", &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "HOST:PORT");
    RF_CHECK(rf_metrics_server_start(m, "example.com:80", &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "not an IP address");
    rf_metrics_server *srv = rf_metrics_server_start(m, "127.0.0.1:0", &err);
    RF_CHECK_MSG(srv, "%s", err.msg);
    int port = rf_metrics_server_port(srv);
    RF_CHECK(port > 0);
    /* the port is taken now */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    RF_CHECK(rf_metrics_server_start(m, addr, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, addr);

    char url[128], ctype[128] = "", *body = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    RF_CHECK_EQ_INT(s_http("GET", url, &body, ctype, sizeof(ctype)), 200);
    RF_CHECK_CONTAINS(ctype, "version=0.0.4");
    RF_CHECK_CONTAINS(body, "reelfarm_tasks_total{kind=\"DENOISE\",outcome=\"ok\"} 3\n");
    free(body);
    RF_CHECK_EQ_INT(s_http("POST", url, &body, NULL, 0), 405);
    free(body);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
    RF_CHECK_EQ_INT(s_http("GET", url, &body, NULL, 0), 200);
    RF_CHECK_EQ_STR(body, "ok\n");
    free(body);
    rf_metrics_health(m, 0, "dispatch paused: disk full on /state");
    RF_CHECK_EQ_INT(s_http("GET", url, &body, NULL, 0), 503);
    RF_CHECK_CONTAINS(body, "disk full on /state");
    free(body);
    rf_metrics_health(m, 1, NULL);
    RF_CHECK_EQ_INT(s_http("GET", url, &body, NULL, 0), 200);
    free(body);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/other", port);
    RF_CHECK_EQ_INT(s_http("GET", url, &body, NULL, 0), 404);
    free(body);
    rf_metrics_server_stop(&srv);
    rf_metrics_server_stop(&srv);
    rf_metrics_destroy(&m);
}

static int s_have(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

RF_TEST(promtool_accepts_the_exposition)
{
    if (!s_have("promtool"))
        RF_SKIP("promtool not installed (Debian package prometheus; make deps installs it)");
    rf_metrics *m = s_farm_metrics();
    rf_metrics_server *srv = rf_metrics_server_start(m, "127.0.0.1:0", NULL);
    RF_CHECK(srv);
    char url[128], *body = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", rf_metrics_server_port(srv));
    RF_CHECK_EQ_INT(s_http("GET", url, &body, NULL, 0), 200);
    char path[512], out[512], cmd[1400];
    rf_test_path(path, sizeof(path), "scrape.txt");
    rf_test_path(out, sizeof(out), "promtool.out");
    RF_CHECK_EQ_INT(rf_test_write_file(path, body, strlen(body)), 0);
    free(body);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' > '%s' 2>&1", path, out);
    int rc = system(cmd);
    FILE *f = fopen(out, "r");
    char said[2048] = "";
    if (f) {
        size_t n = fread(said, 1, sizeof(said) - 1, f);
        said[n] = '\0';
        fclose(f);
    }
    RF_CHECK_MSG(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "promtool check metrics: %s", said);
    RF_CHECK_MSG(said[0] == '\0', "promtool check metrics complained: %s", said);
    /* and it does complain about a bad exposition (the check can fail) */
    const char *bad = "# TYPE foo counter\nfoo 1\n";
    RF_CHECK_EQ_INT(rf_test_write_file(path, bad, strlen(bad)), 0);
    rc = system(cmd);
    RF_CHECK(!(WIFEXITED(rc) && WEXITSTATUS(rc) == 0));
    rf_metrics_server_stop(&srv);
    rf_metrics_destroy(&m);
}

RF_TEST(prometheus_scrapes_us)
{
    if (!s_have("prometheus"))
        RF_SKIP("prometheus not installed (Debian package prometheus; make deps installs it)");
    rf_metrics *m = s_farm_metrics();
    rf_error err;
    rf_metrics_server *srv = rf_metrics_server_start(m, "127.0.0.1:0", &err);
    RF_CHECK_MSG(srv, "%s", err.msg);
    int pport = 0;
    RF_CHECK_EQ_INT(rf_proc_free_port(&pport, &err), 0);
    char cfg[512], data[512], text[1024], listen[64], flag_cfg[600], flag_data[600],
        flag_listen[100];
    rf_test_path(cfg, sizeof(cfg), "prometheus.yml");
    rf_test_path(data, sizeof(data), "prometheus-data");
    RF_CHECK_EQ_INT(mkdir(data, 0700), 0);
    snprintf(text, sizeof(text),
             "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
             "scrape_configs:\n  - job_name: reelfarm\n    static_configs:\n"
             "      - targets: ['127.0.0.1:%d']\n",
             rf_metrics_server_port(srv));
    RF_CHECK_EQ_INT(rf_test_write_file(cfg, text, strlen(text)), 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", pport);
    snprintf(flag_cfg, sizeof(flag_cfg), "--config.file=%s", cfg);
    snprintf(flag_data, sizeof(flag_data), "--storage.tsdb.path=%s", data);
    snprintf(flag_listen, sizeof(flag_listen), "--web.listen-address=%s", listen);
    const char *argv[] = {"prometheus", flag_cfg, flag_data, flag_listen, "--log.level=warn", NULL};
    rf_proc *p = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    /* ask its API until the sample is there: an upper bound, not a measurement */
    char url[256], *body = NULL;
    snprintf(url, sizeof(url),
             "http://%s/api/v1/"
             "query?query=reelfarm_tasks_total%%7Bkind%%3D%%22DENOISE%%22%%7D",
             listen);
    int found = 0;
    for (int i = 0; i < 100 && !found && rf_proc_running(p); i++) {
        long st = s_http("GET", url, &body, NULL, 0);
        found = st == 200 && strstr(body, "\"outcome\":\"ok\"") && strstr(body, "\"3\"]");
        if (!found) {
            free(body);
            body = NULL;
            s_sleep_ms(200);
        }
    }
    char *log = found ? NULL : rf_proc_log(p, NULL);
    rf_proc_destroy(&p);
    rf_metrics_server_stop(&srv);
    rf_metrics_destroy(&m);
    RF_CHECK_MSG(found, "prometheus never returned our sample; last answer: %s; its log: %.1500s",
                 body ? body : "(none)", log ? log : "(none)");
    RF_CHECK_CONTAINS(body, "\"job\":\"reelfarm\"");
    free(body);
}
