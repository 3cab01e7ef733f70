/* output.c - tables, durations, sizes and the JSON forms reelctl prints. */
#include "output.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rf_table {
    int ncols, nrows, cap;
    char (*cells)[RF_TABLE_CELL];
};

rf_table *rf_table_new(int ncols, const char *const *header)
{
    rf_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ncols = ncols > RF_TABLE_MAX_COLS ? RF_TABLE_MAX_COLS : ncols;
    rf_table_row(t, header);
    return t;
}

void rf_table_row(rf_table *t, const char *const *cells)
{
    if (!t)
        return;
    if (t->nrows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        void *p = realloc(t->cells, (size_t)cap * (size_t)t->ncols * RF_TABLE_CELL);
        if (!p)
            return;
        t->cells = p;
        t->cap = cap;
    }
    for (int c = 0; c < t->ncols; c++)
        snprintf(t->cells[t->nrows * t->ncols + c], RF_TABLE_CELL, "%s", cells[c] ? cells[c] : "");
    t->nrows++;
}

void rf_table_print(rf_table **pt, FILE *out)
{
    rf_table *t = *pt;
    if (!t)
        return;
    int width[RF_TABLE_MAX_COLS] = {0};
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            int n = (int)strlen(t->cells[r * t->ncols + c]);
            if (n > width[c])
                width[c] = n;
        }
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c == t->ncols - 1)
                fprintf(out, "%s", cell);
            else
                fprintf(out, "%-*s  ", width[c], cell);
        }
        fputc('\n', out);
    }
    free(t->cells);
    free(t);
    *pt = NULL;
}

void rf_fmt_duration(double s, char *buf, size_t cap)
{
    if (s < 0) {
        snprintf(buf, cap, "-");
        return;
    }
    long v = (long)(s + 0.5);
    if (v < 60)
        snprintf(buf, cap, "%lds", v);
    else if (v < 3600)
        snprintf(buf, cap, "%ldm%02lds", v / 60, v % 60);
    else if (v < 86400)
        snprintf(buf, cap, "%ldh%02ldm", v / 3600, (v % 3600) / 60);
    else
        snprintf(buf, cap, "%ldd%02ldh", v / 86400, (v % 86400) / 3600);
}

void rf_fmt_age(uint64_t ms, char *buf, size_t cap)
{
    if (!ms) {
        snprintf(buf, cap, "-");
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    rf_fmt_duration(now - (double)ms / 1000.0, buf, cap);
}

void rf_fmt_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%lluB", (unsigned long long)n);
    else
        snprintf(buf, cap, "%.1f%s", v, units[u]);
}

const char *rf_job_state_name(int s)
{
    static const char *n[] = {"?", "queued", "running", "done", "failed", "canceled"};
    return s >= 0 && s <= 5 ? n[s] : "?";
}

const char *rf_worker_state_name(int s)
{
    static const char *n[] = {"?", "idle", "busy", "draining", "lost"};
    return s >= 0 && s <= 4 ? n[s] : "?";
}

const char *rf_unit_state_name(int s)
{
    static const char *n[] = {"?", "pending", "running", "done", "failed"};
    return s >= 0 && s <= 4 ? n[s] : "?";
}

static json_t *s_range(const Reelfarm__FrameRange *r)
{
    return r ? json_pack("[I,I]", (json_int_t)r->start, (json_int_t)r->end) : json_null();
}

