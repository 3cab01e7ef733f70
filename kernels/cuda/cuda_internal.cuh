/* cuda_internal.cuh - what the CUDA backend's files share: the context, error checks,
 * launch helpers and every op entry point (contracts in kernels/ops.h).
 *
 * Ops run on ctx->stream and never synchronize; a launch error is reported at once
 * (cudaGetLastError after each launch), an error inside a kernel surfaces at the next
 * synchronize or download. Nothing here allocates device memory after the backend was
 * created: scratch comes from the caller's arena, the cuBLASLt workspace from creation.
 * Every entry point first binds the calling thread to the backend's device.
 */
#ifndef RF_CUDA_INTERNAL_CUH
#define RF_CUDA_INTERNAL_CUH

#include "backend_cuda.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <stdint.h>

#define RF_CUDA_LT_PLANS 64

/* One cached cuBLASLt plan: descriptors and the algorithm for one GEMM shape. */
typedef struct rf_cuda_lt_plan {
    int used;
    int64_t m, n, k;
    int bias;
    unsigned align; /* min alignment of A, B, C/D pointers, bytes */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} rf_cuda_lt_plan;

typedef struct rf_cuda_ctx {
    int device;
    int sms;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *lt_workspace;
    size_t lt_workspace_bytes;
    rf_cuda_lt_plan plans[RF_CUDA_LT_PLANS];
    int next_plan; /* round-robin eviction */
    size_t mem_current, mem_peak;
    size_t smem_optin; /* max dynamic shared memory per block */
} rf_cuda_ctx;

/* Makes the calling thread's current device the backend's (cheap when it already is). */
int rf_cuda_bind(rf_cuda_ctx *c, rf_error *err);
/* Turns a failed CUDA runtime call into an rf_error naming what was done. */
int rf_cuda_fail(rf_error *err, cudaError_t e, const char *what);
/* Checks the last launch on this thread: 0 or an rf_error naming the op. */
int rf_cuda_launched(rf_error *err, const char *op);

/* Grid size for n independent elements with `threads` per block, capped for grid-stride loops. */
static inline unsigned rf_cuda_blocks(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    if (b > 65535LL * 64)
        b = 65535LL * 64;
    return (unsigned)(b < 1 ? 1 : b);
}

/* f32 -> bf16 conversion of n elements into dst (device pointers), on the stream. */
void rf_cuda_to_bf16(cudaStream_t s, uint16_t *dst, const void *src, rf_dtype src_dt, int64_t n);

/* ---- op entry points (kernels/cuda/op_*.cu) ---- */
size_t rf_cuda_scratch_linear(void *ctx, const rf_tensor *x, const rf_tensor *w);
size_t rf_cuda_scratch_attention(void *ctx, int64_t batch, int64_t lq, int64_t lk, int64_t heads,
                                 int64_t head_dim);
int rf_cuda_linear(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                   const rf_tensor *b, rf_arena *scratch, rf_error *err);
void rf_cuda_linear_release(rf_cuda_ctx *c);
int rf_cuda_layer_norm(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                       const rf_tensor *b, float eps, rf_error *err);
int rf_cuda_sumsq_rows(void *ctx, rf_tensor *out, const rf_tensor *x, rf_error *err);
int rf_cuda_rms_apply(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *sumsq,
                      int64_t count, const rf_tensor *w, float eps, rf_error *err);
int rf_cuda_rope(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *cos_t,
                 const rf_tensor *sin_t, rf_error *err);
int rf_cuda_attention(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                      const rf_tensor *v, const rf_tensor *key_mask, float scale,
                      rf_arena *scratch, rf_error *err);
int rf_cuda_unary(void *ctx, rf_tensor *y, const rf_tensor *x, rf_unary_op op, rf_error *err);
int rf_cuda_binary(void *ctx, rf_tensor *y, const rf_tensor *a, const rf_tensor *b,
                   rf_binary_op op, rf_error *err);
int rf_cuda_scale(void *ctx, rf_tensor *y, const rf_tensor *x, float alpha, float beta,
                  rf_error *err);
int rf_cuda_fill(void *ctx, rf_tensor *y, float value, rf_error *err);
int rf_cuda_copy(void *ctx, rf_tensor *dst, const rf_tensor *src, rf_error *err);
int rf_cuda_modulate(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *mod,
                     int shift_idx, int scale_idx, rf_error *err);
int rf_cuda_gated_add(void *ctx, rf_tensor *x, const rf_tensor *y, const rf_tensor *mod,
                      int gate_idx, rf_error *err);
int rf_cuda_patchify(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                     rf_error *err);
int rf_cuda_unpatchify(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                       rf_error *err);

#endif
