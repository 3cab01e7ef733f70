/* bench_dit.c - the Wan DiT forward on the CPU backend beside PyTorch, SGEMM peak and TP.
 *
 * Config (issue 3): dim 512, 4 heads x 128, 8 layers, ffn 2048, latent [1,16,8,32,32] =
 * 2048 tokens, 20 text tokens (zero-padded to 512), random weights. The PyTorch peer
 * (tools/reference/bench_dit.py, same thread count, run first in the same process
 * tree) writes those weights and times the same forward; both sides count FLOPs the
 * same way (matmuls only, 2 per multiply-add). The machine's peak is a 2048^3 SGEMM
 * measured here, both through our pool and through OpenBLAS's own threads (the best
 * counts). Peak RSS is taken before that SGEMM. Then TP = 2 beside TP = 1 (same total
 * threads) as a ratio. Best of 3 timed runs after a warm-up everywhere.
 * The machine is shared: core_share is CPU seconds / (wall x threads) of the C run, and
 * the per_cpu_second line compares rates per CPU second, which other load does not skew.
 * Threads: RF_BENCH_THREADS or all cores. Without torch it says so and fails.
 */
#include "cpu/cpu.h"
#include "dit/dit_tp.h"
#include "ops.h"
#include "safetensors.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define REPEAT 3

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) this process has used, all threads. */
static double s_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static double s_parse(const char *line, const char *key)
{
    const char *k = strstr(line, key);
    return k ? atof(k + strlen(key)) : 0.0;
}

/* Matmul FLOPs of one forward, counted like tools/reference/wan_dit.py flops(). */
static double s_flops(const rf_dit_config *c, double B, double T)
{
    double d = (double)c->dim, fd = (double)c->ffn_dim, lc = (double)c->text_len;
    double P = (double)(c->patch[0] * c->patch[1] * c->patch[2]);
    double seq = 2 * T * c->in_dim * P * d + 2 * T * d * c->out_dim * P;
    seq += 2 * ((double)c->freq_dim * d + d * d + d * 6 * d);
    seq += 2 * lc * ((double)c->text_dim * d + d * d);
    double layer = 2 * T * d * d * 4 + 4 * T * T * d;
    layer += 2 * T * d * d * 2 + 2 * lc * d * d * 2 + 4 * T * lc * d;
    layer += 2 * T * d * fd * 2;
    return B * (seq + (double)c->num_layers * layer);
}

/* Best wall time of REPEAT forwards; *cpu gets the CPU seconds of that best run (on a
 * shared machine cpu / (wall x threads) shows how much of the cores the run really had). */
static double s_time_forward(rf_dit_tp *g, const float *x, const float *t, const float *ctx,
                             float *v, double *cpu, rf_error *err)
{
    if (rf_dit_tp_forward(g, 1, 8, 32, 32, x, t, ctx, 20, v, err))
        return -1;
    double best = 1e30;
    for (int r = 0; r < REPEAT; r++) {
        double t0 = s_now(), c0 = s_cpu();
        if (rf_dit_tp_forward(g, 1, 8, 32, 32, x, t, ctx, 20, v, err))
            return -1;
        double s = s_now() - t0;
        if (s < best) {
            best = s;
            if (cpu)
                *cpu = s_cpu() - c0;
        }
    }
    return best;
}

/* Writes a copy of the model at src with its matrices in BF16 into dst; 0 on success. */
static int s_write_bf16(const char *src, const char *dst)
{
    char path[600], cmd[1400];
    rf_error err = {0};
    snprintf(path, sizeof(path), "%s/diffusion_pytorch_model.safetensors", src);
    rf_safetensors *st = rf_st_open(path, &err);
    rf_st_writer *w = rf_st_writer_new();
    int rc = !st || !w;
    for (size_t i = 0; !rc && i < rf_st_count(st); i++) {
        const rf_st_tensor *t = rf_st_at(st, i);
        size_t n = rf_st_numel(t);
        if (t->ndim == 2 && t->dtype == RF_DTYPE_F32) {
            uint16_t *h = malloc(n * 2 + 2);
            for (size_t j = 0; h && j < n; j++)
                h[j] = rf_f32_to_bf16(((const float *)t->data)[j]);
            rc = !h || rf_st_writer_add(w, t->name, RF_DTYPE_BF16, t->ndim, t->shape, h, &err);
            free(h);
        } else {
            rc = rf_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &err);
        }
    }
    snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp %s/config.json %s/", dst, src, dst);
    snprintf(path, sizeof(path), "%s/diffusion_pytorch_model.safetensors", dst);
    if (!rc)
        rc = system(cmd) != 0 || rf_st_writer_write(w, path, &err);
    rf_st_writer_destroy(&w);
    rf_st_destroy(&st);
    return rc;
}

