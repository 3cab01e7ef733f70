/* ops.h - the op API: what the models call; each call dispatches through a backend table.
 *
 * Every op checks its arguments here, once, for every backend: shapes, dtypes and
 * aliasing, with an RF_ESHAPE error naming the op and the shapes ("linear: w is [64,32]
 * F32 but x has 48 columns"). Then it calls the backend's entry (backend.h). Ops never
 * allocate: outputs are tensors the caller made (usually from an arena), and ops that
 * need scratch take an arena sized with the matching rf_op_*_scratch query.
 * All activations are F32. "[..., C]" means any leading dims, C the last dim.
 */
#ifndef RF_OPS_H
#define RF_OPS_H

#include "arena.h"
#include "backend.h"
#include "error.h"
#include "tensor.h"

/* y[..., N] = x[..., K] w[N, K]^T + b[N].  x, y F32; w F32, BF16 or F16 (PyTorch Linear
 * layout); b F32 [N] or NULL. x and y have the same leading dims; y must not alias x.
 * Scratch: rf_op_linear_scratch bytes (nonzero for BF16/F16 weights). */
int rf_op_linear(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                 const rf_tensor *b, rf_arena *scratch, rf_error *err);
size_t rf_op_linear_scratch(rf_backend *be, const rf_tensor *x, const rf_tensor *w);

/* LayerNorm over the last dim: y = (x - mean) / sqrt(var + eps) * w + b, var biased.
 * w and b F32 [C], each may be NULL (no affine). y may be x. */
int rf_op_layer_norm(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                     const rf_tensor *b, float eps, rf_error *err);

/* RMSNorm over the last dim: y = x * rsqrt(mean(x^2) + eps) * w (w F32 [C] or NULL).
 * Implemented as rf_op_sumsq_rows then rf_op_rms_apply; y may be x. `sumsq` is an F32
 * tensor with one element per row (the caller's scratch). */
int rf_op_rms_norm(rf_backend *be, rf_tensor *y, const rf_tensor *x, rf_tensor *sumsq,
                   const rf_tensor *w, float eps, rf_error *err);
/* out[r] = sum_c x[r, c]^2 (accumulated in double), one F32 per row of x. */
int rf_op_sumsq_rows(rf_backend *be, rf_tensor *out, const rf_tensor *x, rf_error *err);
/* y = x * rsqrt(sumsq[r] / count + eps) * w. count is the FULL row length (under tensor
 * parallelism x holds a slice of the row and sumsq was all-reduced). y may be x. */
int rf_op_rms_apply(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *sumsq,
                    int64_t count, const rf_tensor *w, float eps, rf_error *err);

/* Rotary embedding: x, y [B, T, H, D] F32, D even; cos_t, sin_t [T, D/2] (F64 or F32).
 * Pair (2i, 2i+1) of token t becomes (a c - b s, a s + b c) with c = cos_t[t, i],
 * s = sin_t[t, i], computed in double. y may be x. (3D tables: rf_rope3d_tables.) */
int rf_op_rope(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *cos_t,
               const rf_tensor *sin_t, rf_error *err);
/* Fills host arrays cos_t/sin_t [T, D/2] (T = f*h*w tokens, f slowest) with the Wan 3D
 * rotary tables in float64: pairs [0, p0) rotate by the frame index, [p0, p0+p1) by the
 * row, the rest by the column, where p1 = p2 = (D/2)/3 and p0 = D/2 - 2 p1; axis a with
 * d_a = 2 p_a uses w_j = theta^(-2j / d_a). Host-side helper, no backend involved. */
void rf_rope3d_tables(double *cos_t, double *sin_t, int64_t f, int64_t h, int64_t w,
                      int64_t head_dim, double theta);

/* Attention, non-causal: out[b,i,h,:] = softmax_j(scale q[b,i,h,:].k[b,j,h,:]) v[b,j,h,:].
 * q, out [B, Lq, H, D]; k, v [B, Lk, H, D]; all F32; any D. key_mask U8 [B, Lk] or NULL
 * (0 = key ignored; a query whose keys are all masked gets zeros). Computed in blocks with
 * an online softmax: memory O(tokens x D), never O(Lq x Lk). out must not alias q, k, v.
 * Scratch: rf_op_attention_scratch bytes. */
int rf_op_attention(rf_backend *be, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                    const rf_tensor *v, const rf_tensor *key_mask, float scale, rf_arena *scratch,
                    rf_error *err);
size_t rf_op_attention_scratch(rf_backend *be, int64_t batch, int64_t lq, int64_t lk, int64_t heads,
                               int64_t head_dim);

/* y = f(x) elementwise (GELU-tanh, GELU-erf, SiLU); same numel, F32; y may be x. */
int rf_op_unary(rf_backend *be, rf_tensor *y, const rf_tensor *x, rf_unary_op op, rf_error *err);
/* y = a (op) b. b has a's shape, or a's trailing dims (repeated over the leading ones:
 * e.g. a [B,T,C], b [C]). F32; y has a's shape; y may be a. */
int rf_op_binary(rf_backend *be, rf_tensor *y, const rf_tensor *a, const rf_tensor *b,
                 rf_binary_op op, rf_error *err);
