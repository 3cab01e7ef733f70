/* op_patchify.c - [B, C, F, H, W] volume -> [B, T, C*pt*ph*pw] patch tokens on the CPU.
 *
 * Tokens are (f, h, w) with f slowest; a token's vector is (c, kt, kh, kw) with c
 * slowest, the flattening of a Conv3d weight, so the patch embedding is one linear.
 */
#include "cpu.h"

int rf_cpu_patchify(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                    rf_error *err)
{
    (void)ctx;
    (void)err;
    const float *src = x->data;
    float *dst = y->data;
    int64_t B = x->ne[0], C = x->ne[1], F = x->ne[2], H = x->ne[3], W = x->ne[4];
    int64_t gf = F / pt, gh = H / ph, gw = W / pw, vec = C * pt * ph * pw;
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < gf; f++)
            for (int64_t h = 0; h < gh; h++)
                for (int64_t w = 0; w < gw; w++) {
                    float *o = dst + ((b * gf + f) * gh * gw + h * gw + w) * vec;
                    for (int64_t c = 0; c < C; c++)
                        for (int kt = 0; kt < pt; kt++)
                            for (int kh = 0; kh < ph; kh++)
                                for (int kw = 0; kw < pw; kw++)
                                    *o++ = src[(((b * C + c) * F + f * pt + kt) * H + h * ph + kh) *
                                                   W +
                                               w * pw + kw];
                }
    return 0;
}
