/* test_dit_cuda.c - the whole Wan DiT forward on CUDA against the golden fixtures and the
 * CPU backend.
 *
 * The fixture models (tests/fixtures/dit, head_dim 128: the fused attention path) run on
 * the CUDA backend, where matrices become bf16, and must match the PyTorch golden v and
 * the CPU backend's v within a bf16 bound (a layout error gives NMSE near 1; bf16
 * rounding gives about 1e-5). Also: the CUDA forward is repeatable bit for bit, and a
 * TP request of two ranks on one GPU is refused with the reason. Skipped without a GPU.
 */
#include "rf_test.h"

#include "dit/dit_tp.h"
#include "registry.h"
#include "safetensors.h"
#ifdef RF_HAVE_CUDA
#include "cuda/backend_cuda.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BF16_BOUND 2e-3

static void s_need_gpu(void)
{
#ifdef RF_HAVE_CUDA
    char why[256];
    if (rf_cuda_device_count(why, sizeof(why)) == 0)
        RF_SKIP("no CUDA GPU available: %s", why);
#else
    RF_SKIP("this build has no CUDA backend (nvcc was not found when it was built)");
#endif
}

typedef struct {
    float *x, *t, *ctx, *v;
    int64_t b, f, h, w, lc;
    size_t nv;
} s_io;

static void s_io_load(s_io *io, const char *file)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/dit/%s", rf_test_fixtures(), file);
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    const rf_st_tensor *x = rf_st_find(st, "x"), *t = rf_st_find(st, "t");
    const rf_st_tensor *c = rf_st_find(st, "context"), *v = rf_st_find(st, "v");
    RF_CHECK(x && t && c && v && x->ndim == 5 && c->ndim == 3);
    io->b = x->shape[0], io->f = x->shape[2], io->h = x->shape[3], io->w = x->shape[4];
    io->lc = c->shape[1];
    io->nv = rf_st_numel(v);
    io->x = malloc(rf_st_numel(x) * 4);
    io->t = malloc(rf_st_numel(t) * 4);
    io->ctx = malloc(rf_st_numel(c) * 4);
    io->v = malloc(io->nv * 4);
    RF_CHECK(rf_st_read_f32(x, io->x, &err) == 0 && rf_st_read_f32(t, io->t, &err) == 0 &&
             rf_st_read_f32(c, io->ctx, &err) == 0 && rf_st_read_f32(v, io->v, &err) == 0);
    rf_st_destroy(&st);
}

static void s_io_free(s_io *io)
{
    free(io->x), free(io->t), free(io->ctx), free(io->v);
}

static void s_forward(const char *sub, const char *backend, const s_io *io, float *out)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/dit/%s", rf_test_fixtures(), sub);
    rf_error err = {0};
    rf_dit_tp_opts o = {backend, 1, 2, NULL};
    rf_dit_tp *g = rf_dit_tp_open(dir, &o, &err);
    RF_CHECK_MSG(g, "%s on %s: %s", sub, backend, err.msg);
    const rf_dit_config *c = rf_dit_get_config(rf_dit_tp_rank(g, 0));
    int64_t T = (io->f / c->patch[0]) * (io->h / c->patch[1]) * (io->w / c->patch[2]);
    RF_CHECK_MSG(rf_dit_tp_reserve(g, io->b, T, &err) == 0, "%s", err.msg);
    int rc =
        rf_dit_tp_forward(g, io->b, io->f, io->h, io->w, io->x, io->t, io->ctx, io->lc, out, &err);
    RF_CHECK_MSG(rc == 0, "%s on %s: %s", sub, backend, err.msg);
    rf_dit_tp_destroy(&g);
}

static void s_case(const char *sub, const char *io_file)
{
    s_io io;
    s_io_load(&io, io_file);
    float *gpu = malloc(io.nv * 4), *cpu = malloc(io.nv * 4), *again = malloc(io.nv * 4);
    s_forward(sub, "cuda", &io, gpu);
    s_forward(sub, "cpu", &io, cpu);
    double e_gold = rf_test_nmse(gpu, io.v, io.nv), e_cpu = rf_test_nmse(gpu, cpu, io.nv);
    printf("# dit %s: cuda vs golden NMSE %.3g, cuda vs cpu NMSE %.3g\n", sub, e_gold, e_cpu);
    RF_CHECK_MSG(e_gold <= BF16_BOUND, "%s: cuda vs golden NMSE %g", sub, e_gold);
    RF_CHECK_MSG(e_cpu <= BF16_BOUND, "%s: cuda vs cpu NMSE %g", sub, e_cpu);
    s_forward(sub, "cuda", &io, again);
    RF_CHECK_MSG(!memcmp(gpu, again, io.nv * 4), "%s: two cuda forwards differ", sub);
    free(gpu), free(cpu), free(again);
    s_io_free(&io);
}

RF_TEST(dit_forward_cuda_matches_golden_and_cpu)
{
    s_need_gpu();
    s_case("official", "io.safetensors");
    s_case("small_sharded", "io_small.safetensors");
    s_case("small_diffusers", "io_small.safetensors");
}

RF_TEST(two_ranks_on_one_gpu_are_refused)
{
    s_need_gpu();
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/dit/official", rf_test_fixtures());
    rf_error err = {0};
    int gpus[2] = {0, 0};
    rf_dit_tp_opts o = {"cuda", 2, 0, gpus};
    rf_dit_tp *g = rf_dit_tp_open(dir, &o, &err);
    RF_CHECK(g == NULL);
    RF_CHECK_MSG(strstr(err.msg, "one GPU per rank") || strstr(err.msg, "NCCL"), "%s", err.msg);
}

RF_TEST(cuda_backend_request_fails_clearly_without_gpu)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/dit/official", rf_test_fixtures());
    rf_error err = {0};
    rf_dit_tp_opts o = {"cuda", 1, 0, NULL};
#ifdef RF_HAVE_CUDA
    char why[256];
    if (rf_cuda_device_count(why, sizeof(why)) > 0)
        RF_SKIP("a GPU is present");
    RF_CHECK(rf_dit_tp_open(dir, &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "no CUDA GPU available");
#else
    RF_CHECK(rf_dit_tp_open(dir, &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "no CUDA backend");
#endif
}
