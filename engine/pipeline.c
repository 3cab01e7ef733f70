/* pipeline.c - the model folder's pieces chained: text, denoise, decode, encode.
 *
 * Each component is loaded the first time it is needed and kept. The DiT is sized
 * (rf_dit_reserve) for the largest latent seen so far with batch 2, so CFG runs as one
 * forward of [cond, uncond]; the two text contexts are zero-padded to the same number
 * of rows, which is what the model sees anyway (it pads every context to text_len).
 * Decoding streams one latent frame at a time, so memory does not grow with length.
 */
#include "pipeline.h"

#include "cpu/cpu.h"
#include "dit/dit.h"
#include "log.h"
#include "rng.h"
#include "t5.h"
#include "tokenizer.h"
#include "vae/vae.h"
#include "video.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LATENT_C 16

struct rf_pipeline {
    rf_model_folder model;
    rf_pipeline_opts opts;
    rf_backend *be;
    rf_tokenizer *tok;
    rf_t5 *t5;
    rf_dit *dit;
    int64_t dit_tokens; /* reserved for */
    rf_vae *vae;
    /* the sampler of the last chunk shape and config, reused */
    rf_sampler *sampler;
    rf_sampler_config sampler_cfg;
    int64_t sampler_shape[4];
    /* model-call scratch */
    float *ctx_buf;
    size_t ctx_cap;
};

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

rf_pipeline *rf_pipeline_open(const char *model_dir, const rf_pipeline_opts *opts, rf_error *err)
{
    rf_pipeline *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    if (opts)
        self->opts = *opts;
    if (rf_model_folder_read(model_dir, &self->model, err)) {
        free(self);
        return NULL;
    }
    int threads = self->opts.threads > 0 ? self->opts.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    self->be = rf_backend_cpu_new(threads, err);
    if (!self->be) {
        free(self);
        return NULL;
    }
    return self;
}

void rf_pipeline_destroy(rf_pipeline **pself)
{
    if (!pself || !*pself)
        return;
    rf_pipeline *self = *pself;
    rf_sampler_destroy(&self->sampler);
    rf_vae_destroy(&self->vae);
    rf_dit_destroy(&self->dit);
    rf_t5_destroy(&self->t5);
    rf_tokenizer_destroy(&self->tok);
    rf_backend_destroy(&self->be);
    free(self->ctx_buf);
    free(self);
    *pself = NULL;
}

const rf_model_folder *rf_pipeline_model(const rf_pipeline *self)
{
    return &self->model;
}

/* ---- text ----------------------------------------------------------------------- */

