/* main.c - reelfarm-coordinator: flags, signals, the loop.
 *
 *   reelfarm-coordinator --listen ENDPOINT --api ENDPOINT --state DIR [--models DIR...]
 *                        [--output-root DIR] [--log-level L] [--heartbeat-ms N]
 *                        [--liveness N] [--lease-ms N] [--segment-frames N]
 *                        [--concat bytes]
 *
 * SIGTERM and SIGINT stop the loop cleanly (everything committed, sockets closed);
 * restarting with the same --state resumes every unfinished job.
 */
#include "coord.h"

#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rf_coord *g_coord;
static volatile sig_atomic_t g_stop_asked;

static void s_on_signal(int sig)
{
    (void)sig;
    g_stop_asked = 1; /* also before the coordinator exists: honoured once it does */
    if (g_coord)
        rf_coord_stop(g_coord);
}

static void s_on_hup(int sig)
{
    (void)sig;
    if (g_coord)
        rf_coord_reload(g_coord);
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: reelfarm-coordinator --listen ENDPOINT --api ENDPOINT --state DIR\n"
            "           [--models DIR]... [--output-root DIR] [--log-level debug|info|warn|error]\n"
            "           [--heartbeat-ms N] [--liveness N] [--lease-ms N] [--segment-frames N]\n"
            "           [--concat bytes]\n"
            "  --listen    worker endpoint (ROUTER), e.g. tcp://*:5555 or ipc:///run/rf/w\n"
            "  --api       API endpoint for reelctl, e.g. tcp://127.0.0.1:5556\n"
            "  --state     durable state directory (local or block volume; not NFS)\n"
            "  --models    directory searched for model names (repeatable)\n"
            "  --output-root  outputs are confined here (default: the current directory)\n"
            "  --concat bytes  join segments byte for byte (test workers only)\n"
            "  --config FILE   YAML config (coordinator/config.h); flags override it\n"
            "  --server-secret-key F, --allowed-worker-keys F, --allowed-client-keys F  CURVE\n"
            "  --insecure      serve reachable endpoints without CURVE (warned)\n"
            "  --metrics HOST:PORT  Prometheus /metrics and /healthz\n"
            "  SIGHUP reloads keys and allow-lists; SIGTERM stops cleanly\n");
}

static int s_int(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || n < lo || n > hi) {
        fprintf(stderr, "reelfarm-coordinator: %s needs an integer in [%d, %d], got '%s'\n", flag,
                lo, hi, v ? v : "");
        return -1;
    }
    *out = (int)n;
    return 0;
}

int main(int argc, char **argv)
{
    rf_coord_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    rf_config *fc = rf_config_new();
    if (!fc) {
        fprintf(stderr, "reelfarm-coordinator: out of memory\n");
        return 1;
    }
    rf_error cerr;
    rf_error_clear(&cerr);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        int used = rf_config_arg(fc, argc, argv, i, &cerr); /* --config and its keys */
        if (used < 0) {
            fprintf(stderr, "reelfarm-coordinator: %s\n", cerr.msg);
            return 2;
        }
        if (used > 0) {
            i += used - 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (strcmp(a, "--segment-frames") == 0) {
            bad = s_int(a, v, 1, 100000, &cfg.segment_latent);
        } else if (strcmp(a, "--concat") == 0 && v && strcmp(v, "bytes") == 0) {
            cfg.concat_bytes = 1;
        } else {
            fprintf(stderr, "reelfarm-coordinator: unknown or incomplete option '%s'\n", a);
            s_usage(stderr);
            return 2;
        }
        if (bad)
            return 2;
        i++;
    }
    if (rf_config_check(fc, &cerr)) {
        fprintf(stderr, "reelfarm-coordinator: %s\n", cerr.msg);
        s_usage(stderr);
        return 2;
    }
    if (fc->models.n > RF_COORD_MAX_MODEL_DIRS) {
        fprintf(stderr, "reelfarm-coordinator: at most %d model directories\n",
                RF_COORD_MAX_MODEL_DIRS);
        return 2;
    }
    rf_log_level lv;
    if (fc->log_level && rf_log_parse_level(fc->log_level, &lv) == 0)
        rf_log_set_level(lv);
    cfg.listen = fc->listen;
    cfg.api = fc->api;
    cfg.state_dir = fc->state_dir;
    cfg.output_root = fc->output_root;
    for (int i = 0; i < fc->models.n; i++)
        cfg.model_dirs[cfg.n_model_dirs++] = fc->models.items[i];
    cfg.heartbeat_ms = (int)fc->timing.heartbeat_ms;
    cfg.liveness = (int)fc->timing.liveness;
    cfg.lease_ms = (int)fc->timing.lease_ms;
    cfg.server_secret_key = fc->server_secret_key;
    cfg.allowed_worker_keys = fc->allowed_worker_keys;
    cfg.allowed_client_keys = fc->allowed_client_keys;
    cfg.insecure = fc->insecure;
    cfg.metrics = fc->metrics;
    cfg.config = fc; /* flags and file: SIGHUP re-reads the file when there is one */
    cfg.retention_s = fc->retention_s;
    cfg.max_jobs = fc->limits.max_jobs;
    cfg.max_frames = fc->limits.max_frames;
    cfg.max_message_bytes = fc->limits.max_message_bytes;
    /* Handlers first, so a signal during start-up is not fatal: it is honoured by the
     * loop once the coordinator exists. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = s_on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rf_error err;
    rf_error_clear(&err);
    g_coord = rf_coord_new(&cfg, &err);
    if (!g_coord) {
        rf_log_kv(RF_LOG_ERROR, "coord", "cannot start", "error=\"%s\"", err.msg);
        return 1;
    }
    if (g_stop_asked)
        rf_coord_stop(g_coord);
    int rc = rf_coord_run(g_coord, &err);
    if (rc)
        rf_log_kv(RF_LOG_ERROR, "coord", "stopped on an error", "error=\"%s\"", err.msg);
    rf_coord_destroy(&g_coord);
    rf_config_destroy(&fc);
    return rc ? 1 : 0;
}
