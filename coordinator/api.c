/* api.c - the API socket: every request of docs/protocol.md, one reply each.
 *
 * Requests come from reelctl or programs on DEALER sockets; every reply carries
 * reply_to = the request's id. A request of a kind the API does not serve gets
 * Error{RF_EUNSUPPORTED}; a request that names something absent gets Error with
 * RF_ENOTFOUND. Watch registers a stream of Events (until Unwatch or the job ends).
 * Never blocks and never trusts a field: strings may be empty, lists may be long.
 */
#include "coord.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_reply(rf_coord *c, const rf_wire_msg *to, Reelfarm__Envelope *env)
{
    env->reply_to = to->request_id;
    rf_wire_msg m = {0};
    rf_wire_msg_copy_peer(&m, to);
    m.env = env;
    c_send(c, c->asock, &m);
}

static void s_ok(rf_coord *c, const rf_wire_msg *to, const char *text)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__Ok ok = REELFARM__OK__INIT;
    ok.text = (char *)text;
    env.kind_case = REELFARM__ENVELOPE__KIND_OK;
    env.ok = &ok;
    s_reply(c, to, &env);
}

static void s_no_job(rf_coord *c, const rf_wire_msg *to, const char *id)
{
    char text[256];
    snprintf(text, sizeof(text), "no job '%s' (reelctl jobs lists them)", id ? id : "");
    c_reply_error(c, c->asock, to, RF_ENOTFOUND, text);
}

/* The job named id: in memory, else a finished job rebuilt from the store into *gone (with
 * its fused rounds when rounds; the caller frees it with c_job_free). NULL after an Error
 * reply when neither has it. */
static c_job *s_job_or_error(rf_coord *c, const rf_wire_msg *to, const char *id, int rounds,
                             c_job **gone)
{
    *gone = NULL;
    c_job *job = id && id[0] ? c_job_find(c, id) : NULL;
    if (job || !id || !id[0]) {
        if (!job)
            s_no_job(c, to, id);
        return job;
    }
    rf_error err;
    rf_error_clear(&err);
    if ((*gone = c_job_load_gone(c, id, rounds, &err)) != NULL)
        return *gone;
    if (err.code == RF_ENOTFOUND)
        s_no_job(c, to, id);
    else
        c_reply_error(c, c->asock, to, err.code, err.msg);
    return NULL;
}

/* 1 when the store holds a job named id (in memory or not); 0 after an Error reply. */
static int s_job_exists(rf_coord *c, const rf_wire_msg *to, const char *id, int *state)
{
    c_job *job = id && id[0] ? c_job_find(c, id) : NULL;
    if (job) {
        *state = job->row.state;
        return 1;
    }
    rf_store_job row;
    rf_error err;
    if (!id || !id[0] || rf_store_job_get(c->store, id, &row, &err)) {
        s_no_job(c, to, id);
        return 0;
    }
    *state = row.state;
    rf_store_job_clear(&row);
    return 1;
}

static void s_submit(rf_coord *c, rf_wire_msg *msg)
{
    rf_spec_diags diags;
    memset(&diags, 0, sizeof(diags));
    rf_error err;
    rf_error_clear(&err);
    char job_id[RF_STORE_ID_MAX];
    int rc = c_job_submit(c, msg->env->submit, &diags, job_id, &err);
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__SubmitReply rep = REELFARM__SUBMIT_REPLY__INIT;
    Reelfarm__SpecError errs[RF_SPEC_MAX_ERRORS + 1];
    Reelfarm__SpecError *ptrs[RF_SPEC_MAX_ERRORS + 1];
    const char *src = msg->env->submit->spec_name && msg->env->submit->spec_name[0]
                          ? msg->env->submit->spec_name
                          : "<spec>";
    if (rc) {
        size_t n = 0;
        for (int i = 0; i < diags.count; i++, n++) {
            reelfarm__spec_error__init(&errs[n]);
            errs[n].file = (char *)src;
            errs[n].line = (uint32_t)diags.items[i].line;
            errs[n].field = diags.items[i].field;
            errs[n].message = diags.items[i].msg;
            ptrs[n] = &errs[n];
        }
        if (n == 0) { /* not a parse error: model, output, limits */
            reelfarm__spec_error__init(&errs[0]);
            errs[0].file = (char *)src;
            errs[0].field = strstr(err.msg, "model")    ? "model"
                            : strstr(err.msg, "output") ? "output.path"
                                                        : "";
            errs[0].message = err.msg;
            ptrs[0] = &errs[0];
            n = 1;
        }
        rep.errors = ptrs;
        rep.n_errors = n;
        rf_log_kv(RF_LOG_INFO, "api", "submit refused", "spec=%s error=\"%s\"", src,
                  errs[0].message);
    }
    rep.job_id = job_id;
    env.kind_case = REELFARM__ENVELOPE__KIND_SUBMIT_REPLY;
    env.submit_reply = &rep;
    s_reply(c, msg, &env);
}

