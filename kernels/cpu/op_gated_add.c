/* op_gated_add.c - gated residual x += y * gate on the CPU (gate = row gate_idx of mod). */
#include "cpu.h"

typedef struct {
    float *x;
    const float *y, *mod;
    int64_t t, c, m;
    int gi;
} s_gate;

static void s_rows(void *p, int64_t r0, int64_t r1)
{
    const s_gate *G = p;
    for (int64_t r = r0; r < r1; r++) {
        const float *g = G->mod + ((r / G->t) * G->m + G->gi) * G->c;
        float *x = G->x + r * G->c;
        const float *y = G->y + r * G->c;
        for (int64_t i = 0; i < G->c; i++)
            x[i] += y[i] * g[i];
    }
}

int rf_cpu_gated_add(void *ctx, rf_tensor *x, const rf_tensor *y, const rf_tensor *mod,
                     int gate_idx, rf_error *err)
{
    (void)err;
    s_gate G = {x->data, y->data, mod->data, x->ne[1], x->ne[2], mod->ne[1], gate_idx};
    rf_cpu_parallel_range(ctx, x->ne[0] * x->ne[1], 16, s_rows, &G);
    return 0;
}
