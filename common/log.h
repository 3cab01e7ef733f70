/* log.h - structured logging: one logfmt line per event on stderr.
 *
 *   ts=2026-12-01T20:00:00.123Z level=info comp=wire msg="peer joined" peer=w1
 *
 * `msg` is a fixed human sentence; variable data goes in key=value fields so the
 * lines can be grepped and parsed. Thread-safe: one write(2) per line.
 */
#ifndef RF_LOG_H
#define RF_LOG_H

typedef enum rf_log_level {
    RF_LOG_DEBUG = 0,
    RF_LOG_INFO,
    RF_LOG_WARN,
    RF_LOG_ERROR,
    RF_LOG_OFF
} rf_log_level;

/* Parses "debug|info|warn|error|off" into *out. Returns 0, or -1 when unknown. */
int rf_log_parse_level(const char *name, rf_log_level *out);
void rf_log_set_level(rf_log_level level);
rf_log_level rf_log_get_level(void);
/* Sends lines to fd instead of stderr (2). */
void rf_log_set_fd(int fd);

/* Logs msg (printf-formatted, then quoted and escaped) at level. */
void rf_log(rf_log_level level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Logs a fixed msg followed by raw logfmt fields (printf-formatted), e.g.
 * rf_log_kv(RF_LOG_INFO, "sched", "task dispatched", "task=%s worker=%s", t, w). */
void rf_log_kv(rf_log_level level, const char *comp, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define RF_DEBUG(comp, ...) rf_log(RF_LOG_DEBUG, comp, __VA_ARGS__)
#define RF_INFO(comp, ...)  rf_log(RF_LOG_INFO, comp, __VA_ARGS__)
#define RF_WARN(comp, ...)  rf_log(RF_LOG_WARN, comp, __VA_ARGS__)
#define RF_ERROR(comp, ...) rf_log(RF_LOG_ERROR, comp, __VA_ARGS__)

#endif
