/* test_coord_durable.c - the coordinator killed at any point resumes without redoing work.
 *
 * Real coordinator, fake workers (tests/support) that survive the coordinator. Each test
 * kills the coordinator (a deterministic crash point RF_CRASH_AT=NAME:N, or SIGKILL at
 * random moments), restarts it on the same --state, and checks that the job finishes
 * bit-identical to an uninterrupted run and that no DENOISE step ran twice: the workers
 * count every step they execute (shared memory), and the total must equal
 * chunks x steps, so the steps executed after the restart are exactly the ones that were
 * still to do. A full disk (RF_INJECT_ENOSPC_FILE) pauses dispatch, the state stays what
 * the store holds, and the job completes once space returns. Watches end with their job.
 */
#include "rf_test.h"
#include "tests/support/fake_worker.h"
#include "tests/support/farm.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* Timeline 0: 41 pixel frames -> 11 latent, 3 chunks; timeline 1 (a cut): 1 chunk.
 * 4 chunks x 8 steps = 32 chunk-steps; a round after every step, a checkpoint every 3. */
static const char *SPEC = "name: durable\n"
                          "model: fake\n"
                          "width: 32\n"
                          "height: 32\n"
                          "seed: 11\n"
                          "steps: 8\n"
                          "guidance: 3\n"
                          "chunk:\n"
                          "  frames: 17\n"
                          "  overlap: 8\n"
                          "  sync_every: 1\n"
                          "  checkpoint_every: 3\n"
                          "shots:\n"
                          "  - prompt: a fox in the snow\n"
                          "    frames: 41\n"
                          "  - prompt: a lighthouse\n"
                          "    frames: 17\n"
                          "    transition: cut\n"
                          "output:\n"
                          "  path: out.mp4\n";

/* The same film in independent mode: each chunk's result comes back once, at its end. */
static const char *INDEPENDENT = "name: durable\n"
                                 "model: fake\n"
                                 "width: 32\n"
                                 "height: 32\n"
                                 "seed: 11\n"
                                 "steps: 8\n"
                                 "guidance: 3\n"
                                 "mode: independent\n"
                                 "chunk:\n"
                                 "  frames: 17\n"
                                 "  overlap: 8\n"
                                 "shots:\n"
                                 "  - prompt: a fox in the snow\n"
                                 "    frames: 41\n"
                                 "  - prompt: a lighthouse\n"
                                 "    frames: 17\n"
                                 "    transition: cut\n"
                                 "output:\n"
                                 "  path: out.mp4\n";
static const char *s_spec; /* what s_begin submits (NULL: SPEC) */

#define CHUNK_STEPS 32
#define WAIT_MS     60000
#define NWORKERS    2
#define FARM_ARGS   "--lease-ms 3000"

typedef struct run {
    rf_farm f;
    pid_t workers[NWORKERS];
    long *steps; /* shared with the forked workers */
    char job[64];
} run;

static void s_start_workers(run *r, const char *name, int step_delay_ms)
{
    static rf_fake_worker_opts o[NWORKERS];
    static char names[NWORKERS][64];
    for (int i = 0; i < NWORKERS; i++) {
        memset(&o[i], 0, sizeof(o[i]));
        snprintf(names[i], sizeof(names[i]), "%s-w%d", name, i);
        o[i].endpoint = r->f.wep;
        o[i].name = names[i];
        o[i].model_hash = r->f.model_hash;
        o[i].max_tasks = 2;
        o[i].step_delay_ms = step_delay_ms;
        o[i].steps_executed = r->steps;
        r->workers[i] = rf_fake_worker_spawn(&o[i]);
        RF_CHECK(r->workers[i] > 0);
    }
}

static void s_stop_workers(run *r)
{
    for (int i = 0; i < NWORKERS; i++)
        if (r->workers[i] > 0) {
            kill(r->workers[i], SIGKILL);
            waitpid(r->workers[i], NULL, 0);
            r->workers[i] = 0;
        }
}

/* Starts the coordinator (no workers yet). */
static void s_setup(run *r, const char *name, const char *crash_at)
{
    memset(r, 0, sizeof(*r));
    r->steps = mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    RF_CHECK(r->steps != MAP_FAILED);
    *r->steps = 0;
    if (crash_at)
        setenv("RF_CRASH_AT", crash_at, 1);
    int rc = rf_farm_start(&r->f, name, FARM_ARGS);
    unsetenv("RF_CRASH_AT");
    RF_CHECK_MSG(rc == 0, "coordinator did not start (%s)", r->f.log);
}

