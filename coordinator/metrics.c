/* metrics.c - the Prometheus registry, the reelfarm families, and the /metrics server.
 *
 * Families keep their series in first-seen order in a small array (a family has a
 * handful of label sets: task kinds x outcomes, job states), looked up linearly. One
 * mutex guards everything: the coordinator's loop updates, the libmicrohttpd thread
 * renders. Histograms keep per-bucket counts and render them cumulatively. Numbers
 * are printed in the shortest form that reads back exactly. It never lets a scrape see
 * half an update and never grows a family past RF_METRIC_MAX_SERIES.
 */
#include "metrics.h"

#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_kind;

typedef struct s_series {
    char *values[RF_METRIC_MAX_LABELS];
    double value;
    uint64_t *counts; /* histogram: nb + 1 buckets, not cumulative */
    double sum;
    uint64_t count;
} s_series;

struct rf_metric {
    rf_metrics *reg;
    s_kind kind;
    char *name, *help;
    char *labels[RF_METRIC_MAX_LABELS];
    int nlabels;
    double bounds[RF_METRIC_MAX_BUCKETS];
    int nb;
    s_series *series;
    int nseries, cap;
    unsigned long dropped;
};

struct rf_metrics {
    pthread_mutex_t mu;
    rf_metric **fams;
    int n, cap;
    int healthy;
    char reason[512];
    /* the reelfarm families (NULL in a bare registry) */
    rf_metric *tasks, *task_seconds, *leases, *steps, *frames, *bytes, *round, *jobs, *queue,
        *workers, *handshakes, *healthy_g, *state_bytes, *states, *resident, *decode_reads,
        *decode_reads_max, *turn;
};

/* ---- names and numbers ------------------------------------------------------------- */

static int s_valid_name(const char *s, int metric)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        int ok = isalpha((unsigned char)*p) || *p == '_' || (metric && *p == ':') ||
                 (p > s && isdigit((unsigned char)*p));
        if (!ok)
            return 0;
    }
    return 1;
}

static int s_ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Shortest decimal that reads back as v; Prometheus spellings for the specials. */
static void s_fmt(char *buf, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, cap, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void s_escape(FILE *out, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else if (quote && *s == '"')
            fputs("\\\"", out);
        else
            fputc(*s, out);
    }
}

/* ---- the registry ------------------------------------------------------------------ */

rf_metrics *rf_metrics_registry_new(rf_error *err)
{
    rf_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return rf_error_set(err, RF_ENOMEM, "metrics: out of memory"), NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->healthy = 1;
    return m;
}

static void s_family_free(rf_metric *f)
{
    for (int i = 0; i < f->nseries; i++) {
        for (int j = 0; j < f->nlabels; j++)
            free(f->series[i].values[j]);
        free(f->series[i].counts);
    }
    free(f->series);
    for (int j = 0; j < f->nlabels; j++)
        free(f->labels[j]);
    free(f->name);
    free(f->help);
    free(f);
}

void rf_metrics_destroy(rf_metrics **self)
{
    if (!self || !*self)
        return;
    rf_metrics *m = *self;
    for (int i = 0; i < m->n; i++)
        s_family_free(m->fams[i]);
    free(m->fams);
    pthread_mutex_destroy(&m->mu);
    free(m);
    *self = NULL;
}

/* Finds or adds the series for values (lock held). NULL when the family is full. */
static s_series *s_series_get(rf_metric *f, const char *const *values)
{
    for (int i = 0; i < f->nseries; i++) {
        int same = 1;
        for (int j = 0; j < f->nlabels && same; j++)
            same = strcmp(f->series[i].values[j], values && values[j] ? values[j] : "") == 0;
        if (same)
            return &f->series[i];
    }
    if (f->nseries >= RF_METRIC_MAX_SERIES) {
        f->dropped++;
        return NULL;
    }
    if (f->nseries == f->cap) {
        int cap = f->cap ? f->cap * 2 : 8;
        s_series *s = realloc(f->series, (size_t)cap * sizeof(*s));
        if (!s)
            return NULL;
        f->series = s;
        f->cap = cap;
    }
    s_series *s = &f->series[f->nseries];
    memset(s, 0, sizeof(*s));
    int bad = 0;
    for (int j = 0; j < f->nlabels; j++) {
        s->values[j] = strdup(values && values[j] ? values[j] : "");
        bad |= !s->values[j];
    }
    if (f->kind == S_HISTOGRAM) {
        s->counts = calloc((size_t)f->nb + 1, sizeof(*s->counts));
        bad |= !s->counts;
    }
    if (bad) {
        for (int j = 0; j < f->nlabels; j++)
            free(s->values[j]);
        free(s->counts);
        return NULL;
    }
    f->nseries++;
    return s;
}

