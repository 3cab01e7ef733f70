/* op_attention.cu - fused attention on the GPU (flash-attention-2 style) plus a plain
 * fallback for head sizes the fused kernel does not cover.
 *
 * Fused kernel (head_dim 64 and 128, compute capability 8.0+): q, k, v are first
 * converted to bf16 into scratch (one memory-bound pass; the kernel itself is compute
 * bound). A block of 4 warps owns 64 queries of one (batch, head): each warp keeps its
 * 16 query rows as mma.sync A fragments in registers and walks the keys in tiles of 64,
 * double-buffered in shared memory with cp.async (zero-filled past the end). Per tile:
 * S = Q K^T with mma.sync.m16n8k16 (bf16 in, f32 accumulate), scaled into log2 units,
 * masked (key mask, tail), then the online softmax: running row max m and sum l, the
 * output rescaled by 2^(m_old - m_new); P stays in registers, where the accumulator
 * layout of S is exactly the A-fragment layout P needs for O += P V (V read with
 * ldmatrix.trans). The T x T scores never exist in memory; memory is O(tokens x D).
 * A query whose keys are all masked ends with l = 0 and gets zeros, like the CPU.
 * Fallback (any head_dim up to 256): one warp per (batch, query, head) in f32.
 */
#include "cuda_internal.cuh"

#include <cuda_bf16.h>
#include <math.h>

#define RF_ATT_NW      4                /* warps per block */
#define RF_ATT_BQ      (16 * RF_ATT_NW) /* queries per block */
#define RF_ATT_BK      64               /* keys per tile */
#define RF_ATT_MAX_GEN 256              /* largest head_dim of the fallback */

typedef struct {
    const __nv_bfloat16 *q, *k, *v;
    float *o;
    const uint8_t *mask;
    int64_t lq, lk, h;
    float scale_log2;
} s_params;

__device__ __forceinline__ uint32_t s_smem(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void s_cp16(void *dst, const void *src, int bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s_smem(dst)), "l"(src),
                 "r"(bytes)
                 : "memory");
}

__device__ __forceinline__ void s_commit(void)
{
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

__device__ __forceinline__ void s_wait1(void)
{
    asm volatile("cp.async.wait_group 1;\n" ::: "memory");
}

__device__ __forceinline__ void s_ldm4(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3,
                                       const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(s_smem(p))
                 : "memory");
}

__device__ __forceinline__ void s_ldm4t(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3,
                                        const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(s_smem(p))
                 : "memory");
}

/* d += a b for one 16x8x16 tile: a 16x16 bf16 (row), b 16x8 bf16 (col), d 16x8 f32. */
__device__ __forceinline__ void s_mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                      uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Two floats as a bf16 pair, the first in the low half (the lower column index). */
__device__ __forceinline__ uint32_t s_pack(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(const uint32_t *)&v;
}

/* Copies `rows` rows of D bf16 (global row stride rs elements) into shared memory with
 * row stride D + 8; rows at or past `valid` are zero-filled. */
template <int D>
__device__ __forceinline__ void s_load_tile(__nv_bfloat16 *dst, const __nv_bfloat16 *src,
                                            int64_t rs, int64_t valid, int rows)
{
    constexpr int CPR = D / 8, LDS = D + 8;
    for (int idx = threadIdx.x; idx < rows * CPR; idx += RF_ATT_NW * 32) {
        int r = idx / CPR, cc = idx % CPR;
        int ok = r < valid;
        const __nv_bfloat16 *g = ok ? src + r * rs + cc * 8 : src;
        s_cp16(dst + r * LDS + cc * 8, g, ok ? 16 : 0);
    }
}

