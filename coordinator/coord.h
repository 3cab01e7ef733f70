/* coord.h - the coordinator process: one event loop over the worker and API sockets.
 *
 * Public part: a config, new/run/stop/destroy. The rest of this header is shared by the
 * subsystem files of coordinator/ (coord.c: loop, sends, recovery; workers.c: sessions;
 * api.c: requests; jobs.c: submit, planning, job life; sched.c: dispatch, leases,
 * results; rounds.c: lockstep fusion, checkpoints, replay; stitch.c: the output) and by
 * nobody else. Single-threaded: every function here runs on the loop's thread. A
 * transition is written to the store before anything that depends on it is sent:
 * c_send commits the open transaction first (group commit: all transitions of one turn
 * before the first send share one commit). Never links the engine.
 */
#ifndef RF_COORD_H
#define RF_COORD_H

#include "chunk_state.h"
#include "config.h"
#include "error.h"
#include "hash.h"
#include "metrics.h"
#include "plan.h"
#include "secure.h"
#include "spec.h"
#include "store.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

#define RF_COORD_MAX_MODEL_DIRS 16

typedef struct rf_coord_config {
    const char *listen;      /* worker ROUTER endpoint */
    const char *api;         /* API ROUTER endpoint */
    const char *state_dir;   /* --state */
    const char *output_root; /* outputs are confined here (default: the current directory) */
    const char *model_dirs[RF_COORD_MAX_MODEL_DIRS];
    int n_model_dirs;
    int heartbeat_ms;   /* beat interval both ways (default 1000) */
    int liveness;       /* missed beats before a worker is lost (default 5) */
    int lease_ms;       /* attempt lease without Progress (default 30000) */
    int segment_latent; /* latent frames per DECODE segment of a job submitted from now on
                         * (default 8; each job's spec keeps its own: plan.decode_segment) */
    int concat_bytes;   /* 1: join segments byte for byte (test workers' segments only) */
    /* operations (coordinator/ops.c): CURVE key files (NULL: CURVE off, so endpoints must
     * be private unless insecure), the metrics address (NULL: off) and the config (flags
     * and file: allowed URL hosts, input root; re-read on SIGHUP; NULL: none, the key
     * files are re-read as they are, no URL or file input is allowed). */
    const char *server_secret_key, *allowed_worker_keys, *allowed_client_keys;
    int insecure;
    const char *metrics;
    rf_config *config;
    int64_t retention_s;       /* finished jobs' blobs are collected after this (0: at once) */
    int64_t max_jobs;          /* unfinished jobs accepted at once (0: no limit) */
    int64_t max_frames;        /* pixel frames of one job (0: the spec's own limit) */
    int64_t max_message_bytes; /* one wire message (0: the wire default) */
} rf_coord_config;

typedef struct rf_coord rf_coord;

/* Opens the store, binds both sockets and resumes the jobs found in the store. NULL +
 * err when a socket cannot bind or the state cannot be opened. */
rf_coord *rf_coord_new(const rf_coord_config *cfg, rf_error *err);
/* Serves until rf_coord_stop; returns 0 after a clean stop (everything committed). */
int rf_coord_run(rf_coord *self, rf_error *err);
/* Asks the loop to stop at its next turn; async-signal-safe. */
void rf_coord_stop(rf_coord *self);
/* Asks the loop to reload keys and allow-lists (SIGHUP) at its next turn;
 * async-signal-safe. */
void rf_coord_reload(rf_coord *self);
void rf_coord_destroy(rf_coord **self);

/* ================= internal: shared by the files of coordinator/ only ======================== */

typedef struct c_worker {
    char id[RF_STORE_ID_MAX];
    char name[128];
    unsigned char peer[RF_WIRE_PEER_MAX];
    size_t peer_len;
    char backend[32];
    uint32_t threads, tp, max_tasks;
    uint64_t memory_bytes;
    char (*models)[RF_HASH_HEX];
    size_t n_models;
    int64_t connected_ms, last_seen_ms;
    int64_t last_sent_ms; /* our last message to it (a Heartbeat is due an interval later) */
    int draining;
    int running; /* attempts it holds */
    uint64_t tasks_done, tasks_failed;
    int free_pos; /* index + 1 in rf_coord.wfree (0: not there) */
    struct c_worker *next;
} c_worker;

struct c_job;
struct c_inputs;
struct c_fetches;

