/* cmd_sample.c - `reelfarm-engine sample`: a whole sampler schedule with the DiT.
 *
 * Starts from the project's Philox noise (common/rng, timeline 0, global frames from 0)
 * or an --init latent, runs every step of the chosen sampler (cond + uncond as one
 * batch-2 forward when guiding) and writes the final latent `z`. The sampler state is a
 * chunk state: --save-state/--stop-after write it, --resume continues from it, and the
 * result is bit-identical to a run that never stopped. Never writes a half result: the
 * output and the state are written atomically.
 */
#include "chunk_state.h"
#include "cpu/cpu.h"
#include "dit/dit_tp.h"
#include "log.h"
#include "rng.h"
#include "safetensors.h"
#include "sampler.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct s_opts {
    const char *model, *context, *negative, *init, *output, *save_state, *resume, *sampler;
    int frames, width, height, steps, stop_after, threads, tp;
    double shift, guidance;
    uint64_t seed;
    int have_seed, have_steps, have_shift, have_guidance, have_sampler;
} s_opts;

static void s_help(FILE *out)
{
    fprintf(out,
            "usage: reelfarm-engine sample --model DIR --context IN.safetensors\n"
            "         [--negative-context NEG.safetensors] --frames F --size WxH\n"
            "         [--steps N] --seed S [--sampler unipc|euler|dpm++] [--shift K]\n"
            "         [--guidance G] [--init LATENT.safetensors] --output OUT.safetensors\n"
            "         [--save-state FILE [--stop-after K]] [--resume FILE] [--threads N]\n\n"
            "Runs a whole flow-matching schedule with the Wan DiT in --model and writes the\n"
            "final latent `z` [1,16,T,H/8,W/8] (T = (F-1)/4 + 1 latent frames) to --output.\n\n"
            "  --context FILE        text-encoder output: tensor `context` [L,4096] or [1,L,4096]\n"
            "  --negative-context F  the same for the negative prompt; needed when guiding\n"
            "  --frames F            pixel frames, 4n+1 (81 = 5 s at 16 fps)\n"
            "  --size WxH            pixels, multiples of 16 (e.g. 832x480)\n"
            "  --steps N             sampler steps (default 50)\n"
            "  --seed S              seed of the initial Philox noise\n"
            "  --sampler NAME        unipc (default, as Wan2.1), dpm++ or euler\n"
            "  --shift K             sigma shift (default 5.0; 8-12 suit 1.3B at 480p)\n"
            "  --guidance G          classifier-free guidance scale (default 5.0; 1 = none,\n"
            "                        one forward of batch 1; else cond+uncond as batch 2)\n"
            "  --init FILE           start from this latent (`z` or `latent`) instead of noise\n"
            "  --save-state FILE     write the sampler state (a chunk state) at the end\n"
            "  --stop-after K        stop after step K and write only --save-state\n"
            "  --resume FILE         continue a saved state; its sampler settings apply\n"
            "  --threads N           CPU threads (default: all cores)\n"
            "  --tp N                tensor-parallel ranks sharing the model (default 1)\n\n"
            "example:\n"
            "  reelfarm-engine sample --model Wan2.1-T2V-1.3B --context cat.safetensors \\\n"
            "      --negative-context neg.safetensors --frames 81 --size 832x480 --steps 50 \\\n"
            "      --seed 42 --shift 8 --guidance 6 --output cat_latent.safetensors\n");
}