static void s_job_status(rf_coord *c, rf_wire_msg *msg)
{
    const char *id = msg->env->job_status->job_id;
    int summary = msg->env->job_status->summary;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__JobInfo info;
    rf_store_job row;
    int have_row = 0;
    c_job *gone = NULL, *job = id && id[0] ? c_job_find(c, id) : NULL;
    if (!job && id && id[0]) { /* finished and out of memory: the store answers */
        rf_error err;
        if (rf_store_job_get(c->store, id, &row, &err) == 0) {
            have_row = 1;
            /* the detail needs the job rebuilt from its rows (tens of ms for a long film,
             * in the loop): a summary is what its row says */
            if (!summary)
                job = gone = c_job_load_gone(c, id, 0, &err);
        }
    }
    if (!job && !have_row) {
        s_no_job(c, msg, id);
        return;
    }
    if (job)
        c_job_fill_info(job, &info, !summary);
    else /* a summary, or it cannot be rebuilt (its model folder went away): its row */
        c_job_row_info(&row, &info);
    env.kind_case = REELFARM__ENVELOPE__KIND_JOB_INFO;
    env.job_info = &info;
    s_reply(c, msg, &env);
    c_job_free_info(&info);
    c_job_free(gone);
    if (have_row)
        rf_store_job_clear(&row);
}

/* A job list: the newest `limit` jobs of the asked states in submission order, each
 * answered from memory when the job is there (unfinished), else from its row (finished),
 * and how many match in all. */
typedef struct s_list {
    rf_coord *c;
    const Reelfarm__JobListRequest *req;
    size_t limit;
    Reelfarm__JobInfo *infos;
    Reelfarm__JobInfo **ptrs;
    rf_store_job *rows; /* copies the row answers point into */
    size_t n, nrows, cap;
    int oom;
} s_list;

static int s_list_row(void *ctx, const rf_store_job *row)
{
    s_list *L = ctx;
    if (L->n >= L->limit)
        return 1;
    if (L->n == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 64;
        Reelfarm__JobInfo *in = realloc(L->infos, cap * sizeof(*in));
        if (in)
            L->infos = in;
        rf_store_job *rw = in ? realloc(L->rows, cap * sizeof(*rw)) : NULL;
        if (rw)
            L->rows = rw;
        if (!in || !rw)
            return (L->oom = 1);
        L->cap = cap;
    }
    const c_job *job = c_job_find(L->c, row->id);
    if (job) {
        c_job_fill_info(job, &L->infos[L->n++], 0);
        return 0;
    }
    rf_store_job *cp = &L->rows[L->nrows];
    *cp = *row;
    cp->name = row->name ? strdup(row->name) : NULL;
    cp->spec = row->spec ? strdup(row->spec) : NULL;
    cp->spec_name = NULL;
    cp->model = row->model ? strdup(row->model) : NULL;
    cp->output_path = row->output_path ? strdup(row->output_path) : NULL;
    cp->error = row->error ? strdup(row->error) : NULL;
    L->nrows++;
    c_job_row_info(cp, &L->infos[L->n++]);
    return 0;
}

