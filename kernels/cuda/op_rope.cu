/* op_rope.cu - rotary position embedding on the GPU, computed in double like the CPU.
 *
 * x, y [B, T, H, D]; one thread per rotated pair (2i, 2i+1); the angle's cos/sin come
 * from table[t, i] (F64 or F32), the same for every head. In place is fine: each thread
 * reads its pair before writing it.
 */
#include "cuda_internal.cuh"

__global__ void s_rope(float *y, const float *x, const void *ct, const void *st, int f64, int64_t t,
                       int64_t h, int64_t half, int64_t npairs)
{
    for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < npairs;
         p += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = p % half, tok = (p / (half * h)) % t;
        double c, s;
        if (f64) {
            c = ((const double *)ct)[tok * half + i];
            s = ((const double *)st)[tok * half + i];
        } else {
            c = ((const float *)ct)[tok * half + i];
            s = ((const float *)st)[tok * half + i];
        }
        float2 v = ((const float2 *)x)[p];
        double a = v.x, b = v.y;
        float2 o;
        o.x = (float)(a * c - b * s);
        o.y = (float)(a * s + b * c);
        ((float2 *)y)[p] = o;
    }
}

int rf_cuda_rope(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *cos_t,
                 const rf_tensor *sin_t, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(x) / 2;
    if (rc || n == 0)
        return rc;
    s_rope<<<rf_cuda_blocks(n, 256), 256, 0, c->stream>>>(
        (float *)y->data, (const float *)x->data, cos_t->data, sin_t->data,
        cos_t->dtype == RF_DTYPE_F64, x->ne[1], x->ne[2], x->ne[3] / 2, n);
    return rf_cuda_launched(err, "rope");
}
