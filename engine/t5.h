/* t5.h - the umT5 text encoder (Wan2.1's text encoder), on any backend.
 *
 * Loads an encoder from safetensors with the release's names (token_embedding.weight,
 * blocks.i.{norm1,attn.{q,k,v,o},norm2,ffn.{gate.0,fc1,fc2},pos_embedding.embedding}
 * .weight, norm.weight) and runs it in fp32: x = embed(ids); per block
 * x += Attn(RMS(x)), x += FFN(RMS(x)); then RMS. Attention has no 1/sqrt(d) scaling,
 * adds the block's relative position bias (32 buckets, max distance 128, bidirectional)
 * and ignores padded keys; FFN = fc2(fc1(x) * GELU_tanh(gate(x))). Every size comes from
 * the weights: dim and vocab from the embedding, heads from the position table
 * [buckets, heads], layers from the block count. Linear weights stay in their stored
 * dtype (F32, BF16 or F16; activations are F32); the embedding stays in the mapped file
 * and only the rows of the given ids are read. All scratch is sized at load for
 * max_tokens; a forward allocates nothing.
 */
#ifndef RF_T5_H
#define RF_T5_H

#include "backend.h"
#include "error.h"

#include <stdint.h>

typedef struct rf_t5_config {
    int64_t vocab, dim, dim_attn, dim_ffn, heads, head_dim, layers, num_buckets;
    int64_t max_distance; /* 128 */
    float eps;            /* 1e-6 */
} rf_t5_config;

typedef struct rf_t5 rf_t5;

/* Loads the encoder at path (a .safetensors file, sharded index or directory, see
 * safetensors.h) onto backend be (borrowed; must outlive the encoder), with scratch for
 * up to max_tokens tokens per forward (batch x length; Wan uses 512). Errors name the
 * file and the missing or misshapen tensor. */
rf_t5 *rf_t5_load(rf_backend *be, const char *path, int64_t max_tokens, rf_error *err);
/* Frees; NULLs *self; safe on NULL and twice. */
void rf_t5_destroy(rf_t5 **self);
const rf_t5_config *rf_t5_get_config(const rf_t5 *self);
/* Bytes of backend memory the weights and the scratch hold. */
size_t rf_t5_backend_bytes(const rf_t5 *self);

/* Encodes batch sequences of len ids each (ids [batch, len], row-major): writes
 * out [batch, len, dim] floats (host memory). mask [batch, len] (1 real, 0 padding) or
 * NULL for all real; padded keys are ignored, padded rows of out are computed but
 * meaningless. batch * len <= max_tokens. Errors: an id outside the vocabulary
 * (RF_EINVAL naming it), too many tokens, backend errors. */
int rf_t5_encode(rf_t5 *self, const int32_t *ids, const uint8_t *mask, int64_t batch, int64_t len,
                 float *out, rf_error *err);

#endif