static void s_job_list(rf_coord *c, rf_wire_msg *msg)
{
    const Reelfarm__JobListRequest *req = msg->env->job_list_request;
    s_list L = {.c = c, .req = req, .limit = req->limit ? req->limit : 1000};
    uint32_t mask = 0;
    for (size_t i = 0; i < req->n_states; i++)
        if ((unsigned)req->states[i] < 32)
            mask |= 1u << (unsigned)req->states[i];
    if (req->n_states && !mask)
        mask = 1u << 31; /* only unknown states asked for: nothing matches */
    rf_error err;
    uint64_t matched = 0;
    /* the newest first, read from the seq index, counted beyond the limit */
    int rc = rf_store_job_newest(c->store, mask, (uint32_t)L.limit, s_list_row, &L, &matched, &err);
    for (size_t i = 0; i < L.n / 2; i++) { /* submission order, as before */
        Reelfarm__JobInfo tmp = L.infos[i];
        L.infos[i] = L.infos[L.n - 1 - i];
        L.infos[L.n - 1 - i] = tmp;
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__JobList list = REELFARM__JOB_LIST__INIT;
    L.ptrs = calloc(L.n ? L.n : 1, sizeof(*L.ptrs));
    if (rc || L.oom || !L.ptrs) {
        c_reply_error(c, c->asock, msg, rc ? rc : RF_ENOMEM,
                      rc ? "cannot read the jobs from the store" : "coordinator out of memory");
    } else {
        for (size_t i = 0; i < L.n; i++)
            L.ptrs[i] = &L.infos[i];
        list.jobs = L.ptrs;
        list.n_jobs = L.n;
        list.matched = matched;
        env.kind_case = REELFARM__ENVELOPE__KIND_JOB_LIST;
        env.job_list = &list;
        s_reply(c, msg, &env);
    }
    for (size_t i = 0; i < L.n; i++)
        c_job_free_info(&L.infos[i]);
    for (size_t i = 0; i < L.nrows; i++)
        rf_store_job_clear(&L.rows[i]);
    free(L.infos);
    free(L.rows);
    free(L.ptrs);
}

static void s_worker_list(rf_coord *c, rf_wire_msg *msg)
{
    size_t n = 0;
    for (c_worker *w = c->workers; w; w = w->next)
        n++;
    Reelfarm__WorkerInfo *infos = calloc(n ? n : 1, sizeof(*infos));
    Reelfarm__WorkerInfo **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    char ***models = calloc(n ? n : 1, sizeof(*models));
    if (!infos || !ptrs || !models) {
        free(infos);
        free(ptrs);
        free(models);
        c_reply_error(c, c->asock, msg, RF_ENOMEM, "coordinator out of memory");
        return;
    }
    size_t i = 0;
    for (c_worker *w = c->workers; w; w = w->next, i++) {
        Reelfarm__WorkerInfo *wi = &infos[i];
        reelfarm__worker_info__init(wi);
        wi->worker_id = w->id;
        wi->name = w->name;
        wi->backend = w->backend;
        wi->memory_bytes = w->memory_bytes;
        wi->threads = w->threads;
        wi->tp = w->tp;
        wi->state = w->draining  ? REELFARM__WORKER_STATE__WORKER_DRAINING
                    : w->running ? REELFARM__WORKER_STATE__WORKER_BUSY
                                 : REELFARM__WORKER_STATE__WORKER_IDLE;
        models[i] = calloc(w->n_models ? w->n_models : 1, sizeof(char *));
        for (size_t k = 0; models[i] && k < w->n_models; k++)
            models[i][k] = w->models[k];
        wi->model_hashes = models[i];
        wi->n_model_hashes = models[i] ? w->n_models : 0;
        wi->connected_ms = (uint64_t)w->connected_ms;
        wi->last_seen_ms = (uint64_t)w->last_seen_ms;
        wi->tasks_done = w->tasks_done;
        wi->tasks_failed = w->tasks_failed;
        ptrs[i] = wi;
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__WorkerList list = REELFARM__WORKER_LIST__INIT;
    list.workers = ptrs;
    list.n_workers = n;
    env.kind_case = REELFARM__ENVELOPE__KIND_WORKER_LIST;
    env.worker_list = &list;
    s_reply(c, msg, &env);
    for (i = 0; i < n; i++)
        free(models[i]);
    free(models);
    free(infos);
    free(ptrs);
}

static void s_status(rf_coord *c, rf_wire_msg *msg)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__FarmStatus st = REELFARM__FARM_STATUS__INIT;
    st.coordinator = "reelfarm-coordinator";
    st.uptime_ms = (uint64_t)(c_now_ms() - c->started_ms);
    for (c_worker *w = c->workers; w; w = w->next) {
        st.workers++;
        st.workers_busy += w->running > 0;
    }
    for (c_job *j = c->jobs; j; j = j->next) {
        st.jobs_queued += j->row.state == REELFARM__JOB_STATE__JOB_QUEUED;
        st.jobs_running += j->row.state == REELFARM__JOB_STATE__JOB_RUNNING;
    }
    char *warn[1] = {c->pause_reason};
    if (c->paused) {
        st.warnings = warn;
        st.n_warnings = 1;
    }
    env.kind_case = REELFARM__ENVELOPE__KIND_FARM_STATUS;
    env.farm_status = &st;
    s_reply(c, msg, &env);
}

typedef struct s_logs {
    Reelfarm__LogLine *lines;
    Reelfarm__LogLine **ptrs;
    char **texts;
    size_t n, cap;
} s_logs;

static int s_log_cb(void *ctx, uint64_t seq, int64_t t, const char *level, const char *text)
{
    (void)seq;
    s_logs *L = ctx;
    if (L->n == L->cap)
        return 1;
    Reelfarm__LogLine *ln = &L->lines[L->n];
    reelfarm__log_line__init(ln);
    ln->time_ms = (uint64_t)t;
    L->texts[2 * L->n] = strdup(level ? level : "");
    L->texts[2 * L->n + 1] = strdup(text ? text : "");
    ln->level = L->texts[2 * L->n] ? L->texts[2 * L->n] : "";
    ln->comp = "job";
    ln->text = L->texts[2 * L->n + 1] ? L->texts[2 * L->n + 1] : "";
    L->ptrs[L->n] = ln;
    L->n++;
    return 0;
}

static void s_logs_req(rf_coord *c, rf_wire_msg *msg)
{
    const Reelfarm__LogsRequest *req = msg->env->logs_request;
    int state = 0;
    if (!s_job_exists(c, msg, req->job_id, &state))
        return;
    s_logs L = {0};
    L.cap = req->limit && req->limit < 10000 ? req->limit : 10000;
    L.lines = calloc(L.cap, sizeof(*L.lines));
    L.ptrs = calloc(L.cap, sizeof(*L.ptrs));
    L.texts = calloc(2 * L.cap, sizeof(char *));
    rf_error err;
    if (!L.lines || !L.ptrs || !L.texts ||
        rf_store_event_each(c->store, req->job_id, (int64_t)req->since_ms, (int)L.cap, s_log_cb, &L,
                            &err)) {
        c_reply_error(c, c->asock, msg, RF_EIO, "cannot read the job's log");
    } else {
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        Reelfarm__LogsReply rep = REELFARM__LOGS_REPLY__INIT;
        rep.lines = L.ptrs;
        rep.n_lines = L.n;
        env.kind_case = REELFARM__ENVELOPE__KIND_LOGS_REPLY;
        env.logs_reply = &rep;
        s_reply(c, msg, &env);
    }
    for (size_t i = 0; L.texts && i < 2 * L.n; i++)
        free(L.texts[i]);
    free(L.texts);
    free(L.lines);
    free(L.ptrs);
}

static void s_watch(rf_coord *c, rf_wire_msg *msg)
{
    const char *id = msg->env->watch->job_id ? msg->env->watch->job_id : "";
    c_job *job = NULL, *gone = NULL;
    if (id[0] && !(job = s_job_or_error(c, msg, id, 0, &gone)))
        return;
    c_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        c_reply_error(c, c->asock, msg, RF_ENOMEM, "coordinator out of memory");
        c_job_free(gone);
        return;
    }
    memcpy(w->peer, msg->peer, msg->peer_len);
    w->peer_len = msg->peer_len;
    w->request_id = msg->request_id;
    snprintf(w->job_id, sizeof(w->job_id), "%s", id);
    w->next = c->watches;
    c->watches = w;
    if (job) /* the current state first, so a watcher never misses the start (a finished
              * job's watch ends with it) */
        c_job_notify(c, job, REELFARM__EVENT_KIND__EVENT_JOB_STATE);
    else
        s_ok(c, msg, "watching every job");
    c_job_free(gone);
}

