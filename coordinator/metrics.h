/* metrics.h - Prometheus metrics of the coordinator and the HTTP endpoint that serves them.
 *
 * A small registry (counters, gauges, histograms, each a family with up to
 * RF_METRIC_MAX_LABELS labels) rendered in the text exposition format 0.0.4 with HELP and
 * TYPE lines, and an HTTP server (libmicrohttpd, its own thread) answering GET /metrics
 * and /healthz on `--metrics HOST:PORT`. rf_metrics_new declares every reelfarm family
 * in one place (metrics.c, s_declare), all named `reelfarm_*` in base units (seconds,
 * bytes) with `_total` counters; the coordinator only calls the rf_metrics_* functions
 * below. Updates and scrapes share one mutex: any thread may update. Never blocks the
 * caller longer than that mutex, never exits.
 *
 * Wiring in the coordinator:
 *   startup:    m = rf_metrics_new(err); if cfg->metrics:
 *               srv = rf_metrics_server_start(m, cfg->metrics, err) (refuse to start on
 *               error: the operator asked for metrics);
 *   as it goes: rf_metrics_task_done(m, "DENOISE", "ok", seconds) when a result is
 *               accepted (outcome "ok", "failed", "lost", "canceled"),
 *               rf_metrics_lease_expired(m, kind), rf_metrics_steps(m, n) per DENOISE
 *               progress, rf_metrics_frames(m, n) per decoded segment,
 *               rf_metrics_bytes(m, "received"|"sent"|"fetched", n),
 *               rf_metrics_round(m, seconds) per fused round,
 *               rf_metrics_turn(m, seconds) per event-loop turn that did work,
 *               rf_metrics_state(m, part, bytes) per chunk state sent or received;
 *   per turn:   (or on each change) rf_metrics_jobs(m, state, n) for every state,
 *               rf_metrics_queue(m, kind, n), rf_metrics_workers(m, state, n);
 *               rf_metrics_health(m, 0, "dispatch paused: disk full ...") while paused,
 *               rf_metrics_health(m, 1, NULL) when it works again;
 *   shutdown:   rf_metrics_server_stop(&srv); rf_metrics_destroy(&m).
 */
#ifndef RF_METRICS_H
#define RF_METRICS_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define RF_METRIC_MAX_LABELS  4
#define RF_METRIC_MAX_BUCKETS 24
#define RF_METRIC_MAX_SERIES  4096 /* per family; label sets beyond it are dropped */

typedef struct rf_metrics rf_metrics;
typedef struct rf_metric rf_metric; /* one family, owned by its registry */

/* ---- the reelfarm families -------------------------------------------------------- */

/* A registry holding every reelfarm family (see metrics.c) and healthy. NULL + err when
 * out of memory. */
rf_metrics *rf_metrics_new(rf_error *err);
void rf_metrics_destroy(rf_metrics **self);

/* Every rf_metrics_* update below is a no-op when m is NULL (metrics not set up). */

/* reelfarm_tasks_total{kind,outcome} += 1 and reelfarm_task_duration_seconds{kind}
 * observes seconds (when seconds >= 0). */
void rf_metrics_task_done(rf_metrics *m, const char *kind, const char *outcome, double seconds);
/* reelfarm_lease_expiries_total{kind} += 1. */
void rf_metrics_lease_expired(rf_metrics *m, const char *kind);
/* reelfarm_chunk_steps_total += n (DENOISE steps of one chunk). */
void rf_metrics_steps(rf_metrics *m, uint64_t n);
/* reelfarm_frames_rendered_total += n (pixel frames decoded). */
void rf_metrics_frames(rf_metrics *m, uint64_t n);
/* reelfarm_transfer_bytes_total{direction} += n; direction "received", "sent" (wire) or
 * "fetched" (downloaded inputs). */
void rf_metrics_bytes(rf_metrics *m, const char *direction, uint64_t n);
/* reelfarm_chunk_state_bytes_total{part} += bytes and reelfarm_chunk_states_total{part}
 * += 1; part "overlap_up", "overlap_down" (a sync's overlap frames), "checkpoint" (a
 * full sampler state) or "result" (a finished chunk's latent). */
void rf_metrics_state(rf_metrics *m, const char *part, uint64_t bytes);
/* reelfarm_decode_chunk_reads_total += n (chunk results read from the store to build
 * DECODE segments' latents). */