static void s_submit(run *r)
{
    char err[1024];
    RF_CHECK_MSG(rf_farm_submit(&r->f, s_spec ? s_spec : SPEC, r->job, sizeof(r->job), err,
                                sizeof(err)) == 0,
                 "%s", err);
}

static void s_begin(run *r, const char *name, const char *crash_at, int step_delay_ms)
{
    s_setup(r, name, crash_at);
    s_start_workers(r, name, step_delay_ms);
    s_submit(r);
}

/* Reads the output, stops everything; returns the output (caller frees). */
static char *s_finish(run *r, size_t *len)
{
    int st = rf_farm_wait(&r->f, r->job, WAIT_MS);
    s_stop_workers(r);
    RF_CHECK_MSG(st == REELFARM__JOB_STATE__JOB_DONE, "job ended in state %d (log %s)", st,
                 r->f.log);
    RF_CHECK_EQ_INT(rf_farm_stop(&r->f), 0);
    char path[700];
    snprintf(path, sizeof(path), "%s/out/out.mp4", r->f.dir);
    char *data = rf_farm_read(path, len);
    RF_CHECK_MSG(data && *len > 0, "no output at %s", path);
    return data;
}

static char *g_ref;
static size_t g_ref_len;

static const char *s_reference(void)
{
    if (!g_ref) {
        run r;
        s_begin(&r, "reference", NULL, 2);
        g_ref = s_finish(&r, &g_ref_len);
        RF_CHECK_EQ_INT(*r.steps, CHUNK_STEPS);
        munmap(r.steps, sizeof(long));
    }
    return g_ref;
}

/* Forgets the dead coordinator's process and API socket (the state dir stays). */
static void s_forget(rf_farm *f)
{
    if (f->api) {
        zmq_close(f->api);
        f->api = NULL;
    }
    f->pid = 0;
}

static void s_restart_with(run *r, const char *args)
{
    s_forget(&r->f);
    RF_CHECK_MSG(rf_farm_start(&r->f, NULL, args) == 0, "restart failed (%s)", r->f.log);
}

static void s_restart(run *r)
{
    s_restart_with(r, FARM_ARGS);
}

/* What an operator may change while the coordinator is down: the model's model.json (the
 * default negative prompt and the decode warm-up; the farm's was "blurry" and 1) and the
 * coordinator's --segment-frames (the farm's is 4). Then restarts it. */
static void s_change_settings_and_restart(run *r)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/models/fake/model.json", r->f.dir);
    const char *mj = "{\"defaults\": {\"negative\": \"grainy\"}, \"decode_warmup\": 2}\n";
    RF_CHECK_EQ_INT(rf_test_write_file(p, mj, strlen(mj)), 0);
    s_restart_with(r, FARM_ARGS " --segment-frames 3");
}

/* Waits up to 30 s for the crashing coordinator to exit: its pid (0 if it did not), *st
 * its wait status. */
static pid_t s_wait_exit(run *r, int *st)
{
    pid_t got = 0;
    for (int i = 0; i < 3000 && got != r->f.pid; i++) {
        got = waitpid(r->f.pid, st, WNOHANG);
        if (got != r->f.pid)
            usleep(10000);
    }
    return got;
}

/* Runs the job with RF_CRASH_AT=point:n, restarts once after the crash (with the settings
 * changed when change), checks the output and the step count. */
static void s_crash_test_changed(const char *name, const char *point, int n, int change)
{
    const char *ref = s_reference();
    char at[128];
    snprintf(at, sizeof(at), "%s:%d", point, n);
    run r;
    s_begin(&r, name, at, 15);
    int st = 0;
    pid_t got = s_wait_exit(&r, &st);
    RF_CHECK_MSG(got == r.f.pid, "the coordinator did not reach %s (log %s)", at, r.f.log);
    RF_CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 86, "%s: exit status %d (log %s)", at, st,
                 r.f.log);
    long before = __atomic_load_n(r.steps, __ATOMIC_SEQ_CST);
    if (change)
        s_change_settings_and_restart(&r);
    else
        s_restart(&r);
    size_t len;
    char *out = s_finish(&r, &len);
    long total = *r.steps;
    fprintf(stderr,
            "# %s: crashed at %s; %ld chunk-steps executed before the restart, %ld after, "
            "%ld in all (minimum %d)\n",
            name, at, before, total - before, total, CHUNK_STEPS);
    RF_CHECK_MSG(before < CHUNK_STEPS, "%s came too late: the job was already denoised", at);
    RF_CHECK_EQ_INT(len, g_ref_len);
    RF_CHECK(memcmp(out, ref, len) == 0);
    RF_CHECK_MSG(total == CHUNK_STEPS, "%ld DENOISE steps executed, %d needed: work was redone",
                 total, CHUNK_STEPS);
    RF_CHECK(rf_farm_log_has(&r.f, "resumed after a coordinator restart"));
    if (before > 0) /* chunks were running: their workers kept them */
        RF_CHECK(rf_farm_log_has(&r.f, "attempt adopted by its returning worker"));
    free(out);
    munmap(r.steps, sizeof(long));
}

