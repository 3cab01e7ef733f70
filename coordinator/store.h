/* store.h - the coordinator's durable state: SQLite (WAL, synchronous=FULL) + blob files.
 *
 * Layout of --state DIR: state.db (jobs, tasks, chunks, fused rounds, events, blobs,
 * text cache, counters) and blobs/<2 hex>/<64 hex> (content-addressed by BLAKE2b-256,
 * written temp + fsync + rename + directory fsync before their row is committed), or, for
 * small blobs, blobs/packs/<n>: a file that takes transaction after transaction (until it
 * passes 16 MiB, or the store is reopened), each transaction's blobs gathered in memory,
 * appended and made durable (fdatasync; the directory once, for a new pack) just before
 * that transaction's COMMIT: the group commit of the blobs.
 * Transitions of one event-loop turn share one transaction: rf_store_begin opens it
 * (idempotent), rf_store_commit makes it durable; the caller acknowledges nothing to
 * anyone before the commit returns. Rows are plain structs; strings in them are owned
 * by the struct and freed with the matching *_clear function. DIR must be a local or
 * block volume (WAL does not work on NFS).
 */
#ifndef RF_STORE_H
#define RF_STORE_H

#include "error.h"
#include "hash.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rf_store rf_store;

#define RF_STORE_ID_MAX  64
#define RF_STORE_REF_MAX 128 /* a blob reference: hash, "@", pack, offset, length */

/* Opens (creating when needed, mode 0700) the state directory. Refuses a database
 * written by a newer schema. */
rf_store *rf_store_open(const char *state_dir, rf_error *err);
void rf_store_destroy(rf_store **self);
const char *rf_store_dir(const rf_store *self);

/* Group commit: begin is idempotent within a turn; commit is a no-op when nothing began. */
int rf_store_begin(rf_store *self, rf_error *err);
int rf_store_commit(rf_store *self, rf_error *err);
void rf_store_rollback(rf_store *self);
/* 1 while a transaction is open (something waits for the next commit). */
int rf_store_in_tx(const rf_store *self);

/* A persistent counter (attempt ids, job numbers): returns the next value (from 1). */
int rf_store_next(rf_store *self, const char *counter, uint64_t *out, rf_error *err);

/* ---- jobs ----------------------------------------------------------------------- */
typedef struct rf_store_job {
    char id[RF_STORE_ID_MAX];
    char *name, *spec, *spec_name, *model, *output_path, *error;
    char model_hash[RF_HASH_HEX];
    int state; /* JobState of proto/reelfarm.proto */
    int priority;
    int64_t submitted_ms, started_ms, finished_ms;
    int rounds_done; /* lockstep rounds fused and committed */
    /* progress when the row was last written (the answer about a finished job that left
     * the coordinator's memory); -1: unknown (a row written before schema 5) */
    int64_t steps_done, steps_total;
    int segments_done, segments_total;
} rf_store_job;

void rf_store_job_clear(rf_store_job *job);
/* Inserts or replaces the whole row. */
int rf_store_job_put(rf_store *self, const rf_store_job *job, rf_error *err);
/* Loads one job (RF_ENOTFOUND when absent); clear it afterwards. */
int rf_store_job_get(rf_store *self, const char *id, rf_store_job *out, rf_error *err);
/* Calls fn for the newest `limit` jobs whose state is in states_mask (bit 1 << state; 0:
 * every state), newest first; fn returns nonzero to stop. *matched (may be NULL): how many
 * jobs match in all. Reads only the rows it returns (the seq index, or the (state, seq) index
 * merged across the states asked for) and counts the matches on the (state, seq) index: the
 * other states' rows are not read. States above 7 match nothing (none is ever written). */
int rf_store_job_newest(rf_store *self, uint32_t states_mask, uint32_t limit,
                        int (*fn)(void *ctx, const rf_store_job *job), void *ctx, uint64_t *matched,
                        rf_error *err);
/* Calls fn for every job in submission order; fn returns nonzero to stop. */
int rf_store_job_each(rf_store *self, int (*fn)(void *ctx, const rf_store_job *job), void *ctx,
                      rf_error *err);

/* ---- tasks ---------------------------------------------------------------------- */
typedef struct rf_store_task {
    char id[RF_STORE_ID_MAX];
    char job_id[RF_STORE_ID_MAX];
    int kind; /* TaskKind */
    int unit; /* chunk, segment or prompt index, by kind */
    int step_begin, step_end;
    int state;        /* UnitState */
    uint64_t attempt; /* the current attempt id: the ownership fence (0: never dispatched) */
    char worker[RF_STORE_ID_MAX];
    int64_t lease_deadline_ms;
    int failures;
    char *failed_workers;          /* comma-separated worker names that failed it */
    char result[RF_STORE_REF_MAX]; /* a blob's hash, or a reference (rf_store_blob_put_ref) */
    char *error;
    char worker_name[128]; /* the name of that worker (survives a coordinator restart) */
    int64_t rowid;         /* the row's SQLite rowid (0: unknown): set by insert, get, each */
} rf_store_task;

void rf_store_task_clear(rf_store_task *task);
/* Writes the task's row: updated in place when it exists (found by task->rowid when that
 * is known and still names this id, else by the id), inserted otherwise (task->rowid set). */
int rf_store_task_put(rf_store *self, rf_store_task *task, rf_error *err);
/* Inserts the row of a task that has none yet (a job being submitted under a new id): one
 * write, without rf_store_task_put's lookup for an existing row. A row already there with
 * that id is refused (an error, nothing written). Sets task->rowid. */
