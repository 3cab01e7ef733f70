/* sampler.h - flow-matching samplers (Euler, UniPC bh2, DPM++ 2M) with shift and CFG.
 *
 * Flow matching (WAN_SPEC.md §4): x_s = (1 - s) x0 + s noise; the model predicts the
 * velocity v and x0 = x_s - s v. Sigmas are shifted, s' = k s / (1 + (k - 1) s), and the
 * model receives t = floor(s' * 1000). With guidance the model runs once on a batch of 2
 * (index 0 conditional, 1 unconditional) and v = v_u + g (v_c - v_u).
 * The sampler's whole memory between steps IS a chunk state (common/chunk_state.h): the
 * latent and the solver history as framed tensors, the counters as scalars. So a state
 * can be saved, fused with its neighbours, moved and resumed, and stepping from a loaded
 * state is bit-identical to never stopping. Nothing here knows the DiT: the model is a
 * callback. A step allocates nothing (scratch is sized in rf_sampler_new).
 */
#ifndef RF_SAMPLER_H
#define RF_SAMPLER_H

#include "chunk_state.h"
#include "error.h"

#include <stdint.h>

typedef enum rf_sampler_kind {
    RF_SAMPLER_EULER = 0, /* first order on shift(linspace(1, 0, N+1)[:N]) + [0] */
    RF_SAMPLER_UNIPC,     /* UniPC bh2, order 2, x0 prediction; the Wan default */
    RF_SAMPLER_DPMPP,     /* DPM-Solver++ 2M (multistep, order 2, x0 prediction) */
    RF_SAMPLER_COUNT
} rf_sampler_kind;

/* "euler", "unipc", "dpm++" -> *out; RF_EINVAL naming the choices otherwise. */
int rf_sampler_kind_parse(const char *name, rf_sampler_kind *out, rf_error *err);
/* The name ("euler", "unipc", "dpm++"; "?" out of range). */
const char *rf_sampler_kind_name(rf_sampler_kind kind);

#define RF_SAMPLER_MAX_STEPS 10000

typedef struct rf_sampler_config {
    rf_sampler_kind kind;
    int steps;       /* N, 1..RF_SAMPLER_MAX_STEPS */
    double shift;    /* k > 0 (1: no shift) */
    int cfg;         /* 1: classifier-free guidance, batch 2 [cond, uncond]; 0: batch 1 */
    double guidance; /* g (used when cfg) */
} rf_sampler_config;

/* The N+1 sigmas of a schedule (the last is 0), in double:
 * unipc: shift(linspace(0.999, 0, N+1)[:N]) then 0; euler and dpm++:
 * shift(linspace(1, 0, N+1)[:N]) then 0. linspace is computed as numpy does
 * (start + i * ((stop - start) / N)). out holds steps + 1 doubles. */
int rf_sampler_sigmas(rf_sampler_kind kind, int steps, double shift, double *out, rf_error *err);
/* The timestep the model receives at sigma s: floor(s * 1000) (s * 1000 in double). */
float rf_sampler_timestep(double sigma);

/* The model: x is [batch, C, F, H, W] f32 (shape = {C, F, H, W}); batch 1 is the
 * conditional pass, batch 2 is [cond, uncond]; t[b] is the timestep of item b. Writes
 * v [batch, C, F, H, W]. Returns 0 or an rf_status with err set. */
typedef int (*rf_model_fn)(void *ctx, int batch, const int64_t shape[4], const float *x,
                           const float *t, float *v, rf_error *err);

typedef struct rf_sampler rf_sampler;

/* A sampler for latents of shape {C, F, H, W} (F = the chunk's latent frames); computes
 * the schedule and allocates all per-step scratch. NULL + err on a bad config. */
rf_sampler *rf_sampler_new(const rf_sampler_config *cfg, const int64_t shape[4], rf_error *err);
void rf_sampler_destroy(rf_sampler **self);
const rf_sampler_config *rf_sampler_get_config(const rf_sampler *self);
/* Sigma i (0 <= i <= steps) of the schedule. */
double rf_sampler_sigma(const rf_sampler *self, int i);

/* A fresh state at step 0 for the chunk whose window starts at global latent frame
 * window_start: "latent" = x_init ({C,F,H,W}, copied; Philox noise for text-to-video),
 * the solver history zeroed, scalars sampler/steps/shift/cfg/guidance/step and the
 * solver's counters. Caller destroys. */
rf_chunk_state *rf_sampler_state_new(const rf_sampler *self, const float *x_init,
                                     int64_t window_start, rf_error *err);
/* Reads the config a state was made with (to resume without restating it). */
int rf_sampler_config_from_state(const rf_chunk_state *st, rf_sampler_config *cfg, rf_error *err);
/* 0 when st belongs to this sampler (same sampler, steps, shift, cfg and guidance bit
 * for bit, the tensors and shapes it keeps, a step in 0..steps); else RF_EINVAL naming
 * the field and both values. */
int rf_sampler_check_state(const rf_sampler *self, const rf_chunk_state *st, rf_error *err);
/* The step index of st (the number of steps taken), or -1 when it has none. */
int rf_sampler_state_step(const rf_chunk_state *st);

/* Takes step `step` of st in place: one model call (batch 2 with CFG), then the solver
 * update of the latent, the history and the counters. Refused (RF_EINVAL) when st is
 * finished or does not belong to this sampler; on a model error st is unchanged. */
int rf_sampler_step(rf_sampler *self, rf_chunk_state *st, rf_model_fn model, void *ctx,
                    rf_error *err);
/* Advances st's step counter by one without a model call, the latent and the history
 * untouched: a schedule that starts at a later step (video -> video, engine/condition.h)
 * skips the steps before it, so step numbers (and farm rounds) stay those of the full
 * schedule. Only before the first step taken (the solver then starts at first order);
 * RF_EINVAL otherwise or when st is finished or foreign. */
int rf_sampler_skip(rf_sampler *self, rf_chunk_state *st, rf_error *err);
/* Steps until step == until (<= steps; or steps when until < 0). */
int rf_sampler_run(rf_sampler *self, rf_chunk_state *st, int until, rf_model_fn model, void *ctx,
                   rf_error *err);

#endif
