/* store.c - SQLite persistence of the coordinator, and its content-addressed blobs.
 *
 * One connection (one thread: opened without SQLite's per-call mutex), WAL journal,
 * synchronous=FULL, foreign keys on. Statements are prepared once and cached by their
 * SQL text's address. A blob file is durable (atomic_file) before the row naming it is
 * committed (a pack: the transaction's bytes gathered in memory, appended and made durable
 * by the commit, just before the COMMIT; a pack is only ever appended to past what
 * committed rows name), so a committed row never names missing bytes; a crash can at
 * worst leave an unreferenced file or bytes no row names.
 * Schema changes bump SCHEMA_VERSION and add a migration step; never edit old steps.
 */
#include "store.h"

#include "atomic_file.h"
#include "crash.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHEMA_VERSION 7
#define STMT_CACHE     64
#define COUNTERS       8
#define PACK_BLOB_MAX  ((size_t)1 << 20)    /* larger blobs get a file of their own */
#define PACK_MAX       ((uint64_t)64 << 20) /* one transaction's blobs in a pack stop here */
#define PACK_ROLL      ((uint64_t)16 << 20) /* a pack this long takes no new transaction */
#define PACK_BUF       ((size_t)1 << 20)    /* a pack's bytes gathered before one write */

struct rf_store {
    sqlite3 *db;
    char dir[PATH_MAX];
    int in_tx;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[STMT_CACHE];
    int ncache;
    /* counters advanced inside a transaction: kept here and written once, just before
     * its COMMIT (one row write per counter per commit, not per rf_store_next); a
     * rollback forgets them so the next use reads the committed value again */
    struct {
        char name[32];
        uint64_t value;
        int dirty;
    } counters[COUNTERS];
    int ncounters;
    unsigned char fanout[32]; /* blobs/<2 hex>/ directories known to exist (bit per dir) */
    /* the pack: a file of small blobs (blobs/packs/<pack_id>, rf_atomic_file_open_log)
     * kept open across transactions until it passes PACK_ROLL. A transaction's blobs are
     * gathered in pbuf, written at the pack's end when pbuf would pass PACK_BUF and by the
     * commit, which makes them durable (fdatasync; the directory once, for a new pack) just
     * before the COMMIT that names them; a failed write or sync fails that commit and the
     * pack is left (a new one takes the next transaction). Bytes of a rolled-back
     * transaction past pack_end are garbage the next one overwrites. */
    rf_atomic_file *pack; /* the open pack (NULL: none, or not created yet) */
    uint64_t pack_id;
    uint64_t pack_end;     /* its length as of the last commit: appends start here */
    int pack_new;          /* pack_id was taken by the open transaction */
    int pack_begun;        /* the open transaction put blobs in the pack */
    uint64_t pack_len;     /* the pack's length with the open transaction's blobs */
    uint64_t pack_written; /* of which in the file (pbuf holds the rest) */
    unsigned char *pbuf;   /* kept between transactions (PACK_BUF at most) */
    size_t pbuf_len, pbuf_cap;
    int pack_failed;
    int packs_dir; /* blobs/packs exists */
    int rfd;       /* a pack file open for reading (rfd_id), or -1 */
    uint64_t rfd_id;
    /* jobs whose pack_jobs row for the open transaction's pack is written */
    char refjobs[8][RF_STORE_ID_MAX];
    int nrefjobs;
};

