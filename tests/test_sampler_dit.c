/* test_sampler_dit.c - the samplers driving the C DiT: short CFG trajectories with the tiny
 * DiT fixture (tests/fixtures/dit/official) against the PyTorch reference step by step,
 * and stop + save + resume with the DiT bit-identical to never stopping. */
#include "chunk_state.h"
#include "cpu/cpu.h"
#include "dit/dit.h"
#include "rf_test.h"
#include "safetensors.h"
#include "sampler.h"

#include <stdio.h>
#include <stdlib.h>

#define NX (16 * 3 * 12 * 16)
static const int64_t s_shape[4] = {16, 3, 12, 16};

typedef struct s_env {
    rf_backend *be;
    rf_dit *dit;
    float x0[NX];
    float *ctx; /* [2, 7, 4096] cond, uncond */
} s_env;

static s_env *s_env_get(void)
{
    static s_env env;
    if (env.dit)
        return &env;
    char path[1024];
    rf_error err = {0};
    env.be = rf_backend_cpu_new(2, &err);
    RF_CHECK_MSG(env.be, "%s", err.msg);
    snprintf(path, sizeof(path), "%s/dit/official", rf_test_fixtures());
    env.dit = rf_dit_load(path, env.be, NULL, &err);
    RF_CHECK_MSG(env.dit, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_dit_reserve(env.dit, 2, 3 * 6 * 8, &err), 0);
    snprintf(path, sizeof(path), "%s/dit/io.safetensors", rf_test_fixtures());
    rf_safetensors *io = rf_st_open(path, &err);
    RF_CHECK_MSG(io, "%s", err.msg);
    const rf_st_tensor *x = rf_st_find(io, "x"), *c = rf_st_find(io, "context");
    RF_CHECK(x && c && rf_st_numel(x) == 2 * NX && rf_st_numel(c) == 2 * 7 * 4096);
    float *xx = malloc(2 * NX * sizeof(float));
    env.ctx = malloc(rf_st_numel(c) * sizeof(float));
    RF_CHECK_EQ_INT(rf_st_read_f32(x, xx, &err), 0);
    RF_CHECK_EQ_INT(rf_st_read_f32(c, env.ctx, &err), 0);
    memcpy(env.x0, xx, NX * sizeof(float)); /* x[0] */
    free(xx);
    rf_st_destroy(&io);
    return &env;
}

static int s_dit_model(void *ctx, int batch, const int64_t shape[4], const float *x, const float *t,
                       float *v, rf_error *err)
{
    s_env *e = ctx;
    return rf_dit_forward(e->dit, batch, shape[1], shape[2], shape[3], x, t, e->ctx, 7, v, err);
}

static const char *const s_cases[] = {"dit_unipc", "dit_dpmpp", "dit_euler"};

RF_TEST(dit_trajectories_match_the_reference)
{
    s_env *env = s_env_get();
    for (size_t k = 0; k < 3; k++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/sampler/%s.safetensors", rf_test_fixtures(), s_cases[k]);
        rf_error err = {0};
        rf_safetensors *fx = rf_st_open(path, &err);
        RF_CHECK_MSG(fx, "%s", err.msg);
        rf_sampler_config cfg = {0};
        RF_CHECK_EQ_INT(rf_sampler_kind_parse(rf_st_metadata(fx, "sampler"), &cfg.kind, &err), 0);
        cfg.steps = atoi(rf_st_metadata(fx, "steps"));
        cfg.shift = strtod(rf_st_metadata(fx, "shift"), NULL);
        cfg.cfg = atoi(rf_st_metadata(fx, "cfg"));
        cfg.guidance = strtod(rf_st_metadata(fx, "guidance"), NULL);
        const rf_st_tensor *tr = rf_st_find(fx, "traj");
        RF_CHECK(tr && rf_st_numel(tr) == (size_t)(cfg.steps + 1) * NX);
        float *traj = malloc(rf_st_numel(tr) * sizeof(float));
        RF_CHECK_EQ_INT(rf_st_read_f32(tr, traj, &err), 0);
        RF_CHECK(memcmp(traj, env->x0, NX * sizeof(float)) == 0);
        rf_sampler *smp = rf_sampler_new(&cfg, s_shape, &err);
        rf_chunk_state *st = rf_sampler_state_new(smp, env->x0, 0, &err);
        RF_CHECK(smp && st);
        printf("# %s NMSE per step:", s_cases[k]);
        double worst = 0.0;
        for (int i = 0; i < cfg.steps; i++) {
            RF_CHECK_MSG(rf_sampler_step(smp, st, s_dit_model, env, &err) == 0, "%s", err.msg);
            double e = rf_test_nmse(rf_chunk_state_tensor(st, "latent")->data,
                                    traj + (size_t)(i + 1) * NX, NX);
            printf(" %.2g", e);
            worst = e > worst ? e : worst;
        }
        printf("\n");
        /* the DiT matches its reference to ~1e-12 NMSE per forward (f32); a few solver
         * steps amplify that by little */
        RF_CHECK_MSG(worst <= 1e-8, "%s: worst step NMSE %.3g", s_cases[k], worst);
        free(traj);
        rf_chunk_state_destroy(&st);
        rf_sampler_destroy(&smp);
        rf_st_destroy(&fx);
    }
}

RF_TEST(dit_resume_equals_never_stopping)
{
    s_env *env = s_env_get();
    char path[512];
    rf_test_path(path, sizeof(path), "dit_state.safetensors");
    rf_sampler_config cfg = {RF_SAMPLER_UNIPC, 4, 5.0, 1, 5.0};
    rf_error err = {0};
    rf_sampler *smp = rf_sampler_new(&cfg, s_shape, &err);
    rf_chunk_state *full = rf_sampler_state_new(smp, env->x0, 0, &err);
    RF_CHECK_EQ_INT(rf_sampler_run(smp, full, -1, s_dit_model, env, &err), 0);
    rf_chunk_state *st = rf_sampler_state_new(smp, env->x0, 0, &err);
    RF_CHECK_EQ_INT(rf_sampler_run(smp, st, 2, s_dit_model, env, &err), 0);
    RF_CHECK_MSG(rf_chunk_state_save(st, path, &err) == 0, "%s", err.msg);
    rf_chunk_state_destroy(&st);
    rf_chunk_state *back = rf_chunk_state_load(path, &err);
    RF_CHECK_MSG(back, "%s", err.msg);
    rf_sampler *again = rf_sampler_new(&cfg, s_shape, &err);
    RF_CHECK_EQ_INT(rf_sampler_run(again, back, -1, s_dit_model, env, &err), 0);
    for (int t = 0; t < full->ntensors; t++)
        RF_CHECK_MSG(memcmp(full->tensors[t].data, back->tensors[t].data, NX * sizeof(float)) == 0,
                     "tensor %s differs after resume", full->tensors[t].name);
    rf_sampler_destroy(&again);
    rf_chunk_state_destroy(&back);
    rf_chunk_state_destroy(&full);
    rf_sampler_destroy(&smp);
}