static void s_crash_test(const char *name, const char *point, int n)
{
    s_crash_test_changed(name, point, n, 0);
}

RF_TEST(crash_before_commit)
{
    s_crash_test("before-commit", "before-commit", 12);
}

RF_TEST(crash_after_commit_before_ack)
{
    s_crash_test("after-commit-before-ack", "after-commit-before-ack", 14);
}

RF_TEST(crash_mid_fusion)
{
    s_crash_test("mid-fusion", "mid-fusion", 7);
}

RF_TEST(crash_mid_blob_write)
{
    s_crash_test("mid-blob-write", "mid-blob-write", 9);
}

RF_TEST(crash_after_blob_pack)
{
    s_crash_test("after-blob-pack", "after-blob-pack", 6);
}

RF_TEST(random_kills_over_a_whole_job)
{
    const char *ref = s_reference();
    const char *env = getenv("RF_TEST_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "# random_kills: seed %u (RF_TEST_SEED=%u reproduces the kill times)\n", seed,
            seed);
    srand(seed);
    run r;
    s_begin(&r, "random", NULL, 60);
    int kills = 0;
    for (int k = 0; k < 6; k++) {
        usleep((useconds_t)(30000 + rand() % 250000));
        kill(r.f.pid, SIGKILL);
        waitpid(r.f.pid, NULL, 0);
        kills++;
        s_restart(&r);
    }
    size_t len;
    char *out = s_finish(&r, &len);
    fprintf(stderr, "# random_kills: %d kills, %ld chunk-steps executed (minimum %d)\n", kills,
            *r.steps, CHUNK_STEPS);
    RF_CHECK(kills > 0);
    RF_CHECK_EQ_INT(len, g_ref_len);
    RF_CHECK(memcmp(out, ref, len) == 0);
    RF_CHECK_MSG(*r.steps == CHUNK_STEPS, "%ld DENOISE steps executed, %d needed (seed %u)",
                 *r.steps, CHUNK_STEPS, seed);
    free(out);
    munmap(r.steps, sizeof(long));
}

static int s_paused_warning(rf_farm *f, char *reason, size_t cap)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__StatusRequest sr = REELFARM__STATUS_REQUEST__INIT;
    env.kind_case = REELFARM__ENVELOPE__KIND_STATUS_REQUEST;
    env.status_request = &sr;
    rf_wire_msg rep;
    reason[0] = 0;
    if (rf_farm_call(f, &env, &rep, 5000))
        return -1;
    int n = 0;
    if (rep.env->kind_case == REELFARM__ENVELOPE__KIND_FARM_STATUS) {
        n = (int)rep.env->farm_status->n_warnings;
        if (n)
            snprintf(reason, cap, "%s", rep.env->farm_status->warnings[0]);
    }
    rf_wire_msg_release(&rep);
    return n;
}

RF_TEST(full_disk_pauses_keeps_the_state_and_resumes)
{
    const char *ref = s_reference();
    char full[600];
    rf_test_path(full, sizeof(full), "disk-full-flag");
    unlink(full);
    setenv("RF_INJECT_ENOSPC_FILE", full, 1);
    run r;
    s_begin(&r, "fulldisk", NULL, 20);
    unsetenv("RF_INJECT_ENOSPC_FILE");
    for (int i = 0; i < 1000 && *r.steps < 8; i++)
        usleep(5000);
    RF_CHECK(rf_test_write_file(full, "x", 1) == 0); /* the disk is full from now on */
    for (int i = 0; i < 500 && !rf_farm_log_has(&r.f, "dispatch paused"); i++)
        usleep(10000);
    RF_CHECK_MSG(rf_farm_log_has(&r.f, "dispatch paused"), "no pause (log %s)", r.f.log);
    usleep(1500000); /* stays paused while full: fusion, results, checkpoints refused */
    char reason[1024];
    RF_CHECK_EQ_INT(s_paused_warning(&r.f, reason, sizeof(reason)), 1);
    RF_CHECK_CONTAINS(reason, "disk full");
    long during = *r.steps;
    RF_CHECK_MSG(during < CHUNK_STEPS, "the job denoised through a full disk (%ld steps)", during);
    unlink(full); /* space returns */
    size_t len;
    char *out = s_finish(&r, &len);
    fprintf(stderr, "# full disk: paused at %ld chunk-steps; %ld executed in all (minimum %d)\n",
            during, *r.steps, CHUNK_STEPS);
    RF_CHECK(rf_farm_log_has(&r.f, "state reloaded from the store"));
    RF_CHECK(rf_farm_log_has(&r.f, "store writable again"));
    RF_CHECK_EQ_INT(len, g_ref_len);
    RF_CHECK(memcmp(out, ref, len) == 0);
    free(out);
    munmap(r.steps, sizeof(long));
}

