/* bench_t5.c - umT5 encoder tokens per second, C (CPU backend) beside PyTorch.
 *
 * Runs the PyTorch peer tools/reference/bench_t5.py first (same threads; it also writes
 * its random weights with --write-model), then loads those weights in C and encodes the
 * same shape: one sequence of 512 tokens, fp32, dim 1024, 16 heads, ffn 2560, 4 layers
 * (a quarter-width umT5-XXL). Best of 3 after a warm-up, for both. Prints one logfmt
 * line with both rates and the ratio. Threads: RF_BENCH_THREADS or all cores.
 * Without torch (the peer also writes the weights) it says so and fails.
 */
#include "cpu/cpu.h"
#include "t5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOKENS 512

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void)
{
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("RF_BENCH_THREADS");
    if (env && atoi(env) > 0)
        threads = atoi(env);
    const char *py = getenv("RF_PYTHON") ? getenv("RF_PYTHON") : "/usr/bin/python3";
    char model[256];
    snprintf(model, sizeof(model), "/tmp/rf_bench_t5_%d.safetensors", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s %s/tools/reference/bench_t5.py --threads %d --write-model %s",
             py, RF_SOURCE_DIR, threads, model);
    double torch_rate = 0;
    FILE *p = popen(cmd, "r");
    char line[1024];
    while (p && fgets(line, sizeof(line), p)) {
        const char *k = strstr(line, "torch_t5_tokens_per_s=");
        if (k)
            torch_rate = atof(k + strlen("torch_t5_tokens_per_s="));
    }
    int prc = p ? pclose(p) : -1;
    if (prc != 0 || torch_rate <= 0) {
        printf("bench_t5: the PyTorch peer failed (%s); no ratio this run\n", cmd);
        unlink(model);
        return 1;
    }
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    rf_t5 *t5 = be ? rf_t5_load(be, model, TOKENS, &err) : NULL;
    unlink(model);
    if (!t5) {
        fprintf(stderr, "bench_t5: %s\n", err.msg);
        rf_backend_destroy(&be);
        return 1;
    }
    const rf_t5_config *c = rf_t5_get_config(t5);
    int32_t *ids = malloc(sizeof(int32_t) * TOKENS);
    float *out = malloc(sizeof(float) * TOKENS * (size_t)c->dim);
    uint32_t x = 10;
    for (int i = 0; i < TOKENS; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = 1 + (int32_t)((x >> 8) % (uint32_t)(c->vocab - 1));
    }
    double best = 1e30;
    int rc = 0;
    for (int r = 0; r < 4 && !rc; r++) {
        double t0 = s_now();
        rc = rf_t5_encode(t5, ids, NULL, 1, TOKENS, out, &err);
        double dt = s_now() - t0;
        if (r > 0 && dt < best)
            best = dt;
    }
    if (rc) {
        fprintf(stderr, "bench_t5: %s\n", err.msg);
    } else {
        double rate = TOKENS / best;
        printf("bench=t5 threads=%d tokens=%d dim=%lld layers=%lld c_t5_forward_s=%.4f "
               "c_t5_tokens_per_s=%.1f torch_t5_tokens_per_s=%.1f ratio_c_over_torch=%.2f\n",
               threads, TOKENS, (long long)c->dim, (long long)c->layers, best, rate, torch_rate,
               rate / torch_rate);
    }
    free(ids);
    free(out);
    rf_t5_destroy(&t5);
    rf_backend_destroy(&be);
    return rc ? 1 : 0;
}
