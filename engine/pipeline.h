/* pipeline.h - prompt to video on one machine: tokenizer -> umT5 -> DiT + sampler -> VAE.
 *
 * One object per model folder (model_folder.h). Components load on first use, so a
 * worker that only decodes never loads the text encoder. The pieces the farm needs
 * are exposed one by one (encode a prompt, make a chunk's initial state, advance it by
 * steps, decode a span of latent frames); rf_pipeline_render chains them for the
 * one-machine `reelfarm-engine render`. The initial noise of every latent frame comes
 * from Philox keyed by (seed, timeline, global frame), so a chunk's state does not
 * depend on where the chunk starts. Pure compute and local files: no networking.
 */
#ifndef RF_PIPELINE_H
#define RF_PIPELINE_H

#include "chunk_state.h"
#include "codec.h"
#include "condition.h"
#include "error.h"
#include "model_folder.h"
#include "sampler.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rf_pipeline rf_pipeline;

typedef struct rf_pipeline_opts {
    int threads; /* CPU threads; <= 0: all cores */
} rf_pipeline_opts;

/* Reads the model folder (every missing piece named); loads nothing yet. */
rf_pipeline *rf_pipeline_open(const char *model_dir, const rf_pipeline_opts *opts, rf_error *err);
void rf_pipeline_destroy(rf_pipeline **self);
const rf_model_folder *rf_pipeline_model(const rf_pipeline *self);

/* The text embedding of a prompt: the umT5 output for its real tokens (</s> included),
 * *out [*rows, *dim] malloc'd (caller frees). */
int rf_pipeline_encode_text(rf_pipeline *self, const char *prompt, float **out, int64_t *rows,
                            int64_t *dim, rf_error *err);

/* What a chunk (or a whole clip) is denoised with. */
typedef struct rf_denoise_params {
    rf_sampler_kind sampler;
    int steps;
    double shift, guidance; /* guidance <= 1 or no negative: no CFG (batch 1) */
    uint64_t seed;
    int timeline;
    int64_t window_start, window_len; /* global latent frames */
    int width, height;                /* pixels (multiples of 16) */
    const float *context;             /* [ctx_rows, dim] */
    int64_t ctx_rows;
    const float *negative; /* [neg_rows, dim] or NULL */
    int64_t neg_rows;
    int64_t dim;
    /* inputs beyond text (engine/condition.h): clean latent spans of this timeline.
     * sdedit = 0: re-imposed before every step and at the end (image, continuation);
     * sdedit = 1: the input the schedule starts from at `strength` (video -> video). */
    const rf_cond_span *cond;
    int ncond;
    int sdedit;
    double strength;
} rf_denoise_params;

/* A chunk's state at step 0: the latent is the Philox noise of its global frames, with
 * p->cond re-imposed, or (sdedit) the input noised to the start step's sigma. */
rf_chunk_state *rf_pipeline_denoise_init(rf_pipeline *self, const rf_denoise_params *p,
                                         rf_error *err);
/* Advances st to step `until` (at most p->steps): steps below a video -> video start
 * are skipped, p->cond re-imposed before each model call and at the end. progress(ctx, steps done in this call)
 * after each step; a nonzero return cancels (RF_ECANCELED). */
int rf_pipeline_denoise(rf_pipeline *self, const rf_denoise_params *p, rf_chunk_state *st,
                        int until, int (*progress)(void *ctx, int done), void *pctx, rf_error *err);

/* Decodes latent frames [a, b) of a timeline with warm-up w and hands each pixel frame
 * (RGB interleaved HWC floats in [-1, 1]) to frame(ctx, rgb). z [16, n, h, w]
 * (normalized) holds the timeline's latent frames [z_first, z_first + n), which must
 * include [max(0, a - w), b). Decoding starts at max(0, a - w): with the first-frame rule
 * when that is the timeline's frame 0, else as a continuation; the warm-up output is
 * dropped. Pixel frames: 1 + 4(b - 1) when a == 0, else 4(b - a). */
int rf_pipeline_decode(rf_pipeline *self, const float *z, int64_t z_first, int64_t n, int h, int w,
                       int64_t a, int64_t b, int64_t warmup,
                       int (*frame)(void *ctx, const float *rgb, rf_error *err), void *fctx,
                       rf_error *err);

/* Encodes pixel frames [first_frame, first_frame + frames) (4n+1) of an image or clip
 * file at width x height (cover-cropped) with the model's VAE: *z [16, *T, h, w]
 * normalized, malloc'd (caller frees). See rf_cond_encode_media. */
int rf_pipeline_encode_media(rf_pipeline *self, const char *path, int width, int height,
                             int64_t first_frame, int64_t frames, float **z, int64_t *T,
                             rf_error *err);

typedef struct rf_render_opts {
    const char *prompt;
    const char *negative; /* NULL: the model's default negative prompt */
    int frames;           /* pixel frames, 4n+1 (1: a still image) */
    int width, height;    /* 0: the model's native size */
    int steps;            /* 0: the model's default; same for shift/guidance < 0 */
    double shift, guidance;
    const char *sampler; /* NULL: the model's default */
    uint64_t seed;
    int fps;            /* 0: the model's */
    const char *output; /* .mp4 .mov .mkv, a directory (png) or .png (still) */
    rf_codec codec;
    int crf;      /* -1: the codec's default */
    int progress; /* 1: a progress line on stderr */
    /* at most one input (ARCHITECTURE.md §2.3); NULL: text only */
    const char *image;     /* the film opens on this picture (latent frame 0 re-imposed) */
    const char *video;     /* restyled from this clip (SDEdit) at `strength` in [0, 1] */
    const char *continues; /* this clip's frames are the known beginning */
    double strength;
} rf_render_opts;

typedef struct rf_render_stats {
    double text_s, sample_s, decode_s, encode_s, total_s;
    int steps, frames, width, height;
    int known_frames; /* pixel frames of the input re-imposed (image 1, continuation) */
    int start_step;   /* video -> video: the step the schedule started at */
} rf_render_stats;

/* Renders one clip to a file. */
int rf_pipeline_render(rf_pipeline *self, const rf_render_opts *o, rf_render_stats *stats,
                       rf_error *err);

#endif
