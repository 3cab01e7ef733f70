/* chunk_state.h - the state of one chunk of a timeline between sampler steps.
 *
 * The contract between engine and coordinator (ARCHITECTURE.md §2.1): named f32
 * tensors, each declaring its frame axis (the latent and every per-frame tensor a
 * multistep solver keeps), plus scalars (step index, solver order counters, sampler id)
 * that must be equal across chunks at a sync. A state knows its window of GLOBAL latent
 * frames and which of those frames its framed tensors hold: all of the window (a full
 * state) or only some spans of it (the overlap frames that travel each round).
 * It knows nothing about models; a new sampler adds tensors and scalars, not code here.
 */
#ifndef RF_CHUNK_STATE_H
#define RF_CHUNK_STATE_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define RF_CS_NAME_MAX    64
#define RF_CS_STR_MAX     64
#define RF_CS_MAX_DIMS    6
#define RF_CS_MAX_TENSORS 16
#define RF_CS_MAX_SCALARS 24
/* A window minus its middle is at most two spans (left and right overlap). */
#define RF_CS_MAX_SPANS 2

typedef enum rf_cs_kind { RF_CS_I64 = 0, RF_CS_F64, RF_CS_STR } rf_cs_kind;

typedef struct rf_cs_scalar {
    char name[RF_CS_NAME_MAX];
    rf_cs_kind kind;
    int64_t i;
    double f;
    char s[RF_CS_STR_MAX];
} rf_cs_scalar;

typedef struct rf_cs_tensor {
    char name[RF_CS_NAME_MAX];
    int ndim;
    int64_t shape[RF_CS_MAX_DIMS];
    int frame_axis; /* -1: not framed (per chunk, never fused, dropped from overlaps) */
    float *data;    /* owned, numel floats, row-major */
} rf_cs_tensor;

typedef struct rf_cs_span {
    int64_t start, len; /* global latent frames [start, start+len) */
} rf_cs_span;

/* Fields are public so the engine can step on the tensors in place; change them only
 * through the functions below (they keep shapes and spans consistent). */
typedef struct rf_chunk_state {
    int64_t window_start, window_len; /* the chunk's window of global latent frames */
    int nspans;                       /* frames the framed tensors hold, ascending */
    rf_cs_span spans[RF_CS_MAX_SPANS];
    int ntensors;
    rf_cs_tensor tensors[RF_CS_MAX_TENSORS];
    int nscalars;
    rf_cs_scalar scalars[RF_CS_MAX_SCALARS];
} rf_chunk_state;

/* A full state for the window [window_start, window_start + window_len), no tensors or
 * scalars yet. NULL + err when window_len < 1 or window_start < 0. Caller destroys. */
rf_chunk_state *rf_chunk_state_new(int64_t window_start, int64_t window_len, rf_error *err);
/* Frees tensors and the state; NULLs *self; safe on NULL and twice. */
void rf_chunk_state_destroy(rf_chunk_state **self);
/* A deep copy, or NULL + err. */
rf_chunk_state *rf_chunk_state_clone(const rf_chunk_state *self, rf_error *err);

/* Number of frames the framed tensors hold (sum of the span lengths). */
int64_t rf_chunk_state_held(const rf_chunk_state *self);
/* Position of global frame f along the frame axis of the framed tensors, or -1 when
 * this state does not hold f. */
int64_t rf_chunk_state_frame_pos(const rf_chunk_state *self, int64_t f);

/* Adds a tensor named name (unique) of ndim dims; framed when frame_axis >= 0, then
 * shape[frame_axis] must equal rf_chunk_state_held(). data (numel floats) is copied;
 * NULL means zeros. Returns the tensor (owned by the state) or NULL + err. */
rf_cs_tensor *rf_chunk_state_add(rf_chunk_state *self, const char *name, int ndim,
                                 const int64_t *shape, int frame_axis, const float *data,
                                 rf_error *err);
/* The tensor named name, or NULL. */
rf_cs_tensor *rf_chunk_state_tensor(const rf_chunk_state *self, const char *name);
/* Number of floats in t. */
size_t rf_cs_numel(const rf_cs_tensor *t);

/* Sets (adds or replaces) a scalar. A name may not change kind. Strings longer than
 * RF_CS_STR_MAX-1 bytes and names longer than RF_CS_NAME_MAX-1 are refused. */
int rf_chunk_state_set_i64(rf_chunk_state *self, const char *name, int64_t v, rf_error *err);
int rf_chunk_state_set_f64(rf_chunk_state *self, const char *name, double v, rf_error *err);
int rf_chunk_state_set_str(rf_chunk_state *self, const char *name, const char *v, rf_error *err);
/* The scalar named name, or NULL. */
const rf_cs_scalar *rf_chunk_state_scalar(const rf_chunk_state *self, const char *name);
/* Reads a scalar of the stated kind; RF_ENOTFOUND / RF_EINVAL with the name otherwise. */
int rf_chunk_state_get_i64(const rf_chunk_state *self, const char *name, int64_t *out,
                           rf_error *err);
int rf_chunk_state_get_f64(const rf_chunk_state *self, const char *name, double *out,
                           rf_error *err);

/* 0 when a and b have the same scalars (names, kinds and values; f64 compared bit for
 * bit) and the same framed tensors (names, frame axes, shapes apart from the frame
 * axis); otherwise RF_EINVAL with a message naming the first difference and both
 * chunks' windows. Scalars that disagree mean the chunks are not at the same point of
 * the same schedule: they must never be averaged. */
int rf_chunk_state_compatible(const rf_chunk_state *a, const rf_chunk_state *b, rf_error *err);

/* A new partial state holding only the frames of spans (nspans <= RF_CS_MAX_SPANS,
 * ascending, disjoint, empty spans skipped, every frame held by self) of every framed
 * tensor, with self's window and scalars; unframed tensors are left out. This is what
 * travels each round. NULL + err on bad spans. */
rf_chunk_state *rf_chunk_state_extract(const rf_chunk_state *self, const rf_cs_span *spans,
                                       int nspans, rf_error *err);
/* Writes every frame src holds into dst (same window, compatible, every frame of src
 * held by dst) for each framed tensor of src; dst's other frames and unframed tensors
 * are untouched. The fused overlaps coming back are applied with this. */
int rf_chunk_state_apply(rf_chunk_state *dst, const rf_chunk_state *src, rf_error *err);

/* Writes the state to a .safetensors file at path (atomically, via common/safetensors):
 * every tensor as F32 under its name; in "__metadata__": "reelfarm.chunk_state" = "1",
 * "window" = "START,LEN", "spans" = "START:LEN,..." (the held frames), one
 * "frame_axis.NAME" per tensor (-1 when unframed), "scalars" = the names in order, and
 * one "scalar.NAME" each as "i64:DEC", "f64:HEXFLOAT" (exact) or "str:TEXT". */
int rf_chunk_state_save(const rf_chunk_state *self, const char *path, rf_error *err);
/* Reads a file written by rf_chunk_state_save; load(save(s)) equals s bit for bit.
 * Every field is validated (dtype F32, dims, frame axes, spans inside the window, frame
 * counts, scalar syntax); NULL + err naming the file and field otherwise. */
rf_chunk_state *rf_chunk_state_load(const char *path, rf_error *err);

#endif