void rf_metrics_decode_reads(rf_metrics *m, uint64_t n);
/* reelfarm_decode_chunk_reads_per_pass_max = n (the most one dispatch pass has read: the
 * loop's work on them is bounded per turn). */
void rf_metrics_decode_reads_max(rf_metrics *m, int64_t n);
/* reelfarm_loop_turn_duration_seconds observes seconds (one event-loop turn that did work). */
void rf_metrics_turn(rf_metrics *m, double seconds);
/* reelfarm_fusion_round_duration_seconds observes seconds. */
void rf_metrics_round(rf_metrics *m, double seconds);
/* reelfarm_jobs{state} = n ("queued", "running", "done", "failed", "canceled"). */
void rf_metrics_jobs(rf_metrics *m, const char *state, int64_t n);
/* reelfarm_jobs_resident = n (jobs held in the coordinator's memory: the unfinished ones;
 * a finished job leaves it, so this returns to the unfinished count after a burst). */
void rf_metrics_jobs_resident(rf_metrics *m, int64_t n);
/* reelfarm_tasks_queued{kind} = n (tasks waiting for a worker). */
void rf_metrics_queue(rf_metrics *m, const char *kind, int64_t n);
/* reelfarm_workers{state} = n ("idle", "busy", "draining"). */
void rf_metrics_workers(rf_metrics *m, const char *state, int64_t n);
/* reelfarm_curve_handshakes_total{outcome="accepted"|"rejected"} = the ZAP handler's
 * running totals (rf_zap_counts). */
void rf_metrics_handshakes(rf_metrics *m, uint64_t accepted, uint64_t rejected);
/* /healthz answers 200 "ok" while ok, else 503 with reason (copied). Also exported as
 * reelfarm_healthy (1 or 0). */
void rf_metrics_health(rf_metrics *m, int ok, const char *reason);

/* ---- the registry ------------------------------------------------------------------ */

/* An empty registry (no families). */
rf_metrics *rf_metrics_registry_new(rf_error *err);

/* Declares a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, be new, end in _total
 * for a counter and not end in _total/_bucket/_sum/_count otherwise; labels (nlabels
 * <= RF_METRIC_MAX_LABELS) match [a-zA-Z_][a-zA-Z0-9_]* and are not "le". A histogram
 * takes nb strictly increasing finite upper bounds (+Inf is implicit). Returns NULL +
 * err on a violation (a programmer's error, reported rather than asserted so tests can
 * see it). */
rf_metric *rf_metrics_counter(rf_metrics *m, const char *name, const char *help,
                              const char *const *labels, int nlabels, rf_error *err);
rf_metric *rf_metrics_gauge(rf_metrics *m, const char *name, const char *help,
                            const char *const *labels, int nlabels, rf_error *err);
rf_metric *rf_metrics_histogram(rf_metrics *m, const char *name, const char *help,
                                const char *const *labels, int nlabels, const double *bounds,
                                int nb, rf_error *err);

/* values: one per label, in declaration order (NULL when the family has none). A
 * counter only grows: rf_metric_add ignores negative v. rf_metric_set on a counter sets
 * a mirrored running total (ignored when smaller than the current value). */
void rf_metric_add(rf_metric *f, const char *const *values, double v);
void rf_metric_set(rf_metric *f, const char *const *values, double v);
void rf_metric_observe(rf_metric *f, const char *const *values, double v);

/* The exposition text (format 0.0.4), NUL-terminated; caller frees. NULL when out of
 * memory. Families in declaration order, series in first-seen order. */
char *rf_metrics_render(rf_metrics *m, size_t *len);

/* ---- the HTTP endpoint -------------------------------------------------------------- */

typedef struct rf_metrics_server rf_metrics_server;

/* Serves m on addr "HOST:PORT" (HOST an IPv4 address, [IPv6], localhost, or * / 0.0.0.0
 * for all; PORT 0 picks a free one): GET or HEAD /metrics and /healthz, 404 elsewhere, 405
 * for other methods. NULL + err naming addr when it cannot bind. */
rf_metrics_server *rf_metrics_server_start(rf_metrics *m, const char *addr, rf_error *err);
/* The port actually bound. */
int rf_metrics_server_port(const rf_metrics_server *self);
/* Stops the thread, closes the socket; safe on NULL and twice. */
void rf_metrics_server_stop(rf_metrics_server **self);

#endif
