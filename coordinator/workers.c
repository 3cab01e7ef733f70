/* workers.c - worker sessions: Hello, heartbeats both ways, liveness, drain, loss.
 *
 * A worker is known by the ROUTER routing id of its socket; a reconnect (new socket)
 * is a new session under a new worker id, and the old session is declared lost. A
 * message from a socket that has not said Hello is answered with Refuse{retry_after_ms}
 * so the worker reconnects (docs/protocol.md). Heartbeats prove the process lives and
 * never extend a lease. Losing a worker ends its attempts (their chunks are restored
 * elsewhere from their checkpoints) and forgets the chunk states it held.
 */
#include "coord.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- indexes: by id, by routing id (FNV-1a, linear probing) ------------------------ */

static size_t s_fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return (size_t)(h ^ h >> 29);
}

static void s_index_put(rf_coord *c, c_worker *w)
{
    size_t m = c->wcap - 1;
    size_t i = s_fnv(w->id, strlen(w->id)) & m;
    while (c->wid[i])
        i = (i + 1) & m;
    c->wid[i] = w;
    i = s_fnv(w->peer, w->peer_len) & m;
    while (c->wpeer[i])
        i = (i + 1) & m;
    c->wpeer[i] = w;
}

/* Rebuilds both indexes over the worker list (slots for at least twice as many). */
static int s_index_build(rf_coord *c, int extra)
{
    size_t want = 64;
    while (want < 2 * (size_t)(c->nworkers + extra))
        want *= 2;
    if (want != c->wcap) {
        c_worker **a = calloc(want, sizeof(*a)), **b = calloc(want, sizeof(*b));
        if (!a || !b) {
            free(a);
            free(b);
            return -1;
        }
        free(c->wid);
        free(c->wpeer);
        c->wid = a;
        c->wpeer = b;
        c->wcap = want;
    } else {
        memset(c->wid, 0, want * sizeof(*c->wid));
        memset(c->wpeer, 0, want * sizeof(*c->wpeer));
    }
    for (c_worker *w = c->workers; w; w = w->next)
        s_index_put(c, w);
    return 0;
}

void c_workers_index_free(rf_coord *c)
{
    free(c->wid);
    free(c->wpeer);
    free(c->wfree);
    c->wid = c->wpeer = c->wfree = NULL;
    c->wcap = 0;
    c->nwfree = c->capwfree = 0;
}

static c_worker *s_by_peer(rf_coord *c, const rf_wire_msg *m)
{
    if (!c->wcap)
        return NULL;
    size_t mask = c->wcap - 1;
    for (size_t i = s_fnv(m->peer, m->peer_len) & mask; c->wpeer[i]; i = (i + 1) & mask) {
        c_worker *w = c->wpeer[i];
        if (w->peer_len == m->peer_len && memcmp(w->peer, m->peer, m->peer_len) == 0)
            return w;
    }
    return NULL;
}

c_worker *c_worker_find(rf_coord *c, const char *id_or_name)
{
    if (c->wcap) {
        size_t mask = c->wcap - 1;
        for (size_t i = s_fnv(id_or_name, strlen(id_or_name)) & mask; c->wid[i]; i = (i + 1) & mask)
            if (strcmp(c->wid[i]->id, id_or_name) == 0)
                return c->wid[i];
    }
    /* names (reelctl drain NAME) are looked up the slow way */
    for (c_worker *w = c->workers; w; w = w->next)
        if (strcmp(w->name, id_or_name) == 0)
            return w;
    return NULL;
}

void c_worker_sent(rf_coord *c, const rf_wire_msg *msg)
{
    c_worker *w = s_by_peer(c, msg);
    if (w)
        w->last_sent_ms = c_now_ms();
}