static const char *s_schema[] = {
    /* version 1 */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE jobs(id TEXT PRIMARY KEY, seq INTEGER NOT NULL, name TEXT, spec TEXT,"
    " spec_name TEXT, model TEXT, model_hash TEXT, state INTEGER NOT NULL,"
    " priority INTEGER NOT NULL, output_path TEXT, error TEXT, submitted_ms INTEGER,"
    " started_ms INTEGER, finished_ms INTEGER, rounds_done INTEGER NOT NULL);"
    "CREATE TABLE tasks(id TEXT PRIMARY KEY, job_id TEXT NOT NULL, kind INTEGER NOT NULL,"
    " unit INTEGER NOT NULL, step_begin INTEGER, step_end INTEGER, state INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL, worker TEXT, lease_deadline_ms INTEGER,"
    " failures INTEGER NOT NULL, failed_workers TEXT, result TEXT, error TEXT);"
    "CREATE INDEX tasks_job ON tasks(job_id);"
    "CREATE TABLE chunks(job_id TEXT NOT NULL, timeline INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " step INTEGER NOT NULL, round INTEGER NOT NULL, worker TEXT, checkpoint TEXT,"
    " checkpoint_round INTEGER NOT NULL, PRIMARY KEY(job_id, timeline, idx));"
    "CREATE TABLE rounds(job_id TEXT NOT NULL, round INTEGER NOT NULL, blob TEXT NOT NULL,"
    " PRIMARY KEY(job_id, round));"
    "CREATE TABLE events(seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT,"
    " time_ms INTEGER NOT NULL, level TEXT, text TEXT);"
    "CREATE INDEX events_job ON events(job_id, time_ms);"
    "CREATE TABLE blobs(hash TEXT NOT NULL, job_id TEXT NOT NULL, size INTEGER NOT NULL,"
    " PRIMARY KEY(hash, job_id));"
    "CREATE TABLE text_cache(model_hash TEXT NOT NULL, prompt TEXT NOT NULL,"
    " blob TEXT NOT NULL, PRIMARY KEY(model_hash, prompt));",
    /* version 2: timelines fuse independently, so a fused round belongs to one timeline */
    "DROP TABLE rounds;"
    "CREATE TABLE rounds(job_id TEXT NOT NULL, timeline INTEGER NOT NULL,"
    " round INTEGER NOT NULL, blob TEXT NOT NULL, PRIMARY KEY(job_id, timeline, round));",
    /* version 3: the name of the worker holding an attempt, so that a restarted coordinator
     * can hand the attempt back to that worker when it says Hello again */
    "ALTER TABLE tasks ADD COLUMN worker_name TEXT;",
    /* version 4: small blobs put within one transaction share a pack file
     * (blobs/packs/<pack>, the blob at byte off); pack NULL: a file of its own */
    "ALTER TABLE blobs ADD COLUMN pack INTEGER;"
    "ALTER TABLE blobs ADD COLUMN off INTEGER;"
    "CREATE INDEX blobs_pack ON blobs(pack) WHERE pack IS NOT NULL;",
    /* version 5: a job's progress as of its row's last write, so a finished job that left
     * the coordinator's memory is listed without its tasks; jobs by submission order */
    "ALTER TABLE jobs ADD COLUMN steps_done INTEGER;"
    "ALTER TABLE jobs ADD COLUMN steps_total INTEGER;"
    "ALTER TABLE jobs ADD COLUMN segments_done INTEGER;"
    "ALTER TABLE jobs ADD COLUMN segments_total INTEGER;"
    "CREATE INDEX jobs_seq ON jobs(seq);",
    /* version 6: blobs without a row of their own (rf_store_blob_put_ref: a chunk's result,
     * named by its task row) keep their pack alive through (pack, job) rows, one per
     * transaction and job, deleted with the job's blobs */
    "CREATE TABLE pack_jobs(pack INTEGER NOT NULL, job_id TEXT NOT NULL,"
    " PRIMARY KEY(pack, job_id)) WITHOUT ROWID;"
    "CREATE INDEX pack_jobs_job ON pack_jobs(job_id);",
    /* version 7: jobs by state in submission order, so that a list by state reads and counts
     * the matching jobs only (was: every job row) */
    "CREATE INDEX jobs_state ON jobs(state, seq);",
};

static int s_db_error(rf_store *self, rf_error *err, const char *what)
{
    int code = sqlite3_errcode(self->db);
    if (code == SQLITE_FULL)
        return rf_error_set(err, RF_ENOSPC,
                            "disk full while %s in %s/state.db: free space and retry", what,
                            self->dir);
    return rf_error_set(err, RF_EIO, "state database %s/state.db: %s: %s", self->dir, what,
                        sqlite3_errmsg(self->db));
}

static sqlite3_stmt *s_stmt(rf_store *self, const char *sql, rf_error *err)
{
    for (int i = 0; i < self->ncache; i++) {
        if (self->cache[i].sql == sql) {
            sqlite3_reset(self->cache[i].stmt);
            sqlite3_clear_bindings(self->cache[i].stmt);
            return self->cache[i].stmt;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        s_db_error(self, err, "preparing a statement");
        return NULL;
    }
    if (self->ncache < STMT_CACHE) {
        self->cache[self->ncache].sql = sql;
        self->cache[self->ncache].stmt = st;
        self->ncache++;
    }
    return st;
}

/* Finishes a statement that was not cached (cache full); cached ones are kept. */
static void s_done(rf_store *self, sqlite3_stmt *st)
{
    for (int i = 0; i < self->ncache; i++)
        if (self->cache[i].stmt == st) {
            sqlite3_reset(st);
            return;
        }
    sqlite3_finalize(st);
}

static int s_exec(rf_store *self, const char *sql, rf_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(self->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = s_db_error(self, err, msg ? msg : "executing");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

static void s_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static char *s_col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static void s_col_copy(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

/* Steps a write statement to completion. */
static int s_step_done(rf_store *self, sqlite3_stmt *st, rf_error *err, const char *what)
{
    int rc = sqlite3_step(st);
    int out = rc == SQLITE_DONE ? 0 : s_db_error(self, err, what);
    s_done(self, st);
    return out;
}

rf_store *rf_store_open(const char *state_dir, rf_error *err)
{
    rf_store *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    self->rfd = -1;
    snprintf(self->dir, sizeof(self->dir), "%s", state_dir);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/blobs", state_dir);
    if (rf_mkdirs(state_dir, 0700, err) || rf_mkdirs(path, 0700, err)) {
        free(self);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/state.db", state_dir);
    /* one connection, used by one thread (the coordinator's loop): no mutex around every
     * call (SQLite's "multi-thread" mode), and no allocation statistics (a global mutex
     * per malloc; refused harmlessly once SQLite is initialized) */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    if (sqlite3_open_v2(path, &self->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rf_error_set(err, RF_EIO, "cannot open the state database %s: %s", path,
                     self->db ? sqlite3_errmsg(self->db) : "out of memory");
        rf_store_destroy(&self);
        return NULL;
    }
    sqlite3_busy_timeout(self->db, 5000);
    if (s_exec(self, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
               err)) {
        rf_store_destroy(&self);
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(self->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION) {
        rf_error_set(err, RF_EVERSION,
                     "the state in %s was written by a newer reelfarm (schema %d, this build "
                     "knows %d); run the newer coordinator or use another --state",
                     state_dir, version, SCHEMA_VERSION);
        rf_store_destroy(&self);
        return NULL;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version=%d;", v + 1);
        if (s_exec(self, "BEGIN IMMEDIATE", err) || s_exec(self, s_schema[v], err) ||
            s_exec(self, bump, err) || s_exec(self, "COMMIT", err)) {
            rf_error_prefix(err, "creating the schema in %s", state_dir);
            rf_store_destroy(&self);
            return NULL;
        }
    }
    return self;
}

void rf_store_destroy(rf_store **pself)
{
    if (!pself || !*pself)
        return;
    rf_store *self = *pself;
    if (self->in_tx)
        rf_store_rollback(self);
    for (int i = 0; i < self->ncache; i++)
        sqlite3_finalize(self->cache[i].stmt);
    if (self->rfd >= 0)
        close(self->rfd);
    rf_atomic_file_close(&self->pack);
    sqlite3_close(self->db);
    free(self->pbuf);
    free(self);
    *pself = NULL;
}

const char *rf_store_dir(const rf_store *self)
{
    return self->dir;
}

/* Runs a statement without parameters or rows (BEGIN, COMMIT: prepared once, not parsed
 * per transaction as sqlite3_exec would). */
static int s_run(rf_store *self, const char *sql, rf_error *err, const char *what)
{
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    return s_step_done(self, st, err, what);
}

static const char *const s_begin_sql = "BEGIN IMMEDIATE";
static const char *const s_commit_sql = "COMMIT";

int rf_store_begin(rf_store *self, rf_error *err)
{
    if (self->in_tx)
        return 0;
    int rc = s_run(self, s_begin_sql, err, "beginning a transaction");
    if (!rc)
        self->in_tx = 1;
    return rc;
}

int rf_store_in_tx(const rf_store *self)
{
    return self->in_tx;
}

static int s_counters_flush(rf_store *self, rf_error *err);
static int s_pack_flush(rf_store *self, rf_error *err);

int rf_store_commit(rf_store *self, rf_error *err)
{
    if (!self->in_tx)
        return 0;
    int frc = s_counters_flush(self, err);
    if (!frc && self->pack_failed)
        frc = rf_error_set(err, RF_EIO, "a blob pack in %s/blobs/packs could not be written",
                           self->dir);
    if (!frc && self->pack_begun) { /* the blobs first: a committed row never names missing bytes */
        frc = s_pack_flush(self, err);
        if (!frc && (frc = rf_atomic_file_sync(self->pack, err)) != 0)
            self->pack_failed = 1; /* what reached the disk is unknown: the pack is left */
        if (!frc)
            rf_crash_point("after-blob-pack"); /* the pack is durable, its rows are not */
    }
    if (frc) {
        rf_store_rollback(self);
        return frc;
    }
    if (rf_atomic_file_full_injected()) {
        rf_store_rollback(self);
        return rf_error_set(err, RF_ENOSPC,
                            "disk full while committing in %s/state.db (injected): free space "
                            "and retry",
                            self->dir);
    }
    int rc = s_run(self, s_commit_sql, err, "committing");
    if (rc) {
        rf_store_rollback(self);
        return rc;
    }
    self->in_tx = 0;
    for (int i = 0; i < self->ncounters; i++)
        self->counters[i].dirty = 0;
    if (self->pack_begun)
        self->pack_end = self->pack_len;
    self->pack_begun = self->pack_new = 0;
    self->nrefjobs = 0;
    return 0;
}

void rf_store_rollback(rf_store *self)
{
    self->ncounters = 0; /* uncommitted advances are gone with the transaction */
    if (self->pack_new)
        rf_atomic_file_abort(&self->pack); /* no committed row names it */
    else if (self->pack_failed)
        rf_atomic_file_close(&self->pack); /* its committed blobs stay; new ones go elsewhere */
    self->pack_begun = self->pack_new = 0;
    self->pack_len = self->pack_written = self->pack_end;
    self->pbuf_len = 0;
    self->pack_failed = 0;
    self->nrefjobs = 0;
    if (!self->in_tx)
        return;
    sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    self->in_tx = 0;
}

/* Writes the counters advanced in this transaction (part of it: before COMMIT). */
static int s_counters_flush(rf_store *self, rf_error *err)
{
    static const char *sql = "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO "
                             "UPDATE SET value = ?2";
    for (int i = 0; i < self->ncounters; i++) {
        if (!self->counters[i].dirty)
            continue;
        sqlite3_stmt *st = s_stmt(self, sql, err);
        if (!st)
            return err ? (int)err->code : RF_EIO;
        sqlite3_bind_text(st, 1, self->counters[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)self->counters[i].value);
        int rc = s_step_done(self, st, err, "advancing a counter");
        if (rc)
            return rc;
    }
    return 0;
}

/* The committed value of a counter (0 when it was never advanced). */
static int s_counter_read(rf_store *self, const char *counter, uint64_t *out, rf_error *err)
{
    static const char *sql = "SELECT value FROM meta WHERE key = ?1";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    sqlite3_bind_text(st, 1, counter, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = s_db_error(self, err, "reading a counter");
        s_done(self, st);
        return rc;
    }
    *out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    s_done(self, st);
    return 0;
}

int rf_store_next(rf_store *self, const char *counter, uint64_t *out, rf_error *err)
{
    if (self->in_tx && strlen(counter) < sizeof(self->counters[0].name)) {
        int i = 0;
        while (i < self->ncounters && strcmp(self->counters[i].name, counter) != 0)
            i++;
        if (i == self->ncounters && i < COUNTERS) {
            uint64_t v = 0;
            int rc = s_counter_read(self, counter, &v, err);
            if (rc)
                return rc;
            snprintf(self->counters[i].name, sizeof(self->counters[i].name), "%s", counter);
            self->counters[i].value = v;
            self->counters[i].dirty = 0;
            self->ncounters++;
        }
        if (i < self->ncounters) {
            *out = ++self->counters[i].value;
            self->counters[i].dirty = 1;
            return 0;
        }
    }
    /* outside a transaction (or too many counters): one write now, as before */
    for (int i = 0; i < self->ncounters; i++)
        if (strcmp(self->counters[i].name, counter) == 0)
            self->ncounters = 0; /* the cached value would go stale */
    static const char *sql = "INSERT INTO meta(key, value) VALUES(?1, 1) ON CONFLICT(key) DO "
                             "UPDATE SET value = value + 1 RETURNING value";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    sqlite3_bind_text(st, 1, counter, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        rc = s_db_error(self, err, "advancing a counter");
        s_done(self, st);
        return rc;
    }
    *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_step(st);
    s_done(self, st);
    return 0;
}

/* ---- jobs ----------------------------------------------------------------------- */

void rf_store_job_clear(rf_store_job *j)
{
    free(j->name);
    free(j->spec);
    free(j->spec_name);
    free(j->model);
    free(j->output_path);
    free(j->error);
    memset(j, 0, sizeof(*j));
}

int rf_store_job_put(rf_store *self, const rf_store_job *j, rf_error *err)
{
    static const char *sql =
        "INSERT INTO jobs(id, seq, name, spec, spec_name, model, model_hash, state, priority,"
        " output_path, error, submitted_ms, started_ms, finished_ms, rounds_done, steps_done,"
        " steps_total, segments_done, segments_total)"
        " VALUES(?1, COALESCE((SELECT seq FROM jobs WHERE id = ?1),"
        " (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs)), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
        " ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        " ON CONFLICT(id) DO UPDATE SET name=?2, spec=?3, spec_name=?4, model=?5,"
        " model_hash=?6, state=?7, priority=?8, output_path=?9, error=?10, submitted_ms=?11,"
        " started_ms=?12, finished_ms=?13, rounds_done=?14, steps_done=?15, steps_total=?16,"
        " segments_done=?17, segments_total=?18";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, j->id);
    s_bind_text(st, 2, j->name);
    s_bind_text(st, 3, j->spec);
    s_bind_text(st, 4, j->spec_name);
    s_bind_text(st, 5, j->model);
    s_bind_text(st, 6, j->model_hash);
    sqlite3_bind_int(st, 7, j->state);
    sqlite3_bind_int(st, 8, j->priority);
    s_bind_text(st, 9, j->output_path);
    s_bind_text(st, 10, j->error);
    sqlite3_bind_int64(st, 11, j->submitted_ms);
    sqlite3_bind_int64(st, 12, j->started_ms);
    sqlite3_bind_int64(st, 13, j->finished_ms);
    sqlite3_bind_int(st, 14, j->rounds_done);
    if (j->steps_total >= 0) {
        sqlite3_bind_int64(st, 15, j->steps_done);
        sqlite3_bind_int64(st, 16, j->steps_total);
        sqlite3_bind_int(st, 17, j->segments_done);
        sqlite3_bind_int(st, 18, j->segments_total);
    } /* else NULL: unknown */
    return s_step_done(self, st, err, "writing a job");
}

#define JOB_COLS                                                                         \
    "id, name, spec, spec_name, model, model_hash, state, priority, output_path, error," \
    " submitted_ms, started_ms, finished_ms, rounds_done, steps_done, steps_total,"      \
    " segments_done, segments_total"

static void s_job_row(sqlite3_stmt *st, rf_store_job *j)
{
    memset(j, 0, sizeof(*j));
    s_col_copy(st, 0, j->id, sizeof(j->id));
    j->name = s_col_dup(st, 1);
    j->spec = s_col_dup(st, 2);
    j->spec_name = s_col_dup(st, 3);
    j->model = s_col_dup(st, 4);
    s_col_copy(st, 5, j->model_hash, sizeof(j->model_hash));
    j->state = sqlite3_column_int(st, 6);
    j->priority = sqlite3_column_int(st, 7);
    j->output_path = s_col_dup(st, 8);
    j->error = s_col_dup(st, 9);
    j->submitted_ms = sqlite3_column_int64(st, 10);
    j->started_ms = sqlite3_column_int64(st, 11);
    j->finished_ms = sqlite3_column_int64(st, 12);
    j->rounds_done = sqlite3_column_int(st, 13);
    int known = sqlite3_column_type(st, 15) != SQLITE_NULL;
    j->steps_done = known ? sqlite3_column_int64(st, 14) : -1;
    j->steps_total = known ? sqlite3_column_int64(st, 15) : -1;
    j->segments_done = known ? sqlite3_column_int(st, 16) : -1;
    j->segments_total = known ? sqlite3_column_int(st, 17) : -1;
}

int rf_store_job_get(rf_store *self, const char *id, rf_store_job *out, rf_error *err)
{
    static const char *sql = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    int out_rc = 0;
    if (rc == SQLITE_ROW)
        s_job_row(st, out);
    else if (rc == SQLITE_DONE)
        out_rc = rf_error_set(err, RF_ENOTFOUND, "no job %s", id);
    else
        out_rc = s_db_error(self, err, "reading a job");
    s_done(self, st);
    return out_rc;
}

/* One arm per JobState 0..7 (proto/reelfarm.proto has 0..5; a bigger state is never
 * written), each read newest first from the (state, seq) index; the arms are merged on
 * seq, so no sort of every match. An arm whose state is not asked for is bound to -1. */
#define JOB_ARM(n)     "SELECT " JOB_COLS ", seq FROM jobs WHERE state = ?" #n
#define JOB_STATE_ARMS 8

/* Calls fn on each job row st yields until fn returns nonzero, then finishes st. */
static int s_job_rows(rf_store *self, sqlite3_stmt *st, int (*fn)(void *, const rf_store_job *),
                      void *ctx, rf_error *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rf_store_job j;
        s_job_row(st, &j);
        int stop = fn(ctx, &j);
        rf_store_job_clear(&j);
        if (stop)
            break;
    }
    int out = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : s_db_error(self, err, "listing jobs");
    s_done(self, st);
    return out;
}

int rf_store_job_each(rf_store *self, int (*fn)(void *, const rf_store_job *), void *ctx,
                      rf_error *err)
{
    static const char *sql = "SELECT " JOB_COLS " FROM jobs ORDER BY seq";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    return s_job_rows(self, st, fn, ctx, err);
}

int rf_store_job_newest(rf_store *self, uint32_t states_mask, uint32_t limit,
                        int (*fn)(void *ctx, const rf_store_job *job), void *ctx, uint64_t *matched,
                        rf_error *err)
{
    static const char *all_sql = "SELECT " JOB_COLS " FROM jobs ORDER BY seq DESC LIMIT ?1";
    static const char *all_count_sql = "SELECT COUNT(*) FROM jobs";
    static const char *sql = JOB_ARM(2) " UNION ALL " JOB_ARM(3) " UNION ALL " /* */
        JOB_ARM(4) " UNION ALL " JOB_ARM(5) " UNION ALL "                      /* */
        JOB_ARM(6) " UNION ALL " JOB_ARM(7) " UNION ALL "                      /* */
        JOB_ARM(8) " UNION ALL " JOB_ARM(9) " ORDER BY seq DESC LIMIT ?1";
    static const char *count_sql =
        "SELECT COUNT(*) FROM jobs WHERE state IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    sqlite3_stmt *st = s_stmt(self, states_mask ? sql : all_sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    for (int s = 0; states_mask && s < JOB_STATE_ARMS; s++)
        sqlite3_bind_int(st, 2 + s, (states_mask >> s) & 1u ? s : -1);
    int out = s_job_rows(self, st, fn, ctx, err);
    if (out || !matched)
        return out;
    st = s_stmt(self, states_mask ? count_sql : all_count_sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    for (int s = 0; states_mask && s < JOB_STATE_ARMS; s++)
        sqlite3_bind_int(st, 2 + s, (states_mask >> s) & 1u ? s : -1);
    if (sqlite3_step(st) == SQLITE_ROW)
        *matched = (uint64_t)sqlite3_column_int64(st, 0);
    else
        out = s_db_error(self, err, "counting jobs");
    s_done(self, st);
    return out;
}

/* ---- tasks ---------------------------------------------------------------------- */

void rf_store_task_clear(rf_store_task *t)
{
    free(t->failed_workers);
    free(t->error);
    memset(t, 0, sizeof(*t));
}

/* Binds every column of t to st (?1 id ... ?15 worker_name). */
static void s_bind_task(sqlite3_stmt *st, const rf_store_task *t)
{
    s_bind_text(st, 1, t->id);
    s_bind_text(st, 2, t->job_id);
    sqlite3_bind_int(st, 3, t->kind);
    sqlite3_bind_int(st, 4, t->unit);
    sqlite3_bind_int(st, 5, t->step_begin);
    sqlite3_bind_int(st, 6, t->step_end);
    sqlite3_bind_int(st, 7, t->state);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)t->attempt);
    s_bind_text(st, 9, t->worker);
    sqlite3_bind_int64(st, 10, t->lease_deadline_ms);
    sqlite3_bind_int(st, 11, t->failures);
    s_bind_text(st, 12, t->failed_workers);
    s_bind_text(st, 13, t->result);
    s_bind_text(st, 14, t->error);
    s_bind_text(st, 15, t->worker_name);
}

int rf_store_task_put(rf_store *self, rf_store_task *t, rf_error *err)
{
    /* an existing row is updated in place, its indexed columns (id, job_id: the id names
     * the job) left alone: no index entry is rewritten, unlike INSERT OR REPLACE (a delete
     * and an insert in the table and both indexes), so a dispatch dirties fewer pages */
    static const char *upd_sql =
        "UPDATE tasks SET kind = ?3, unit = ?4, step_begin = ?5, step_end = ?6,"
        " state = ?7, attempt = ?8, worker = ?9, lease_deadline_ms = ?10, failures = ?11,"
        " failed_workers = ?12, result = ?13, error = ?14, worker_name = ?15 WHERE id = ?1";
    static const char *rowid_sql =
        "UPDATE tasks SET kind = ?3, unit = ?4, step_begin = ?5, step_end = ?6,"
        " state = ?7, attempt = ?8, worker = ?9, lease_deadline_ms = ?10, failures = ?11,"
        " failed_workers = ?12, result = ?13, error = ?14, worker_name = ?15"
        " WHERE rowid = ?16 AND id = ?1";
    sqlite3_stmt *st;
    int rc;
    if (t->rowid > 0) {
        st = s_stmt(self, rowid_sql, err);
        if (!st)
            return err ? (int)err->code : RF_EIO;
        s_bind_task(st, t);
        sqlite3_bind_int64(st, 16, t->rowid);
        rc = s_step_done(self, st, err, "writing a task");
        if (rc || sqlite3_changes(self->db) > 0)
            return rc;
    }
    st = s_stmt(self, upd_sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_task(st, t);
    rc = s_step_done(self, st, err, "writing a task");
    if (rc || sqlite3_changes(self->db) > 0)
        return rc;
    return rf_store_task_insert(self, t, err);
}

int rf_store_task_insert(rf_store *self, rf_store_task *t, rf_error *err)
{
    static const char *ins_sql =
        "INSERT INTO tasks(id, job_id, kind, unit, step_begin, step_end, state,"
        " attempt, worker, lease_deadline_ms, failures, failed_workers, result, error, worker_name)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
    sqlite3_stmt *st = s_stmt(self, ins_sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_task(st, t);
    int rc = s_step_done(self, st, err, "writing a task");
    if (!rc)
        t->rowid = (int64_t)sqlite3_last_insert_rowid(self->db);
    return rc;
}

#define TASK_COLS                                                           \
    "id, job_id, kind, unit, step_begin, step_end, state, attempt, worker," \
    " lease_deadline_ms, failures, failed_workers, result, error, worker_name, rowid"

static void s_task_row(sqlite3_stmt *st, rf_store_task *t)
{
    memset(t, 0, sizeof(*t));
    s_col_copy(st, 0, t->id, sizeof(t->id));
    s_col_copy(st, 1, t->job_id, sizeof(t->job_id));
    t->kind = sqlite3_column_int(st, 2);
    t->unit = sqlite3_column_int(st, 3);
    t->step_begin = sqlite3_column_int(st, 4);
    t->step_end = sqlite3_column_int(st, 5);
    t->state = sqlite3_column_int(st, 6);
    t->attempt = (uint64_t)sqlite3_column_int64(st, 7);
    s_col_copy(st, 8, t->worker, sizeof(t->worker));
    t->lease_deadline_ms = sqlite3_column_int64(st, 9);
    t->failures = sqlite3_column_int(st, 10);
    t->failed_workers = s_col_dup(st, 11);
    s_col_copy(st, 12, t->result, sizeof(t->result));
    t->error = s_col_dup(st, 13);
    s_col_copy(st, 14, t->worker_name, sizeof(t->worker_name));
    t->rowid = sqlite3_column_int64(st, 15);
}

int rf_store_task_get(rf_store *self, const char *id, rf_store_task *out, rf_error *err)
{
    static const char *sql = "SELECT " TASK_COLS " FROM tasks WHERE id = ?1";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, id);
    int rc = sqlite3_step(st);
    int out_rc = 0;
    if (rc == SQLITE_ROW)
        s_task_row(st, out);
    else if (rc == SQLITE_DONE)
        out_rc = rf_error_set(err, RF_ENOTFOUND, "no task %s", id);
    else
        out_rc = s_db_error(self, err, "reading a task");
    s_done(self, st);
    return out_rc;
}

int rf_store_task_each(rf_store *self, const char *job_id, int (*fn)(void *, const rf_store_task *),
                       void *ctx, rf_error *err)
{
    static const char *sql = "SELECT " TASK_COLS " FROM tasks WHERE job_id = ?1 ORDER BY rowid";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, job_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rf_store_task t;
        s_task_row(st, &t);
        int stop = fn(ctx, &t);
        rf_store_task_clear(&t);
        if (stop)
            break;
    }
    int out = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : s_db_error(self, err, "listing tasks");
    s_done(self, st);
    return out;
}

/* ---- chunks and rounds ---------------------------------------------------------- */

int rf_store_chunk_put(rf_store *self, const rf_store_chunk *c, rf_error *err)
{
    static const char *sql =
        "INSERT OR REPLACE INTO chunks(job_id, timeline, idx, step, round, worker, checkpoint,"
        " checkpoint_round) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, c->job_id);
    sqlite3_bind_int(st, 2, c->timeline);
    sqlite3_bind_int(st, 3, c->index);
    sqlite3_bind_int(st, 4, c->step);
    sqlite3_bind_int(st, 5, c->round);
    s_bind_text(st, 6, c->worker);
    s_bind_text(st, 7, c->checkpoint);
    sqlite3_bind_int(st, 8, c->checkpoint_round);
    return s_step_done(self, st, err, "writing a chunk");
}

int rf_store_chunk_each(rf_store *self, const char *job_id,
                        int (*fn)(void *, const rf_store_chunk *), void *ctx, rf_error *err)
{
    static const char *sql = "SELECT job_id, timeline, idx, step, round, worker, checkpoint,"
                             " checkpoint_round FROM chunks WHERE job_id = ?1"
                             " ORDER BY timeline, idx";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, job_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rf_store_chunk c;
        memset(&c, 0, sizeof(c));
        s_col_copy(st, 0, c.job_id, sizeof(c.job_id));
        c.timeline = sqlite3_column_int(st, 1);
        c.index = sqlite3_column_int(st, 2);
        c.step = sqlite3_column_int(st, 3);
        c.round = sqlite3_column_int(st, 4);
        s_col_copy(st, 5, c.worker, sizeof(c.worker));
        s_col_copy(st, 6, c.checkpoint, sizeof(c.checkpoint));
        c.checkpoint_round = sqlite3_column_int(st, 7);
        if (fn(ctx, &c))
            break;
    }
    int out = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : s_db_error(self, err, "listing chunks");
    s_done(self, st);
    return out;
}

int rf_store_round_put(rf_store *self, const char *job_id, int timeline, int round,
                       const char *blob_hex, rf_error *err)
{
    static const char *sql =
        "INSERT OR REPLACE INTO rounds(job_id, timeline, round, blob) VALUES(?1,?2,?3,?4)";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, job_id);
    sqlite3_bind_int(st, 2, timeline);
    sqlite3_bind_int(st, 3, round);
    s_bind_text(st, 4, blob_hex);
    return s_step_done(self, st, err, "writing a fused round");
}

int rf_store_round_each(rf_store *self, const char *job_id, int timeline, int from_round,
                        int (*fn)(void *, int, int, const char *), void *ctx, rf_error *err)
{
    static const char *sql =
        "SELECT timeline, round, blob FROM rounds WHERE job_id = ?1 AND (?2 < 0 OR timeline = ?2)"
        " AND round >= ?3 ORDER BY timeline, round";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, job_id);
    sqlite3_bind_int(st, 2, timeline);
    sqlite3_bind_int(st, 3, from_round);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (fn(ctx, sqlite3_column_int(st, 0), sqlite3_column_int(st, 1),
               (const char *)sqlite3_column_text(st, 2)))
            break;
    int out = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : s_db_error(self, err, "listing rounds");
    s_done(self, st);
    return out;
}

int rf_store_round_prune(rf_store *self, const char *job_id, int timeline, int before,
                         rf_error *err)
{
    static const char *sql =
        "DELETE FROM rounds WHERE job_id = ?1 AND timeline = ?2 AND round < ?3";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, job_id);
    sqlite3_bind_int(st, 2, timeline);
    sqlite3_bind_int(st, 3, before);
    return s_step_done(self, st, err, "pruning rounds");
}

/* ---- events --------------------------------------------------------------------- */

int rf_store_event_add(rf_store *self, const char *job_id, int64_t time_ms, const char *level,
                       const char *text, uint64_t *seq_out, rf_error *err)
{
    static const char *sql =
        "INSERT INTO events(job_id, time_ms, level, text) VALUES(?1, ?2, ?3, ?4)";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, job_id);
    sqlite3_bind_int64(st, 2, time_ms);
    s_bind_text(st, 3, level);
    s_bind_text(st, 4, text);
    int rc = s_step_done(self, st, err, "writing an event");
    if (!rc && seq_out)
        *seq_out = (uint64_t)sqlite3_last_insert_rowid(self->db);
    return rc;
}