template <int D> __global__ void __launch_bounds__(RF_ATT_NW * 32) s_flash(s_params p)
{
    constexpr int LDS = D + 8, NT = RF_ATT_BK / 8, DT = D / 8;
    extern __shared__ __align__(16) unsigned char s_raw[];
    __nv_bfloat16 *sQ = (__nv_bfloat16 *)s_raw;
    __nv_bfloat16 *sK = sQ + RF_ATT_BQ * LDS;
    __nv_bfloat16 *sV = sK + 2 * RF_ATT_BK * LDS;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t bb = blockIdx.z, hh = blockIdx.y, q0 = (int64_t)blockIdx.x * RF_ATT_BQ;
    const int64_t rs = p.h * D;
    const __nv_bfloat16 *Qg = p.q + (bb * p.lq + q0) * rs + hh * D;
    const __nv_bfloat16 *Kg = p.k + bb * p.lk * rs + hh * D;
    const __nv_bfloat16 *Vg = p.v + bb * p.lk * rs + hh * D;
    const uint8_t *mask = p.mask ? p.mask + bb * p.lk : NULL;
    const int ntiles = (int)((p.lk + RF_ATT_BK - 1) / RF_ATT_BK);

    s_load_tile<D>(sQ, Qg, rs, p.lq - q0, RF_ATT_BQ);
    s_load_tile<D>(sK, Kg, rs, p.lk, RF_ATT_BK);
    s_load_tile<D>(sV, Vg, rs, p.lk, RF_ATT_BK);
    s_commit();

    uint32_t qf[D / 16][4];
    float o[DT][4];
#pragma unroll
    for (int i = 0; i < DT; i++)
        o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

    for (int j = 0; j < ntiles; j++) {
        const int st = j & 1;
        if (j + 1 < ntiles) {
            int64_t kn = (int64_t)(j + 1) * RF_ATT_BK;
            s_load_tile<D>(sK + (st ^ 1) * RF_ATT_BK * LDS, Kg + kn * rs, rs, p.lk - kn, RF_ATT_BK);
            s_load_tile<D>(sV + (st ^ 1) * RF_ATT_BK * LDS, Vg + kn * rs, rs, p.lk - kn, RF_ATT_BK);
        }
        s_commit();
        s_wait1();
        __syncthreads();
        if (j == 0) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                s_ldm4(qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3],
                       sQ + (warp * 16 + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8);
        }
        const __nv_bfloat16 *cK = sK + st * RF_ATT_BK * LDS, *cV = sV + st * RF_ATT_BK * LDS;

        /* S = Q K^T for this warp's 16 rows x 64 keys. */
        float s[NT][4];
#pragma unroll
        for (int i = 0; i < NT; i++)
            s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
            for (int np = 0; np < NT / 2; np++) {
                uint32_t b0, b1, b2, b3;
                s_ldm4(b0, b1, b2, b3,
                       cK + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * LDS + kk * 16 +
                           ((lane >> 3) & 1) * 8);
                s_mma(s[2 * np], qf[kk], b0, b1);
                s_mma(s[2 * np + 1], qf[kk], b2, b3);
            }
        }

        /* Scale into log2 units; mask the key mask and the tail past lk. */
        const int64_t kb = (int64_t)j * RF_ATT_BK;
        const bool need_mask = mask != NULL || kb + RF_ATT_BK > p.lk;
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float v = s[nt][e] * p.scale_log2;
                if (need_mask) {
                    int64_t key = kb + nt * 8 + (lane & 3) * 2 + (e & 1);
                    if (key >= p.lk || (mask && !mask[key]))
                        v = -INFINITY;
                }
                s[nt][e] = v;
            }

        /* Online softmax: rows g (elements 0, 1) and g + 8 (elements 2, 3). */
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
            mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        const float mu0 = mn0 == -INFINITY ? 0.0f : mn0, mu1 = mn1 == -INFINITY ? 0.0f : mn1;
        const float c0 = exp2f(m0 - mu0), c1 = exp2f(m1 - mu1);
        m0 = mn0;
        m1 = mn1;
        float r0 = 0.0f, r1 = 0.0f;
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            s[nt][0] = exp2f(s[nt][0] - mu0);
            s[nt][1] = exp2f(s[nt][1] - mu0);
            s[nt][2] = exp2f(s[nt][2] - mu1);
            s[nt][3] = exp2f(s[nt][3] - mu1);
            r0 += s[nt][0] + s[nt][1];
            r1 += s[nt][2] + s[nt][3];
        }
        l0 = l0 * c0 + r0;
        l1 = l1 * c1 + r1;
#pragma unroll
        for (int dt = 0; dt < DT; dt++) {
            o[dt][0] *= c0;
            o[dt][1] *= c0;
            o[dt][2] *= c1;
            o[dt][3] *= c1;
        }

        /* O += P V: the S accumulators of key tiles 2ks, 2ks+1 are P's A fragment. */