static double s_sgemm_pool_cpu; /* CPU seconds of the best pool SGEMM run */

static double s_sgemm_pool(int threads)
{
    rf_error err = {0};
    const int64_t n = 2048;
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    rf_arena *a = be ? rf_arena_new(be, 3 * (size_t)(n * n) * 4 + 4096, &err) : NULL;
    if (!a) {
        rf_backend_destroy(&be);
        return 0;
    }
    rf_tensor x, w, y;
    int64_t sh[2] = {n, n};
    rf_arena_tensor(a, &x, RF_DTYPE_F32, 2, sh, "x", &err);
    rf_arena_tensor(a, &w, RF_DTYPE_F32, 2, sh, "w", &err);
    rf_arena_tensor(a, &y, RF_DTYPE_F32, 2, sh, "y", &err);
    rf_op_fill(be, &x, 0.5f, &err);
    rf_op_fill(be, &w, 0.25f, &err);
    double best = 1e30;
    for (int r = 0; r <= REPEAT; r++) {
        double t0 = s_now(), c0 = s_cpu();
        rf_op_linear(be, &y, &x, &w, NULL, a, &err);
        double s = s_now() - t0;
        if (r > 0 && s < best) {
            best = s;
            s_sgemm_pool_cpu = s_cpu() - c0;
        }
    }
    rf_arena_destroy(&a);
    rf_backend_destroy(&be);
    return 2.0 * (double)n * (double)n * (double)n / best / 1e9;
}

static double s_sgemm_openblas(int threads)
{
    const int n = 2048;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4),
          *c = malloc((size_t)n * n * 4);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = 0.5f, b[i] = 0.25f;
    openblas_set_num_threads(threads);
    double best = 1e30;
    for (int r = 0; r <= REPEAT; r++) {
        double t0 = s_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double s = s_now() - t0;
        if (r > 0)
            best = s < best ? s : best;
    }
    openblas_set_num_threads(1);
    free(a), free(b), free(c);
    return 2.0 * (double)n * n * n / best / 1e9;
}