/* Results that arrive while the disk is full are kept and stored once space returns: none
 * is computed again, no worker is blamed, and the film is the uninterrupted one. */
RF_TEST(results_arriving_on_a_full_disk_are_kept_not_recomputed)
{
    s_spec = INDEPENDENT;
    run r;
    s_begin(&r, "keep-reference", NULL, 2);
    size_t ref_len;
    char *ref = s_finish(&r, &ref_len);
    RF_CHECK_EQ_INT(*r.steps, CHUNK_STEPS);
    munmap(r.steps, sizeof(long));
    char full[600];
    rf_test_path(full, sizeof(full), "disk-full-keep");
    unlink(full);
    setenv("RF_INJECT_ENOSPC_FILE", full, 1);
    s_begin(&r, "keep", NULL, 100); /* 4 chunks at once, 0.8 s each */
    unsetenv("RF_INJECT_ENOSPC_FILE");
    s_spec = NULL;
    for (int i = 0; i < 1000 && *r.steps < 4; i++)
        usleep(5000);
    RF_CHECK_MSG(*r.steps >= 4 && *r.steps < CHUNK_STEPS, "%ld steps when the disk filled",
                 *r.steps);
    RF_CHECK(rf_test_write_file(full, "x", 1) == 0); /* full before any chunk ends */
    for (int i = 0; i < 500 && *r.steps < CHUNK_STEPS; i++)
        usleep(10000);
    RF_CHECK_EQ_INT(*r.steps, CHUNK_STEPS); /* every result went back while full */
    for (int i = 0; i < 300 && !rf_farm_log_has(&r.f, "dispatch paused"); i++)
        usleep(10000);
    RF_CHECK_MSG(rf_farm_log_has(&r.f, "dispatch paused"), "no pause (log %s)", r.f.log);
    usleep(1500000);
    unlink(full); /* space returns */
    size_t len;
    char *out = s_finish(&r, &len);
    fprintf(stderr, "# results on a full disk: %ld chunk-steps executed in all (minimum %d)\n",
            *r.steps, CHUNK_STEPS);
    RF_CHECK(rf_farm_log_has(&r.f, "result kept through the pause applied"));
    RF_CHECK_MSG(!rf_farm_log_has(&r.f, "requeued"), "a task was requeued (log %s)", r.f.log);
    RF_CHECK_MSG(*r.steps == CHUNK_STEPS,
                 "%ld DENOISE steps executed, %d needed: results were "
                 "computed again",
                 *r.steps, CHUNK_STEPS);
    RF_CHECK_EQ_INT(len, ref_len);
    RF_CHECK(memcmp(out, ref, len) == 0);
    free(out);
    free(ref);
    munmap(r.steps, sizeof(long));
}

/* ---- a restart re-plans the stored job, whatever changed meanwhile (issue #9) ------- */

/* Submitted, never started, then the model's default negative prompt, its decode warm-up
 * and the coordinator's segment length change: the job renders as submitted. */
RF_TEST(settings_changed_before_any_work_change_nothing)
{
    const char *ref = s_reference();
    run r;
    s_setup(&r, "changed-early", NULL);
    s_submit(&r); /* no worker yet: nothing is encoded, denoised or decoded */
    rf_farm_kill(&r.f);
    s_change_settings_and_restart(&r);
    s_start_workers(&r, "changed-early", 2);
    size_t len;
    char *out = s_finish(&r, &len);
    RF_CHECK(rf_farm_log_has(&r.f, "resumed after a coordinator restart"));
    RF_CHECK_EQ_INT(len, g_ref_len);
    RF_CHECK_MSG(len == g_ref_len && memcmp(out, ref, len) == 0,
                 "the film differs from the one submitted (log %s)", r.f.log);
    RF_CHECK_EQ_INT(*r.steps, CHUNK_STEPS);
    free(out);
    munmap(r.steps, sizeof(long));
}

/* The same changes while chunks are half denoised: the rest is denoised, decoded and
 * stitched as submitted, and no step runs twice. */
RF_TEST(settings_changed_mid_job_change_nothing)
{
    s_crash_test_changed("changed-mid", "before-commit", 12, 1);
}

