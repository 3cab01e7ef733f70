/* op_linear.c - y = x w^T + b on the CPU: OpenBLAS sgemm per task, our pool across tasks.
 *
 * The output is cut into column blocks (weight rows) when N is large, else into row
 * blocks; each task runs one single-threaded cblas_sgemm on its block. BF16/F16 weights
 * are converted, a panel of RF_LIN_PANEL weight rows at a time, into the task's worker
 * scratch (taken from the caller's arena), so weights stay half-size in memory and the
 * conversion costs N*K per call against M*N*K multiply-adds. Never allocates.
 */
#include "cpu.h"

#include "dtype.h"

#include <cblas.h>
#include <string.h>

#define RF_LIN_PANEL 64

typedef struct {
    float *y;
    const float *x;
    const void *w;
    const float *b;
    rf_dtype wdt;
    int64_t m, n, k;
    int64_t mchunk, nchunk; /* block sizes along M and N */
    int64_t ntn;            /* number of N blocks */
    float *scratch;         /* per worker: RF_LIN_PANEL * k floats */
} s_lin;

static void s_convert_rows(float *dst, const void *w, rf_dtype dt, int64_t r0, int64_t nr,
                           int64_t k)
{
    size_t off = (size_t)r0 * (size_t)k;
    if (dt == RF_DTYPE_BF16) {
        const uint16_t *s = (const uint16_t *)w + off;
        for (size_t i = 0; i < (size_t)(nr * k); i++) {
            uint32_t u = (uint32_t)s[i] << 16;
            memcpy(&dst[i], &u, sizeof(u));
        }
    } else {
        rf_convert_to_f32(dst, (const uint16_t *)w + off, dt, (size_t)(nr * k));
    }
}

static void s_task(void *p, int64_t t, int worker)
{
    const s_lin *L = p;
    int64_t tm = t / L->ntn, tn = t % L->ntn;
    int64_t m0 = tm * L->mchunk, m1 = m0 + L->mchunk < L->m ? m0 + L->mchunk : L->m;
    int64_t n0 = tn * L->nchunk, n1 = n0 + L->nchunk < L->n ? n0 + L->nchunk : L->n;
    if (m0 >= m1 || n0 >= n1)
        return;
    const float *xa = L->x + m0 * L->k;
    float *ya = L->y + m0 * L->n;
    if (L->wdt == RF_DTYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(m1 - m0), (int)(n1 - n0),
                    (int)L->k, 1.0f, xa, (int)L->k, (const float *)L->w + n0 * L->k, (int)L->k,
                    0.0f, ya + n0, (int)L->n);
    } else {
        float *panel = L->scratch + (size_t)worker * RF_LIN_PANEL * (size_t)L->k;
        for (int64_t p0 = n0; p0 < n1; p0 += RF_LIN_PANEL) {
            int64_t np = n1 - p0 < RF_LIN_PANEL ? n1 - p0 : RF_LIN_PANEL;
            s_convert_rows(panel, L->w, L->wdt, p0, np, L->k);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(m1 - m0), (int)np, (int)L->k,
                        1.0f, xa, (int)L->k, panel, (int)L->k, 0.0f, ya + p0, (int)L->n);
        }
    }
    if (L->b)
        for (int64_t i = m0; i < m1; i++) {
            float *row = L->y + i * L->n;
            for (int64_t j = n0; j < n1; j++)
                row[j] += L->b[j];
        }
}

size_t rf_cpu_scratch_linear(void *ctx, const rf_tensor *x, const rf_tensor *w)
{
    (void)x;
    if (w->dtype == RF_DTYPE_F32)
        return 0;
    return (size_t)rf_cpu_nthreads(ctx) * RF_LIN_PANEL * (size_t)w->ne[1] * sizeof(float) + 64;
}

int rf_cpu_linear(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                  const rf_tensor *b, rf_arena *scratch, rf_error *err)
{
    int nt = rf_cpu_nthreads(ctx);
    s_lin L = {0};
    L.y = y->data;
    L.x = x->data;
    L.w = w->data;
    L.b = b ? b->data : NULL;
    L.wdt = w->dtype;
    L.m = (int64_t)rf_tensor_rows(x);
    L.n = w->ne[0];
    L.k = w->ne[1];
    size_t mark = 0;
    if (L.m == 0 || L.n == 0)
        return 0;
    if (L.wdt != RF_DTYPE_F32) {
        size_t need = rf_cpu_scratch_linear(ctx, x, w);
        mark = scratch ? rf_arena_mark(scratch) : 0;
        L.scratch = scratch ? rf_arena_alloc(scratch, need) : NULL;
        if (!L.scratch)
            return rf_error_set(err, RF_ENOMEM,
                                "linear: %s weights need %zu bytes of scratch and the arena has "
                                "less; size it with rf_op_linear_scratch",
                                rf_dtype_name(L.wdt), need);
    }
    /* Small problems run as one task; else split the longer side into about nt blocks. */
    double flops = 2.0 * (double)L.m * (double)L.n * (double)L.k;
    int blocks = flops < 2e6 ? 1 : nt;
    if (L.n >= L.m || L.n >= 256 * blocks) {
        int64_t c = (L.n + blocks - 1) / blocks;
        L.nchunk = (c + 15) / 16 * 16;
        L.ntn = (L.n + L.nchunk - 1) / L.nchunk;
        L.mchunk = L.m;
    } else {
        L.nchunk = L.n;
        L.ntn = 1;
        L.mchunk = (L.m + blocks - 1) / blocks;
    }
    int64_t ntm = (L.m + L.mchunk - 1) / L.mchunk;
    rf_cpu_parallel(ctx, ntm * L.ntn, s_task, &L);
    if (L.scratch)
        rf_arena_reset(scratch, mark);
    return 0;
}
