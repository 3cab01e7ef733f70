/* error.h - the error value every fallible reelfarm function reports through.
 *
 * Errors the world causes (bad spec, dead peer, full disk, missing weights) are
 * returned as a nonzero rf_status with a message written for the person who has to
 * act on it: what went wrong, where, and what to do. Programmer errors are asserts.
 * Pattern: `int rc = f(..., err); if(rc) return rc;`. `err` may be NULL everywhere.
 */
#ifndef RF_ERROR_H
#define RF_ERROR_H

#include <stdarg.h>

typedef enum rf_status {
    RF_OK = 0,
    RF_EINVAL,       /* bad input: spec, arguments, file contents */
    RF_EIO,          /* the operating system refused: open, read, write, fsync */
    RF_ENOMEM,       /* allocation failed or a size limit was exceeded */
    RF_EPROTO,       /* malformed or unexpected message on the wire */
    RF_ENOTFOUND,    /* a named thing (file, tensor, job, model) does not exist */
    RF_ESHAPE,       /* a tensor has the wrong shape or dtype */
    RF_EVERSION,     /* peer or file speaks a version we do not */
    RF_EAGAIN,       /* nothing now; try again later (timeouts, empty queues) */
    RF_ENOSPC,       /* the disk is full */
    RF_EUNSUPPORTED, /* valid request this build or backend cannot serve */
    RF_ECANCELED,
    RF_STATUS_COUNT
} rf_status;

#define RF_ERROR_MSG_MAX 1024

typedef struct rf_error {
    rf_status code;
    char msg[RF_ERROR_MSG_MAX];
} rf_error;

/* Sets *err (when err is not NULL) and returns code, so callers can write
 * `return rf_error_set(err, RF_EINVAL, "chunk.frames must be 4n+1, got %d", n);`. */
int rf_error_set(rf_error *err, rf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int rf_error_setv(rf_error *err, rf_status code, const char *fmt, va_list ap);

/* Prepends context to an existing message: "loading model: <old message>".
 * Returns err->code (or RF_EINVAL when err is NULL). */
int rf_error_prefix(rf_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets to RF_OK with an empty message. */
void rf_error_clear(rf_error *err);

/* Short stable name of a status: "invalid", "io", ... (never NULL). */
const char *rf_status_name(int code);

#endif
