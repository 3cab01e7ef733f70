/* backend.h - a compute backend: memory plus one function pointer per op (ggml-backend style).
 *
 * A backend is `{const rf_backend_ops *ops; void *ctx}`. The op API (ops.h) checks shapes
 * and dtypes once, backend-independently, then calls the table entry; a backend may
 * therefore assume valid, contiguous arguments. Memory comes in rf_buffer blocks that the
 * backend allocates (host RAM for cpu/, device memory for cuda/ later); tensors point into
 * them. Nothing here is model-specific. Backends never allocate inside an op: scratch
 * comes from the rf_arena the caller passes, sized beforehand with the scratch_* queries.
 *
 * HOW TO ADD AN OP (example: `rf_op_foo`)
 *   1. Add `int (*foo)(void *ctx, rf_tensor *y, const rf_tensor *x, ..., rf_error *err);`
 *      at the END of rf_backend_ops below, with a one-line contract. If it needs scratch,
 *      also add `size_t (*scratch_foo)(void *ctx, ...)` and take an `rf_arena *scratch`.
 *   2. In kernels/ops.h declare `int rf_op_foo(rf_backend *be, rf_tensor *y, ..., rf_error *err)`
 *      with its contract (shapes, dtypes, in-place allowed or not); in kernels/ops.c write
 *      the wrapper: check shapes/dtypes with the s_check_* helpers (errors name the op and
 *      the shapes), then `return be->ops->foo(be->ctx, ...)`. A NULL entry means "this
 *      backend lacks the op": the wrapper returns RF_EUNSUPPORTED naming the backend.
 *   3. Write kernels/cpu/op_foo.c: `int rf_cpu_foo(void *ctx, ...)`, declared in
 *      kernels/cpu/cpu.h; split work with rf_cpu_parallel(ctx, ntasks, fn, arg) (see cpu.h);
 *      add `.foo = rf_cpu_foo,` to the table in kernels/cpu/backend_cpu.c.
 *   4. Test it in tests/test_ops_cpu.c (or tests/test_ops_<area>.c) against a plain
 *      scalar/double reference, hostile shapes included (odd sizes, 1-sized dims), with
 *      rf_test_nmse. A later backend (cuda/) is tested against the CPU backend.
 * Table entries are designated initializers, so adding one never breaks other backends.
 */
#ifndef RF_BACKEND_H
#define RF_BACKEND_H

#include "arena.h"
#include "error.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef enum rf_unary_op {
    RF_UNARY_GELU_TANH = 0, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    RF_UNARY_GELU_ERF,      /* 0.5 x (1 + erf(x / sqrt(2))) */
    RF_UNARY_SILU,          /* x / (1 + exp(-x)) */
    RF_UNARY_COUNT
} rf_unary_op;

typedef enum rf_binary_op {
    RF_BINARY_ADD = 0,
    RF_BINARY_SUB,
    RF_BINARY_MUL,
    RF_BINARY_COUNT
} rf_binary_op;

/* Parameters of rf_op_conv3d (contract in ops.h). */
typedef struct rf_conv3d_params {
    int st, sh, sw;                               /* strides: time, rows, columns (>= 1) */
    int pad_top, pad_bottom, pad_left, pad_right; /* spatial zero padding (>= 0) */
    int up2; /* 1: each input frame is first upsampled x2 (nearest) in rows and columns */
} rf_conv3d_params;

