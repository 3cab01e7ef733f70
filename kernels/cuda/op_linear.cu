/* op_linear.cu - y = x w^T + b on the GPU: cuBLASLt bf16 GEMM, f32 accumulate, bias epilogue.
 *
 * Row-major y[M,N] = x[M,K] w[N,K]^T is, in cuBLASLt's column-major terms, D[N,M] =
 * op(A) B with A = w seen as a K x N matrix (transposed), B = x seen as K x M, D = y
 * seen as N x M; the bias is a per-row vector of D, which is exactly what the BIAS
 * epilogue adds. x (F32) is converted to bf16 into scratch, in chunks of rows when the
 * arena is short, so the scratch does not have to scale with the token count; weights
 * are used as they are when BF16 (loaders store them so on this backend), else
 * converted per call into scratch. Plans (descriptors + algorithm from the heuristic)
 * are cached per (M, N, K, bias, alignment); the workspace was allocated at creation.
 * Never allocates device memory.
 */
#include "cuda_internal.cuh"

#include <string.h>

#define RF_LIN_CHUNK_ROWS 32768

static unsigned s_align(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    unsigned al = 256;
    while (al > 2 && (a % al) != 0)
        al >>= 1;
    return al;
}

static size_t s_round(size_t n)
{
    return (n + 255) / 256 * 256;
}

void rf_cuda_linear_release(rf_cuda_ctx *c)
{
    for (int i = 0; i < RF_CUDA_LT_PLANS; i++) {
        rf_cuda_lt_plan *p = &c->plans[i];
        if (!p->used)
            continue;
        cublasLtMatrixLayoutDestroy(p->la);
        cublasLtMatrixLayoutDestroy(p->lb);
        cublasLtMatrixLayoutDestroy(p->lc);
        cublasLtMatmulDescDestroy(p->desc);
        p->used = 0;
    }
}

static int s_lt_fail(rf_error *err, cublasStatus_t st, const char *what, int64_t m, int64_t n,
                     int64_t k)
{
    return rf_error_set(err, RF_EIO,
                        "cuda linear: %s failed (cuBLAS status %d) for M=%lld N=%lld K=%lld", what,
                        (int)st, (long long)m, (long long)n, (long long)k);
}

#define LT(call, what)                               \
    do {                                             \
        cublasStatus_t st_ = (call);                 \
        if (st_ != CUBLAS_STATUS_SUCCESS) {          \
            rc = s_lt_fail(err, st_, what, m, n, k); \
            goto fail;                               \
        }                                            \
    } while (0)

static int s_plan(rf_cuda_ctx *c, int64_t m, int64_t n, int64_t k, int bias, unsigned align,
                  rf_cuda_lt_plan **out, rf_error *err)
{
    for (int i = 0; i < RF_CUDA_LT_PLANS; i++) {
        rf_cuda_lt_plan *p = &c->plans[i];
        if (p->used && p->m == m && p->n == n && p->k == k && p->bias == bias &&
            p->align == align) {
            *out = p;
            return 0;
        }
    }
    rf_cuda_lt_plan *p = &c->plans[c->next_plan];
    c->next_plan = (c->next_plan + 1) % RF_CUDA_LT_PLANS;
    if (p->used) {
        cublasLtMatrixLayoutDestroy(p->la);
        cublasLtMatrixLayoutDestroy(p->lb);
        cublasLtMatrixLayoutDestroy(p->lc);
        cublasLtMatmulDescDestroy(p->desc);
    }
    memset(p, 0, sizeof(*p));
    int rc = 0;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    int32_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
    uint64_t ws = c->lt_workspace_bytes;
    uint32_t al = align;
    LT(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
    LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof(opT)),
       "setting TRANSA");
    LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof(opN)),
       "setting TRANSB");
    if (bias) {
        int32_t epi = CUBLASLT_EPILOGUE_BIAS, bt = CUDA_R_32F;
        LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                          sizeof(epi)),
           "setting the bias epilogue");
        LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt,
                                          sizeof(bt)),
           "setting the bias dtype");
    }
    LT(cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16BF, (uint64_t)k, (uint64_t)n, k), "layout A");
    LT(cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16BF, (uint64_t)k, (uint64_t)m, k), "layout B");
    LT(cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, (uint64_t)n, (uint64_t)m, n), "layout C");
    LT(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                            sizeof(ws)),
       "setting the workspace size");
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al,
                                            sizeof(al)),
       "setting alignment A");
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al,
                                            sizeof(al)),
       "setting alignment B");
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al,
                                            sizeof(al)),
       "setting alignment C");
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al,
                                            sizeof(al)),
       "setting alignment D");
    LT(cublasLtMatmulAlgoGetHeuristic(c->lt, p->desc, p->la, p->lb, p->lc, p->lc, pref, 1, &res,
                                      &found),
       "AlgoGetHeuristic");
    if (found < 1) {
        rc = rf_error_set(err, RF_EUNSUPPORTED,
                          "cuda linear: cuBLASLt has no bf16 algorithm for M=%lld N=%lld K=%lld "
                          "(alignment %u bytes)",
                          (long long)m, (long long)n, (long long)k, align);
        goto fail;
    }
    cublasLtMatmulPreferenceDestroy(pref);
    p->algo = res.algo;
    p->m = m;
    p->n = n;
    p->k = k;
    p->bias = bias;
    p->align = align;
    p->used = 1;
    *out = p;
    return 0;
fail:
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (p->la)
        cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb)
        cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc)
        cublasLtMatrixLayoutDestroy(p->lc);
    if (p->desc)
        cublasLtMatmulDescDestroy(p->desc);
    memset(p, 0, sizeof(*p));
    return rc;
}