static rf_metric *s_declare(rf_metrics *m, s_kind kind, const char *name, const char *help,
                            const char *const *labels, int nlabels, const double *bounds, int nb,
                            rf_error *err)
{
    if (!s_valid_name(name, 1))
        return rf_error_set(err, RF_EINVAL, "metric name '%s' is not valid", name ? name : ""),
               NULL;
    int is_total = s_ends(name, "_total");
    if (kind == S_COUNTER && !is_total)
        return rf_error_set(err, RF_EINVAL, "counter %s must end in _total", name), NULL;
    if (kind != S_COUNTER &&
        (is_total || s_ends(name, "_bucket") || s_ends(name, "_sum") || s_ends(name, "_count")))
        return rf_error_set(err, RF_EINVAL,
                            "%s: only counters end in _total (and no family "
                            "ends in _bucket, _sum or _count)",
                            name),
               NULL;
    if (nlabels < 0 || nlabels > RF_METRIC_MAX_LABELS)
        return rf_error_set(err, RF_EINVAL, "%s: at most %d labels", name, RF_METRIC_MAX_LABELS),
               NULL;
    for (int j = 0; j < nlabels; j++)
        if (!s_valid_name(labels[j], 0) || strcmp(labels[j], "le") == 0 ||
            strncmp(labels[j], "__", 2) == 0)
            return rf_error_set(err, RF_EINVAL, "%s: label name '%s' is not valid", name,
                                labels[j] ? labels[j] : ""),
                   NULL;
    if (kind == S_HISTOGRAM) {
        if (nb < 1 || nb > RF_METRIC_MAX_BUCKETS)
            return rf_error_set(err, RF_EINVAL, "%s: 1 to %d buckets", name, RF_METRIC_MAX_BUCKETS),
                   NULL;
        for (int i = 0; i < nb; i++)
            if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1]))
                return rf_error_set(err, RF_EINVAL,
                                    "%s: bucket bounds must be finite and increasing", name),
                       NULL;
    }
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->fams[i]->name, name) == 0) {
            pthread_mutex_unlock(&m->mu);
            return rf_error_set(err, RF_EINVAL, "metric %s declared twice", name), NULL;
        }
    rf_metric *f = calloc(1, sizeof(*f));
    int bad = !f;
    if (f) {
        f->reg = m;
        f->kind = kind;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        bad |= !f->name || !f->help;
        f->nlabels = nlabels;
        for (int j = 0; j < nlabels; j++) {
            f->labels[j] = strdup(labels[j]);
            bad |= !f->labels[j];
        }
        f->nb = kind == S_HISTOGRAM ? nb : 0;
        for (int i = 0; i < f->nb; i++)
            f->bounds[i] = bounds[i];
    }
    if (!bad && nlabels == 0) /* an unlabelled family always shows its one series */
        bad |= s_series_get(f, NULL) == NULL;
    if (!bad && m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 16;
        rf_metric **fams = realloc(m->fams, (size_t)cap * sizeof(*fams));
        if (fams) {
            m->fams = fams;
            m->cap = cap;
        } else {
            bad = 1;
        }
    }
    if (bad) {
        pthread_mutex_unlock(&m->mu);
        if (f)
            s_family_free(f);
        return rf_error_set(err, RF_ENOMEM, "metrics: out of memory"), NULL;
    }
    m->fams[m->n++] = f;
    pthread_mutex_unlock(&m->mu);
    return f;
}

rf_metric *rf_metrics_counter(rf_metrics *m, const char *name, const char *help,
                              const char *const *labels, int nlabels, rf_error *err)
{
    return s_declare(m, S_COUNTER, name, help, labels, nlabels, NULL, 0, err);
}