int rf_store_event_each(rf_store *self, const char *job_id, int64_t since_ms, int limit,
                        int (*fn)(void *, uint64_t, int64_t, const char *, const char *), void *ctx,
                        rf_error *err)
{
    static const char *sql = "SELECT seq, time_ms, level, text FROM events WHERE job_id = ?1"
                             " AND time_ms >= ?2 ORDER BY seq LIMIT ?3";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, job_id);
    sqlite3_bind_int64(st, 2, since_ms);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (fn(ctx, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
               (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3)))
            break;
    int out = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : s_db_error(self, err, "listing events");
    s_done(self, st);
    return out;
}

/* ---- blobs ---------------------------------------------------------------------- */

int rf_store_blob_path(const rf_store *self, const char *hex, char *buf, size_t cap)
{
    rf_hash h;
    if (rf_hash_from_hex(hex, &h) != 0)
        return -1;
    int n = snprintf(buf, cap, "%s/blobs/%.2s/%s", self->dir, hex, hex);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static unsigned s_nib(char ch)
{
    return ch >= '0' && ch <= '9' ? (unsigned)(ch - '0') : (unsigned)(ch - 'a' + 10) & 15u;
}

int rf_store_blob_put(rf_store *self, const void *data, size_t len, const char *job_id,
                      char hex_out[RF_HASH_HEX], rf_error *err)
{
    rf_hash h;
    rf_blake2b(data, len, &h);
    rf_hash_to_hex(&h, hex_out);
    char path[PATH_MAX + 160], dir[PATH_MAX + 16];
    rf_store_blob_path(self, hex_out, path, sizeof(path));
    snprintf(dir, sizeof(dir), "%s/blobs/%.2s", self->dir, hex_out);
    struct stat sb;
    if (stat(path, &sb) != 0 || (size_t)sb.st_size != len) {
        /* the fan-out directory is created once per store, not walked per blob */
        unsigned fan = (unsigned)(s_nib(hex_out[0]) << 4 | s_nib(hex_out[1]));
        int rc = 0;
        if (!(self->fanout[fan >> 3] & (1u << (fan & 7)))) {
            rc = rf_mkdirs(dir, 0700, err);
            if (!rc)
                self->fanout[fan >> 3] |= (unsigned char)(1u << (fan & 7));
        }
        if (!rc)
            rc = rf_atomic_write(path, data, len, err);
        if (rc == RF_ENOTFOUND || (rc == RF_EIO && errno == ENOENT)) {
            self->fanout[fan >> 3] &= (unsigned char)~(1u << (fan & 7)); /* removed behind us */
            rc = rf_mkdirs(dir, 0700, err);
            if (!rc)
                rc = rf_atomic_write(path, data, len, err);
        }
        if (rc)
            return rc;
    }
    static const char *sql = "INSERT OR IGNORE INTO blobs(hash, job_id, size) VALUES(?1,?2,?3)";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, hex_out);
    s_bind_text(st, 2, job_id ? job_id : "");
    sqlite3_bind_int64(st, 3, (sqlite3_int64)len);
    return s_step_done(self, st, err, "recording a blob");
}