typedef struct c_task {
    rf_store_task row;
    struct c_job *job;
    int steps_done; /* DENOISE progress of the current attempt */
    int orphan;     /* RUNNING, but its worker (row.worker_name) has not said Hello since a
                     * coordinator restart or a reconnect: adopted when it does and still
                     * holds the chunk, requeued when its lease runs out first */
} c_task;

typedef struct c_chunk {
    rf_plan_chunk plan;
    rf_store_chunk row;
    c_task *task;         /* its DENOISE task */
    int prompt, negative; /* indices into the job's prompts (-1: none) */
    rf_chunk_state *up;   /* OverlapUp waiting for round up_round to fuse */
    int up_round;
} c_chunk;

typedef struct c_timeline {
    int index;
    int fused_round; /* last fused and committed round */
    int nchunks;
    int ndone; /* chunks whose DENOISE task is DONE (decode is ready at nchunks) */
    c_chunk **chunks;
    rf_cs_span *windows;
    int64_t maxlen;      /* the longest window (rf_fusion_needed) */
    int64_t round_t0_ms; /* first OverlapUp of the round being gathered (ops.c metrics) */
} c_timeline;

typedef struct c_job {
    rf_store_job row;
    rf_job_spec *spec;
    rf_plan *plan;
    char *model_dir;
    int sync_every, checkpoint_every, rounds_total, warmup;
    char **prompts;            /* distinct prompt texts (positive and negative) */
    char (*text)[RF_HASH_HEX]; /* their embeddings' blobs ("" until encoded) */
    int nprompts;
    c_task *tasks; /* text prompts, then media (inputs.c), denoise chunks, decode segments */
    int ntasks;
    struct c_inputs *in; /* the job's input (image, video, continue); NULL: text only */
    int nmedia;          /* ENCODE_MEDIA tasks, at tasks[nprompts .. nprompts + nmedia) */
    c_chunk *chunks;
    c_timeline *timelines;
    int done_segments;
    int done_upto;      /* tasks [0, done_upto) are DONE */
    int ready_from;     /* tasks before it are not PENDING (the dispatcher starts here) */
    int queued;         /* sched.c: in the run queue (it may have a task to dispatch) */
    int64_t rate_t0_ms; /* last progress event sent to watchers */
    /* rate: chunk-steps done sampled about once a second over the last RATE_WINDOW samples */
    int64_t rate_ms[16];
    uint64_t rate_steps[16];
    int rate_n, rate_head;
    struct c_job *next;
} c_job;

typedef struct c_watch {
    unsigned char peer[RF_WIRE_PEER_MAX];
    size_t peer_len;
    uint64_t request_id;
    char job_id[RF_STORE_ID_MAX]; /* "" = every job */
    struct c_watch *next;
} c_watch;

typedef struct c_model {
    char *path;
    char hash[RF_HASH_HEX];
    int64_t mtime_ns;
    struct c_model *next;
} c_model;

