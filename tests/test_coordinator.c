/* test_coordinator.c - the real coordinator binary with fake workers on ipc:// sockets:
 * submit errors, a lockstep job bit-identical on 1 and 3 workers (with a chunk moved by
 * a drain), a worker killed mid-round (restored from a checkpoint and replayed), stale
 * results dropped, and hostile messages on both sockets. */
#include "rf_test.h"
#include "spec.h"
#include "tests/support/fake_worker.h"
#include "tests/support/farm.h"
#include "tests/support/proc.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

/* Timeline 0: 41 pixel frames -> 11 latent, chunks of 5 with overlap 2 -> 3 chunks;
 * timeline 1 (a cut): 17 frames -> 5 latent, one chunk. */
static const char *SPEC = "name: film\n"
                          "model: fake\n"
                          "width: 32\n"
                          "height: 32\n"
                          "seed: 7\n"
                          "steps: 6\n"
                          "guidance: 3\n"
                          "chunk:\n"
                          "  frames: 17\n"
                          "  overlap: 8\n"
                          "  sync_every: 1\n"
                          "  checkpoint_every: 2\n"
                          "shots:\n"
                          "  - prompt: a fox in the snow\n"
                          "    frames: 41\n"
                          "  - prompt: a lighthouse\n"
                          "    frames: 17\n"
                          "    transition: cut\n"
                          "output:\n"
                          "  path: %s\n";

#define WAIT_MS 60000

static pid_t s_worker(rf_farm *f, const char *name, rf_fake_worker_opts *o)
{
    o->endpoint = f->wep;
    o->name = name;
    o->model_hash = f->model_hash;
    pid_t pid = rf_fake_worker_spawn(o);
    RF_CHECK(pid > 0);
    return pid;
}

static void s_reap(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
}

/* Renders SPEC with n workers (options per worker) and returns the output bytes. */
static char *s_render(const char *name, int n, rf_fake_worker_opts *opts, size_t *len,
                      rf_farm *keep)
{
    rf_farm f;
    memset(&f, 0, sizeof(f));
    RF_CHECK_MSG(rf_farm_start(&f, name, NULL) == 0, "coordinator did not start (%s)", f.log);
    pid_t pids[8] = {0};
    for (int i = 0; i < n; i++) {
        char wn[32];
        snprintf(wn, sizeof(wn), "%s-w%d", name, i);
        pids[i] = s_worker(&f, wn, &opts[i]);
    }
    /* every worker said Hello before the job is placed (else the first ones take all the
     * chunks and a test that needs a worker's share depends on start-up timing) */
    int joined = 0;
    for (int i = 0; i < 500 && joined < n; i++) {
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        Reelfarm__StatusRequest sr = REELFARM__STATUS_REQUEST__INIT;
        env.kind_case = REELFARM__ENVELOPE__KIND_STATUS_REQUEST;
        env.status_request = &sr;
        rf_wire_msg rep;
        if (rf_farm_call(&f, &env, &rep, 2000) == 0) {
            if (rep.env->kind_case == REELFARM__ENVELOPE__KIND_FARM_STATUS)
                joined = (int)rep.env->farm_status->workers;
            rf_wire_msg_release(&rep);
        }
        if (joined < n)
            usleep(10000);
    }
    RF_CHECK_MSG(joined == n, "%d of %d workers joined (log %s)", joined, n, f.log);
    char spec[2048], job[64], err[1024];
    snprintf(spec, sizeof(spec), SPEC, "film.mp4");
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), err, sizeof(err)) == 0, "%s", err);
    int st = rf_farm_wait(&f, job, WAIT_MS);
    s_reap(pids, n);
    RF_CHECK_MSG(st == REELFARM__JOB_STATE__JOB_DONE, "job ended in state %d (log %s)", st, f.log);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
    char path[700];
    snprintf(path, sizeof(path), "%s/out/film.mp4", f.dir);
    char *data = rf_farm_read(path, len);
    RF_CHECK_MSG(data && *len > 0, "no output at %s", path);
    if (keep)
        *keep = f;
    return data;
}