/* Writes len bytes at the end of what is written of the pack (its file created here when
 * it is new). A failure leaves what reached the file unknown: the transaction cannot commit. */
static int s_pack_write(rf_store *self, const void *data, size_t len, rf_error *err)
{
    int rc = 0;
    if (!self->pack) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/blobs/packs", self->dir);
        if (!self->packs_dir && (rc = rf_mkdirs(path, 0700, err)) == 0)
            self->packs_dir = 1;
        snprintf(path, sizeof(path), "%s/blobs/packs/%llu", self->dir,
                 (unsigned long long)self->pack_id);
        if (!rc && !(self->pack = rf_atomic_file_open_log(path, err)))
            rc = err && err->code ? (int)err->code : RF_EIO;
    }
    if (!rc && len > 0)
        rc = rf_atomic_file_pwrite(self->pack, data, len, self->pack_written, err);
    if (rc) {
        self->pack_failed = 1;
        return rc;
    }
    self->pack_written += len;
    return 0;
}

/* Writes the gathered bytes of the transaction (and creates the pack's file when it is new
 * and nothing was written yet: a pack of empty blobs still exists). */
static int s_pack_flush(rf_store *self, rf_error *err)
{
    if (self->pack_failed)
        return rf_error_set(err, RF_EIO, "a blob pack in %s/blobs/packs could not be written",
                            self->dir);
    if (self->pack && self->pbuf_len == 0)
        return 0;
    int rc = s_pack_write(self, self->pbuf, self->pbuf_len, err);
    if (!rc) /* (kept on a failure: what was put stays readable until the rollback) */
        self->pbuf_len = 0;
    return rc;
}