static void s_unwatch(rf_coord *c, rf_wire_msg *msg)
{
    uint64_t id = msg->env->unwatch->watch_request_id;
    for (c_watch **p = &c->watches; *p; p = &(*p)->next) {
        c_watch *w = *p;
        if (w->request_id == id && w->peer_len == msg->peer_len &&
            memcmp(w->peer, msg->peer, msg->peer_len) == 0) {
            *p = w->next;
            free(w);
            s_ok(c, msg, "unwatched");
            return;
        }
    }
    c_reply_error(c, c->asock, msg, RF_ENOTFOUND, "no such watch on this connection");
}

void c_api_message(rf_coord *c, rf_wire_msg *msg)
{
    rf_error err;
    switch (msg->env->kind_case) {
    case REELFARM__ENVELOPE__KIND_SUBMIT: s_submit(c, msg); break;
    case REELFARM__ENVELOPE__KIND_JOB_STATUS: s_job_status(c, msg); break;
    case REELFARM__ENVELOPE__KIND_JOB_LIST_REQUEST: s_job_list(c, msg); break;
    case REELFARM__ENVELOPE__KIND_WORKER_LIST_REQUEST: s_worker_list(c, msg); break;
    case REELFARM__ENVELOPE__KIND_STATUS_REQUEST: s_status(c, msg); break;
    case REELFARM__ENVELOPE__KIND_LOGS_REQUEST: s_logs_req(c, msg); break;
    case REELFARM__ENVELOPE__KIND_WATCH: s_watch(c, msg); break;
    case REELFARM__ENVELOPE__KIND_UNWATCH: s_unwatch(c, msg); break;
    case REELFARM__ENVELOPE__KIND_CANCEL: {
        int state = 0;
        if (!s_job_exists(c, msg, msg->env->cancel->job_id, &state))
            break;
        c_job *job = c_job_find(c, msg->env->cancel->job_id);
        if (!job || c_job_terminal(job)) { /* out of memory: finished */
            c_reply_error(c, c->asock, msg, RF_EINVAL, "the job has already finished");
            break;
        }
        c_job_cancel(c, job, "canceled by a user");
        s_ok(c, msg, "canceled");
        break;
    }
    case REELFARM__ENVELOPE__KIND_RETRY: {
        c_job *gone = NULL, *job = s_job_or_error(c, msg, msg->env->retry->job_id, 1, &gone);
        if (!job)
            break;
        if (gone && gone->row.state != REELFARM__JOB_STATE__JOB_FAILED &&
            gone->row.state != REELFARM__JOB_STATE__JOB_CANCELED) {
            c_reply_error(c, c->asock, msg, RF_EINVAL,
                          "the job is not failed or canceled; only those can be retried");
            c_job_free(gone);
            break;
        }
        if (gone) /* back in memory to run again */
            c_job_adopt_gone(c, gone);
        if (c_job_retry(c, job, &err))
            c_reply_error(c, c->asock, msg, err.code, err.msg);
        else
            s_ok(c, msg, "queued again");
        break;
    }
    case REELFARM__ENVELOPE__KIND_DRAIN_WORKER: {
        const char *name = msg->env->drain_worker->worker ? msg->env->drain_worker->worker : "";
        c_worker *w = c_worker_find(c, name);
        if (!w) {
            char text[256];
            snprintf(text, sizeof(text), "no worker '%s' (reelctl workers lists them)", name);
            c_reply_error(c, c->asock, msg, RF_ENOTFOUND, text);
            break;
        }
        c_worker_drain(c, w, "drained by an operator");
        s_ok(c, msg, "draining");
        break;
    }
    default: {
        char text[160];
        snprintf(text, sizeof(text), "the API does not serve '%s' requests",
                 rf_wire_kind_name((int)msg->env->kind_case));
        c_reply_error(c, c->asock, msg, RF_EUNSUPPORTED, text);
    }
    }
}