static char *g_one;
static size_t g_one_len;

static char *s_reference(void)
{
    if (!g_one) {
        rf_fake_worker_opts o[1] = {{0}};
        g_one = s_render("one", 1, o, &g_one_len, NULL);
    }
    return g_one;
}

RF_TEST(lockstep_job_on_one_worker)
{
    char *one = s_reference();
    RF_CHECK(one);
    RF_CHECK(strncmp(one, "FAKESEG t=0 s=0", 15) == 0);
}

static int s_count(const char *log, const char *a, const char *b)
{
    size_t len;
    char *t = rf_farm_read(log, &len);
    int n = 0;
    for (char *line = t ? strtok(t, "\n") : NULL; line; line = strtok(NULL, "\n"))
        n += strstr(line, a) && strstr(line, b);
    free(t);
    return n;
}

RF_TEST(three_workers_with_a_drain_are_bit_identical_to_one)
{
    char *one = s_reference();
    rf_fake_worker_opts o[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        o[i].max_tasks = 2; /* spread the chunks */
        o[i].step_delay_ms = 5;
    }
    o[1].drain_after_round = 2; /* its chunks move to the others mid-job */
    size_t len;
    rf_farm f;
    char *three = s_render("three", 3, o, &len, &f);
    RF_CHECK_EQ_INT(len, g_one_len);
    RF_CHECK(memcmp(one, three, len) == 0);
    int workers_with_denoise = 0;
    for (int i = 0; i < 3; i++) {
        char wn[32];
        snprintf(wn, sizeof(wn), "worker=three-w%d", i);
        workers_with_denoise += s_count(f.log, "denoise", wn) > 0;
    }
    RF_CHECK_MSG(workers_with_denoise >= 2, "only %d workers did DENOISE work",
                 workers_with_denoise);
    RF_CHECK(rf_farm_log_has(&f, "handed back by a draining worker"));
    RF_CHECK(rf_farm_log_has(&f, "restored from a checkpoint"));
    free(three);
}

RF_TEST(worker_killed_mid_round_is_replayed_bit_identically)
{
    char *one = s_reference();
    rf_fake_worker_opts o[2] = {{0}};
    o[0].crash_after_round = 4; /* SIGKILL after sending round 4: round 3 is fused, the
                                 * last checkpoint is round 2, so round 3 must be replayed */
    o[0].max_tasks = 4;
    o[0].step_delay_ms = 2;
    o[1].max_tasks = 0;
    o[1].step_delay_ms = 2;
    size_t len;
    rf_farm f;
    char *out = s_render("kill", 2, o, &len, &f);
    RF_CHECK_EQ_INT(len, g_one_len);
    RF_CHECK(memcmp(one, out, len) == 0);
    RF_CHECK(rf_farm_log_has(&f, "worker lost"));
    RF_CHECK(rf_farm_log_has(&f, "restored from a checkpoint at round 2"));
    RF_CHECK(rf_farm_log_has(&f, "round replayed from the store"));
    free(out);
}

RF_TEST(stale_result_is_dropped)
{
    rf_farm f;
    memset(&f, 0, sizeof(f));
    RF_CHECK(rf_farm_start(&f, "stale", "--lease-ms 300") == 0);
    rf_fake_worker_opts slow = {0}, ok = {0};
    slow.hang_decode_ms = 1500; /* holds its DECODE results past the lease */
    pid_t p[2];
    p[0] = s_worker(&f, "slow", &slow);
    char spec[2048], job[64], err[1024];
    snprintf(spec, sizeof(spec), SPEC, "stale.mp4");
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), err, sizeof(err)) == 0, "%s", err);
    /* let the slow worker take the decodes, then give the farm a healthy worker */
    for (int i = 0; i < 400 && !rf_farm_log_has(&f, "lease expired"); i++)
        usleep(20000);
    p[1] = s_worker(&f, "ok", &ok);
    int st = rf_farm_wait(&f, job, WAIT_MS);
    for (int i = 0; i < 200 && !rf_farm_log_has(&f, "stale result dropped"); i++)
        usleep(20000);
    s_reap(p, 2);
    RF_CHECK_EQ_INT(st, REELFARM__JOB_STATE__JOB_DONE);
    RF_CHECK(rf_farm_log_has(&f, "lease expired"));
    RF_CHECK(rf_farm_log_has(&f, "stale result dropped"));
    char path[700];
    size_t len;
    snprintf(path, sizeof(path), "%s/out/stale.mp4", f.dir);
    char *data = rf_farm_read(path, &len);
    RF_CHECK(data && len == g_one_len && memcmp(data, s_reference(), len) == 0);
    free(data);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}