#pragma unroll
        for (int ks = 0; ks < NT / 2; ks++) {
            uint32_t a[4];
            a[0] = s_pack(s[2 * ks][0], s[2 * ks][1]);
            a[1] = s_pack(s[2 * ks][2], s[2 * ks][3]);
            a[2] = s_pack(s[2 * ks + 1][0], s[2 * ks + 1][1]);
            a[3] = s_pack(s[2 * ks + 1][2], s[2 * ks + 1][3]);
#pragma unroll
            for (int dp = 0; dp < DT / 2; dp++) {
                uint32_t b0, b1, b2, b3;
                s_ldm4t(b0, b1, b2, b3,
                        cV + (ks * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LDS + dp * 16 +
                            (lane >> 4) * 8);
                s_mma(o[2 * dp], a, b0, b1);
                s_mma(o[2 * dp + 1], a, b2, b3);
            }
        }
        __syncthreads(); /* the next iteration's loads overwrite the other stage */
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    const int64_t row0 = q0 + warp * 16 + (lane >> 2), row1 = row0 + 8;
    float *O0 = p.o + ((bb * p.lq + row0) * p.h + hh) * D + (lane & 3) * 2;
    float *O1 = O0 + 8 * p.h * D;
#pragma unroll
    for (int dt = 0; dt < DT; dt++) {
        if (row0 < p.lq)
            *(float2 *)(O0 + dt * 8) = make_float2(o[dt][0] * i0, o[dt][1] * i0);
        if (row1 < p.lq)
            *(float2 *)(O1 + dt * 8) = make_float2(o[dt][2] * i1, o[dt][3] * i1);
    }
}

/* One warp per (batch, query, head), f32 throughout; masked keys are skipped. */
__global__ void s_generic(float *out, const float *q, const float *k, const float *v,
                          const uint8_t *mask, int64_t B, int64_t lq, int64_t lk, int64_t h,
                          int64_t d, float scale)
{
    const int64_t w = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (w >= B * lq * h)
        return;
    const int64_t hh = w % h, i = (w / h) % lq, bb = w / (h * lq);
    const float *qr = q + ((bb * lq + i) * h + hh) * d;
    float acc[RF_ATT_MAX_GEN / 32];
#pragma unroll
    for (int t = 0; t < RF_ATT_MAX_GEN / 32; t++)
        acc[t] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int64_t j = 0; j < lk; j++) {
        if (mask && !mask[bb * lk + j])
            continue;
        const float *kr = k + ((bb * lk + j) * h + hh) * d;
        const float *vr = v + ((bb * lk + j) * h + hh) * d;
        float dot = 0.0f;
        for (int64_t e = lane; e < d; e += 32)
            dot += qr[e] * kr[e];
        for (int off = 16; off > 0; off >>= 1)
            dot += __shfl_xor_sync(0xffffffffu, dot, off);
        float sc = dot * scale, mn = fmaxf(m, sc);
        float c = m == -INFINITY ? 0.0f : expf(m - mn), pr = expf(sc - mn);
        l = l * c + pr;
#pragma unroll
        for (int t = 0; t < RF_ATT_MAX_GEN / 32; t++)
            if (lane + 32 * t < d)
                acc[t] = acc[t] * c + pr * vr[lane + 32 * t];
        m = mn;
    }
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float *orow = out + ((bb * lq + i) * h + hh) * d;
#pragma unroll
    for (int t = 0; t < RF_ATT_MAX_GEN / 32; t++)
        if (lane + 32 * t < d)
            orow[lane + 32 * t] = acc[t] * inv;
}

static size_t s_round(size_t n)
{
    return (n + 255) / 256 * 256;
}

static size_t s_smem_bytes(int64_t d)
{
    return (size_t)(RF_ATT_BQ + 4 * RF_ATT_BK) * (size_t)(d + 8) * 2;
}

static int s_fused(const rf_cuda_ctx *c, int64_t d)
{
    return (d == 64 || d == 128) && s_smem_bytes(d) <= c->smem_optin;
}

size_t rf_cuda_scratch_attention(void *ctx, int64_t batch, int64_t lq, int64_t lk, int64_t heads,
                                 int64_t head_dim)
{
    if (!s_fused((const rf_cuda_ctx *)ctx, head_dim))
        return 0;
    size_t row = (size_t)heads * (size_t)head_dim * 2;
    return s_round((size_t)(batch * lq) * row) + 2 * s_round((size_t)(batch * lk) * row) + 1024;
}

