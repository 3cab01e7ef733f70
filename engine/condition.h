/* condition.h - inputs beyond text, in the sampler's terms (ARCHITECTURE.md §2.3).
 *
 * Flow matching puts a clean latent x0 at noise level s on the line x_s = (1-s) x0 + s eps.
 * Known frames (image -> video: latent frame 0; continuation: the clip's frames) are held
 * on that line, temporal inpainting: before every model call and after the last step of a
 * run, the known frames of the chunk's "latent" become (1 - s_i) x0 + s_i eps, s_i the
 * sigma of the state's step and eps the Philox noise of that GLOBAL frame: the very noise
 * the chunk started from (rf_noise_latent with the job's seed and timeline). So at s = 1
 * the frame is its initial noise, at the end (s = 0) it is x0 bit for bit, and because the
 * value is a pure function of (step, x0, seed, frame), re-imposing is idempotent: fused,
 * saved and resumed chunk states stay bit-identical to an uninterrupted run.
 * Video -> video (SDEdit): strength s picks the start step k, the first step whose sigma is
 * <= s (k = steps for s = 0: the input comes back as it is); the chunk starts from
 * (1 - s_k) x0 + s_k eps and steps below k are skipped without a model call
 * (rf_sampler_skip), so farm rounds keep their numbering.
 * Inputs are encoded with rf_cond_encode_media (common/video reader + VAE encoder stream).
 * Nothing here runs the DiT or touches the network.
 */
#ifndef RF_CONDITION_H
#define RF_CONDITION_H

#include "chunk_state.h"
#include "error.h"
#include "sampler.h"
#include "vae/vae.h"

#include <stdint.h>

/* Clean (normalized) latent frames of a timeline: z [c, n, h, w] holds global latent
 * frames [first, first + n). Borrowed. */
typedef struct rf_cond_span {
    const float *z;
    int64_t first, n;
    int64_t c, h, w;
} rf_cond_span;

/* The scalar a video -> video state carries: the step its schedule really starts at. */
#define RF_COND_START_SCALAR "start_step"

/* x [C, T, h, w] (shape) holds global frames [window_start, window_start + T) of timeline.
 * Every frame f of x that a span holds becomes (1 - sigma) x0[f] + sigma eps[f] (f32:
 * (float)(1 - sigma) * x0 + (float)sigma * eps), eps = rf_noise(seed, timeline, f, .).
 * Frames no span holds are untouched. RF_ESHAPE when a span's c, h, w differ from x's.
 * Allocates nothing. */
int rf_cond_blend(float *x, const int64_t shape[4], int64_t window_start, double sigma,
                  const rf_cond_span *spans, int nspans, uint64_t seed, uint32_t timeline,
                  rf_error *err);

/* Re-imposes the spans on st's "latent" at the sigma of st's step (rf_cond_blend). */
int rf_cond_reimpose(const rf_sampler *smp, rf_chunk_state *st, const rf_cond_span *spans,
                     int nspans, uint64_t seed, uint32_t timeline, rf_error *err);

/* The SDEdit start step for strength in [0, 1]: the first i in 0..steps whose sigma is
 * <= strength (steps when strength is 0). */
int rf_cond_start_step(const rf_sampler *smp, double strength);

/* 1 when the spans hold every frame of [a, b), else 0. */
int rf_cond_covers(const rf_cond_span *spans, int nspans, int64_t a, int64_t b);

/* Turns a fresh state (step 0, latent = the Philox noise of its frames) into a video ->
 * video start: latent = (1 - s_k) x0 + s_k eps with k = rf_cond_start_step(strength),
 * scalar RF_COND_START_SCALAR = k. The spans must hold the whole window (RF_EINVAL naming
 * the missing frames otherwise). */
int rf_cond_sdedit_init(const rf_sampler *smp, rf_chunk_state *st, double strength,
                        const rf_cond_span *spans, int nspans, uint64_t seed, uint32_t timeline,
                        rf_error *err);

/* The start step a state records (0 when it has none). */
int rf_cond_state_start(const rf_chunk_state *st);

/* Encodes pixel frames [first_frame, first_frame + frames) of an image or clip file (any
 * format common/video reads; scaled to cover width x height and centre-cropped) with the
 * VAE encoder, streaming (memory bounded by one push): frames must be 4n+1 (1 for an
 * image). *z [z_dim, T, height/8, width/8] (T = (frames - 1)/4 + 1) is malloc'd (caller
 * frees). Errors name the path: unreadable, too short ("has N frames, M needed"), a
 * size the VAE cannot take, a VAE without an encoder. */
int rf_cond_encode_media(rf_vae *vae, const char *path, int width, int height, int64_t first_frame,
                         int64_t frames, float **z, int64_t *T, rf_error *err);

/* Counts the pixel frames of a clip (decoding it; 1 for an image). */
int rf_cond_count_frames(const char *path, int64_t *frames, rf_error *err);

#endif
