/* proc.h - helpers for process-level tests: start real binaries, wait for them, stop them.
 *
 * A test starts a binary (its stdout and stderr go to a log file in the test's tmpdir),
 * waits until it listens on an endpoint or prints a line, signals it, and waits for it
 * to exit. Every wait has a timeout (an upper bound, never a measurement) and, when
 * it fails, returns an error quoting the end of the process's log. Each process runs
 * in its own process group; one that will not exit in time is killed with its whole
 * group (SIGKILL), and rf_proc_destroy never leaves a process behind.
 */
#ifndef RF_TEST_PROC_H
#define RF_TEST_PROC_H

#include "error.h"

#include <stddef.h>
#include <sys/types.h>

typedef struct rf_proc rf_proc;

/* Writes the path of the built binary `name` into buf and returns buf:
 * "$RF_BUILD/bin/NAME" when RF_BUILD is set (make test sets it), else
 * RF_SOURCE_DIR "/build/bin/NAME". */
char *rf_proc_bin(char *buf, size_t cap, const char *name);

/* Starts argv[0] (a path, or a name looked up in PATH) with argv (NULL-terminated).
 * env (NULL-terminated, may be NULL) edits the inherited environment: "KEY=VALUE" sets,
 * "KEY" alone removes. stdin is /dev/null; stdout and stderr go to
 * "<rf_test_tmpdir()>/<basename>-<n>.log". Returns NULL + err (naming the binary) when
 * it cannot be started, including when exec fails. Caller destroys. */
rf_proc *rf_proc_start(const char *const argv[], const char *const env[], rf_error *err);

/* Kills the process group with SIGKILL if the process has not been reaped, reaps it,
 * frees; NULLs *self; safe on NULL and twice. */
void rf_proc_destroy(rf_proc **self);

pid_t rf_proc_pid(const rf_proc *self);
/* Path of the log file (borrowed). */
const char *rf_proc_log_path(const rf_proc *self);

/* 1 while the process runs; 0 once it has exited (it is then reaped). */
int rf_proc_running(rf_proc *self);

/* Sends sig to the process (not its group). RF_ENOTFOUND when it already exited. */
int rf_proc_signal(rf_proc *self, int sig, rf_error *err);

/* Waits up to timeout_ms for the process to exit. Returns 0 and sets *status (may be
 * NULL) to its exit code, or 128 + the signal that killed it. Otherwise kills its group
 * with SIGKILL, reaps it, sets *status to 128 + 9 and returns RF_EAGAIN with the log's
 * tail in err. */
int rf_proc_wait(rf_proc *self, int timeout_ms, int *status, rf_error *err);

/* The whole log so far, NUL-terminated (*len, when not NULL, gets its length).
 * Caller frees. NULL when it cannot be read. */
char *rf_proc_log(const rf_proc *self, size_t *len);

/* 1 when the log contains needle. */
int rf_proc_log_contains(const rf_proc *self, const char *needle);

/* Waits until the log contains needle. RF_EAGAIN on timeout, RF_EIO when the process
 * exited first; both with the log's tail in err. */
int rf_proc_wait_log(rf_proc *self, const char *needle, int timeout_ms, rf_error *err);

/* Waits until endpoint accepts a connection: "tcp://HOST:PORT" (HOST a name, an IPv4
 * address, [IPv6] or * for loopback) or "ipc://PATH". proc (may be NULL) is watched:
 * RF_EIO when it exits first. RF_EAGAIN on timeout, RF_EINVAL for an endpoint of
 * another form. */
int rf_proc_wait_endpoint(rf_proc *proc, const char *endpoint, int timeout_ms, rf_error *err);

/* A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed). */
int rf_proc_free_port(int *port, rf_error *err);

#endif