rf_metric *rf_metrics_gauge(rf_metrics *m, const char *name, const char *help,
                            const char *const *labels, int nlabels, rf_error *err)
{
    return s_declare(m, S_GAUGE, name, help, labels, nlabels, NULL, 0, err);
}

rf_metric *rf_metrics_histogram(rf_metrics *m, const char *name, const char *help,
                                const char *const *labels, int nlabels, const double *bounds,
                                int nb, rf_error *err)
{
    return s_declare(m, S_HISTOGRAM, name, help, labels, nlabels, bounds, nb, err);
}

void rf_metric_add(rf_metric *f, const char *const *values, double v)
{
    if (!f || f->kind == S_HISTOGRAM || (f->kind == S_COUNTER && !(v >= 0)))
        return;
    pthread_mutex_lock(&f->reg->mu);
    s_series *s = s_series_get(f, values);
    if (s)
        s->value += v;
    pthread_mutex_unlock(&f->reg->mu);
}

void rf_metric_set(rf_metric *f, const char *const *values, double v)
{
    if (!f || f->kind == S_HISTOGRAM)
        return;
    pthread_mutex_lock(&f->reg->mu);
    s_series *s = s_series_get(f, values);
    if (s && (f->kind == S_GAUGE || v >= s->value))
        s->value = v;
    pthread_mutex_unlock(&f->reg->mu);
}

void rf_metric_observe(rf_metric *f, const char *const *values, double v)
{
    if (!f || f->kind != S_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&f->reg->mu);
    s_series *s = s_series_get(f, values);
    if (s) {
        int b = 0;
        while (b < f->nb && v > f->bounds[b])
            b++;
        s->counts[b]++;
        s->sum += v;
        s->count++;
    }
    pthread_mutex_unlock(&f->reg->mu);
}

/* {a="x",b="y"} plus an optional le; nothing when there are no labels and no le. */
static void s_labels(FILE *out, const rf_metric *f, const s_series *s, const char *le)
{
    if (!f->nlabels && !le)
        return;
    fputc('{', out);
    for (int j = 0; j < f->nlabels; j++) {
        fprintf(out, "%s%s=\"", j ? "," : "", f->labels[j]);
        s_escape(out, s->values[j], 1);
        fputc('"', out);
    }
    if (le)
        fprintf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    fputc('}', out);
}