/* The bytes the open transaction put in the pack. */
static uint64_t s_pack_tx(const rf_store *self)
{
    return self->pack_begun ? self->pack_len - self->pack_end : 0;
}

/* Appends len bytes to the pack within the open transaction, at *off: gathered in memory,
 * written when PACK_BUF would overflow (or by the commit). The transaction's first blob
 * goes to the open pack, or to a new one (its id from the counter "pack", its file created
 * by the first write) when there is none or it passed PACK_ROLL. */
static int s_pack_append(rf_store *self, const void *data, size_t len, uint64_t *off, rf_error *err)
{
    if (!self->pack_begun) {
        if (!self->pack || self->pack_end >= PACK_ROLL) {
            uint64_t id = 0;
            int rc = rf_store_next(self, "pack", &id, err);
            if (rc)
                return rc;
            rf_atomic_file_close(&self->pack); /* its committed blobs stay where they are */
            self->pack_id = id;
            self->pack_end = 0;
            self->pack_new = 1;
        }
        self->pack_begun = 1;
        self->pack_len = self->pack_written = self->pack_end;
        self->pbuf_len = 0;
    }
    int rc = 0;
    if (self->pbuf_len > 0 && len > PACK_BUF - self->pbuf_len) /* out with what is gathered */
        rc = s_pack_flush(self, err);
    if (!rc && self->pbuf_len + len > self->pbuf_cap) { /* pbuf_len + len <= PACK_BUF here */
        size_t cap = self->pbuf_cap ? self->pbuf_cap : (size_t)64 << 10;
        while (cap < self->pbuf_len + len)
            cap *= 2;
        cap = cap < PACK_BUF ? cap : PACK_BUF;
        void *p = realloc(self->pbuf, cap);
        if (p) {
            self->pbuf = p;
            self->pbuf_cap = cap;
        }
    }
    if (!rc && self->pbuf_len + len <= self->pbuf_cap) {
        if (len > 0)
            memcpy(self->pbuf + self->pbuf_len, data, len);
        self->pbuf_len += len;
    } else if (!rc) { /* no memory to gather it: written as it is, after what is gathered */
        rc = s_pack_flush(self, err);
        if (!rc)
            rc = s_pack_write(self, data, len, err);
    }
    if (rc)
        return rc;
    *off = self->pack_len;
    self->pack_len += len;
    return 0;
}

