/* dit_tp.h - a Wan DiT split over a tensor-parallel group of ranks (or one rank).
 *
 * On the CPU the ranks are threads of this process, each with its own CPU backend
 * (threads / tp worker threads) and its own shard of the weights, talking through the
 * CPU collective group; rank 0 runs on the caller's thread. On GPUs (later) a rank is
 * one device and the group is NCCL. Ranks are started once, at load, and wait for work
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
