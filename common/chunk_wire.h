/* chunk_wire.h - a chunk state on the wire (ChunkState message + blobs) and on disk (bytes).
 *
 * The worker and the coordinator move chunk states in two shapes: on the wire, a
 * Reelfarm__ChunkState (step, round, scalars, window, held spans) beside one blob per
 * tensor named PREFIX+NAME ("state/latent" in a Checkpoint, "latent" in an OverlapUp);
 * in the coordinator's blob store, one self-describing byte string (pack/unpack). Both
 * directions validate everything that arrives (spans inside the window, dtypes, frame
 * counts) and refuse with a message naming the field; nothing here trusts a peer.
 * Knows nothing about models or samplers.
 */
#ifndef RF_CHUNK_WIRE_H
#define RF_CHUNK_WIRE_H

#include "chunk_state.h"
#include "error.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

#define RF_CHUNK_WIRE_PREFIX_MAX 16

/* The wire form of one state, self-contained (no allocation): msg points into this
 * struct, blobs[i].data borrow the state's tensors. Valid while the struct and the
 * state live and neither moves. */
typedef struct rf_chunk_wire {
    Reelfarm__ChunkState msg;
    rf_wire_blob blobs[RF_CS_MAX_TENSORS];
    size_t n_blobs;
    Reelfarm__FrameRange window;
    Reelfarm__FrameRange held[RF_CS_MAX_SPANS];
    Reelfarm__FrameRange *held_ptrs[RF_CS_MAX_SPANS];
    Reelfarm__Scalar scalars[RF_CS_MAX_SCALARS];
    Reelfarm__Scalar *scalar_ptrs[RF_CS_MAX_SCALARS];
    char names[RF_CS_MAX_TENSORS][RF_CS_NAME_MAX + RF_CHUNK_WIRE_PREFIX_MAX];
} rf_chunk_wire;

/* Fills *w from s: every tensor becomes a blob named prefix+name (prefix may be "" and
 * is at most RF_CHUNK_WIRE_PREFIX_MAX-1 bytes) with its frame axis and frame_start =
 * the first held frame; step and round go to the message. Returns 0 or RF_EINVAL. */
int rf_chunk_wire_from_state(rf_chunk_wire *w, const rf_chunk_state *s, const char *prefix,
                             uint32_t step, uint32_t round, rf_error *err);

/* Appends the blobs of w to a message's blob list: copies w->n_blobs entries into
 * blobs + *n (capacity cap). Returns 0 or RF_ENOMEM when they do not fit. */
int rf_chunk_wire_append(const rf_chunk_wire *w, rf_wire_blob *blobs, size_t *n, size_t cap,
                         rf_error *err);

/* Builds a new state (caller destroys) from a received message: the blobs among
 * blobs[0..n) whose names start with prefix are its tensors (F32 only), the held spans
 * say which frames framed tensors hold (none listed: the whole window). NULL + err
 * (RF_EPROTO) naming the field when anything is inconsistent. */
rf_chunk_state *rf_chunk_wire_to_state(const Reelfarm__ChunkState *msg, const rf_wire_blob *blobs,
                                       size_t n, const char *prefix, rf_error *err);

/* Serializes s (with step and round) into a new buffer (*out, caller frees). Format
 * (little-endian hosts): "RFCHUNK1", u32 step, u32 round, i64 window start and length,
 * u32 nspans + (i64 start, i64 len) each, u32 nscalars + fixed records, u32 ntensors +
 * (name, ndim, frame axis, shape) headers each followed by the f32 data. */
int rf_chunk_state_pack(const rf_chunk_state *s, uint32_t step, uint32_t round, void **out,
                        size_t *len, rf_error *err);

/* Parses what rf_chunk_state_pack wrote; pack(unpack(b)) == b. step/round may be NULL.
 * NULL + err (RF_EINVAL) when the bytes are not a valid packed state. */
rf_chunk_state *rf_chunk_state_unpack(const void *buf, size_t len, uint32_t *step, uint32_t *round,
                                      rf_error *err);

/* Sets the held spans of a state that has no framed tensor yet (nspans <= RF_CS_MAX_SPANS,
 * ascending, disjoint, non-empty, inside the window). Returns 0 or RF_EINVAL. */
int rf_chunk_state_set_spans(rf_chunk_state *s, const rf_cs_span *spans, int nspans, rf_error *err);

#endif
