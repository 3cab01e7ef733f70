/* arena.h - a bump allocator over one backend buffer: the scratch of a forward.
 *
 * The arena is sized once, when a model is loaded for a maximum batch and token count;
 * a forward then takes every intermediate tensor from it (rf_arena_tensor) and gives
 * them back all at once (rf_arena_reset to a mark). It never grows and never calls
 * malloc after creation: running out is an RF_ENOMEM error naming the request and the
 * capacity, which means the caller sized it wrong. Allocations are 64-byte aligned.
 */
#ifndef RF_ARENA_H
#define RF_ARENA_H

#include "error.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rf_arena rf_arena;
struct rf_backend;

#define RF_ARENA_ALIGN 64

/* Creates an arena of `bytes` capacity on backend be (one rf_buffer). NULL + err. */
rf_arena *rf_arena_new(struct rf_backend *be, size_t bytes, rf_error *err);
/* Frees the arena and its buffer; NULLs *a; safe on NULL. */
void rf_arena_destroy(rf_arena **a);

/* Rounds n up to the arena alignment (use it when summing sizes for rf_arena_new). */
size_t rf_arena_round(size_t n);
/* Bytes an arena needs to hold one tensor of this dtype and shape. */
size_t rf_arena_tensor_bytes(rf_dtype dtype, int ndim, const int64_t *shape);

/* Takes `bytes` of backend memory; returns NULL when it does not fit (no error set). */
void *rf_arena_alloc(rf_arena *a, size_t bytes);
/* Takes a tensor of the given shape; RF_ENOMEM naming `what`, the request and the
 * capacity when it does not fit. */
int rf_arena_tensor(rf_arena *a, rf_tensor *out, rf_dtype dtype, int ndim, const int64_t *shape,
                    const char *what, rf_error *err);

/* The current fill level; rf_arena_reset(a, mark) frees everything taken after it. */
size_t rf_arena_mark(const rf_arena *a);
void rf_arena_reset(rf_arena *a, size_t mark);
size_t rf_arena_capacity(const rf_arena *a);
/* The highest fill level ever reached (to check a sizing formula against reality). */
size_t rf_arena_high_water(const rf_arena *a);

#endif
