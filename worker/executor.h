/* executor.h - what a worker computes with: the engine, or a simulation.
 *
 * The worker process (worker.c) owns the protocol, the schedule of rounds and the
 * chunk states; an executor only computes: encode a prompt, make a chunk's initial
 * state, advance a state by sampler steps, decode latent frames into an encoded
 * segment. One function-pointer table, so the farm runs the real engine
 * (exec_engine.c) or a deterministic simulation that takes a fixed time per step
 * without any model (exec_sim.c, for tests and scale benchmarks). Executor calls run
 * on the worker's compute thread, one at a time; they must never touch the network.
 */
#ifndef RF_EXECUTOR_H
#define RF_EXECUTOR_H

#include "chunk_state.h"
#include "codec.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define RF_EXEC_MAX_COND 4

/* The fixed inputs of one chunk's denoising (from a DENOISE task). */
typedef struct rf_exec_denoise {
    uint64_t seed;
    int timeline;
    int64_t window_start, window_len; /* global latent frames of the chunk */
    int64_t timeline_frames;          /* latent length of its timeline */
    int steps_total;
    int sampler; /* Reelfarm__Sampler of proto/reelfarm.proto (1 unipc, 2 euler, 3 dpm++) */
    float shift, guidance;
    int width, height;    /* pixels */
    const float *context; /* [ctx_rows, ctx_dim] text embedding of the chunk's prompt */
    int64_t ctx_rows, ctx_dim;
    const float *negative; /* [neg_rows, ctx_dim] or NULL (no CFG) */
    int64_t neg_rows;
    /* inputs (Denoise.conditions): clean latents [16, cond_n[i], h, w] of this timeline's
     * frames [cond_first[i], + cond_n[i]); re-imposed every step, or with strength > 0
     * the video -> video start (engine/condition.h) */
    int ncond;
    const float *cond[RF_EXEC_MAX_COND];
    int64_t cond_first[RF_EXEC_MAX_COND], cond_n[RF_EXEC_MAX_COND];
    double strength;
} rf_exec_denoise;

/* An input file to encode (from an ENCODE_MEDIA task). */
typedef struct rf_exec_media {
    const void *bytes; /* the file's bytes */
    size_t len;
    int width, height;   /* the job's pixel size (cover-cropped) */
    int64_t first_frame; /* pixel frames [first_frame, first_frame + frames), 4n+1 */
    int64_t frames;
} rf_exec_media;

/* A decoded, encoded segment (from a DECODE task). */
typedef struct rf_exec_decode {
    const float *latent; /* [16, frames, h, w]: the timeline's latent frames a - warmup .. b */
    int64_t channels, frames, h, w;
    int warmup;            /* leading latent frames decoded as context and dropped */
    int64_t first_frame;   /* timeline index of the latent's frame 0 (a - warmup) */
    int keep_pixel_frames; /* trim the output to this many frames (0: all) */
    rf_codec codec;
    int crf;
    int out_width, out_height; /* 0: the decoded size */
    int fps;
} rf_exec_decode;

/* Called by long executor calls to report progress (steps or frames done); a nonzero
 * return asks the executor to stop (the task was canceled): it returns RF_ECANCELED. */
typedef int (*rf_exec_progress_fn)(void *ctx, int done);

typedef struct rf_executor_ops {
    const char *name;
    void (*destroy)(void *ctx);
    /* Text embedding of one prompt: *out [*rows, *dim] f32, malloc'd (caller frees). */
    int (*encode_text)(void *ctx, const char *prompt, float **out, int64_t *rows, int64_t *dim,
                       rf_error *err);
    /* The chunk's state before step 0 (initial noise drawn per global frame, the
     * sampler's scalars). Caller destroys. */
    rf_chunk_state *(*denoise_init)(void *ctx, const rf_exec_denoise *d, rf_error *err);
    /* Advances st by sampler steps [from, to); st's scalars say where it is. */
    int (*denoise_steps)(void *ctx, const rf_exec_denoise *d, rf_chunk_state *st, int from, int to,
                         rf_exec_progress_fn progress, void *pctx, rf_error *err);
    /* Encodes an input image or clip with the VAE: *z [16, *T, h, w] normalized,
     * malloc'd (caller frees). */
    int (*encode_media)(void *ctx, const rf_exec_media *m, float **z, int64_t *T, rf_error *err);
    /* Decodes and encodes a segment: *bytes (malloc'd) holds a self-contained file of
     * *frames pixel frames. */
    int (*decode)(void *ctx, const rf_exec_decode *d, void **bytes, size_t *len, uint32_t *frames,
                  rf_exec_progress_fn progress, void *pctx, rf_error *err);
} rf_executor_ops;

typedef struct rf_executor {
    const rf_executor_ops *ops;
    void *ctx;
    char model_hash[65]; /* the model it serves (hex), advertised in Hello */
} rf_executor;

void rf_executor_destroy(rf_executor **self);

/* The simulated executor: every step takes step_ms milliseconds (sleeping, no CPU),
 * outputs are deterministic functions of the inputs (so farm tests can assert
 * bit-identity across worker counts). It serves the model folder model_dir without
 * loading it (its hash is rf_model_hash(model_dir), so the coordinator places the job's
 * tasks on it), or, with model_dir NULL, a "model" whose hash is that of the string
 * "reelfarm-sim". Decode produces a real video of flat frames (common/video). */
rf_executor *rf_exec_sim_new(int step_ms, const char *model_dir, rf_error *err);

/* The engine executor: runs the model in model_dir (model_folder.h) on the CPU with
 * `threads` threads; its model hash is rf_model_hash(model_dir), or hash (hex) when the
 * caller computed it already (NULL: compute it here). */
rf_executor *rf_exec_engine_new(const char *model_dir, const char *hash, int threads,
                                rf_error *err);

/* The name of the chunk-state tensor holding the latent ("latent"), shared by every
 * executor: [16, window_len, h, w], frame axis 1. */
#define RF_EXEC_LATENT "latent"

#endif
