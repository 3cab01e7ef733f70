/* fetchq.c - a small thread pool around rf_fetch_url with an eventfd for the loop.
 *
 * Requests and results are FIFO lists under one mutex; the eventfd is written when a
 * result is added and drained, under the same mutex, when the last one is taken, so it
 * is readable exactly while results wait. Each request owns a copy of its options'
 * strings. Threads never touch the loop's data; the loop never blocks on a download.
 */
#include "fetchq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define S_MAX_THREADS 16

typedef struct s_req {
    uint64_t tag;
    char *url, *dest;
    rf_fetch_opts opts;
    char **hosts;
    int nhosts;
    struct s_req *next;
} s_req;

typedef struct s_res {
    rf_fetch_result r;
    struct s_res *next;
} s_res;

struct rf_fetchq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t threads[S_MAX_THREADS];
    int nthreads;
    int fd;
    int stop;
    volatile int cancel;
    s_req *head, *tail;
    s_res *rhead, *rtail;
    int queued, running;
};

static void s_req_free(s_req *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->nhosts; i++)
        free(q->hosts[i]);
    free(q->hosts);
    free(q->url);
    free(q->dest);
    free(q);
}

static void *s_thread(void *arg)
{
    rf_fetchq *self = arg;
    for (;;) {
        pthread_mutex_lock(&self->mu);
        while (!self->stop && !self->head)
            pthread_cond_wait(&self->cv, &self->mu);
        if (self->stop) {
            pthread_mutex_unlock(&self->mu);
            return NULL;
        }
        s_req *q = self->head;
        self->head = q->next;
        if (!self->head)
            self->tail = NULL;
        self->queued--;
        self->running++;
        pthread_mutex_unlock(&self->mu);

        s_res *res = calloc(1, sizeof(*res));
        rf_error err;
        rf_error_clear(&err);
        q->opts.hosts = (const char *const *)q->hosts;
        q->opts.nhosts = q->nhosts;
        q->opts.cancel = &self->cancel;
        int rc = rf_fetch_url(q->url, q->dest, &q->opts, res ? &res->r.hash : NULL,
                              res ? &res->r.bytes : NULL, &err);
        if (res) {
            res->r.tag = q->tag;
            res->r.status = rc;
            memcpy(res->r.error, err.msg, sizeof(res->r.error));
            res->r.dest = q->dest;
            q->dest = NULL;
        }
        s_req_free(q);

        pthread_mutex_lock(&self->mu);
        self->running--;
        if (res) {
            if (self->rtail)
                self->rtail->next = res;
            else
                self->rhead = res;
            self->rtail = res;
            uint64_t one = 1;
            ssize_t w = write(self->fd, &one, sizeof(one));
            (void)w; /* an eventfd write only fails at 2^64-1 pending counts */
        }
        pthread_mutex_unlock(&self->mu);
    }
}

rf_fetchq *rf_fetchq_new(int threads, rf_error *err)
{
    if (threads < 1 || threads > S_MAX_THREADS)
        return rf_error_set(err, RF_EINVAL, "fetch queue: 1 to %d threads", S_MAX_THREADS), NULL;
    rf_fetchq *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "fetch queue: out of memory"), NULL;
    pthread_mutex_init(&self->mu, NULL);
    pthread_cond_init(&self->cv, NULL);
    self->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->fd < 0) {
        rf_fetchq_destroy(&self);
        return rf_error_set(err, RF_EIO, "fetch queue: cannot create an eventfd"), NULL;
    }
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&self->threads[i], NULL, s_thread, self) != 0) {
            rf_fetchq_destroy(&self);
            return rf_error_set(err, RF_EIO, "fetch queue: cannot start a thread"), NULL;
        }
        self->nthreads++;
    }
    return self;
}

int rf_fetchq_fd(const rf_fetchq *self)
{
    return self->fd;
}

int rf_fetchq_submit(rf_fetchq *self, uint64_t tag, const char *url, const char *dest,
                     const rf_fetch_opts *opts, rf_error *err)
{
    s_req *q = calloc(1, sizeof(*q));
    if (!q)
        return rf_error_set(err, RF_ENOMEM, "fetch queue: out of memory");
    q->tag = tag;
    q->opts = opts ? *opts : rf_fetch_opts_default();
    q->opts.cancel = NULL;
    q->url = strdup(url ? url : "");
    q->dest = strdup(dest ? dest : "");
    int bad = !q->url || !q->dest;
    int n = opts && opts->hosts ? opts->nhosts : 0;
    if (!bad && n > 0) {
        q->hosts = calloc((size_t)n, sizeof(*q->hosts));
        bad = !q->hosts;
        for (int i = 0; !bad && i < n; i++) {
            q->hosts[i] = strdup(opts->hosts[i] ? opts->hosts[i] : "");
            bad = !q->hosts[i];
            q->nhosts = i + 1;
        }
    }
    if (bad) {
        s_req_free(q);
        return rf_error_set(err, RF_ENOMEM, "fetch queue: out of memory");
    }
    pthread_mutex_lock(&self->mu);
    if (self->tail)
        self->tail->next = q;
    else
        self->head = q;
    self->tail = q;
    self->queued++;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
    return 0;
}

int rf_fetchq_take(rf_fetchq *self, rf_fetch_result *out)
{
    pthread_mutex_lock(&self->mu);
    s_res *r = self->rhead;
    if (r) {
        self->rhead = r->next;
        if (!self->rhead) {
            self->rtail = NULL;
            uint64_t v;
            ssize_t n = read(self->fd, &v, sizeof(v)); /* drain: nothing waits any more */
            (void)n;
        }
    }
    pthread_mutex_unlock(&self->mu);
    if (!r)
        return 0;
    *out = r->r;
    free(r);
    return 1;
}

void rf_fetch_result_clear(rf_fetch_result *r)
{
    if (!r)
        return;
    free(r->dest);
    memset(r, 0, sizeof(*r));
}

int rf_fetchq_pending(rf_fetchq *self)
{
    pthread_mutex_lock(&self->mu);
    int n = self->queued + self->running;
    pthread_mutex_unlock(&self->mu);
    return n;
}

void rf_fetchq_destroy(rf_fetchq **pself)
{
    if (!pself || !*pself)
        return;
    rf_fetchq *self = *pself;
    pthread_mutex_lock(&self->mu);
    self->stop = 1;
    self->cancel = 1;
    while (self->head) {
        s_req *q = self->head;
        self->head = q->next;
        s_req_free(q);
    }
    self->tail = NULL;
    pthread_cond_broadcast(&self->cv);
    pthread_mutex_unlock(&self->mu);
    for (int i = 0; i < self->nthreads; i++)
        pthread_join(self->threads[i], NULL);
    while (self->rhead) {
        s_res *r = self->rhead;
        self->rhead = r->next;
        rf_fetch_result_clear(&r->r);
        free(r);
    }
    if (self->fd >= 0)
        close(self->fd);
    pthread_cond_destroy(&self->cv);
    pthread_mutex_destroy(&self->mu);
    free(self);
    *pself = NULL;
}