int rf_pipeline_encode_text(rf_pipeline *self, const char *prompt, float **out, int64_t *rows,
                            int64_t *dim, rf_error *err)
{
    if (!self->tok) {
        self->tok = rf_tokenizer_load(self->model.tokenizer, err);
        if (!self->tok)
            return rf_error_prefix(err, "loading the tokenizer of %s", self->model.dir);
    }
    if (!self->t5) {
        self->t5 = rf_t5_load(self->be, self->model.t5, RF_TOKENIZER_CONTEXT_LEN, err);
        if (!self->t5)
            return rf_error_prefix(err, "loading the text encoder of %s", self->model.dir);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = rf_tokenizer_encode(self->tok, prompt, RF_TOKENIZER_CONTEXT_LEN, &ids, &n, err);
    if (rc)
        return rc;
    int64_t d = rf_t5_get_config(self->t5)->dim;
    float *e = malloc(n * (size_t)d * sizeof(float));
    if (!e) {
        free(ids);
        return rf_error_set(err, RF_ENOMEM, "out of memory encoding a prompt");
    }
    rc = rf_t5_encode(self->t5, ids, NULL, 1, (int64_t)n, e, err);
    free(ids);
    if (rc) {
        free(e);
        return rc;
    }
    *out = e;
    *rows = (int64_t)n;
    *dim = d;
    return 0;
}

/* ---- denoise -------------------------------------------------------------------- */

static int s_ensure_dit(rf_pipeline *self, int64_t tokens, rf_error *err)
{
    if (!self->dit) {
        self->dit = rf_dit_load(self->model.dit, self->be, NULL, err);
        if (!self->dit)
            return rf_error_prefix(err, "loading the DiT of %s", self->model.dir);
    }
    if (tokens > self->dit_tokens) {
        int rc = rf_dit_reserve(self->dit, 2, tokens, err);
        if (rc)
            return rc;
        self->dit_tokens = tokens;
    }
    return 0;
}

static int s_use_cfg(const rf_denoise_params *p)
{
    return p->guidance > 1.0 && p->negative;
}

static int s_ensure_sampler(rf_pipeline *self, const rf_denoise_params *p, rf_error *err)
{
    rf_sampler_config cfg = {p->sampler, p->steps, p->shift, s_use_cfg(p), p->guidance};
    int64_t shape[4] = {LATENT_C, p->window_len, p->height / 8, p->width / 8};
    if (self->sampler && !memcmp(&cfg, &self->sampler_cfg, sizeof(cfg)) &&
        !memcmp(shape, self->sampler_shape, sizeof(shape)))
        return 0;
    rf_sampler_destroy(&self->sampler);
    self->sampler = rf_sampler_new(&cfg, shape, err);
    if (!self->sampler)
        return err ? (int)err->code : RF_EINVAL;
    self->sampler_cfg = cfg;
    memcpy(self->sampler_shape, shape, sizeof(shape));
    return 0;
}

static int s_check_params(const rf_denoise_params *p, rf_error *err)
{
    if (p->width % 16 || p->height % 16 || p->width <= 0 || p->height <= 0)
        return rf_error_set(err, RF_EINVAL, "size %dx%d: width and height must be multiples of 16",
                            p->width, p->height);
    if (p->window_len < 1 || p->window_start < 0)
        return rf_error_set(err, RF_EINVAL, "empty latent window");
    if (!p->context || p->ctx_rows < 1)
        return rf_error_set(err, RF_EINVAL, "no text context");
    return 0;
}

rf_chunk_state *rf_pipeline_denoise_init(rf_pipeline *self, const rf_denoise_params *p,
                                         rf_error *err)
{
    if (s_check_params(p, err) || s_ensure_sampler(self, p, err))
        return NULL;
    const int64_t T = p->window_len, h = p->height / 8, w = p->width / 8;
    size_t frame = (size_t)(LATENT_C * h * w);
    float *x = malloc((size_t)T * frame * sizeof(float));
    float *buf = malloc(frame * sizeof(float));
    if (!x || !buf) {
        free(x);
        free(buf);
        return rf_error_set(err, RF_ENOMEM, "out of memory for the initial noise"), NULL;
    }
    /* rf_noise_latent fills [C, 1, h, w] per global frame; the state is [C, T, h, w] */
    int rc = 0;
    for (int64_t f = 0; f < T && !rc; f++) {
        rc = rf_noise_latent(p->seed, (uint32_t)p->timeline, (uint32_t)(p->window_start + f),
                             LATENT_C, 1, h, w, buf, err);
        for (int64_t c = 0; c < LATENT_C && !rc; c++)
            memcpy(x + ((size_t)c * (size_t)T + (size_t)f) * (size_t)(h * w), buf + c * h * w,
                   (size_t)(h * w) * sizeof(float));
    }
    free(buf);
    rf_chunk_state *st = rc ? NULL : rf_sampler_state_new(self->sampler, x, p->window_start, err);
    free(x);
    if (st && p->ncond > 0) {
        rc = p->sdedit ? rf_cond_sdedit_init(self->sampler, st, p->strength, p->cond, p->ncond,
                                             p->seed, (uint32_t)p->timeline, err)
                       : rf_cond_reimpose(self->sampler, st, p->cond, p->ncond, p->seed,
                                          (uint32_t)p->timeline, err);
        if (rc)
            rf_chunk_state_destroy(&st);
    }
    return st;
}

typedef struct s_model_ctx {
    rf_pipeline *self;
    const rf_denoise_params *p;
} s_model_ctx;

/* The sampler's model callback: the DiT on [cond] or [cond, uncond]. */
static int s_model(void *vctx, int batch, const int64_t shape[4], const float *x, const float *t,
                   float *v, rf_error *err)
{
    s_model_ctx *mc = vctx;
    rf_pipeline *self = mc->self;
    const rf_denoise_params *p = mc->p;
    int64_t rows = p->ctx_rows;
    if (batch == 2 && p->neg_rows > rows)
        rows = p->neg_rows;
    size_t need = (size_t)batch * (size_t)rows * (size_t)p->dim;
    if (need > self->ctx_cap) {
        float *nb = realloc(self->ctx_buf, need * sizeof(float));
        if (!nb)
            return rf_error_set(err, RF_ENOMEM, "out of memory for the text context");
        self->ctx_buf = nb;
        self->ctx_cap = need;
    }
    memset(self->ctx_buf, 0, need * sizeof(float));
    memcpy(self->ctx_buf, p->context, (size_t)(p->ctx_rows * p->dim) * sizeof(float));
    if (batch == 2)
        memcpy(self->ctx_buf + rows * p->dim, p->negative,
               (size_t)(p->neg_rows * p->dim) * sizeof(float));
    return rf_dit_forward(self->dit, batch, shape[1], shape[2], shape[3], x, t, self->ctx_buf, rows,
                          v, err);
}

int rf_pipeline_denoise(rf_pipeline *self, const rf_denoise_params *p, rf_chunk_state *st,
                        int until, int (*progress)(void *ctx, int done), void *pctx, rf_error *err)
{
    int rc = s_check_params(p, err);
    if (!rc)
        rc = s_ensure_sampler(self, p, err);
    if (!rc)
        rc = s_ensure_dit(self, p->window_len * (p->height / 16) * (p->width / 16), err);
    if (!rc && rf_dit_get_config(self->dit)->text_dim != p->dim)
        rc = rf_error_set(err, RF_ESHAPE, "text context has %lld columns; the DiT expects %lld",
                          (long long)p->dim, (long long)rf_dit_get_config(self->dit)->text_dim);
    if (!rc)
        rc = rf_sampler_check_state(self->sampler, st, err);
    if (rc)
        return rc;
    if (until > p->steps)
        until = p->steps;
    s_model_ctx mc = {self, p};
    int start = rf_sampler_state_step(st);
    int first = rf_cond_state_start(st); /* video -> video: steps before it are skipped */
    int reimpose = p->ncond > 0 && !p->sdedit;
    for (int s = start; s < until; s++) {
        if (s < first) {
            rc = rf_sampler_skip(self->sampler, st, err);
        } else {
            if (reimpose) /* fusion may have moved the known frames by a rounding */
                rc = rf_cond_reimpose(self->sampler, st, p->cond, p->ncond, p->seed,
                                      (uint32_t)p->timeline, err);
            if (!rc)
                rc = rf_sampler_step(self->sampler, st, s_model, &mc, err);
        }
        if (rc)
            return rc;
        if (progress && progress(pctx, s + 1 - start))
            return rf_error_set(err, RF_ECANCELED, "canceled after step %d", s + 1);
    }
    if (reimpose) /* the state leaves on the line: at the last step, x0 exactly */
        rc = rf_cond_reimpose(self->sampler, st, p->cond, p->ncond, p->seed, (uint32_t)p->timeline,
                              err);
    return rc;
}

/* ---- decode --------------------------------------------------------------------- */

static int s_ensure_vae(rf_pipeline *self, rf_error *err)
{
    if (self->vae)
        return 0;
    self->vae = rf_vae_load(self->model.vae, self->be, err);
    if (!self->vae)
        return rf_error_prefix(err, "loading the VAE of %s", self->model.dir);
    return 0;
}

int rf_pipeline_encode_media(rf_pipeline *self, const char *path, int width, int height,
                             int64_t first_frame, int64_t frames, float **z, int64_t *T,
                             rf_error *err)
{
    int rc = s_ensure_vae(self, err);
    if (!rc)
        rc = rf_cond_encode_media(self->vae, path, width, height, first_frame, frames, z, T, err);
    return rc;
}

int rf_pipeline_decode(rf_pipeline *self, const float *z, int64_t z_first, int64_t n_z, int h,
                       int w, int64_t a, int64_t b, int64_t warmup,
                       int (*frame)(void *ctx, const float *rgb, rf_error *err), void *fctx,
                       rf_error *err)
{
    int rc = s_ensure_vae(self, err);
    if (rc)
        return rc;
    int64_t s = a - warmup > 0 ? a - warmup : 0;
    if (a < 0 || a >= b || warmup < 0 || s < z_first || b > z_first + n_z)
        return rf_error_set(err, RF_EINVAL,
                            "decode of [%lld, %lld) with warm-up %lld needs latent frames the "
                            "given [%lld, %lld) do not hold",
                            (long long)a, (long long)b, (long long)warmup, (long long)z_first,
                            (long long)(z_first + n_z));
    int zd = rf_vae_z_dim(self->vae);
    int sf = rf_vae_spatial_factor(self->vae), tf = rf_vae_temporal_factor(self->vae);
    int H = h * sf, W = w * sf;
    rf_vae_stream *st = rf_vae_decoder_new(self->vae, h, w, s == 0, err);
    float *zf = malloc((size_t)zd * (size_t)(h * w) * sizeof(float));
    float *px = malloc((size_t)3 * (size_t)tf * (size_t)(H * W) * sizeof(float));
    float *rgb = malloc((size_t)3 * (size_t)(H * W) * sizeof(float));
    if (!st || !zf || !px || !rgb) {
        if (st)
            rc = rf_error_set(err, RF_ENOMEM, "out of memory decoding %dx%d", W, H);
        else
            rc = err ? (int)err->code : RF_ENOMEM;
    }
    for (int64_t f = s; f < b && !rc; f++) {
        for (int c = 0; c < zd; c++) /* z is [C, T, h, w]: gather one frame */
            memcpy(zf + (size_t)c * (size_t)(h * w),
                   z + ((size_t)c * (size_t)n_z + (size_t)(f - z_first)) * (size_t)(h * w),
                   (size_t)(h * w) * sizeof(float));
        int n = 0;
        rc = rf_vae_decode_push(st, zf, px, &n, err);
        if (rc || f < a)
            continue; /* warm-up output is dropped */
        for (int k = 0; k < n && !rc; k++) {
            /* [3, n, H, W] planar -> HWC interleaved */
            for (int64_t i = 0; i < (int64_t)H * W; i++)
                for (int c = 0; c < 3; c++)
                    rgb[i * 3 + c] =
                        px[((size_t)c * (size_t)n + (size_t)k) * (size_t)(H * W) + (size_t)i];
            rc = frame(fctx, rgb, err);
        }
    }
    rf_vae_stream_destroy(&st);
    free(zf);
    free(px);
    free(rgb);
    return rc;
}

/* ---- render --------------------------------------------------------------------- */

typedef struct s_render_ctx {
    rf_video_writer *writer;
    double encode_s;
    int frames_written, frames_total;
} s_render_ctx;

static int s_write_frame(void *vctx, const float *rgb, rf_error *err)
{
    s_render_ctx *rc = vctx;
    if (rc->frames_written >= rc->frames_total)
        return 0;
    double t0 = s_now();
    int r = rf_video_writer_write_f32(rc->writer, rgb, err);
    rc->encode_s += s_now() - t0;
    rc->frames_written++;
    return r;
}

typedef struct s_progress {
    int enabled, steps;
    double t0;
} s_progress;

static int s_step_progress(void *ctx, int done)
{
    s_progress *pr = ctx;
    if (!pr->enabled)
        return 0;
    double el = s_now() - pr->t0;
    double rate = done / (el > 1e-9 ? el : 1e-9);
    double eta = (pr->steps - done) / (rate > 1e-9 ? rate : 1e-9);
    fprintf(stderr, "\rsampling: step %d/%d  %.2f steps/s  ETA %.0fs   ", done, pr->steps, rate,
            eta);
    if (done == pr->steps)
        fputc('\n', stderr);
    return 0;
}

/* The render's input (at most one): encoded into *z, described by *span, p set up for it. */
static int s_render_input(rf_pipeline *self, const rf_render_opts *o, int frames,
                          rf_denoise_params *p, float **z, rf_cond_span *span,
                          rf_render_stats *stats, rf_error *err)
{
    const char *path = o->image ? o->image : o->video ? o->video : o->continues;
    if (!!o->image + !!o->video + !!o->continues > 1)
        return rf_error_set(err, RF_EINVAL,
                            "give one input: an image, a video or a clip to continue");
    if (!(o->strength >= 0.0 && o->strength <= 1.0))
        return rf_error_set(err, RF_EINVAL, "strength must be in [0, 1], got %g", o->strength);
    int64_t use = 1, have = 1, T = 0;
    int rc = 0;
    if (o->image) {
        /* a still with strength restyles the picture (SDEdit); otherwise it is frame 0 */
        p->sdedit = o->strength > 0.0;
        if (p->sdedit && frames != 1)
            return rf_error_set(err, RF_EINVAL,
                                "--strength with an image restyles a still (--frames 1); a film "
                                "opens on the image without it");
        stats->known_frames = p->sdedit ? 0 : 1;
    } else {
        rc = rf_cond_count_frames(path, &have, err);
        if (rc)
            return rf_error_prefix(err, "reading the input");
        if (o->video) {
            if (have < frames)
                return rf_error_set(err, RF_EINVAL,
                                    "%s has %lld frames; the film needs %d (make it shorter or "
                                    "give a longer clip)",
                                    path, (long long)have, frames);
            use = frames;
            p->sdedit = 1;
        } else {
            if (frames == 1)
                return rf_error_set(err, RF_EINVAL, "a still cannot continue a clip");
            if (have < 1 || have > frames - 4)
                return rf_error_set(err, RF_EINVAL,
                                    "%s has %lld frames; a continuation of it needs a film of at "
                                    "least %lld frames (got %d)",
                                    path, (long long)have, (long long)((have - 1) / 4 * 4 + 5),
                                    frames);
            use = (have - 1) / 4 * 4 + 1; /* the known frames: the clip's first 4n+1 */
            stats->known_frames = (int)use;
        }
    }
    p->strength = o->strength;
    rc = rf_pipeline_encode_media(self, path, p->width, p->height, 0, use, z, &T, err);
    if (rc)
        return rc;
    *span = (rf_cond_span){*z, 0, T, 16, p->height / 8, p->width / 8};
    p->cond = span;
    p->ncond = 1;
    return 0;
}

int rf_pipeline_render(rf_pipeline *self, const rf_render_opts *o, rf_render_stats *stats,
                       rf_error *err)
{
    const rf_model_defaults *d = &self->model.defaults;
    rf_denoise_params p;
    memset(&p, 0, sizeof(p));
    rf_sampler_kind kind;
    int rc = rf_sampler_kind_parse(o->sampler ? o->sampler : d->sampler, &kind, err);
    if (rc)
        return rc;
    int frames = o->frames > 0 ? o->frames : d->frames;
    if ((frames - 1) % 4 != 0)
        return rf_error_set(err, RF_EINVAL, "frames must be 4n+1 (1, 5, 9, ..., 81), got %d",
                            frames);
    p.sampler = kind;
    p.steps = o->steps > 0 ? o->steps : d->steps;
    p.shift = o->shift >= 0 ? o->shift : d->shift;
    p.guidance = o->guidance >= 0 ? o->guidance : d->guidance;
    p.seed = o->seed;
    p.width = o->width > 0 ? o->width : d->width;
    p.height = o->height > 0 ? o->height : d->height;
    p.window_start = 0;
    p.window_len = (frames - 1) / 4 + 1;
    memset(stats, 0, sizeof(*stats));
    double t_all = s_now();

    /* text */
    double t0 = s_now();
    float *ctx = NULL, *neg = NULL, *zin = NULL;
    rf_cond_span zspan;
    int64_t rows = 0, nrows = 0, dim = 0, ndim = 0;
    rc = rf_pipeline_encode_text(self, o->prompt, &ctx, &rows, &dim, err);
    const char *negative = o->negative ? o->negative : d->negative;
    if (!rc && p.guidance > 1.0)
        rc = rf_pipeline_encode_text(self, negative, &neg, &nrows, &ndim, err);
    stats->text_s = s_now() - t0;
    if (rc)
        goto out;
    p.context = ctx;
    p.ctx_rows = rows;
    p.negative = neg;
    p.neg_rows = nrows;
    p.dim = dim;
    if (o->image || o->video || o->continues) {
        rc = s_render_input(self, o, frames, &p, &zin, &zspan, stats, err);
        if (rc)
            goto out;
    }

    /* sampling */
    t0 = s_now();
    rf_chunk_state *st = rf_pipeline_denoise_init(self, &p, err);
    if (!st) {
        rc = err ? (int)err->code : RF_EINVAL;
        goto out;
    }
    s_progress pr = {o->progress, p.steps, s_now()};
    stats->start_step = rf_cond_state_start(st);
    rc = rf_pipeline_denoise(self, &p, st, p.steps, s_step_progress, &pr, err);
    stats->sample_s = s_now() - t0;
    if (rc) {
        rf_chunk_state_destroy(&st);
        goto out;
    }

    /* decode + encode */
    rf_video_opts vo;
    memset(&vo, 0, sizeof(vo));
    vo.codec = o->codec;
    vo.width = p.width;
    vo.height = p.height;
    vo.fps = o->fps > 0 ? o->fps : d->fps;
    vo.crf = o->crf;
    s_render_ctx wc = {0};
    wc.frames_total = frames;
    wc.writer = rf_video_writer_open(o->output, &vo, err);
    if (!wc.writer) {
        rf_chunk_state_destroy(&st);
        rc = err ? (int)err->code : RF_EIO;
        goto out;
    }
    t0 = s_now();
    const rf_cs_tensor *x = rf_chunk_state_tensor(st, "latent");
    rc = rf_pipeline_decode(self, x->data, 0, p.window_len, p.height / 8, p.width / 8, 0,
                            p.window_len, 0, s_write_frame, &wc, err);
    rf_chunk_state_destroy(&st);
    if (rc) {
        rf_video_writer_abort(&wc.writer);
        goto out;
    }
    double t_close = s_now();
    rc = rf_video_writer_close(&wc.writer, err);
    wc.encode_s += s_now() - t_close;
    stats->encode_s = wc.encode_s;
    stats->decode_s = s_now() - t0 - wc.encode_s;
    stats->steps = p.steps;
    stats->frames = wc.frames_written;
    stats->width = p.width;
    stats->height = p.height;
out:
    stats->total_s = s_now() - t_all;
    free(ctx);
    free(neg);
    free(zin);
    return rc;
}
