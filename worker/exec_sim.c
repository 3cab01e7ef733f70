/* exec_sim.c - a simulated executor: fixed time per step, deterministic math, no model.
 *
 * For farm tests and scale benchmarks. Its outputs depend only on the task inputs (the
 * initial latent is the real Philox noise of common/rng, each step mixes in a value
 * derived from the text embedding), so a job gives bit-identical results however its
 * chunks are spread over workers, exactly like the engine. It keeps a history tensor
 * like a multistep solver, so fusion and checkpoints move more than the latent.
 * Steps sleep instead of computing, so many simulated workers fit on one machine.
 * Decoding paints flat frames from the latent's channel means and encodes them for real.
 */
#include "executor.h"

#include "hash.h"
#include "model_id.h"
#include "rng.h"
#include "video.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct s_sim {
    int step_ms;
} s_sim;

static void s_sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void s_destroy(void *ctx)
{
    free(ctx);
}

/* Embedding rows = words of the prompt (at least 1), 4096 values from its hash. */
static int s_encode_text(void *ctx, const char *prompt, float **out, int64_t *rows, int64_t *dim,
                         rf_error *err)
{
    (void)ctx;
    int64_t words = 1;
    for (const char *p = prompt; *p; p++)
        if (*p == ' ')
            words++;
    const int64_t d = 4096;
    float *e = malloc((size_t)(words * d) * sizeof(float));
    if (!e)
        return rf_error_set(err, RF_ENOMEM, "out of memory encoding a prompt");
    rf_hash h;
    rf_blake2b(prompt, strlen(prompt), &h);
    uint64_t key;
    memcpy(&key, h.bytes, sizeof(key));
    rf_noise_fill(key, 0, 0, 0, e, (size_t)(words * d));
    *out = e;
    *rows = words;
    *dim = d;
    return 0;
}

static rf_chunk_state *s_denoise_init(void *ctx, const rf_exec_denoise *d, rf_error *err)
{
    (void)ctx;
    const int64_t C = 16, h = d->height / 8, w = d->width / 8, F = d->window_len;
    int64_t shape[4] = {C, F, h, w};
    rf_chunk_state *st = rf_chunk_state_new(d->window_start, F, err);
    if (!st)
        return NULL;
    rf_cs_tensor *x = rf_chunk_state_add(st, RF_EXEC_LATENT, 4, shape, 1, NULL, err);
    rf_cs_tensor *hist = x ? rf_chunk_state_add(st, "hist", 4, shape, 1, NULL, err) : NULL;
    int rc = hist ? 0 : -1;
    /* initial noise per global frame: the layout {C, F, h, w} keeps channels outermost,
     * so fill frame by frame through a [C, 1, h, w] buffer */
    for (int64_t f = 0; !rc && f < F; f++) {
        float *buf = malloc((size_t)(C * h * w) * sizeof(float));
        if (!buf) {
            rc = rf_error_set(err, RF_ENOMEM, "out of memory");
            break;
        }
        rc = rf_noise_latent(d->seed, (uint32_t)d->timeline, (uint32_t)(d->window_start + f), C, 1,
                             h, w, buf, err);
        for (int64_t c = 0; !rc && c < C; c++)
            memcpy(x->data + ((c * F + f) * h * w), buf + c * h * w,
                   (size_t)(h * w) * sizeof(float));
        free(buf);
    }
    if (!rc)
        rc = rf_chunk_state_set_str(st, "sampler", "sim", err);
    if (!rc)
        rc = rf_chunk_state_set_i64(st, "steps", d->steps_total, err);
    if (!rc)
        rc = rf_chunk_state_set_i64(st, "step", 0, err);
    if (rc) {
        rf_chunk_state_destroy(&st);
        return NULL;
    }
    return st;
}

static int s_denoise_steps(void *ctx, const rf_exec_denoise *d, rf_chunk_state *st, int from,
                           int to, rf_exec_progress_fn progress, void *pctx, rf_error *err)
{
    s_sim *self = ctx;
    rf_cs_tensor *x = rf_chunk_state_tensor(st, RF_EXEC_LATENT);
    rf_cs_tensor *hist = rf_chunk_state_tensor(st, "hist");
    int64_t step = -1;
    if (!x || !hist || rf_chunk_state_get_i64(st, "step", &step, err) || step != from)
        return rf_error_set(err, RF_EINVAL,
                            "simulated state is not at step %d (it is at %lld); it was not made "
                            "by the simulated executor or was resumed at the wrong step",
                            from, (long long)step);
    const int64_t C = x->shape[0], F = x->shape[1], hw = x->shape[2] * x->shape[3];
    for (int s = from; s < to; s++) {
        float a = 1.0f / (float)(d->steps_total - s + 1);
        for (int64_t c = 0; c < C; c++) {
            /* the "denoised" value each channel converges to comes from the prompt */
            float target = d->context ? d->context[c % (d->ctx_rows * d->ctx_dim)] : 0.0f;
            for (int64_t i = 0; i < F * hw; i++) {
                float *v = &x->data[c * F * hw + i];
                hist->data[c * F * hw + i] = *v;
                *v = *v + a * (target - *v);
            }
        }
        rf_chunk_state_set_i64(st, "step", s + 1, NULL);
        s_sleep_ms(self->step_ms);
        if (progress && progress(pctx, s + 1 - from))
            return rf_error_set(err, RF_ECANCELED, "canceled at step %d", s + 1);
    }
    return 0;
}

