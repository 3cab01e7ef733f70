/* worker.h - the worker process: one connection to the coordinator, tasks on an executor.
 *
 * The main thread speaks the protocol (docs/protocol.md): Hello, heartbeats both ways,
 * reconnect with backoff, Progress for every task it holds, OverlapUp/OverlapDown at
 * each round, Checkpoints, results, drain. A compute thread runs executor calls one
 * unit at a time (one sampler step, one prompt batch, one segment), so the protocol
 * never waits for compute and compute never touches a socket. Chunk states stay
 * resident here between rounds; only overlap frames travel.
 */
#ifndef RF_WORKER_H
#define RF_WORKER_H

#include "error.h"
#include "executor.h"
#include "model_set.h"

#include <stdint.h>

typedef struct rf_worker_config {
    const char *coordinator; /* ZeroMQ endpoint of the coordinator's worker socket */
    const char *name;        /* shown to operators; default: hostname-pid */
    const char *backend;     /* "cpu", "cuda" or "sim" (advertised) */
    int threads;
    int tp;
    int max_tasks;          /* tasks held at once (chunk states resident); default 64 */
    uint64_t memory_bytes;  /* advertised host memory budget; 0: physical memory */
    const char *key_secret; /* CURVE: this worker's BASE.key_secret (NULL: no CURVE) */
    const char *server_key; /* CURVE: the coordinator's public key file */
    void *zctx;             /* a ZeroMQ context to share (several workers in one process; borrowed,
                 * outlives the worker); NULL: the worker makes its own */
} rf_worker_config;

typedef struct rf_worker rf_worker;

/* A worker that will compute with ex (taken over: destroyed with the worker), its one
 * model. NULL + err on a bad config or when ZeroMQ cannot start. */
rf_worker *rf_worker_new(const rf_worker_config *cfg, rf_executor *ex, rf_error *err);
/* A worker serving every model of models (taken over), each loaded when a task needs it
 * (model_set.h). NULL + err as above, or when the set is empty. */
rf_worker *rf_worker_new_models(const rf_worker_config *cfg, rf_model_set *models, rf_error *err);
void rf_worker_destroy(rf_worker **self);

/* Runs until the worker has drained (after rf_worker_drain, or a Drain from the
 * coordinator) or the coordinator refuses it for good (a Refuse, or its ZAP handler
 * rejecting this worker's CURVE key). Returns 0 after a clean drain,
 * else an error (e.g. RF_EINVAL "refused: ..."). */
int rf_worker_run(rf_worker *self, rf_error *err);

/* Asks the worker to drain: take no new task, finish or hand back what it holds, exit.
 * Async-signal-safe (only sets a flag): call it from a SIGTERM handler. */
void rf_worker_drain(rf_worker *self);

#endif
