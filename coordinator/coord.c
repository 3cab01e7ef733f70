/* coord.c - the coordinator's event loop (Redis ae style: small, one thread).
 *
 * Each turn: zmq_poll both ROUTER sockets with a timeout bounded by the next timer,
 * drain the waiting messages (workers first, at most 256 per socket and for about a
 * millisecond, so a burst does not hold back every reply until its last message is in),
 * run the timers (heartbeats, liveness, leases), dispatch when something changed,
 * commit. Handlers never block: sockets have zero send/receive timeouts, ROUTER_MANDATORY
 * turns a vanished peer into an error instead of silence. A malformed message is answered
 * with Error and dropped; nothing a peer sends can stop the loop. Never calls exit.
 */
#include "coord.h"

#include "atomic_file.h"
#include "crash.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/* How long a turn takes messages before it dispatches and commits what they changed: the
 * first message of a burst is answered after at most this (plus the dispatch and the
 * commit), not after the burst's last (256 messages took 6-10 ms of a 2-core machine at
 * 1,000 workers). Longer when commits are slow, twice the last commit's time, so that
 * commits (fsyncs) take at most a third of the loop. */
#define TURN_DRAIN_US 1000

int64_t c_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t c_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int c_commit(rf_coord *c)
{
    rf_error err;
    int open = rf_store_in_tx(c->store);
    if (open)
        rf_crash_point("before-commit");
    if (c->need_reload) { /* this turn already lost a commit: nothing more becomes durable */
        rf_store_rollback(c->store);
        c_results_refused(c);
        return RF_EIO;
    }
    int64_t t0 = open ? c_mono_us() : 0;
    if (rf_store_commit(c->store, &err) == 0) {
        if (open)
            c->commit_us = c_mono_us() - t0;
        c->unacked |= open;
        c_results_durable(c);
        return 0;
    }
    rf_store_rollback(c->store);
    c_results_refused(c);
    if (!c->paused)
        rf_log_kv(RF_LOG_ERROR, "store", "commit failed; dispatch paused", "error=\"%s\"", err.msg);
    c->paused = 1;
    c->need_reload = 1; /* memory holds transitions the store refused: reload at the turn's end */
    c->next_probe_ms = c_now_ms() + 1000;
    snprintf(c->pause_reason, sizeof(c->pause_reason), "%s", err.msg);
    return err.code;
}

int c_send(rf_coord *c, void *sock, rf_wire_msg *msg)
{
    if (c_commit(c)) {
        rf_log_kv(RF_LOG_WARN, sock == c->wsock ? "workers" : "api",
                  "message not sent: its transition could not be committed", "kind=%s",
                  rf_wire_kind_name(msg->env->kind_case));
        return RF_EIO;
    }
    if (c->unacked) { /* durable now, and the peer does not know yet */
        c->unacked = 0;
        rf_crash_point("after-commit-before-ack");
    }
    rf_error err;
    int rc = rf_wire_send(sock, msg, &err);
    if (!rc)
        c_ops_bytes(c, msg, 1);
    if (!rc && sock == c->wsock)
        c_worker_sent(c, msg);
    if (rc)
        rf_log_kv(RF_LOG_WARN, sock == c->wsock ? "workers" : "api", "send failed",
                  "kind=%s error=\"%s\"", rf_wire_kind_name(msg->env->kind_case), err.msg);
    return rc;
}

/* After a refused commit: memory goes back to what the store holds. */
static void s_reload_if_needed(rf_coord *c)
{
    if (!c->need_reload)
        return;
    rf_store_rollback(c->store);
    c->need_reload = 0;
    rf_error err = {0};
    if (c_jobs_reload(c, &err))
        rf_log_kv(RF_LOG_ERROR, "store", "cannot reload the state after a refused commit",
                  "error=\"%s\"", err.msg);
    else
        rf_log_kv(RF_LOG_WARN, "store", "state reloaded from the store after a refused commit",
                  NULL);
    for (c_worker *w = c->workers; w; w = w->next) /* their running counts were recounted */
        c_worker_may_free(c, w);
    c_leases_rebuild(c); /* the old jobs' tasks are gone */
}

/* While paused: is the store writable again? A small durable file and a committed
 * counter; on success dispatch resumes and the work the pause held back goes on. */