void c_worker_may_free(rf_coord *c, c_worker *w)
{
    if (w->free_pos || w->draining || w->running >= (int)w->max_tasks)
        return;
    if (c->nwfree == c->capwfree) {
        int cap = c->capwfree ? c->capwfree * 2 : 64;
        void *p = realloc(c->wfree, (size_t)cap * sizeof(*c->wfree));
        if (!p)
            return; /* it stays out of placement until memory returns; nothing breaks */
        c->wfree = p;
        c->capwfree = cap;
    }
    c->wfree[c->nwfree++] = w;
    w->free_pos = c->nwfree;
}

void c_worker_unfree(rf_coord *c, c_worker *w)
{
    if (!w->free_pos)
        return;
    int i = w->free_pos - 1;
    c->wfree[i] = c->wfree[--c->nwfree];
    c->wfree[i]->free_pos = i + 1;
    w->free_pos = 0;
}

int c_worker_has_model(const c_worker *w, const char *hash)
{
    for (size_t i = 0; i < w->n_models; i++)
        if (strcmp(w->models[i], hash) == 0)
            return 1;
    return 0;
}

static void s_send_to(rf_coord *c, c_worker *w, Reelfarm__Envelope *env)
{
    rf_wire_msg m = {0};
    memcpy(m.peer, w->peer, w->peer_len);
    m.peer_len = w->peer_len;
    m.env = env;
    c_send(c, c->wsock, &m);
}

static void s_refuse(rf_coord *c, const rf_wire_msg *to, int code, const char *reason,
                     uint32_t retry_ms)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Refuse r = REELFARM__REFUSE__INIT;
    r.code = (uint32_t)code;
    r.reason = (char *)reason;
    r.retry_after_ms = retry_ms;
    env.kind_case = REELFARM__ENVELOPE__KIND_REFUSE;
    env.refuse = &r;
    env.reply_to = to->request_id;
    rf_wire_msg m = {0};
    rf_wire_msg_copy_peer(&m, to);
    m.env = &env;
    c_send(c, c->wsock, &m);
}

static void s_unlink(rf_coord *c, c_worker *w)
{
    c_worker_unfree(c, w);
    for (c_worker **p = &c->workers; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            c->nworkers--;
            break;
        }
    s_index_build(c, 0); /* the worker list is still whole: a same-size rebuild */
    free(w->models);
    free(w);
}

void c_worker_lost(rf_coord *c, c_worker *w, const char *why)
{
    rf_log_kv(RF_LOG_WARN, "workers", "worker lost", "worker=%s name=%s why=\"%s\"", w->id, w->name,
              why);
    for (c_job *j = c->jobs; j; j = j->next) {
        for (int i = 0; i < j->ntasks; i++) {
            c_task *t = &j->tasks[i];
            if (t->row.state == REELFARM__UNIT_STATE__UNIT_RUNNING &&
                strcmp(t->row.worker, w->id) == 0)
                c_task_requeue(c, t, w->name, why, 1);
        }
        for (int i = 0; j->plan && i < j->plan->chunk_count; i++)
            if (strcmp(j->chunks[i].row.worker, w->id) == 0)
                j->chunks[i].row.worker[0] = 0; /* its resident state is gone */
    }
    s_unlink(c, w);
    c->dirty = 1;
}

void c_worker_drain(rf_coord *c, c_worker *w, const char *reason)
{
    w->draining = 1;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Drain d = REELFARM__DRAIN__INIT;
    d.reason = (char *)reason;
    env.kind_case = REELFARM__ENVELOPE__KIND_DRAIN;
    env.drain = &d;
    s_send_to(c, w, &env);
    rf_log_kv(RF_LOG_INFO, "workers", "worker draining", "worker=%s name=%s reason=\"%s\"", w->id,
              w->name, reason);
}

