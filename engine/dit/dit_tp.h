/* dit_tp.h - a Wan DiT split over a tensor-parallel group of ranks (or one rank).
 *
 * The ranks are threads of this process, each with its own backend and its own shard of
 * the weights; rank 0 runs on the caller's thread. On the CPU each rank has threads / tp
 * worker threads and the ranks talk through the CPU collective group; on GPUs a rank is
 * one GPU (its own CUDA backend) and the group is NCCL (kernels/cuda/comm_nccl.h). NCCL
 * refuses two ranks on one GPU, so a one-GPU machine runs TP = 1, through a one-rank NCCL
 * group when NCCL can be loaded. Ranks are started once, at load, and wait for work
 * between forwards, so a forward creates no thread and allocates nothing.
 */
#ifndef RF_DIT_TP_H
#define RF_DIT_TP_H

#include "dit.h"

typedef struct rf_dit_tp rf_dit_tp;

/* Loads the model at dir split over `tp` ranks (1 = whole model), with `threads` CPU
 * threads in total (0 = all cores; each rank gets max(1, threads / tp)). A degree that
 * does not divide the heads and the FFN width is refused with the list of valid ones. */
rf_dit_tp *rf_dit_tp_load(const char *dir, int tp, int threads, rf_error *err);

typedef struct rf_dit_tp_opts {
    const char *backend; /* "cpu" (NULL too) or "cuda" */
    int tp;              /* ranks, >= 1 */
    int threads;         /* cpu: threads in total (0 = all cores) */
    const int *gpus;     /* cuda: the GPU of each of the tp ranks (NULL: 0 .. tp-1) */
} rf_dit_tp_opts;

/* rf_dit_tp_load on any backend. With "cuda", rank r runs on GPU gpus[r]; the GPUs must be
 * distinct when tp > 1 (NCCL). Errors name the backend, the GPU or the rank. */
rf_dit_tp *rf_dit_tp_open(const char *dir, const rf_dit_tp_opts *o, rf_error *err);
/* The backend of rank r (for memory reports). */
rf_backend *rf_dit_tp_backend(rf_dit_tp *g, int r);
/* The collective the ranks use: "none" (one CPU rank), "cpu-threads" or "nccl". */
const char *rf_dit_tp_comm_name(const rf_dit_tp *g);
void rf_dit_tp_destroy(rf_dit_tp **g);
int rf_dit_tp_size(const rf_dit_tp *g);
/* Rank r's model (its config, its weight bytes). */
rf_dit *rf_dit_tp_rank(rf_dit_tp *g, int r);
/* rf_dit_reserve on every rank. */
int rf_dit_tp_reserve(rf_dit_tp *g, int64_t max_batch, int64_t max_tokens, rf_error *err);
/* rf_dit_forward on every rank at once; v comes from rank 0. Same contract. */
int rf_dit_tp_forward(rf_dit_tp *g, int64_t batch, int64_t frames, int64_t height, int64_t width,
                      const float *x, const float *t, const float *context, int64_t ctx_len,
                      float *v, rf_error *err);

#endif