static void s_probe(rf_coord *c, int64_t now)
{
    if (!c->paused || now < c->next_probe_ms)
        return;
    c->next_probe_ms = now + 1000;
    char path[4200];
    snprintf(path, sizeof(path), "%s/probe", rf_store_dir(c->store));
    rf_error err;
    uint64_t n = 0;
    int rc = rf_atomic_write(path, "probe\n", 6, &err);
    if (!rc)
        rc = rf_store_begin(c->store, &err);
    if (!rc)
        rc = rf_store_next(c->store, "probe", &n, &err);
    if (!rc)
        rc = rf_store_commit(c->store, &err);
    if (rc) {
        rf_store_rollback(c->store);
        snprintf(c->pause_reason, sizeof(c->pause_reason), "%s", err.msg);
        return;
    }
    rf_log_kv(RF_LOG_INFO, "store", "store writable again; dispatch resumes", NULL);
    c->paused = 0;
    c->dirty = 1;
    c_jobs_resume(c, now);
}

void c_store_failed(rf_coord *c, const rf_error *err)
{
    if (!c->paused)
        rf_log_kv(RF_LOG_ERROR, "store", "store write failed; dispatch paused", "error=\"%s\"",
                  err->msg);
    rf_store_rollback(c->store);
    c_results_refused(c);
    c->paused = 1;
    c->need_reload = 1;
    c->next_probe_ms = c_now_ms() + 1000;
    snprintf(c->pause_reason, sizeof(c->pause_reason), "%s", err->msg);
}

void c_reply_error(rf_coord *c, void *sock, const rf_wire_msg *to, int code, const char *text)
{
    c_commit(c);
    rf_error err;
    if (rf_wire_reply_error(sock, to, code, text, &err))
        rf_log_kv(RF_LOG_WARN, "api", "error reply failed", "error=\"%s\"", err.msg);
}

static void s_event_send(rf_coord *c, c_job *job, int kind, const char *text)
{
    int ended = kind == REELFARM__EVENT_KIND__EVENT_JOB_STATE && c_job_terminal(job);
    for (c_watch **p = &c->watches; *p;) {
        c_watch *wt = *p;
        if (wt->job_id[0] && strcmp(wt->job_id, job->row.id) != 0) {
            p = &wt->next;
            continue;
        }
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        Reelfarm__Event ev = REELFARM__EVENT__INIT;
        ev.seq = ++c->event_seq;
        ev.time_ms = (uint64_t)c_now_ms();
        ev.kind = kind;
        ev.job_id = job->row.id;
        ev.state = job->row.state;
        ev.chunk_steps_done = c_job_steps_done(job);
        ev.chunk_steps_total = c_job_steps_total(job);
        ev.segments_done = (uint32_t)job->done_segments;
        ev.segments_total = (uint32_t)job->plan->segment_count;
        ev.rate = c_job_rate(job, &ev.eta_seconds);
        ev.text = (char *)(text ? text : "");
        env.reply_to = wt->request_id;
        env.kind_case = REELFARM__ENVELOPE__KIND_EVENT;
        env.event = &ev;
        rf_wire_msg m = {0};
        memcpy(m.peer, wt->peer, wt->peer_len);
        m.peer_len = wt->peer_len;
        m.env = &env;
        int rc = c_send(c, c->asock, &m);
        /* a watch ends with its job, or when its client is gone (ROUTER_MANDATORY) */
        if (rc == RF_ENOTFOUND || (ended && wt->job_id[0])) {
            rf_log_kv(RF_LOG_DEBUG, "api", "watch removed", "job=%s why=%s", job->row.id,
                      rc == RF_ENOTFOUND ? "client gone" : "job ended");
            *p = wt->next;
            free(wt);
            continue;
        }
        p = &wt->next;
    }
}

void c_job_notify(rf_coord *c, c_job *job, int kind)
{
    s_event_send(c, job, kind, NULL);
}

