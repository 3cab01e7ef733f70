/* test_engine_sample.c - `reelfarm-engine sample` as a process: a whole schedule with the
 * tiny DiT fixture, then the same schedule stopped after a step, saved and resumed, which
 * must give the same latent bit for bit; and usage errors a user gets told about. */
#include "rf_test.h"
#include "rng.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

static char s_out[8192];

/* Runs the engine binary with args; returns its exit status; output in s_out. */
static int s_engine(const char *args)
{
    const char *build = getenv("RF_BUILD");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "%s/bin/reelfarm-engine %s 2>&1",
             build ? build : RF_SOURCE_DIR "/build", args);
    FILE *p = popen(cmd, "r");
    RF_CHECK(p);
    size_t n = fread(s_out, 1, sizeof(s_out) - 1, p);
    s_out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Writes context row block b ([7,4096]) of the DiT fixture io file to path. */
static void s_context(int b, const char *path)
{
    char io[1024];
    snprintf(io, sizeof(io), "%s/dit/io.safetensors", rf_test_fixtures());
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(io, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    const rf_st_tensor *c = rf_st_find(st, "context");
    RF_CHECK(c && c->shape[0] == 2 && c->shape[1] == 7 && c->shape[2] == 4096);
    float *all = malloc(rf_st_numel(c) * sizeof(float));
    RF_CHECK_EQ_INT(rf_st_read_f32(c, all, &err), 0);
    rf_st_writer *w = rf_st_writer_new();
    int64_t shape[2] = {7, 4096};
    RF_CHECK_EQ_INT(
        rf_st_writer_add(w, "context", RF_DTYPE_F32, 2, shape, all + (size_t)b * 7 * 4096, &err),
        0);
    RF_CHECK_MSG(rf_st_writer_write(w, path, &err) == 0, "%s", err.msg);
    rf_st_writer_destroy(&w);
    free(all);
    rf_st_destroy(&st);
}

/* Reads `z` of path into a new buffer of *n floats. */
static float *s_latent(const char *path, size_t *n)
{
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    const rf_st_tensor *z = rf_st_find(st, "z");
    RF_CHECK(z && z->ndim == 5 && z->shape[0] == 1 && z->shape[1] == 16);
    *n = rf_st_numel(z);
    float *out = malloc(*n * sizeof(float));
    RF_CHECK_EQ_INT(rf_st_read_f32(z, out, &err), 0);
    rf_st_destroy(&st);
    return out;
}

RF_TEST(stop_save_resume_equals_an_uninterrupted_run)
{
    char cond[512], neg[512], full[512], state[512], resumed[512], args[4096];
    s_context(0, rf_test_path(cond, sizeof(cond), "cond.safetensors"));
    s_context(1, rf_test_path(neg, sizeof(neg), "neg.safetensors"));
    rf_test_path(full, sizeof(full), "full.safetensors");
    rf_test_path(state, sizeof(state), "state.safetensors");
    rf_test_path(resumed, sizeof(resumed), "resumed.safetensors");
    const char *sampler[3] = {"unipc", "dpm++", "euler"};
    for (int k = 0; k < 3; k++) {
        const char *common = "sample --model %s/dit/official --context %s --negative-context %s "
                             "--threads 1";
        char base[2048];
        snprintf(base, sizeof(base), common, rf_test_fixtures(), cond, neg);
        snprintf(args, sizeof(args),
                 "%s --frames 9 --size 48x32 --steps 4 --seed 11 --sampler %s --shift 3 "
                 "--guidance 4.5 --output %s",
                 base, sampler[k], full);
        RF_CHECK_MSG(s_engine(args) == 0, "%s", s_out);
        snprintf(args, sizeof(args),
                 "%s --frames 9 --size 48x32 --steps 4 --seed 11 --sampler %s --shift 3 "
                 "--guidance 4.5 --save-state %s --stop-after 2",
                 base, sampler[k], state);
        RF_CHECK_MSG(s_engine(args) == 0, "%s", s_out);
        snprintf(args, sizeof(args), "%s --resume %s --output %s", base, state, resumed);
        RF_CHECK_MSG(s_engine(args) == 0, "%s", s_out);
        size_t n1, n2;
        float *a = s_latent(full, &n1), *b = s_latent(resumed, &n2);
        RF_CHECK_EQ_INT(n1, 16 * 3 * 4 * 6);
        RF_CHECK_EQ_INT(n1, n2);
        RF_CHECK_MSG(memcmp(a, b, n1 * sizeof(float)) == 0, "%s: resumed latent differs",
                     sampler[k]);
        free(a);
        free(b);
        /* resuming with other settings is refused */
        snprintf(args, sizeof(args), "%s --resume %s --steps 5 --output %s", base, state, resumed);
        RF_CHECK_EQ_INT(s_engine(args), 1);
        RF_CHECK_CONTAINS(s_out, "--steps");
    }
}

RF_TEST(usage_errors_are_explained)
{
    char cond[512], out[512], args[4096];
    s_context(0, rf_test_path(cond, sizeof(cond), "cond.safetensors"));
    rf_test_path(out, sizeof(out), "out.safetensors");
    RF_CHECK_EQ_INT(s_engine("sample --help"), 0);
    RF_CHECK_CONTAINS(s_out, "--negative-context");
    snprintf(args, sizeof(args),
             "sample --model %s/dit/official --context %s --frames 8 --size 48x32 --seed 1 "
             "--output %s",
             rf_test_fixtures(), cond, out);
    RF_CHECK_EQ_INT(s_engine(args), 2);
    RF_CHECK_CONTAINS(s_out, "4n+1");
    snprintf(args, sizeof(args),
             "sample --model %s/dit/official --context %s --frames 9 --size 48x32 --seed 1 "
             "--output %s",
             rf_test_fixtures(), cond, out);
    RF_CHECK_EQ_INT(s_engine(args), 1);
    RF_CHECK_CONTAINS(s_out, "--negative-context");
    snprintf(args, sizeof(args),
             "sample --model %s/dit/official --context %s --frames 9 --size 48x32 --seed 1 "
             "--sampler ddim --guidance 1 --output %s",
             rf_test_fixtures(), cond, out);
    RF_CHECK_EQ_INT(s_engine(args), 1);
    RF_CHECK_CONTAINS(s_out, "ddim");
    snprintf(args, sizeof(args),
             "sample --model %s/dit/official --context %s --frames 9 --size 48x32 --seed 1 "
             "--stop-after 1 --guidance 1",
             rf_test_fixtures(), cond);
    RF_CHECK_EQ_INT(s_engine(args), 2);
    RF_CHECK_CONTAINS(s_out, "--save-state");
    /* guidance 1: one batch-1 forward, no negative context needed */
    snprintf(args, sizeof(args),
             "sample --model %s/dit/official --context %s --frames 5 --size 32x32 --seed 1 "
             "--steps 2 --guidance 1 --threads 1 --output %s",
             rf_test_fixtures(), cond, out);
    RF_CHECK_MSG(s_engine(args) == 0, "%s", s_out);
    size_t n;
    float *z = s_latent(out, &n);
    RF_CHECK_EQ_INT(n, 16 * 2 * 4 * 4);
    for (size_t i = 0; i < n; i++)
        RF_CHECK(isfinite(z[i]));
    free(z);
}

/* --init with the project's noise written out equals --seed: the noise is Philox on
 * global latent frames (timeline 0, frames from 0). */
RF_TEST(init_latent_equals_the_seeded_noise)
{
    char cond[512], init[512], a[512], b[512], args[4096], base[2048];
    s_context(0, rf_test_path(cond, sizeof(cond), "cond.safetensors"));
    rf_test_path(init, sizeof(init), "init.safetensors");
    rf_test_path(a, sizeof(a), "a.safetensors");
    rf_test_path(b, sizeof(b), "b.safetensors");
    float *z = malloc(16 * 2 * 4 * 4 * sizeof(float));
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_noise_latent(77, 0, 0, 16, 2, 4, 4, z, &err), 0);
    rf_st_writer *w = rf_st_writer_new();
    int64_t shape[5] = {1, 16, 2, 4, 4};
    RF_CHECK_EQ_INT(rf_st_writer_add(w, "z", RF_DTYPE_F32, 5, shape, z, &err), 0);
    RF_CHECK_MSG(rf_st_writer_write(w, init, &err) == 0, "%s", err.msg);
    rf_st_writer_destroy(&w);
    free(z);
    snprintf(base, sizeof(base),
             "sample --model %s/dit/official --context %s --steps 3 --sampler dpm++ "
             "--guidance 1 --threads 1",
             rf_test_fixtures(), cond);
    snprintf(args, sizeof(args), "%s --frames 5 --size 32x32 --seed 77 --output %s", base, a);
    RF_CHECK_MSG(s_engine(args) == 0, "%s", s_out);
    snprintf(args, sizeof(args), "%s --init %s --output %s", base, init, b);
    RF_CHECK_MSG(s_engine(args) == 0, "%s", s_out);
    size_t n1, n2;
    float *x = s_latent(a, &n1), *y = s_latent(b, &n2);
    RF_CHECK(n1 == n2 && memcmp(x, y, n1 * sizeof(float)) == 0);
    free(x);
    free(y);
    /* an init latent that contradicts --frames/--size is refused */
    snprintf(args, sizeof(args), "%s --init %s --frames 9 --size 32x32 --output %s", base, init, b);
    RF_CHECK_EQ_INT(s_engine(args), 1);
    RF_CHECK_CONTAINS(s_out, "init latent");
}

