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

static void s_on_signal(int sig)
{
    (void)sig;
    if (g_coord)
        rf_coord_stop(g_coord);
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
            "  --concat bytes  join segments byte for byte (test workers only)\n");
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (strcmp(a, "--listen") == 0 && v) {
            cfg.listen = v;
        } else if (strcmp(a, "--api") == 0 && v) {
            cfg.api = v;
        } else if (strcmp(a, "--state") == 0 && v) {
            cfg.state_dir = v;
        } else if (strcmp(a, "--output-root") == 0 && v) {
            cfg.output_root = v;
        } else if (strcmp(a, "--models") == 0 && v) {
            if (cfg.n_model_dirs == RF_COORD_MAX_MODEL_DIRS) {
                fprintf(stderr, "reelfarm-coordinator: at most %d --models\n",
                        RF_COORD_MAX_MODEL_DIRS);
                return 2;
            }
            cfg.model_dirs[cfg.n_model_dirs++] = v;
        } else if (strcmp(a, "--log-level") == 0 && v) {
            rf_log_level lv;
            if (rf_log_parse_level(v, &lv)) {
                fprintf(stderr, "reelfarm-coordinator: --log-level debug|info|warn|error|off\n");
                return 2;
            }
            rf_log_set_level(lv);
        } else if (strcmp(a, "--heartbeat-ms") == 0) {
            bad = s_int(a, v, 10, 600000, &cfg.heartbeat_ms);
        } else if (strcmp(a, "--liveness") == 0) {
            bad = s_int(a, v, 1, 1000, &cfg.liveness);
        } else if (strcmp(a, "--lease-ms") == 0) {
            bad = s_int(a, v, 50, 86400000, &cfg.lease_ms);
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
    if (!cfg.listen || !cfg.api || !cfg.state_dir) {
        fprintf(stderr, "reelfarm-coordinator: --listen, --api and --state are required\n");
        s_usage(stderr);
        return 2;
    }
    rf_error err;
    rf_error_clear(&err);
    g_coord = rf_coord_new(&cfg, &err);
    if (!g_coord) {
        rf_log_kv(RF_LOG_ERROR, "coord", "cannot start", "error=\"%s\"", err.msg);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = rf_coord_run(g_coord, &err);
    if (rc)
        rf_log_kv(RF_LOG_ERROR, "coord", "stopped on an error", "error=\"%s\"", err.msg);
    rf_coord_destroy(&g_coord);
    return rc ? 1 : 0;
}
