/* bench_sampler.c - seconds per sampler step (DiT forward with CFG as batch 2 + solver).
 *
 * The Engine I bench config (dim 512, 4 heads, 8 layers, ffn 2048, latent [16,8,32,32] =
 * 2048 tokens, 20 text tokens), random f32 weights written to a temporary official-form
 * folder, UniPC with 10 steps, shift 5, guidance 5. Steps 1.. are timed (step 0 has no
 * corrector) and the best is printed beside the PyTorch reference's step
 * (tools/reference/bench_sampler.py) on the same thread count, measured in the same run.
 * Threads: RF_BENCH_THREADS or all cores. Never runs in `make test`.
 */
#include "cpu/cpu.h"
#include "dit/dit.h"
#include "safetensors.h"
#include "sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DIM    512
#define FFN    2048
#define LAYERS 8
#define TEXT   20

static uint64_t s_seed = 12345;

static float s_rand(void) /* uniform in [-1, 1) */
{
    s_seed = s_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(s_seed >> 40) / (double)(1ull << 23) - 1.0);
}

static int s_add(rf_st_writer *w, const char *name, int ndim, const int64_t *shape, float scale,
                 float offset)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)shape[d];
    float *buf = malloc(n * sizeof(float));
    if (!buf)
        return -1;
    for (size_t i = 0; i < n; i++)
        buf[i] = offset + scale * s_rand();
    rf_error err = {0};
    int rc = rf_st_writer_add(w, name, RF_DTYPE_F32, ndim, shape, buf, &err);
    free(buf);
    return rc;
}

/* Writes a random official-form model folder (config.json + weights) into dir. */
static int s_write_model(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "{\"dim\": %d, \"ffn_dim\": %d, \"freq_dim\": 256, \"num_heads\": 4, "
            "\"num_layers\": %d, \"in_dim\": 16, \"out_dim\": 16, \"text_len\": 512, "
            "\"eps\": 1e-06, \"model_type\": \"t2v\"}\n",
            DIM, FFN, LAYERS);
    fclose(f);
    rf_st_writer *w = rf_st_writer_new();
    int rc = 0;
    const float sd = 1.7320508f; /* uniform * sqrt(3) has variance 1 */
#define ADD(name, nd, scale, off, ...)                \
    do {                                              \
        int64_t sh_[] = {__VA_ARGS__};                \
        if (!rc)                                      \
            rc = s_add(w, name, nd, sh_, scale, off); \
    } while (0)
    ADD("patch_embedding.weight", 5, sd / 8.0f, 0, DIM, 16, 1, 2, 2);
    ADD("patch_embedding.bias", 1, 0.1f, 0, DIM);
    ADD("text_embedding.0.weight", 2, sd / 64.0f, 0, DIM, 4096);
    ADD("text_embedding.0.bias", 1, 0.1f, 0, DIM);
    ADD("text_embedding.2.weight", 2, sd / 22.6f, 0, DIM, DIM);
    ADD("text_embedding.2.bias", 1, 0.1f, 0, DIM);
    ADD("time_embedding.0.weight", 2, sd / 16.0f, 0, DIM, 256);
    ADD("time_embedding.0.bias", 1, 0.1f, 0, DIM);
    ADD("time_embedding.2.weight", 2, sd / 22.6f, 0, DIM, DIM);
    ADD("time_embedding.2.bias", 1, 0.1f, 0, DIM);
    ADD("time_projection.1.weight", 2, sd / 45.0f, 0, 6 * DIM, DIM);
    ADD("time_projection.1.bias", 1, 0.1f, 0, 6 * DIM);
    char name[128];
    for (int l = 0; l < LAYERS; l++) {
        snprintf(name, sizeof(name), "blocks.%d.modulation", l);
        ADD(name, 3, 0.3f, 0, 1, 6, DIM);
        const char *attn[2] = {"self_attn", "cross_attn"};
        for (int a = 0; a < 2; a++) {
            for (const char *q = "qkvo"; *q; q++) {
                snprintf(name, sizeof(name), "blocks.%d.%s.%c.weight", l, attn[a], *q);
                ADD(name, 2, sd / 22.6f, 0, DIM, DIM);
                snprintf(name, sizeof(name), "blocks.%d.%s.%c.bias", l, attn[a], *q);
                ADD(name, 1, 0.1f, 0, DIM);
            }
            snprintf(name, sizeof(name), "blocks.%d.%s.norm_q.weight", l, attn[a]);
            ADD(name, 1, 0.2f, 1.0f, DIM);
            snprintf(name, sizeof(name), "blocks.%d.%s.norm_k.weight", l, attn[a]);
            ADD(name, 1, 0.2f, 1.0f, DIM);
        }
        snprintf(name, sizeof(name), "blocks.%d.norm3.weight", l);
        ADD(name, 1, 0.2f, 1.0f, DIM);
        snprintf(name, sizeof(name), "blocks.%d.norm3.bias", l);
        ADD(name, 1, 0.1f, 0, DIM);
        snprintf(name, sizeof(name), "blocks.%d.ffn.0.weight", l);
        ADD(name, 2, sd / 22.6f, 0, FFN, DIM);
        snprintf(name, sizeof(name), "blocks.%d.ffn.0.bias", l);
        ADD(name, 1, 0.1f, 0, FFN);
        snprintf(name, sizeof(name), "blocks.%d.ffn.2.weight", l);
        ADD(name, 2, sd / 45.0f, 0, DIM, FFN);
        snprintf(name, sizeof(name), "blocks.%d.ffn.2.bias", l);
        ADD(name, 1, 0.1f, 0, DIM);
    }
    ADD("head.modulation", 3, 0.3f, 0, 1, 2, DIM);
    ADD("head.head.weight", 2, sd / 22.6f, 0, 64, DIM);
    ADD("head.head.bias", 1, 0.1f, 0, 64);
