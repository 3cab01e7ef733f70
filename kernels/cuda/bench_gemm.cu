/* bench_gemm.cu - measuring tools for benchmarks: the bf16 GEMM peak and stream timers.
 *
 * The peak is a square bf16 GEMM through cuBLASLt (bf16 out, f32 accumulate) on random
 * data (zeros run faster and would inflate it), timed with CUDA events over `reps` calls
 * after warm-ups; its matrices are allocated and freed inside the call, so it is for
 * benchmarks only, never for a forward. The timers record CUDA events on the backend's
 * stream, so they time the device work queued between them, not host time.
 */
#include "cuda_internal.cuh"

#include <cuda_bf16.h>

__global__ void s_fill_random(__nv_bfloat16 *p, int64_t n, uint32_t seed)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 16;
        h *= 0x7feb352du;
        h ^= h >> 15;
        p[i] = __float2bfloat16_rn((float)(h & 0xFFFF) / 32768.0f - 1.0f);
    }
}

#define CK(call, what)                   \
    do {                                 \
        cudaError_t e_ = (call);         \
        if (e_ != cudaSuccess) {         \
            rf_cuda_fail(err, e_, what); \
            goto done;                   \
        }                                \
    } while (0)
#define LK(call, what)                                                                            \
    do {                                                                                          \
        cublasStatus_t s_ = (call);                                                               \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                        \
            rf_error_set(err, RF_EIO, "bench gemm: %s failed (cuBLAS status %d)", what, (int)s_); \
            goto done;                                                                            \
        }                                                                                         \
    } while (0)

double rf_cuda_bench_gemm(rf_backend *be, int n, int reps, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)be->ctx;
    double result = -1.0;
    __nv_bfloat16 *a = NULL, *b = NULL, *d = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    cublasLtMatmulDesc_t desc = NULL;
    cublasLtMatrixLayout_t la = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    float alpha = 1.0f, beta = 0.0f, ms = 0.0f;
    uint64_t ws = c->lt_workspace_bytes;
    size_t bytes = (size_t)n * (size_t)n * 2;
    if (rf_cuda_bind(c, err))
        return -1.0;
    CK(cudaMalloc((void **)&a, bytes), "bench gemm: cudaMalloc");
    CK(cudaMalloc((void **)&b, bytes), "bench gemm: cudaMalloc");
    CK(cudaMalloc((void **)&d, bytes), "bench gemm: cudaMalloc");
    s_fill_random<<<1024, 256, 0, c->stream>>>(a, (int64_t)n * n, 1u);
    s_fill_random<<<1024, 256, 0, c->stream>>>(b, (int64_t)n * n, 2u);
    LK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
    LK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, (uint64_t)n, (uint64_t)n, n), "layout");
    LK(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
    LK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                            sizeof(ws)),
       "workspace");
    LK(cublasLtMatmulAlgoGetHeuristic(c->lt, desc, la, la, la, la, pref, 1, &res, &found),
       "AlgoGetHeuristic");
    if (found < 1) {
        rf_error_set(err, RF_EUNSUPPORTED, "bench gemm: no bf16 algorithm for %d^3", n);
        goto done;
    }
    CK(cudaEventCreate(&e0), "cudaEventCreate");
    CK(cudaEventCreate(&e1), "cudaEventCreate");
    for (int i = 0; i < 3 + reps; i++) {
        if (i == 3)
            CK(cudaEventRecord(e0, c->stream), "cudaEventRecord");
        LK(cublasLtMatmul(c->lt, desc, &alpha, a, la, b, la, &beta, d, la, d, la, &res.algo,
                          c->lt_workspace, c->lt_workspace_bytes, c->stream),
           "cublasLtMatmul");
    }
    CK(cudaEventRecord(e1, c->stream), "cudaEventRecord");
    CK(cudaEventSynchronize(e1), "cudaEventSynchronize");
    CK(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    result = (double)ms / 1000.0 / reps;
done:
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (la)
        cublasLtMatrixLayoutDestroy(la);
    if (desc)
        cublasLtMatmulDescDestroy(desc);
    cudaFree(a);
    cudaFree(b);
    cudaFree(d);
    return result;
}

static __thread cudaEvent_t s_t0, s_t1;

int rf_cuda_timer_start(rf_backend *be, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)be->ctx;
    int rc = rf_cuda_bind(c, err);
    if (rc)
        return rc;
    cudaError_t e = cudaSuccess;
    if (!s_t0)
        e = cudaEventCreate(&s_t0);
    if (e == cudaSuccess && !s_t1)
        e = cudaEventCreate(&s_t1);
    if (e == cudaSuccess)
        e = cudaEventRecord(s_t0, c->stream);
    return e == cudaSuccess ? 0 : rf_cuda_fail(err, e, "timer start");
}

double rf_cuda_timer_stop(rf_backend *be, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)be->ctx;
    float ms = 0.0f;
    cudaError_t e = cudaEventRecord(s_t1, c->stream);
    if (e == cudaSuccess)
        e = cudaEventSynchronize(s_t1);
    if (e == cudaSuccess)
        e = cudaEventElapsedTime(&ms, s_t0, s_t1);
    if (e != cudaSuccess) {
        rf_cuda_fail(err, e, "timer stop");
        return -1.0;
    }
    return (double)ms / 1000.0;
}