static __nv_bfloat16 *s_take(rf_arena *a, size_t bytes)
{
    void *p = rf_arena_alloc(a, bytes + 256);
    return p ? (__nv_bfloat16 *)(((uintptr_t)p + 255) / 256 * 256) : NULL;
}

template <int D> static void s_launch(const s_params &p, int64_t B, cudaStream_t st)
{
    size_t smem = s_smem_bytes(D);
    cudaFuncSetAttribute(s_flash<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    dim3 grid((unsigned)((p.lq + RF_ATT_BQ - 1) / RF_ATT_BQ), (unsigned)p.h, (unsigned)B);
    s_flash<D><<<grid, RF_ATT_NW * 32, smem, st>>>(p);
}

int rf_cuda_attention(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                      const rf_tensor *v, const rf_tensor *key_mask, float scale, rf_arena *scratch,
                      rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    if (rc)
        return rc;
    int64_t B = q->ne[0], lq = q->ne[1], h = q->ne[2], d = q->ne[3], lk = k->ne[1];
    if (B == 0 || lq == 0 || h == 0 || d == 0)
        return 0;
    if (lk == 0) {
        cudaError_t e = cudaMemsetAsync(out->data, 0, rf_tensor_nbytes(out), c->stream);
        return e == cudaSuccess ? 0 : rf_cuda_fail(err, e, "attention (zero fill)");
    }
    if (h > 65535 || B > 65535)
        return rf_error_set(err, RF_EUNSUPPORTED,
                            "cuda attention: at most 65535 heads and batch 65535 (got %lld, %lld)",
                            (long long)h, (long long)B);
    const uint8_t *mask = key_mask ? (const uint8_t *)key_mask->data : NULL;
    if (!s_fused(c, d)) {
        if (d > RF_ATT_MAX_GEN)
            return rf_error_set(err, RF_EUNSUPPORTED,
                                "cuda attention: head_dim %lld is not supported (fused kernel: 64 "
                                "and 128; fallback: up to %d)",
                                (long long)d, RF_ATT_MAX_GEN);
        int64_t warps = B * lq * h;
        s_generic<<<(unsigned)((warps + 3) / 4), 128, 0, c->stream>>>(
            (float *)out->data, (const float *)q->data, (const float *)k->data,
            (const float *)v->data, mask, B, lq, lk, h, d, scale);
        return rf_cuda_launched(err, "attention (fallback)");
    }
    size_t need = rf_cuda_scratch_attention(ctx, B, lq, lk, h, d);
    size_t mark = scratch ? rf_arena_mark(scratch) : 0;
    size_t nq = (size_t)(B * lq * h * d), nk = (size_t)(B * lk * h * d);
    __nv_bfloat16 *qb = scratch ? s_take(scratch, nq * 2) : NULL;
    __nv_bfloat16 *kb = qb ? s_take(scratch, nk * 2) : NULL;
    __nv_bfloat16 *vb = kb ? s_take(scratch, nk * 2) : NULL;
    if (!vb) {
        if (scratch)
            rf_arena_reset(scratch, mark);
        return rf_error_set(err, RF_ENOMEM,
                            "attention: needs %zu bytes of scratch and the arena has less; size "
                            "it with rf_op_attention_scratch",
                            need);
    }
    rf_cuda_to_bf16(c->stream, (uint16_t *)qb, q->data, RF_DTYPE_F32, (int64_t)nq);
    rf_cuda_to_bf16(c->stream, (uint16_t *)kb, k->data, RF_DTYPE_F32, (int64_t)nk);
    rf_cuda_to_bf16(c->stream, (uint16_t *)vb, v->data, RF_DTYPE_F32, (int64_t)nk);
    s_params p;
    p.q = qb;
    p.k = kb;
    p.v = vb;
    p.o = (float *)out->data;
    p.mask = mask;
    p.lq = lq;
    p.lk = lk;
    p.h = h;
    p.scale_log2 = scale * 1.4426950408889634f;
    if (d == 64)
        s_launch<64>(p, B, c->stream);
    else
        s_launch<128>(p, B, c->stream);
    rf_arena_reset(scratch, mark);
    return rf_cuda_launched(err, "attention");
}