static void s_hello(rf_coord *c, rf_wire_msg *msg)
{
    const Reelfarm__Hello *h = msg->env->hello;
    if (!h->name || !h->name[0] || strlen(h->name) >= sizeof(((c_worker *)0)->name) ||
        h->n_model_hashes > 4096) {
        s_refuse(c, msg, RF_EINVAL, "Hello needs a name (1..127 bytes) and at most 4096 models", 0);
        return;
    }
    c_worker *old = s_by_peer(c, msg);
    if (old)
        c_worker_lost(c, old, "said Hello again on the same socket");
    for (c_worker *o = c->workers; o; o = o->next)
        if (strcmp(o->name, h->name) == 0) {
            /* its running chunks may come back with it (Hello.resident): orphan them */
            for (c_job *j = c->jobs; j; j = j->next)
                for (int i = 0; i < j->ntasks; i++) {
                    c_task *t = &j->tasks[i];
                    if (t->row.state == REELFARM__UNIT_STATE__UNIT_RUNNING &&
                        t->row.kind == REELFARM__TASK_KIND__TASK_DENOISE &&
                        strcmp(t->row.worker, o->id) == 0) {
                        t->row.worker[0] = 0;
                        t->orphan = 1;
                        c->orphans++;
                        if (o->running > 0)
                            o->running--;
                    }
                }
            c_worker_lost(c, o, "reconnected on a new socket");
            break;
        }
    c_worker *w = calloc(1, sizeof(*w));
    if (w && h->n_model_hashes)
        w->models = calloc(h->n_model_hashes, sizeof(*w->models));
    if (!w || (h->n_model_hashes && !w->models)) {
        if (w)
            free(w);
        s_refuse(c, msg, RF_ENOMEM, "coordinator out of memory", 5000);
        return;
    }
    uint64_t n = 0;
    rf_error err;
    if (rf_store_begin(c->store, &err) || rf_store_next(c->store, "worker", &n, &err)) {
        free(w->models);
        free(w);
        s_refuse(c, msg, err.code, err.msg, 5000);
        return;
    }
    snprintf(w->id, sizeof(w->id), "w%llu", (unsigned long long)n);
    snprintf(w->name, sizeof(w->name), "%s", h->name);
    memcpy(w->peer, msg->peer, msg->peer_len);
    w->peer_len = msg->peer_len;
    snprintf(w->backend, sizeof(w->backend), "%s", h->backend ? h->backend : "");
    w->threads = h->threads;
    w->tp = h->tp;
    w->max_tasks = h->max_tasks ? h->max_tasks : 1;
    w->memory_bytes = h->memory_bytes;
    for (size_t i = 0; i < h->n_model_hashes; i++)
        if (h->model_hashes[i] && strlen(h->model_hashes[i]) == RF_HASH_HEX - 1)
            snprintf(w->models[w->n_models++], RF_HASH_HEX, "%s", h->model_hashes[i]);
    w->connected_ms = w->last_seen_ms = c_now_ms();
    if (2 * (size_t)(c->nworkers + 1) > c->wcap && s_index_build(c, 1)) {
        free(w->models);
        free(w);
        s_refuse(c, msg, RF_ENOMEM, "coordinator out of memory", 5000);
        return;
    }
    w->next = c->workers;
    c->workers = w;
    c->nworkers++;
    s_index_put(c, w);
    c_worker_may_free(c, w);
    c_jobs_adopt(c, w, h);
    rf_log_kv(RF_LOG_INFO, "workers", "worker joined",
              "worker=%s name=%s backend=%s models=%zu max_tasks=%u", w->id, w->name, w->backend,
              w->n_models, w->max_tasks);
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__HelloAck ack = REELFARM__HELLO_ACK__INIT;
    ack.worker_id = w->id;
    ack.heartbeat_ms = (uint32_t)c->cfg.heartbeat_ms;
    ack.liveness = (uint32_t)c->cfg.liveness;
    ack.coordinator = "reelfarm-coordinator";
    env.kind_case = REELFARM__ENVELOPE__KIND_HELLO_ACK;
    env.hello_ack = &ack;
    env.reply_to = msg->request_id;
    s_send_to(c, w, &env);
    c->dirty = 1;
}

