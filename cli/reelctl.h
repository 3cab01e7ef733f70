/* reelctl.h - what every reelctl command shares: options and its coordinator client.
 *
 * Each command is `int rf_ctl_NAME(rf_ctl *ctl, int argc, char **argv)` (argv[0] is the
 * command name, common options already removed) returning the process exit status:
 * 0 success, 1 the operation failed (or the job did), 2 usage error, 3 the coordinator
 * could not be reached. Commands are listed once in cli/commands.h.
 */
#ifndef RF_REELCTL_H
#define RF_REELCTL_H

#include "client.h"
#include "error.h"

typedef struct rf_ctl {
    const char *api;        /* --api, else $REELFARM_API */
    int json;               /* --json */
    int timeout_ms;         /* --timeout SECONDS */
    const char *key;        /* --key BASE.key_secret (CURVE), else $REELFARM_KEY */
    const char *server_key; /* --server-key coordinator.key, else $REELFARM_SERVER_KEY */
} rf_ctl;

/* Connects (printing the error and returning NULL when it cannot). */
rf_client *rf_ctl_connect(const rf_ctl *ctl);
/* Prints "reelctl CMD: message" and returns the exit status for the error (3 when the
 * coordinator could not be reached, else 1). */
int rf_ctl_fail(const char *cmd, const rf_error *err);

/* Submits the spec file (output path override out, may be NULL) and writes the new
 * job id into job; prints refusals (the spec's errors). Returns an exit status. */
int rf_ctl_submit_file(rf_client *c, const rf_ctl *ctl, const char *spec, const char *out,
                       char *job, size_t cap);

/* Follows a job until it ends, drawing a progress line (redrawn in place on a
 * terminal, one line per change when piped). Returns 0 when the job is done, 1 when it
 * failed or was canceled, 3 when the coordinator went away. */
int rf_ctl_follow(rf_client *c, const char *job_id, int json);

#define RF_CMD(name, summary) int rf_ctl_##name(rf_ctl *ctl, int argc, char **argv);
#include "commands.h"
#undef RF_CMD

#endif
