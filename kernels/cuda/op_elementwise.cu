/* op_elementwise.cu - unary (GELU-tanh, GELU-erf, SiLU), binary with trailing broadcast,
 * scale, fill and dtype copy on the GPU.
 *
 * Grid-stride loops over elements with 64-bit indices (tensors reach billions of
 * elements at 75,600 tokens). Functions match the CPU backend's definitions: GELU-tanh as
 * x sigmoid(2u), SiLU as x sigmoid(x), rounding to nearest even for bf16/f16. All run on
 * the backend's stream and return without waiting.
 */
#include "cuda_internal.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#define RF_EW_THREADS 256

__global__ void s_unary(float *y, const float *x, int64_t n, int op)
{
    const float k = 2.0f * 0.7978845608028654f;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = x[i], r;
        if (op == RF_UNARY_GELU_TANH)
            r = v / (1.0f + expf(-k * v - k * 0.044715f * v * v * v));
        else if (op == RF_UNARY_SILU)
            r = v / (1.0f + expf(-v));
        else
            r = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
        y[i] = r;
    }
}

__global__ void s_binary(float *y, const float *a, const float *b, int64_t n, int64_t nb, int op)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float u = a[i], v = b[nb == n ? i : i % nb];
        y[i] = op == RF_BINARY_ADD ? u + v : op == RF_BINARY_SUB ? u - v : u * v;
    }
}

__global__ void s_scale(float *y, const float *x, int64_t n, float alpha, float beta)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = alpha * x[i] + beta;
}

__global__ void s_fill(float *y, int64_t n, float v)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = v;
}

/* dst (dtype dd) = src (dtype sd), both F32, BF16 or F16, through f32. */
__global__ void s_convert(void *dst, int dd, const void *src, int sd, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v;
        if (sd == RF_DTYPE_F32)
            v = ((const float *)src)[i];
        else if (sd == RF_DTYPE_BF16)
            v = __bfloat162float(((const __nv_bfloat16 *)src)[i]);
        else
            v = __half2float(((const __half *)src)[i]);
        if (dd == RF_DTYPE_F32)
            ((float *)dst)[i] = v;
        else if (dd == RF_DTYPE_BF16)
            ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(v);
        else
            ((__half *)dst)[i] = __float2half_rn(v);
    }
}

/* f32 -> bf16, four at a time (src 16-byte and dst 8-byte aligned, n % 4 == 0). */
__global__ void s_f32_to_bf16_x4(uint2 *dst, const float4 *src, int64_t n4)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n4;
         i += (int64_t)gridDim.x * blockDim.x) {
        float4 v = src[i];
        __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
        uint2 o;
        o.x = *(const uint32_t *)&lo;
        o.y = *(const uint32_t *)&hi;
        dst[i] = o;
    }
}

void rf_cuda_to_bf16(cudaStream_t s, uint16_t *dst, const void *src, rf_dtype src_dt, int64_t n)
{
    if (n <= 0)
        return;
    if (src_dt == RF_DTYPE_F32 && n % 4 == 0 && (uintptr_t)src % 16 == 0 &&
        (uintptr_t)dst % 8 == 0) {
        s_f32_to_bf16_x4<<<rf_cuda_blocks(n / 4, RF_EW_THREADS), RF_EW_THREADS, 0, s>>>(
            (uint2 *)dst, (const float4 *)src, n / 4);
        return;
    }
    s_convert<<<rf_cuda_blocks(n, RF_EW_THREADS), RF_EW_THREADS, 0, s>>>(dst, RF_DTYPE_BF16, src,
                                                                         (int)src_dt, n);
}

int rf_cuda_unary(void *ctx, rf_tensor *y, const rf_tensor *x, rf_unary_op op, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(x);
    if (rc || n == 0)
        return rc;
    s_unary<<<rf_cuda_blocks(n, RF_EW_THREADS), RF_EW_THREADS, 0, c->stream>>>(
        (float *)y->data, (const float *)x->data, n, (int)op);
    return rf_cuda_launched(err, "unary");
}

int rf_cuda_binary(void *ctx, rf_tensor *y, const rf_tensor *a, const rf_tensor *b, rf_binary_op op,
                   rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(a), nb = (int64_t)rf_tensor_numel(b);
    if (rc || n == 0 || nb == 0)
        return rc;
    s_binary<<<rf_cuda_blocks(n, RF_EW_THREADS), RF_EW_THREADS, 0, c->stream>>>(
        (float *)y->data, (const float *)a->data, (const float *)b->data, n, nb, (int)op);
    return rf_cuda_launched(err, "binary");
}

int rf_cuda_scale(void *ctx, rf_tensor *y, const rf_tensor *x, float alpha, float beta,
                  rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(x);
    if (rc || n == 0)
        return rc;
    s_scale<<<rf_cuda_blocks(n, RF_EW_THREADS), RF_EW_THREADS, 0, c->stream>>>(
        (float *)y->data, (const float *)x->data, n, alpha, beta);
    return rf_cuda_launched(err, "scale");
}

int rf_cuda_fill(void *ctx, rf_tensor *y, float value, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(y);
    if (rc || n == 0)
        return rc;
    s_fill<<<rf_cuda_blocks(n, RF_EW_THREADS), RF_EW_THREADS, 0, c->stream>>>((float *)y->data, n,
                                                                              value);
    return rf_cuda_launched(err, "fill");
}

int rf_cuda_copy(void *ctx, rf_tensor *dst, const rf_tensor *src, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(src);
    if (rc || n == 0)
        return rc;
    if (dst->dtype == src->dtype) {
        cudaError_t e = cudaMemcpyAsync(dst->data, src->data, rf_tensor_nbytes(src),
                                        cudaMemcpyDeviceToDevice, c->stream);
        return e == cudaSuccess ? 0 : rf_cuda_fail(err, e, "copy");
    }
    int ok_s =
        src->dtype == RF_DTYPE_F32 || src->dtype == RF_DTYPE_BF16 || src->dtype == RF_DTYPE_F16;
    int ok_d =
        dst->dtype == RF_DTYPE_F32 || dst->dtype == RF_DTYPE_BF16 || dst->dtype == RF_DTYPE_F16;
    if (!ok_s || !ok_d)
        return rf_error_set(err, RF_EUNSUPPORTED, "copy: cannot convert %s -> %s",
                            rf_dtype_name(src->dtype), rf_dtype_name(dst->dtype));
    if (src->dtype != RF_DTYPE_F32 && dst->dtype != RF_DTYPE_F32)
        return rf_error_set(err, RF_EUNSUPPORTED, "copy: %s -> %s goes through F32; copy twice",
                            rf_dtype_name(src->dtype), rf_dtype_name(dst->dtype));
    s_convert<<<rf_cuda_blocks(n, RF_EW_THREADS), RF_EW_THREADS, 0, c->stream>>>(
        dst->data, (int)dst->dtype, src->data, (int)src->dtype, n);
    return rf_cuda_launched(err, "copy");
}
