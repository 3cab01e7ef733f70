/* test_store.c - the coordinator's durable state survives a reopen, and only commits do. */
#include "atomic_file.h"
#include "coordinator/store.h"
#include "rf_test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static rf_store *s_open(const char *name)
{
    char dir[512];
    rf_test_path(dir, sizeof(dir), name);
    rf_error err;
    rf_store *st = rf_store_open(dir, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    return st;
}

static int s_count_job(void *ctx, const rf_store_job *j)
{
    (void)j;
    ++*(int *)ctx;
    return 0;
}

RF_TEST(jobs_survive_reopen_only_when_committed)
{
    rf_store *st = s_open("s1");
    rf_store_job j = {0};
    snprintf(j.id, sizeof(j.id), "job-1");
    j.name = "film";
    j.spec = "name: film\n";
    j.state = 1;
    j.priority = 5;
    j.submitted_ms = 1234;
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0); /* idempotent within a turn */
    RF_CHECK_EQ_INT(rf_store_job_put(st, &j, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    snprintf(j.id, sizeof(j.id), "job-2");
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_job_put(st, &j, NULL), 0);
    rf_store_destroy(&st); /* crash before commit: job-2 is lost */
    RF_CHECK(st == NULL);

    st = s_open("s1");
    rf_store_job got;
    RF_CHECK_EQ_INT(rf_store_job_get(st, "job-1", &got, NULL), 0);
    RF_CHECK_EQ_STR(got.name, "film");
    RF_CHECK_EQ_STR(got.spec, "name: film\n");
    RF_CHECK_EQ_INT(got.priority, 5);
    RF_CHECK_EQ_INT(got.submitted_ms, 1234);
    rf_store_job_clear(&got);
    rf_error err;
    RF_CHECK_EQ_INT(rf_store_job_get(st, "job-2", &got, &err), RF_ENOTFOUND);
    int n = 0;
    RF_CHECK_EQ_INT(rf_store_job_each(st, s_count_job, &n, NULL), 0);
    RF_CHECK_EQ_INT(n, 1);
    rf_store_destroy(&st);
}

typedef struct {
    char ids[8][RF_STORE_ID_MAX];
    int n;
} s_ids;

static int s_collect(void *ctx, const rf_store_job *j)
{
    s_ids *ids = ctx;
    if (ids->n < 8)
        snprintf(ids->ids[ids->n], sizeof(ids->ids[0]), "%s", j->id);
    ids->n++;
    return 0;
}

/* Jobs job-0..job-11, state (i % 5) + 1 (queued, running, done, failed, canceled, ...). */
static void s_put_states(rf_store *st)
{
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    for (int i = 0; i < 12; i++) {
        rf_store_job j = {0};
        snprintf(j.id, sizeof(j.id), "job-%d", i);
        j.spec = "name: film\n";
        j.state = i % 5 + 1;
        RF_CHECK_EQ_INT(rf_store_job_put(st, &j, NULL), 0);
    }
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
}

/* What `reelctl jobs --state` asks of the store: newest first within the states asked,
 * the limit applied after the filter, every match counted. */
static void s_check_by_state(rf_store *st)
{
    s_ids ids = {0};
    uint64_t matched = 0;
    /* done (3): jobs 2 and 7 */
    RF_CHECK_EQ_INT(rf_store_job_newest(st, 1u << 3, 50, s_collect, &ids, &matched, NULL), 0);
    RF_CHECK_EQ_INT(ids.n, 2);
    RF_CHECK_EQ_STR(ids.ids[0], "job-7");
    RF_CHECK_EQ_STR(ids.ids[1], "job-2");
    RF_CHECK_EQ_INT((int)matched, 2);
    /* queued (1) or canceled (5): 0, 4, 5, 9, 10; the newest three, merged across states */
    memset(&ids, 0, sizeof(ids));
    RF_CHECK_EQ_INT(
        rf_store_job_newest(st, (1u << 1) | (1u << 5), 3, s_collect, &ids, &matched, NULL), 0);
    RF_CHECK_EQ_INT(ids.n, 3);
    RF_CHECK_EQ_STR(ids.ids[0], "job-10");
    RF_CHECK_EQ_STR(ids.ids[1], "job-9");
    RF_CHECK_EQ_STR(ids.ids[2], "job-5");
    RF_CHECK_EQ_INT((int)matched, 5);
    /* every state (mask 0) */
    memset(&ids, 0, sizeof(ids));
    RF_CHECK_EQ_INT(rf_store_job_newest(st, 0, 2, s_collect, &ids, &matched, NULL), 0);
    RF_CHECK_EQ_INT(ids.n, 2);
    RF_CHECK_EQ_STR(ids.ids[0], "job-11");
    RF_CHECK_EQ_INT((int)matched, 12);
    /* a state no job has, and only states that do not exist (bits 8..31) */
    memset(&ids, 0, sizeof(ids));
    RF_CHECK_EQ_INT(rf_store_job_newest(st, 1u << 0, 50, s_collect, &ids, &matched, NULL), 0);
    RF_CHECK_EQ_INT(ids.n, 0);
    RF_CHECK_EQ_INT((int)matched, 0);
    RF_CHECK_EQ_INT(rf_store_job_newest(st, 0xffffff00u, 50, s_collect, &ids, &matched, NULL), 0);
    RF_CHECK_EQ_INT(ids.n, 0);
    RF_CHECK_EQ_INT((int)matched, 0);
    /* a job changing state moves between the lists */
    rf_store_job j = {0};
    snprintf(j.id, sizeof(j.id), "job-0");
    j.spec = "name: film\n";
    j.state = 3;
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_job_put(st, &j, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    memset(&ids, 0, sizeof(ids));
    RF_CHECK_EQ_INT(rf_store_job_newest(st, 1u << 3, 50, s_collect, &ids, &matched, NULL), 0);
    RF_CHECK_EQ_INT(ids.n, 3);
    RF_CHECK_EQ_INT((int)matched, 3);
    memset(&ids, 0, sizeof(ids));
    RF_CHECK_EQ_INT(rf_store_job_newest(st, 1u << 1, 50, s_collect, &ids, &matched, NULL), 0);
    RF_CHECK_EQ_INT((int)matched, 2);
}

/* The plan SQLite picks for a count by state: the (state, seq) index, not a scan. */
static void s_check_state_index(const char *name)
{
    char path[600];
    rf_test_path(path, sizeof(path), name);
    strncat(path, "/state.db", sizeof(path) - strlen(path) - 1);
    sqlite3 *db;
    RF_CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    RF_CHECK_EQ_INT(sqlite3_prepare_v2(db,
                                       "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM jobs"
                                       " WHERE state IN (1, 5)",
                                       -1, &q, NULL),
                    SQLITE_OK);
    int uses = 0;
    while (sqlite3_step(q) == SQLITE_ROW)
        uses |= strstr((const char *)sqlite3_column_text(q, 3), "jobs_state") != NULL;
    sqlite3_finalize(q);
    sqlite3_close(db);
    RF_CHECK_MSG(uses, "the count by state does not use the jobs_state index in %s", path);
}

RF_TEST(jobs_by_state_fresh_and_upgraded)
{
    rf_store *st = s_open("s_fresh");
    s_put_states(st);
    s_check_by_state(st);
    rf_store_destroy(&st);
    s_check_state_index("s_fresh");

    /* a state dir of schema 6 (before the index): written, then upgraded by the open */
    st = s_open("s_old");
    s_put_states(st);
    rf_store_destroy(&st);
    char path[600];
    rf_test_path(path, sizeof(path), "s_old/state.db");
    sqlite3 *db;
    RF_CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    RF_CHECK_EQ_INT(
        sqlite3_exec(db, "DROP INDEX jobs_state; PRAGMA user_version=6;", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    st = s_open("s_old");
    s_check_by_state(st);
    rf_store_destroy(&st);
    s_check_state_index("s_old");
}

RF_TEST(counters_are_persistent_and_monotonic)
{
    rf_store *st = s_open("s2");
    uint64_t a, b, c;
    RF_CHECK_EQ_INT(rf_store_next(st, "attempt", &a, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_next(st, "attempt", &b, NULL), 0);
    RF_CHECK_EQ_INT(a, 1);
    RF_CHECK_EQ_INT(b, 2);
    rf_store_destroy(&st);
    st = s_open("s2");
    RF_CHECK_EQ_INT(rf_store_next(st, "attempt", &c, NULL), 0);
    RF_CHECK_EQ_INT(c, 3);
    RF_CHECK_EQ_INT(rf_store_next(st, "job", &c, NULL), 0);
    RF_CHECK_EQ_INT(c, 1);
    rf_store_destroy(&st);
}

static int s_task_cb(void *ctx, const rf_store_task *t)
{
    rf_store_task *out = ctx;
    *out = *t;
    out->failed_workers = t->failed_workers ? strdup(t->failed_workers) : NULL;
    out->error = t->error ? strdup(t->error) : NULL;
    return 0;
}

RF_TEST(tasks_round_trip)
{
    rf_store *st = s_open("s3");
    rf_store_task t = {0};
    snprintf(t.id, sizeof(t.id), "job-1/denoise/0");
    snprintf(t.job_id, sizeof(t.job_id), "job-1");
    t.kind = 3;
    t.unit = 2;
    t.step_begin = 4;
    t.step_end = 8;
    t.state = 2;
    t.attempt = 77;
    snprintf(t.worker, sizeof(t.worker), "w1");
    t.lease_deadline_ms = 99999;
    t.failures = 1;
    t.failed_workers = "w0";
    t.error = "out of memory on w0";
    RF_CHECK_EQ_INT(rf_store_task_put(st, &t, NULL), 0);
    rf_store_task got = {0};
    RF_CHECK_EQ_INT(rf_store_task_each(st, "job-1", s_task_cb, &got, NULL), 0);
    RF_CHECK_EQ_STR(got.id, "job-1/denoise/0");
    RF_CHECK_EQ_INT(got.attempt, 77);
    RF_CHECK_EQ_INT(got.step_end, 8);
    RF_CHECK_EQ_STR(got.worker, "w1");
    RF_CHECK_EQ_STR(got.failed_workers, "w0");
    RF_CHECK_EQ_STR(got.error, "out of memory on w0");
    rf_store_task_clear(&got);
    t.attempt = 78;
    t.failed_workers = NULL;
    RF_CHECK_EQ_INT(rf_store_task_put(st, &t, NULL), 0); /* replace */
    RF_CHECK_EQ_INT(rf_store_task_get(st, t.id, &got, NULL), 0);
    RF_CHECK_EQ_INT(got.attempt, 78);
    RF_CHECK(got.failed_workers == NULL);
    rf_store_task_clear(&got);
    /* an insert (a submitted job's rows) is refused for an id that has a row: unchanged */
    t.attempt = 5;
    rf_error err;
    RF_CHECK(rf_store_task_insert(st, &t, &err) != 0);
    RF_CHECK_EQ_INT(rf_store_task_get(st, t.id, &got, NULL), 0);
    RF_CHECK_EQ_INT(got.attempt, 78);
    rf_store_task_clear(&got);
    /* a new id is inserted and reads back */
    snprintf(t.id, sizeof(t.id), "job-1/denoise/1");
    t.unit = 3;
    RF_CHECK_EQ_INT(rf_store_task_insert(st, &t, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_task_get(st, t.id, &got, NULL), 0);
    RF_CHECK_EQ_INT(got.attempt, 5);
    RF_CHECK_EQ_INT(got.unit, 3);
    /* its rowid: known from the insert and read back; a put finds the row by it */
    RF_CHECK(t.rowid > 0);
    RF_CHECK_EQ_INT(got.rowid, t.rowid);
    rf_store_task_clear(&got);
    int64_t second = t.rowid;
    t.attempt = 6;
    RF_CHECK_EQ_INT(rf_store_task_put(st, &t, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_task_get(st, t.id, &got, NULL), 0);
    RF_CHECK_EQ_INT(got.attempt, 6);
    rf_store_task_clear(&got);
    /* a rowid that names another task's row (stale: e.g. an insert rolled back and the rowid
     * reused) writes the task's own row by its id and leaves the other one alone */
    snprintf(t.id, sizeof(t.id), "job-1/denoise/0");
    t.rowid = second;
    t.attempt = 79;
    RF_CHECK_EQ_INT(rf_store_task_put(st, &t, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_task_get(st, "job-1/denoise/0", &got, NULL), 0);
    RF_CHECK_EQ_INT(got.attempt, 79);
    RF_CHECK(got.rowid != second);
    rf_store_task_clear(&got);
    RF_CHECK_EQ_INT(rf_store_task_get(st, "job-1/denoise/1", &got, NULL), 0);
    RF_CHECK_EQ_INT(got.attempt, 6);
    RF_CHECK_EQ_INT(got.unit, 3);
    rf_store_task_clear(&got);
    rf_store_destroy(&st);
}

static int s_round_cb(void *ctx, int timeline, int round, const char *hex)
{
    (void)hex;
    int *rounds = ctx;
    if (timeline != 0)
        return 0;
    rounds[rounds[0] + 1] = round;
    rounds[0]++;
    return 0;
}

RF_TEST(rounds_kept_until_pruned)
{
    rf_store *st = s_open("s4");
    char hex[RF_HASH_HEX];
    RF_CHECK_EQ_INT(rf_store_blob_put(st, "fused", 5, "job-1", hex, NULL), 0);
    for (int r = 0; r < 6; r++)
        RF_CHECK_EQ_INT(rf_store_round_put(st, "job-1", 0, r, hex, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_round_put(st, "job-1", 1, 2, hex, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_round_prune(st, "job-1", 0, 4, NULL), 0);
    int rounds[16] = {0};
    RF_CHECK_EQ_INT(rf_store_round_each(st, "job-1", 0, 0, s_round_cb, rounds, NULL), 0);
    RF_CHECK_EQ_INT(rounds[0], 2);
    RF_CHECK_EQ_INT(rounds[1], 4);
    RF_CHECK_EQ_INT(rounds[2], 5);
    int all[16] = {0}; /* timeline 1 keeps its round 2: timelines prune independently */
    RF_CHECK_EQ_INT(rf_store_round_each(st, "job-1", 1, 0, s_round_cb, all, NULL), 0);
    RF_CHECK_EQ_INT(all[0], 0);
    rf_store_chunk c = {0};
    snprintf(c.job_id, sizeof(c.job_id), "job-1");
    c.index = 3;
    c.step = 10;
    snprintf(c.checkpoint, sizeof(c.checkpoint), "%s", hex);
    RF_CHECK_EQ_INT(rf_store_chunk_put(st, &c, NULL), 0);
    rf_store_destroy(&st);
}

static int s_event_cb(void *ctx, uint64_t seq, int64_t t, const char *level, const char *text)
{
    (void)seq;
    (void)t;
    (void)level;
    char *buf = ctx;
    strcat(buf, text);
    strcat(buf, ";");
    return 0;
}

RF_TEST(events_in_order_with_since_and_limit)
{
    rf_store *st = s_open("s5");
    RF_CHECK_EQ_INT(rf_store_event_add(st, "j", 10, "info", "queued", NULL, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_event_add(st, "j", 20, "info", "running", NULL, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_event_add(st, "j", 30, "warn", "worker lost", NULL, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_event_add(st, "k", 30, "info", "other job", NULL, NULL), 0);
    char buf[256] = "";
    RF_CHECK_EQ_INT(rf_store_event_each(st, "j", 15, 0, s_event_cb, buf, NULL), 0);
    RF_CHECK_EQ_STR(buf, "running;worker lost;");
    buf[0] = '\0';
    RF_CHECK_EQ_INT(rf_store_event_each(st, "j", 0, 1, s_event_cb, buf, NULL), 0);
    RF_CHECK_EQ_STR(buf, "queued;");
    rf_store_destroy(&st);
}

RF_TEST(blobs_are_content_addressed_and_verified)
{
    rf_store *st = s_open("s6");
    char a[RF_HASH_HEX], b[RF_HASH_HEX];
    RF_CHECK_EQ_INT(rf_store_blob_put(st, "hello", 5, "j", a, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put(st, "hello", 5, "k", b, NULL), 0);
    RF_CHECK_EQ_STR(a, b);
    void *data;
    size_t len;
    RF_CHECK_EQ_INT(rf_store_blob_get(st, a, &data, &len, NULL), 0);
    RF_CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
    free(data);
    char path[1024];
    RF_CHECK_EQ_INT(rf_store_blob_path(st, a, path, sizeof(path)), 0);
    RF_CHECK_EQ_INT(rf_test_write_file(path, "jello", 5), 0); /* bit rot */
    rf_error err;
    RF_CHECK_EQ_INT(rf_store_blob_get(st, a, &data, &len, &err), RF_EIO);
    RF_CHECK_CONTAINS(err.msg, "corrupt");
    RF_CHECK_EQ_INT(rf_store_blob_get(st, "zz", &data, &len, &err), RF_EINVAL);
    rf_store_destroy(&st);
}

/* Two jobs the pack tests hang blobs on: "old" (done at 100 ms, collectable) and "live". */
static void s_old_and_live_jobs(rf_store *st)
{
    rf_store_job j = {0};
    snprintf(j.id, sizeof(j.id), "old");
    j.state = 3; /* done */
    j.finished_ms = 100;
    RF_CHECK_EQ_INT(rf_store_job_put(st, &j, NULL), 0);
    snprintf(j.id, sizeof(j.id), "live");
    j.state = 2;
    j.finished_ms = 0;
    RF_CHECK_EQ_INT(rf_store_job_put(st, &j, NULL), 0);
}

/* Packed blobs: readable inside their transaction, gone with a rollback, durable with a
 * commit (also after a reopen), verified, deduplicated, and their pack collected once no
 * live job's blob is in it. */
RF_TEST(packed_blobs_commit_with_their_transaction)
{
    rf_store *st = s_open("s8");
    s_old_and_live_jobs(st);
    char a[RF_HASH_HEX], b[RF_HASH_HEX], c[RF_HASH_HEX], d[RF_HASH_HEX], path[1024];
    void *data;
    size_t len;
    /* rolled back: the bytes are gone, no pack file stays */
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_packed(st, "never", 5, "old", a, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_get(st, a, &data, &len, NULL), 0); /* same transaction */
    RF_CHECK(len == 5 && memcmp(data, "never", 5) == 0);
    free(data);
    rf_store_rollback(st);
    RF_CHECK_EQ_INT(rf_store_blob_get(st, a, &data, &len, NULL), RF_ENOTFOUND);
    /* committed: two jobs' blobs in one pack (and one blob shared by both) */
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_packed(st, "old only", 8, "old", a, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_packed(st, "shared", 6, "old", b, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_packed(st, "shared", 6, "live", c, NULL), 0);
    RF_CHECK_EQ_STR(b, c);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_path(st, a, path, sizeof(path)), 0);
    struct stat sb;
    RF_CHECK(stat(path, &sb) != 0); /* no file of its own */
    /* a restart, then a transaction: a new pack, only the old job's */
    rf_store_destroy(&st);
    st = s_open("s8");
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_packed(st, "old again", 9, "old", d, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    rf_store_destroy(&st);
    st = s_open("s8");
    RF_CHECK_EQ_INT(rf_store_blob_get(st, a, &data, &len, NULL), 0);
    RF_CHECK(len == 8 && memcmp(data, "old only", 8) == 0);
    free(data);
    char dir[512];
    rf_test_path(dir, sizeof(dir), "s8");
    snprintf(path, sizeof(path), "%s/blobs/packs/2", dir);
    RF_CHECK(stat(path, &sb) == 0);
    int removed = -1;
    RF_CHECK_EQ_INT(rf_store_blob_gc(st, 1000, &removed, NULL), 0);
    RF_CHECK_EQ_INT(removed, 2);    /* "old only" and "old again"; "shared" stays */
    RF_CHECK(stat(path, &sb) != 0); /* pack 2 held only the old job's blob */
    snprintf(path, sizeof(path), "%s/blobs/packs/1", dir);
    RF_CHECK(stat(path, &sb) == 0); /* pack 1 still holds "shared" */
    RF_CHECK_EQ_INT(rf_store_blob_get(st, a, &data, &len, NULL), RF_ENOTFOUND);
    RF_CHECK_EQ_INT(rf_store_blob_get(st, b, &data, &len, NULL), 0);
    RF_CHECK(len == 6 && memcmp(data, "shared", 6) == 0);
    free(data);
    /* bit rot inside the pack is caught */
    FILE *f = fopen(path, "r+b");
    RF_CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    for (long i = 0; f && i < size; i++) {
        fseek(f, i, SEEK_SET);
        fputc('x', f);
    }
    if (f)
        fclose(f);
    rf_error err;
    RF_CHECK_EQ_INT(rf_store_blob_get(st, b, &data, &len, &err), RF_EIO);
    RF_CHECK_CONTAINS(err.msg, "corrupt");
    rf_store_destroy(&st);
}

static int s_exists(const char *dir, const char *rel)
{
    char path[1024];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return stat(path, &sb) == 0;
}

/* Row-less blobs (a chunk's result named by its task row): read back through their
 * reference, gone with a rolled-back transaction, their pack kept while any job with a
 * blob in it is not collected, removed when the last such job is; hostile references are
 * refused, corrupt bytes caught. */
RF_TEST(blob_refs_live_in_packs_while_a_job_needs_them)
{
    rf_store *st = s_open("s9");
    char dir[512];
    rf_test_path(dir, sizeof(dir), "s9");
    s_old_and_live_jobs(st);
    char r0[RF_STORE_REF_MAX], r1[RF_STORE_REF_MAX], r2[RF_STORE_REF_MAX], r3[RF_STORE_REF_MAX],
        r4[RF_STORE_REF_MAX], loose[RF_STORE_REF_MAX], h[RF_HASH_HEX];
    void *data;
    size_t len;
    rf_error err;
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "never", 5, "old", r0, NULL), 0);
    RF_CHECK(strchr(r0, '@') != NULL);
    RF_CHECK_EQ_INT(rf_store_blob_get(st, r0, &data, &len, NULL), 0); /* same transaction */
    RF_CHECK(len == 5 && memcmp(data, "never", 5) == 0);
    free(data);
    rf_store_rollback(st);
    RF_CHECK(!s_exists(dir, "blobs/packs/1"));
    RF_CHECK(rf_store_blob_get(st, r0, &data, &len, NULL) != 0);
    /* pack 1: both jobs (and a blob row of the old one); pack 2: the old job only */
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "old one", 7, "old", r1, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "live one", 8, "live", r2, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "old one", 7, "old", r3, NULL), 0);
    RF_CHECK(strcmp(r1, r3) != 0); /* not shared: another place */
    RF_CHECK_EQ_INT(rf_store_blob_put_packed(st, "row", 3, "old", h, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    rf_store_destroy(&st); /* a restart: the next transaction starts a new pack */
    st = s_open("s9");
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "old two", 7, "old", r4, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "outside", 7, "live", loose, NULL), 0);
    RF_CHECK(strchr(loose, '@') == NULL); /* no transaction: a file of its own */
    rf_store_destroy(&st);
    st = s_open("s9");
    const char *refs[] = {r1, r2, r3, r4, loose};
    const char *want[] = {"old one", "live one", "old one", "old two", "outside"};
    for (int i = 0; i < 5; i++) {
        RF_CHECK_MSG(rf_store_blob_get(st, refs[i], &data, &len, &err) == 0, "%s", err.msg);
        RF_CHECK(len == strlen(want[i]) && memcmp(data, want[i], len) == 0);
        free(data);
    }
    RF_CHECK(s_exists(dir, "blobs/packs/1") && s_exists(dir, "blobs/packs/2"));
    int removed = -1;
    RF_CHECK_EQ_INT(rf_store_blob_gc(st, 1000, &removed, NULL), 0);
    RF_CHECK(!s_exists(dir, "blobs/packs/2")); /* only the old job's */
    RF_CHECK(s_exists(dir, "blobs/packs/1"));  /* the live job's result is in it */
    RF_CHECK_EQ_INT(rf_store_blob_get(st, r2, &data, &len, NULL), 0);
    free(data);
    RF_CHECK(rf_store_blob_get(st, r4, &data, &len, NULL) != 0);
    /* the live job finishes and is collected: its pack goes */
    rf_store_job j = {0};
    snprintf(j.id, sizeof(j.id), "live");
    j.state = 3;
    j.finished_ms = 200;
    RF_CHECK_EQ_INT(rf_store_job_put(st, &j, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_gc(st, 1000, &removed, NULL), 0);
    RF_CHECK(!s_exists(dir, "blobs/packs/1"));
    /* hostile references */
    char bad[RF_STORE_REF_MAX * 2];
    const char *hostile[] = {"@", "zz@1+0+5", "abc@1+0+5"};
    for (int i = 0; i < 3; i++) {
        RF_CHECK_EQ_INT(rf_store_blob_get(st, hostile[i], &data, &len, &err), RF_EINVAL);
        RF_CHECK_CONTAINS(err.msg, "not a blob");
    }
    char hex[RF_HASH_HEX];
    memcpy(hex, r2, RF_HASH_HEX - 1);
    hex[RF_HASH_HEX - 1] = 0;
    snprintf(bad, sizeof(bad), "%s@1+0+5x", hex);
    RF_CHECK_EQ_INT(rf_store_blob_get(st, bad, &data, &len, &err), RF_EINVAL);
    snprintf(bad, sizeof(bad), "%s@1+0+99999999999", hex);
    RF_CHECK_EQ_INT(rf_store_blob_get(st, bad, &data, &len, &err), RF_EINVAL);
    snprintf(bad, sizeof(bad), "%s@99+0+5", hex);
    RF_CHECK(rf_store_blob_get(st, bad, &data, &len, &err) != 0); /* no such pack */
    /* bit rot: a reference to bytes that do not hash to its name */
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "abcdef", 6, "x", r1, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    char *at = strchr(r1, '@');
    RF_CHECK(at != NULL);
    if (at) {
        snprintf(bad, sizeof(bad), "%.*s%s", (int)(at - r1), r1, "@3+1+5");
        RF_CHECK_EQ_INT(rf_store_blob_get(st, bad, &data, &len, &err), RF_EIO);
        RF_CHECK_CONTAINS(err.msg, "corrupt");
    }
    rf_store_destroy(&st);
}

/* n bytes that differ from blob to blob (seed) and along the blob. */
static unsigned char *s_pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (unsigned char)(i * 31u + seed * 7u + (i >> 9));
    return p;
}

static int s_ref_is(rf_store *st, const char *ref, const unsigned char *want, size_t n)
{
    void *data = NULL;
    size_t len = 0;
    rf_error err;
    int rc = rf_store_blob_get(st, ref, &data, &len, &err);
    int ok = rc == 0 && len == n && memcmp(data, want, n) == 0;
    if (rc)
        fprintf(stderr, "# %s\n", err.msg);
    free(data);
    return ok;
}

/* A transaction's pack bigger than what is gathered in memory: written in parts, every
 * blob readable inside the transaction (from the temp file or from memory) and after a
 * commit and a reopen; a blob of the largest packed size too. */
RF_TEST(a_pack_bigger_than_its_buffer_is_written_in_parts)
{
    rf_store *st = s_open("s10");
    char dir[512], path[1024];
    rf_test_path(dir, sizeof(dir), "s10");
    enum { N = 6, SZ = 300 << 10 };
    unsigned char *blob[N];
    char ref[N][RF_STORE_REF_MAX];
    size_t size[N];
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    for (int i = 0; i < N; i++) {
        size[i] = i == N - 1 ? (size_t)1 << 20 : (size_t)SZ + (size_t)i; /* last: 1 MiB */
        blob[i] = s_pattern(size[i], (unsigned)i);
        RF_CHECK(blob[i] != NULL);
        RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, blob[i], size[i], "j", ref[i], NULL), 0);
        RF_CHECK_MSG(strchr(ref[i], '@') != NULL, "blob %d not packed: %s", i, ref[i]);
        for (int k = 0; k <= i; k++) /* same transaction: every blob put so far */
            RF_CHECK_MSG(s_ref_is(st, ref[k], blob[k], size[k]), "blob %d after %d puts", k, i + 1);
    }
    struct stat sb;
    snprintf(path, sizeof(path), "%s/blobs/packs/1", dir);
    RF_CHECK(stat(path, &sb) == 0 && sb.st_size > 0); /* in parts: some bytes already out */
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    RF_CHECK(stat(path, &sb) == 0);
    RF_CHECK_EQ_INT(sb.st_size, 5 * SZ + 0 + 1 + 2 + 3 + 4 + (1 << 20));
    rf_store_destroy(&st);
    st = s_open("s10");
    for (int i = 0; i < N; i++) {
        RF_CHECK_MSG(s_ref_is(st, ref[i], blob[i], size[i]), "blob %d after a reopen", i);
        free(blob[i]);
    }
    rf_store_destroy(&st);
}

/* A pack that cannot be written (a full disk) fails its transaction's commit, whether the
 * failure comes at the commit or half-way through the transaction: no row of it is
 * committed, no pack file or temp file stays, and the next transaction works. */
RF_TEST(a_pack_that_cannot_be_written_fails_its_commit)
{
    rf_store *st = s_open("s11");
    char dir[512];
    rf_test_path(dir, sizeof(dir), "s11");
    rf_store_task t = {0};
    snprintf(t.id, sizeof(t.id), "j/denoise/0");
    snprintf(t.job_id, sizeof(t.job_id), "j");
    char r1[RF_STORE_REF_MAX], r2[RF_STORE_REF_MAX];
    rf_error err;
    /* at the commit: the puts were only gathered */
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "first", 5, "j", r1, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "second", 6, "j", t.result, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_task_put(st, &t, NULL), 0);
    rf_atomic_file_inject_enospc(4);
    RF_CHECK_EQ_INT(rf_store_commit(st, &err), RF_ENOSPC);
    rf_atomic_file_inject_enospc(-1);
    RF_CHECK_CONTAINS(err.msg, "disk full");
    RF_CHECK(!rf_store_in_tx(st));
    rf_store_task got;
    RF_CHECK_EQ_INT(rf_store_task_get(st, t.id, &got, NULL), RF_ENOTFOUND);
    void *data;
    size_t len;
    RF_CHECK(rf_store_blob_get(st, r1, &data, &len, NULL) != 0);
    RF_CHECK(!s_exists(dir, "blobs/packs/1"));
    /* half-way: the put that needs the gathered bytes written fails, and so does the commit */
    size_t big = 700 << 10;
    unsigned char *a = s_pattern(big, 1), *b = s_pattern(big, 2);
    RF_CHECK(a && b);
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_task_put(st, &t, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, a, big, "j", r1, NULL), 0);
    rf_atomic_file_inject_enospc(1000);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, b, big, "j", r2, &err), RF_ENOSPC);
    rf_atomic_file_inject_enospc(-1);
    RF_CHECK(s_ref_is(st, r1, a, big)); /* readable until the rollback */
    RF_CHECK(rf_store_commit(st, &err) != 0);
    RF_CHECK_EQ_INT(rf_store_task_get(st, t.id, &got, NULL), RF_ENOTFOUND);
    RF_CHECK(!s_exists(dir, "blobs/packs/1"));
    /* space returns */
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, b, big, "j", r2, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    rf_store_destroy(&st);
    st = s_open("s11");
    RF_CHECK(s_ref_is(st, r2, b, big));
    free(a);
    free(b);
    rf_store_destroy(&st);
}

/* The pack named by a reference ("HASH@PACK+OFFSET+LENGTH"): PACK and OFFSET. */
static void s_ref_place(const char *ref, unsigned long long *pack, unsigned long long *off)
{
    const char *at = strchr(ref, '@');
    *pack = *off = 0;
    RF_CHECK(at && sscanf(at + 1, "%llu+%llu", pack, off) == 2);
}

/* One pack takes transaction after transaction, each appended where the last committed one
 * ended (a rolled-back one's bytes are overwritten); a new pack is started after a restart,
 * after a pack could not be written, and once a pack passed 16 MiB. Every committed blob
 * reads back after a reopen. */
RF_TEST(a_pack_takes_transactions_until_a_restart_a_failure_or_16_mib)
{
    rf_store *st = s_open("s12");
    const char *text[] = {"first", "second", "rolled back", "fourth", "refused", "sixth"};
    char ref[6][RF_STORE_REF_MAX];
    unsigned long long pack[6], off[6];
    rf_error err;
    for (int i = 0; i < 6; i++) {
        RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
        RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, text[i], strlen(text[i]), "j", ref[i], NULL), 0);
        s_ref_place(ref[i], &pack[i], &off[i]);
        if (i == 2) {
            rf_store_rollback(st);
        } else if (i == 4) {
            rf_atomic_file_inject_enospc(0);
            RF_CHECK_EQ_INT(rf_store_commit(st, &err), RF_ENOSPC);
            rf_atomic_file_inject_enospc(-1);
        } else {
            RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
        }
    }
    RF_CHECK(pack[0] == 1 && off[0] == 0);
    RF_CHECK(pack[1] == 1 && off[1] == 5);
    RF_CHECK(pack[2] == 1 && off[2] == 11);
    RF_CHECK(pack[3] == 1 && off[3] == 11); /* over the rolled-back bytes */
    RF_CHECK(pack[4] == 1 && off[4] == 17);
    RF_CHECK(pack[5] == 2 && off[5] == 0); /* pack 1 could not be written: left */
    /* 16 blobs of 1 MiB: pack 2 passes 16 MiB; the transaction after goes to pack 3 */
    size_t mib = (size_t)1 << 20;
    unsigned char *big = s_pattern(mib, 7);
    RF_CHECK(big != NULL);
    char bref[RF_STORE_REF_MAX], after[RF_STORE_REF_MAX];
    unsigned long long p, o;
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    for (int i = 0; i < 16 && big; i++) {
        big[0] = (unsigned char)i;
        RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, big, mib, "j", bref, NULL), 0);
    }
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    s_ref_place(bref, &p, &o);
    RF_CHECK(p == 2 && o == strlen(text[5]) + 15 * (unsigned long long)mib);
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "after", 5, "j", after, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    s_ref_place(after, &p, &o);
    RF_CHECK(p == 3 && o == 0);
    /* a restart: a new pack */
    rf_store_destroy(&st);
    st = s_open("s12");
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    char fresh[RF_STORE_REF_MAX];
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "fresh", 5, "j", fresh, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    s_ref_place(fresh, &p, &o);
    RF_CHECK(p == 4 && o == 0);
    for (int i = 0; i < 6; i++)
        if (i != 2 && i != 4)
            RF_CHECK_MSG(s_ref_is(st, ref[i], (const unsigned char *)text[i], strlen(text[i])),
                         "blob %d", i);
    RF_CHECK(s_ref_is(st, after, (const unsigned char *)"after", 5));
    if (big) {
        big[0] = 15;
        RF_CHECK(s_ref_is(st, bref, big, mib));
    }
    free(big);
    rf_store_destroy(&st);
}

/* The collector removes the open pack once no row names it; the next blobs go to a new
 * pack, not to the removed file. */
RF_TEST(a_collected_open_pack_is_not_written_again)
{
    rf_store *st = s_open("s13");
    char dir[512];
    rf_test_path(dir, sizeof(dir), "s13");
    s_old_and_live_jobs(st);
    char r1[RF_STORE_REF_MAX], r2[RF_STORE_REF_MAX];
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "old", 3, "old", r1, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    int removed = -1;
    RF_CHECK_EQ_INT(rf_store_blob_gc(st, 1000, &removed, NULL), 0);
    RF_CHECK_EQ_INT(removed, 1);
    RF_CHECK(!s_exists(dir, "blobs/packs/1"));
    RF_CHECK_EQ_INT(rf_store_begin(st, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put_ref(st, "live", 4, "live", r2, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_commit(st, NULL), 0);
    unsigned long long p, o;
    s_ref_place(r2, &p, &o);
    RF_CHECK(p == 2 && o == 0);
    rf_store_destroy(&st);
    st = s_open("s13");
    RF_CHECK(s_ref_is(st, r2, (const unsigned char *)"live", 4));
    rf_store_destroy(&st);
}

RF_TEST(gc_removes_blobs_of_old_finished_jobs_only)
{
    rf_store *st = s_open("s7");
    rf_store_job j = {0};
    snprintf(j.id, sizeof(j.id), "old");
    j.state = 3; /* done */
    j.finished_ms = 100;
    RF_CHECK_EQ_INT(rf_store_job_put(st, &j, NULL), 0);
    snprintf(j.id, sizeof(j.id), "live");
    j.state = 2; /* running */
    j.finished_ms = 0;
    RF_CHECK_EQ_INT(rf_store_job_put(st, &j, NULL), 0);
    char only_old[RF_HASH_HEX], shared[RF_HASH_HEX], live[RF_HASH_HEX];
    RF_CHECK_EQ_INT(rf_store_blob_put(st, "only old", 8, "old", only_old, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put(st, "shared", 6, "old", shared, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put(st, "shared", 6, "live", shared, NULL), 0);
    RF_CHECK_EQ_INT(rf_store_blob_put(st, "live", 4, "live", live, NULL), 0);
    int removed = -1;
    RF_CHECK_EQ_INT(rf_store_blob_gc(st, 1000, &removed, NULL), 0);
    RF_CHECK_EQ_INT(removed, 1);
    void *data;
    size_t len;
    RF_CHECK_EQ_INT(rf_store_blob_get(st, only_old, &data, &len, NULL), RF_ENOTFOUND);
    RF_CHECK_EQ_INT(rf_store_blob_get(st, shared, &data, &len, NULL), 0);
    free(data);
    RF_CHECK_EQ_INT(rf_store_blob_get(st, live, &data, &len, NULL), 0);
    free(data);
    rf_store_destroy(&st);
}

RF_TEST(text_cache)
{
    rf_store *st = s_open("s8");
    char hex[RF_HASH_HEX];
    RF_CHECK_EQ_INT(rf_store_text_get(st, "m1", "a red circle", hex, NULL), RF_ENOTFOUND);
    RF_CHECK_EQ_INT(rf_store_text_put(st, "m1", "a red circle", "abc", NULL), 0);
    RF_CHECK_EQ_INT(rf_store_text_get(st, "m1", "a red circle", hex, NULL), 0);
    RF_CHECK_EQ_STR(hex, "abc");
    RF_CHECK_EQ_INT(rf_store_text_get(st, "m2", "a red circle", hex, NULL), RF_ENOTFOUND);
    rf_store_destroy(&st);
}

RF_TEST(state_dir_is_private_and_wal)
{
    rf_store *st = s_open("s9");
    struct stat sb;
    RF_CHECK_EQ_INT(stat(rf_store_dir(st), &sb), 0);
    RF_CHECK_EQ_INT(sb.st_mode & 0777, 0700);
    rf_store_destroy(&st);
    char path[600];
    rf_test_path(path, sizeof(path), "s9/state.db");
    sqlite3 *db;
    RF_CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    RF_CHECK_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    RF_CHECK_EQ_INT(sqlite3_step(q), SQLITE_ROW);
    RF_CHECK_EQ_STR((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
    sqlite3_close(db);
    rf_error err;
    char dir[512];
    rf_test_path(dir, sizeof(dir), "s9");
    RF_CHECK(rf_store_open(dir, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "newer reelfarm");
}