/* Writes n in decimal at p; returns the end. */
static char *s_put_u64(char *p, uint64_t n)
{
    char digits[20];
    int k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (k > 0)
        *p++ = digits[--k];
    return p;
}

_Static_assert(RF_HASH_HEX - 1 + 3 * 21 + 1 <= RF_STORE_REF_MAX, "a reference fits");

/* "HASH@PACK+OFFSET+LENGTH" (at most 64 + 3 * 21 + 1 = RF_STORE_REF_MAX bytes), without
 * snprintf: one per result. */
static void s_ref_format(char out[RF_STORE_REF_MAX], const char *hex, uint64_t pack, uint64_t off,
                         size_t len)
{
    memcpy(out, hex, RF_HASH_HEX - 1);
    char *p = out + RF_HASH_HEX - 1;
    *p++ = '@';
    p = s_put_u64(p, pack);
    *p++ = '+';
    p = s_put_u64(p, off);
    *p++ = '+';
    p = s_put_u64(p, (uint64_t)len);
    *p = 0;
}

int rf_store_blob_put_ref(rf_store *self, const void *data, size_t len, const char *job_id,
                          char ref_out[RF_STORE_REF_MAX], rf_error *err)
{
    if (!self->in_tx || self->pack_failed || len > PACK_BLOB_MAX ||
        s_pack_tx(self) + len > PACK_MAX)
        return rf_store_blob_put(self, data, len, job_id, ref_out, err);
    rf_hash h;
    char hex[RF_HASH_HEX];
    rf_blake2b(data, len, &h);
    rf_hash_to_hex(&h, hex);
    uint64_t off = 0;
    int rc = s_pack_append(self, data, len, &off, err);
    if (rc)
        return rc;
    const char *job = job_id ? job_id : "";
    int known = 0;
    for (int i = 0; i < self->nrefjobs && !known; i++)
        known = strcmp(self->refjobs[i], job) == 0;
    if (!known) { /* the pack lives while a pack_jobs row names it */
        static const char *sql = "INSERT OR IGNORE INTO pack_jobs(pack, job_id) VALUES(?1, ?2)";
        sqlite3_stmt *st = s_stmt(self, sql, err);
        if (!st)
            return err ? (int)err->code : RF_EIO;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)self->pack_id);
        s_bind_text(st, 2, job);
        rc = s_step_done(self, st, err, "recording a pack");
        if (rc)
            return rc;
        if (self->nrefjobs < (int)(sizeof(self->refjobs) / sizeof(self->refjobs[0])))
            snprintf(self->refjobs[self->nrefjobs++], RF_STORE_ID_MAX, "%s", job);
    }
    s_ref_format(ref_out, hex, self->pack_id, off, len);
    return 0;
}