int main(int argc, char **argv)
{
    (void)argc;
    rf_cpu_blas_reexec(argv); /* the peer inherits OPENBLAS_CORETYPE: same kernels */
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("RF_BENCH_THREADS");
    if (env && atoi(env) > 0)
        threads = atoi(env);
    const char *py = getenv("RF_PYTHON") ? getenv("RF_PYTHON") : "/usr/bin/python3";
    char model[256], cmd[1024], line[1024];
    snprintf(model, sizeof(model), "/tmp/rf_bench_dit_%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "%s %s/tools/reference/bench_dit.py --threads %d --write-model %s",
             py, RF_SOURCE_DIR, threads, model);
    double torch_s = 0, torch_gf = 0, torch_mm = 0;
    FILE *p = popen(cmd, "r");
    while (p && fgets(line, sizeof(line), p)) {
        if (strstr(line, "torch_forward_s=")) {
            torch_s = s_parse(line, "torch_forward_s=");
            torch_gf = s_parse(line, "torch_gflops=");
            torch_mm = s_parse(line, "torch_matmul_gflops=");
        }
    }
    int prc = p ? pclose(p) : -1;
    int status = 0;
    if (prc != 0 || torch_s <= 0) {
        printf("bench_dit: the PyTorch peer failed (%s); no ratio this run\n", cmd);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", model);
        (void)!system(cmd);
        return 1;
    }
    rf_error err = {0};
    size_t nx = 16 * 8 * 32 * 32;
    float *x = malloc(nx * 4), *v = malloc(nx * 4), *ctx = malloc(20 * 4096 * 4);
    float t = 500.0f;
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    for (size_t i = 0; i < 20 * 4096; i++)
        ctx[i] = (float)((i * 40503u) % 2001) / 1000.0f - 1.0f;

    rf_dit_tp *g = rf_dit_tp_load(model, 1, threads, &err);
    double c_s = -1, c_cpu = 0, flops = 0;
    if (g && !rf_dit_tp_reserve(g, 1, 2048, &err)) {
        flops = s_flops(rf_dit_get_config(rf_dit_tp_rank(g, 0)), 1, 2048);
        c_s = s_time_forward(g, x, &t, ctx, v, &c_cpu, &err);
    }
    rf_dit_tp_destroy(&g);
    if (c_s < 0) {
        printf("bench_dit: C forward failed: %s\n", err.msg);
        status = 1;
        goto done;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0;

    double tp2_s = -1, tp2_cpu = 0;
    rf_dit_tp *g2 = rf_dit_tp_load(model, 2, threads, &err);
    if (g2 && !rf_dit_tp_reserve(g2, 1, 2048, &err))
        tp2_s = s_time_forward(g2, x, &t, ctx, v, &tp2_cpu, &err);
    rf_dit_tp_destroy(&g2);

    char model16[300];
    double bf16_s = -1, bf16_cpu = 0;
    snprintf(model16, sizeof(model16), "%s_bf16", model);
    if (s_write_bf16(model, model16) == 0) {
        rf_dit_tp *g3 = rf_dit_tp_load(model16, 1, threads, &err);
        if (g3 && !rf_dit_tp_reserve(g3, 1, 2048, &err))
            bf16_s = s_time_forward(g3, x, &t, ctx, v, &bf16_cpu, &err);
        rf_dit_tp_destroy(&g3);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", model16);
    (void)!system(cmd);

    double peak_pool = s_sgemm_pool(threads), peak_blas = s_sgemm_openblas(threads);
    double peak = peak_pool > peak_blas ? peak_pool : peak_blas;
    double c_gf = flops / c_s / 1e9;
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("bench=dit config=dim512_heads4_layers8_ffn2048_tokens2048_text20 threads=%d "
           "openblas_core=%s%s\n",
           threads, openblas_get_corename(),
           core ? " (OPENBLAS_CORETYPE set, also for torch)" : "");
    printf("c_forward_s=%.4f c_gflops=%.1f flops=%.4g peak_rss_mb=%.1f core_share=%.2f\n", c_s,
           c_gf, flops, rss_mb, c_cpu / (c_s * threads));
    printf("sgemm2048_gflops=%.1f (pool %.1f, openblas-threaded %.1f) "
           "c_fraction_of_sgemm_peak=%.2f\n",
           peak, peak_pool, peak_blas, c_gf / peak);
    printf("torch_forward_s=%.4f torch_gflops=%.1f torch_matmul_gflops=%.1f "
           "c_vs_torch_speedup=%.2f\n",
           torch_s, torch_gf, torch_mm, torch_s / c_s);
    /* Per CPU second: rates that other processes' load on the cores does not skew. */
    double pool_cpu_rate = 2.0 * 2048.0 * 2048.0 * 2048.0 / s_sgemm_pool_cpu / 1e9;
    printf("per_cpu_second: c_gflops=%.1f sgemm_gflops=%.1f c_fraction=%.2f", flops / c_cpu / 1e9,
           pool_cpu_rate, flops / c_cpu / 1e9 / pool_cpu_rate);
    if (bf16_s > 0)
        printf(" bf16_over_f32=%.2f", bf16_cpu / c_cpu);
    if (tp2_s > 0)
        printf(" tp2_over_tp1=%.2f", tp2_cpu / c_cpu);
    printf("\n");
    if (bf16_s > 0)
        printf("bf16_weights_forward_s=%.4f bf16_over_f32_time=%.2f\n", bf16_s, bf16_s / c_s);
    if (tp2_s > 0)
        printf("tp2_forward_s=%.4f tp1_forward_s=%.4f tp2_over_tp1_time=%.2f (same %d threads in "
               "total)\n",
               tp2_s, c_s, tp2_s / c_s, threads);
    else
        printf("bench_dit: TP=2 run failed: %s\n", err.msg), status = 1;
done:
    snprintf(cmd, sizeof(cmd), "rm -rf %s", model);
    (void)!system(cmd);
    free(x), free(v), free(ctx);
    return status;
}
