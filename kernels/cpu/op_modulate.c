/* op_modulate.c - adaLN modulation y = x (1 + scale) + shift on the CPU.
 *
 * shift and scale are rows shift_idx and scale_idx of mod [B, M, C] for each batch
 * element; tokens split across the pool.
 */
#include "cpu.h"

typedef struct {
    float *y;
    const float *x, *mod;
    int64_t t, c, m;
    int si, ci;
} s_mod;

static void s_rows(void *p, int64_t r0, int64_t r1)
{
    const s_mod *M = p;
    for (int64_t r = r0; r < r1; r++) {
        int64_t b = r / M->t;
        const float *sh = M->mod + (b * M->m + M->si) * M->c;
        const float *sc = M->mod + (b * M->m + M->ci) * M->c;
        const float *x = M->x + r * M->c;
        float *y = M->y + r * M->c;
        for (int64_t i = 0; i < M->c; i++)
            y[i] = x[i] * (1.0f + sc[i]) + sh[i];
    }
}

int rf_cpu_modulate(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *mod,
                    int shift_idx, int scale_idx, rf_error *err)
{
    (void)err;
    s_mod M = {y->data, x->data, mod->data, x->ne[1], x->ne[2], mod->ne[1], shift_idx, scale_idx};
    rf_cpu_parallel_range(ctx, x->ne[0] * x->ne[1], 16, s_rows, &M);
    return 0;
}
