/* vae.h - the Wan-VAE (Wan2.1 architecture): causal video encoder and decoder in streams.
 *
 * A model is loaded from a .safetensors file with the official Wan2.1 VAE names; every
 * width and the layer sequence come from the weights. Decoding and encoding run as
 * streams that keep one cache per causal conv, so a timeline of any length runs in
 * memory bounded by one step: the decoder takes one latent frame per push, the encoder
 * 1 pixel frame (the timeline's first) or 4. A stream made with first = 0 is a
 * continuation: zero caches, no first-frame rule (4 pixel frames per latent frame), which
 * is how a segment [a, b) is decoded from a - w with w warm-up frames. Latent
 * normalization (z = (mu - mean) / std) uses `latents_mean`/`latents_std` when the file
 * has them, else Wan2.1's constants. Nothing here reads or writes files besides the load.
 */
#ifndef RF_VAE_H
#define RF_VAE_H

#include "backend.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

#define RF_VAE_MAX_Z 64

typedef struct rf_vae rf_vae;
typedef struct rf_vae_stream rf_vae_stream;

/* Loads the VAE in path onto backend be (borrowed; must outlive the VAE). The decoder
 * is required; the encoder is loaded when its tensors are present. NULL + err naming
 * the file and the tensor on any problem. */
rf_vae *rf_vae_load(const char *path, rf_backend *be, rf_error *err);
/* Frees the model; NULLs *self; safe on NULL. */
void rf_vae_destroy(rf_vae **self);

int rf_vae_z_dim(const rf_vae *self);
/* Pixels per latent pixel along h and w (8 for Wan) and pixel frames per latent frame
 * after the first (4 for Wan). */
int rf_vae_spatial_factor(const rf_vae *self);
int rf_vae_temporal_factor(const rf_vae *self);
/* 1 when the file had an encoder. */
int rf_vae_has_encoder(const rf_vae *self);
/* The latent normalization in use (z_dim floats each). */
const float *rf_vae_latent_mean(const rf_vae *self);
const float *rf_vae_latent_std(const rf_vae *self);

/* A decoder stream for latents of h x w. first = 1: the first pushed frame is the
 * timeline's frame 0 (decoded to one pixel frame); first = 0: a continuation. The stream
 * allocates all it needs here; pushes allocate nothing. NULL + err. */
rf_vae_stream *rf_vae_decoder_new(rf_vae *vae, int h, int w, int first, rf_error *err);
/* An encoder stream for pixel frames of H x W (multiples of the spatial factor). first =
 * 1: the first push is the clip's frame 0 alone; then 4 frames per push. */
rf_vae_stream *rf_vae_encoder_new(rf_vae *vae, int H, int W, int first, rf_error *err);
void rf_vae_stream_destroy(rf_vae_stream **self);
/* Bytes of backend memory the stream holds (caches + working arena) and the working
 * arena's high-water mark so far. */
size_t rf_vae_stream_bytes(const rf_vae_stream *self);
size_t rf_vae_stream_high_water(const rf_vae_stream *self);

/* Decoder: pushes one normalized latent frame z [z_dim, h, w] (host f32) and writes its
 * pixel frames, clamped to [-1, 1], to out [3, n, H, W] (host; room for 3*tf*H*W floats)
 * with n = 1 for the timeline's first frame, else the temporal factor; *n_out = n. */
int rf_vae_decode_push(rf_vae_stream *self, const float *z, float *out, int *n_out, rf_error *err);
/* Encoder: pushes n pixel frames [3, n, H, W] in [-1, 1] (n = 1 for a first stream's
 * first push, else the temporal factor) and writes one normalized latent frame
 * z [z_dim, H/sf, W/sf]. */
int rf_vae_encode_push(rf_vae_stream *self, const float *frames, int n, float *z, rf_error *err);

/* Pixel frames of latent frames [a, b) of a timeline: 1 + tf (b - 1) when a == 0, else
 * tf (b - a). */
int64_t rf_vae_pixel_frames(const rf_vae *vae, int64_t a, int64_t b);

/* Decodes latent frames [a, b) of the timeline z [z_dim, T, h, w] (host, normalized)
 * running from s = max(0, a - warmup): from frame 0 when s == 0, else as a
 * continuation; the warm-up output is dropped. out [3, rf_vae_pixel_frames(a,b), 8h, 8w].
 * Memory is bounded by one push, not by T. */
int rf_vae_decode_segment(rf_vae *vae, const float *z, int64_t T, int h, int w, int64_t a,
                          int64_t b, int64_t warmup, float *out, rf_error *err);
/* Encodes latent frames [a, b) of the clip video [3, F, H, W] (F = 1 + tf (T - 1)) the
 * same way; z [z_dim, b - a, H/sf, W/sf] normalized mu. */
int rf_vae_encode_segment(rf_vae *vae, const float *video, int64_t F, int H, int W, int64_t a,
                          int64_t b, int64_t warmup, float *z, rf_error *err);

/* Warm-up measurement: decodes a random normalized latent timeline (N(0,1), seed) of
 * h x w whole, then segments [a, a + 2) with a = max_w + 1 for w = 0..max_w, and
 * records max_abs[w] (max |segment - whole| over the segment's pixels, [-1,1] units).
 * *w_8bit is the smallest w with max_abs * 127.5 <= 1 (one 8-bit level) from which every
 * larger w also stays within it, *w_1e3 the same for 1e-3; -1 when none. max_abs has
 * max_w + 1 entries. */
int rf_vae_measure_warmup(rf_vae *vae, int h, int w, int max_w, uint64_t seed, double *max_abs,
                          int *w_8bit, int *w_1e3, rf_error *err);

#endif
