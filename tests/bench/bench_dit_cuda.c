/* bench_dit_cuda.c - the Wan DiT forward on one GPU beside PyTorch on the same GPU.
 *
 * Shape (issue 10): Wan2.1-1.3B, dim 1536, 12 heads x 128, 30 layers, ffn 8960, latent
 * [2,16,21,60,104] = 2 x 32,760 tokens (batch 2: CFG), 512 text rows, random weights.
 * The PyTorch peer (tools/gpu/dit_torch_peer.py, run first, in the same process tree)
 * makes the random bf16 weights, writes them as a model folder that we load, and times
 * its own forward (fused SDPA attention), SDPA alone and a bf16 GEMM. Here: the bf16
 * GEMM peak through cuBLASLt (8192^3, random data), the forward (best of 3 after a
 * warm-up; FLOPs counted like wan_dit.flops: matmuls only, about 283 TFLOP per batch
 * element), MFU against that peak, our attention op alone, peak device memory; then one
 * table with the ratios. Env: RF_PYTHON (the peer's interpreter, default python3),
 * RF_BENCH_DIR (model folder, default /tmp/rf-dit-1.3b), RF_BENCH_LAYERS (30),
 * RF_GPU_RESULTS (also append the table to this file). Without a GPU it says so and
 * exits 0 (nothing to measure); a failure on a GPU exits 1.
 */
#include "arena.h"
#include "dit/dit_tp.h"
#include "ops.h"
#include "registry.h"
#ifdef RF_HAVE_CUDA
#include "cuda/backend_cuda.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPEAT 3

#ifdef RF_HAVE_CUDA

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

static uint64_t s_rng = 0x853C49E6748FEA9Bull;

