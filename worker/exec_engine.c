/* exec_engine.c - the executor that runs the Wan model through engine/pipeline.
 *
 * Maps the farm's task inputs onto the pipeline: text embeddings, chunk states made
 * and stepped by the sampler (the chunk state IS the sampler state, so rounds and
 * checkpoints need nothing extra here), and DECODE segments decoded with their warm-up
 * and encoded into a self-contained file with the job's codec. A segment is encoded
 * into a private temporary directory and read back as bytes; nothing else touches disk.
 */
#include "executor.h"

#include "log.h"
#include "model_id.h"
#include "pipeline.h"
#include "video.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct s_engine {
    rf_pipeline *p;
    char tmpdir[PATH_MAX];
} s_engine;

static void s_destroy(void *ctx)
{
    s_engine *self = ctx;
    rf_pipeline_destroy(&self->p);
    if (self->tmpdir[0])
        rmdir(self->tmpdir);
    free(self);
}

static int s_encode_text(void *ctx, const char *prompt, float **out, int64_t *rows, int64_t *dim,
                         rf_error *err)
{
    s_engine *self = ctx;
    return rf_pipeline_encode_text(self->p, prompt, out, rows, dim, err);
}

/* p->cond points into cond (RF_EXEC_MAX_COND spans), which must outlive p. */
static int s_params(const rf_exec_denoise *d, rf_denoise_params *p, rf_cond_span *cond,
                    rf_error *err)
{
    memset(p, 0, sizeof(*p));
    switch (d->sampler) {
    case 1: p->sampler = RF_SAMPLER_UNIPC; break;
    case 2: p->sampler = RF_SAMPLER_EULER; break;
    case 3: p->sampler = RF_SAMPLER_DPMPP; break;
    default: return rf_error_set(err, RF_EINVAL, "unknown sampler %d", d->sampler);
    }
    p->steps = d->steps_total;
    p->shift = d->shift;
    p->guidance = d->guidance;
    p->seed = d->seed;
    p->timeline = d->timeline;
    p->window_start = d->window_start;
    p->window_len = d->window_len;
    p->width = d->width;
    p->height = d->height;
    p->context = d->context;
    p->ctx_rows = d->ctx_rows;
    p->negative = d->negative;
    p->neg_rows = d->neg_rows;
    p->dim = d->ctx_dim;
    if (d->ncond < 0 || d->ncond > RF_EXEC_MAX_COND)
        return rf_error_set(err, RF_EINVAL, "%d conditions (at most %d)", d->ncond,
                            RF_EXEC_MAX_COND);
    for (int i = 0; i < d->ncond; i++)
        cond[i] = (rf_cond_span){d->cond[i], d->cond_first[i], d->cond_n[i],
                                 16,         d->height / 8,    d->width / 8};
    p->cond = d->ncond ? cond : NULL;
    p->ncond = d->ncond;
    p->sdedit = d->strength > 0.0;
    p->strength = d->strength;
    return 0;
}

static rf_chunk_state *s_denoise_init(void *ctx, const rf_exec_denoise *d, rf_error *err)
{
    s_engine *self = ctx;
    rf_denoise_params p;
    rf_cond_span cond[RF_EXEC_MAX_COND];
    if (s_params(d, &p, cond, err))
        return NULL;
    return rf_pipeline_denoise_init(self->p, &p, err);
}

typedef struct s_prog {
    rf_exec_progress_fn fn;
    void *ctx;
} s_prog;

static int s_forward_progress(void *ctx, int done)
{
    s_prog *pr = ctx;
    return pr->fn ? pr->fn(pr->ctx, done) : 0;
}

static int s_denoise_steps(void *ctx, const rf_exec_denoise *d, rf_chunk_state *st, int from,
                           int to, rf_exec_progress_fn progress, void *pctx, rf_error *err)
{
    s_engine *self = ctx;
    rf_denoise_params p;
    rf_cond_span cond[RF_EXEC_MAX_COND];
    int rc = s_params(d, &p, cond, err);
    if (rc)
        return rc;
    int at = rf_sampler_state_step(st);
    if (at != from)
        return rf_error_set(err, RF_EINVAL, "the chunk state is at step %d, the task asks for %d",
                            at, from);
    s_prog pr = {progress, pctx};
    return rf_pipeline_denoise(self->p, &p, st, to, s_forward_progress, &pr, err);
}

typedef struct s_seg {
    rf_video_writer *w;
    int keep, written;
    rf_exec_progress_fn progress;
    void *pctx;
} s_seg;

static int s_seg_frame(void *ctx, const float *rgb, rf_error *err)
{
    s_seg *s = ctx;
    if (s->keep > 0 && s->written >= s->keep)
        return 0;
    int rc = rf_video_writer_write_f32(s->w, rgb, err);
    s->written++;
    if (!rc && s->progress && s->progress(s->pctx, s->written))
        rc = rf_error_set(err, RF_ECANCELED, "canceled while decoding");
    return rc;
}