#undef ADD
    snprintf(path, sizeof(path), "%s/diffusion_pytorch_model.safetensors", dir);
    rf_error err = {0};
    if (!rc)
        rc = rf_st_writer_write(w, path, &err);
    rf_st_writer_destroy(&w);
    return rc;
}

typedef struct s_model {
    rf_dit *dit;
    float *ctx;
    double fwd_s;
} s_model;

static double s_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int s_forward(void *ctx, int batch, const int64_t shape[4], const float *x, const float *t,
                     float *v, rf_error *err)
{
    s_model *m = ctx;
    double a = s_now();
    int rc =
        rf_dit_forward(m->dit, batch, shape[1], shape[2], shape[3], x, t, m->ctx, TEXT, v, err);
    m->fwd_s = s_now() - a;
    return rc;
}

static int s_fail(const char *what)
{
    fprintf(stderr, "bench_sampler: %s\n", what);
    return 1;
}

int main(void)
{
    const char *te = getenv("RF_BENCH_THREADS");
    int threads = te ? atoi(te) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    char dir[] = "/tmp/rf_bench_sampler_XXXXXX";
    if (!mkdtemp(dir) || s_write_model(dir))
        return s_fail("cannot write the random model under /tmp");
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    rf_dit *dit = be ? rf_dit_load(dir, be, NULL, &err) : NULL;
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_sampler: could not remove %s\n", dir);
    if (!dit || rf_dit_reserve(dit, 2, 2048, &err))
        return s_fail(err.msg);
    const int64_t shape[4] = {16, 8, 32, 32};
    size_t n = 16 * 8 * 32 * 32;
    float *x = malloc(n * sizeof(float));
    s_model m = {dit, malloc(2 * TEXT * 4096 * sizeof(float)), 0.0};
    for (size_t i = 0; i < n; i++)
        x[i] = s_rand();
    for (size_t i = 0; i < 2 * TEXT * 4096; i++)
        m.ctx[i] = s_rand();
    rf_sampler_config cfg = {RF_SAMPLER_UNIPC, 10, 5.0, 1, 5.0};
    rf_sampler *smp = rf_sampler_new(&cfg, shape, &err);
    rf_chunk_state *st = smp ? rf_sampler_state_new(smp, x, 0, &err) : NULL;
    if (!st || rf_sampler_step(smp, st, s_forward, &m, &err)) /* warm-up, step 0 */
        return s_fail(err.msg);
    double best = 1e30, best_fwd = 0.0;
    for (int r = 0; r < 2; r++) {
        double a = s_now();
        if (rf_sampler_step(smp, st, s_forward, &m, &err))
            return s_fail(err.msg);
        double dt = s_now() - a;
        if (dt < best)
            best = dt, best_fwd = m.fwd_s;
    }
    printf("sampler step (unipc, CFG batch 2, 2048 tokens, dim 512 x 8 layers): %.3f s "
           "(forward %.3f s, solver %.4f s), threads %d\n",
           best, best_fwd, best - best_fwd, threads);
    const char *py = getenv("RF_PYTHON") ? getenv("RF_PYTHON") : "/usr/bin/python3";
    snprintf(cmd, sizeof(cmd), "%s %s/tools/reference/bench_sampler.py --threads %d 2>&1", py,
             RF_SOURCE_DIR, threads);
    FILE *p = popen(cmd, "r");
    char line[512];
    double torch_s = 0.0;
    while (p && fgets(line, sizeof(line), p)) {
        const char *k = strstr(line, "torch_step_s=");
        if (k)
            torch_s = atof(k + strlen("torch_step_s="));
    }
    if (p)
        pclose(p);
    if (torch_s > 0.0)
        printf("pytorch reference step: %.3f s on %d threads; ratio torch/reelfarm = %.2fx\n",
               torch_s, threads, torch_s / best);
    else
        printf("pytorch reference step: not measured (needs %s with torch; see "
               "tools/reference/bench_sampler.py)\n",
               py);
    rf_chunk_state_destroy(&st);
    rf_sampler_destroy(&smp);
    free(m.ctx);
    free(x);
    rf_dit_destroy(&dit);
    rf_backend_destroy(&be);
    return 0;
}
