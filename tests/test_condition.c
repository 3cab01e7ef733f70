/* test_condition.c - known frames re-imposed during sampling and SDEdit starts
 * (engine/condition), by exact invariants on a toy model whose frames talk to each other:
 * the blend's ends (sigma 1: the initial noise, sigma 0: x0) bit for bit, known frames at
 * the last step equal to x0 exactly under every sampler, the unknown frames moved by
 * them, stop/resume and chunk-placement independence of the noise, strength 0 returning
 * the input latent with no model call, the start step rule, skipped steps, refusals. */
#include "condition.h"
#include "rf_test.h"
#include "rng.h"
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define C  16
#define NF 4
#define NH 2
#define NW 3
#define HW (NH * NW)
#define NX (C * NF * HW)

typedef struct toy {
    int calls;
} toy;

/* v[c,f] = 0.3 x[c,f] - 0.2 x[(c+1)%C,f] + 0.5 tanh(x[c,f-1]) + (t/1000) 0.1: frames see
 * their predecessor, so known frames steer the rest. */
static int s_toy(void *ctx, int batch, const int64_t shape[4], const float *x, const float *t,
                 float *v, rf_error *err)
{
    (void)err;
    toy *m = ctx;
    m->calls++;
    int64_t F = shape[1], S = shape[2] * shape[3];
    for (int b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * C * F * S;
        float *vb = v + (size_t)b * C * F * S;
        for (int c = 0; c < C; c++)
            for (int64_t f = 0; f < F; f++)
                for (int64_t p = 0; p < S; p++) {
                    double a = 0.3 * xb[(c * F + f) * S + p] -
                               0.2 * xb[(((c + 1) % C) * F + f) * S + p] +
                               (f > 0 ? 0.5 * tanh(xb[(c * F + f - 1) * S + p]) : 0.0) +
                               t[b] / 1000.0 * 0.1 * (b ? -1 : 1);
                    vb[(c * F + f) * S + p] = (float)a;
                }
    }
    return 0;
}

static const int64_t SHAPE[4] = {C, NF, NH, NW};
#define SEED 1234u
#define TL   0u

static rf_sampler *s_sampler(rf_sampler_kind kind, int steps)
{
    rf_sampler_config cfg = {kind, steps, 3.0, 1, 4.0};
    rf_error err = {0};
    rf_sampler *s = rf_sampler_new(&cfg, SHAPE, &err);
    RF_CHECK_MSG(s, "%s", err.msg);
    return s;
}

/* x0 of global frames [first, first + n) */
static float *s_x0(int64_t n, float base)
{
    float *z = malloc((size_t)(C * n * HW) * sizeof(float));
    for (int64_t i = 0; i < C * n * HW; i++)
        z[i] = base + 0.01f * (float)(i % 97) - 0.4f;
    return z;
}

static rf_chunk_state *s_fresh(rf_sampler *s, int64_t start)
{
    float x[NX];
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_noise_latent(SEED, TL, (uint32_t)start, C, NF, NH, NW, x, &err), 0);
    rf_chunk_state *st = rf_sampler_state_new(s, x, start, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    return st;
}

/* The render loop with re-imposition: before every model call and at the end. */
static void s_run(rf_sampler *s, rf_chunk_state *st, int until, const rf_cond_span *sp, int n,
                  toy *m)
{
    rf_error err = {0};
    int start = rf_cond_state_start(st);
    while (rf_sampler_state_step(st) < until) {
        if (rf_sampler_state_step(st) < start) {
            RF_CHECK_EQ_INT(rf_sampler_skip(s, st, &err), 0);
            continue;
        }
        RF_CHECK_EQ_INT(rf_cond_reimpose(s, st, sp, n, SEED, TL, &err), 0);
        RF_CHECK_MSG(rf_sampler_step(s, st, s_toy, m, &err) == 0, "%s", err.msg);
    }
    RF_CHECK_EQ_INT(rf_cond_reimpose(s, st, sp, n, SEED, TL, &err), 0);
}

static float *s_frame_ptr(rf_chunk_state *st, int c, int64_t f)
{
    return rf_chunk_state_tensor(st, "latent")->data + ((size_t)c * NF + (size_t)f) * HW;
}

RF_TEST(blend_ends_are_noise_and_x0)
{
    float x[NX], noise[NX];
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_noise_latent(SEED, TL, 5, C, NF, NH, NW, noise, &err), 0);
    float *z = s_x0(2, 0.0f);
    rf_cond_span sp = {z, 6, 2, C, NH, NW}; /* frames 6, 7 of the window [5, 9) */
    memset(x, 0, sizeof(x));
    RF_CHECK_EQ_INT(rf_cond_blend(x, SHAPE, 5, 1.0, &sp, 1, SEED, TL, &err), 0);
    for (int c = 0; c < C; c++)
        for (int f = 0; f < NF; f++)
            for (int p = 0; p < HW; p++) {
                size_t i = ((size_t)c * NF + (size_t)f) * HW + (size_t)p;
                float want = (f == 1 || f == 2) ? noise[i] : 0.0f;
                RF_CHECK(memcmp(&x[i], &want, sizeof(float)) == 0);
            }
    RF_CHECK_EQ_INT(rf_cond_blend(x, SHAPE, 5, 0.0, &sp, 1, SEED, TL, &err), 0);
    for (int c = 0; c < C; c++)
        for (int f = 1; f <= 2; f++)
            RF_CHECK(memcmp(&x[((size_t)c * NF + (size_t)f) * HW],
                            &z[((size_t)c * 2 + (size_t)(f - 1)) * HW], HW * sizeof(float)) == 0);
    /* a span of another size is refused with both shapes */
    rf_cond_span bad = {z, 6, 2, C, NH + 1, NW};
    RF_CHECK_EQ_INT(rf_cond_blend(x, SHAPE, 5, 0.5, &bad, 1, SEED, TL, &err), RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg, "job's size");
    free(z);
}

