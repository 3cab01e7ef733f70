/* main.c - reelfarm-worker: connect to a coordinator and run its tasks.
 *
 * Parses the command line, builds the set of models it serves (model_set.h: each loaded
 * by the executor when a task first needs it), runs the protocol loop until the
 * worker is drained (SIGTERM/SIGINT, or `reelctl drain`) or refused. With --count N
 * (simulated executor only) the process hosts N independent workers, each with its own
 * connection, protocol thread and compute thread, sharing one ZeroMQ context: many
 * workers on one machine for farm tests and scale benchmarks. Exit status 0 after a
 * clean drain (of every worker), 1 on an error, 2 on bad usage.
 */
#include "hash.h"
#include "log.h"
#include "worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_COUNT 4096

static rf_worker **s_workers;
static volatile int s_nworkers;

static void s_on_signal(int sig)
{
    (void)sig;
    for (int i = 0; i < s_nworkers; i++)
        if (s_workers[i])
            rf_worker_drain(s_workers[i]);
}

typedef struct s_slot {
    rf_worker *w;
    int rc;
    rf_error err;
} s_slot;

static void *s_run_one(void *arg)
{
    s_slot *sl = arg;
    rf_error_clear(&sl->err);
    sl->rc = rf_worker_run(sl->w, &sl->err);
    return NULL;
}

/* --count N: N simulated workers named NAME-0 .. NAME-(N-1), one thread each. */
static int s_run_many(const rf_worker_config *base, int count, int sim_step_ms, const char *model)
{
    struct rlimit rl; /* every worker holds a few descriptors (its socket, its signalers) */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char stem[96];
    if (base->name && *base->name) {
        snprintf(stem, sizeof(stem), "%s", base->name);
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = 0;
        snprintf(stem, sizeof(stem), "%s-%d", host, (int)getpid());
    }
    void *zctx = zmq_ctx_new();
    s_slot *slots = calloc((size_t)count, sizeof(*slots));
    char(*names)[128] = calloc((size_t)count, sizeof(*names));
    s_workers = calloc((size_t)count, sizeof(*s_workers));
    pthread_t *th = calloc((size_t)count, sizeof(*th));
    if (!zctx || !slots || !names || !s_workers || !th) {
        fprintf(stderr, "reelfarm-worker: cannot start %d workers: out of memory\n", count);
        return 1;
    }
    zmq_ctx_set(zctx, ZMQ_MAX_SOCKETS, 3 * count + 64);
    zmq_ctx_set(zctx, ZMQ_IO_THREADS, count > 256 ? 2 : 1);
    int rc = 0, started = 0;
    for (int i = 0; i < count && !rc; i++) {
        rf_error err;
        rf_error_clear(&err);
        rf_executor *ex = rf_exec_sim_new(sim_step_ms, model, &err);
        rf_worker_config cfg = *base;
        snprintf(names[i], sizeof(names[i]), "%s-%d", stem, i);
        cfg.name = names[i];
        cfg.zctx = zctx;
        slots[i].w = ex ? rf_worker_new(&cfg, ex, &err) : NULL;
        if (!slots[i].w) {
            fprintf(stderr, "reelfarm-worker: worker %d of %d: %s\n", i, count, err.msg);
            rc = 1;
            break;
        }
        s_workers[i] = slots[i].w;
        s_nworkers = i + 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < s_nworkers && !rc; i++) {
        if (pthread_create(&th[i], &attr, s_run_one, &slots[i]) != 0) {
            fprintf(stderr, "reelfarm-worker: cannot start the thread of worker %d\n", i);
            rc = 1;
            break;
        }
        started++;
    }
    pthread_attr_destroy(&attr);
    if (rc) /* the ones running drain and exit */
        s_on_signal(0);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (slots[i].rc) {
            fprintf(stderr, "reelfarm-worker: %s: %s\n", names[i], slots[i].err.msg);
            rc = 1;
        }
    }
    int n = s_nworkers;
    s_nworkers = 0;
    for (int i = 0; i < n; i++)
        rf_worker_destroy(&slots[i].w);
    zmq_ctx_term(zctx);
    free(th);
    free(s_workers);
    s_workers = NULL;
    free(names);
    free(slots);
    return rc;
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
            "  --model DIR             a model folder this worker serves (repeatable; with sim it\n"
            "                          is only hashed, so jobs for that model come here)\n"
            "  --models DIR            a directory of model folders, each served (repeatable)\n"
            "  --max-models N          models loaded at once; the least recently used one is\n"
            "                          unloaded for another (default 2; every model is\n"
            "                          advertised, and loaded when a task first needs it)\n"
            "  --sim-step-ms N         simulated executor: milliseconds per sampler step (10)\n"
            "  --threads N             compute threads (default: all cores)\n"
            "  --tp N                  tensor-parallel degree (default 1)\n"
            "  --max-tasks N           tasks (chunk states) held at once (default 64)\n"
            "  --name NAME             name shown by `reelctl workers` (default host-pid)\n"
            "  --count N               sim only: N workers in this process, each with its own\n"
            "                          connection, named NAME-0 .. NAME-(N-1) (default 1)\n"
            "  --key FILE              CURVE: this worker's BASE.key_secret (reelctl keygen)\n"
            "  --server-key FILE       CURVE: the coordinator's public key file\n"
            "  --log-level LEVEL       debug | info | warn | error (default info)\n"
            "  --help                  this text\n"
            "\n"
            "Executors: `cpu` runs the models of --model / --models (folders with model.json,\n"
            "or the official Wan2.1 layout) on this machine's cores. `sim` computes nothing:\n"
            "every step takes --sim-step-ms and outputs are deterministic, for farm tests and\n"
            "scale benchmarks. A CUDA executor is not part of this build yet.\n");
}

