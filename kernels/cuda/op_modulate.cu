/* op_modulate.cu - adaLN modulation y = x (1 + scale) + shift and the gated residual
 * x += y * gate on the GPU.
 *
 * x, y [B, T, C]; the shift/scale/gate vectors are rows of mod [B, M, C] for each batch
 * element. One thread per element (grid-stride, 64-bit indices); y may be x.
 */
#include "cuda_internal.cuh"

__global__ void s_modulate(float *y, const float *x, const float *mod, int64_t t, int64_t c,
                           int64_t m, int si, int ci, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = i % c, b = i / (t * c);
        float sh = mod[(b * m + si) * c + ch], sc = mod[(b * m + ci) * c + ch];
        y[i] = x[i] * (1.0f + sc) + sh;
    }
}

__global__ void s_gated_add(float *x, const float *y, const float *mod, int64_t t, int64_t c,
                            int64_t m, int gi, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ch = i % c, b = i / (t * c);
        x[i] += y[i] * mod[(b * m + gi) * c + ch];
    }
}

int rf_cuda_modulate(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *mod,
                     int shift_idx, int scale_idx, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(x);
    if (rc || n == 0)
        return rc;
    s_modulate<<<rf_cuda_blocks(n, 256), 256, 0, c->stream>>>(
        (float *)y->data, (const float *)x->data, (const float *)mod->data, x->ne[1], x->ne[2],
        mod->ne[1], shift_idx, scale_idx, n);
    return rf_cuda_launched(err, "modulate");
}

int rf_cuda_gated_add(void *ctx, rf_tensor *x, const rf_tensor *y, const rf_tensor *mod,
                      int gate_idx, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(x);
    if (rc || n == 0)
        return rc;
    s_gated_add<<<rf_cuda_blocks(n, 256), 256, 0, c->stream>>>(
        (float *)x->data, (const float *)y->data, (const float *)mod->data, x->ne[1], x->ne[2],
        mod->ne[1], gate_idx, n);
    return rf_cuda_launched(err, "gated_add");
}
