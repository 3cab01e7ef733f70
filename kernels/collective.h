/* collective.h - collective communication between the ranks of a tensor-parallel group.
 *
 * One interface, two implementations: NCCL across GPUs (kernels/cuda/comm_nccl.h) and,
 * here, a CPU group whose ranks are threads of one process sharing memory. Every rank of
 * a group must call the same collectives in the same order with tensors of the same
 * shape. Results are deterministic: on the CPU sums run in rank order, so every rank gets
 * bit-identical values (NCCL: identical on every rank, its own order).
 * A rank that fails mid-way calls rf_comm_abort so the others return RF_ECANCELED
 * instead of waiting forever. Collectives never allocate.
 */
#ifndef RF_COLLECTIVE_H
#define RF_COLLECTIVE_H

#include "error.h"
#include "tensor.h"

typedef struct rf_comm_ops {
    const char *name;
    /* t = sum over ranks of t (F32, in place). */
    int (*all_reduce_sum)(void *ctx, int rank, rf_tensor *t, rf_error *err);
    /* out = concatenation over ranks (rank order) of in; numel(out) = size x numel(in). */
    int (*all_gather)(void *ctx, int rank, rf_tensor *out, const rf_tensor *in, rf_error *err);
    /* every rank's t = root's t. */
    int (*broadcast)(void *ctx, int rank, rf_tensor *t, int root, rf_error *err);
    /* Makes every pending and later collective of the group fail with RF_ECANCELED. */
    void (*abort)(void *ctx);
} rf_comm_ops;

/* One rank's handle on its group (borrowed from the group that made it). */
typedef struct rf_comm {
    const rf_comm_ops *ops;
    void *ctx;
    int rank, size;
} rf_comm;

/* Wrappers: check shapes (same numel and F32 where required), then dispatch. With
 * comm == NULL (a group of one) all_reduce and broadcast do nothing and all_gather copies
 * with memmove (host memory only); a comm of size 1 still dispatches to its implementation. */
int rf_comm_all_reduce_sum(rf_comm *comm, rf_tensor *t, rf_error *err);
int rf_comm_all_gather(rf_comm *comm, rf_tensor *out, const rf_tensor *in, rf_error *err);
int rf_comm_broadcast(rf_comm *comm, rf_tensor *t, int root, rf_error *err);
void rf_comm_abort(rf_comm *comm);

/* ---- the CPU implementation: ranks are threads of this process ---- */
typedef struct rf_comm_group rf_comm_group;

/* A group of `size` ranks (1..256). NULL + err. */
rf_comm_group *rf_comm_cpu_group_new(int size, rf_error *err);
/* Rank r's handle (valid while the group lives). */
rf_comm *rf_comm_cpu_rank(rf_comm_group *g, int rank);
/* Clears an abort so the group can be used again (no rank may be inside a collective). */
void rf_comm_cpu_group_reset(rf_comm_group *g);
/* Frees the group (no rank may be inside a collective); NULLs *g; safe on NULL. */
void rf_comm_cpu_group_destroy(rf_comm_group **g);

#endif
