/* op_patch.cu - patchify ([B,C,F,H,W] -> [B,T,C*pt*ph*pw], c slowest in a token) and
 * unpatchify ([B,T,pt*ph*pw*C], channel fastest -> [B,C,F,H,W]) on the GPU.
 *
 * One thread per element of the token tensor, which it decodes into its volume
 * coordinates: reads of patchify and writes of unpatchify are scattered, the token side
 * is contiguous. The layouts are exactly the CPU backend's (kernels/cpu/op_patchify.c,
 * op_unpatchify.c).
 */
#include "cuda_internal.cuh"

typedef struct {
    int64_t c, f, h, w, gf, gh, gw;
    int pt, ph, pw;
} s_geom;

/* Volume offset of (b, ch, f*pt+kt, h*ph+kh, w*pw+kw) for token index tok of batch b. */
__device__ int64_t s_vol(const s_geom &g, int64_t b, int64_t tok, int64_t ch, int kt, int kh,
                         int kw)
{
    int64_t fw = tok % g.gw, fh = (tok / g.gw) % g.gh, ff = tok / (g.gw * g.gh);
    return (((b * g.c + ch) * g.f + ff * g.pt + kt) * g.h + fh * g.ph + kh) * g.w + fw * g.pw + kw;
}

__global__ void s_patchify(float *y, const float *x, s_geom g, int64_t n)
{
    int64_t vec = g.c * g.pt * g.ph * g.pw, ntok = g.gf * g.gh * g.gw;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t e = i % vec, tok = (i / vec) % ntok, b = i / (vec * ntok);
        int kw = (int)(e % g.pw), kh = (int)((e / g.pw) % g.ph),
            kt = (int)((e / (g.pw * g.ph)) % g.pt);
        int64_t ch = e / ((int64_t)g.pw * g.ph * g.pt);
        y[i] = x[s_vol(g, b, tok, ch, kt, kh, kw)];
    }
}

__global__ void s_unpatchify(float *y, const float *x, s_geom g, int64_t n)
{
    int64_t vec = g.c * g.pt * g.ph * g.pw, ntok = g.gf * g.gh * g.gw;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t e = i % vec, tok = (i / vec) % ntok, b = i / (vec * ntok);
        int64_t ch = e % g.c, k = e / g.c;
        int kw = (int)(k % g.pw), kh = (int)((k / g.pw) % g.ph),
            kt = (int)(k / ((int64_t)g.pw * g.ph));
        y[s_vol(g, b, tok, ch, kt, kh, kw)] = x[i];
    }
}

static s_geom s_make(const rf_tensor *vol, int pt, int ph, int pw)
{
    s_geom g;
    g.c = vol->ne[1];
    g.f = vol->ne[2];
    g.h = vol->ne[3];
    g.w = vol->ne[4];
    g.pt = pt;
    g.ph = ph;
    g.pw = pw;
    g.gf = g.f / pt;
    g.gh = g.h / ph;
    g.gw = g.w / pw;
    return g;
}

int rf_cuda_patchify(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                     rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(y);
    if (rc || n == 0)
        return rc;
    s_patchify<<<rf_cuda_blocks(n, 256), 256, 0, c->stream>>>(
        (float *)y->data, (const float *)x->data, s_make(x, pt, ph, pw), n);
    return rf_cuda_launched(err, "patchify");
}

int rf_cuda_unpatchify(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                       rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    int64_t n = (int64_t)rf_tensor_numel(x);
    if (rc || n == 0)
        return rc;
    s_unpatchify<<<rf_cuda_blocks(n, 256), 256, 0, c->stream>>>(
        (float *)y->data, (const float *)x->data, s_make(y, pt, ph, pw), n);
    return rf_cuda_launched(err, "unpatchify");
}