/* Parses argv into *o: 0, 2 (usage error, printed) or -1 (--help asked). */
static int s_parse(int argc, char **argv, s_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->steps = 50;
    o->shift = 5.0;
    o->guidance = 5.0;
    o->sampler = "unipc";
    o->stop_after = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!v) {
            fprintf(stderr, "sample: option '%s' needs a value (see --help)\n", a);
            return 2;
        }
        char *end = NULL;
        i++;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--context"))
            o->context = v;
        else if (!strcmp(a, "--negative-context"))
            o->negative = v;
        else if (!strcmp(a, "--init"))
            o->init = v;
        else if (!strcmp(a, "--output"))
            o->output = v;
        else if (!strcmp(a, "--save-state"))
            o->save_state = v;
        else if (!strcmp(a, "--resume"))
            o->resume = v;
        else if (!strcmp(a, "--sampler"))
            o->sampler = v, o->have_sampler = 1;
        else if (!strcmp(a, "--frames"))
            o->frames = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--steps"))
            o->steps = (int)strtol(v, &end, 10), o->have_steps = 1;
        else if (!strcmp(a, "--stop-after"))
            o->stop_after = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--threads"))
            o->threads = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--tp"))
            o->tp = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, &end, 10), o->have_seed = 1;
        else if (!strcmp(a, "--shift"))
            o->shift = strtod(v, &end), o->have_shift = 1;
        else if (!strcmp(a, "--guidance"))
            o->guidance = strtod(v, &end), o->have_guidance = 1;
        else if (!strcmp(a, "--size")) {
            if (sscanf(v, "%dx%d", &o->width, &o->height) != 2) {
                fprintf(stderr, "sample: --size '%s' is not WxH (e.g. 832x480)\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "sample: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (end && (*end || end == v)) {
            fprintf(stderr, "sample: %s '%s' is not a number\n", a, v);
            return 2;
        }
    }
    const char *missing = !o->model ? "--model" : !o->context ? "--context" : NULL;
    if (!missing && o->stop_after < 0 && !o->output)
        missing = "--output";
    if (!missing && !o->resume && !o->init && !o->have_seed)
        missing = "--seed (or --init/--resume)";
    if (!missing && !o->resume && !o->init && (!o->frames || !o->width))
        missing = "--frames and --size";
    if (missing) {
        fprintf(stderr, "sample: %s is required (see --help)\n", missing);
        return 2;
    }
    if (o->stop_after >= 0 && !o->save_state) {
        fprintf(stderr, "sample: --stop-after needs --save-state FILE to write the state to\n");
        return 2;
    }
    if (o->frames && (o->frames < 1 || (o->frames - 1) % 4)) {
        fprintf(stderr, "sample: --frames %d must be 4n+1 (e.g. 81)\n", o->frames);
        return 2;
    }
    if (o->width && (o->width < 16 || o->height < 16 || o->width % 16 || o->height % 16)) {
        fprintf(stderr, "sample: --size %dx%d must be multiples of 16\n", o->width, o->height);
        return 2;
    }
    return 0;
}

/* Reads tensor `context` ([L,D] or [1,L,D]) of path; *rows = L. Caller frees. */
static float *s_read_context(const char *path, int64_t dim, int64_t max_rows, int64_t *rows,
                             rf_error *err)
{
    rf_safetensors *st = rf_st_open(path, err);
    if (!st)
        return NULL;
    const rf_st_tensor *t = rf_st_find(st, "context");
    float *out = NULL;
    if (!t || !((t->ndim == 2) || (t->ndim == 3 && t->shape[0] == 1)) ||
        t->shape[t->ndim - 1] != dim || t->shape[t->ndim - 2] < 1 ||
        t->shape[t->ndim - 2] > max_rows) {
        rf_error_set(err, RF_ESHAPE,
                     "%s: needs a tensor `context` of shape [L, %" PRId64 "] or [1, L, %" PRId64
                     "] with 1 <= L <= %" PRId64 " (the text encoder's output)",
                     path, dim, dim, max_rows);
    } else {
        *rows = t->shape[t->ndim - 2];
        out = malloc(rf_st_numel(t) * sizeof(float));
        if (!out)
            rf_error_set(err, RF_ENOMEM, "%s: out of memory", path);
        else if (rf_st_read_f32(t, out, err)) {
            free(out);
            out = NULL;
        }
    }
    rf_st_destroy(&st);
    return out;
}

/* Reads the latent `z` or `latent` ([16,T,h,w] or [1,16,T,h,w]) of path into a new
 * buffer; sets shape[4]. */
static float *s_read_latent(const char *path, int64_t shape[4], rf_error *err)
{
    rf_safetensors *st = rf_st_open(path, err);
    if (!st)
        return NULL;
    const rf_st_tensor *t = rf_st_find(st, "z");
    if (!t)
        t = rf_st_find(st, "latent");
    float *out = NULL;
    if (!t || !(t->ndim == 4 || (t->ndim == 5 && t->shape[0] == 1))) {
        rf_error_set(err, RF_ESHAPE,
                     "%s: needs a latent tensor `z` (or `latent`) of shape [16,T,H/8,W/8] or "
                     "[1,16,T,H/8,W/8]",
                     path);
    } else {
        memcpy(shape, t->shape + (t->ndim - 4), 4 * sizeof(int64_t));
        out = malloc(rf_st_numel(t) * sizeof(float));
        if (!out)
            rf_error_set(err, RF_ENOMEM, "%s: out of memory", path);
        else if (rf_st_read_f32(t, out, err)) {
            free(out);
            out = NULL;
        }
    }
    rf_st_destroy(&st);
    return out;
}

typedef struct s_model {
    rf_dit_tp *dit;
    const float *ctx; /* [2, rows, text_dim]: cond, uncond (zero-padded to rows) */
    int64_t rows;
    double secs;
} s_model;

static int s_forward(void *ctx, int batch, const int64_t shape[4], const float *x, const float *t,
                     float *v, rf_error *err)
{
    s_model *m = ctx;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = rf_dit_tp_forward(m->dit, batch, shape[1], shape[2], shape[3], x, t, m->ctx, m->rows,
                               v, err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    m->secs = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    return rc;
}

static int s_write_latent(const char *path, const float *z, const int64_t shape[4], const s_opts *o,
                          const rf_sampler_config *cfg, rf_error *err)
{
    rf_st_writer *w = rf_st_writer_new();
    if (!w)
        return rf_error_set(err, RF_ENOMEM, "out of memory");
    int64_t s5[5] = {1, shape[0], shape[1], shape[2], shape[3]};
    char buf[64];
    int rc = rf_st_writer_add(w, "z", RF_DTYPE_F32, 5, s5, z, err);
    if (!rc)
        rc = rf_st_writer_set_metadata(w, "sampler", rf_sampler_kind_name(cfg->kind), err);
    snprintf(buf, sizeof(buf), "%d", cfg->steps);
    if (!rc)
        rc = rf_st_writer_set_metadata(w, "steps", buf, err);
    snprintf(buf, sizeof(buf), "%.17g", cfg->shift);
    if (!rc)
        rc = rf_st_writer_set_metadata(w, "shift", buf, err);
    snprintf(buf, sizeof(buf), "%.17g", cfg->cfg ? cfg->guidance : 1.0);
    if (!rc)
        rc = rf_st_writer_set_metadata(w, "guidance", buf, err);
    if (!rc && o->have_seed) {
        snprintf(buf, sizeof(buf), "%" PRIu64, o->seed);
        rc = rf_st_writer_set_metadata(w, "seed", buf, err);
    }
    if (!rc)
        rc = rf_st_writer_write(w, path, err);
    rf_st_writer_destroy(&w);
    return rc;
}

/* Everything after parsing; returns 0 or an rf_status with err set. */
static int s_run(const s_opts *o, rf_error *err)
{
    int rc = 0;
    rf_dit_tp *dit = NULL;
    rf_sampler *smp = NULL;
    rf_chunk_state *st = NULL;
    float *cond = NULL, *neg = NULL, *ctx2 = NULL, *init = NULL;
    rf_sampler_config cfg = {0};
    int64_t shape[4] = {16, 0, 0, 0};

    if (o->resume) {
        st = rf_chunk_state_load(o->resume, err);
        if (!st)
            return err->code;
        if ((rc = rf_sampler_config_from_state(st, &cfg, err)))
            goto done;
        const rf_cs_tensor *lt = rf_chunk_state_tensor(st, "latent");
        if (!lt || lt->ndim != 4) {
            rc = rf_error_set(err, RF_ESHAPE, "%s: the state has no 4-d `latent`", o->resume);
            goto done;
        }
        memcpy(shape, lt->shape, sizeof(shape));
        const char *differs = NULL;
        rf_sampler_kind k;
        if (o->have_sampler && (rf_sampler_kind_parse(o->sampler, &k, NULL) || k != cfg.kind))
            differs = "--sampler";
        else if (o->have_steps && o->steps != cfg.steps)
            differs = "--steps";
        else if (o->have_shift && o->shift != cfg.shift)
            differs = "--shift";
        else if (o->have_guidance && o->guidance != (cfg.cfg ? cfg.guidance : 1.0))
            differs = "--guidance";
        if (differs) {
            rc = rf_error_set(err, RF_EINVAL,
                              "%s differs from the resumed state (%s, %d steps, shift %g, "
                              "guidance %g); leave it out when resuming",
                              differs, rf_sampler_kind_name(cfg.kind), cfg.steps, cfg.shift,
                              cfg.cfg ? cfg.guidance : 1.0);
            goto done;
        }
    } else {
        if ((rc = rf_sampler_kind_parse(o->sampler, &cfg.kind, err)))
            goto done;
        cfg.steps = o->steps;
        cfg.shift = o->shift;
        cfg.cfg = o->guidance != 1.0;
        cfg.guidance = o->guidance;
        if (o->init) {
            init = s_read_latent(o->init, shape, err);
            if (!init)
                return err->code;
        } else {
            shape[1] = (o->frames - 1) / 4 + 1;
            shape[2] = o->height / 8;
            shape[3] = o->width / 8;
        }
    }
    if (o->frames && (shape[1] != (o->frames - 1) / 4 + 1 ||
                      (o->width && (shape[2] != o->height / 8 || shape[3] != o->width / 8)))) {
        rc = rf_error_set(err, RF_ESHAPE,
                          "--frames %d --size %dx%d means a latent [16,%d,%d,%d], but the %s "
                          "holds [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "]",
                          o->frames, o->width, o->height, (o->frames - 1) / 4 + 1, o->height / 8,
                          o->width / 8, o->resume ? "state" : "init latent", shape[0], shape[1],
                          shape[2], shape[3]);
        goto done;
    }
    if (cfg.cfg && !o->negative) {
        rc = rf_error_set(err, RF_EINVAL,
                          "guidance %g needs --negative-context (the text encoder's output for "
                          "the negative prompt; Wan2.1's default negative prompt if you have "
                          "none); use --guidance 1 for no guidance",
                          cfg.guidance);
        goto done;
    }
    if (!(dit = rf_dit_tp_load(o->model, o->tp > 0 ? o->tp : 1, o->threads, err))) {
        rc = err->code ? (int)err->code : RF_EINVAL;
        goto done;
    }
    const rf_dit_config *dc = rf_dit_get_config(rf_dit_tp_rank(dit, 0));
    if (shape[0] != dc->in_dim || dc->out_dim != dc->in_dim || shape[1] % dc->patch[0] ||
        shape[2] % dc->patch[1] || shape[3] % dc->patch[2]) {
        rc = rf_error_set(err, RF_ESHAPE,
                          "latent [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "] does not fit "
                          "the model in %s (in/out %" PRId64 "/%" PRId64 " channels, patch %" PRId64
                          "x%" PRId64 "x%" PRId64 ")",
                          shape[0], shape[1], shape[2], shape[3], o->model, dc->in_dim, dc->out_dim,
                          dc->patch[0], dc->patch[1], dc->patch[2]);
        goto done;
    }
    int64_t rows_c = 0, rows_n = 0;
    if (!(cond = s_read_context(o->context, dc->text_dim, dc->text_len, &rows_c, err)))
        goto fail;
    if (cfg.cfg && !(neg = s_read_context(o->negative, dc->text_dim, dc->text_len, &rows_n, err)))
        goto fail;
    /* one context length for the batch: the shorter is zero-padded, which is what the
     * model does up to text_len anyway (all rows attended, no mask) */
    int64_t rows = rows_c > rows_n ? rows_c : rows_n;
    size_t rowb = (size_t)dc->text_dim * sizeof(float);
    ctx2 = calloc(2 * (size_t)rows, rowb);
    if (!ctx2) {
        rc = rf_error_set(err, RF_ENOMEM, "out of memory for the contexts");
        goto done;
    }
    memcpy(ctx2, cond, (size_t)rows_c * rowb);
    if (neg)
        memcpy((char *)ctx2 + (size_t)rows * rowb, neg, (size_t)rows_n * rowb);
    int64_t tokens =
        shape[1] / dc->patch[0] * (shape[2] / dc->patch[1]) * (shape[3] / dc->patch[2]);
    if ((rc = rf_dit_tp_reserve(dit, cfg.cfg ? 2 : 1, tokens, err)))
        goto done;
    if (!(smp = rf_sampler_new(&cfg, shape, err)))
        goto fail;
    if (!st) {
        size_t n = (size_t)(shape[0] * shape[1] * shape[2] * shape[3]);
        if (!init) {
            if (!(init = malloc(n * sizeof(float)))) {
                rc = rf_error_set(err, RF_ENOMEM, "out of memory for the noise");
                goto done;
            }
            if ((rc = rf_noise_latent(o->seed, 0, 0, shape[0], shape[1], shape[2], shape[3], init,
                                      err)))
                goto done;
        }
        if (!(st = rf_sampler_state_new(smp, init, 0, err)))
            goto fail;
    }
    if ((rc = rf_sampler_check_state(smp, st, err)))
        goto done;
    int until = o->stop_after >= 0 && o->stop_after < cfg.steps ? o->stop_after : cfg.steps;
    s_model m = {dit, ctx2, rows, 0.0};
    while (rf_sampler_state_step(st) < until) {
        int i = rf_sampler_state_step(st);
        if ((rc = rf_sampler_step(smp, st, s_forward, &m, err)))
            goto done;
        rf_log_kv(RF_LOG_INFO, "sample", "step done",
                  "step=%d steps=%d sigma=%.6f t=%.0f forward_s=%.3f", i + 1, cfg.steps,
                  rf_sampler_sigma(smp, i), (double)rf_sampler_timestep(rf_sampler_sigma(smp, i)),
                  m.secs);
    }
    if (o->save_state && (rc = rf_chunk_state_save(st, o->save_state, err)))
        goto done;
    if (rf_sampler_state_step(st) == cfg.steps && o->output)
        rc = s_write_latent(o->output, rf_chunk_state_tensor(st, "latent")->data, shape, o, &cfg,
                            err);
    goto done;
fail:
    rc = err->code ? (int)err->code : RF_EINVAL;
done:
    free(cond);
    free(neg);
    free(ctx2);
    free(init);
    rf_chunk_state_destroy(&st);
    rf_sampler_destroy(&smp);
    rf_dit_tp_destroy(&dit);
    return rc;
}

int rf_cmd_sample(int argc, char **argv)
{
    s_opts o;
    int rc = s_parse(argc, argv, &o);
    if (rc < 0)
        s_help(stdout);
    if (rc)
        return rc < 0 ? 0 : rc;
    rf_error err = {0};
    if (s_run(&o, &err)) {
        fprintf(stderr, "sample: %s\n", err.msg);
        return 1;
    }
    return 0;
}