/* y = alpha x + beta; same numel, F32; y may be x. */
int rf_op_scale(rf_backend *be, rf_tensor *y, const rf_tensor *x, float alpha, float beta,
                rf_error *err);
/* Sets every element of y (F32) to value. */
int rf_op_fill(rf_backend *be, rf_tensor *y, float value, rf_error *err);
/* dst = src converted between F32, BF16 and F16 (round to nearest even); same numel. */
int rf_op_copy(rf_backend *be, rf_tensor *dst, const rf_tensor *src, rf_error *err);

/* Modulation (adaLN): x, y [B, T, C]; mod [B, M, C] (M >= 1, F32):
 * y[b,t,:] = x[b,t,:] * (1 + mod[b,scale_idx,:]) + mod[b,shift_idx,:]. y may be x. */
int rf_op_modulate(rf_backend *be, rf_tensor *y, const rf_tensor *x, const rf_tensor *mod,
                   int shift_idx, int scale_idx, rf_error *err);
/* Gated residual: x[b,t,:] += y[b,t,:] * mod[b,gate_idx,:]; x, y [B, T, C]. */
int rf_op_gated_add(rf_backend *be, rf_tensor *x, const rf_tensor *y, const rf_tensor *mod,
                    int gate_idx, rf_error *err);

/* Patchify: x [B, C, F, H, W] -> y [B, T, C*pt*ph*pw], T = (F/pt)(H/ph)(W/pw) tokens
 * (frame slowest, then row, then column); a token's vector is ordered (c, kt, kh, kw)
 * with c slowest (a Conv3d weight [N, C, pt, ph, pw] flattened to [N, C*pt*ph*pw]). */
int rf_op_patchify(rf_backend *be, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                   rf_error *err);
/* Unpatchify: x [B, T, pt*ph*pw*C] with the CHANNEL FASTEST ((kt*ph + kh)*pw + kw)*C + c
 * -> y [B, C, F, H, W]. */
int rf_op_unpatchify(rf_backend *be, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                     rf_error *err);

/* T5 relative position buckets of offset rel = key - query: half the buckets per
 * direction when bidirectional, exact below num_buckets/4 (/2 one-way), then logarithmic
 * up to max_distance, then the last bucket (T5 / umT5; host helper, kernels/relpos.c). */
int64_t rf_rel_pos_bucket(int64_t rel, int64_t num_buckets, int bidirectional,
                          int64_t max_distance);
/* Relative position bias band: table [NB, H] F32 (an Embedding(num_buckets, heads)
 * weight), y [H, N] F32 with N = lq + lk - 1 >= lq >= 1:
 * y[h, r] = table[rf_rel_pos_bucket(r - (lq - 1), NB, bidirectional, max_distance), h],
 * i.e. the bias of query i and key j sits at r = j - i + lq - 1. NB >= 4 (>= 2 one-way)
 * and max_distance > the exact range. */
int rf_op_rel_pos_bias(rf_backend *be, rf_tensor *y, const rf_tensor *table, int64_t lq,
                       int bidirectional, int64_t max_distance, rf_error *err);
/* rf_op_attention with an additive relative bias: logits[b,h,i,j] = scale q.k +
 * rel[h, j - i + Lq - 1] (rel F32 [H, Lq + Lk - 1], from rf_op_rel_pos_bias), then the
 * key mask and softmax as in rf_op_attention. T5 uses scale 1. Scratch:
 * rf_op_attention_relbias_scratch bytes. */
int rf_op_attention_relbias(rf_backend *be, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                            const rf_tensor *v, const rf_tensor *key_mask, const rf_tensor *rel,
                            float scale, rf_arena *scratch, rf_error *err);
size_t rf_op_attention_relbias_scratch(rf_backend *be, int64_t head_dim);
/* 3D convolution, channel-last, no time padding (Wan-VAE convs). The input is the time
 * concatenation of prev [Tp, H, W, Cin] (NULL: none; a causal conv passes its cache of
 * kt-1 frames) and x [Tx, H, W, Cin]. w [Cout, kt, kh, kw, Cin] F32: a PyTorch Conv3d
 * weight [Cout, Cin, kt, kh, kw] with Cin moved last (a Conv2d weight has kt = 1).
 * b F32 [Cout] or NULL. With p->up2 each input frame is first upsampled x2 (nearest).
 * y [To, Ho, Wo, Cout]: To = (Tp + Tx - kt) / st + 1, Ho = (H' + pad_top + pad_bottom -
 * kh) / sh + 1 with H' = H (2H with up2), Wo likewise; all F32; y must not alias prev or
 * x. Scratch: rf_op_conv3d_scratch bytes (0 for 1x1x1 stride-1 unpadded convs). */
int rf_op_conv3d(rf_backend *be, rf_tensor *y, const rf_tensor *prev, const rf_tensor *x,
                 const rf_tensor *w, const rf_tensor *b, const rf_conv3d_params *p,
                 rf_arena *scratch, rf_error *err);
size_t rf_op_conv3d_scratch(rf_backend *be, const rf_tensor *y, const rf_tensor *w,
                            const rf_conv3d_params *p);

#endif
