/* cmd_render.c - `reelctl render`: the one-command path on one machine.
 *
 * Starts a private farm (a coordinator and N CPU workers) on ipc:// sockets in a fresh
 * 0700 temporary directory, submits the spec, follows it with the live progress bar,
 * then stops everything and removes the directory. Its logs stay there (and their
 * tail is printed) when something fails. The farm is the real one: the same binaries,
 * protocol, chunking and fusion as a cluster, so a render here is a farm test too.
 */
#include "output.h"
#include "reelctl.h"
#include "seams.h"
#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64

static volatile sig_atomic_t s_interrupted;
static void s_on_int(int sig)
{
    (void)sig;
    s_interrupted = 1;
}

typedef struct s_farm {
    char dir[PATH_MAX];
    pid_t coord;
    pid_t workers[MAX_WORKERS];
    int nworkers;
} s_farm;

/* Starts argv with stdout+stderr appended to log; returns the pid or -1. */
static pid_t s_spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    setpgid(0, 0); /* a ^C in the terminal reaches reelctl, which stops the farm in order */
    execv(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Sends SIGTERM, waits up to timeout_s, then SIGKILL. */
static void s_stop(pid_t pid, int timeout_s)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < timeout_s * 20; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        struct timespec ts = {0, 50000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void s_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = buf + n;
    int seen = 0;
    while (p > buf && seen <= lines)
        if (*--p == '\n')
            seen++;
    fprintf(stderr, "--- %s ---\n%s", path, p == buf ? p : p + 1);
}

static void s_farm_stop(s_farm *f, int keep)
{
    for (int i = 0; i < f->nworkers; i++)
        s_stop(f->workers[i], 30);
    s_stop(f->coord, 10);
    if (!keep && f->dir[0])
        nftw(f->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The directory of this executable (where the other binaries are). */
static void s_bindir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n <= 0) {
        snprintf(out, cap, ".");
        return;
    }
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (slash)
        *slash = '\0';
}

/* Reads the finished job's chunk windows and measures the seams of its output. */
static int s_measure(rf_client *c, const char *job, const char *path, rf_seam_result *out, int *fps)
{
    Reelfarm__JobStatus js = REELFARM__JOB_STATUS__INIT;
    js.job_id = (char *)job;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_JOB_STATUS;
    env.job_status = &js;
    rf_wire_msg r;
    rf_error err;
    if (rf_client_call(c, &env, REELFARM__ENVELOPE__KIND_JOB_INFO, &r, NULL, &err))
        return -1;
    const Reelfarm__JobInfo *j = r.env->job_info;
    *fps = j->fps ? (int)j->fps : 16;
    static rf_seam_input in;
    memset(&in, 0, sizeof(in));
    int64_t offset = 0;
    for (size_t t = 0; t < j->n_timelines; t++) {
        const Reelfarm__TimelineInfo *tl = j->timelines[t];
        if (t > 0 && in.ncuts < RF_SEAMS_MAX)
            in.cuts[in.ncuts++] = offset;
        for (size_t k = 0; k < tl->n_chunks; k++) {
            const Reelfarm__ChunkInfo *ci = tl->chunks[k];
            if (ci->frames)
                rf_seams_add_window(&in, offset, tl->pixel_frames, tl->latent_frames,
                                    ci->frames->start, ci->frames->end);
        }
        offset += tl->pixel_frames;
    }
    rf_wire_msg_release(&r);
    int rc = rf_seams_measure(path, &in, out, &err);
    if (rc)
        fprintf(stderr, "reelctl render: cannot measure the seams of %s: %s\n", path, err.msg);
    return rc;
}

/* The private farm's input root for a file input: the spec's folder when the path is
 * relative and there, else the current directory; the file's own folder when absolute. */
static void s_input_root(const char *spec_path, const char *input, char *out, size_t cap)
{
    char dir[PATH_MAX], probe[2 * PATH_MAX + 2];
    if (input[0] == '/') {
        snprintf(dir, sizeof(dir), "%s", input);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir ? 1 : 0] = '\0';
    } else {
        snprintf(dir, sizeof(dir), "%s", spec_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof(dir), ".");
        snprintf(probe, sizeof(probe), "%s/%s", dir, input);
        if (access(probe, F_OK) != 0)
            snprintf(dir, sizeof(dir), ".");
    }
    if (!realpath(dir, out))
        snprintf(out, cap, "%s", dir);
}

