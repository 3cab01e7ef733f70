/* test_sampler.c - the samplers against the reference trajectories (toy model, every step),
 * the schedule bit for bit, CFG as one batch-2 call, resume from a saved state equal to
 * never stopping, and refusals (wrong state, finished state, model errors). */
#include "chunk_state.h"
#include "fusion.h"
#include "rf_test.h"
#include "safetensors.h"
#include "sampler.h"

#include <stdio.h>
#include <stdlib.h>

#define C  16
#define NF 3
#define NH 4
#define NW 4
#define NX (C * NF * NH * NW)

typedef struct toy {
    float A[C * C], bias[2 * C];
    int calls, last_batch;
    float last_t[2];
    int fail_at; /* call number that returns an error (0: never) */
} toy;

/* The toy model of tools/reference/samplers.py: v[c] = sum_c' A[c,c'] x[c'] +
 * 0.5 tanh(x[c]) + (t/1000) bias[b,c], in double, rounded to f32. */
static int s_toy(void *ctx, int batch, const int64_t shape[4], const float *x, const float *t,
                 float *v, rf_error *err)
{
    toy *m = ctx;
    m->calls++;
    if (m->fail_at && m->calls == m->fail_at)
        return rf_error_set(err, RF_EIO, "toy model: failing on purpose");
    size_t sp = (size_t)(shape[1] * shape[2] * shape[3]);
    m->last_batch = batch;
    for (int b = 0; b < batch; b++) {
        m->last_t[b] = t[b];
        const float *xb = x + (size_t)b * C * sp;
        float *vb = v + (size_t)b * C * sp;
        for (int c = 0; c < C; c++)
            for (size_t p = 0; p < sp; p++) {
                double acc = 0.0;
                for (int c2 = 0; c2 < C; c2++)
                    acc += (double)m->A[c * C + c2] * (double)xb[(size_t)c2 * sp + p];
                acc += 0.5 * tanh((double)xb[(size_t)c * sp + p]);
                acc += ((double)t[b] / 1000.0) * (double)m->bias[b * C + c];
                vb[(size_t)c * sp + p] = (float)acc;
            }
    }
    return 0;
}

typedef struct fixture {
    rf_safetensors *st;
    rf_sampler_config cfg;
    toy model;
    float *traj; /* [N+1, NX] */
    float t[64];
    double sigmas[65];
} fixture;

