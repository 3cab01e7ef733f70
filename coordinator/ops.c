/* ops.c - the coordinator's operations plumbing: endpoint security, metrics, SIGHUP.
 *
 * Ties coordinator/secure, coordinator/metrics and coordinator/config to the loop with
 * four calls (c_ops_start, c_ops_prepare, c_ops_tick, c_ops_stop), so coord.c only calls
 * them. Gauges (jobs, workers, queued tasks, handshakes) are recomputed from the loop's
 * own lists at most once a second; a reload requested by a signal is done on the loop's
 * thread. It never changes scheduling state.
 */
#include "coord.h"

#include "fetch.h"
#include "log.h"

#include <string.h>

static const char *s_kind(int kind)
{
    switch (kind) {
    case REELFARM__TASK_KIND__TASK_ENCODE_TEXT: return "ENCODE_TEXT";
    case REELFARM__TASK_KIND__TASK_ENCODE_MEDIA: return "ENCODE_MEDIA";
    case REELFARM__TASK_KIND__TASK_DENOISE: return "DENOISE";
    case REELFARM__TASK_KIND__TASK_DECODE: return "DECODE";
    default: return "UNSET";
    }
}

const char *c_ops_kind_name(int kind)
{
    return s_kind(kind);
}

int c_ops_start(rf_coord *c, rf_error *err)
{
    const rf_coord_config *cfg = &c->cfg;
    c->secure = rf_secure_new(c->zctx, cfg->server_secret_key, cfg->allowed_worker_keys,
                              cfg->allowed_client_keys, cfg->insecure, err);
    if (!c->secure)
        return err ? err->code : RF_EINVAL;
    c->metrics = rf_metrics_new(err);
    if (!c->metrics)
        return err ? err->code : RF_ENOMEM;
    if (cfg->metrics) {
        c->metrics_server = rf_metrics_server_start(c->metrics, cfg->metrics, err);
        if (!c->metrics_server)
            return err ? err->code : RF_EIO;
    }
    return 0;
}

int c_ops_prepare(rf_coord *c, void *sock, int api, const char *endpoint, rf_error *err)
{
    return rf_secure_prepare(c->secure, sock, api ? RF_CURVE_DOMAIN_API : RF_CURVE_DOMAIN_WORKERS,
                             api ? "--api" : "--listen", endpoint, err);
}

void rf_coord_reload(rf_coord *self)
{
    self->reload = 1;
}

static void s_reload(rf_coord *c)
{
    rf_error err;
    rf_error_clear(&err);
    rf_config *f = c->cfg.config;
    if (f && rf_config_reload(f, &err)) {
        rf_log_kv(RF_LOG_ERROR, "ops", "SIGHUP: config not reloaded", "error=\"%s\"", err.msg);
        return;
    }
    const char *wk = f ? f->allowed_worker_keys : NULL;
    const char *ck = f ? f->allowed_client_keys : NULL;
    if (rf_secure_reload(c->secure, wk, ck, &err))
        rf_log_kv(RF_LOG_ERROR, "ops", "SIGHUP: keys not reloaded (the old ones stay)",
                  "error=\"%s\"", err.msg);
    else
        rf_log_kv(RF_LOG_INFO, "ops", "SIGHUP: keys and allow-lists reloaded", "security=\"%s\"",
                  rf_secure_describe(c->secure));
}

