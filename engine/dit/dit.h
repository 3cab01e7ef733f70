/* dit.h - the Wan2.1 diffusion transformer (text-to-video), forward pass on a backend.
 *
 * Loads the three folder forms users have (WAN_SPEC.md §1): the official release
 * (config.json + diffusion_pytorch_model.safetensors or a sharded set with its index),
 * a single-file repack whose names carry `model.diffusion_model.` (no config: dims
 * inferred from the shapes, head_dim 128), and the diffusers naming with its config.
 * Every tensor is checked against the config: errors name the tensor, the expected and
 * the actual shape. Matrices keep their file dtype (F32, BF16 or F16); biases, norms and
 * modulation tables become F32. Scratch is one arena sized by rf_dit_reserve for a
 * maximum batch and token count; rf_dit_forward then allocates nothing.
 * Tensor parallelism: a model loaded with tp_size n > 1 holds only rank tp_rank's shard
 * and runs its forward together with the other ranks through an rf_comm (see dit_tp.h).
 */
#ifndef RF_DIT_H
#define RF_DIT_H

#include "backend.h"
#include "collective.h"
#include "error.h"

#include <stddef.h>
#include <stdint.h>

typedef enum rf_dit_form {
    RF_DIT_FORM_OFFICIAL = 0, /* config.json (dim, num_heads, ...) + official names */
    RF_DIT_FORM_REPACK,       /* `model.diffusion_model.` names, dims from shapes */
    RF_DIT_FORM_DIFFUSERS,    /* diffusers names and config keys */
} rf_dit_form;

typedef struct rf_dit_config {
    int64_t dim, ffn_dim, freq_dim, num_heads, head_dim, num_layers;
    int64_t in_dim, out_dim, text_len, text_dim;
    int64_t patch[3]; /* (t, h, w) */
    double eps;
    double rope_theta;
    rf_dit_form form;
} rf_dit_config;

typedef struct rf_dit rf_dit;

typedef struct rf_dit_load_opts {
    int tp_rank, tp_size; /* 0, 1 for a whole model */
    rf_comm *comm;        /* this rank's handle when tp_size > 1 */
} rf_dit_load_opts;

/* Loads the model in directory `dir` (or a single .safetensors file of the repack form)
 * onto backend be (borrowed; must outlive the model). opts may be NULL (whole model).
 * NULL + err naming the file, tensor, expected and actual shape on any problem. */
rf_dit *rf_dit_load(const char *dir, rf_backend *be, const rf_dit_load_opts *opts, rf_error *err);
void rf_dit_destroy(rf_dit **d);
const rf_dit_config *rf_dit_get_config(const rf_dit *d);
/* Bytes of weights this model (or rank) holds on its backend. */
size_t rf_dit_weight_bytes(const rf_dit *d);

/* Degrees that divide the heads and the FFN width, written into out (at most cap) in
 * increasing order; returns how many. */
int rf_dit_valid_tp_degrees(const rf_dit_config *c, int *out, int cap);
/* Reads only the configuration of a model folder (official, repack or diffusers). */
int rf_dit_read_config(const char *dir, rf_dit_config *out, rf_error *err);

/* Sizes the scratch arena for batches up to max_batch and latents of up to max_tokens
 * patches (the single allocation of the forward's memory). May be called again. */
int rf_dit_reserve(rf_dit *d, int64_t max_batch, int64_t max_tokens, rf_error *err);
/* Bytes the arena would need for (batch, tokens). */
size_t rf_dit_arena_bytes(const rf_dit *d, int64_t batch, int64_t tokens);

/* One forward. Host arrays: x [B, in_dim, F, H, W], t [B] (the timestep the model
 * receives), context [B, ctx_len, text_dim] (ctx_len <= text_len rows; the rest is zero
 * padding, as in the release), v [B, out_dim, F, H, W] written on return. F, H, W must be
 * multiples of the patch. Needs a prior rf_dit_reserve covering B and F*H*W/patch; under
 * tensor parallelism every rank calls it with the same inputs (v may be NULL on ranks
 * other than 0). Allocates nothing. */
int rf_dit_forward(rf_dit *d, int64_t batch, int64_t frames, int64_t height, int64_t width,
                   const float *x, const float *t, const float *context, int64_t ctx_len, float *v,
                   rf_error *err);

#endif