char *rf_metrics_render(rf_metrics *m, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&buf, &n);
    if (!out)
        return NULL;
    static const char *const types[] = {"counter", "gauge", "histogram"};
    char num[64];
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n; i++) {
        const rf_metric *f = m->fams[i];
        fprintf(out, "# HELP %s ", f->name);
        s_escape(out, f->help, 0);
        fprintf(out, "\n# TYPE %s %s\n", f->name, types[f->kind]);
        for (int k = 0; k < f->nseries; k++) {
            const s_series *s = &f->series[k];
            if (f->kind != S_HISTOGRAM) {
                fputs(f->name, out);
                s_labels(out, f, s, NULL);
                s_fmt(num, sizeof(num), s->value);
                fprintf(out, " %s\n", num);
                continue;
            }
            uint64_t cum = 0;
            for (int b = 0; b <= f->nb; b++) {
                cum += s->counts[b];
                char le[64];
                if (b < f->nb)
                    s_fmt(le, sizeof(le), f->bounds[b]);
                else
                    snprintf(le, sizeof(le), "+Inf");
                fprintf(out, "%s_bucket", f->name);
                s_labels(out, f, s, le);
                fprintf(out, " %llu\n", (unsigned long long)cum);
            }
            s_fmt(num, sizeof(num), s->sum);
            fprintf(out, "%s_sum", f->name);
            s_labels(out, f, s, NULL);
            fprintf(out, " %s\n%s_count", num, f->name);
            s_labels(out, f, s, NULL);
            fprintf(out, " %llu\n", (unsigned long long)s->count);
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (fclose(out) != 0) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = n;
    return buf;
}

/* ---- the reelfarm families --------------------------------------------------------- */

rf_metrics *rf_metrics_new(rf_error *err)
{
    static const double task_b[] = {0.05, 0.1, 0.25, 0.5, 1,   2.5, 5,
                                    10,   30,  60,   120, 300, 600, 1800};
    static const double round_b[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,  0.5,    1,     2.5,  5,     10,   30};
    static const double turn_b[] = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005,
                                    0.01,   0.025,   0.05,   0.1,   0.25,  1};
    static const char *const kind_outcome[] = {"kind", "outcome"};
    static const char *const kind[] = {"kind"};
    static const char *const state[] = {"state"};
    static const char *const direction[] = {"direction"};
    static const char *const outcome[] = {"outcome"};
    static const char *const part[] = {"part"};
    rf_metrics *m = rf_metrics_registry_new(err);
    if (!m)
        return NULL;
    int nt = (int)(sizeof(task_b) / sizeof(task_b[0]));
    int nr = (int)(sizeof(round_b) / sizeof(round_b[0]));
    m->jobs = rf_metrics_gauge(m, "reelfarm_jobs", "Jobs by state.", state, 1, err);
    m->tasks = m->jobs ? rf_metrics_counter(m, "reelfarm_tasks_total",
                                            "Task attempts finished, by task kind and outcome.",
                                            kind_outcome, 2, err)
                       : NULL;
    m->task_seconds =
        m->tasks ? rf_metrics_histogram(
                       m, "reelfarm_task_duration_seconds",
                       "Seconds a finished task attempt computed (as its worker reports), by kind.",
                       kind, 1, task_b, nt, err)
                 : NULL;
    m->queue = m->task_seconds
                   ? rf_metrics_gauge(m, "reelfarm_tasks_queued",
                                      "Tasks waiting for a worker, by kind.", kind, 1, err)
                   : NULL;
    m->workers = m->queue ? rf_metrics_gauge(m, "reelfarm_workers", "Connected workers by state.",
                                             state, 1, err)
                          : NULL;
    m->steps = m->workers ? rf_metrics_counter(m, "reelfarm_chunk_steps_total",
                                               "Denoising steps completed, summed over chunks.",
                                               NULL, 0, err)
                          : NULL;
    m->frames = m->steps
                    ? rf_metrics_counter(m, "reelfarm_frames_rendered_total",
                                         "Pixel frames in finished DECODE segments.", NULL, 0, err)
                    : NULL;
    m->bytes =
        m->frames
            ? rf_metrics_counter(m, "reelfarm_transfer_bytes_total",
                                 "Bytes moved: received and sent on the wire, fetched inputs.",
                                 direction, 1, err)
            : NULL;
    m->leases =
        m->bytes ? rf_metrics_counter(m, "reelfarm_lease_expiries_total",
                                      "Task attempts whose lease expired, by kind.", kind, 1, err)
                 : NULL;
    m->round =
        m->leases
            ? rf_metrics_histogram(m, "reelfarm_fusion_round_duration_seconds",
                                   "Time from a round's first chunk state to its fused commit.",
                                   NULL, 0, round_b, nr, err)
            : NULL;
    m->handshakes = m->round ? rf_metrics_counter(m, "reelfarm_curve_handshakes_total",
                                                  "CURVE handshakes answered by the ZAP "
                                                  "handler, by outcome.",
                                                  outcome, 1, err)
                             : NULL;
    m->healthy_g = m->handshakes ? rf_metrics_gauge(m, "reelfarm_healthy",
                                                    "1 while the coordinator dispatches "
                                                    "normally, 0 while paused (see /healthz).",
                                                    NULL, 0, err)
                                 : NULL;
    m->state_bytes =
        m->healthy_g
            ? rf_metrics_counter(m, "reelfarm_chunk_state_bytes_total",
                                 "Bytes of chunk states on the wire, by part: overlap frames up "
                                 "and down at each sync, checkpoints (full sampler states), "
                                 "results (finished chunks).",
                                 part, 1, err)
            : NULL;
    m->states = m->state_bytes ? rf_metrics_counter(m, "reelfarm_chunk_states_total",
                                                    "Chunk states on the wire, by part (see "
                                                    "reelfarm_chunk_state_bytes_total).",
                                                    part, 1, err)
                               : NULL;
    m->resident = m->states ? rf_metrics_gauge(m, "reelfarm_jobs_resident",
                                               "Jobs held in the coordinator's memory (the "
                                               "unfinished ones; finished jobs are answered "
                                               "from the store).",
                                               NULL, 0, err)
                            : NULL;
    m->decode_reads = m->resident
                          ? rf_metrics_counter(m, "reelfarm_decode_chunk_reads_total",
                                               "Chunk results read from the store to build DECODE "
                                               "segments' latents (only the chunks that decide a "
                                               "segment's frames).",
                                               NULL, 0, err)
                          : NULL;
    m->decode_reads_max =
        m->decode_reads ? rf_metrics_gauge(m, "reelfarm_decode_chunk_reads_per_pass_max",
                                           "The most chunk results one dispatch pass has read "
                                           "for DECODE latents (bounded per loop turn).",
                                           NULL, 0, err)
                        : NULL;
    m->turn =
        m->decode_reads_max
            ? rf_metrics_histogram(m, "reelfarm_loop_turn_duration_seconds",
                                   "Time the coordinator's event loop spent in one turn "
                                   "that did work (taking messages, timers, dispatch, "
                                   "commit): a message waits about one turn for its answer.",
                                   NULL, 0, turn_b, (int)(sizeof(turn_b) / sizeof(turn_b[0])), err)
            : NULL;
    if (!m->turn) {
        rf_metrics_destroy(&m);
        return NULL;
    }
    rf_metric_set(m->healthy_g, NULL, 1);
    return m;
}

