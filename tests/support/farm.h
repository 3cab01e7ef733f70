/* farm.h - process-level test helpers: a real reelfarm-coordinator on ipc:// sockets in
 * the test's private temporary directory, an API client, and a test model folder.
 *
 * rf_farm_start runs build/bin/reelfarm-coordinator (RF_BUILD or the source tree's
 * build/) with its log in DIR/coord.log; rf_farm_call sends one API request and waits
 * for the reply with the same request id; rf_farm_stop sends SIGTERM and waits. Nothing
 * here times a test: waits are bounded only so that a broken farm fails instead of
 * hanging.
 */
#ifndef RF_FARM_H
#define RF_FARM_H

#include "wire.h"

#include <sys/types.h>

typedef struct rf_farm {
    char dir[512]; /* DIR: state/, out/, models/, coord.log */
    char wep[600], aep[600];
    char log[600];
    char model_hash[65]; /* of DIR/models/fake */
    pid_t pid;
    void *zctx, *api;
    uint64_t req;
} rf_farm;

/* Creates DIR (under the test tmpdir, named name) with a model folder models/fake
 * (model.json with defaults.decode_warmup 1) unless it exists, then starts the
 * coordinator with extra arguments (may be NULL). Returns 0 or -1. */
int rf_farm_start(rf_farm *f, const char *name, const char *extra);
/* SIGTERM, wait; returns the coordinator's exit status (or -1). Closes the API socket. */
int rf_farm_stop(rf_farm *f);
/* SIGKILL, wait. */
void rf_farm_kill(rf_farm *f);
/* Sends env (request_id set here) and waits up to timeout_ms for the reply with the same
 * id (Events of watches are skipped). Release the reply afterwards. 0 or -1. */
int rf_farm_call(rf_farm *f, Reelfarm__Envelope *env, rf_wire_msg *reply, int timeout_ms);
/* Submits spec text; fills job_id ("" when refused) and, when refused, the first error's
 * message into err_out. Returns 0 when accepted. */
int rf_farm_submit(rf_farm *f, const char *spec, char *job_id, size_t cap, char *err_out,
                   size_t err_cap);
/* One JobStatus call: 0 with reply holding a JobInfo (release it), or -1. _info asks for
 * the per-chunk detail, _summary for none (a finished job answered from its row). */
int rf_farm_job_info(rf_farm *f, const char *job_id, rf_wire_msg *reply, int timeout_ms);
int rf_farm_job_summary(rf_farm *f, const char *job_id, rf_wire_msg *reply, int timeout_ms);
/* One Cancel / Retry call for job_id: 0 with reply holding the coordinator's answer (Ok or
 * Error; release it), or -1 when no answer came. */
int rf_farm_cancel(rf_farm *f, const char *job_id, rf_wire_msg *reply, int timeout_ms);
int rf_farm_retry(rf_farm *f, const char *job_id, rf_wire_msg *reply, int timeout_ms);
/* Polls JobStatus until the job is DONE, FAILED or CANCELED (or timeout_ms): returns the
 * JobState, or -1. */
int rf_farm_wait(rf_farm *f, const char *job_id, int timeout_ms);
/* 1 when the coordinator's log holds needle. */
int rf_farm_log_has(const rf_farm *f, const char *needle);
/* Reads a file into a malloc'd buffer (caller frees). */
void *rf_farm_read(const char *path, size_t *len);

#endif