/* Decodes by painting each pixel frame a flat colour from its latent frame's channel
 * means (so seams and frame counts are real), encoded with the real video writer. */
static int s_decode(void *ctx, const rf_exec_decode *d, void **bytes, size_t *len, uint32_t *frames,
                    rf_exec_progress_fn progress, void *pctx, rf_error *err)
{
    (void)ctx;
    if (d->codec == RF_CODEC_PNG)
        return rf_error_set(err, RF_EUNSUPPORTED, "workers encode video codecs only, not png");
    const int W = (int)d->w * 8, H = (int)d->h * 8;
    char dir[] = "/tmp/reelfarm-sim.XXXXXX";
    if (!mkdtemp(dir))
        return rf_error_set(err, RF_EIO, "cannot create a temporary directory");
    char path[64];
    snprintf(path, sizeof(path), "%s/seg.%s", dir, rf_codec_extension(d->codec));
    rf_video_opts vo = {d->codec,
                        W,
                        H,
                        d->out_width,
                        d->out_height,
                        d->fps > 0 ? d->fps : 16,
                        d->crf > 0 ? d->crf : -1};
    rf_video_writer *w = rf_video_writer_open(path, &vo, err);
    float *rgb = w ? malloc((size_t)W * (size_t)H * 3 * sizeof(float)) : NULL;
    int rc = w && rgb ? 0 : (err ? (int)err->code : RF_ENOMEM);
    int written = 0;
    const int64_t hw = d->h * d->w;
    for (int64_t f = d->warmup; f < d->frames && !rc; f++) {
        float col[3] = {0, 0, 0};
        for (int c = 0; c < 3; c++) {
            double sum = 0;
            for (int64_t i = 0; i < hw; i++)
                sum += d->latent[((int64_t)c * d->frames + f) * hw + i];
            col[c] = (float)tanh(sum / (double)hw);
        }
        int n = (d->first_frame + f == 0) ? 1 : 4;
        for (int k = 0; k < n && !rc; k++) {
            if (d->keep_pixel_frames > 0 && written >= d->keep_pixel_frames)
                break;
            for (int64_t i = 0; i < (int64_t)W * H; i++)
                for (int c = 0; c < 3; c++)
                    rgb[i * 3 + c] = col[c];
            rc = rf_video_writer_write_f32(w, rgb, err);
            written++;
        }
        if (!rc && progress && progress(pctx, written))
            rc = rf_error_set(err, RF_ECANCELED, "canceled while decoding");
    }
    free(rgb);
    if (rc)
        rf_video_writer_abort(&w);
    else
        rc = rf_video_writer_close(&w, err);
    if (!rc) {
        FILE *f = fopen(path, "rb");
        long n = -1;
        if (f && fseek(f, 0, SEEK_END) == 0)
            n = ftell(f);
        void *buf = n > 0 ? malloc((size_t)n) : NULL;
        if (f)
            fseek(f, 0, SEEK_SET);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            rc = rf_error_set(err, RF_EIO, "cannot read back the encoded segment %s", path);
        } else {
            *bytes = buf;
            *len = (size_t)n;
            *frames = (uint32_t)written;
        }
        if (f)
            fclose(f);
    }
    unlink(path);
    rmdir(dir);
    return rc;
}

static const rf_executor_ops s_ops = {
    .name = "sim",
    .destroy = s_destroy,
    .encode_text = s_encode_text,
    .denoise_init = s_denoise_init,
    .denoise_steps = s_denoise_steps,
    .decode = s_decode,
};

rf_executor *rf_exec_sim_new(int step_ms, const char *model_dir, rf_error *err)
{
    rf_executor *ex = calloc(1, sizeof(*ex));
    s_sim *self = calloc(1, sizeof(*self));
    if (!ex || !self) {
        free(ex);
        free(self);
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    }
    self->step_ms = step_ms;
    ex->ops = &s_ops;
    ex->ctx = self;
    rf_hash h;
    if (model_dir) {
        if (rf_model_hash(model_dir, &h, ex->model_hash, err)) {
            free(ex);
            free(self);
            return NULL;
        }
    } else {
        rf_blake2b("reelfarm-sim", 12, &h);
        rf_hash_to_hex(&h, ex->model_hash);
    }
    return ex;
}

void rf_executor_destroy(rf_executor **self)
{
    if (!self || !*self)
        return;
    if ((*self)->ops && (*self)->ops->destroy)
        (*self)->ops->destroy((*self)->ctx);
    free(*self);
    *self = NULL;
}
