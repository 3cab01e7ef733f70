/* op_rel_pos_bias.c - T5 relative position bias: bucket each offset, gather the table.
 *
 * y[h, r] = table[bucket(r - (lq - 1)), h] for r in [0, lq + lk - 1): row r holds the
 * bias of every (query i, key j) with j - i = r - (lq - 1), so attention_relbias reads
 * it as a Toeplitz band instead of an [H, Lq, Lk] matrix. Buckets come from
 * rf_rel_pos_bucket (the host helper in kernels/relpos.c), the same for every backend.
 * Never allocates.
 */
#include "cpu.h"

#include "../ops.h"

int rf_cpu_rel_pos_bias(void *ctx, rf_tensor *y, const rf_tensor *table, int64_t lq,
                        int bidirectional, int64_t max_distance, rf_error *err)
{
    (void)ctx;
    (void)err;
    const int64_t heads = y->ne[0], n = y->ne[1], nb = table->ne[0];
    const float *t = table->data;
    float *out = y->data;
    for (int64_t r = 0; r < n; r++) {
        int64_t b = rf_rel_pos_bucket(r - (lq - 1), nb, bidirectional, max_distance);
        for (int64_t h = 0; h < heads; h++)
            out[h * n + r] = t[b * heads + h];
    }
    return 0;
}
