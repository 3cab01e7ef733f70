/* cpu.h - the CPU backend: its constructor, its thread pool, and its op entry points.
 *
 * Compute is F32; weights may be F32, BF16 or F16 (converted panel by panel into
 * per-thread scratch inside the GEMM). Parallelism is ours: one pool of `threads`
 * threads (the caller is worker 0) splits every op into tasks. OpenBLAS is used as a
 * single-threaded GEMM kernel called from those tasks (openblas_set_num_threads(1) at
 * creation), so exactly `threads` cores are busy, results do not depend on OpenBLAS's
 * own thread heuristics, and the same thread count gives bit-identical results.
 * Nothing here allocates after rf_backend_cpu_new (scratch comes from arenas).
 */
#ifndef RF_CPU_H
#define RF_CPU_H

#include "../backend.h"

#include <stdint.h>

/* Creates a CPU backend with `threads` worker threads (0 = all online cores).
 * NULL + err when threads are out of range (1..1024) or cannot be started. */
rf_backend *rf_backend_cpu_new(int threads, rf_error *err);
/* The thread count of a CPU backend (be must be one). */
int rf_backend_cpu_threads(const rf_backend *be);
/* 1 when be is a CPU backend. */
int rf_backend_is_cpu(const rf_backend *be);

/* OpenBLAS picks its GEMM kernels at load time and misses AVX-512 on CPUs newer than it
 * (Zen 4): the hint is "SkylakeX" when that happened and OPENBLAS_CORETYPE is unset, else
 * NULL. rf_cpu_blas_reexec(argv), called first thing in main(), sets OPENBLAS_CORETYPE to
 * the hint and re-executes the program once (returns when there is nothing to do or the
 * exec failed). */
const char *rf_cpu_blas_coretype_hint(void);
void rf_cpu_blas_reexec(char **argv);

/* ---- for op implementations (kernels/cpu/op_*.c) ---- */

typedef struct rf_cpu_ctx rf_cpu_ctx;

/* Runs fn(arg, task, worker) for task = 0..ntasks-1 on the pool and returns when all
 * are done. worker is in [0, threads) and identifies per-thread scratch. Tasks must be
 * independent (any order, any thread). Never allocates. */
typedef void (*rf_cpu_task_fn)(void *arg, int64_t task, int worker);
void rf_cpu_parallel(void *ctx, int64_t ntasks, rf_cpu_task_fn fn, void *arg);
/* Runs fn(arg, r0, r1) over [0, n) cut into contiguous ranges (about 4 per thread, at
 * least min_chunk rows each). */
typedef void (*rf_cpu_range_fn)(void *arg, int64_t r0, int64_t r1);
void rf_cpu_parallel_range(void *ctx, int64_t n, int64_t min_chunk, rf_cpu_range_fn fn, void *arg);
int rf_cpu_nthreads(const void *ctx);

/* Vector math (AVX2+FMA when the CPU has it, else scalar; same contract either way). */
/* p[i] = exp(s[i] - m) for i < n (p may be s); returns the sum of the p[i]. */
float rf_cpu_exp_shift_sum(float *p, const float *s, float m, int64_t n);
/* y[i] = x[i] / (1 + exp(-k x[i] - c x[i]^3)): SiLU with k=1,c=0; GELU-tanh with
 * k = 2 sqrt(2/pi), c = k 0.044715 (since 0.5 (1 + tanh u) = sigmoid(2u)). */
void rf_cpu_sigmoid_mul(float *y, const float *x, float k, float c, int64_t n);
/* Max of n floats (n >= 1). */
float rf_cpu_max(const float *x, int64_t n);

/* Op entry points (contracts in ops.h). */
size_t rf_cpu_scratch_linear(void *ctx, const rf_tensor *x, const rf_tensor *w);
size_t rf_cpu_scratch_attention(void *ctx, int64_t batch, int64_t lq, int64_t lk, int64_t heads,
                                int64_t head_dim);
int rf_cpu_linear(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                  const rf_tensor *b, rf_arena *scratch, rf_error *err);
int rf_cpu_layer_norm(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *w,
                      const rf_tensor *b, float eps, rf_error *err);
int rf_cpu_sumsq_rows(void *ctx, rf_tensor *out, const rf_tensor *x, rf_error *err);
int rf_cpu_rms_apply(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *sumsq,
                     int64_t count, const rf_tensor *w, float eps, rf_error *err);
int rf_cpu_rope(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *cos_t,
                const rf_tensor *sin_t, rf_error *err);
int rf_cpu_attention(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                     const rf_tensor *v, const rf_tensor *key_mask, float scale, rf_arena *scratch,
                     rf_error *err);
int rf_cpu_unary(void *ctx, rf_tensor *y, const rf_tensor *x, rf_unary_op op, rf_error *err);
int rf_cpu_binary(void *ctx, rf_tensor *y, const rf_tensor *a, const rf_tensor *b, rf_binary_op op,
                  rf_error *err);
int rf_cpu_scale(void *ctx, rf_tensor *y, const rf_tensor *x, float alpha, float beta,
                 rf_error *err);
int rf_cpu_fill(void *ctx, rf_tensor *y, float value, rf_error *err);
int rf_cpu_copy(void *ctx, rf_tensor *dst, const rf_tensor *src, rf_error *err);
int rf_cpu_modulate(void *ctx, rf_tensor *y, const rf_tensor *x, const rf_tensor *mod,
                    int shift_idx, int scale_idx, rf_error *err);
int rf_cpu_gated_add(void *ctx, rf_tensor *x, const rf_tensor *y, const rf_tensor *mod,
                     int gate_idx, rf_error *err);
int rf_cpu_patchify(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                    rf_error *err);
int rf_cpu_rel_pos_bias(void *ctx, rf_tensor *y, const rf_tensor *table, int64_t lq,
                        int bidirectional, int64_t max_distance, rf_error *err);
size_t rf_cpu_scratch_attention_relbias(void *ctx, int64_t head_dim);
int rf_cpu_attention_relbias(void *ctx, rf_tensor *out, const rf_tensor *q, const rf_tensor *k,
                             const rf_tensor *v, const rf_tensor *key_mask, const rf_tensor *rel,
                             float scale, rf_arena *scratch, rf_error *err);
int rf_cpu_unpatchify(void *ctx, rf_tensor *y, const rf_tensor *x, int pt, int ph, int pw,
                      rf_error *err);
size_t rf_cpu_scratch_conv3d(void *ctx, const rf_tensor *y, const rf_tensor *w,
                             const rf_conv3d_params *p);
int rf_cpu_conv3d(void *ctx, rf_tensor *y, const rf_tensor *prev, const rf_tensor *x,
                  const rf_tensor *w, const rf_tensor *b, const rf_conv3d_params *p,
                  rf_arena *scratch, rf_error *err);

#endif