typedef struct s_loader {
    int sim, step_ms, threads;
} s_loader;

static rf_executor *s_load(void *ctx, const char *dir, const char *hash, rf_error *err)
{
    const s_loader *l = ctx;
    if (l->sim)
        return rf_exec_sim_new(l->step_ms, dir, err);
    return rf_exec_engine_new(dir, hash, l->threads, err);
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
    const char *backend = "cpu";
    const char *paths[RF_MODEL_SET_MAX];
    int npaths = 0, max_models = 2;
    int sim_step_ms = 10, count = 1;
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
        } else if ((!strcmp(a, "--model") || !strcmp(a, "--models")) && v) {
            if (npaths == RF_MODEL_SET_MAX) {
                fprintf(stderr, "reelfarm-worker: at most %d --model/--models\n", RF_MODEL_SET_MAX);
                return 2;
            }
            paths[npaths++] = v;
            i++;
        } else if (!strcmp(a, "--max-models")) {
            bad = s_int_arg(a, v, 1, RF_MODEL_SET_MAX, &max_models);
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
        } else if (!strcmp(a, "--count")) {
            bad = s_int_arg(a, v, 1, MAX_COUNT, &count);
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
    if (count > 1 && strcmp(backend, "sim") != 0) {
        fprintf(stderr, "reelfarm-worker: --count needs --backend sim (engine workers would "
                        "share this machine's cores; start one per machine or GPU group)\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (count > 1 && npaths > 1) {
        fprintf(stderr, "reelfarm-worker: --count serves one model: give at most one --model\n");
        return 2;
    }
    if (count > 1) {
        cfg.backend = backend;
        return s_run_many(&cfg, count, sim_step_ms, npaths ? paths[0] : NULL);
    }
    rf_error err;
    rf_error_clear(&err);
    s_loader loader = {!strcmp(backend, "sim"), sim_step_ms, cfg.threads};
    if (!strcmp(backend, "sim") || !strcmp(backend, "cpu")) {
        if (!npaths && !loader.sim) {
            fprintf(stderr, "reelfarm-worker: --backend cpu needs --model DIR or --models DIR "
                            "(see --help)\n");
            return 2;
        }
    } else if (!strcmp(backend, "cuda")) {
        fprintf(stderr, "reelfarm-worker: the CUDA executor is not part of this build yet; use "
                        "--backend cpu\n");
        return 2;
    } else {
        fprintf(stderr, "reelfarm-worker: --backend must be cpu or sim, got '%s'\n", backend);
        return 2;
    }
    /* both executors encode media (ENCODE_MEDIA) */
    rf_model_set *models = rf_model_set_new(backend, s_load, &loader, max_models, 1, &err);
    int rc = models ? 0 : 1;
    for (int i = 0; !rc && i < npaths; i++)
        rc = rf_model_set_add(models, paths[i], &err);
    if (!rc && !npaths) { /* sim without a model: its built-in one */
        rf_hash h;
        char hex[65];
        rf_blake2b("reelfarm-sim", 12, &h);
        rf_hash_to_hex(&h, hex);
        rc = rf_model_set_add_builtin(models, hex, &err);
    }
    if (rc) {
        fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
        rf_model_set_destroy(&models);
        return 1;
    }
    for (int i = 0; i < rf_model_set_count(models); i++)
        rf_log_kv(RF_LOG_INFO, "worker", "serving model", "model=%.12s dir=%s",
                  rf_model_set_hash(models, i),
                  rf_model_set_dir(models, i) ? rf_model_set_dir(models, i) : "(built-in sim)");
    /* load the first --max-models now, so a broken model folder stops the worker here
     * with its reason instead of failing tasks later (no compute thread runs yet) */
    for (int i = 0; i < rf_model_set_count(models) && i < max_models; i++)
        if (!rf_model_set_get(models, rf_model_set_hash(models, i), &err)) {
            fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
            rf_model_set_destroy(&models);
            return 1;
        }
    cfg.backend = backend;
    static rf_worker *one[1];
    one[0] = rf_worker_new_models(&cfg, models, &err);
    if (!one[0]) {
        fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
        return 1;
    }
    s_workers = one;
    s_nworkers = 1;
    rc = rf_worker_run(one[0], &err);
    s_nworkers = 0;
    rf_worker_destroy(&one[0]);
    if (rc) {
        fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
        return 1;
    }
    return 0;
}
