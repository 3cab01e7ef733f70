/* backend_cpu.c - the CPU backend's table, memory and thread pool.
 *
 * The pool: threads-1 workers sleep on a condition variable; rf_cpu_parallel publishes
 * a job (fn, arg, ntasks), bumps a generation counter and wakes them; everyone, the
 * caller included, takes task indices from an atomic counter; the caller returns when
 * every worker has reported back for that generation. Dispatch allocates nothing.
 * Memory is host RAM from aligned_alloc (64-byte alignment); upload/download are memcpy.
 */
#include "cpu.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RF_CPU_MAX_THREADS 1024

struct rf_cpu_ctx {
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    uint64_t generation;
    int finished; /* workers done with the current generation */
    int quit;
    rf_cpu_task_fn fn;
    void *arg;
    int64_t ntasks;
    _Atomic int64_t next;
};

typedef struct {
    rf_cpu_ctx *ctx;
    int id;
} s_worker_arg;

static void s_run_tasks(rf_cpu_ctx *c, int worker)
{
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (t >= c->ntasks)
            break;
        c->fn(c->arg, t, worker);
    }
}

static void *s_worker(void *p)
{
    s_worker_arg wa = *(s_worker_arg *)p;
    free(p);
    rf_cpu_ctx *c = wa.ctx;
    uint64_t seen = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->quit && c->generation == seen)
            pthread_cond_wait(&c->wake, &c->mu);
        if (c->quit)
            break;
        seen = c->generation;
        pthread_mutex_unlock(&c->mu);
        s_run_tasks(c, wa.id);
        pthread_mutex_lock(&c->mu);
        if (++c->finished == c->nthreads - 1)
            pthread_cond_signal(&c->done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

void rf_cpu_parallel(void *ctx, int64_t ntasks, rf_cpu_task_fn fn, void *arg)
{
    rf_cpu_ctx *c = ctx;
    if (ntasks <= 0)
        return;
    if (c->nthreads == 1 || ntasks == 1) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(arg, t, 0);
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->fn = fn;
    c->arg = arg;
    c->ntasks = ntasks;
    atomic_store(&c->next, 0);
    c->finished = 0;
    c->generation++;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
    s_run_tasks(c, 0);
    pthread_mutex_lock(&c->mu);
    while (c->finished < c->nthreads - 1)
        pthread_cond_wait(&c->done, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

typedef struct {
    rf_cpu_range_fn fn;
    void *arg;
    int64_t n, chunk;
} s_range_job;

static void s_range_task(void *p, int64_t t, int worker)
{
    (void)worker;
    s_range_job *j = p;
    int64_t r0 = t * j->chunk, r1 = r0 + j->chunk;
    j->fn(j->arg, r0, r1 < j->n ? r1 : j->n);
}

void rf_cpu_parallel_range(void *ctx, int64_t n, int64_t min_chunk, rf_cpu_range_fn fn, void *arg)
{
    rf_cpu_ctx *c = ctx;
    if (n <= 0)
        return;
    int64_t want = (int64_t)c->nthreads * 4;
    int64_t chunk = (n + want - 1) / want;
    if (chunk < min_chunk)
        chunk = min_chunk;
    s_range_job j = {fn, arg, n, chunk};
    rf_cpu_parallel(ctx, (n + chunk - 1) / chunk, s_range_task, &j);
}

int rf_cpu_nthreads(const void *ctx)
{
    return ((const rf_cpu_ctx *)ctx)->nthreads;
}

static void s_destroy(void *ctx)
{
    rf_cpu_ctx *c = ctx;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_broadcast(&c->wake);
    pthread_mutex_unlock(&c->mu);
    for (int i = 1; i < c->nthreads; i++)
        if (c->threads[i])
            pthread_join(c->threads[i], NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->done);
    free(c->threads);
    free(c);
}

static void *s_alloc(void *ctx, size_t bytes)
{
    (void)ctx;
    size_t n = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, n);
}

static void s_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

static int s_copy_bytes(void *ctx, void *dst, const void *src, size_t n, rf_error *err)
{
    (void)ctx;
    (void)err;
    if (n)
        memcpy(dst, src, n);
    return 0;
}

static int s_sync(void *ctx, rf_error *err)
{
    (void)ctx;
    (void)err;
    return 0;
}

static const rf_backend_ops s_cpu_ops = {
    .name = "cpu",
    .destroy = s_destroy,
    .alloc = s_alloc,
    .free = s_free,
    .upload = s_copy_bytes,
    .download = s_copy_bytes,
    .synchronize = s_sync,
    .scratch_linear = rf_cpu_scratch_linear,
    .scratch_attention = rf_cpu_scratch_attention,
    .linear = rf_cpu_linear,
    .layer_norm = rf_cpu_layer_norm,
    .sumsq_rows = rf_cpu_sumsq_rows,
    .rms_apply = rf_cpu_rms_apply,
    .rope = rf_cpu_rope,
    .attention = rf_cpu_attention,
    .unary = rf_cpu_unary,
    .binary = rf_cpu_binary,
    .scale = rf_cpu_scale,
    .fill = rf_cpu_fill,
    .copy = rf_cpu_copy,
    .modulate = rf_cpu_modulate,
    .gated_add = rf_cpu_gated_add,
    .patchify = rf_cpu_patchify,
    .unpatchify = rf_cpu_unpatchify,
    .rel_pos_bias = rf_cpu_rel_pos_bias,
    .scratch_attention_relbias = rf_cpu_scratch_attention_relbias,
    .attention_relbias = rf_cpu_attention_relbias,
    .scratch_conv3d = rf_cpu_scratch_conv3d,
    .conv3d = rf_cpu_conv3d,
};

rf_backend *rf_backend_cpu_new(int threads, rf_error *err)
{
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads < 1 || threads > RF_CPU_MAX_THREADS) {
        rf_error_set(err, RF_EINVAL,
                     "cpu backend: --threads must be 1..%d (or 0 for all cores), got %d",
                     RF_CPU_MAX_THREADS, threads);
        return NULL;
    }
    /* OpenBLAS is our single-threaded GEMM kernel; our pool provides the parallelism. */
    openblas_set_num_threads(1);
    rf_backend *be = calloc(1, sizeof(*be));
    rf_cpu_ctx *c = calloc(1, sizeof(*c));
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    if (!be || !c || !th) {
        free(be);
        free(c);
        free(th);
        rf_error_set(err, RF_ENOMEM, "cpu backend: out of memory");
        return NULL;
    }
    c->nthreads = threads;
    c->threads = th;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->wake, NULL);
    pthread_cond_init(&c->done, NULL);
    be->ops = &s_cpu_ops;
    be->ctx = c;
    for (int i = 1; i < threads; i++) {
        s_worker_arg *wa = malloc(sizeof(*wa));
        if (wa) {
            wa->ctx = c;
            wa->id = i;
        }
        if (!wa || pthread_create(&th[i], NULL, s_worker, wa) != 0) {
            free(wa);
            th[i] = 0;
            c->nthreads = i; /* join only those started */
            rf_backend_destroy(&be);
            rf_error_set(err, RF_EIO, "cpu backend: cannot start thread %d of %d", i, threads);
            return NULL;
        }
    }
    return be;
}

int rf_backend_cpu_threads(const rf_backend *be)
{
    return ((const rf_cpu_ctx *)be->ctx)->nthreads;
}

int rf_backend_is_cpu(const rf_backend *be)
{
    return be && be->ops == &s_cpu_ops;
}
