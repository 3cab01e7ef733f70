/* fusion.h - frame-wise fusion of chunk states over overlapping windows.
 *
 * Temporal MultiDiffusion across machines (ARCHITECTURE.md §2.1): for every global frame
 * covered by several chunks, each framed tensor of the chunk state becomes the weighted
 * mean of the chunks' values; weights fall toward a window's edge only on sides that
 * overlap another chunk, so a timeline's first and last frames keep weight 1. Sums run
 * in chunk order (ascending window start) in double, so the result is deterministic and
 * independent of the order states arrive in. Knows nothing about models or samplers:
 * the coordinator links this without the engine. Never averages states whose scalars
 * (step, solver order counters, sampler) disagree.
 */
#ifndef RF_FUSION_H
#define RF_FUSION_H

#include "chunk_state.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

typedef enum rf_fusion_ramp {
    RF_FUSION_LINEAR = 0, /* default: (i+1)/(O+1) across an overlap of O frames */
    RF_FUSION_UNIFORM,    /* every covering chunk weighs 1 */
    RF_FUSION_COSINE,     /* 0.5 - 0.5 cos(pi * linear) */
    RF_FUSION_RAMP_COUNT
} rf_fusion_ramp;

/* "linear", "uniform", "cosine" -> *out; returns 0, or RF_EINVAL naming the choices. */
int rf_fusion_ramp_parse(const char *name, rf_fusion_ramp *out, rf_error *err);
/* The name of a ramp ("linear", ...; "?" when out of range). */
const char *rf_fusion_ramp_name(rf_fusion_ramp ramp);

/* How many frames at the left and right end of window i are covered by another of the n
 * windows (0 when that side overlaps nothing). Windows with the same start are refused. */
int rf_fusion_overlaps(const rf_cs_span *windows, size_t n, size_t i, int64_t *left, int64_t *right,
                       rf_error *err);

/* The frames of window i that other windows cover, as at most two ascending spans (what
 * travels each round): [start, start+left) and [end-right, end), merged when they meet.
 * *nspans is 0 when nothing overlaps. */
int rf_fusion_overlap_spans(const rf_cs_span *windows, size_t n, size_t i,
                            rf_cs_span spans[RF_CS_MAX_SPANS], int *nspans, rf_error *err);

/* The weight (> 0, <= 1) of local frame pos (0 <= pos < len) of a window of len frames
 * whose left/right `left`/`right` frames overlap other windows. */
double rf_fusion_weight(rf_fusion_ramp ramp, int64_t len, int64_t left, int64_t right, int64_t pos);

/* Fuses n chunk states of one timeline in place. The states may be full or hold only
 * their overlap frames (rf_chunk_state_extract with rf_fusion_overlap_spans); the
 * weights depend only on the windows, so both give the same values. Every state must be
 * compatible with the others (rf_chunk_state_compatible: equal scalars, same framed
 * tensors) and hold every frame of its window that another window covers; otherwise
 * nothing is changed and an error names the chunk and what differs. Afterwards every
 * covering chunk holds the same bits on every shared frame; frames covered by one chunk
 * only and unframed tensors are untouched; frames where all chunks already held the same
 * value keep it bit for bit (weights are normalized to sum to 1 and accumulated in
 * double, so a mean of equal floats rounds back to that float). */
int rf_fusion_fuse(rf_chunk_state *const *states, size_t n, rf_fusion_ramp ramp, rf_error *err);

/* The windows whose states decide the fused values of frames [f0, f1): windows [*lo, *hi)
 * of the n given, sorted by ascending start, none longer than maxlen. They are every
 * window that overlaps a window covering one of those frames (what each covering window's
 * weights depend on), so rf_fusion_fuse of just these states gives, on [f0, f1), the bits
 * that fusing all n gives. Costs O(log n + the windows returned); *lo == *hi when no
 * window covers [f0, f1). */
void rf_fusion_needed(const rf_cs_span *windows, size_t n, int64_t maxlen, int64_t f0, int64_t f1,
                      size_t *lo, size_t *hi);

#endif
