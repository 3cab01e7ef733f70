/* dit_tp.c - running one DiT forward on every rank of a CPU tensor-parallel group.
 *
 * Ranks 1..n-1 are persistent threads that sleep until the caller publishes a job
 * (the forward's arguments) with a new generation number; rank 0 is the caller. Each
 * rank writes its status into its own slot; the caller returns the first failure (a
 * failing rank aborts the collective group, so the others stop instead of hanging).
 */
#include "dit_tp.h"

#include "cpu/cpu.h"
#include "log.h"
#include "registry.h"
#ifdef RF_HAVE_CUDA
#include "cuda/comm_nccl.h"
#endif

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t b, f, h, w, lc;
    const float *x, *t, *ctx;
    float *v;
} s_job;

typedef struct s_rank {
    struct rf_dit_tp *g;
    int id;
    rf_backend *be;
    rf_dit *dit;
    pthread_t th;
    int started;
    int rc;
    rf_error err;
} s_rank;

struct rf_dit_tp {
    int n;
    s_rank *ranks;
    rf_comm_group *comm; /* cpu ranks */
#ifdef RF_HAVE_CUDA
    rf_comm_nccl_group *nccl; /* cuda ranks */
#endif
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    uint64_t gen;
    int finished, quit;
    s_job job;
};

static void s_run(s_rank *r, const s_job *j)
{
    rf_error_clear(&r->err);
    r->rc = rf_dit_forward(r->dit, j->b, j->f, j->h, j->w, j->x, j->t, j->ctx, j->lc,
                           r->id == 0 ? j->v : NULL, &r->err);
    /* GPU ranks queue their work: wait for it so their failures are reported here. */
    if (r->rc == 0)
        r->rc = r->be->ops->synchronize(r->be->ctx, &r->err);
}

static void *s_thread(void *p)
{
    s_rank *r = p;
    rf_dit_tp *g = r->g;
    uint64_t seen = 0;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        while (!g->quit && g->gen == seen)
            pthread_cond_wait(&g->wake, &g->mu);
        if (g->quit)
            break;
        seen = g->gen;
        s_job j = g->job;
        pthread_mutex_unlock(&g->mu);
        s_run(r, &j);
        pthread_mutex_lock(&g->mu);
        if (++g->finished == g->n - 1)
            pthread_cond_signal(&g->done);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

void rf_dit_tp_destroy(rf_dit_tp **gp)
{
    if (!gp || !*gp)
        return;
    rf_dit_tp *g = *gp;
    pthread_mutex_lock(&g->mu);
    g->quit = 1;
    pthread_cond_broadcast(&g->wake);
    pthread_mutex_unlock(&g->mu);
    for (int i = 0; i < g->n; i++)
        if (g->ranks[i].started)
            pthread_join(g->ranks[i].th, NULL);
    for (int i = 0; i < g->n; i++) {
        rf_dit_destroy(&g->ranks[i].dit);
        rf_backend_destroy(&g->ranks[i].be);
    }
    rf_comm_cpu_group_destroy(&g->comm);
#ifdef RF_HAVE_CUDA
    rf_comm_nccl_group_destroy(&g->nccl);
#endif
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->wake);
    pthread_cond_destroy(&g->done);
    free(g->ranks);
    free(g);
    *gp = NULL;
}

rf_dit_tp *rf_dit_tp_load(const char *dir, int tp, int threads, rf_error *err)
{
    rf_dit_tp_opts o = {"cpu", tp, threads, NULL};
    return rf_dit_tp_open(dir, &o, err);
}

rf_dit_tp *rf_dit_tp_open(const char *dir, const rf_dit_tp_opts *o, rf_error *err)
{
    int tp = o->tp, threads = o->threads;
    int cuda = o->backend && !strcmp(o->backend, "cuda");
    if (o->backend && !cuda && strcmp(o->backend, "cpu")) {
        rf_error_set(err, RF_EINVAL, "unknown backend \"%s\": use cpu or cuda", o->backend);
        return NULL;
    }
    if (tp < 1 || tp > 256) {
        rf_error_set(err, RF_EINVAL, "--tp must be 1..256, got %d", tp);
        return NULL;
    }
    rf_dit_config cfg;
    if (rf_dit_read_config(dir, &cfg, err))
        return NULL;
    if (cfg.num_heads % tp || cfg.ffn_dim % tp) {
        int deg[64];
        int n = rf_dit_valid_tp_degrees(&cfg, deg, 64);
        char list[512] = "";
        size_t len = 0;
        for (int i = 0; i < n && len < sizeof(list); i++)
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d", i ? ", " : "", deg[i]);
        rf_error_set(err, RF_EINVAL,
                     "tensor parallel degree %d does not divide the %lld heads and the FFN width "
                     "%lld of %s; valid degrees: %s",
                     tp, (long long)cfg.num_heads, (long long)cfg.ffn_dim, dir, list);
        return NULL;
    }
    if (!cuda && threads == 0) {
        rf_backend *probe = rf_backend_cpu_new(0, err);
        if (!probe)
            return NULL;
        threads = rf_backend_cpu_threads(probe);
        rf_backend_destroy(&probe);
    }
    int per = threads / tp > 0 ? threads / tp : 1;
    rf_dit_tp *g = calloc(1, sizeof(*g));
    if (!g || !(g->ranks = calloc((size_t)tp, sizeof(*g->ranks)))) {
        free(g);
        rf_error_set(err, RF_ENOMEM, "dit: out of memory");
        return NULL;
    }
    g->n = tp;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->wake, NULL);
    pthread_cond_init(&g->done, NULL);
    for (int r = 0; r < tp; r++) {
        s_rank *rk = &g->ranks[r];
        rk->g = g;
        rk->id = r;
        int gpu = o->gpus ? o->gpus[r] : r;
        if (!(rk->be = rf_backend_open(cuda ? "cuda" : "cpu", per, gpu, err))) {
            if (tp > 1)
                rf_error_prefix(err, "rank %d of %d", r, tp);
            goto fail;
        }
    }
    rf_comm *comms[256] = {0};
    if (!cuda && tp > 1) {
        if (!(g->comm = rf_comm_cpu_group_new(tp, err)))
            goto fail;
        for (int r = 0; r < tp && r < 256; r++)
            comms[r] = rf_comm_cpu_rank(g->comm, r);
    }