void c_job_event(rf_coord *c, c_job *job, const char *level, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    rf_log_level lv = strcmp(level, "error") == 0  ? RF_LOG_ERROR
                      : strcmp(level, "warn") == 0 ? RF_LOG_WARN
                                                   : RF_LOG_INFO;
    rf_log_kv(lv, "job", text, "job=%s", job->row.id);
    rf_error err;
    if (rf_store_begin(c->store, &err) ||
        rf_store_event_add(c->store, job->row.id, c_now_ms(), level, text, NULL, &err))
        rf_log_kv(RF_LOG_WARN, "store", "cannot record a job event", "error=\"%s\"", err.msg);
    s_event_send(c, job, REELFARM__EVENT_KIND__EVENT_LOG, text);
}

static void *s_bind(rf_coord *c, const char *ep, const char *what, int api, rf_error *err)
{
    void *s = zmq_socket(c->zctx, ZMQ_ROUTER);
    if (!s) {
        rf_error_set(err, RF_EIO, "cannot create the %s socket: %s", what, zmq_strerror(errno));
        return NULL;
    }
    int zero = 0, one = 1, hwm = 100000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_SNDTIMEO, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (rf_wire_socket_limits(s, &c->limits, err)) {
        zmq_close(s);
        return NULL;
    }
    if (c_ops_prepare(c, s, api, ep, err)) {
        zmq_close(s);
        return NULL;
    }
    if (zmq_bind(s, ep) != 0) {
        rf_error_set(err, RF_EIO,
                     "cannot bind the %s endpoint %s: %s (is another coordinator "
                     "running, or is the address wrong?)",
                     what, ep, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

rf_coord *rf_coord_new(const rf_coord_config *cfg, rf_error *err)
{
    rf_coord *c = calloc(1, sizeof(*c));
    if (!c)
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    c->cfg = *cfg;
    c->held_busy = -1;
    if (c->cfg.heartbeat_ms <= 0)
        c->cfg.heartbeat_ms = 1000;
    if (c->cfg.liveness <= 0)
        c->cfg.liveness = 5;
    if (c->cfg.lease_ms <= 0)
        c->cfg.lease_ms = 30000;
    if (c->cfg.segment_latent <= 0)
        c->cfg.segment_latent = 8;
    c->limits = rf_wire_limits_default();
    if (cfg->max_message_bytes > 0)
        c->limits.max_total_bytes = (size_t)cfg->max_message_bytes;
    c->started_ms = c_now_ms();
    if (c_output_resolve(c, NULL, c->output_root, sizeof(c->output_root), err))
        goto fail;
    c->store = rf_store_open(cfg->state_dir, err);
    if (!c->store)
        goto fail;
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        rf_error_set(err, RF_EIO, "cannot create a ZeroMQ context");
        goto fail;
    }
    if (c_ops_start(c, err))
        goto fail;
    c->wsock = s_bind(c, cfg->listen, "worker (--listen)", 0, err);
    if (!c->wsock)
        goto fail;
    c->asock = s_bind(c, cfg->api, "API (--api)", 1, err);
    if (!c->asock)
        goto fail;
    if (c_jobs_load(c, err))
        goto fail;
    c_leases_rebuild(c);
    c->dirty = 1;
    return c;
fail:
    rf_coord_destroy(&c);
    return NULL;
}

void rf_coord_stop(rf_coord *self)
{
    self->stop = 1;
}

/* Takes the messages waiting on sock: at least 8, at most 256, and no more once the turn's
 * drain deadline has passed (checked every 8). */
static void s_drain_socket(rf_coord *c, void *sock, int64_t until_us)
{
    for (int i = 0; i < 256 && (i < 8 || i % 8 || c_mono_us() < until_us); i++) {
        rf_wire_msg msg = {0};
        rf_error err;
        int rc = rf_wire_recv(sock, &msg, &c->limits, &err);
        if (rc == RF_EAGAIN || rc == RF_ECANCELED) {
            rf_wire_msg_release(&msg);
            return;
        }
        if (rc) {
            rf_log_kv(RF_LOG_WARN, sock == c->wsock ? "workers" : "api",
                      "malformed message refused", "error=\"%s\"", err.msg);
            if (msg.peer_len)
                c_reply_error(c, sock, &msg, rc, err.msg);
        } else if (sock == c->wsock) {
            c_ops_bytes(c, &msg, 0);
            c_worker_message(c, &msg);
        } else {
            c_api_message(c, &msg);
        }
        rf_wire_msg_release(&msg);
        s_reload_if_needed(c);
    }
}

int rf_coord_run(rf_coord *c, rf_error *err)
{
    rf_log_kv(RF_LOG_INFO, "coord", "coordinator serving", "listen=%s api=%s state=%s",
              c->cfg.listen, c->cfg.api, c->cfg.state_dir);
    while (!c->stop) {
        int64_t now = c_now_ms();
        long timeout = c->cfg.heartbeat_ms / 4;
        if (timeout < 10)
            timeout = 10;
        int fetch_fd = c_inputs_fd(c);
        zmq_pollitem_t items[3] = {{c->wsock, 0, ZMQ_POLLIN, 0},
                                   {c->asock, 0, ZMQ_POLLIN, 0},
                                   {NULL, fetch_fd, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, fetch_fd >= 0 ? 3 : 2, c->dirty ? 0 : timeout);
        if (n < 0 && errno != EINTR) {
            rf_error_set(err, RF_EIO, "zmq_poll: %s", zmq_strerror(errno));
            return err->code;
        }
        int64_t turn_t0 = c_mono_us();
        int worked = n > 0 || c->dirty;
        if (n > 0) {
            /* the turn takes messages for TURN_DRAIN_US, or twice the last commit's time */
            int64_t budget = 2 * c->commit_us > TURN_DRAIN_US ? 2 * c->commit_us : TURN_DRAIN_US,
                    until = turn_t0 + budget;
            if (items[0].revents & ZMQ_POLLIN)
                s_drain_socket(c, c->wsock, until);
            if (items[1].revents & ZMQ_POLLIN)
                s_drain_socket(c, c->asock, until);
            if (fetch_fd >= 0 && (items[2].revents & ZMQ_POLLIN)) {
                c_inputs_fetched(c); /* downloaded inputs become blobs */
                s_reload_if_needed(c);
            }
        }
        now = c_now_ms();
        c_ops_tick(c, now);
        c_workers_tick(c, now);
        s_reload_if_needed(c);
        s_probe(c, now);
        if (!c->paused)
            c_leases_tick(c, now); /* a paused farm blames no worker for its own disk */
        s_reload_if_needed(c);
        if (c->dirty && !c->paused) {
            c->dirty = 0;
            c_dispatch(c);
        } else if (c->paused) {
            c->dirty = 0;
        }
        if (c_commit(c) == 0 && !c->need_reload)
            c_jobs_evict(c); /* finished jobs' final states are durable: they leave memory */
        c->unacked = 0;
        s_reload_if_needed(c);
        if (worked)
            rf_metrics_turn(c->metrics, (double)(c_mono_us() - turn_t0) / 1e6);
    }
    rf_log_kv(RF_LOG_INFO, "coord", "coordinator stopping", NULL);
    return c_commit(c) ? rf_error_set(err, RF_EIO, "final commit failed: %s", c->pause_reason) : 0;
}

void rf_coord_destroy(rf_coord **pself)
{
    if (!pself || !*pself)
        return;
    rf_coord *c = *pself;
    c_inputs_stop(c); /* aborts downloads in flight (their jobs fetch again on restart) */
    while (c->jobs) {
        c_job *j = c->jobs;
        c->jobs = j->next;
        c_job_free(j);
    }
    free(c->lost);
    c_results_free(c);
    free(c->claims);
    c_tcache_free(c);
    c_workers_index_free(c);
    c_jobs_index_free(c);
    free(c->leases);
    while (c->workers) {
        c_worker *w = c->workers;
        c->workers = w->next;
        free(w->models);
        free(w);
    }
    while (c->watches) {
        c_watch *w = c->watches;
        c->watches = w->next;
        free(w);
    }
    while (c->models) {
        c_model *m = c->models;
        c->models = m->next;
        free(m->path);
        free(m);
    }
    if (c->wsock)
        zmq_close(c->wsock);
    if (c->asock)
        zmq_close(c->asock);
    c_ops_stop(c);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    if (c->store) {
        rf_error err;
        if (rf_store_commit(c->store, &err))
            rf_log_kv(RF_LOG_ERROR, "store", "final commit failed", "error=\"%s\"", err.msg);
        rf_store_destroy(&c->store);
    }
    free(c);
    *pself = NULL;
}