static void s_expect_refusal(rf_farm *f, const char *spec, const char *field, const char *text)
{
    char job[64], err[1024];
    RF_CHECK(rf_farm_submit(f, spec, job, sizeof(job), err, sizeof(err)) != 0);
    RF_CHECK_EQ_STR(job, "");
    RF_CHECK_CONTAINS(err, field);
    RF_CHECK_CONTAINS(err, text);
}

RF_TEST(bad_specs_unknown_models_and_outputs_are_refused)
{
    rf_farm f;
    memset(&f, 0, sizeof(f));
    RF_CHECK(rf_farm_start(&f, "refuse", NULL) == 0);
    char spec[2048];
    s_expect_refusal(&f, "model: fake\nwidth: 30\nheight: 32\nprompt: x\nseconds: 1\n", "width",
                     "16");
    s_expect_refusal(&f, "model: nosuch\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n", "model",
                     "nosuch");
    snprintf(spec, sizeof(spec), SPEC, "../escape.mp4");
    s_expect_refusal(&f, spec, "output", "..");
    snprintf(spec, sizeof(spec), SPEC, "/etc/film.mp4");
    s_expect_refusal(&f, spec, "output", "outside the output root");
    char ro[700];
    snprintf(ro, sizeof(ro), "%s/out/ro", f.dir);
    mkdir(ro, 0500);
    snprintf(spec, sizeof(spec), SPEC, "ro/film.mp4");
    if (geteuid() != 0) /* root writes anywhere */
        s_expect_refusal(&f, spec, "output", "not writable");
    char link[700];
    snprintf(link, sizeof(link), "%s/out/up", f.dir);
    RF_CHECK_EQ_INT(symlink("/tmp", link), 0);
    snprintf(spec, sizeof(spec), SPEC, "up/film.mp4");
    s_expect_refusal(&f, spec, "output", "symbolic link");
    /* still serving */
    snprintf(spec, sizeof(spec), SPEC, "fine.mp4");
    char job[64], err[1024];
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), err, sizeof(err)) == 0, "%s", err);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}

/* The steps the coordinator planned for job (JobInfo.steps), or -1. */
static int s_job_steps(rf_farm *f, const char *job)
{
    rf_wire_msg rep;
    if (rf_farm_job_info(f, job, &rep, 5000) != 0)
        return -1;
    int steps = (int)rep.env->job_info->steps;
    rf_wire_msg_release(&rep);
    return steps;
}