#ifdef RF_HAVE_CUDA
    if (cuda) {
        rf_backend *bes[256];
        for (int r = 0; r < tp && r < 256; r++)
            bes[r] = g->ranks[r].be;
        char why[512];
        if (tp == 1 && !rf_comm_nccl_available(why, sizeof(why))) {
            RF_INFO("dit", "one GPU without NCCL (%s): the collectives are no-ops", why);
        } else if (!(g->nccl = rf_comm_nccl_group_new(tp, bes, err))) {
            goto fail;
        } else {
            for (int r = 0; r < tp && r < 256; r++)
                comms[r] = rf_comm_nccl_rank(g->nccl, r);
        }
    }
#endif
    for (int r = 0; r < tp; r++) {
        s_rank *rk = &g->ranks[r];
        rf_dit_load_opts lo = {r, tp, r < 256 ? comms[r] : NULL};
        if (!(rk->dit = rf_dit_load(dir, rk->be, &lo, err))) {
            if (tp > 1)
                rf_error_prefix(err, "rank %d of %d", r, tp);
            goto fail;
        }
    }
    for (int r = 1; r < tp; r++) {
        if (pthread_create(&g->ranks[r].th, NULL, s_thread, &g->ranks[r]) != 0) {
            rf_error_set(err, RF_EIO, "dit: cannot start the thread of rank %d", r);
            goto fail;
        }
        g->ranks[r].started = 1;
    }
    return g;
fail:
    rf_dit_tp_destroy(&g);
    return NULL;
}

rf_backend *rf_dit_tp_backend(rf_dit_tp *g, int r)
{
    return r >= 0 && r < g->n ? g->ranks[r].be : NULL;
}

const char *rf_dit_tp_comm_name(const rf_dit_tp *g)
{
#ifdef RF_HAVE_CUDA
    if (g->nccl)
        return "nccl";
#endif
    return g->comm ? "cpu-threads" : "none";
}

int rf_dit_tp_size(const rf_dit_tp *g)
{
    return g->n;
}

rf_dit *rf_dit_tp_rank(rf_dit_tp *g, int r)
{
    return r >= 0 && r < g->n ? g->ranks[r].dit : NULL;
}

int rf_dit_tp_reserve(rf_dit_tp *g, int64_t max_batch, int64_t max_tokens, rf_error *err)
{
    for (int r = 0; r < g->n; r++) {
        int rc = rf_dit_reserve(g->ranks[r].dit, max_batch, max_tokens, err);
        if (rc)
            return rc;
    }
    return 0;
}

int rf_dit_tp_forward(rf_dit_tp *g, int64_t batch, int64_t frames, int64_t height, int64_t width,
                      const float *x, const float *t, const float *context, int64_t ctx_len,
                      float *v, rf_error *err)
{
    s_job j = {batch, frames, height, width, ctx_len, x, t, context, v};
    if (g->n == 1) {
        s_run(&g->ranks[0], &j);
    } else {
        if (g->comm)
            rf_comm_cpu_group_reset(g->comm);
        pthread_mutex_lock(&g->mu);
        g->job = j;
        g->finished = 0;
        g->gen++;
        pthread_cond_broadcast(&g->wake);
        pthread_mutex_unlock(&g->mu);
        s_run(&g->ranks[0], &j);
        pthread_mutex_lock(&g->mu);
        while (g->finished < g->n - 1)
            pthread_cond_wait(&g->done, &g->mu);
        pthread_mutex_unlock(&g->mu);
    }
    /* Report the root cause: a rank's own failure before another's "cancelled". */
    for (int pass = 0; pass < 2; pass++)
        for (int r = 0; r < g->n; r++) {
            s_rank *rk = &g->ranks[r];
            if (rk->rc && (pass == 1 || rk->rc != RF_ECANCELED)) {
                if (err)
                    *err = rk->err;
                return rk->rc;
            }
        }
    return 0;
}
