/* main.c - reelfarm-worker: connect to a coordinator and run its tasks.
 *
 * Parses the command line, builds the executor, runs the protocol loop until the
 * worker is drained (SIGTERM/SIGINT, or `reelctl drain`) or refused. Exit status 0
 * after a clean drain, 1 on an error, 2 on bad usage.
 */
#include "log.h"
#include "worker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static rf_worker *s_worker;

static void s_on_signal(int sig)
{
    (void)sig;
    if (s_worker)
        rf_worker_drain(s_worker);
}

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: reelfarm-worker --coordinator ENDPOINT [options]\n"
            "\n"
            "Connects to a reelfarm coordinator and runs the tasks it assigns (text encoding,\n"
            "denoising chunks in lockstep rounds, decoding segments). SIGTERM or SIGINT drains\n"
            "it: no new task, running chunks handed back with a checkpoint, then exit.\n"
            "\n"
            "  --coordinator ENDPOINT  the coordinator's worker socket, e.g. tcp://farm:5555\n"
            "                          or ipc:///run/reelfarm/workers.sock\n"
            "  --backend cpu|sim       the executor (see below; default cpu)\n"
            "  --model DIR             the model folder this worker serves (cpu; with sim it is\n"
            "                          only hashed, so jobs for that model come here)\n"
            "  --sim-step-ms N         simulated executor: milliseconds per sampler step (10)\n"
            "  --threads N             compute threads (default: all cores)\n"
            "  --tp N                  tensor-parallel degree (default 1)\n"
            "  --max-tasks N           tasks (chunk states) held at once (default 64)\n"
            "  --name NAME             name shown by `reelctl workers` (default host-pid)\n"
            "  --key FILE              CURVE: this worker's BASE.key_secret (reelctl keygen)\n"
            "  --server-key FILE       CURVE: the coordinator's public key file\n"
            "  --log-level LEVEL       debug | info | warn | error (default info)\n"
            "  --help                  this text\n"
            "\n"
            "Executors: `cpu` runs the model of --model DIR (a folder with model.json, or\n"
            "the official Wan2.1 layout) on this machine's cores. `sim` computes nothing:\n"
            "every step takes --sim-step-ms and outputs are deterministic, for farm tests and\n"
            "scale benchmarks. A CUDA executor is not part of this build yet.\n");
}

static int s_int_arg(const char *flag, const char *v, int lo, int hi, int *out)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || n < lo || n > hi) {
        fprintf(stderr, "reelfarm-worker: %s needs an integer in [%d, %d], got '%s'\n", flag, lo,
                hi, v ? v : "");
        return -1;
    }
    *out = (int)n;
    return 0;
}

int main(int argc, char **argv)
{
    rf_worker_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    const char *backend = "cpu", *model = NULL;
    int sim_step_ms = 10;
    cfg.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cfg.tp = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--coordinator") && v) {
            cfg.coordinator = v;
            i++;
        } else if (!strcmp(a, "--backend") && v) {
            backend = v;
            i++;
        } else if (!strcmp(a, "--model") && v) {
            model = v;
            i++;
        } else if (!strcmp(a, "--key") && v) {
            cfg.key_secret = v;
            i++;
        } else if (!strcmp(a, "--server-key") && v) {
            cfg.server_key = v;
            i++;
        } else if (!strcmp(a, "--name") && v) {
            cfg.name = v;
            i++;
        } else if (!strcmp(a, "--sim-step-ms")) {
            bad = s_int_arg(a, v, 0, 600000, &sim_step_ms);
            i++;
        } else if (!strcmp(a, "--threads")) {
            bad = s_int_arg(a, v, 1, 1024, &cfg.threads);
            i++;
        } else if (!strcmp(a, "--tp")) {
            bad = s_int_arg(a, v, 1, 64, &cfg.tp);
            i++;
        } else if (!strcmp(a, "--max-tasks")) {
            bad = s_int_arg(a, v, 1, 256, &cfg.max_tasks);
            i++;
        } else if (!strcmp(a, "--log-level") && v) {
            rf_log_level l;
            if (rf_log_parse_level(v, &l) != 0) {
                fprintf(stderr, "reelfarm-worker: --log-level must be debug, info, warn, error "
                                "or off\n");
                return 2;
            }
            rf_log_set_level(l);
            i++;
        } else {
            fprintf(stderr, "reelfarm-worker: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        }
        if (bad)
            return 2;
    }
    if (!cfg.coordinator) {
        fprintf(stderr, "reelfarm-worker: --coordinator ENDPOINT is required (see --help)\n");
        return 2;
    }
    rf_error err;
    rf_error_clear(&err);
    rf_executor *ex = NULL;
    if (!strcmp(backend, "sim")) {
        ex = rf_exec_sim_new(sim_step_ms, model, &err);
    } else if (!strcmp(backend, "cpu")) {
        if (!model) {
            fprintf(stderr, "reelfarm-worker: --backend cpu needs --model DIR (see --help)\n");
            return 2;
        }
        ex = rf_exec_engine_new(model, cfg.threads, &err);
    } else if (!strcmp(backend, "cuda")) {
        fprintf(stderr, "reelfarm-worker: the CUDA executor is not part of this build yet; use "
                        "--backend cpu\n");
        return 2;
    } else {
        fprintf(stderr, "reelfarm-worker: --backend must be cpu or sim, got '%s'\n", backend);
        return 2;
    }
    if (!ex) {
        fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
        return 1;
    }
    cfg.backend = backend;
    s_worker = rf_worker_new(&cfg, ex, &err);
    if (!s_worker) {
        fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int rc = rf_worker_run(s_worker, &err);
    rf_worker_destroy(&s_worker);
    if (rc) {
        fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
        return 1;
    }
    return 0;
}