static const char *s_usage =
    "usage: reelctl render SPEC [-o OUTPUT] [--workers N] [--threads N] [--models DIR]\n"
    "\n"
    "Renders a job spec on this machine with a private farm: a coordinator and N CPU\n"
    "workers on ipc:// sockets in a private temporary directory, the same chunking,\n"
    "lockstep fusion and segment stitching as a cluster. Shows live progress, then stops\n"
    "the farm and prints the output path.\n"
    "\n"
    "  -o OUTPUT      where to write the video (overrides output.path of the spec)\n"
    "  --workers N    CPU workers (default 2)\n"
    "  --threads N    compute threads per worker (default: cores / workers, at least 1)\n"
    "  --models DIR   also look for the spec's model here (also: $REELFARM_MODELS, ./models,\n"
    "                 the spec's folder's models/, the source tree's models/)\n"
    "  --keep         keep the temporary directory (logs, state) after a success too\n"
    "\n"
    "A spec's input (inputs: image, video or continue) is read from a file beside the spec\n"
    "(or in the current directory, or an absolute path) or downloaded from its URL.\n"
    "\n"
    "example:  reelctl render examples/demo-film.yaml -o out/demo-film.mp4 --workers 2\n";

int rf_ctl_render(rf_ctl *ctl, int argc, char **argv)
{
    const char *spec_path = NULL, *out = NULL, *extra_models = NULL;
    int nworkers = 2, threads = 0, keep = 0;
    const char *backend = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s", s_usage);
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--workers") && i + 1 < argc) {
            nworkers = atoi(argv[++i]);
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(a, "--models") && i + 1 < argc) {
            extra_models = argv[++i];
        } else if (!strcmp(a, "--backend") && i + 1 < argc) {
            backend = argv[++i]; /* "sim": simulated workers, for tests */
        } else if (!strcmp(a, "--keep")) {
            keep = 1;
        } else if (!spec_path && a[0] != '-') {
            spec_path = a;
        } else {
            fprintf(stderr, "reelctl render: unexpected '%s'\n\n%s", a, s_usage);
            return 2;
        }
    }
    if (!spec_path || nworkers < 1 || nworkers > MAX_WORKERS || threads < 0) {
        fprintf(stderr, "%s", s_usage);
        return 2;
    }
    if (!threads) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = (int)(cores / nworkers) > 0 ? (int)(cores / nworkers) : 1;
    }

    /* validate the spec and find its model before starting anything */
    rf_error err;
    rf_error_clear(&err);
    rf_job_spec *spec = rf_spec_load(spec_path, NULL, &err);
    if (!spec) {
        fprintf(stderr, "reelctl render: %s\n", err.msg);
        return 1;
    }
    if (out && rf_spec_set_output_path(spec, out, &err)) {
        fprintf(stderr, "reelctl render: %s\n", err.msg);
        rf_spec_free(&spec);
        return 1;
    }
    char out_abs[PATH_MAX];
    const char *op = spec->output.path;
    if (op[0] == '/')
        snprintf(out_abs, sizeof(out_abs), "%s", op);
    else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            snprintf(cwd, sizeof(cwd), ".");
        snprintf(out_abs, sizeof(out_abs), "%s/%s", cwd, op);
    }
    char out_dir[PATH_MAX];
    snprintf(out_dir, sizeof(out_dir), "%s", out_abs);
    char *slash = strrchr(out_dir, '/');
    if (slash)
        *slash = '\0';
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", out_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "reelctl render: cannot create the output folder %s\n", out_dir);
        rf_spec_free(&spec);
        return 1;
    }

    const char *dirs[8];
    size_t nd = 0;
    char spec_models[PATH_MAX], src_models[PATH_MAX];
    if (extra_models)
        dirs[nd++] = extra_models;
    const char *env = getenv("REELFARM_MODELS");
    if (env && *env)
        dirs[nd++] = env;
    dirs[nd++] = "models";
    snprintf(spec_models, sizeof(spec_models), "%s", spec_path);
    slash = strrchr(spec_models, '/');
    if (slash) {
        snprintf(slash, sizeof(spec_models) - (size_t)(slash - spec_models), "/../models");
        dirs[nd++] = spec_models;
    }
#ifdef RF_SOURCE_DIR
    snprintf(src_models, sizeof(src_models), "%s/models", RF_SOURCE_DIR);
    dirs[nd++] = src_models;
#else
    (void)src_models;