RF_TEST(model_json_defaults_fill_what_the_spec_leaves_out)
{
    rf_farm f;
    memset(&f, 0, sizeof(f));
    RF_CHECK(rf_farm_start(&f, "defaults", NULL) == 0);
    char p[800];
    const char *mj[] = {
        "{\"defaults\": {\"sampler\": \"euler\", \"steps\": 7, \"shift\": 3.0, "
        "\"guidance\": 4.0}}\n",
        "{\"defaults\": {\"steps\": \"many\"}}\n",
        "{\"defaults\": {\"sampler\": \"heun\"}}\n",
        "{\"defaults\": \n",
        "{\"defaults\": {\"negative\": 7}}\n",
        "{\"decode_warmup\": -1}\n",
        "{\"defaults\": {\"decode_warmup\": \"4\"}}\n",
    };
    const char *names[] = {"tuned",  "badsteps",  "badsampler", "broken",
                           "badneg", "badwarmup", "oldwarmup"};
    for (int i = 0; i < 7; i++) {
        snprintf(p, sizeof(p), "%s/models/%s", f.dir, names[i]);
        mkdir(p, 0700);
        snprintf(p, sizeof(p), "%s/models/%s/model.json", f.dir, names[i]);
        RF_CHECK_EQ_INT(rf_test_write_file(p, mj[i], strlen(mj[i])), 0);
    }
    char job[64], tuned_job[64], err[1024];
    const char *spec = "model: tuned\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n";
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), err, sizeof(err)) == 0, "%s", err);
    RF_CHECK_EQ_INT(s_job_steps(&f, job), 7);
    snprintf(tuned_job, sizeof(tuned_job), "%s", job);
    spec = "model: tuned\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\nsteps: 3\n";
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), err, sizeof(err)) == 0, "%s", err);
    RF_CHECK_EQ_INT(s_job_steps(&f, job), 3); /* the spec wins */
    spec = "model: fake\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n";
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), err, sizeof(err)) == 0, "%s", err);
    RF_CHECK_EQ_INT(s_job_steps(&f, job), 50); /* no defaults.steps: Wan2.1's */
    s_expect_refusal(&f, "model: badsteps\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n",
                     "model.json", "defaults.steps");
    s_expect_refusal(&f, "model: badsampler\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n",
                     "model.json", "defaults.sampler");
    s_expect_refusal(&f, "model: broken\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n",
                     "model.json", "broken");
    s_expect_refusal(&f, "model: badneg\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n",
                     "badneg/model.json", "defaults.negative must be text");
    s_expect_refusal(&f, "model: badwarmup\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n",
                     "badwarmup/model.json", "decode_warmup must be an integer in [0, 999]");
    s_expect_refusal(&f, "model: oldwarmup\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n",
                     "oldwarmup/model.json", "decode_warmup must be an integer");
    /* a too long default negative could not be stored in the spec: refused at submit */
    char big[RF_SPEC_MAX_PROMPT + 64];
    int n = snprintf(big, sizeof(big), "{\"defaults\": {\"negative\": \"");
    memset(big + n, 'a', RF_SPEC_MAX_PROMPT + 1);
    snprintf(big + n + RF_SPEC_MAX_PROMPT + 1, sizeof(big) - (size_t)n - RF_SPEC_MAX_PROMPT - 1,
             "\"}}\n");
    snprintf(p, sizeof(p), "%s/models/longneg", f.dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/models/longneg/model.json", f.dir);
    RF_CHECK_EQ_INT(rf_test_write_file(p, big, strlen(big)), 0);
    s_expect_refusal(&f, "model: longneg\nwidth: 32\nheight: 32\nprompt: x\nseconds: 1\n",
                     "longneg/model.json", "at most 4096 bytes");
    /* a spec under the limit whose stored (JSON) form is over it: a restart could not
     * parse it, so it is refused at submit (each '"' takes two bytes in JSON) */
    size_t cap = 800000, o = 0;
    char *quotes = malloc(cap);
    RF_CHECK(quotes != NULL);
    o += (size_t)snprintf(quotes, cap, "model: fake\nwidth: 32\nheight: 32\nshots:\n");
    for (int s = 0; s < 200; s++) {
        o += (size_t)snprintf(quotes + o, cap - o, "  - frames: 5\n    prompt: '");
        memset(quotes + o, '"', 3000);
        o += 3000;
        o += (size_t)snprintf(quotes + o, cap - o, "'\n");
    }
    RF_CHECK(o < (size_t)RF_SPEC_MAX_BYTES);
    s_expect_refusal(&f, quotes, "written out as JSON", "shorten the prompts");
    free(quotes);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
    /* a model.json without defaults.negative: the job is guided away from Wan2.1's default
     * negative, as reelfarm-engine renders it (engine/model_folder.c), stored at submit */
    snprintf(p, sizeof(p), "%s/state/state.db", f.dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    RF_CHECK_EQ_INT(sqlite3_open(p, &db), SQLITE_OK);
    RF_CHECK_EQ_INT(sqlite3_prepare_v2(db,
                                       "SELECT json_extract(spec, '$.plan.negative') FROM jobs "
                                       "WHERE id = ?1",
                                       -1, &q, NULL),
                    SQLITE_OK);
    sqlite3_bind_text(q, 1, tuned_job, -1, SQLITE_STATIC);
    RF_CHECK_EQ_INT(sqlite3_step(q), SQLITE_ROW);
    const char *neg = (const char *)sqlite3_column_text(q, 0);
    RF_CHECK_EQ_STR(neg ? neg : "(none)", rf_spec_wan21_negative());
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* The model hashes the coordinator's only worker advertised, or -1. */
static int s_worker_models(rf_farm *f)
{
    Reelfarm__WorkerListRequest req = REELFARM__WORKER_LIST_REQUEST__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_WORKER_LIST_REQUEST;
    env.worker_list_request = &req;
    rf_wire_msg rep;
    if (rf_farm_call(f, &env, &rep, 5000) != 0)
        return -1;
    int n = rep.env->kind_case == REELFARM__ENVELOPE__KIND_WORKER_LIST &&
                    rep.env->worker_list->n_workers == 1
                ? (int)rep.env->worker_list->workers[0]->n_model_hashes
                : -1;
    rf_wire_msg_release(&rep);
    return n;
}

RF_TEST(one_worker_serves_several_models_loading_each_when_needed)
{
    rf_farm f;
    memset(&f, 0, sizeof(f));
    RF_CHECK(rf_farm_start(&f, "models", NULL) == 0);
    char p[800];
    const char *names[] = {"alpha", "beta"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/models/%s", f.dir, names[i]);
        mkdir(p, 0700);
        snprintf(p, sizeof(p), "%s/models/%s/model.json", f.dir, names[i]);
        char mj[128];
        snprintf(mj, sizeof(mj), "{\"name\": \"%s\", \"decode_warmup\": 1}\n", names[i]);
        RF_CHECK_EQ_INT(rf_test_write_file(p, mj, strlen(mj)), 0);
    }
    /* models/ holds fake, alpha and beta: three models, one loaded at a time */
    char bin[1024], models[700];
    rf_proc_bin(bin, sizeof(bin), "reelfarm-worker");
    snprintf(models, sizeof(models), "%s/models", f.dir);
    const char *argv[] = {
        bin,        "--coordinator", f.wep,          "--backend", "sim",    "--sim-step-ms", "1",
        "--models", models,          "--max-models", "1",         "--name", "several",       NULL};
    rf_error err;
    rf_proc *w = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(w, "%s", err.msg);
    RF_CHECK_MSG(rf_proc_wait_log(w, "worker started", 20000, &err) == 0, "%s", err.msg);
    const char *order[] = {"alpha", "beta", "alpha"};
    for (int i = 0; i < 3; i++) {
        char spec[256], job[64], msg[1024];
        snprintf(spec, sizeof(spec),
                 "model: %s\nwidth: 32\nheight: 32\nprompt: x\nframes: 9\nsteps: 2\n"
                 "output:\n  path: %s-%d.mkv\n",
                 order[i], order[i], i);
        RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), msg, sizeof(msg)) == 0, "%s", msg);
        RF_CHECK_EQ_INT(rf_farm_wait(&f, job, 60000), REELFARM__JOB_STATE__JOB_DONE);
    }
    RF_CHECK_EQ_INT(s_worker_models(&f), 3);
    RF_CHECK(rf_proc_log_contains(w, "model unloaded"));
    RF_CHECK(rf_proc_log_contains(w, "dir=") && rf_proc_log_contains(w, "/models/beta"));
    int status = -1;
    RF_CHECK_EQ_INT(rf_proc_signal(w, SIGTERM, &err), 0);
    RF_CHECK_MSG(rf_proc_wait(w, 20000, &status, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(status, 0);
    rf_proc_destroy(&w);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}

/* The workers the coordinator knows, with the names of the first ones in names. */
static int s_worker_names(rf_farm *f, char names[][128], int cap)
{
    Reelfarm__WorkerListRequest req = REELFARM__WORKER_LIST_REQUEST__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_WORKER_LIST_REQUEST;
    env.worker_list_request = &req;
    rf_wire_msg rep;
    if (rf_farm_call(f, &env, &rep, 5000) != 0)
        return -1;
    int n = -1;
    if (rep.env->kind_case == REELFARM__ENVELOPE__KIND_WORKER_LIST) {
        n = (int)rep.env->worker_list->n_workers;
        for (int i = 0; i < n && i < cap; i++)
            snprintf(names[i], 128, "%s", rep.env->worker_list->workers[i]->name);
    }
    rf_wire_msg_release(&rep);
    return n;
}

RF_TEST(sim_workers_in_one_process_each_have_their_own_connection)
{
    rf_farm f;
    memset(&f, 0, sizeof(f));
    RF_CHECK(rf_farm_start(&f, "count", NULL) == 0);
    char bin[1024], model[700];
    rf_proc_bin(bin, sizeof(bin), "reelfarm-worker");
    snprintf(model, sizeof(model), "%s/models/fake", f.dir);
    const char *argv[] = {bin,   "--coordinator", f.wep,  "--backend",   "sim", "--sim-step-ms",
                          "1",   "--count",       "4",    "--max-tasks", "1",   "--model",
                          model, "--name",        "many", NULL};
    rf_error err;
    rf_proc *w = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(w, "%s", err.msg);
    char names[8][128];
    int n = 0;
    for (int i = 0; i < 200 && n != 4; i++) {
        n = s_worker_names(&f, names, 8);
        if (n != 4)
            usleep(50000);
    }
    RF_CHECK_EQ_INT(n, 4);
    int seen[4] = {0};
    for (int i = 0; i < n && i < 4; i++)
        for (int k = 0; k < 4; k++) {
            char want[32];
            snprintf(want, sizeof(want), "many-%d", k);
            seen[k] |= strcmp(names[i], want) == 0;
        }
    RF_CHECK(seen[0] && seen[1] && seen[2] && seen[3]);
    /* a lockstep job of several chunks spreads over them (one slot each) */
    char job[64], msg[1024];
    const char *spec = "model: fake\nwidth: 32\nheight: 32\nprompt: x\nframes: 45\nsteps: 3\n"
                       "chunk:\n  frames: 17\n  overlap: 8\noutput:\n  path: many.mkv\n";
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), msg, sizeof(msg)) == 0, "%s", msg);
    RF_CHECK_EQ_INT(rf_farm_wait(&f, job, 60000), REELFARM__JOB_STATE__JOB_DONE);
    int busy = 0;
    for (int k = 0; k < 4; k++) {
        char wn[32];
        snprintf(wn, sizeof(wn), "worker=many-%d", k);
        busy += s_count(f.log, "denoise", wn) > 0;
    }
    RF_CHECK_MSG(busy >= 2, "only %d of the 4 workers did DENOISE work", busy);
    int status = -1;
    RF_CHECK_EQ_INT(rf_proc_signal(w, SIGTERM, &err), 0);
    RF_CHECK_MSG(rf_proc_wait(w, 20000, &status, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(status, 0); /* every one of them drained */
    rf_proc_destroy(&w);
    /* --count is for simulated workers only */
    const char *bad[] = {bin, "--coordinator", f.wep, "--backend", "cpu", "--count",
                         "2", "--model",       model, NULL};
    w = rf_proc_start(bad, NULL, &err);
    RF_CHECK_MSG(w, "%s", err.msg);
    RF_CHECK_MSG(rf_proc_wait(w, 20000, &status, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(status, 2);
    RF_CHECK(rf_proc_log_contains(w, "--count needs --backend sim"));
    rf_proc_destroy(&w);
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}

static void s_raw(void *sock, const void *const *frames, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        zmq_send(sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
}

RF_TEST(garbage_truncated_and_oversized_messages_on_both_sockets)
{
    rf_farm f;
    memset(&f, 0, sizeof(f));
    RF_CHECK(rf_farm_start(&f, "hostile", NULL) == 0);
    void *ctx = zmq_ctx_new();
    const char *eps[2] = {f.wep, f.aep};
    for (int e = 0; e < 2; e++) {
        void *s = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0, tmo = 2000;
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
        zmq_connect(s, eps[e]);
        const char junk[] = "\xff\x01garbage that is not protobuf";
        const void *fr1[1] = {junk};
        size_t l1[1] = {sizeof(junk)};
        s_raw(s, fr1, l1, 1);
        char buf[4096];
        RF_CHECK_MSG(zmq_recv(s, buf, sizeof(buf), 0) > 0, "no Error reply to garbage (%d)", e);
        while (zmq_getsockopt(s, ZMQ_RCVMORE, &(int){0}, &(size_t){sizeof(int)}) == 0) {
            int more = 0;
            size_t ml = sizeof(more);
            zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
            if (!more)
                break;
            zmq_recv(s, buf, sizeof(buf), 0);
        }
        /* a valid envelope announcing a blob that never comes (truncated) */
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        Reelfarm__StatusRequest sr = REELFARM__STATUS_REQUEST__INIT;
        Reelfarm__Blob b = REELFARM__BLOB__INIT, *bp = &b;
        int64_t shape[1] = {1000};
        b.name = "x";
        b.dtype = REELFARM__DTYPE__DTYPE_U8;
        b.shape = shape;
        b.n_shape = 1;
        b.byte_length = 1000;
        env.version = RF_PROTOCOL_VERSION;
        env.request_id = 9;
        env.blobs = &bp;
        env.n_blobs = 1;
        env.kind_case = REELFARM__ENVELOPE__KIND_STATUS_REQUEST;
        env.status_request = &sr;
        size_t n = reelfarm__envelope__get_packed_size(&env);
        unsigned char *packed = malloc(n);
        reelfarm__envelope__pack(&env, packed);
        const void *fr2[1] = {packed};
        size_t l2[1] = {n};
        s_raw(s, fr2, l2, 1);
        RF_CHECK_MSG(zmq_recv(s, buf, sizeof(buf), 0) > 0, "no Error reply to truncation (%d)", e);
        /* oversized: more blob frames than the limit allows */
        static char tiny[1] = {0};
        for (int i = 0; i < 1100; i++)
            zmq_send(s, i == 0 ? (void *)packed : tiny, i == 0 ? n : 1,
                     i + 1 < 1100 ? ZMQ_SNDMORE : 0);
        free(packed);
        zmq_recv(s, buf, sizeof(buf), 0);
        zmq_close(s);
    }
    zmq_ctx_term(ctx);
    /* still serving both sockets */
    rf_fake_worker_opts o = {0};
    pid_t p = s_worker(&f, "after", &o);
    char spec[2048], job[64], err[1024];
    snprintf(spec, sizeof(spec), SPEC, "after.mp4");
    RF_CHECK_MSG(rf_farm_submit(&f, spec, job, sizeof(job), err, sizeof(err)) == 0, "%s", err);
    int st = rf_farm_wait(&f, job, WAIT_MS);
    s_reap(&p, 1);
    RF_CHECK_EQ_INT(st, REELFARM__JOB_STATE__JOB_DONE);
    RF_CHECK(rf_farm_log_has(&f, "malformed message refused"));
    RF_CHECK_EQ_INT(rf_farm_stop(&f), 0);
}