void rf_metrics_task_done(rf_metrics *m, const char *kind, const char *outcome, double seconds)
{
    if (!m)
        return;
    const char *v[] = {kind, outcome};
    rf_metric_add(m->tasks, v, 1);
    if (seconds >= 0)
        rf_metric_observe(m->task_seconds, v, seconds);
}

void rf_metrics_lease_expired(rf_metrics *m, const char *kind)
{
    if (!m)
        return;
    rf_metric_add(m->leases, &kind, 1);
}

void rf_metrics_steps(rf_metrics *m, uint64_t n)
{
    if (!m)
        return;
    rf_metric_add(m->steps, NULL, (double)n);
}

void rf_metrics_frames(rf_metrics *m, uint64_t n)
{
    if (!m)
        return;
    rf_metric_add(m->frames, NULL, (double)n);
}

void rf_metrics_bytes(rf_metrics *m, const char *direction, uint64_t n)
{
    if (!m)
        return;
    rf_metric_add(m->bytes, &direction, (double)n);
}

void rf_metrics_state(rf_metrics *m, const char *part, uint64_t bytes)
{
    if (!m)
        return;
    rf_metric_add(m->state_bytes, &part, (double)bytes);
    rf_metric_add(m->states, &part, 1);
}

void rf_metrics_decode_reads(rf_metrics *m, uint64_t n)
{
    if (!m)
        return;
    rf_metric_add(m->decode_reads, NULL, (double)n);
}

void rf_metrics_decode_reads_max(rf_metrics *m, int64_t n)
{
    if (!m)
        return;
    rf_metric_set(m->decode_reads_max, NULL, (double)n);
}

void rf_metrics_turn(rf_metrics *m, double seconds)
{
    if (!m)
        return;
    rf_metric_observe(m->turn, NULL, seconds);
}

void rf_metrics_round(rf_metrics *m, double seconds)
{
    if (!m)
        return;
    rf_metric_observe(m->round, NULL, seconds);
}

void rf_metrics_jobs(rf_metrics *m, const char *state, int64_t n)
{
    if (!m)
        return;
    rf_metric_set(m->jobs, &state, (double)n);
}

void rf_metrics_jobs_resident(rf_metrics *m, int64_t n)
{
    if (!m)
        return;
    rf_metric_set(m->resident, NULL, (double)n);
}

void rf_metrics_queue(rf_metrics *m, const char *kind, int64_t n)
{
    if (!m)
        return;
    rf_metric_set(m->queue, &kind, (double)n);
}

void rf_metrics_workers(rf_metrics *m, const char *state, int64_t n)
{
    if (!m)
        return;
    rf_metric_set(m->workers, &state, (double)n);
}

void rf_metrics_handshakes(rf_metrics *m, uint64_t accepted, uint64_t rejected)
{
    if (!m)
        return;
    const char *a = "accepted", *r = "rejected";
    rf_metric_set(m->handshakes, &a, (double)accepted);
    rf_metric_set(m->handshakes, &r, (double)rejected);
}