void c_worker_message(rf_coord *c, rf_wire_msg *msg)
{
    int kind = msg->env->kind_case;
    if (kind == REELFARM__ENVELOPE__KIND_HELLO) {
        s_hello(c, msg);
        return;
    }
    c_worker *w = s_by_peer(c, msg);
    if (!w) {
        s_refuse(c, msg, RF_ENOTFOUND, "unknown worker: say hello", 1000);
        return;
    }
    w->last_seen_ms = c_now_ms();
    switch (kind) {
    case REELFARM__ENVELOPE__KIND_HEARTBEAT:
        if (msg->env->heartbeat->draining && !w->draining) {
            w->draining = 1;
            c->dirty = 1;
        }
        break;
    case REELFARM__ENVELOPE__KIND_PROGRESS: c_on_progress(c, w, msg); break;
    case REELFARM__ENVELOPE__KIND_RESULT: c_on_result(c, w, msg); break;
    case REELFARM__ENVELOPE__KIND_TASK_ERROR: c_on_task_error(c, w, msg); break;
    case REELFARM__ENVELOPE__KIND_OVERLAP_UP: c_on_overlap_up(c, w, msg); break;
    case REELFARM__ENVELOPE__KIND_CHECKPOINT: c_on_checkpoint(c, w, msg); break;
    case REELFARM__ENVELOPE__KIND_DRAIN:
        w->draining = 1;
        rf_log_kv(RF_LOG_INFO, "workers", "worker draining", "worker=%s name=%s reason=\"%s\"",
                  w->id, w->name, msg->env->drain->reason ? msg->env->drain->reason : "");
        c->dirty = 1;
        break;
    default: {
        char text[128];
        snprintf(text, sizeof(text), "a worker may not send '%s'", rf_wire_kind_name((int)kind));
        c_reply_error(c, c->wsock, msg, RF_EPROTO, text);
    }
    }
}

void c_workers_tick(rf_coord *c, int64_t now)
{
    int64_t dead_after = (int64_t)c->cfg.heartbeat_ms * c->cfg.liveness;
    /* a walk over every worker a few times per beat, not every loop turn */
    if (now >= c->next_live_ms) {
        c->next_live_ms = now + (c->cfg.heartbeat_ms / 4 > 0 ? c->cfg.heartbeat_ms / 4 : 1);
        for (c_worker *w = c->workers, *next; w; w = next) {
            next = w->next;
            if (now - w->last_seen_ms > dead_after)
                c_worker_lost(c, w, "no message within the liveness window");
        }
    }
    /* heartbeats in 8 slices per beat interval, each to the workers of 1/8 of the id
     * index's slots: every worker still hears from us at least once per interval, and a
     * large farm gets no burst of thousands of sends in one turn */
    if (now < c->next_beat_ms || !c->wcap)
        return;
    int slice_ms = c->cfg.heartbeat_ms / 8 > 0 ? c->cfg.heartbeat_ms / 8 : 1;
    c->next_beat_ms = now + slice_ms;
    size_t per = (c->wcap + 7) / 8;
    size_t from = (size_t)c->beat_slice % 8 * per;
    c->beat_slice++;
    for (size_t i = from; i < from + per && i < c->wcap; i++) {
        c_worker *w = c->wid[i];
        /* any message proves we live (docs/protocol.md): a worker that heard from us within
         * the interval gets no Heartbeat */
        if (!w || now - w->last_sent_ms < c->cfg.heartbeat_ms)
            continue;
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        Reelfarm__Heartbeat hb = REELFARM__HEARTBEAT__INIT;
        hb.seq = ++c->beat_seq;
        hb.time_ms = (uint64_t)now;
        env.kind_case = REELFARM__ENVELOPE__KIND_HEARTBEAT;
        env.heartbeat = &hb;
        s_send_to(c, w, &env);
    }
}