typedef struct rf_backend_ops {
    const char *name;
    void (*destroy)(void *ctx);

    /* ---- memory ---- */
    /* Returns backend memory of `bytes` bytes aligned to 64, or NULL. */
    void *(*alloc)(void *ctx, size_t bytes);
    void (*free)(void *ctx, void *ptr);
    /* Host -> backend and backend -> host copies of n bytes. */
    int (*upload)(void *ctx, void *dst, const void *src, size_t n, rf_error *err);
    int (*download)(void *ctx, void *dst, const void *src, size_t n, rf_error *err);
    /* Waits until every queued op finished (CPU: ops are synchronous). */
    int (*synchronize)(void *ctx, rf_error *err);

    /* ---- scratch sizes (bytes an op takes from the arena it is given) ---- */
    size_t (*scratch_linear)(void *ctx, const rf_tensor *x, const rf_tensor *w);
    size_t (*scratch_attention)(void *ctx, int64_t batch, int64_t lq, int64_t lk, int64_t heads,
                                int64_t head_dim);

    /* ---- ops (arguments already validated by ops.c; see ops.h for each contract) ---- */
    int (*linear)(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                  const rf_tensor *b, rf_arena *scratch, rf_error *err);
    int (*layer_norm)(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                      const rf_tensor *b, float eps, rf_error *err);
    int (*sumsq_rows)(void *ctx, rf_tensor *out, const rf_tensor *x, rf_error *err);
    int (*rms_apply)(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *sumsq,
                     int64_t count, const rf_tensor *w, float eps, rf_error *err);
    int (*rope)(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *cos_t,
                const rf_tensor *sin_t, rf_error *err);
    int (*attention)(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                     const rf_tensor *v, const rf_tensor *key_mask, float scale, rf_arena *scratch,
                     rf_error *err);
    int (*unary)(void *ctx, rf_tensor *y, const rf_tensor *x, rf_unary_op op, rf_error *err);
    int (*binary)(void *ctx, rf_tensor *y, const rf_tensor *a, const rf_tensor *b, rf_binary_op op,
                  rf_error *err);
    int (*scale)(void *ctx, rf_tensor *y, const rf_tensor *x, float alpha, float beta,
                 rf_error *err);
    int (*fill)(void *ctx, rf_tensor *y, float value, rf_error *err);
    int (*copy)(void *ctx, rf_tensor *dst, const rf_tensor *src, rf_error *err);
    int (*modulate)(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *mod,
                    int shift_idx, int scale_idx, rf_error *err);
    int (*gated_add)(void *ctx, rf_tensor *x, const rf_tensor *y, const rf_tensor *mod,
                     int gate_idx, rf_error *err);
    int (*patchify)(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                    rf_error *err);
    int (*unpatchify)(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                      rf_error *err);
    /* T5 relative position bias band y [H, Lq+Lk-1] from table [buckets, H] (ops.h). */
    int (*rel_pos_bias)(void *ctx, rf_tensor *y, const rf_tensor *table, int64_t lq,
                        int bidirectional, int64_t max_distance, rf_error *err);
    /* Attention plus a relative bias band (ops.h rf_op_attention_relbias). */
    size_t (*scratch_attention_relbias)(void *ctx, int64_t head_dim);
    int (*attention_relbias)(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                             const rf_tensor *v, const rf_tensor *key_mask, const rf_tensor *rel,
                             float scale, rf_arena *scratch, rf_error *err);
    size_t (*scratch_conv3d)(void *ctx, const rf_tensor *y, const rf_tensor *w,
                             const rf_conv3d_params *p);
    /* Channel-last 3D convolution over the time concatenation of prev and x (ops.h). */
    int (*conv3d)(void *ctx, rf_tensor *y, const rf_tensor *prev, const rf_tensor *x,
                  const rf_tensor *w, const rf_tensor *b, const rf_conv3d_params *p,
                  rf_arena *scratch, rf_error *err);
    /* The dtype loaders should store weight matrices in for this backend (its GEMM's native
     * input; the CUDA backend says BF16). NULL: keep the file's dtype. */
    rf_dtype (*matrix_dtype)(void *ctx);
    /* New entries go here, at the end (see the header comment). */
} rf_backend_ops;

typedef struct rf_backend {
    const rf_backend_ops *ops;
    void *ctx;
} rf_backend;

/* A block of backend memory. */
struct rf_buffer {
    rf_backend *backend;
    void *data;
    size_t size;
};

/* Destroys the backend (its ctx via ops->destroy, then the struct); NULLs *be. */
void rf_backend_destroy(rf_backend **be);
const char *rf_backend_name(const rf_backend *be);
/* The dtype a loader should store a weight matrix of file dtype `file_dt` in on this
 * backend: the backend's matrix_dtype when it has one, else file_dt. */
rf_dtype rf_backend_matrix_dtype(const rf_backend *be, rf_dtype file_dt);

/* Allocates a buffer of `bytes` (>= 1) backend bytes. NULL + RF_ENOMEM naming the size.
 * Every buffer allocation is counted (rf_kernels_alloc_count) so tests can prove that
 * a forward allocates nothing. */
rf_buffer *rf_buffer_new(rf_backend *be, size_t bytes, rf_error *err);
/* Frees the buffer and NULLs *buf; safe on NULL. */
void rf_buffer_destroy(rf_buffer **buf);
/* Copies host bytes into tensor t (n must equal rf_tensor_nbytes(t)) and back. */
int rf_tensor_upload(rf_backend *be, rf_tensor *t, const void *src, size_t n, rf_error *err);
int rf_tensor_download(rf_backend *be, const rf_tensor *t, void *dst, size_t n, rf_error *err);

/* Number of backend buffer allocations since the process started (thread-safe). */
uint64_t rf_kernels_alloc_count(void);
/* Called by backends' alloc paths; counts one allocation. */
void rf_kernels_count_alloc(void);

#endif