json_t *rf_json_job(const Reelfarm__JobInfo *j, int detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "job_id", json_string(j->job_id));
    json_object_set_new(o, "name", json_string(j->name));
    json_object_set_new(o, "state", json_string(rf_job_state_name(j->state)));
    json_object_set_new(o, "priority", json_integer(j->priority));
    json_object_set_new(o, "model", json_string(j->model));
    json_object_set_new(o, "model_hash", json_string(j->model_hash));
    json_object_set_new(o, "output_path", json_string(j->output_path));
    json_object_set_new(o, "submitted_ms", json_integer((json_int_t)j->submitted_ms));
    json_object_set_new(o, "started_ms", json_integer((json_int_t)j->started_ms));
    json_object_set_new(o, "finished_ms", json_integer((json_int_t)j->finished_ms));
    json_object_set_new(o, "width", json_integer(j->width));
    json_object_set_new(o, "height", json_integer(j->height));
    json_object_set_new(o, "fps", json_integer(j->fps));
    json_object_set_new(o, "steps", json_integer(j->steps));
    json_object_set_new(o, "chunk_steps_done", json_integer((json_int_t)j->chunk_steps_done));
    json_object_set_new(o, "chunk_steps_total", json_integer((json_int_t)j->chunk_steps_total));
    json_object_set_new(o, "segments_done", json_integer(j->segments_done));
    json_object_set_new(o, "segments_total", json_integer(j->segments_total));
    json_object_set_new(o, "rate", json_real(j->rate));
    json_object_set_new(o, "eta_seconds", json_real(j->eta_seconds));
    json_t *errs = json_array();
    for (size_t i = 0; i < j->n_errors; i++)
        json_array_append_new(errs, json_string(j->errors[i]));
    json_object_set_new(o, "errors", errs);
    if (detail) {
        json_t *tls = json_array();
        for (size_t t = 0; t < j->n_timelines; t++) {
            const Reelfarm__TimelineInfo *tl = j->timelines[t];
            json_t *chunks = json_array();
            for (size_t c = 0; c < tl->n_chunks; c++) {
                const Reelfarm__ChunkInfo *ci = tl->chunks[c];
                json_array_append_new(chunks, json_pack("{s:I, s:o, s:I, s:s, s:s}", "index",
                                                        (json_int_t)ci->index, "frames",
                                                        s_range(ci->frames), "steps_done",
                                                        (json_int_t)ci->steps_done, "state",
                                                        rf_unit_state_name(ci->state), "worker",
                                                        ci->worker ? ci->worker : ""));
            }
            json_array_append_new(tls, json_pack("{s:I, s:I, s:I, s:o}", "index",
                                                 (json_int_t)tl->index, "latent_frames",
                                                 (json_int_t)tl->latent_frames, "pixel_frames",
                                                 (json_int_t)tl->pixel_frames, "chunks", chunks));
        }
        json_object_set_new(o, "timelines", tls);
        json_t *segs = json_array();
        for (size_t s = 0; s < j->n_segments; s++) {
            const Reelfarm__SegmentInfo *si = j->segments[s];
            json_array_append_new(
                segs,
                json_pack("{s:I, s:I, s:o, s:s, s:s}", "timeline", (json_int_t)si->timeline,
                          "index", (json_int_t)si->index, "frames", s_range(si->frames), "state",
                          rf_unit_state_name(si->state), "worker", si->worker ? si->worker : ""));
        }
        json_object_set_new(o, "segments", segs);
    }
    return o;
}

json_t *rf_json_worker(const Reelfarm__WorkerInfo *w)
{
    json_t *o = json_object();
    json_object_set_new(o, "worker_id", json_string(w->worker_id));
    json_object_set_new(o, "name", json_string(w->name));
    json_object_set_new(o, "backend", json_string(w->backend));
    json_object_set_new(o, "state", json_string(rf_worker_state_name(w->state)));
    json_object_set_new(o, "threads", json_integer(w->threads));
    json_object_set_new(o, "tp", json_integer(w->tp));
    json_object_set_new(o, "memory_bytes", json_integer((json_int_t)w->memory_bytes));
    json_object_set_new(o, "running", json_integer((json_int_t)w->n_running));
    json_object_set_new(o, "tasks_done", json_integer((json_int_t)w->tasks_done));
    json_object_set_new(o, "tasks_failed", json_integer((json_int_t)w->tasks_failed));
    json_object_set_new(o, "resident_chunks", json_integer(w->resident_chunks));
    json_object_set_new(o, "connected_ms", json_integer((json_int_t)w->connected_ms));
    json_object_set_new(o, "last_seen_ms", json_integer((json_int_t)w->last_seen_ms));
    json_t *models = json_array();
    for (size_t i = 0; i < w->n_model_hashes; i++)
        json_array_append_new(models, json_string(w->model_hashes[i]));
    json_object_set_new(o, "model_hashes", models);
    return o;
}

void rf_json_print(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    json_decref(j);
}