RF_TEST(known_frames_end_exactly_at_x0_and_steer_the_rest)
{
    for (int kind = 0; kind < RF_SAMPLER_COUNT; kind++) {
        rf_sampler *s = s_sampler((rf_sampler_kind)kind, 6);
        float *z = s_x0(1, 0.3f);
        rf_cond_span sp = {z, 0, 1, C, NH, NW}; /* image -> video: frame 0 */
        toy m = {0};
        rf_chunk_state *a = s_fresh(s, 0), *b = s_fresh(s, 0);
        s_run(s, a, 6, &sp, 1, &m);
        s_run(s, b, 6, NULL, 0, &m);
        for (int c = 0; c < C; c++)
            RF_CHECK(memcmp(s_frame_ptr(a, c, 0), z + (size_t)c * HW, HW * sizeof(float)) == 0);
        /* the frame after the known one follows it: differs from the text-only run */
        double d = 0;
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++)
                d += fabs(s_frame_ptr(a, c, 1)[p] - s_frame_ptr(b, c, 1)[p]);
        RF_CHECK_MSG(d > 1e-3, "%s: frame 1 did not move with the known frame (%g)",
                     rf_sampler_kind_name((rf_sampler_kind)kind), d);
        rf_chunk_state_destroy(&a);
        rf_chunk_state_destroy(&b);
        rf_sampler_destroy(&s);
        free(z);
    }
}

RF_TEST(reimposed_run_resumes_bit_identically)
{
    rf_sampler *s = s_sampler(RF_SAMPLER_UNIPC, 7);
    float *z = s_x0(2, -0.2f);
    rf_cond_span sp = {z, 0, 2, C, NH, NW}; /* continuation: two known frames */
    toy m = {0};
    rf_error err = {0};
    rf_chunk_state *a = s_fresh(s, 0), *b = s_fresh(s, 0);
    s_run(s, a, 7, &sp, 1, &m);
    s_run(s, b, 3, &sp, 1, &m);
    rf_chunk_state *c = rf_chunk_state_clone(b, &err);
    rf_chunk_state_destroy(&b);
    s_run(s, c, 7, &sp, 1, &m);
    const rf_cs_tensor *ta = rf_chunk_state_tensor(a, "latent"),
                       *tc = rf_chunk_state_tensor(c, "latent");
    RF_CHECK(memcmp(ta->data, tc->data, NX * sizeof(float)) == 0);
    /* re-imposing is idempotent */
    RF_CHECK_EQ_INT(rf_cond_reimpose(s, c, &sp, 1, SEED, TL, &err), 0);
    RF_CHECK(memcmp(ta->data, tc->data, NX * sizeof(float)) == 0);
    rf_chunk_state_destroy(&a);
    rf_chunk_state_destroy(&c);
    rf_sampler_destroy(&s);
    free(z);
}

RF_TEST(reimposed_noise_is_that_of_the_global_frame)
{
    /* a chunk starting at global frame 3 holding known frames 3..4 re-imposes the same
     * values there as a chunk starting at 1 */
    rf_sampler *s = s_sampler(RF_SAMPLER_EULER, 5);
    float *z = s_x0(2, 0.1f);
    rf_cond_span sp = {z, 3, 2, C, NH, NW};
    rf_error err = {0};
    rf_chunk_state *a = s_fresh(s, 1), *b = s_fresh(s, 3);
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(a, "step", 2, &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(b, "step", 2, &err), 0);
    RF_CHECK_EQ_INT(rf_cond_reimpose(s, a, &sp, 1, SEED, TL, &err), 0);
    RF_CHECK_EQ_INT(rf_cond_reimpose(s, b, &sp, 1, SEED, TL, &err), 0);
    for (int c = 0; c < C; c++)
        for (int f = 0; f < 2; f++)
            RF_CHECK(memcmp(s_frame_ptr(a, c, 2 + f), s_frame_ptr(b, c, f), HW * sizeof(float)) ==
                     0);
    rf_chunk_state_destroy(&a);
    rf_chunk_state_destroy(&b);
    rf_sampler_destroy(&s);
    free(z);
}

