/* op_norm.cu - LayerNorm, and RMSNorm's two halves (row sums of squares, apply), on the GPU.
 *
 * One block of RF_NORM_THREADS threads per row. Sums are accumulated in double, like
 * the CPU backend, so results do not drift with the row length: LayerNorm takes the mean
 * in one pass and the variance of the deviations in a second (the row stays in L1/L2).
 * Rows are independent; y may be x (each element is read before it is written by the
 * same thread). Runs on the backend's stream.
 */
#include "cuda_internal.cuh"

#define RF_NORM_THREADS 256

/* Sum of v over the block (every thread gets it). sh holds RF_NORM_THREADS / 32 doubles. */
__device__ double s_block_sum(double v, double *sh)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0)
        sh[warp] = v;
    __syncthreads();
    double s = 0.0;
    for (int i = 0; i < (int)(blockDim.x / 32); i++)
        s += sh[i];
    return s;
}

__global__ void s_layer_norm(float *y, const float *x, const float *w, const float *b, int64_t c,
                             float eps)
{
    __shared__ double sh[RF_NORM_THREADS / 32];
    const float *xr = x + (int64_t)blockIdx.x * c;
    float *yr = y + (int64_t)blockIdx.x * c;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
        s += xr[i];
    double mean = s_block_sum(s, sh) / (double)c;
    double v = 0.0;
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
        double d = xr[i] - mean;
        v += d * d;
    }
    double var = s_block_sum(v, sh) / (double)c;
    float inv = (float)(1.0 / sqrt(var + (double)eps)), mu = (float)mean;
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
        float o = (xr[i] - mu) * inv;
        if (w)
            o *= w[i];
        if (b)
            o += b[i];
        yr[i] = o;
    }
}

__global__ void s_sumsq(float *out, const float *x, int64_t c)
{
    __shared__ double sh[RF_NORM_THREADS / 32];
    const float *xr = x + (int64_t)blockIdx.x * c;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
        s += (double)xr[i] * xr[i];
    s = s_block_sum(s, sh);
    if (threadIdx.x == 0)
        out[blockIdx.x] = (float)s;
}

__global__ void s_rms_apply(float *y, const float *x, const float *ss, int64_t c, int64_t count,
                            const float *w, float eps)
{
    const float *xr = x + (int64_t)blockIdx.x * c;
    float *yr = y + (int64_t)blockIdx.x * c;
    float inv = (float)(1.0 / sqrt((double)ss[blockIdx.x] / (double)count + (double)eps));
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
        yr[i] = w ? (xr[i] * inv) * w[i] : xr[i] * inv;
}

/* Launches one block per row, in slices of at most 2^31 - 1 rows (the grid's x limit). */
#define ROWS_LAUNCH(kernel, rows, ...)                                         \
    for (int64_t r0_ = 0; r0_ < (rows); r0_ += 2147483647LL) {                 \
        int64_t nr_ = (rows)-r0_ < 2147483647LL ? (rows)-r0_ : 2147483647LL;   \
        kernel<<<(unsigned)nr_, RF_NORM_THREADS, 0, c->stream>>>(__VA_ARGS__); \
    }

int rf_cuda_layer_norm(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                       const rf_tensor *b, float eps, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t cols = x->ne[x->ndim - 1], rows = (int64_t)rf_tensor_rows(x);
    if (rc || rows == 0 || cols == 0)
        return rc;
    ROWS_LAUNCH(s_layer_norm, rows, (float *)y->data + r0_ * cols,
                (const float *)x->data + r0_ * cols, w ? (const float *)w->data : NULL,
                b ? (const float *)b->data : NULL, cols, eps);
    return rf_cuda_launched(err, "layer_norm");
}

int rf_cuda_sumsq_rows(void *ctx, rf_tensor *out, const rf_tensor *x, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t cols = x->ne[x->ndim - 1], rows = (int64_t)rf_tensor_rows(x);
    if (rc || rows == 0)
        return rc;
    ROWS_LAUNCH(s_sumsq, rows, (float *)out->data + r0_, (const float *)x->data + r0_ * cols, cols);
    return rf_cuda_launched(err, "sumsq_rows");
}

int rf_cuda_rms_apply(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *sumsq,
                      int64_t count, const rf_tensor *w, float eps, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t cols = x->ne[x->ndim - 1], rows = (int64_t)rf_tensor_rows(x);
    if (rc || rows == 0 || cols == 0)
        return rc;
    ROWS_LAUNCH(s_rms_apply, rows, (float *)y->data + r0_ * cols,
                (const float *)x->data + r0_ * cols, (const float *)sumsq->data + r0_, cols, count,
                w ? (const float *)w->data : NULL, eps);
    return rf_cuda_launched(err, "rms_apply");
}
