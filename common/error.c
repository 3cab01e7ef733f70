/* error.c - rf_error: a status code plus a message a user can act on.
 *
 * Messages are bounded (RF_ERROR_MSG_MAX) and always NUL-terminated; setting an
 * error never allocates, so it is safe on out-of-memory paths.
 */
#include "error.h"

#include <stdio.h>
#include <string.h>

int rf_error_setv(rf_error *err, rf_status code, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return code;
}

int rf_error_set(rf_error *err, rf_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rf_error_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int rf_error_prefix(rf_error *err, const char *fmt, ...)
{
    if (!err)
        return RF_EINVAL;
    char head[RF_ERROR_MSG_MAX];
    char old[RF_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", head, old);
    return err->code ? (int)err->code : RF_EINVAL;
}

void rf_error_clear(rf_error *err)
{
    if (!err)
        return;
    err->code = RF_OK;
    err->msg[0] = '\0';
}

const char *rf_status_name(int code)
{
    static const char *names[RF_STATUS_COUNT] = {
        "ok",    "invalid", "io",    "nomem", "protocol",    "notfound",
        "shape", "version", "again", "nospc", "unsupported", "canceled",
    };
    if (code < 0 || code >= RF_STATUS_COUNT)
        return "unknown";
    return names[code];
}