static int s_read_file(const char *path, void **out, size_t *len, rf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rf_error_set(err, RF_EIO, "cannot read the encoded segment %s: %s", path,
                            strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return rf_error_set(err, RF_EIO, "cannot read the encoded segment %s", path);
    }
    fclose(f);
    *out = buf;
    *len = (size_t)n;
    return 0;
}

static int s_decode(void *ctx, const rf_exec_decode *d, void **bytes, size_t *len, uint32_t *frames,
                    rf_exec_progress_fn progress, void *pctx, rf_error *err)
{
    s_engine *self = ctx;
    if (d->codec == RF_CODEC_PNG)
        return rf_error_set(err, RF_EUNSUPPORTED,
                            "PNG sequences are written by the coordinator from a lossless "
                            "segment; a worker encodes video codecs only");
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/segment.%s", self->tmpdir, rf_codec_extension(d->codec));
    rf_video_opts vo;
    memset(&vo, 0, sizeof(vo));
    vo.codec = d->codec;
    vo.width = (int)d->w * 8;
    vo.height = (int)d->h * 8;
    vo.out_width = d->out_width;
    vo.out_height = d->out_height;
    vo.fps = d->fps > 0 ? d->fps : 16;
    vo.crf = d->crf > 0 ? d->crf : -1;
    s_seg s = {NULL, d->keep_pixel_frames, 0, progress, pctx};
    s.w = rf_video_writer_open(path, &vo, err);
    if (!s.w)
        return err ? (int)err->code : RF_EIO;
    /* the latent holds the timeline's frames [first_frame, first_frame + frames) */
    int64_t a = d->first_frame + d->warmup, b = d->first_frame + d->frames;
    int rc = rf_pipeline_decode(self->p, d->latent, d->first_frame, d->frames, (int)d->h, (int)d->w,
                                a, b, d->warmup, s_seg_frame, &s, err);
    if (rc) {
        rf_video_writer_abort(&s.w);
        return rc;
    }
    rc = rf_video_writer_close(&s.w, err);
    if (!rc)
        rc = s_read_file(path, bytes, len, err);
    unlink(path);
    if (!rc)
        *frames = (uint32_t)s.written;
    return rc;
}

/* The input's bytes go to a private temporary file (common/video reads files). */
static int s_encode_media(void *ctx, const rf_exec_media *m, float **z, int64_t *T, rf_error *err)
{
    s_engine *self = ctx;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/input.XXXXXX", self->tmpdir);
    int fd = mkstemp(path);
    if (fd < 0)
        return rf_error_set(err, RF_EIO, "cannot create %s: %s", path, strerror(errno));
    size_t off = 0;
    while (off < m->len) {
        ssize_t n = write(fd, (const char *)m->bytes + off, m->len - off);
        if (n <= 0) {
            close(fd);
            unlink(path);
            return rf_error_set(err, RF_EIO, "cannot write the input to %s: %s", path,
                                strerror(errno));
        }
        off += (size_t)n;
    }
    close(fd);
    int rc = rf_pipeline_encode_media(self->p, path, m->width, m->height, m->first_frame, m->frames,
                                      z, T, err);
    unlink(path);
    if (rc)
        rf_error_prefix(err, "the job's input (%zu bytes, kept here as a temporary file)", m->len);
    return rc;
}

static const rf_executor_ops s_ops = {
    .name = "cpu",
    .destroy = s_destroy,
    .encode_text = s_encode_text,
    .denoise_init = s_denoise_init,
    .denoise_steps = s_denoise_steps,
    .encode_media = s_encode_media,
    .decode = s_decode,
};

rf_executor *rf_exec_engine_new(const char *model_dir, const char *hash, int threads, rf_error *err)
{
    rf_executor *ex = calloc(1, sizeof(*ex));
    s_engine *self = calloc(1, sizeof(*self));
    if (!ex || !self) {
        free(ex);
        free(self);
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    }
    rf_hash h;
    if (hash)
        snprintf(ex->model_hash, sizeof(ex->model_hash), "%s", hash);
    else if (rf_model_hash(model_dir, &h, ex->model_hash, err)) {
        free(ex);
        free(self);
        return NULL;
    }
    rf_pipeline_opts po = {threads};
    self->p = rf_pipeline_open(model_dir, &po, err);
    const char *base = getenv("TMPDIR");
    snprintf(self->tmpdir, sizeof(self->tmpdir), "%s/reelfarm-worker.XXXXXX",
             base && *base ? base : "/tmp");
    if (!self->p || !mkdtemp(self->tmpdir)) {
        if (self->p)
            rf_error_set(err, RF_EIO, "cannot create a temporary directory %s: %s", self->tmpdir,
                         strerror(errno));
        self->tmpdir[0] = '\0';
        s_destroy(self);
        free(ex);
        return NULL;
    }
    ex->ops = &s_ops;
    ex->ctx = self;
    return ex;
}