RF_TEST(start_step_follows_the_sigmas)
{
    rf_sampler *s = s_sampler(RF_SAMPLER_UNIPC, 10);
    RF_CHECK_EQ_INT(rf_cond_start_step(s, 0.0), 10);
    RF_CHECK_EQ_INT(rf_cond_start_step(s, 1.0), 0);
    for (double st = 0.05; st < 1.0; st += 0.1) {
        int k = rf_cond_start_step(s, st);
        RF_CHECK(rf_sampler_sigma(s, k) <= st);
        RF_CHECK(k == 0 || rf_sampler_sigma(s, k - 1) > st);
    }
    rf_sampler_destroy(&s);
}

RF_TEST(strength_zero_returns_the_input_latent_without_a_model_call)
{
    for (int kind = 0; kind < RF_SAMPLER_COUNT; kind++) {
        rf_sampler *s = s_sampler((rf_sampler_kind)kind, 5);
        float *z = s_x0(NF + 2, 0.0f);
        rf_cond_span sp = {z, 0, NF + 2, C, NH, NW};
        rf_error err = {0};
        rf_chunk_state *st = s_fresh(s, 2);
        RF_CHECK_EQ_INT(rf_cond_sdedit_init(s, st, 0.0, &sp, 1, SEED, TL, &err), 0);
        RF_CHECK_EQ_INT(rf_cond_state_start(st), 5);
        toy m = {0};
        s_run(s, st, 5, NULL, 0, &m);
        RF_CHECK_EQ_INT(m.calls, 0);
        RF_CHECK_EQ_INT(rf_sampler_state_step(st), 5);
        for (int c = 0; c < C; c++)
            RF_CHECK(memcmp(s_frame_ptr(st, c, 0), z + ((size_t)c * (NF + 2) + 2) * HW,
                            NF * HW * sizeof(float)) == 0);
        rf_chunk_state_destroy(&st);
        rf_sampler_destroy(&s);
        free(z);
    }
}

RF_TEST(sdedit_skips_to_its_start_and_resumes)
{
    for (int kind = 0; kind < RF_SAMPLER_COUNT; kind++) {
        rf_sampler *s = s_sampler((rf_sampler_kind)kind, 8);
        float *z = s_x0(NF, 0.2f);
        rf_cond_span sp = {z, 0, NF, C, NH, NW};
        rf_error err = {0};
        rf_chunk_state *a = s_fresh(s, 0);
        RF_CHECK_EQ_INT(rf_cond_sdedit_init(s, a, 0.8, &sp, 1, SEED, TL, &err), 0);
        int k = rf_cond_state_start(a);
        RF_CHECK(k > 0 && k < 8);
        /* the start latent is x0 noised to sigma_k */
        float want[NX];
        memcpy(want, rf_chunk_state_tensor(a, "latent")->data, sizeof(want));
        rf_chunk_state *b = rf_chunk_state_clone(a, &err);
        toy m = {0};
        s_run(s, a, 8, NULL, 0, &m);
        RF_CHECK_EQ_INT(m.calls, 8 - k);
        /* the end is near x0 (the toy model's x0 estimate drifts, but not to noise) and
         * finite; stopping in the skipped part and resuming changes nothing */
        s_run(s, b, k - 1 > 0 ? k - 1 : 0, NULL, 0, &m);
        RF_CHECK(memcmp(rf_chunk_state_tensor(b, "latent")->data, want, sizeof(want)) == 0);
        rf_chunk_state *c = rf_chunk_state_clone(b, &err);
        s_run(s, c, 8, NULL, 0, &m);
        RF_CHECK(memcmp(rf_chunk_state_tensor(a, "latent")->data,
                        rf_chunk_state_tensor(c, "latent")->data, NX * sizeof(float)) == 0);
        for (int i = 0; i < NX; i++)
            RF_CHECK(isfinite(rf_chunk_state_tensor(a, "latent")->data[i]));
        /* skipping after a real step is refused for the multistep solvers */
        if (kind != RF_SAMPLER_EULER) {
            rf_chunk_state *d = s_fresh(s, 0);
            RF_CHECK_EQ_INT(rf_sampler_step(s, d, s_toy, &m, &err), 0);
            RF_CHECK_EQ_INT(rf_sampler_skip(s, d, &err), RF_EINVAL);
            rf_chunk_state_destroy(&d);
        }
        rf_chunk_state_destroy(&a);
        rf_chunk_state_destroy(&b);
        rf_chunk_state_destroy(&c);
        rf_sampler_destroy(&s);
        free(z);
    }
}

RF_TEST(sdedit_refuses_a_clip_that_does_not_cover_the_chunk)
{
    rf_sampler *s = s_sampler(RF_SAMPLER_UNIPC, 4);
    float *z = s_x0(2, 0.0f);
    rf_cond_span sp = {z, 0, 2, C, NH, NW};
    rf_error err = {0};
    rf_chunk_state *st = s_fresh(s, 0);
    RF_CHECK_EQ_INT(rf_cond_sdedit_init(s, st, 0.5, &sp, 1, SEED, TL, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "shorter than the film");
    RF_CHECK_EQ_INT(rf_cond_sdedit_init(s, st, 1.5, &sp, 1, SEED, TL, &err), RF_EINVAL);
    rf_chunk_state_destroy(&st);
    rf_sampler_destroy(&s);
    free(z);
}