static void s_gauges(rf_coord *c)
{
    static const char *const job_states[] = {"unset", "queued", "running",
                                             "done",  "failed", "canceled"};
    int64_t jobs[6] = {0}, queued[5] = {0}, resident = 0;
    for (int s = 1; s <= 5; s++)
        jobs[s] = c->jobs_gone[s]; /* finished, out of memory */
    for (c_job *j = c->jobs; j; j = j->next) {
        resident++;
        int s = j->row.state;
        if (s >= 1 && s <= 5)
            jobs[s]++;
        if (c_job_terminal(j))
            continue;
        for (int i = 0; i < j->ntasks; i++)
            if (j->tasks[i].row.state == REELFARM__UNIT_STATE__UNIT_PENDING &&
                j->tasks[i].row.kind >= 1 && j->tasks[i].row.kind <= 4)
                queued[j->tasks[i].row.kind]++;
    }
    for (int s = 1; s <= 5; s++)
        rf_metrics_jobs(c->metrics, job_states[s], jobs[s]);
    rf_metrics_jobs_resident(c->metrics, resident);
    for (int k = 1; k <= 4; k++)
        rf_metrics_queue(c->metrics, s_kind(k), queued[k]);
    int64_t idle = 0, busy = 0, draining = 0;
    for (c_worker *w = c->workers; w; w = w->next) {
        if (w->draining)
            draining++;
        else if (w->running)
            busy++;
        else
            idle++;
    }
    rf_metrics_workers(c->metrics, "idle", idle);
    rf_metrics_workers(c->metrics, "busy", busy);
    rf_metrics_workers(c->metrics, "draining", draining);
    uint64_t acc = 0, rej = 0;
    rf_secure_counts(c->secure, &acc, &rej);
    rf_metrics_handshakes(c->metrics, acc, rej);
    if (c->paused)
        rf_metrics_health(c->metrics, 0, c->pause_reason);
    else
        rf_metrics_health(c->metrics, 1, NULL);
}

/* Pixel frames a finished DECODE segment wrote: Wan's 4x temporal compression with a
 * lone first frame (latent 0 is one pixel frame). */
static int64_t s_segment_frames(const c_job *j, int unit)
{
    if (!j->plan || unit < 0 || unit >= j->plan->segment_count)
        return 0;
    const rf_plan_segment *sg = &j->plan->segments[unit];
    int64_t n = 4 * (int64_t)(sg->end - sg->start);
    return sg->start == 0 ? n - 3 : n;
}

/* Steps and frames are counted from the loop's own state: whatever the sum grew by
 * since the last tick was done in between (a replayed chunk's steps count again, as
 * they were computed again). */
static int64_t s_job_frames(const c_job *j)
{
    int64_t frames = 0;
    for (int i = 0; i < j->ntasks; i++)
        if (j->tasks[i].row.kind == REELFARM__TASK_KIND__TASK_DECODE &&
            j->tasks[i].row.state == REELFARM__UNIT_STATE__UNIT_DONE)
            frames += s_segment_frames(j, j->tasks[i].row.unit);
    return frames;
}

static void s_work_counters(rf_coord *c)
{
    uint64_t steps = 0;
    int64_t frames = 0;
    for (c_job *j = c->jobs; j; j = j->next) {
        steps += c_job_steps_done(j);
        frames += s_job_frames(j);
    }
    if (steps > c->ops_steps)
        rf_metrics_steps(c->metrics, steps - c->ops_steps);
    if (frames > c->ops_frames)
        rf_metrics_frames(c->metrics, (uint64_t)(frames - c->ops_frames));
    c->ops_steps = steps;
    c->ops_frames = frames;
}

void c_ops_jobs_leaving(rf_coord *c)
{
    s_work_counters(c);
}

void c_ops_job_left(rf_coord *c, const c_job *j)
{
    uint64_t steps = c_job_steps_done(j);
    int64_t frames = s_job_frames(j);
    c->ops_steps = c->ops_steps > steps ? c->ops_steps - steps : 0;
    c->ops_frames = c->ops_frames > frames ? c->ops_frames - frames : 0;
}

void c_ops_task_end(rf_coord *c, const c_task *t, const char *outcome, double seconds)
{
    rf_metrics_task_done(c->metrics, s_kind(t->row.kind), outcome, seconds);
}

void c_ops_lease_expired(rf_coord *c, const c_task *t)
{
    rf_metrics_lease_expired(c->metrics, s_kind(t->row.kind));
    rf_metrics_task_done(c->metrics, s_kind(t->row.kind), "lost", -1);
}

void c_ops_round_up(rf_coord *c, c_timeline *tl)
{
    (void)c;
    if (!tl->round_t0_ms)
        tl->round_t0_ms = c_now_ms();
}

void c_ops_round_fused(rf_coord *c, c_timeline *tl)
{
    if (tl->round_t0_ms)
        rf_metrics_round(c->metrics, (double)(c_now_ms() - tl->round_t0_ms) / 1000.0);
    tl->round_t0_ms = 0;
}