struct rf_coord {
    rf_coord_config cfg;
    char output_root[4096];
    void *zctx, *wsock, *asock;
    rf_store *store;
    rf_wire_limits limits;
    volatile int stop;
    int dirty;             /* something changed: run the dispatcher */
    int paused;            /* the store failed (e.g. disk full): no dispatch until it works again */
    int unacked;           /* a commit wrote something no message has announced yet */
    int need_reload;       /* a commit was refused this turn: memory is reloaded from the store */
    int64_t commit_us;     /* how long the last commit that wrote something took */
    int64_t next_probe_ms; /* while paused: next check whether the store is writable */
    char pause_reason[RF_ERROR_MSG_MAX];
    int orphans; /* upper bound of orphaned attempts (c_task.orphan) */
    struct c_lost {
        char task_id[RF_STORE_ID_MAX];
        uint64_t attempt;
    } * lost; /* results the store refused: requeued (nobody blamed) when it works again */
    int nlost, caplost;
    /* sched.c: results (whole messages, with the id of the worker that sent them) whose
     * store writes are in the open transaction: released once a commit made them durable;
     * when the store refuses them (a pack or row write, or the commit, fails: disk full)
     * they move to replay and are applied again once the store works (c_jobs_resume), so
     * nothing a worker computed is lost to a full disk and nobody is blamed for it */
    struct c_held {
        rf_wire_msg msg;
        char worker[RF_STORE_ID_MAX];
    } * held, *replay;
    int nheld, capheld, nreplay, capreplay;
    int held_busy; /* the held result being applied now (-1: none) */
    struct c_claim {
        c_task *task;
        c_worker *worker;
        uint64_t attempt;
    } * claims; /* attempts claimed by one dispatch pass, sent after one commit */
    int nclaims, capclaims;
    int pass_reads; /* chunk results the DECODE claims of this pass will read */
    int pass_full;  /* a DECODE waits for the next pass (the read budget is spent) */
    int64_t turn_decode_reads, turn_decode_reads_max; /* read by this pass; most by one */
    /* leases: a min-heap of (deadline, task, attempt) entries, one pushed per dispatch;
     * an entry whose attempt ended is dropped when it surfaces, one whose lease was
     * extended is pushed again with the new deadline (sched.c) */
    struct c_lease {
        int64_t deadline;
        c_task *task;
        uint64_t attempt;
    } * leases;
    int nleases, capleases, leases_limit;
    /* stored tensors sent with many tasks (text embeddings: immutable, content-addressed)
     * kept in memory, least recently used evicted beyond a byte budget (sched.c) */
    struct c_tcache {
        char hex[RF_HASH_HEX];
        uint64_t key; /* the hash's first 8 bytes, compared first */
        void *data;   /* the stored file: header + values */
        size_t len;
        uint64_t used;
    } * tcache;
    int ntcache, captcache;
    size_t tcache_bytes;
    uint64_t tcache_tick;
    int64_t started_ms, next_beat_ms;
    uint64_t beat_seq, event_seq;
    unsigned beat_slice; /* workers.c: which eighth of the workers the next beats go to */
    c_worker *workers;
    /* workers.c: the workers indexed by id and by routing id (open addressing, wcap slots
     * each, a power of two at least twice nworkers; rebuilt when a worker leaves), and the
     * set of workers that may have a free slot: placement looks only there (sched.c) */
    c_worker **wid, **wpeer;
    size_t wcap;
    int nworkers;
    c_worker **wfree;
    int nwfree, capwfree;
    int64_t next_live_ms; /* next liveness check of every worker */
    /* the jobs in memory: every unfinished one, and finished ones until the end of the turn
     * that committed their final state (c_jobs_evict); the rest are rows in the store,
     * counted by state in jobs_gone */
    c_job *jobs, *jobs_tail;
    int64_t jobs_gone[6];
    int evict_pending; /* a job finished this turn */
    /* jobs.c: the jobs by id (open addressing, jcap slots, a power of two at least twice
     * njobs) */
    c_job **jmap;
    size_t jcap;
    int njobs;
    /* sched.c: the run queue, one ring of jobs per priority (highest first), holding the
     * jobs that may have a task to dispatch (c_job_wake), and the jobs of one dispatch
     * pass that wait for a free worker that fits */
    struct c_runq {
        int prio;
        c_job **ring;
        int head, n, cap;
    } * runq;
    int nrunq, caprunq;
    c_job **parked;
    int nparked, capparked;
    int64_t next_wake_ms;
    c_watch *watches;
    c_model *models;
    rf_secure *secure; /* ops.c */
    rf_metrics *metrics;
    rf_metrics_server *metrics_server;
    volatile int reload;
    int64_t next_gauges_ms;
    uint64_t ops_steps;
    int64_t ops_frames;
    int64_t next_gc_ms;
    struct c_fetches *fetches; /* inputs.c: downloads in flight (NULL until the first URL) */
};

/* ops.c: endpoint security, metrics, SIGHUP */
int c_ops_start(rf_coord *c, rf_error *err); /* after zmq_ctx_new, before binding */
int c_ops_prepare(rf_coord *c, void *sock, int api, const char *endpoint, rf_error *err);
void c_ops_tick(rf_coord *c, int64_t now); /* every loop turn */
void c_ops_stop(rf_coord *c);              /* after closing the sockets, before the term */
const char *c_ops_kind_name(int kind);
/* metrics hooks: an attempt ended ("ok", "failed"; seconds < 0 when unknown), a lease
 * expired, a round's first OverlapUp arrived / the round was fused, a message moved */
void c_ops_task_end(rf_coord *c, const c_task *t, const char *outcome, double seconds);
void c_ops_lease_expired(rf_coord *c, const c_task *t);
void c_ops_round_up(rf_coord *c, c_timeline *tl);
void c_ops_round_fused(rf_coord *c, c_timeline *tl);
void c_ops_bytes(rf_coord *c, const rf_wire_msg *msg, int sent);
/* Counts one chunk state on the wire: part "overlap_up", "overlap_down", "checkpoint"
 * (a full sampler state) or "result" (a finished chunk's latent); its
 * size is the sum of the blobs' lengths. */
