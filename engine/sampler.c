/* sampler.c - Euler, UniPC (bh2) and DPM-Solver++ (2M) over a chunk state.
 *
 * Scalar work (sigmas, lambdas, solver coefficients) is done in double; every tensor
 * update is a fixed sequence of f32 operations with f32 coefficients, written the same
 * way in tools/reference/samplers.py, so the two agree step by step. The infinities of
 * lambda = log(1 - s) - log(s) at s = 1 and s = 0 are handled explicitly: a step to
 * s = 0 returns the x0 prediction, and history taken at s = 1 carries no second-order
 * information (its coefficient is exactly 0), so that step is first order.
 * Never reads history it has not written: the counters in the state say what is valid.
 */
#include "sampler.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_names[RF_SAMPLER_COUNT] = {"euler", "unipc", "dpm++"};

int rf_sampler_kind_parse(const char *name, rf_sampler_kind *out, rf_error *err)
{
    for (int i = 0; name && i < RF_SAMPLER_COUNT; i++)
        if (strcmp(name, s_names[i]) == 0) {
            *out = (rf_sampler_kind)i;
            return 0;
        }
    return rf_error_set(err, RF_EINVAL, "sampler '%s' is unknown; use unipc, euler or dpm++",
                        name ? name : "(null)");
}

const char *rf_sampler_kind_name(rf_sampler_kind kind)
{
    return (unsigned)kind < RF_SAMPLER_COUNT ? s_names[kind] : "?";
}

struct rf_sampler {
    rf_sampler_config cfg;
    int64_t shape[4];
    size_t n;       /* C*F*H*W */
    double *sigmas; /* steps + 1 */
    float *xin;     /* [batch, n] model input */
    float *v;       /* [batch, n] model output */
    float *m;       /* x0 prediction of this step */
};

int rf_sampler_sigmas(rf_sampler_kind kind, int steps, double shift, double *out, rf_error *err)
{
    if ((unsigned)kind >= RF_SAMPLER_COUNT || steps < 1 || steps > RF_SAMPLER_MAX_STEPS ||
        !(shift > 0.0) || !isfinite(shift))
        return rf_error_set(err, RF_EINVAL,
                            "sampler schedule: steps must be 1..%d and shift a positive "
                            "number (got steps %d, shift %g)",
                            RF_SAMPLER_MAX_STEPS, steps, shift);
    /* numpy.linspace(start, 0, N+1): start + i * ((0 - start) / N), last = 0 exactly */
    double start = kind == RF_SAMPLER_UNIPC ? 0.999 : 1.0;
    double step = (0.0 - start) / (double)steps;
    for (int i = 0; i < steps; i++) {
        double s = (double)i * step + start;
        out[i] = shift * s / (1.0 + (shift - 1.0) * s);
    }
    out[steps] = 0.0;
    return 0;
}

float rf_sampler_timestep(double sigma)
{
    return (float)floor(sigma * 1000.0);
}

/* lambda = log(alpha) - log(sigma) with alpha = 1 - s; -inf at s = 1, +inf at s = 0. */
static double s_lambda(double s)
{
    if (s >= 1.0)
        return -INFINITY;
    if (s <= 0.0)
        return INFINITY;
    return log(1.0 - s) - log(s);
}