static float s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (float)((double)(s_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *s_randv(size_t n)
{
    float *p = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; p && i < n; i++)
        p[i] = s_rand();
    return p;
}

/* Our attention op alone on [B, T, H, D] random q, k, v: seconds per call (device time). */
static double s_attention(rf_backend *be, int64_t B, int64_t T, int64_t H, int64_t D, rf_error *err)
{
    int64_t sh[4] = {B, T, H, D};
    size_t n = (size_t)(B * T * H * D);
    size_t bytes = 4 * rf_arena_tensor_bytes(RF_DTYPE_F32, 4, sh) +
                   rf_op_attention_scratch(be, B, T, T, H, D) + 4096;
    rf_arena *a = rf_arena_new(be, bytes, err);
    if (!a)
        return -1;
    rf_tensor q, k, v, o;
    double best = -1;
    float *host = s_randv(n);
    if (!host || rf_arena_tensor(a, &q, RF_DTYPE_F32, 4, sh, "q", err) ||
        rf_arena_tensor(a, &k, RF_DTYPE_F32, 4, sh, "k", err) ||
        rf_arena_tensor(a, &v, RF_DTYPE_F32, 4, sh, "v", err) ||
        rf_arena_tensor(a, &o, RF_DTYPE_F32, 4, sh, "o", err) ||
        rf_tensor_upload(be, &q, host, n * 4, err) || rf_tensor_upload(be, &k, host, n * 4, err) ||
        rf_tensor_upload(be, &v, host, n * 4, err))
        goto done;
    float scale = 1.0f / sqrtf((float)D);
    if (rf_op_attention(be, &o, &q, &k, &v, NULL, scale, a, err))
        goto done;
    for (int r = 0; r < REPEAT; r++) {
        if (rf_cuda_timer_start(be, err) ||
            rf_op_attention(be, &o, &q, &k, &v, NULL, scale, a, err))
            goto done;
        double s = rf_cuda_timer_stop(be, err);
        if (s < 0)
            goto done;
        best = best < 0 || s < best ? s : best;
    }
done:
    free(host);
    rf_arena_destroy(&a);
    return best;
}

static int s_run(void)
{
    rf_error err = {0};
    char name[256], line[1024] = "", dir[1024];
    rf_backend *be = rf_backend_open("cuda", 0, 0, &err);
    if (!be) {
        printf("bench_dit_cuda: skipped: %s\n", err.msg);
        return 0;
    }
    rf_cuda_device_name(0, name, sizeof(name));
    const char *py = getenv("RF_PYTHON") ? getenv("RF_PYTHON") : "python3";
    const char *bd = getenv("RF_BENCH_DIR") ? getenv("RF_BENCH_DIR") : "/tmp/rf-dit-1.3b";
    int layers = getenv("RF_BENCH_LAYERS") ? atoi(getenv("RF_BENCH_LAYERS")) : 30;
    const int64_t B = 2, F = 21, H = 60, W = 104;
    snprintf(dir, sizeof(dir), "%s", bd);

    /* 1. the bf16 GEMM peak */
    double gs = rf_cuda_bench_gemm(be, 8192, 20, &err);
    if (gs < 0) {
        fprintf(stderr, "bench_dit_cuda: %s\n", err.msg);
        return 1;
    }
    double peak = 2.0 * 8192.0 * 8192.0 * 8192.0 / gs / 1e12;
    printf("bench_dit_cuda: %s; bf16 GEMM 8192^3 (cuBLASLt): %.1f TFLOP/s\n", name, peak);

    /* 2. our attention alone (self-attention shape of the forward) */
    double as = s_attention(be, B, F * H * W / 4, 12, 128, &err);
    if (as < 0) {
        fprintf(stderr, "bench_dit_cuda: attention: %s\n", err.msg);
        return 1;
    }
    double aflops = 4.0 * B * (double)(F * H * W / 4) * (double)(F * H * W / 4) * 1536.0;
    rf_backend_destroy(&be);

    /* 3. the peer: writes the model, times PyTorch */
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "%s %s/tools/gpu/dit_torch_peer.py --write-model %s --layers %d --batch %lld "
             "--latent %lld %lld %lld",
             py, RF_SOURCE_DIR, dir, layers, (long long)B, (long long)F, (long long)H,
             (long long)W);
    printf("bench_dit_cuda: peer: %s\n", cmd);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    char buf[1024];
    while (p && fgets(buf, sizeof(buf), p))
        if (!strncmp(buf, "torch_peer:", 11))
            snprintf(line, sizeof(line), "%s", buf);
    int prc = p ? pclose(p) : -1;
    if (prc != 0 || !strstr(line, "forward_s=")) {
        fprintf(stderr, "bench_dit_cuda: the PyTorch peer failed (status %d): %s\n", prc,
                line[0] ? line : "(no output)");
        return 1;
    }
    printf("bench_dit_cuda: %s", line);

    /* 4. our forward */
    rf_dit_tp_opts o = {"cuda", 1, 0, NULL};
    double t0 = s_now();
    rf_dit_tp *g = rf_dit_tp_open(dir, &o, &err);
    if (!g) {
        fprintf(stderr, "bench_dit_cuda: loading %s: %s\n", dir, err.msg);
        return 1;
    }
    double load_s = s_now() - t0;
    const rf_dit_config *c = rf_dit_get_config(rf_dit_tp_rank(g, 0));
    int64_t T = F * H * W / 4;
    size_t nx = (size_t)(B * 16 * F * H * W), nc = (size_t)(B * 512 * 4096);
    float *x = s_randv(nx), *ctx = s_randv(nc), *v = malloc(nx * sizeof(float) + 1);
    float t[2] = {500.0f, 250.0f};
    double best = -1;
    int rc = 1;
    if (!x || !ctx || !v || rf_dit_tp_reserve(g, B, T, &err) ||
        rf_dit_tp_forward(g, B, F, H, W, x, t, ctx, 512, v, &err)) {
        fprintf(stderr, "bench_dit_cuda: forward: %s\n", err.msg);
        goto out;
    }
    for (int r = 0; r < REPEAT; r++) {
        double s0 = s_now();
        if (rf_dit_tp_forward(g, B, F, H, W, x, t, ctx, 512, v, &err)) {
            fprintf(stderr, "bench_dit_cuda: forward: %s\n", err.msg);
            goto out;
        }
        double s = s_now() - s0;
        best = best < 0 || s < best ? s : best;
    }
    for (size_t i = 0; i < nx; i++)
        if (!isfinite(v[i])) {
            fprintf(stderr, "bench_dit_cuda: v[%zu] = %g is not finite\n", i, (double)v[i]);
            goto out;
        }
    size_t cur = 0, pk = 0;
    rf_backend_cuda_memory(rf_dit_tp_backend(g, 0), &cur, &pk);
    double fl = s_flops(c, (double)B, (double)T), tf = fl / best / 1e12;
    double pt_s = s_parse(line, "forward_s="), pt_tf = s_parse(line, "tflops=");
    double pt_sd = s_parse(line, "sdpa_tflops="), pt_gemm = s_parse(line, "gemm_tflops=");
    double pt_mem = s_parse(line, "peak_gib=");
    char table[4096];
    int len = snprintf(
        table, sizeof(table),
        "\n| Wan2.1-1.3B DiT forward, batch %lld x %lld tokens, %d layers | reelfarm (cuda) | "
        "PyTorch (SDPA) |\n"
        "|---|---|---|\n"
        "| GPU | %s | same |\n"
        "| seconds per forward | %.3f | %.3f |\n"
        "| TFLOP/s (matmul FLOPs %.1f T) | %.1f | %.1f |\n"
        "| MFU vs measured bf16 GEMM peak %.0f TFLOP/s | %.1f%% | %.1f%% |\n"
        "| attention alone, TFLOP/s | %.1f | %.1f |\n"
        "| peak device memory, GiB | %.2f | %.2f |\n"
        "| PyTorch time / reelfarm time | %.2f | |\n"
        "| model load (bf16 safetensors), s | %.1f | |\n"
        "| PyTorch's own bf16 GEMM 8192^3, TFLOP/s | | %.1f |\n",
        (long long)B, (long long)T, layers, name, best, pt_s, fl / 1e12, tf, pt_tf, peak,
        100.0 * tf / peak, 100.0 * pt_tf / peak, aflops / as / 1e12, pt_sd,
        (double)pk / 1073741824.0, pt_mem, pt_s / best, load_s, pt_gemm);
    fwrite(table, 1, (size_t)len, stdout);
    printf("bench_dit_cuda: forward_s=%.4f tflops=%.1f mfu=%.3f gemm_peak_tflops=%.1f "
           "attention_tflops=%.1f peak_gib=%.2f torch_ratio=%.2f\n",
           best, tf, tf / peak, peak, aflops / as / 1e12, (double)pk / 1073741824.0, pt_s / best);
    const char *res = getenv("RF_GPU_RESULTS");
    FILE *f = res ? fopen(res, "a") : NULL;
    if (f) {
        fwrite(table, 1, (size_t)len, f);
        fclose(f);
    }
    rc = 0;
out:
    free(x), free(ctx), free(v);
    rf_dit_tp_destroy(&g);
    return rc;
}

#endif

int main(void)
{
#ifdef RF_HAVE_CUDA
    return s_run();
#else
    printf("bench_dit_cuda: skipped: this build has no CUDA backend (built without nvcc)\n");
    return 0;
#endif
}