void c_ops_state_bytes(rf_coord *c, const char *part, const rf_wire_blob *blobs, size_t n);
/* n chunk results read from the store for a DECODE latent (c_timeline_latent). */
void c_ops_decode_reads(rf_coord *c, int n);
/* The end of a dispatch pass: the most results one pass has read (metrics). */
void c_ops_pass_done(rf_coord *c);
/* Jobs are about to leave memory: the work counters take in what they did since the last
 * tick; then c_ops_job_left for each (its part leaves the sums the counters grow from). */
void c_ops_jobs_leaving(rf_coord *c);
void c_ops_job_left(rf_coord *c, const c_job *j);
/* limits.max_jobs and limits.max_frames for a parsed spec at submit; RF_EINVAL says which. */
int c_ops_admit(rf_coord *c, const rf_job_spec *spec, rf_error *err);

/* inputs.c: image, video and continuation inputs (ARCHITECTURE.md §2.3) */
/* ENCODE_MEDIA tasks the job needs (call from the build, before the tasks are laid out). */
int c_inputs_count(c_job *job, rf_error *err);
/* Lays out those tasks at job->tasks[job->ntasks...] (ids "<job>/media/<i>"). */
void c_inputs_build(c_job *job);
void c_inputs_free(c_job *job);
/* After the job is stored (submit) or loaded (restart, reload, retry): gets the input into
 * the store (read a file, or queue a download) unless the store has it already, then
 * checks it and plans what its ENCODE_MEDIA tasks cover. Failures fail the job. */
void c_inputs_start(rf_coord *c, c_job *job);
/* 1 when t may be dispatched as far as inputs go (always for a job without one). */
int c_inputs_ready(const c_task *t);
/* Fills an ENCODE_MEDIA assignment: em and the blob 'input' (data malloc'd in *owned). */
int c_inputs_assign_media(rf_coord *c, c_task *t, Reelfarm__EncodeMedia *em, Reelfarm__BlobRef *ref,
                          rf_wire_blob *blob, void **owned, rf_error *err);
/* The conditions of a DENOISE assignment (storage the message points into). */
typedef struct c_cond_msg {
    Reelfarm__BlobRef ref, *refp[1];
    Reelfarm__FrameRange fr, *frp[1];
    float *data;
} c_cond_msg;
/* Attaches t's chunk's known frames (blob "condition/0") and strength to dn; nothing when
 * the chunk has none. Free cm->data after sending. */
int c_inputs_assign_denoise(rf_coord *c, c_task *t, Reelfarm__Denoise *dn, c_cond_msg *cm,
                            rf_wire_blob *blobs, size_t *nb, rf_error *err);
/* Stores an ENCODE_MEDIA result (its warm-up frames dropped) as t->row.result. */
int c_inputs_result(rf_coord *c, c_task *t, rf_wire_msg *msg, rf_error *err);
/* The loop polls this fd (-1: none) and calls c_inputs_fetched when it is readable. */
int c_inputs_fd(rf_coord *c);
void c_inputs_fetched(rf_coord *c);
void c_inputs_stop(rf_coord *c);

/* sched.c: stored tensors (text embeddings, encoded media): magic, dtype, shape, data */
int c_tensor_put(rf_coord *c, const rf_wire_blob *b, const char *job_id, char *hex, rf_error *err);
int c_tensor_get(rf_coord *c, const char *hex, const char *name, rf_wire_blob *b, void **owned,
                 rf_error *err);

/* coord.c */
int64_t c_now_ms(void);
/* Monotonic microseconds (durations: turn budgets, commit times). */
int64_t c_mono_us(void);
/* Commits the open transaction (no-op when none). On failure: rolls back, pauses dispatch,
 * logs, and has the loop reload every job from the store before the next message, so
 * memory never runs ahead of the store; nothing later in the same turn is committed. */
int c_commit(rf_coord *c);
/* A store write failed (disk full): same as a refused commit. */
void c_store_failed(rf_coord *c, const rf_error *err);
/* Sends msg on the worker or API socket after committing. Logs and returns nonzero on
 * failure (a vanished peer is not an error of the loop). */