RF_TEST(tensor_parallel_sampling_equals_one_rank)
{
    char cond[512], a[512], b[512], args[4096], base[2048];
    s_context(0, rf_test_path(cond, sizeof(cond), "cond_tp.safetensors"));
    rf_test_path(a, sizeof(a), "tp1.safetensors");
    rf_test_path(b, sizeof(b), "tp2.safetensors");
    snprintf(base, sizeof(base),
             "sample --model %s/dit/official --context %s --steps 3 --sampler unipc "
             "--guidance 1 --threads 2 --frames 5 --size 32x32 --seed 5",
             rf_test_fixtures(), cond);
    snprintf(args, sizeof(args), "%s --tp 1 --output %s", base, a);
    RF_CHECK_MSG(s_engine(args) == 0, "%s", s_out);
    snprintf(args, sizeof(args), "%s --tp 2 --output %s", base, b);
    RF_CHECK_MSG(s_engine(args) == 0, "%s", s_out);
    size_t n1, n2;
    float *x = s_latent(a, &n1), *y = s_latent(b, &n2);
    RF_CHECK(n1 == n2);
    double nmse = rf_test_nmse(y, x, n1);
    RF_CHECK_MSG(nmse <= 1e-10, "TP=2 vs TP=1 NMSE %g > 1e-10", nmse);
    free(x);
    free(y);
    /* a degree that does not divide the heads is refused with the valid ones */
    snprintf(args, sizeof(args), "%s --tp 3 --output %s", base, b);
    RF_CHECK_EQ_INT(s_engine(args), 1);
    RF_CHECK_CONTAINS(s_out, "valid");
}