int rf_store_blob_put_packed(rf_store *self, const void *data, size_t len, const char *job_id,
                             char hex_out[RF_HASH_HEX], rf_error *err)
{
    if (!self->in_tx || self->pack_failed || len > PACK_BLOB_MAX ||
        s_pack_tx(self) + len > PACK_MAX)
        return rf_store_blob_put(self, data, len, job_id, hex_out, err);
    rf_hash h;
    rf_blake2b(data, len, &h);
    rf_hash_to_hex(&h, hex_out);
    static const char *find_sql = "SELECT pack, off FROM blobs WHERE hash = ?1 LIMIT 1";
    static const char *ins_sql =
        "INSERT OR IGNORE INTO blobs(hash, job_id, size, pack, off) VALUES(?1,?2,?3,?4,?5)";
    sqlite3_stmt *st = s_stmt(self, find_sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, hex_out);
    int found = sqlite3_step(st) == SQLITE_ROW;
    int loose = found && sqlite3_column_type(st, 0) == SQLITE_NULL;
    sqlite3_int64 pack = found ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_int64 off = found ? sqlite3_column_int64(st, 1) : 0;
    s_done(self, st);
    if (!found) { /* new bytes: appended to this transaction's pack */
        uint64_t at = 0;
        int rc = s_pack_append(self, data, len, &at, err);
        if (rc)
            return rc;
        pack = (sqlite3_int64)self->pack_id;
        off = (sqlite3_int64)at;
    }
    st = s_stmt(self, ins_sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, hex_out);
    s_bind_text(st, 2, job_id ? job_id : "");
    sqlite3_bind_int64(st, 3, (sqlite3_int64)len);
    if (loose) {
        sqlite3_bind_null(st, 4);
        sqlite3_bind_null(st, 5);
    } else {
        sqlite3_bind_int64(st, 4, pack);
        sqlite3_bind_int64(st, 5, off);
    }
    return s_step_done(self, st, err, "recording a blob");
}

static int s_pack_read(rf_store *self, const char *hex, uint64_t pack, uint64_t off, size_t n,
                       unsigned char **out, size_t *len, rf_error *err);

/* Reads a packed blob (RF_ENOTFOUND when no pack holds it). */
static int s_pack_get(rf_store *self, const char *hex, unsigned char **out, size_t *len,
                      rf_error *err)
{
    static const char *sql =
        "SELECT pack, off, size FROM blobs WHERE hash = ?1 AND pack IS NOT NULL LIMIT 1";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, hex);
    if (sqlite3_step(st) != SQLITE_ROW) {
        s_done(self, st);
        return RF_ENOTFOUND;
    }
    uint64_t pack = (uint64_t)sqlite3_column_int64(st, 0),
             off = (uint64_t)sqlite3_column_int64(st, 1);
    size_t n = (size_t)sqlite3_column_int64(st, 2);
    s_done(self, st);
    return s_pack_read(self, hex, pack, off, n, out, len, err);
}