static void s_load(fixture *fx, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/sampler/%s.safetensors", rf_test_fixtures(), name);
    rf_error err = {0};
    memset(fx, 0, sizeof(*fx));
    fx->st = rf_st_open(path, &err);
    RF_CHECK_MSG(fx->st, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_sampler_kind_parse(rf_st_metadata(fx->st, "sampler"), &fx->cfg.kind, &err),
                    0);
    fx->cfg.steps = atoi(rf_st_metadata(fx->st, "steps"));
    fx->cfg.shift = strtod(rf_st_metadata(fx->st, "shift"), NULL);
    fx->cfg.cfg = atoi(rf_st_metadata(fx->st, "cfg"));
    fx->cfg.guidance = strtod(rf_st_metadata(fx->st, "guidance"), NULL);
    int n = fx->cfg.steps;
    RF_CHECK(n >= 1 && n <= 64);
    const rf_st_tensor *t;
    int64_t sa[2] = {C, C}, sb[2] = {2, C}, st[5] = {n + 1, C, NF, NH, NW}, s1[1] = {n},
            ss[1] = {n + 1};
    RF_CHECK_MSG(rf_st_expect(fx->st, "A", 2, sa, &t, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_st_read_f32(t, fx->model.A, &err), 0);
    RF_CHECK_MSG(rf_st_expect(fx->st, "bias", 2, sb, &t, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_st_read_f32(t, fx->model.bias, &err), 0);
    RF_CHECK_MSG(rf_st_expect(fx->st, "traj", 5, st, &t, &err) == 0, "%s", err.msg);
    fx->traj = malloc((size_t)(n + 1) * NX * sizeof(float));
    RF_CHECK_EQ_INT(rf_st_read_f32(t, fx->traj, &err), 0);
    RF_CHECK_MSG(rf_st_expect(fx->st, "t", 1, s1, &t, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_st_read_f32(t, fx->t, &err), 0);
    RF_CHECK_MSG(rf_st_expect(fx->st, "sigmas", 1, ss, &t, &err) == 0, "%s", err.msg);
    RF_CHECK(t->dtype == RF_DTYPE_F64);
    memcpy(fx->sigmas, t->data, (size_t)(n + 1) * sizeof(double));
}

static void s_free(fixture *fx)
{
    free(fx->traj);
    rf_st_destroy(&fx->st);
}

static const int64_t s_shape[4] = {C, NF, NH, NW};

static const char *const s_cases[] = {"unipc",    "dpmpp",    "euler",
                                      "unipc_n1", "unipc_n3", "dpmpp_n2"};
#define NCASES (sizeof(s_cases) / sizeof(s_cases[0]))

RF_TEST(trajectories_match_the_reference_step_by_step)
{
    for (size_t k = 0; k < NCASES; k++) {
        fixture fx;
        s_load(&fx, s_cases[k]);
        rf_error err = {0};
        rf_sampler *smp = rf_sampler_new(&fx.cfg, s_shape, &err);
        RF_CHECK_MSG(smp, "%s", err.msg);
        for (int i = 0; i <= fx.cfg.steps; i++) /* the schedule, bit for bit */
            RF_CHECK_MSG(
                memcmp(&fx.sigmas[i], &(double){rf_sampler_sigma(smp, i)}, sizeof(double)) == 0,
                "%s sigma %d: %.17g vs %.17g", s_cases[k], i, rf_sampler_sigma(smp, i),
                fx.sigmas[i]);
        rf_chunk_state *st = rf_sampler_state_new(smp, fx.traj, 0, &err);
        RF_CHECK_MSG(st, "%s", err.msg);
        double worst = 0.0;
        for (int i = 0; i < fx.cfg.steps; i++) {
            RF_CHECK_MSG(rf_sampler_step(smp, st, s_toy, &fx.model, &err) == 0, "%s", err.msg);
            RF_CHECK_EQ_INT(fx.model.last_batch, fx.cfg.cfg ? 2 : 1);
            RF_CHECK(fx.model.last_t[0] == fx.t[i]);
            double e = rf_test_nmse(rf_chunk_state_tensor(st, "latent")->data,
                                    fx.traj + (size_t)(i + 1) * NX, NX);
            RF_CHECK_MSG(e <= 1e-12, "%s step %d: NMSE %.3g", s_cases[k], i, e);
            worst = e > worst ? e : worst;
        }
        printf("# %s: %d steps, worst per-step NMSE vs reference %.3g\n", s_cases[k], fx.cfg.steps,
               worst);
        RF_CHECK_EQ_INT(rf_sampler_state_step(st), fx.cfg.steps);
        RF_CHECK_EQ_INT(rf_sampler_step(smp, st, s_toy, &fx.model, &err), RF_EINVAL);
        RF_CHECK_CONTAINS(err.msg, "already took");
        rf_chunk_state_destroy(&st);
        rf_sampler_destroy(&smp);
        s_free(&fx);
    }
}

RF_TEST(resume_from_saved_state_equals_never_stopping)
{
    char path[512];
    rf_test_path(path, sizeof(path), "resume.safetensors");
    for (size_t k = 0; k < NCASES; k++) {
        fixture fx;
        s_load(&fx, s_cases[k]);
        rf_error err = {0};
        rf_sampler *smp = rf_sampler_new(&fx.cfg, s_shape, &err);
        rf_chunk_state *full = rf_sampler_state_new(smp, fx.traj, 4, &err);
        RF_CHECK_EQ_INT(rf_sampler_run(smp, full, -1, s_toy, &fx.model, &err), 0);
        for (int stop = 0; stop <= fx.cfg.steps; stop++) {
            rf_chunk_state *st = rf_sampler_state_new(smp, fx.traj, 4, &err);
            RF_CHECK_EQ_INT(rf_sampler_run(smp, st, stop, s_toy, &fx.model, &err), 0);
            RF_CHECK_MSG(rf_chunk_state_save(st, path, &err) == 0, "%s", err.msg);
            rf_chunk_state_destroy(&st);
            /* a new process: config from the state, a new sampler */
            rf_chunk_state *back = rf_chunk_state_load(path, &err);
            RF_CHECK_MSG(back, "%s", err.msg);
            rf_sampler_config cfg;
            RF_CHECK_EQ_INT(rf_sampler_config_from_state(back, &cfg, &err), 0);
            rf_sampler *again = rf_sampler_new(&cfg, s_shape, &err);
            RF_CHECK(again);
            RF_CHECK_EQ_INT(rf_sampler_run(again, back, -1, s_toy, &fx.model, &err), 0);
            for (int t = 0; t < full->ntensors; t++)
                RF_CHECK_MSG(
                    memcmp(full->tensors[t].data, back->tensors[t].data, NX * sizeof(float)) == 0,
                    "%s stopped at %d: tensor %s differs", s_cases[k], stop, full->tensors[t].name);
            RF_CHECK_EQ_INT(rf_chunk_state_compatible(full, back, &err), 0);
            rf_sampler_destroy(&again);
            rf_chunk_state_destroy(&back);
        }
        rf_chunk_state_destroy(&full);
        rf_sampler_destroy(&smp);
        s_free(&fx);
    }
}

RF_TEST(schedules_follow_the_spec)
{
    double s[11];
    RF_CHECK_EQ_INT(rf_sampler_sigmas(RF_SAMPLER_DPMPP, 10, 1.0, s, NULL), 0);
    RF_CHECK(s[0] == 1.0 && s[10] == 0.0);
    RF_CHECK_NEAR(s[5], 0.5, 1e-15);
    RF_CHECK_EQ_INT(rf_sampler_sigmas(RF_SAMPLER_UNIPC, 10, 5.0, s, NULL), 0);
    RF_CHECK_NEAR(s[0], 5.0 * 0.999 / (1.0 + 4.0 * 0.999), 1e-15);
    RF_CHECK(s[10] == 0.0);
    RF_CHECK(rf_sampler_timestep(s[0]) == 999.0f); /* 999.8 truncated */
    RF_CHECK(rf_sampler_timestep(1.0) == 1000.0f);
    RF_CHECK(rf_sampler_timestep(0.0015) == 1.0f);
    for (int i = 0; i < 10; i++)
        RF_CHECK(s[i] > s[i + 1]);
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_sampler_sigmas(RF_SAMPLER_EULER, 0, 5.0, s, &err), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_sampler_sigmas(RF_SAMPLER_EULER, 10, 0.0, s, &err), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_sampler_sigmas(RF_SAMPLER_EULER, 10, NAN, s, &err), RF_EINVAL);
    rf_sampler_kind kind;
    RF_CHECK_EQ_INT(rf_sampler_kind_parse("dpm++", &kind, &err), 0);
    RF_CHECK_EQ_INT(kind, RF_SAMPLER_DPMPP);
    RF_CHECK_EQ_INT(rf_sampler_kind_parse("ddim", &kind, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "unipc");
}

RF_TEST(cfg_is_one_batch_two_call_and_combines_as_specified)
{
    fixture fx;
    s_load(&fx, "unipc");
    rf_error err = {0};
    rf_sampler_config cfg = {RF_SAMPLER_EULER, 4, 5.0, 1, 3.0};
    rf_sampler *smp = rf_sampler_new(&cfg, s_shape, &err);
    rf_chunk_state *st = rf_sampler_state_new(smp, fx.traj, 0, &err);
    RF_CHECK_EQ_INT(rf_sampler_step(smp, st, s_toy, &fx.model, &err), 0);
    RF_CHECK_EQ_INT(fx.model.calls, 1);
    RF_CHECK_EQ_INT(fx.model.last_batch, 2);
    RF_CHECK(fx.model.last_t[0] == 1000.0f && fx.model.last_t[1] == 1000.0f);
    /* recompute the first Euler step by hand from the two model outputs */
    float *v = malloc(2 * NX * sizeof(float)), *x2 = malloc(2 * NX * sizeof(float));
    memcpy(x2, fx.traj, NX * sizeof(float));
    memcpy(x2 + NX, fx.traj, NX * sizeof(float));
    float t2[2] = {1000.0f, 1000.0f};
    RF_CHECK_EQ_INT(s_toy(&fx.model, 2, s_shape, x2, t2, v, NULL), 0);
    float dt = (float)(rf_sampler_sigma(smp, 1) - 1.0);
    const float *x = rf_chunk_state_tensor(st, "latent")->data;
    for (int j = 0; j < NX; j++) {
        float g = v[NX + j] + 3.0f * (v[j] - v[NX + j]);
        RF_CHECK(x[j] == fx.traj[j] + dt * g);
    }
    free(v);
    free(x2);
    rf_chunk_state_destroy(&st);
    rf_sampler_destroy(&smp);
    s_free(&fx);
}

RF_TEST(wrong_states_and_model_errors_are_refused)
{
    fixture fx;
    s_load(&fx, "dpmpp");
    rf_error err = {0};
    rf_sampler *smp = rf_sampler_new(&fx.cfg, s_shape, &err);
    rf_chunk_state *st = rf_sampler_state_new(smp, fx.traj, 0, &err);
    RF_CHECK_EQ_INT(rf_sampler_run(smp, st, 3, s_toy, &fx.model, &err), 0);
    /* a model failure leaves the state as it was */
    rf_chunk_state *before = rf_chunk_state_clone(st, NULL);
    fx.model.fail_at = fx.model.calls + 1;
    RF_CHECK_EQ_INT(rf_sampler_step(smp, st, s_toy, &fx.model, &err), RF_EIO);
    RF_CHECK_CONTAINS(err.msg, "step 3");
    for (int t = 0; t < st->ntensors; t++)
        RF_CHECK(memcmp(st->tensors[t].data, before->tensors[t].data, NX * sizeof(float)) == 0);
    RF_CHECK_EQ_INT(rf_sampler_state_step(st), 3);
    rf_chunk_state_destroy(&before);
    /* another sampler's state, another shift, a missing history tensor */
    rf_sampler_config other = fx.cfg;
    other.kind = RF_SAMPLER_UNIPC;
    rf_sampler *u = rf_sampler_new(&other, s_shape, &err);
    RF_CHECK_EQ_INT(rf_sampler_step(u, st, s_toy, &fx.model, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "dpm++");
    rf_sampler_destroy(&u);
    other = fx.cfg;
    other.shift += 1e-12;
    u = rf_sampler_new(&other, s_shape, &err);
    RF_CHECK_EQ_INT(rf_sampler_step(u, st, s_toy, &fx.model, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "shift");
    rf_sampler_destroy(&u);
    int64_t small[4] = {C, NF, NH, 2};
    u = rf_sampler_new(&fx.cfg, small, &err);
    RF_CHECK_EQ_INT(rf_sampler_step(u, st, s_toy, &fx.model, &err), RF_ESHAPE);
    rf_sampler_destroy(&u);
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(st, "lower_order_nums", 7, NULL), 0);
    RF_CHECK_EQ_INT(rf_sampler_step(smp, st, s_toy, &fx.model, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "lower_order_nums");
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(st, "lower_order_nums", 2, NULL), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(st, "step", 99, NULL), 0);
    RF_CHECK_EQ_INT(rf_sampler_step(smp, st, s_toy, &fx.model, &err), RF_EINVAL);
    /* a partial (overlap-only) state cannot be stepped */
    rf_chunk_state_set_i64(st, "step", 3, NULL);
    rf_cs_span sp = {0, 2};
    rf_chunk_state *piece = rf_chunk_state_extract(st, &sp, 1, &err);
    RF_CHECK_EQ_INT(rf_sampler_step(smp, piece, s_toy, &fx.model, &err), RF_ESHAPE);
    rf_chunk_state_destroy(&piece);
    rf_chunk_state_destroy(&st);
    /* bad configs */
    rf_sampler_config bad = fx.cfg;
    bad.steps = 0;
    RF_CHECK(rf_sampler_new(&bad, s_shape, &err) == NULL);
    bad = fx.cfg;
    bad.guidance = INFINITY;
    RF_CHECK(rf_sampler_new(&bad, s_shape, &err) == NULL);
    int64_t zero[4] = {C, 0, NH, NW};
    RF_CHECK(rf_sampler_new(&fx.cfg, zero, &err) == NULL);
    rf_sampler_destroy(&smp);
    s_free(&fx);
}

/* Two chunks of a 5-frame timeline, windows [0,3) and [2,5), each with its own sampler,
 * fused after every step (lockstep). The toy model acts per frame, so a chunk run on
 * the same global noise must equal the whole-timeline run bit for bit: fusing chunks
 * that agree changes nothing, for every tensor of the solver's history. */
RF_TEST(lockstep_chunks_with_fusion_equal_the_whole_timeline)
{
    fixture fx;
    s_load(&fx, "unipc");
    const int T = 5, CW = 3;
    const size_t sp = NH * NW;
    float *whole = malloc((size_t)C * T * sp * sizeof(float));
    for (int c = 0; c < C; c++) /* global noise: frame f of the timeline */
        for (int f = 0; f < T; f++)
            for (size_t p = 0; p < sp; p++)
                whole[((size_t)c * T + (size_t)f) * sp + p] =
                    fx.traj[((size_t)c * NF + (size_t)(f % NF)) * sp + p] *
                    (1.0f + 0.1f * (float)f);
    const char *kinds[3] = {"unipc", "dpm++", "euler"};
    for (int k = 0; k < 3; k++) {
        rf_error err = {0};
        rf_sampler_config cfg = {RF_SAMPLER_UNIPC, 6, 5.0, 1, 5.0};
        RF_CHECK_EQ_INT(rf_sampler_kind_parse(kinds[k], &cfg.kind, &err), 0);
        int64_t shw[4] = {C, T, NH, NW}, shc[4] = {C, CW, NH, NW};
        rf_sampler *sw = rf_sampler_new(&cfg, shw, &err), *sc = rf_sampler_new(&cfg, shc, &err);
        rf_chunk_state *ref = rf_sampler_state_new(sw, whole, 0, &err);
        RF_CHECK_EQ_INT(rf_sampler_run(sw, ref, -1, s_toy, &fx.model, &err), 0);
        rf_chunk_state *ch[2];
        for (int i = 0; i < 2; i++) {
            int64_t f0 = i * 2;
            float *x = malloc((size_t)C * CW * sp * sizeof(float));
            for (int c = 0; c < C; c++)
                memcpy(x + (size_t)c * CW * sp, whole + ((size_t)c * T + (size_t)f0) * sp,
                       (size_t)CW * sp * sizeof(float));
            ch[i] = rf_sampler_state_new(sc, x, f0, &err);
            free(x);
        }
        for (int s = 0; s < cfg.steps; s++) {
            rf_chunk_state *arrive[2] = {ch[1], ch[0]};
            for (int i = 0; i < 2; i++)
                RF_CHECK_EQ_INT(rf_sampler_step(sc, ch[i], s_toy, &fx.model, &err), 0);
            RF_CHECK_MSG(rf_fusion_fuse(arrive, 2, RF_FUSION_LINEAR, &err) == 0, "%s", err.msg);
        }
        for (int t = 0; t < ref->ntensors; t++) {
            const rf_cs_tensor *w = &ref->tensors[t];
            for (int i = 0; i < 2; i++) {
                const rf_cs_tensor *ct = rf_chunk_state_tensor(ch[i], w->name);
                RF_CHECK(ct);
                for (int c = 0; c < C; c++)
                    RF_CHECK_MSG(memcmp(ct->data + (size_t)c * CW * sp,
                                        w->data + ((size_t)c * T + (size_t)(i * 2)) * sp,
                                        (size_t)CW * sp * sizeof(float)) == 0,
                                 "%s: chunk %d tensor %s differs from the whole run", kinds[k], i,
                                 w->name);
            }
        }
        /* a chunk one step ahead is refused by the fusion */
        rf_chunk_state_set_i64(ch[0], "step", 5, NULL);
        RF_CHECK_EQ_INT(rf_fusion_fuse(ch, 2, RF_FUSION_LINEAR, &err), RF_EINVAL);
        RF_CHECK_CONTAINS(err.msg, "'step'");
        for (int i = 0; i < 2; i++)
            rf_chunk_state_destroy(&ch[i]);
        rf_chunk_state_destroy(&ref);
        rf_sampler_destroy(&sw);
        rf_sampler_destroy(&sc);
    }
    free(whole);
    s_free(&fx);
}

/* Chunks that disagree (each sees a different model) end every round agreeing on the
 * shared frame, in the latent and in every history tensor. */
RF_TEST(lockstep_fusion_makes_disagreeing_chunks_agree)
{
    fixture fx;
    s_load(&fx, "unipc");
    toy other = fx.model;
    for (int c = 0; c < 2 * C; c++)
        other.bias[c] += 0.5f;
    rf_error err = {0};
    rf_sampler_config cfg = {RF_SAMPLER_UNIPC, 5, 5.0, 1, 5.0};
    rf_sampler *smp = rf_sampler_new(&cfg, s_shape, &err);
    rf_chunk_state *a = rf_sampler_state_new(smp, fx.traj, 0, &err);
    rf_chunk_state *b = rf_sampler_state_new(smp, fx.traj, 2, &err); /* shares frame 2 */
    rf_chunk_state *both[2] = {a, b};
    const size_t sp = NH * NW;
    for (int s = 0; s < cfg.steps; s++) {
        RF_CHECK_EQ_INT(rf_sampler_step(smp, a, s_toy, &fx.model, &err), 0);
        RF_CHECK_EQ_INT(rf_sampler_step(smp, b, s_toy, &other, &err), 0);
        RF_CHECK_EQ_INT(rf_fusion_fuse(both, 2, RF_FUSION_COSINE, &err), 0);
        for (int t = 0; t < a->ntensors; t++)
            for (int c = 0; c < C; c++) /* a's frame 2 is b's frame 0 */
                RF_CHECK(memcmp(a->tensors[t].data + ((size_t)c * NF + 2) * sp,
                                b->tensors[t].data + ((size_t)c * NF) * sp,
                                sp * sizeof(float)) == 0);
    }
    rf_chunk_state_destroy(&a);
    rf_chunk_state_destroy(&b);
    rf_sampler_destroy(&smp);
    s_free(&fx);
}