rf_sampler *rf_sampler_new(const rf_sampler_config *cfg, const int64_t shape[4], rf_error *err)
{
    size_t n = 1;
    for (int d = 0; d < 4; d++) {
        if (shape[d] < 1 || (uint64_t)shape[d] > ((uint64_t)1 << 36) / n) {
            rf_error_set(err, RF_ESHAPE,
                         "sampler: latent shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                         "] is empty or too large",
                         shape[0], shape[1], shape[2], shape[3]);
            return NULL;
        }
        n *= (size_t)shape[d];
    }
    if (cfg->cfg && !isfinite(cfg->guidance)) {
        rf_error_set(err, RF_EINVAL, "sampler: guidance must be a finite number");
        return NULL;
    }
    rf_sampler *s = calloc(1, sizeof(*s));
    if (!s) {
        rf_error_set(err, RF_ENOMEM, "sampler: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->cfg.cfg = cfg->cfg ? 1 : 0;
    if (!s->cfg.cfg)
        s->cfg.guidance = 1.0;
    memcpy(s->shape, shape, sizeof(s->shape));
    s->n = n;
    s->sigmas = malloc(((size_t)(cfg->steps > 0 ? cfg->steps : 0) + 1) * sizeof(double));
    int rc = s->sigmas ? rf_sampler_sigmas(cfg->kind, cfg->steps, cfg->shift, s->sigmas, err)
                       : rf_error_set(err, RF_ENOMEM, "sampler: out of memory");
    size_t batch = s->cfg.cfg ? 2 : 1;
    if (!rc) {
        s->xin = malloc(batch * n * sizeof(float));
        s->v = malloc(batch * n * sizeof(float));
        s->m = malloc(n * sizeof(float));
        if (!s->xin || !s->v || !s->m)
            rc = rf_error_set(err, RF_ENOMEM, "sampler: out of memory for %zu floats of scratch",
                              (2 * batch + 1) * n);
    }
    if (rc)
        rf_sampler_destroy(&s);
    return s;
}

void rf_sampler_destroy(rf_sampler **self)
{
    if (!self || !*self)
        return;
    free((*self)->sigmas);
    free((*self)->xin);
    free((*self)->v);
    free((*self)->m);
    free(*self);
    *self = NULL;
}

const rf_sampler_config *rf_sampler_get_config(const rf_sampler *self)
{
    return &self->cfg;
}

double rf_sampler_sigma(const rf_sampler *self, int i)
{
    return self->sigmas[i];
}

/* The history tensors each solver keeps, beside "latent". */
static const char *const s_history[RF_SAMPLER_COUNT][3] = {
    {NULL},                               /* euler */
    {"m_prev", "m_prev2", "last_sample"}, /* unipc: x0 predictions i-1, i-2; x_{i-1} */
    {"m_prev", NULL},                     /* dpm++: x0 prediction i-1 */
};

rf_chunk_state *rf_sampler_state_new(const rf_sampler *self, const float *x_init,
                                     int64_t window_start, rf_error *err)
{
    rf_chunk_state *st = rf_chunk_state_new(window_start, self->shape[1], err);
    if (!st)
        return NULL;
    const rf_sampler_config *c = &self->cfg;
    int rc = rf_chunk_state_add(st, "latent", 4, self->shape, 1, x_init, err) ? 0 : RF_ENOMEM;
    for (int k = 0; !rc && k < 3 && s_history[c->kind][k]; k++)
        rc = rf_chunk_state_add(st, s_history[c->kind][k], 4, self->shape, 1, NULL, err)
                 ? 0
                 : RF_ENOMEM;
    if (!rc)
        rc = rf_chunk_state_set_str(st, "sampler", rf_sampler_kind_name(c->kind), err);
    if (!rc)
        rc = rf_chunk_state_set_i64(st, "steps", c->steps, err);
    if (!rc)
        rc = rf_chunk_state_set_f64(st, "shift", c->shift, err);
    if (!rc)
        rc = rf_chunk_state_set_i64(st, "cfg", c->cfg, err);
    if (!rc)
        rc = rf_chunk_state_set_f64(st, "guidance", c->guidance, err);
    if (!rc)
        rc = rf_chunk_state_set_i64(st, "step", 0, err);
    if (!rc && c->kind != RF_SAMPLER_EULER) /* steps taken with history, capped at order 2 */
        rc = rf_chunk_state_set_i64(st, "lower_order_nums", 0, err);
    if (!rc && c->kind == RF_SAMPLER_UNIPC) /* order of the last predictor (0: none yet) */
        rc = rf_chunk_state_set_i64(st, "last_order", 0, err);
    if (rc)
        rf_chunk_state_destroy(&st);
    return st;
}

int rf_sampler_config_from_state(const rf_chunk_state *st, rf_sampler_config *cfg, rf_error *err)
{
    const rf_cs_scalar *name = rf_chunk_state_scalar(st, "sampler");
    if (!name || name->kind != RF_CS_STR)
        return rf_error_set(err, RF_EINVAL,
                            "chunk state has no 'sampler' scalar; it was not "
                            "written by a reelfarm sampler");
    int64_t steps, use_cfg;
    int rc = rf_sampler_kind_parse(name->s, &cfg->kind, err);
    if (!rc)
        rc = rf_chunk_state_get_i64(st, "steps", &steps, err);
    if (!rc)
        rc = rf_chunk_state_get_f64(st, "shift", &cfg->shift, err);
    if (!rc)
        rc = rf_chunk_state_get_i64(st, "cfg", &use_cfg, err);
    if (!rc)
        rc = rf_chunk_state_get_f64(st, "guidance", &cfg->guidance, err);
    if (rc)
        return rc;
    if (steps < 1 || steps > RF_SAMPLER_MAX_STEPS)
        return rf_error_set(err, RF_EINVAL, "chunk state: steps %" PRId64 " is out of range",
                            steps);
    cfg->steps = (int)steps;
    cfg->cfg = use_cfg ? 1 : 0;
    return 0;
}

int rf_sampler_state_step(const rf_chunk_state *st)
{
    const rf_cs_scalar *sc = rf_chunk_state_scalar(st, "step");
    return sc && sc->kind == RF_CS_I64 && sc->i >= 0 && sc->i <= INT32_MAX ? (int)sc->i : -1;
}

int rf_sampler_check_state(const rf_sampler *self, const rf_chunk_state *st, rf_error *err)
{
    rf_sampler_config c;
    int rc = rf_sampler_config_from_state(st, &c, err);
    if (rc)
        return rc;
    const rf_sampler_config *m = &self->cfg;
    if (c.kind != m->kind || c.steps != m->steps || c.cfg != m->cfg ||
        memcmp(&c.shift, &m->shift, sizeof(double)) != 0 ||
        memcmp(&c.guidance, &m->guidance, sizeof(double)) != 0)
        return rf_error_set(err, RF_EINVAL,
                            "chunk state was made by sampler %s, %d steps, shift %.17g, cfg %d, "
                            "guidance %.17g; this run is %s, %d steps, shift %.17g, cfg %d, "
                            "guidance %.17g (resume with the state's settings)",
                            rf_sampler_kind_name(c.kind), c.steps, c.shift, c.cfg, c.guidance,
                            rf_sampler_kind_name(m->kind), m->steps, m->shift, m->cfg, m->guidance);
    int step = rf_sampler_state_step(st);
    if (step < 0 || step > m->steps)
        return rf_error_set(err, RF_EINVAL, "chunk state: step is missing or outside 0..%d",
                            m->steps);
    if (st->nspans != 1 || st->window_len != self->shape[1])
        return rf_error_set(err, RF_ESHAPE,
                            "chunk state holds %" PRId64 " frames in %d spans; the sampler "
                            "needs the whole window of %" PRId64 " frames",
                            rf_chunk_state_held(st), st->nspans, self->shape[1]);
    const char *need[4] = {"latent", s_history[m->kind][0], s_history[m->kind][1],
                           s_history[m->kind][2]};
    for (int k = 0; k < 4 && need[k]; k++) {
        const rf_cs_tensor *t = rf_chunk_state_tensor(st, need[k]);
        if (!t || t->ndim != 4 || t->frame_axis != 1 ||
            memcmp(t->shape, self->shape, sizeof(self->shape)))
            return rf_error_set(err, RF_ESHAPE,
                                "chunk state: tensor '%s' is missing or not [%" PRId64 ", %" PRId64
                                ", %" PRId64 ", %" PRId64 "] framed on axis 1",
                                need[k], self->shape[0], self->shape[1], self->shape[2],
                                self->shape[3]);
    }
    const char *counters[2] = {m->kind != RF_SAMPLER_EULER ? "lower_order_nums" : NULL,
                               m->kind == RF_SAMPLER_UNIPC ? "last_order" : NULL};
    for (int k = 0; k < 2; k++) {
        int64_t v;
        if (counters[k] &&
            ((rc = rf_chunk_state_get_i64(st, counters[k], &v, err)) || v < 0 || v > 2 || v > step))
            return rc ? rc
                      : rf_error_set(err, RF_EINVAL,
                                     "chunk state: counter '%s' = %" PRId64
                                     " is impossible at step %d",
                                     counters[k], v, step);
    }
    return 0;
}

/* v = v_u + g (v_c - v_u) into v[0..n) (f32, in this order of operations). */
static void s_guide(float *v, size_t n, float g)
{
    const float *vu = v + n;
    for (size_t j = 0; j < n; j++)
        v[j] = vu[j] + g * (v[j] - vu[j]);
}

static void s_euler(rf_sampler *self, float *x, int i)
{
    float dt = (float)(self->sigmas[i + 1] - self->sigmas[i]);
    for (size_t j = 0; j < self->n; j++)
        x[j] = x[j] + dt * self->v[j];
}

static void s_dpmpp(rf_sampler *self, rf_chunk_state *st, float *x, int i, int64_t *lon)
{
    const double *sg = self->sigmas;
    const float *m = self->m;
    float *mp = rf_chunk_state_tensor(st, "m_prev")->data;
    size_t n = self->n;
    double s = sg[i], t = sg[i + 1];
    /* second order needs one earlier x0 prediction taken at a finite lambda, and the
     * final step to s = 0 is first order (it returns the x0 prediction) */
    int order = (*lon >= 1 && t > 0.0 && sg[i - 1] < 1.0) ? 2 : 1;
    if (t <= 0.0) {
        memcpy(x, m, n * sizeof(float));
    } else {
        double h = s_lambda(t) - s_lambda(s);
        float cx = (float)(t / s);
        float cm = (float)(-(1.0 - t) * expm1(-h)); /* alpha_t (1 - e^-h) */
        if (order == 1) {
            for (size_t j = 0; j < n; j++)
                x[j] = cx * x[j] + cm * m[j];
        } else {
            double r = (s_lambda(s) - s_lambda(sg[i - 1])) / h;
            float cd = (float)(0.5 / r);
            for (size_t j = 0; j < n; j++)
                x[j] = cx * x[j] + cm * (m[j] + cd * (m[j] - mp[j]));
        }
    }
    memcpy(mp, m, n * sizeof(float));
    if (*lon < 2)
        (*lon)++;
}

/* UniPC bh2 coefficients from s0 (the step's start) to t, B(h) = expm1(-h) with h the
 * lambda step: returns a = s_t/s_s0, b = alpha_t * expm1(-h), c = alpha_t * B(h) and the
 * phi-based right-hand sides b1, b2 of the order conditions (divided by B(h)). */
static void s_unipc_coef(double s0, double t, double *a, double *b, double *c, double *b1,
                         double *b2, double *h)
{
    *h = s_lambda(t) - s_lambda(s0);
    double hh = -*h;
    double phi1 = expm1(hh); /* e^{-h} - 1 */
    double bh = phi1;        /* B(h) = expm1(-h) ("bh2"): the same number as phi1 */
    double phik = phi1 / hh - 1.0;
    *b1 = phik * 1.0 / bh;
    phik = phik / hh - 0.5;
    *b2 = phik * 2.0 / bh;
    *a = t / s0;
    *b = (1.0 - t) * phi1;
    *c = (1.0 - t) * bh;
}

static void s_unipc(rf_sampler *self, rf_chunk_state *st, float *x, int i, int64_t *lon,
                    int64_t *last_order)
{
    const double *sg = self->sigmas;
    const float *m = self->m;
    float *mp = rf_chunk_state_tensor(st, "m_prev")->data;
    float *mp2 = rf_chunk_state_tensor(st, "m_prev2")->data;
    float *ls = rf_chunk_state_tensor(st, "last_sample")->data;
    size_t n = self->n;
    int N = self->cfg.steps;
    double a, b, c, b1, b2, h;
    /* corrector (UniC): refine x_i with the new x0 prediction m, from last_sample at
     * sigma i-1, with the order the last predictor used; none before the first step taken
     * (step 0, or the first step after skipped ones) */
    if (i > 0 && *lon > 0) {
        s_unipc_coef(sg[i - 1], sg[i], &a, &b, &c, &b1, &b2, &h);
        float fa = (float)a, fb = (float)b, fc = (float)c;
        if (*last_order == 1) {
            float r1 = 0.5f;
            for (size_t j = 0; j < n; j++)
                x[j] = (fa * ls[j] - fb * mp[j]) - fc * (r1 * (m[j] - mp[j]));
        } else {
            double rk = (s_lambda(sg[i - 2]) - s_lambda(sg[i - 1])) / h;
            /* solve [1 1; rk 1] rho = [b1 b2] */
            double rho0 = (b1 - b2) / (1.0 - rk), rho1 = b1 - rho0;
            float e0 = (float)(rho0 / rk), r1 = (float)rho1;
            for (size_t j = 0; j < n; j++)
                x[j] =
                    (fa * ls[j] - fb * mp[j]) - fc * (e0 * (mp2[j] - mp[j]) + r1 * (m[j] - mp[j]));
        }
    }
    /* history: m_prev2 <- m_prev <- m; last_sample <- (corrected) x */
    memcpy(mp2, mp, n * sizeof(float));
    memcpy(mp, m, n * sizeof(float));
    memcpy(ls, x, n * sizeof(float));
    int order = N - i < 2 ? N - i : 2; /* lower order at the end */
    if (order > *lon + 1)              /* warm-up: first step order 1 */
        order = (int)*lon + 1;
    /* predictor (UniP) from sigma i to sigma i+1 */
    if (sg[i + 1] <= 0.0) {
        memcpy(x, m, n * sizeof(float)); /* s = 0: the x0 prediction, exactly */
    } else {
        s_unipc_coef(sg[i], sg[i + 1], &a, &b, &c, &b1, &b2, &h);
        float fa = (float)a, fb = (float)b, fc = (float)c;
        if (order == 1) {
            for (size_t j = 0; j < n; j++)
                x[j] = fa * x[j] - fb * m[j];
        } else {
            double rk = (s_lambda(sg[i - 1]) - s_lambda(sg[i])) / h;
            float e = (float)(0.5 / rk); /* rho_p = 0.5 for order 2 */
            for (size_t j = 0; j < n; j++)
                x[j] = (fa * x[j] - fb * m[j]) - fc * (e * (mp2[j] - m[j]));
        }
    }
    *last_order = order;
    if (*lon < 2)
        (*lon)++;
}

int rf_sampler_step(rf_sampler *self, rf_chunk_state *st, rf_model_fn model, void *ctx,
                    rf_error *err)
{
    int rc = rf_sampler_check_state(self, st, err);
    if (rc)
        return rc;
    int i = rf_sampler_state_step(st);
    if (i >= self->cfg.steps)
        return rf_error_set(err, RF_EINVAL, "sampler: the state already took all %d steps",
                            self->cfg.steps);
    float *x = rf_chunk_state_tensor(st, "latent")->data;
    size_t n = self->n;
    int batch = self->cfg.cfg ? 2 : 1;
    float t[2];
    t[0] = t[1] = rf_sampler_timestep(self->sigmas[i]);
    for (int b = 0; b < batch; b++)
        memcpy(self->xin + (size_t)b * n, x, n * sizeof(float));
    rc = model(ctx, batch, self->shape, self->xin, t, self->v, err);
    if (rc)
        return rf_error_prefix(err, "sampler step %d", i);
    if (batch == 2)
        s_guide(self->v, n, (float)self->cfg.guidance);
    int64_t lon = 0, last_order = 0;
    if (self->cfg.kind == RF_SAMPLER_EULER) {
        s_euler(self, x, i);
    } else {
        float s = (float)self->sigmas[i];
        for (size_t j = 0; j < n; j++)
            self->m[j] = x[j] - s * self->v[j]; /* x0 = x_s - s v */
        rf_chunk_state_get_i64(st, "lower_order_nums", &lon, NULL);
        if (self->cfg.kind == RF_SAMPLER_DPMPP) {
            s_dpmpp(self, st, x, i, &lon);
        } else {
            rf_chunk_state_get_i64(st, "last_order", &last_order, NULL);
            s_unipc(self, st, x, i, &lon, &last_order);
            rf_chunk_state_set_i64(st, "last_order", last_order, NULL);
        }
        rf_chunk_state_set_i64(st, "lower_order_nums", lon, NULL);
    }
    rf_chunk_state_set_i64(st, "step", i + 1, NULL);
    return 0;
}

int rf_sampler_skip(rf_sampler *self, rf_chunk_state *st, rf_error *err)
{
    int rc = rf_sampler_check_state(self, st, err);
    if (rc)
        return rc;
    int i = rf_sampler_state_step(st);
    if (i >= self->cfg.steps)
        return rf_error_set(err, RF_EINVAL, "sampler: the state already took all %d steps",
                            self->cfg.steps);
    int64_t lon = 0;
    if (self->cfg.kind != RF_SAMPLER_EULER &&
        (rf_chunk_state_get_i64(st, "lower_order_nums", &lon, err) || lon != 0))
        return rf_error_set(err, RF_EINVAL,
                            "sampler: steps can be skipped only before the first step taken");
    return rf_chunk_state_set_i64(st, "step", i + 1, err);
}

int rf_sampler_run(rf_sampler *self, rf_chunk_state *st, int until, rf_model_fn model, void *ctx,
                   rf_error *err)
{
    if (until < 0 || until > self->cfg.steps)
        until = self->cfg.steps;
    int rc = 0;
    while (!rc && rf_sampler_state_step(st) >= 0 && rf_sampler_state_step(st) < until)
        rc = rf_sampler_step(self, st, model, ctx, err);
    return rc;
}