#endif
    char *model_path = NULL;
    if (rf_spec_resolve_model(spec->model, dirs, nd, &model_path, &err)) {
        fprintf(stderr, "reelctl render: %s\n", err.msg);
        rf_spec_free(&spec);
        return 1;
    }
    char model_abs[PATH_MAX] = "";
    if (model_path && !realpath(model_path, model_abs))
        snprintf(model_abs, sizeof(model_abs), "%s", model_path);
    char model_parent[PATH_MAX];
    snprintf(model_parent, sizeof(model_parent), "%s", model_abs);
    slash = strrchr(model_parent, '/');
    if (slash)
        *slash = '\0';
    free(model_path);
    /* the input (a file the user named: its folder becomes the private farm's input root;
     * a URL: its host is allowed) */
    char in_root[PATH_MAX] = "", in_host[256] = "";
    if (spec->inputs.kind != RF_INPUT_NONE && spec->inputs.is_url) {
        const char *h = strstr(spec->inputs.path, "://");
        h = h ? h + 3 : spec->inputs.path;
        size_t n = strcspn(h, ":/?#");
        snprintf(in_host, sizeof(in_host), "%.*s", (int)(n < sizeof(in_host) ? n : 0), h);
    } else if (spec->inputs.kind != RF_INPUT_NONE) {
        s_input_root(spec_path, spec->inputs.path, in_root, sizeof(in_root));
    }
    rf_spec_free(&spec);

    /* the private farm */
    s_farm farm;
    memset(&farm, 0, sizeof(farm));
    const char *tmp = getenv("TMPDIR");
    snprintf(farm.dir, sizeof(farm.dir), "%s/reelfarm-render.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(farm.dir)) { /* mkdtemp makes it 0700 */
        fprintf(stderr, "reelctl render: cannot create a private directory in %s: %s\n",
                tmp && *tmp ? tmp : "/tmp", strerror(errno));
        return 1;
    }
    char bindir[PATH_MAX], coord_bin[PATH_MAX + 32], worker_bin[PATH_MAX + 32];
    s_bindir(bindir, sizeof(bindir));
    snprintf(coord_bin, sizeof(coord_bin), "%s/reelfarm-coordinator", bindir);
    snprintf(worker_bin, sizeof(worker_bin), "%s/reelfarm-worker", bindir);
    char listen[PATH_MAX + 32], api[PATH_MAX + 32], state[PATH_MAX + 32], log[PATH_MAX + 32];
    snprintf(listen, sizeof(listen), "ipc://%s/workers.sock", farm.dir);
    snprintf(api, sizeof(api), "ipc://%s/api.sock", farm.dir);
    snprintf(state, sizeof(state), "%s/state", farm.dir);
    snprintf(log, sizeof(log), "%s/coordinator.log", farm.dir);
    char *cargv[16] = {coord_bin,       "--listen", listen,
                       "--api",         api,        "--state",
                       state,           "--models", model_parent[0] ? model_parent : ".",
                       "--output-root", out_dir,    NULL};
    int nc = 11;
    if (in_root[0]) {
        cargv[nc++] = "--input-root";
        cargv[nc++] = in_root;
    }
    if (in_host[0]) {
        cargv[nc++] = "--allow-url-host";
        cargv[nc++] = in_host;
    }
    cargv[nc] = NULL;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_int;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    farm.coord = s_spawn(cargv, log);
    char threads_s[16];
    snprintf(threads_s, sizeof(threads_s), "%d", threads);
    for (int i = 0; i < nworkers && farm.coord > 0; i++) {
        char wlog[PATH_MAX + 32], name[32];
        snprintf(wlog, sizeof(wlog), "%s/worker-%d.log", farm.dir, i + 1);
        snprintf(name, sizeof(name), "render-w%d", i + 1);
        char *wargv[] = {worker_bin,      "--coordinator", listen,    "--backend",
                         (char *)backend, "--model",       model_abs, "--threads",
                         threads_s,       "--name",        name,      NULL};
        if (!strcmp(backend, "sim")) { /* simulated steps of 5 ms; the model is only hashed */
            wargv[7] = "--sim-step-ms";
            wargv[8] = "5";
        }
        farm.workers[farm.nworkers++] = s_spawn(wargv, wlog);
    }
    if (!ctl->json)
        fprintf(stderr,
                "reelctl render: private farm in %s: 1 coordinator, %d %s worker%s x %d "
                "thread%s\n",
                farm.dir, nworkers, backend, nworkers > 1 ? "s" : "", threads,
                threads > 1 ? "s" : "");

    /* wait for the API, then submit */
    rf_ctl sub = *ctl;
    sub.api = api;
    sub.timeout_ms = 2000;
    rf_client *c = NULL;
    int rc = 1;
    for (int i = 0; i < 100 && !s_interrupted; i++) {
        c = rf_client_new(api, 2000, &err);
        Reelfarm__StatusRequest sr = REELFARM__STATUS_REQUEST__INIT;
        Reelfarm__Envelope e = REELFARM__ENVELOPE__INIT;
        e.kind_case = REELFARM__ENVELOPE__KIND_STATUS_REQUEST;
        e.status_request = &sr;
        rf_wire_msg r;
        if (c && rf_client_call(c, &e, REELFARM__ENVELOPE__KIND_FARM_STATUS, &r, NULL, &err) == 0) {
            rf_wire_msg_release(&r);
            break;
        }
        rf_client_destroy(&c);
        if (waitpid(farm.coord, NULL, WNOHANG) == farm.coord) {
            farm.coord = 0;
            break;
        }
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    if (!c) {
        fprintf(stderr, "reelctl render: the private coordinator did not start\n");
        s_tail(log, 20);
        s_farm_stop(&farm, 1);
        fprintf(stderr, "reelctl render: logs kept in %s\n", farm.dir);
        return 1;
    }
    /* submit, follow, then read back what was made (with the normal request timeout) */
    rf_client_destroy(&c);
    c = rf_client_new(api, 30000, &err);
    if (!c) {
        fprintf(stderr, "reelctl render: %s\n", err.msg);
        s_farm_stop(&farm, 1);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char job[128] = "";
    rc = s_interrupted ? 1 : rf_ctl_submit_file(c, &sub, spec_path, out_abs, job, sizeof(job));
    if (!rc && !s_interrupted) {
        if (!ctl->json)
            fprintf(stderr, "reelctl render: job %s\n", job);
        rc = rf_ctl_follow(c, job, ctl->json);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    rf_seam_result seams;
    int fps = 16, have_seams = 0;
    if (!rc && !s_interrupted)
        have_seams = s_measure(c, job, out_abs, &seams, &fps) == 0;
    rf_client_destroy(&c);
    if (s_interrupted)
        fprintf(stderr, "\nreelctl render: interrupted; stopping the farm\n");
    int failed = rc != 0 || s_interrupted;
    if (failed) {
        s_tail(log, 15);
        for (int i = 0; i < farm.nworkers; i++) {
            char wlog[PATH_MAX + 32];
            snprintf(wlog, sizeof(wlog), "%s/worker-%d.log", farm.dir, i + 1);
            s_tail(wlog, 8);
        }
    }
    s_farm_stop(&farm, failed || keep);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (failed) {
        fprintf(stderr, "reelctl render: failed; logs and state kept in %s\n", farm.dir);
        return rc ? rc : 1;
    }
    if (keep)
        fprintf(stderr, "reelctl render: logs and state kept in %s\n", farm.dir);
    char took[32];
    rf_fmt_duration(secs, took, sizeof(took));
    if (ctl->json) {
        json_t *o = json_pack("{s:s, s:f}", "output", out_abs, "render_seconds", secs);
        if (have_seams) {
            json_object_set_new(o, "frames", json_integer(seams.frames));
            json_object_set_new(o, "duration_seconds", json_real((double)seams.frames / fps));
            json_object_set_new(o, "width", json_integer(seams.width));
            json_object_set_new(o, "height", json_integer(seams.height));
            json_object_set_new(o, "seam_ratio", json_real(seams.ratio));
            json_object_set_new(o, "seam_ratio_latent_steps", json_real(seams.latent_step_ratio));
        }
        rf_json_print(o);
    } else {
        printf("output:   %s (rendered in %s)\n", out_abs, took);
        if (have_seams) {
            printf("video:    %lld frames, %.2f s at %d fps, %dx%d\n", (long long)seams.frames,
                   (double)seams.frames / fps, fps, seams.width, seams.height);
            if (seams.ratio >= 0)
                printf("seams:    %.2f (frame change across chunk boundaries / median frame "
                       "change inside chunks; 1 = invisible)\n",
                       seams.ratio);
            if (seams.ratio >= 0 && seams.latent_step_ratio >= 0)
                printf("          %.2f against only the steps between latent frames inside chunks "
                       "(where every chunk edge falls)\n",
                       seams.latent_step_ratio);
            else if (seams.boundaries == 0)
                printf("seams:    none (each timeline is a single chunk)\n");
            else
                printf("seams:    not measurable (no frame-to-frame change inside chunks)\n");
        }
    }
    return 0;
}