void rf_metrics_health(rf_metrics *m, int ok, const char *reason)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->healthy = ok ? 1 : 0;
    snprintf(m->reason, sizeof(m->reason), "%s", ok || !reason ? "" : reason);
    pthread_mutex_unlock(&m->mu);
    rf_metric_set(m->healthy_g, NULL, ok ? 1 : 0);
}

/* ---- the HTTP server --------------------------------------------------------------- */

struct rf_metrics_server {
    rf_metrics *m;
    struct MHD_Daemon *d;
    int port;
};

static enum MHD_Result s_reply(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                               const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static char *s_text(const char *fmt, const char *arg, size_t *len)
{
    char *s = NULL;
    int n = asprintf(&s, fmt, arg ? arg : "");
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return s;
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)con_cls;
    rf_metrics_server *self = cls;
    const char *plain = "text/plain; charset=utf-8";
    size_t len = 0;
    if (*upload_size) { /* a body we do not want: swallow it */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        char *b = s_text("method %s not allowed; use GET\n", method, &len);
        return b ? s_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, b, len, plain) : MHD_NO;
    }
    if (strcmp(url, "/metrics") == 0) {
        char *b = rf_metrics_render(self->m, &len);
        return b ? s_reply(c, MHD_HTTP_OK, b, len, "text/plain; version=0.0.4; charset=utf-8")
                 : MHD_NO;
    }
    if (strcmp(url, "/healthz") == 0) {
        pthread_mutex_lock(&self->m->mu);
        int ok = self->m->healthy;
        char reason[sizeof(self->m->reason)];
        memcpy(reason, self->m->reason, sizeof(reason));
        pthread_mutex_unlock(&self->m->mu);
        char *b = ok ? s_text("ok\n", NULL, &len) : s_text("unhealthy: %s\n", reason, &len);
        return b ? s_reply(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, b, len, plain)
                 : MHD_NO;
    }
    char *b = s_text("not found; try /metrics or /healthz\n", NULL, &len);
    return b ? s_reply(c, MHD_HTTP_NOT_FOUND, b, len, plain) : MHD_NO;
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    rf_log_kv(RF_LOG_WARN, "metrics", "http server", "detail=\"%s\"", buf);
}

rf_metrics_server *rf_metrics_server_start(rf_metrics *m, const char *addr, rf_error *err)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || !colon[1] || *end || port < 0 || port > 65535 || colon == addr)
        return rf_error_set(err, RF_EINVAL,
                            "--metrics %s: expected HOST:PORT, e.g. 127.0.0.1:9464 or *:9464",
                            addr ? addr : ""),
               NULL;
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &v6->sin6_addr) != 1)
            return rf_error_set(err, RF_EINVAL, "--metrics %s: '%s' is not an IPv6 address", addr,
                                host + 1),
                   NULL;
        flags |= MHD_USE_IPv6;
    } else {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        if (strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0)
            v4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (strcmp(host, "localhost") == 0)
            v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &v4->sin_addr) != 1)
            return rf_error_set(err, RF_EINVAL,
                                "--metrics %s: '%s' is not an IP address (use e.g. 127.0.0.1, "
                                "[::1], localhost or *)",
                                addr, host),
                   NULL;
    }
    rf_metrics_server *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "metrics: out of memory"), NULL;
    self->m = m;
    self->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, s_handle, self,
                               MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
                               (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
                               MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!self->d) {
        free(self);
        return rf_error_set(err, RF_EIO,
                            "--metrics %s: cannot listen (address in use, or not an address "
                            "of this machine?)",
                            addr),
               NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->d, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? (int)info->port : (int)port;
    rf_log_kv(RF_LOG_INFO, "metrics", "serving /metrics and /healthz", "addr=%s port=%d", addr,
              self->port);
    return self;
}

int rf_metrics_server_port(const rf_metrics_server *self)
{
    return self->port;
}

void rf_metrics_server_stop(rf_metrics_server **self)
{
    if (!self || !*self)
        return;
    MHD_stop_daemon((*self)->d);
    free(*self);
    *self = NULL;
}