/* Reads n bytes at off of pack (this transaction's, or its file) for blob hex. */
static int s_pack_read(rf_store *self, const char *hex, uint64_t pack, uint64_t off, size_t n,
                       unsigned char **out, size_t *len, rf_error *err)
{
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf)
        return rf_error_set(err, RF_ENOMEM, "out of memory reading blob %s (%zu bytes)", hex, n);
    int rc = 0;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/blobs/packs/%llu", self->dir, (unsigned long long)pack);
    if ((self->pack_begun || self->pack) && pack == self->pack_id) { /* the open pack */
        if (off > self->pack_len || n > self->pack_len - off) {
            rc = rf_error_set(err, RF_EIO,
                              "blob %s is missing from its pack %s: the pack is too "
                              "short",
                              hex, path);
        } else {
            /* the written part from the temp file, the rest from the gathered bytes */
            size_t in_file = off >= self->pack_written      ? 0
                             : n < self->pack_written - off ? n
                                                            : (size_t)(self->pack_written - off);
            if (in_file > 0)
                rc = rf_atomic_file_pread(self->pack, buf, in_file, off, err);
            if (!rc && in_file < n)
                memcpy(buf + in_file, self->pbuf + (off + in_file - self->pack_written),
                       n - in_file);
        }
    } else {
        if (self->rfd < 0 || self->rfd_id != pack) {
            if (self->rfd >= 0)
                close(self->rfd);
            self->rfd = open(path, O_RDONLY | O_CLOEXEC);
            self->rfd_id = pack;
        }
        size_t got = 0;
        while (self->rfd >= 0 && got < n) {
            ssize_t r = pread(self->rfd, buf + got, n - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got != n)
            rc = rf_error_set(err, RF_EIO, "blob %s is missing from its pack %s: %s", hex, path,
                              self->rfd < 0 ? strerror(errno) : "the pack is too short");
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* A reference "HASH@PACK+OFFSET+LENGTH" (rf_store_blob_put_ref): read from its pack. */
static int s_ref_get(rf_store *self, const char *ref, void **data, size_t *len, rf_error *err)
{
    char hex[RF_HASH_HEX];
    unsigned long long pack = 0, off = 0, n = 0;
    const char *at = strchr(ref, '@');
    char tail;
    if (!at || at - ref != RF_HASH_HEX - 1 ||
        sscanf(at + 1, "%llu+%llu+%llu%c", &pack, &off, &n, &tail) != 3 || n > PACK_BLOB_MAX)
        return rf_error_set(err, RF_EINVAL, "not a blob reference: %.100s", ref);
    memcpy(hex, ref, RF_HASH_HEX - 1);
    hex[RF_HASH_HEX - 1] = 0;
    rf_hash want, have;
    if (rf_hash_from_hex(hex, &want))
        return rf_error_set(err, RF_EINVAL, "not a blob reference: %.100s", ref);
    unsigned char *buf = NULL;
    size_t got = 0;
    int rc = s_pack_read(self, hex, pack, off, (size_t)n, &buf, &got, err);
    if (rc)
        return rc;
    rf_blake2b(buf, got, &have);
    if (!rf_hash_equal(&want, &have)) {
        free(buf);
        return rf_error_set(err, RF_EIO,
                            "blob %s is corrupt in its pack %s/blobs/packs/%llu: its contents do "
                            "not match its name",
                            hex, self->dir, pack);
    }
    *data = buf;
    *len = got;
    return 0;
}

int rf_store_blob_get(rf_store *self, const char *hex, void **data, size_t *len, rf_error *err)
{
    if (hex && strchr(hex, '@'))
        return s_ref_get(self, hex, data, len, err);
    char path[PATH_MAX + 160];
    if (rf_store_blob_path(self, hex, path, sizeof(path)))
        return rf_error_set(err, RF_EINVAL, "not a blob name: %.80s", hex);
    /* the pack first: most blobs read back are packed results, and a failed open of the
     * file they do not have costs a path lookup */
    unsigned char *buf = NULL;
    size_t n = 0;
    int prc = s_pack_get(self, hex, &buf, &n, err);
    FILE *f = prc ? fopen(path, "rb") : NULL; /* a pack that failed: its own file, if any */
    if (!f) {
        int e = errno;
        int rc = prc;
        if (rc == RF_ENOTFOUND)
            return rf_error_set(err, RF_ENOTFOUND, "blob %s is missing from %s/blobs: %s", hex,
                                self->dir, strerror(e));
        if (rc)
            return rc;
        rf_hash want, have;
        rf_hash_from_hex(hex, &want);
        rf_blake2b(buf, n, &have);
        if (!rf_hash_equal(&want, &have)) {
            free(buf);
            return rf_error_set(err, RF_EIO,
                                "blob %s is corrupt in its pack in %s/blobs/packs: its contents "
                                "do not match its name",
                                hex, self->dir);
        }
        *data = buf;
        *len = n;
        return 0;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        fclose(f);
        return rf_error_set(err, RF_EIO, "cannot stat %s", path);
    }
    n = (size_t)sb.st_size;
    buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return rf_error_set(err, RF_ENOMEM, "out of memory reading blob %s (%zu bytes)", hex, n);
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    fclose(f);
    rf_hash want, have;
    rf_hash_from_hex(hex, &want);
    rf_blake2b(buf, got, &have);
    if (got != n || !rf_hash_equal(&want, &have)) {
        free(buf);
        return rf_error_set(err, RF_EIO,
                            "blob %s is corrupt on disk (%s): its contents do not match its name",
                            hex, path);
    }
    *data = buf;
    *len = n;
    return 0;
}

/* Before pack's file goes (no row names it): closed if it is open for reading or is the
 * open pack (new blobs then go to a new one). Between transactions only. */
static void s_pack_forget(rf_store *self, uint64_t pack)
{
    if (self->rfd >= 0 && self->rfd_id == pack) {
        close(self->rfd);
        self->rfd = -1;
    }
    if (self->pack && self->pack_id == pack && !self->pack_begun)
        rf_atomic_file_close(&self->pack);
}

int rf_store_blob_gc(rf_store *self, int64_t cutoff_ms, int *removed, rf_error *err)
{
    /* states 3, 4, 5: JOB_DONE, JOB_FAILED, JOB_CANCELED of proto/reelfarm.proto */
    static const char *del_sql =
        "DELETE FROM blobs WHERE job_id IN (SELECT id FROM jobs WHERE state IN (3, 4, 5)"
        " AND finished_ms < ?1) RETURNING hash, pack";
    static const char *ref_sql = "SELECT 1 FROM blobs WHERE hash = ?1 LIMIT 1";
    static const char *pack_sql = "SELECT 1 FROM blobs WHERE pack = ?1 UNION ALL"
                                  " SELECT 1 FROM pack_jobs WHERE pack = ?1 LIMIT 1";
    /* the packs of their row-less blobs (rf_store_blob_put_ref) */
    static const char *packs_sql =
        "DELETE FROM pack_jobs WHERE job_id IN (SELECT id FROM jobs WHERE state IN (3, 4, 5)"
        " AND finished_ms < ?1) RETURNING pack";
    int count = 0;
    int rc = rf_store_begin(self, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = s_stmt(self, del_sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    sqlite3_bind_int64(st, 1, cutoff_ms);
    struct gone {
        char hash[RF_HASH_HEX];
        int64_t pack; /* -1: a file of its own */
    } *hashes = NULL;
    size_t n = 0, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            void *p = realloc(hashes, cap * sizeof(*hashes));
            if (!p)
                break;
            hashes = p;
        }
        s_col_copy(st, 0, hashes[n].hash, RF_HASH_HEX);
        hashes[n].pack =
            sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1);
        n++;
    }
    s_done(self, st);
    int64_t *packs = NULL;
    size_t np = 0, capp = 0;
    st = rc == SQLITE_DONE ? s_stmt(self, packs_sql, err) : NULL;
    if (st) {
        sqlite3_bind_int64(st, 1, cutoff_ms);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (np == capp) {
                capp = capp ? capp * 2 : 64;
                void *p = realloc(packs, capp * sizeof(*packs));
                if (!p)
                    break;
                packs = p;
            }
            packs[np++] = sqlite3_column_int64(st, 0);
        }
        s_done(self, st);
    }
    if (rc != SQLITE_DONE) { /* a pack must not go while a row might still name it */
        free(hashes);
        free(packs);
        rf_store_rollback(self);
        return err && err->code ? (int)err->code : s_db_error(self, err, "collecting blobs");
    }
    rc = rf_store_commit(self, err);
    for (size_t i = 0; !rc && i < np; i++) {
        sqlite3_stmt *q = s_stmt(self, pack_sql, err);
        if (!q)
            break;
        sqlite3_bind_int64(q, 1, packs[i]);
        int used = sqlite3_step(q) == SQLITE_ROW;
        s_done(self, q);
        if (used)
            continue;
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/blobs/packs/%lld", self->dir, (long long)packs[i]);
        s_pack_forget(self, (uint64_t)packs[i]);
        if (unlink(path) == 0)
            count++;
    }
    free(packs);
    for (size_t i = 0; !rc && i < n; i++) {
        sqlite3_stmt *q = s_stmt(self, ref_sql, err);
        if (!q)
            break;
        s_bind_text(q, 1, hashes[i].hash);
        int still = sqlite3_step(q) == SQLITE_ROW;
        s_done(self, q);
        char path[PATH_MAX + 160];
        if (still)
            continue;
        if (hashes[i].pack < 0) {
            if (rf_store_blob_path(self, hashes[i].hash, path, sizeof(path)) == 0 &&
                unlink(path) == 0)
                count++;
            continue;
        }
        count++; /* its bytes go with the last blob of its pack */
        q = s_stmt(self, pack_sql, err);
        if (!q)
            break;
        sqlite3_bind_int64(q, 1, hashes[i].pack);
        int used = sqlite3_step(q) == SQLITE_ROW;
        s_done(self, q);
        snprintf(path, sizeof(path), "%s/blobs/packs/%lld", self->dir, (long long)hashes[i].pack);
        if (!used) {
            s_pack_forget(self, (uint64_t)hashes[i].pack);
            unlink(path);
        }
    }
    free(hashes);
    if (removed)
        *removed = count;
    return rc;
}

/* ---- text cache ----------------------------------------------------------------- */

int rf_store_text_get(rf_store *self, const char *model_hash, const char *prompt,
                      char hex_out[RF_HASH_HEX], rf_error *err)
{
    static const char *sql = "SELECT blob FROM text_cache WHERE model_hash = ?1 AND prompt = ?2";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, model_hash);
    s_bind_text(st, 2, prompt);
    int rc = sqlite3_step(st);
    int out = 0;
    if (rc == SQLITE_ROW)
        s_col_copy(st, 0, hex_out, RF_HASH_HEX);
    else if (rc == SQLITE_DONE)
        out = RF_ENOTFOUND;
    else
        out = s_db_error(self, err, "reading the text cache");
    s_done(self, st);
    return out;
}

int rf_store_text_put(rf_store *self, const char *model_hash, const char *prompt,
                      const char *blob_hex, rf_error *err)
{
    static const char *sql =
        "INSERT OR REPLACE INTO text_cache(model_hash, prompt, blob) VALUES(?1, ?2, ?3)";
    sqlite3_stmt *st = s_stmt(self, sql, err);
    if (!st)
        return err ? (int)err->code : RF_EIO;
    s_bind_text(st, 1, model_hash);
    s_bind_text(st, 2, prompt);
    s_bind_text(st, 3, blob_hex);
    return s_step_done(self, st, err, "writing the text cache");
}