int rf_store_task_insert(rf_store *self, rf_store_task *task, rf_error *err);
int rf_store_task_get(rf_store *self, const char *id, rf_store_task *out, rf_error *err);
int rf_store_task_each(rf_store *self, const char *job_id,
                       int (*fn)(void *ctx, const rf_store_task *task), void *ctx, rf_error *err);

/* ---- chunks and fused rounds ------------------------------------------------------ */
typedef struct rf_store_chunk {
    char job_id[RF_STORE_ID_MAX];
    int timeline, index;
    int step;                     /* sampler steps completed */
    int round;                    /* sync rounds completed */
    char worker[RF_STORE_ID_MAX]; /* holding the state now ("" if none) */
    char checkpoint[RF_HASH_HEX]; /* blob of the last full state ("" if none) */
    int checkpoint_round;
} rf_store_chunk;

int rf_store_chunk_put(rf_store *self, const rf_store_chunk *chunk, rf_error *err);
int rf_store_chunk_each(rf_store *self, const char *job_id,
                        int (*fn)(void *ctx, const rf_store_chunk *chunk), void *ctx,
                        rf_error *err);
/* The fused overlaps of round `round` of one timeline (a blob), kept until every chunk
 * of that timeline has a newer checkpoint. */
int rf_store_round_put(rf_store *self, const char *job_id, int timeline, int round,
                       const char *blob_hex, rf_error *err);
/* Calls fn for the rounds >= from_round of one timeline (timeline < 0: of every timeline),
 * ordered by timeline then round. */
int rf_store_round_each(rf_store *self, const char *job_id, int timeline, int from_round,
                        int (*fn)(void *ctx, int timeline, int round, const char *blob_hex),
                        void *ctx, rf_error *err);
/* Forgets the rounds < before of one timeline (their blobs become garbage). */
int rf_store_round_prune(rf_store *self, const char *job_id, int timeline, int before,
                         rf_error *err);

/* ---- events (job logs and the watch stream) ------------------------------------- */
int rf_store_event_add(rf_store *self, const char *job_id, int64_t time_ms, const char *level,
                       const char *text, uint64_t *seq_out, rf_error *err);
int rf_store_event_each(rf_store *self, const char *job_id, int64_t since_ms, int limit,
                        int (*fn)(void *ctx, uint64_t seq, int64_t time_ms, const char *level,
                                  const char *text),
                        void *ctx, rf_error *err);

/* ---- blobs ---------------------------------------------------------------------- */
/* Stores len bytes durably under their BLAKE2b-256 (an existing blob is reused),
 * records it for job_id ("" for shared blobs), returns the hex name. */
int rf_store_blob_put(rf_store *self, const void *data, size_t len, const char *job_id,
                      char hex_out[RF_HASH_HEX], rf_error *err);
/* The same inside a transaction for a blob that needs no file of its own (results, fused
 * rounds, checkpoints: read back only through rf_store_blob_get): up to 1 MiB it joins the
 * open pack (blobs/packs/N), gathered in memory and appended by the commit in one write
 * (or by a later put, once the gathered bytes would pass 1 MiB), and the pack is made
 * durable once, by the commit, before the rows naming its blobs; larger blobs, or a put
 * outside a transaction, take rf_store_blob_put's path. A pack that cannot be written
 * fails the transaction's commit (and the put whose write failed, when one did), and the
 * next transaction's blobs go to a new pack. */
int rf_store_blob_put_packed(rf_store *self, const void *data, size_t len, const char *job_id,
                             char hex_out[RF_HASH_HEX], rf_error *err);
/* For one job's blob that a row of the caller names (a chunk's result in its task row):
 * put in the open pack like rf_store_blob_put_packed but with no blob row
 * (whose index, keyed by a random hash, took a page write per result); the pack is
 * recorded for the job once per transaction (pack_jobs, what the GC of the job's blobs
 * deletes). *ref_out: "HASH@PACK+OFFSET+LENGTH", read back by rf_store_blob_get. Equal
 * bytes are not shared. Outside a transaction, over 1 MiB or after a failed pack write: as
 * rf_store_blob_put (ref_out is the hash). */
int rf_store_blob_put_ref(rf_store *self, const void *data, size_t len, const char *job_id,
                          char ref_out[RF_STORE_REF_MAX], rf_error *err);
/* Reads a whole blob (its own file, else its pack; or the place a reference names) into a
 * malloc'd buffer (caller frees), verifying its hash. */
int rf_store_blob_get(rf_store *self, const char *hex, void **data, size_t *len, rf_error *err);
/* The file path of a blob put with rf_store_blob_put (for streaming, e.g. a finished video;
 * a packed blob has no file of its own). */
int rf_store_blob_path(const rf_store *self, const char *hex, char *buf, size_t cap);
/* Deletes the blobs of jobs that finished before cutoff_ms and are not referenced by a
 * live job (a pack once no row names any of its blobs; the open pack too: new blobs then
 * go to a new one); returns how many files went in *removed. */
int rf_store_blob_gc(rf_store *self, int64_t cutoff_ms, int *removed, rf_error *err);

/* ---- text-embedding cache (model hash + prompt) -> blob ---------------------------- */
int rf_store_text_get(rf_store *self, const char *model_hash, const char *prompt,
                      char hex_out[RF_HASH_HEX], rf_error *err); /* RF_ENOTFOUND on a miss */
int rf_store_text_put(rf_store *self, const char *model_hash, const char *prompt,
                      const char *blob_hex, rf_error *err);

#endif