size_t rf_cuda_scratch_linear(void *ctx, const rf_tensor *x, const rf_tensor *w)
{
    (void)ctx;
    size_t rows = rf_tensor_rows(x), k = (size_t)w->ne[1];
    if (rows > RF_LIN_CHUNK_ROWS)
        rows = RF_LIN_CHUNK_ROWS;
    size_t s = s_round(rows * k * 2) + 256;
    if (w->dtype != RF_DTYPE_BF16)
        s += s_round((size_t)w->ne[0] * k * 2) + 256;
    return s;
}

static void *s_take(rf_arena *a, size_t bytes)
{
    /* 256-byte alignment so cuBLASLt can use its widest loads. */
    void *p = rf_arena_alloc(a, bytes + 256);
    if (!p)
        return NULL;
    return (void *)(((uintptr_t)p + 255) / 256 * 256);
}

int rf_cuda_linear(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                   const rf_tensor *b, rf_arena *scratch, rf_error *err)
{
    rf_cuda_ctx *c = (rf_cuda_ctx *)ctx;
    int rc = rf_cuda_bind(c, err);
    if (rc)
        return rc;
    int64_t m = (int64_t)rf_tensor_rows(x), n = w->ne[0], k = w->ne[1];
    if (m == 0 || n == 0)
        return 0;
    if (k == 0) { /* empty sum: y = b or 0 */
        if (b)
            for (int64_t r = 0; r < m; r++) {
                cudaError_t e =
                    cudaMemcpyAsync((float *)y->data + r * n, b->data, (size_t)n * sizeof(float),
                                    cudaMemcpyDeviceToDevice, c->stream);
                if (e != cudaSuccess)
                    return rf_cuda_fail(err, e, "linear (bias copy)");
            }
        else if (cudaMemsetAsync(y->data, 0, rf_tensor_nbytes(y), c->stream) != cudaSuccess)
            return rf_cuda_fail(err, cudaGetLastError(), "linear (zero fill)");
        return 0;
    }
    if (!scratch)
        return rf_error_set(err, RF_ENOMEM,
                            "cuda linear: needs a scratch arena (rf_op_linear_scratch)");
    size_t mark = rf_arena_mark(scratch);
    const uint16_t *wb = (const uint16_t *)w->data;
    if (w->dtype != RF_DTYPE_BF16) {
        uint16_t *tmp = (uint16_t *)s_take(scratch, (size_t)(n * k) * 2);
        if (!tmp) {
            rf_arena_reset(scratch, mark);
            return rf_error_set(err, RF_ENOMEM,
                                "cuda linear: %s weights [%lld,%lld] need %zu bytes of scratch to "
                                "become bf16 and the arena is short; load them as BF16 or size "
                                "the arena with rf_op_linear_scratch",
                                rf_dtype_name(w->dtype), (long long)n, (long long)k,
                                (size_t)(n * k) * 2);
        }
        rf_cuda_to_bf16(c->stream, tmp, w->data, w->dtype, n * k);
        wb = tmp;
    }
    /* Rows per chunk: as many as the arena holds, at most RF_LIN_CHUNK_ROWS. */
    size_t avail = rf_arena_capacity(scratch) - rf_arena_mark(scratch);
    int64_t mc = avail > 1024 ? (int64_t)((avail - 1024) / ((size_t)k * 2)) : 0;
    if (mc > RF_LIN_CHUNK_ROWS)
        mc = RF_LIN_CHUNK_ROWS;
    if (mc > m)
        mc = m;
    uint16_t *xb = mc > 0 ? (uint16_t *)s_take(scratch, (size_t)(mc * k) * 2) : NULL;
    if (!xb) {
        rf_arena_reset(scratch, mark);
        return rf_error_set(err, RF_ENOMEM,
                            "cuda linear: x [%lld,%lld] needs at least %lld bytes of scratch for "
                            "its bf16 copy and the arena is short; size it with "
                            "rf_op_linear_scratch",
                            (long long)m, (long long)k, (long long)(k * 2 + 512));
    }
    float alpha = 1.0f, beta = 0.0f;
    for (int64_t r0 = 0; r0 < m && rc == 0; r0 += mc) {
        int64_t rows = m - r0 < mc ? m - r0 : mc;
        float *yd = (float *)y->data + r0 * n;
        rf_cuda_to_bf16(c->stream, xb, (const float *)x->data + r0 * k, RF_DTYPE_F32, rows * k);
        unsigned al = s_align(wb);
        unsigned a2 = s_align(xb), a3 = s_align(yd);
        al = a2 < al ? a2 : al;
        al = a3 < al ? a3 : al;
        rf_cuda_lt_plan *p = NULL;
        rc = s_plan(c, rows, n, k, b != NULL, al, &p, err);
        if (rc)
            break;
        if (b) {
            const void *bp = b->data;
            cublasStatus_t st = cublasLtMatmulDescSetAttribute(
                p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof(bp));
            if (st != CUBLAS_STATUS_SUCCESS) {
                rc = s_lt_fail(err, st, "setting the bias pointer", rows, n, k);
                break;
            }
        }
        cublasStatus_t st =
            cublasLtMatmul(c->lt, p->desc, &alpha, wb, p->la, xb, p->lb, &beta, yd, p->lc, yd,
                           p->lc, &p->algo, c->lt_workspace, c->lt_workspace_bytes, c->stream);
        if (st != CUBLAS_STATUS_SUCCESS)
            rc = s_lt_fail(err, st, "cublasLtMatmul", rows, n, k);
    }
    rf_arena_reset(scratch, mark);
    if (rc == 0)
        rc = rf_cuda_launched(err, "linear");
    return rc;
}
