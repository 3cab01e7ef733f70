/* op_unpatchify.c - [B, T, pt*ph*pw*C] tokens -> [B, C, F, H, W] volume on the CPU.
 *
 * The inverse layout of Wan's head: within a token the CHANNEL is fastest,
 * index ((kt*ph + kh)*pw + kw)*C + c (unlike patchify's c-slowest input order).
 */
#include "cpu.h"

int rf_cpu_unpatchify(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                      rf_error *err)
{
    (void)ctx;
    (void)err;
    const float *src = x->data;
    float *dst = y->data;
    int64_t B = y->ne[0], C = y->ne[1], F = y->ne[2], H = y->ne[3], W = y->ne[4];
    int64_t gf = F / pt, gh = H / ph, gw = W / pw, vec = C * pt * ph * pw;
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < gf; f++)
            for (int64_t h = 0; h < gh; h++)
                for (int64_t w = 0; w < gw; w++) {
                    const float *t = src + ((b * gf + f) * gh * gw + h * gw + w) * vec;
                    for (int kt = 0; kt < pt; kt++)
                        for (int kh = 0; kh < ph; kh++)
                            for (int kw = 0; kw < pw; kw++)
                                for (int64_t c = 0; c < C; c++)
                                    dst[(((b * C + c) * F + f * pt + kt) * H + h * ph + kh) * W +
                                        w * pw + kw] = *t++;
                }
    return 0;
}
