/* model_folder.h - what a model folder holds: the DiT, the VAE, the text encoder, the
 * tokenizer, and the defaults to render with.
 *
 * An optional model.json names the pieces and the defaults:
 *   {"name": "reel-tiny", "dit": ".", "vae": "vae.safetensors", "t5": "t5.safetensors",
 *    "tokenizer": "tokenizer.model",
 *    "defaults": {"sampler": "unipc", "steps": 50, "shift": 5.0, "guidance": 5.0,
 *                 "width": 832, "height": 480, "frames": 81, "fps": 16,
 *                 "negative": "..."},
 *    "decode_warmup": 8}
 * Paths are relative to the folder. Without model.json the official Wan2.1 release names
 * are tried (config.json + diffusion_pytorch_model*.safetensors, Wan2.1_VAE.safetensors,
 * models_t5_umt5-xxl-enc-bf16.safetensors, google/umt5-xxl/spiece.model) and the
 * release's defaults apply. Every missing piece is named in the error with what to do
 * (e.g. convert the release's .pth files with tools/convert/convert.py). Reads only.
 */
#ifndef RF_MODEL_FOLDER_H
#define RF_MODEL_FOLDER_H

#include "error.h"

#include <limits.h>

#define RF_MODEL_NEGATIVE_MAX 4096

typedef struct rf_model_defaults {
    char sampler[16]; /* "unipc", "euler", "dpm++" */
    int steps;
    double shift, guidance;
    int width, height, frames, fps;
    char negative[RF_MODEL_NEGATIVE_MAX]; /* default negative prompt ("" for none) */
} rf_model_defaults;

typedef struct rf_model_folder {
    char dir[PATH_MAX];
    char name[128];
    char dit[PATH_MAX]; /* a folder (config.json + weights) or a single file */
    char vae[PATH_MAX];
    char t5[PATH_MAX];
    char tokenizer[PATH_MAX];
    rf_model_defaults defaults;
    int decode_warmup; /* latent frames a decode segment runs ahead (-1: unknown) */
} rf_model_folder;

/* Reads dir into *out. Returns 0, or RF_ENOTFOUND / RF_EINVAL naming every missing or
 * malformed piece and what to do about it. */
int rf_model_folder_read(const char *dir, rf_model_folder *out, rf_error *err);

/* Wan2.1's text-to-video defaults (WAN_SPEC.md §4), the negative prompt included. */
void rf_model_defaults_wan21(rf_model_defaults *out);

#endif
