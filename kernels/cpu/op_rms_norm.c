/* op_rms_norm.c - RMSNorm on the CPU in its two halves: row sums of squares, then apply.
 *
 * Split so that tensor parallelism can all-reduce the partial sums between the halves
 * (a rank holds a slice of each row). Sums accumulate in double. Rows split across the pool.
 */
#include "cpu.h"

#include <math.h>

typedef struct {
    float *y;
    const float *x, *ss, *w;
    int64_t c, count;
    float eps;
} s_rms;

static void s_sumsq(void *p, int64_t r0, int64_t r1)
{
    const s_rms *R = p;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = R->x + r * R->c;
        double s = 0.0;
        for (int64_t i = 0; i < R->c; i++)
            s += (double)x[i] * x[i];
        R->y[r] = (float)s;
    }
}

static void s_apply(void *p, int64_t r0, int64_t r1)
{
    const s_rms *R = p;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = R->x + r * R->c;
        float *y = R->y + r * R->c;
        float inv = (float)(1.0 / sqrt((double)R->ss[r] / (double)R->count + (double)R->eps));
        for (int64_t i = 0; i < R->c; i++)
            y[i] = R->w ? (x[i] * inv) * R->w[i] : x[i] * inv;
    }
}

int rf_cpu_sumsq_rows(void *ctx, rf_tensor *out, const rf_tensor *x, rf_error *err)
{
    (void)err;
    s_rms R = {out->data, x->data, NULL, NULL, x->ne[x->ndim - 1], 0, 0.0f};
    rf_cpu_parallel_range(ctx, (int64_t)rf_tensor_rows(x), 16, s_sumsq, &R);
    return 0;
}

int rf_cpu_rms_apply(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *sumsq,
                     int64_t count, const rf_tensor *w, float eps, rf_error *err)
{
    (void)err;
    s_rms R = {y->data, x->data, sumsq->data, w ? w->data : NULL, x->ne[x->ndim - 1], count, eps};
    rf_cpu_parallel_range(ctx, (int64_t)rf_tensor_rows(x), 16, s_apply, &R);
    return 0;
}
