/* cpu_comm.c - collectives for ranks that are threads sharing memory.
 *
 * Each rank publishes its buffer pointer, all meet at a barrier, then rank r works on
 * the r-th slice of the elements: for all_reduce it sums that slice over the ranks in
 * rank order and writes the sum into every rank's buffer (so every rank ends with the
 * same bits, and no two threads touch the same element); a second barrier ends the
 * call. The barrier is ours (mutex + condition + generation) so that rf_comm_abort can
 * wake everyone with RF_ECANCELED. Only the group constructor allocates.
 */
#include "collective.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct rf_comm_group {
    int size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int waiting;
    uint64_t gen;
    int aborted;
    void **ptrs;      /* per rank: its buffer */
    const void **src; /* per rank: its input (all_gather) */
    rf_comm *ranks;
};

static const rf_comm_ops s_ops;

static int s_barrier(rf_comm_group *g, rf_error *err)
{
    pthread_mutex_lock(&g->mu);
    if (g->aborted) {
        pthread_mutex_unlock(&g->mu);
        return rf_error_set(err, RF_ECANCELED, "collective: another rank failed");
    }
    uint64_t gen = g->gen;
    if (++g->waiting == g->size) {
        g->waiting = 0;
        g->gen++;
        pthread_cond_broadcast(&g->cv);
    } else {
        while (gen == g->gen && !g->aborted)
            pthread_cond_wait(&g->cv, &g->mu);
    }
    int aborted = g->aborted && gen == g->gen;
    pthread_mutex_unlock(&g->mu);
    if (aborted)
        return rf_error_set(err, RF_ECANCELED, "collective: another rank failed");
    return 0;
}

static void s_slice(size_t n, int size, int rank, size_t *a, size_t *b)
{
    *a = n * (size_t)rank / (size_t)size;
    *b = n * (size_t)(rank + 1) / (size_t)size;
}

static int s_all_reduce(void *ctx, int rank, rf_tensor *t, rf_error *err)
{
    rf_comm_group *g = ctx;
    g->ptrs[rank] = t->data;
    int rc = s_barrier(g, err);
    if (rc)
        return rc;
    size_t a, b;
    s_slice(rf_tensor_numel(t), g->size, rank, &a, &b);
    for (size_t i = a; i < b; i++) {
        float s = ((const float *)g->ptrs[0])[i];
        for (int r = 1; r < g->size; r++)
            s += ((const float *)g->ptrs[r])[i];
        for (int r = 0; r < g->size; r++)
            ((float *)g->ptrs[r])[i] = s;
    }
    return s_barrier(g, err);
}

static int s_all_gather(void *ctx, int rank, rf_tensor *out, const rf_tensor *in, rf_error *err)
{
    rf_comm_group *g = ctx;
    g->src[rank] = in->data;
    int rc = s_barrier(g, err);
    if (rc)
        return rc;
    size_t chunk = rf_tensor_nbytes(in);
    for (int r = 0; r < g->size; r++)
        memcpy((char *)out->data + (size_t)r * chunk, g->src[r], chunk);
    return s_barrier(g, err);
}

static int s_broadcast(void *ctx, int rank, rf_tensor *t, int root, rf_error *err)
{
    rf_comm_group *g = ctx;
    g->ptrs[rank] = t->data;
    int rc = s_barrier(g, err);
    if (rc)
        return rc;
    if (rank != root)
        memcpy(t->data, g->ptrs[root], rf_tensor_nbytes(t));
    return s_barrier(g, err);
}

static void s_abort(void *ctx)
{
    rf_comm_group *g = ctx;
    pthread_mutex_lock(&g->mu);
    g->aborted = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static const rf_comm_ops s_ops = {
    .name = "cpu-threads",
    .all_reduce_sum = s_all_reduce,
    .all_gather = s_all_gather,
    .broadcast = s_broadcast,
    .abort = s_abort,
};

rf_comm_group *rf_comm_cpu_group_new(int size, rf_error *err)
{
    if (size < 1 || size > 256) {
        rf_error_set(err, RF_EINVAL, "comm: group size must be 1..256, got %d", size);
        return NULL;
    }
    rf_comm_group *g = calloc(1, sizeof(*g));
    if (g) {
        g->ptrs = calloc((size_t)size, sizeof(*g->ptrs));
        g->src = calloc((size_t)size, sizeof(*g->src));
        g->ranks = calloc((size_t)size, sizeof(*g->ranks));
    }
    if (!g || !g->ptrs || !g->src || !g->ranks) {
        if (g) {
            free(g->ptrs);
            free(g->src);
            free(g->ranks);
        }
        free(g);
        rf_error_set(err, RF_ENOMEM, "comm: out of memory");
        return NULL;
    }
    g->size = size;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    for (int r = 0; r < size; r++)
        g->ranks[r] = (rf_comm){&s_ops, g, r, size};
    return g;
}

rf_comm *rf_comm_cpu_rank(rf_comm_group *g, int rank)
{
    return rank >= 0 && rank < g->size ? &g->ranks[rank] : NULL;
}

void rf_comm_cpu_group_reset(rf_comm_group *g)
{
    pthread_mutex_lock(&g->mu);
    g->aborted = 0;
    g->waiting = 0;
    pthread_mutex_unlock(&g->mu);
}

void rf_comm_cpu_group_destroy(rf_comm_group **g)
{
    if (!g || !*g)
        return;
    pthread_mutex_destroy(&(*g)->mu);
    pthread_cond_destroy(&(*g)->cv);
    free((*g)->ptrs);
    free((*g)->src);
    free((*g)->ranks);
    free(*g);
    *g = NULL;
}
