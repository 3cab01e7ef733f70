/* log.c - logfmt lines on stderr (or a chosen fd).
 *
 * Each line is formatted into a bounded stack buffer and written with a single
 * write(2), so lines from threads and processes sharing a file never interleave.
 * Never allocates; a line longer than the buffer is truncated, never split.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int s_level = RF_LOG_INFO;
static volatile int s_fd = 2;

int rf_log_parse_level(const char *name, rf_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= RF_LOG_OFF; i++) {
        if (name && strcmp(name, names[i]) == 0) {
            *out = (rf_log_level)i;
            return 0;
        }
    }
    return -1;
}

void rf_log_set_level(rf_log_level level)
{
    s_level = level;
}
rf_log_level rf_log_get_level(void)
{
    return (rf_log_level)s_level;
}
void rf_log_set_fd(int fd)
{
    s_fd = fd;
}

static const char *s_level_name(rf_log_level l)
{
    switch (l) {
    case RF_LOG_DEBUG: return "debug";
    case RF_LOG_INFO: return "info";
    case RF_LOG_WARN: return "warn";
    case RF_LOG_ERROR: return "error";
    default: return "off";
    }
}

/* Appends "ts=... level=... comp=... msg=" to buf; returns length. */
static size_t s_head(char *buf, size_t cap, rf_log_level level, const char *comp)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(buf, cap, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s comp=%s msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), s_level_name(level), comp ? comp : "-");
    return n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

/* Appends text with '"', '\\' and control characters escaped. */
static size_t s_quote(char *buf, size_t len, size_t cap, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p && len + 4 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)*p;
        } else if (*p == '\n') {
            buf[len++] = '\\';
            buf[len++] = 'n';
        } else if (*p < 0x20) {
            buf[len++] = ' ';
        } else {
            buf[len++] = (char)*p;
        }
    }
    return len;
}

static void s_emit(char *buf, size_t len, size_t cap)
{
    if (len + 1 >= cap)
        len = cap - 2;
    buf[len++] = '\n';
    ssize_t off = 0;
    while ((size_t)off < len) {
        ssize_t w = write(s_fd, buf + off, len - (size_t)off);
        if (w <= 0)
            return;
        off += w;
    }
}

void rf_log(rf_log_level level, const char *comp, const char *fmt, ...)
{
    if ((int)level < s_level || level >= RF_LOG_OFF)
        return;
    char msg[2048];
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t len = s_head(buf, sizeof(buf), level, comp);
    len = s_quote(buf, len, sizeof(buf), msg);
    buf[len++] = '"';
    s_emit(buf, len, sizeof(buf));
}

void rf_log_kv(rf_log_level level, const char *comp, const char *msg, const char *fields_fmt, ...)
{
    if ((int)level < s_level || level >= RF_LOG_OFF)
        return;
    char buf[4096];
    size_t len = s_head(buf, sizeof(buf), level, comp);
    len = s_quote(buf, len, sizeof(buf), msg);
    buf[len++] = '"';
    if (fields_fmt && *fields_fmt && len + 2 < sizeof(buf)) {
        buf[len++] = ' ';
        va_list ap;
        va_start(ap, fields_fmt);
        int n = vsnprintf(buf + len, sizeof(buf) - len - 1, fields_fmt, ap);
        va_end(ap);
        if (n > 0)
            len += (size_t)n < sizeof(buf) - len - 1 ? (size_t)n : sizeof(buf) - len - 2;
    }
    s_emit(buf, len, sizeof(buf));
}