int c_send(rf_coord *c, void *sock, rf_wire_msg *msg);
/* Sends Error{code, text} answering `to`. */
void c_reply_error(rf_coord *c, void *sock, const rf_wire_msg *to, int code, const char *text);
/* Records a job event (store + log + watchers). level: "info", "warn", "error". */
void c_job_event(rf_coord *c, c_job *job, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Streams the job's progress/state to its watchers. */
void c_job_notify(rf_coord *c, c_job *job, int kind);

/* workers.c */
void c_worker_message(rf_coord *c, rf_wire_msg *msg);
void c_workers_tick(rf_coord *c, int64_t now);
c_worker *c_worker_find(rf_coord *c, const char *id_or_name);
int c_worker_has_model(const c_worker *w, const char *hash);
void c_worker_lost(rf_coord *c, c_worker *w, const char *why);
void c_worker_drain(rf_coord *c, c_worker *w, const char *reason);
/* w may have a free slot now (a task ended, it joined): placement looks at it again. */
void c_worker_may_free(rf_coord *c, c_worker *w);
/* A message went to the worker with msg's routing id (its next Heartbeat can wait). */
void c_worker_sent(rf_coord *c, const rf_wire_msg *msg);
/* Removes w from the free set (it has no free slot, or it is leaving). */
void c_worker_unfree(rf_coord *c, c_worker *w);
/* Frees the worker indexes (at the end). */
void c_workers_index_free(rf_coord *c);

/* api.c */
void c_api_message(rf_coord *c, rf_wire_msg *msg);

/* jobs.c */
int c_jobs_load(rf_coord *c, rf_error *err);
/* Replaces every in-memory job with what the store holds (after a refused commit), keeps
 * running attempts on their live workers and the OverlapUps gathered for unfused rounds. */
int c_jobs_reload(rf_coord *c, rf_error *err);
/* The store works again: leases restart, held-back fusions run, refused results requeue. */
void c_jobs_resume(rf_coord *c, int64_t now);
void c_job_free(c_job *job);
/* Lets the finished jobs go from memory (call after a successful commit: their final
 * state is in the store, which answers for them from then on: c_job_load_gone). */
void c_jobs_evict(rf_coord *c);
/* A finished job that left memory, built again from the store (its tasks and chunks as
 * stored, and its fused rounds when rounds; not linked into the jobs, nothing resumed) to
 * answer about it or retry it.
 * Caller frees (c_job_free) or links it (c_job_adopt_gone). NULL + err: RF_ENOTFOUND when
 * the store has no such job, RF_EINVAL when it is not finished, else why it cannot be
 * rebuilt (e.g. its model folder went away). */
c_job *c_job_load_gone(rf_coord *c, const char *id, int rounds, rf_error *err);
/* Puts a job from c_job_load_gone back among the jobs in memory (before a retry). */
void c_job_adopt_gone(rf_coord *c, c_job *job);
/* Fills info from a stored job row alone (a finished job out of memory whose spec
 * cannot be rebuilt, and job lists); free with c_job_free_info. */
void c_job_row_info(const rf_store_job *row, Reelfarm__JobInfo *info);
/* Frees the jobs' id index (at the end, with the jobs). */
void c_jobs_index_free(rf_coord *c);
/* Hands the orphaned attempts of w's name to w when it still holds their chunks
 * (Hello.resident), requeues the rest (nobody blamed). */
void c_jobs_adopt(rf_coord *c, c_worker *w, const Reelfarm__Hello *h);
/* Samples the job's chunk-steps for the rate (call when steps advance). */
void c_job_rate_sample(c_job *job, int64_t now);
/* Chunk-steps per second over the recent window (0 when unknown) and the ETA (-1). */
double c_job_rate(const c_job *job, double *eta_seconds);
c_job *c_job_find(rf_coord *c, const char *id);
/* Validates and queues a spec; on refusal fills diags/err and returns nonzero. */
int c_job_submit(rf_coord *c, const Reelfarm__Submit *req, rf_spec_diags *diags, char *job_id,
                 rf_error *err);
void c_job_cancel(rf_coord *c, c_job *job, const char *why);
int c_job_retry(rf_coord *c, c_job *job, rf_error *err);
void c_job_fail(rf_coord *c, c_job *job, const char *why);
/* Moves a job forward after a task finished: decode readiness, stitching, DONE. */
void c_job_advance(rf_coord *c, c_job *job);
int c_job_terminal(const c_job *job);
uint64_t c_job_steps_done(const c_job *job);
uint64_t c_job_steps_total(const c_job *job);
/* Fills info from the job in memory (strings borrowed from it; detail: every chunk and
 * segment too, allocated a block per timeline); free with c_job_free_info. */
void c_job_fill_info(const c_job *job, Reelfarm__JobInfo *info, int detail);
void c_job_free_info(Reelfarm__JobInfo *info);
c_task *c_task_find(rf_coord *c, const char *task_id);
int c_task_put(rf_coord *c, c_task *t);

/* sched.c */
void c_dispatch(rf_coord *c);
/* Something happened to job that may have made a task of it ready (added, loaded,
 * retried, a task ended or went back to PENDING, its input arrived): the dispatcher looks
 * at it again. Call it for every such event; without it the job waits for the
 * once-a-second look at every job. */
void c_job_wake(rf_coord *c, c_job *job);
void c_jobs_wake_all(rf_coord *c);
/* Takes job out of the run queue (before it is freed). */
void c_job_unqueue(rf_coord *c, c_job *job);
/* Empties the run queue and frees it, leaving the jobs alone: only when every job goes
 * (reload, destroy). */
void c_runq_clear(rf_coord *c);
void c_leases_tick(rf_coord *c, int64_t now);
/* Rebuilds the lease heap from the running tasks (after jobs were loaded or reloaded: the
 * heap points into them; also drops the entries of ended attempts). */
void c_leases_rebuild(rf_coord *c);
/* Ends the current attempt of t (lost lease, lost worker, retryable error): requeues
 * it, or fails the job when 3 different workers failed it. counts: 1 when it counts
 * as a failure of worker. */
void c_task_requeue(rf_coord *c, c_task *t, const char *worker, const char *why, int counts);
/* Applies a TaskResult (its message is kept, see rf_coord.held, until a commit made it
 * durable: the caller's msg is left zeroed when it was taken). */
void c_on_result(rf_coord *c, c_worker *w, rf_wire_msg *msg);
/* The open transaction was committed: the results it held are durable (released). */
void c_results_durable(rf_coord *c);
/* The open transaction was refused: the results it held wait for c_results_replay. */
void c_results_refused(rf_coord *c);
/* The store works again (after the reload): the refused results are applied again, each
 * when its attempt is still current (else dropped: the task was requeued meanwhile). */
void c_results_replay(rf_coord *c);
/* Frees the held and refused results (at the end). */
void c_results_free(rf_coord *c);
void c_on_task_error(rf_coord *c, c_worker *w, rf_wire_msg *msg);
void c_on_progress(rf_coord *c, c_worker *w, rf_wire_msg *msg);
/* The task's current attempt if worker w owns it, else NULL (and the message is stale). */
c_task *c_fence(rf_coord *c, c_worker *w, const char *task_id, uint64_t attempt, const char *what);
void c_cancel_attempt(rf_coord *c, c_task *t, const char *reason);
/* Frees the in-memory cache of stored tensors. */
void c_tcache_free(rf_coord *c);

/* rounds.c */
void c_on_overlap_up(rf_coord *c, c_worker *w, rf_wire_msg *msg);
void c_on_checkpoint(rf_coord *c, c_worker *w, rf_wire_msg *msg);
/* Loads the timeline's fused round from the store after a restart. */
int c_rounds_restore(rf_coord *c, c_job *job, rf_error *err);
/* Fuses every timeline whose OverlapUps are all in (after a pause). */
void c_rounds_retry(rf_coord *c, c_job *job);
/* Latent frames [f0, f1) of a timeline's final latent (the chunks' results, overlaps fused
 * as fusing the whole timeline would): a new state with window [f0, f1) holding "latent"
 * [C, f1 - f0, ...]; the caller destroys it. Reads only the results of the chunks that
 * decide those frames (c_timeline_reads of them), never the whole timeline; NULL + err. */
rf_chunk_state *c_timeline_latent(rf_coord *c, c_job *job, int timeline, int64_t f0, int64_t f1,
                                  rf_error *err);
/* How many chunk results c_timeline_latent reads for [f0, f1). */
int c_timeline_reads(const c_job *job, int timeline, int64_t f0, int64_t f1);

/* stitch.c */
/* Checks at submit that the output can be produced (confinement, codec support). */
int c_output_resolve(rf_coord *c, const char *path, char *out, size_t cap, rf_error *err);
int c_stitch_supported(rf_coord *c, rf_error *err);
/* Joins the job's segments in film order into its output path, atomically. */
int c_stitch(rf_coord *c, c_job *job, rf_error *err);

#endif