void c_ops_bytes(rf_coord *c, const rf_wire_msg *msg, int sent)
{
    uint64_t n = 0;
    for (size_t i = 0; i < msg->n_blobs; i++)
        n += msg->blobs[i].len;
    if (n)
        rf_metrics_bytes(c->metrics, sent ? "sent" : "received", n);
}

void c_ops_state_bytes(rf_coord *c, const char *part, const rf_wire_blob *blobs, size_t n)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += blobs[i].len;
    rf_metrics_state(c->metrics, part, bytes);
}

void c_ops_decode_reads(rf_coord *c, int n)
{
    c->turn_decode_reads += n;
    rf_metrics_decode_reads(c->metrics, (uint64_t)n);
}

void c_ops_pass_done(rf_coord *c)
{
    if (c->turn_decode_reads > c->turn_decode_reads_max) {
        c->turn_decode_reads_max = c->turn_decode_reads;
        rf_metrics_decode_reads_max(c->metrics, c->turn_decode_reads_max);
    }
    c->turn_decode_reads = 0;
}

/* Blobs of jobs finished more than retention_s ago go, every tenth of the retention
 * period (at least each second, at most every 10 minutes). */
static void s_gc(rf_coord *c, int64_t now)
{
    int64_t every = c->cfg.retention_s * 100;
    every = every < 1000 ? 1000 : every > 600000 ? 600000 : every;
    c->next_gc_ms = now + every;
    if (c->paused)
        return;
    c_commit(c);
    rf_error err;
    int removed = 0;
    if (rf_store_blob_gc(c->store, now - c->cfg.retention_s * 1000, &removed, &err))
        rf_log_kv(RF_LOG_WARN, "ops", "blob garbage collection failed", "error=\"%s\"", err.msg);
    else if (removed)
        rf_log_kv(RF_LOG_INFO, "ops", "blobs of finished jobs collected",
                  "removed=%d retention_s=%lld", removed, (long long)c->cfg.retention_s);
}

int c_ops_admit(rf_coord *c, const rf_job_spec *spec, rf_error *err)
{
    if (c->cfg.max_frames > 0 && spec->total_frames > c->cfg.max_frames)
        return rf_error_set(err, RF_EINVAL,
                            "the film has %lld frames; this farm takes at most %lld per job "
                            "(limits.max_frames): split it into several jobs",
                            (long long)spec->total_frames, (long long)c->cfg.max_frames);
    if (spec->inputs.kind != RF_INPUT_NONE) {
        /* The operator's policy at submit, so a user learns at once what is not allowed
         * (coordinator/inputs.c reads or downloads the input once the job is queued) */
        const rf_config *f = c->cfg.config;
        const char *path = spec->inputs.path ? spec->inputs.path : "";
        if (spec->inputs.is_url) {
            rf_fetch_opts o = rf_fetch_opts_default();
            o.hosts = f ? (const char *const *)f->url_hosts.items : NULL;
            o.nhosts = f ? f->url_hosts.n : 0;
            int rc = rf_fetch_check_url(path, &o, err);
            if (rc)
                return rc;
        } else {
            char real[4096];
            int rc = rf_fetch_confine(f ? f->input_root : NULL, path, real, sizeof(real), err);
            if (rc)
                return rc;
        }
    }
    if (c->cfg.max_jobs > 0) {
        int64_t open = 0;
        for (const c_job *j = c->jobs; j; j = j->next)
            open += !c_job_terminal(j);
        if (open >= c->cfg.max_jobs)
            return rf_error_set(err, RF_EAGAIN,
                                "the farm already holds %lld unfinished jobs (limits.max_jobs); "
                                "submit again when some have finished",
                                (long long)open);
    }
    return 0;
}

void c_ops_tick(rf_coord *c, int64_t now)
{
    if (now >= c->next_gc_ms)
        s_gc(c, now);
    if (c->reload) {
        c->reload = 0;
        s_reload(c);
    }
    if (now >= c->next_gauges_ms) {
        c->next_gauges_ms = now + 1000;
        s_gauges(c);
        s_work_counters(c);
    }
}

void c_ops_stop(rf_coord *c)
{
    rf_metrics_server_stop(&c->metrics_server);
    rf_secure_destroy(&c->secure);
    rf_metrics_destroy(&c->metrics);
}