/* The same changes while the film is half decoded: the stored segments still fit. */
RF_TEST(settings_changed_mid_decode_change_nothing)
{
    const char *ref = s_reference();
    run r;
    s_setup(&r, "changed-decode", NULL);
    static rf_fake_worker_opts o;
    memset(&o, 0, sizeof(o));
    o.endpoint = r.f.wep;
    o.name = "changed-decode-w";
    o.model_hash = r.f.model_hash;
    o.max_tasks = 4; /* 5 segments, 4 at a time, each held 0.5 s */
    o.hang_decode_ms = 500;
    o.steps_executed = r.steps;
    r.workers[0] = rf_fake_worker_spawn(&o);
    RF_CHECK(r.workers[0] > 0);
    s_submit(&r);
    int done = -1, total = 0;
    for (int i = 0; i < 3000 && (done < 1 || done >= total); i++) {
        rf_wire_msg rep;
        if (rf_farm_job_info(&r.f, r.job, &rep, 5000) == 0) {
            done = (int)rep.env->job_info->segments_done;
            total = (int)rep.env->job_info->segments_total;
            rf_wire_msg_release(&rep);
        }
        if (done >= total && total > 0)
            break;
        usleep(10000);
    }
    RF_CHECK_MSG(done >= 1 && done < total, "%d of %d segments decoded when the coordinator died",
                 done, total);
    rf_farm_kill(&r.f);
    long before = *r.steps;
    s_change_settings_and_restart(&r);
    size_t len;
    char *out = s_finish(&r, &len);
    fprintf(stderr,
            "# changed mid-decode: %d of %d segments and %ld chunk-steps done before the "
            "restart\n",
            done, total, before);
    RF_CHECK_EQ_INT(*r.steps, CHUNK_STEPS); /* nothing denoised again */
    RF_CHECK_MSG(len == g_ref_len && memcmp(out, ref, len) == 0,
                 "the film differs from the one submitted (log %s)", r.f.log);
    free(out);
    munmap(r.steps, sizeof(long));
}

/* A job stored by a build whose spec had no plan section still resumes: its plan inputs
 * are read as that build read them (model.json, --segment-frames), unchanged here. */
RF_TEST(a_job_stored_without_its_plan_inputs_still_resumes)
{
    const char *ref = s_reference();
    run r;
    s_begin(&r, "legacy", "before-commit:12", 15);
    int st = 0;
    pid_t got = s_wait_exit(&r, &st);
    RF_CHECK_MSG(got == r.f.pid, "the coordinator did not crash (log %s)", r.f.log);
    s_forget(&r.f);
    char db[700];
    snprintf(db, sizeof(db), "%s/state/state.db", r.f.dir);
    sqlite3 *h = NULL;
    RF_CHECK_EQ_INT(sqlite3_open(db, &h), SQLITE_OK);
    /* what the coordinator stored: the plan's inputs as they were at submit */
    sqlite3_stmt *q = NULL;
    RF_CHECK_EQ_INT(sqlite3_prepare_v2(h,
                                       "SELECT json_extract(spec, '$.plan.negative'), "
                                       "json_extract(spec, '$.plan.decode_warmup'), "
                                       "json_extract(spec, '$.plan.decode_segment') FROM jobs",
                                       -1, &q, NULL),
                    SQLITE_OK);
    RF_CHECK_EQ_INT(sqlite3_step(q), SQLITE_ROW);
    const char *neg = (const char *)sqlite3_column_text(q, 0);
    RF_CHECK_EQ_STR(neg ? neg : "(none)", "blurry");
    RF_CHECK_EQ_INT(sqlite3_column_int(q, 1), 1);
    RF_CHECK_EQ_INT(sqlite3_column_int(q, 2), 4);
    sqlite3_finalize(q);
    RF_CHECK_EQ_INT(
        sqlite3_exec(h, "UPDATE jobs SET spec = json_remove(spec, '$.plan')", NULL, NULL, NULL),
        SQLITE_OK);
    RF_CHECK_EQ_INT(sqlite3_changes(h), 1);
    sqlite3_close(h);
    long before = *r.steps;
    s_restart(&r);
    size_t len;
    char *out = s_finish(&r, &len);
    RF_CHECK(before < CHUNK_STEPS);
    RF_CHECK_EQ_INT(*r.steps, CHUNK_STEPS);
    RF_CHECK_MSG(len == g_ref_len && memcmp(out, ref, len) == 0,
                 "the film differs from the one submitted (log %s)", r.f.log);
    free(out);
    munmap(r.steps, sizeof(long));
}
