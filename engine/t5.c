/* t5.c - umT5 encoder: load weights from safetensors, run the forward through the op API.
 *
 * Load: find every tensor by its release name, check its shape against the dims read
 * from the embedding and the position table, then copy the weights into one backend
 * buffer (linear weights in their stored dtype, norms and position tables as F32). The
 * token embedding (vocab x dim, a quarter of the model) is not uploaded: the rows of
 * the ids are converted on the host from the mapped file each forward. One arena sized
 * for max_tokens holds every activation. Forward: the sequence of ops in t5.h; nothing
 * here touches activation data except the embedding rows it uploads and the output it
 * downloads. It never allocates after load and never trusts an id it has not checked.
 */
#include "t5.h"

#include "arena.h"
#include "dtype.h"
#include "ops.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_NAME_CAP 96

typedef struct s_block {
    rf_tensor norm1, q, k, v, o, norm2, gate, fc1, fc2, pos;
} s_block;

struct rf_t5 {
    rf_backend *be;
    rf_t5_config cfg;
    char *path;
    rf_safetensors *st;
    const rf_st_tensor *embedding; /* in the mapping */
    rf_buffer *weights;
    s_block *blocks;
    rf_tensor norm;
    rf_arena *arena;
    int64_t max_tokens;
    float *host; /* [max_tokens, dim] embedding rows */
};

static int s_find(rf_t5 *t, const char *name, int ndim, const int64_t *shape,
                  const rf_st_tensor **out, rf_error *err)
{
    int rc = rf_st_expect(t->st, name, ndim, shape, out, err);
    if (rc)
        return rf_error_prefix(err, "t5 encoder %s", t->path);
    if ((*out)->dtype != RF_DTYPE_F32 && (*out)->dtype != RF_DTYPE_BF16 &&
        (*out)->dtype != RF_DTYPE_F16)
        return rf_error_set(err, RF_ESHAPE,
                            "t5 encoder %s: tensor %s is %s; expected F32, BF16 or F16", t->path,
                            name, rf_dtype_name((*out)->dtype));
    return 0;
}

/* A weight to place: its source and whether it must become F32. */
typedef struct s_place {
    const rf_st_tensor *src;
    rf_tensor *dst;
    int to_f32;
} s_place;

static size_t s_place_bytes(const s_place *p)
{
    size_t n = rf_st_numel(p->src);
    return rf_arena_round(n * (p->to_f32 ? sizeof(float) : rf_dtype_size(p->src->dtype)));
}

static int s_upload(rf_t5 *t, s_place *places, size_t np, rf_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < np; i++)
        total += s_place_bytes(&places[i]);
    t->weights = rf_buffer_new(t->be, total, err);
    if (!t->weights)
        return rf_error_prefix(err, "t5 encoder %s: weights", t->path);
    char *base = t->weights->data;
    size_t off = 0;
    float *tmp = NULL;
    size_t tmp_n = 0;
    for (size_t i = 0; i < np; i++) {
        const rf_st_tensor *s = places[i].src;
        int64_t shape[RF_TENSOR_MAX_DIMS];
        for (int d = 0; d < s->ndim; d++)
            shape[d] = s->shape[d];
        rf_dtype dt = places[i].to_f32 ? RF_DTYPE_F32 : s->dtype;
        rf_tensor_init(places[i].dst, dt, s->ndim, shape, base + off, t->weights);
        int rc;
        if (places[i].to_f32) {
            size_t n = rf_st_numel(s);
            if (n > tmp_n) {
                float *p = realloc(tmp, n * sizeof(float));
                if (!p) {
                    free(tmp);
                    return rf_error_set(err, RF_ENOMEM, "t5 encoder: out of host memory");
                }
                tmp = p;
                tmp_n = n;
            }
            rc = rf_st_read_f32(s, tmp, err);
            if (!rc)
                rc = rf_tensor_upload(t->be, places[i].dst, tmp, n * sizeof(float), err);
        } else {
            rc = rf_tensor_upload(t->be, places[i].dst, s->data, s->nbytes, err);
        }
        if (rc) {
            free(tmp);
            return rf_error_prefix(err, "t5 encoder %s: tensor %s", t->path, s->name);
        }
        off += s_place_bytes(&places[i]);
    }
    free(tmp);
    return 0;
}

static size_t s_tensor_bytes(rf_dtype dt, int64_t a, int64_t b)
{
    int64_t shape[2] = {a, b};
    return rf_arena_tensor_bytes(dt, 2, shape);
}

static size_t s_linear_scratch(rf_t5 *t, int64_t rows, int64_t in, const rf_tensor *w)
{
    rf_tensor x;
    int64_t shape[2] = {rows, in};
    rf_tensor_init(&x, RF_DTYPE_F32, 2, shape, NULL, NULL);
    return rf_arena_round(rf_op_linear_scratch(t->be, &x, w));
}

static int s_make_arena(rf_t5 *t, rf_error *err)
{
    const rf_t5_config *c = &t->cfg;
    const int64_t T = t->max_tokens;
    size_t bytes = 0;
    bytes += 3 * s_tensor_bytes(RF_DTYPE_F32, T, c->dim);       /* x, h, o */
    bytes += 4 * s_tensor_bytes(RF_DTYPE_F32, T, c->dim_attn);  /* q, k, v, a */
    bytes += 2 * s_tensor_bytes(RF_DTYPE_F32, T, c->dim_ffn);   /* gate, fc1 */
    bytes += s_tensor_bytes(RF_DTYPE_F32, T, 1);                /* sumsq */
    bytes += s_tensor_bytes(RF_DTYPE_U8, T, 1);                 /* mask */
    bytes += s_tensor_bytes(RF_DTYPE_F32, c->heads, 2 * T - 1); /* relative bias band */
    size_t lin = 0, s;
    const s_block *b = &t->blocks[0];
    if ((s = s_linear_scratch(t, T, c->dim, &b->q)) > lin)
        lin = s;
    if ((s = s_linear_scratch(t, T, c->dim_attn, &b->o)) > lin)
        lin = s;
    if ((s = s_linear_scratch(t, T, c->dim, &b->gate)) > lin)
        lin = s;
    if ((s = s_linear_scratch(t, T, c->dim_ffn, &b->fc2)) > lin)
        lin = s;
    size_t att = rf_arena_round(rf_op_attention_relbias_scratch(t->be, c->head_dim));
    bytes += lin > att ? lin : att;
    bytes += 4 * RF_ARENA_ALIGN;
    t->arena = rf_arena_new(t->be, bytes, err);
    return t->arena ? 0 : rf_error_prefix(err, "t5 encoder: scratch for %lld tokens", (long long)T);
}

void rf_t5_destroy(rf_t5 **self)
{
    if (!self || !*self)
        return;
    rf_t5 *t = *self;
    rf_arena_destroy(&t->arena);
    rf_buffer_destroy(&t->weights);
    rf_st_destroy(&t->st);
    free(t->blocks);
    free(t->host);
    free(t->path);
    free(t);
    *self = NULL;
}

const rf_t5_config *rf_t5_get_config(const rf_t5 *self)
{
    return &self->cfg;
}

size_t rf_t5_backend_bytes(const rf_t5 *self)
{
    return self->weights->size + rf_arena_capacity(self->arena);
}

static int s_load(rf_t5 *t, rf_error *err)
{
    rf_t5_config *c = &t->cfg;
    const rf_st_tensor *emb, *pos0;
    int64_t any2[2] = {-1, -1};
    int rc;
    if ((rc = s_find(t, "token_embedding.weight", 2, any2, &emb, err)))
        return rc;
    t->embedding = emb;
    c->vocab = emb->shape[0];
    c->dim = emb->shape[1];
    /* per-layer position tables (umT5); a shared top-level table (T5 v1.1) also works */
    int shared = rf_st_find(t->st, "blocks.0.pos_embedding.embedding.weight") == NULL &&
                 rf_st_find(t->st, "pos_embedding.embedding.weight") != NULL;
    if ((rc = s_find(t,
                     shared ? "pos_embedding.embedding.weight"
                            : "blocks.0.pos_embedding.embedding.weight",
                     2, any2, &pos0, err)))
        return rc;
    c->num_buckets = pos0->shape[0];
    c->heads = pos0->shape[1];
    c->max_distance = 128;
    c->eps = 1e-6f;
    if (c->num_buckets < 4 || c->heads < 1 || c->dim < 1 || c->vocab < 1)
        return rf_error_set(err, RF_ESHAPE,
                            "t5 encoder %s: position table is [%lld,%lld]; expected [buckets >= "
                            "4, heads]",
                            t->path, (long long)c->num_buckets, (long long)c->heads);
    const rf_st_tensor *q0;
    char name[S_NAME_CAP];
    int64_t qshape[2] = {-1, c->dim};
    if ((rc = s_find(t, "blocks.0.attn.q.weight", 2, qshape, &q0, err)))
        return rc;
    c->dim_attn = q0->shape[0];
    if (c->dim_attn % c->heads != 0)
        return rf_error_set(err, RF_ESHAPE,
                            "t5 encoder %s: attention width %lld is not a multiple of %lld heads "
                            "(from the position table)",
                            t->path, (long long)c->dim_attn, (long long)c->heads);
    c->head_dim = c->dim_attn / c->heads;
    const rf_st_tensor *g0;
    int64_t gshape[2] = {-1, c->dim};
    if ((rc = s_find(t, "blocks.0.ffn.gate.0.weight", 2, gshape, &g0, err)))
        return rc;
    c->dim_ffn = g0->shape[0];
    for (c->layers = 0;; c->layers++) {
        snprintf(name, sizeof(name), "blocks.%lld.norm1.weight", (long long)c->layers);
        if (!rf_st_find(t->st, name))
            break;
    }
    if (c->layers == 0)
        return rf_error_set(err, RF_ENOTFOUND,
                            "t5 encoder %s: no blocks.0.norm1.weight; is this the umT5 encoder?",
                            t->path);
    t->blocks = calloc((size_t)c->layers, sizeof(*t->blocks));
    size_t np = (size_t)c->layers * 10 + 1;
    s_place *places = calloc(np, sizeof(*places));
    if (!t->blocks || !places) {
        free(places);
        return rf_error_set(err, RF_ENOMEM, "t5 encoder: out of memory");
    }
    size_t n = 0;
    for (int64_t i = 0; i < c->layers && !rc; i++) {
        s_block *b = &t->blocks[i];
        struct {
            const char *suffix;
            int64_t rows, cols;
            rf_tensor *dst;
            int to_f32;
        } w[] = {
            {"norm1.weight", c->dim, 0, &b->norm1, 1},
            {"attn.q.weight", c->dim_attn, c->dim, &b->q, 0},
            {"attn.k.weight", c->dim_attn, c->dim, &b->k, 0},
            {"attn.v.weight", c->dim_attn, c->dim, &b->v, 0},
            {"attn.o.weight", c->dim, c->dim_attn, &b->o, 0},
            {"norm2.weight", c->dim, 0, &b->norm2, 1},
            {"ffn.gate.0.weight", c->dim_ffn, c->dim, &b->gate, 0},
            {"ffn.fc1.weight", c->dim_ffn, c->dim, &b->fc1, 0},
            {"ffn.fc2.weight", c->dim, c->dim_ffn, &b->fc2, 0},
            {"pos_embedding.embedding.weight", c->num_buckets, c->heads, &b->pos, 1},
        };
        for (size_t j = 0; j < sizeof(w) / sizeof(w[0]) && !rc; j++) {
            int64_t shape[2] = {w[j].rows, w[j].cols};
            const rf_st_tensor *src;
            if (j == 9 && shared) {
                if (i > 0) {
                    b->pos = t->blocks[0].pos; /* filled in after the upload */
                    continue;
                }
                snprintf(name, sizeof(name), "pos_embedding.embedding.weight");
            } else {
                snprintf(name, sizeof(name), "blocks.%lld.%s", (long long)i, w[j].suffix);
            }
            rc = s_find(t, name, w[j].cols ? 2 : 1, shape, &src, err);
            if (!rc)
                places[n++] = (s_place){src, w[j].dst, w[j].to_f32};
        }
    }
    const rf_st_tensor *norm;
    int64_t nshape[1] = {c->dim};
    if (!rc && !(rc = s_find(t, "norm.weight", 1, nshape, &norm, err)))
        places[n++] = (s_place){norm, &t->norm, 1};
    if (!rc)
        rc = s_upload(t, places, n, err);
    free(places);
    if (rc)
        return rc;
    for (int64_t i = 1; shared && i < c->layers; i++)
        t->blocks[i].pos = t->blocks[0].pos;
    t->host = malloc((size_t)t->max_tokens * (size_t)c->dim * sizeof(float));
    if (!t->host)
        return rf_error_set(err, RF_ENOMEM, "t5 encoder: out of host memory for %lld tokens",
                            (long long)t->max_tokens);
    return s_make_arena(t, err);
}

rf_t5 *rf_t5_load(rf_backend *be, const char *path, int64_t max_tokens, rf_error *err)
{
    if (max_tokens < 1) {
        rf_error_set(err, RF_EINVAL, "t5 encoder: max_tokens must be >= 1, got %lld",
                     (long long)max_tokens);
        return NULL;
    }
    rf_t5 *t = calloc(1, sizeof(*t));
    if (!t || !(t->path = strdup(path))) {
        free(t);
        rf_error_set(err, RF_ENOMEM, "t5 encoder: out of memory");
        return NULL;
    }
    t->be = be;
    t->max_tokens = max_tokens;
    t->st = rf_st_open(path, err);
    if (!t->st || s_load(t, err)) {
        rf_t5_destroy(&t);
        return NULL;
    }
    return t;
}

/* Takes a [B, L, C] F32 tensor from the arena. */
static int s_act(rf_t5 *t, rf_tensor *out, int64_t b, int64_t l, int64_t c, const char *what,
                 rf_error *err)
{
    int64_t shape[3] = {b, l, c};
    return rf_arena_tensor(t->arena, out, RF_DTYPE_F32, 3, shape, what, err);
}

static int s_forward(rf_t5 *t, const int32_t *ids, const uint8_t *mask, int64_t B, int64_t L,
                     float *out, rf_error *err)
{
    const rf_t5_config *c = &t->cfg;
    rf_backend *be = t->be;
    const int64_t T = B * L;
    rf_tensor x, h, o, q, k, v, a, g, f, sumsq, rel, m;
    int rc;
    if ((rc = s_act(t, &x, B, L, c->dim, "t5 x", err)) ||
        (rc = s_act(t, &h, B, L, c->dim, "t5 h", err)) ||
        (rc = s_act(t, &o, B, L, c->dim, "t5 o", err)) ||
        (rc = s_act(t, &q, B, L, c->dim_attn, "t5 q", err)) ||
        (rc = s_act(t, &k, B, L, c->dim_attn, "t5 k", err)) ||
        (rc = s_act(t, &v, B, L, c->dim_attn, "t5 v", err)) ||
        (rc = s_act(t, &a, B, L, c->dim_attn, "t5 attn", err)) ||
        (rc = s_act(t, &g, B, L, c->dim_ffn, "t5 gate", err)) ||
        (rc = s_act(t, &f, B, L, c->dim_ffn, "t5 fc1", err)))
        return rc;
    int64_t srows[1] = {T}, rshape[2] = {c->heads, 2 * L - 1}, mshape[2] = {B, L};
    if ((rc = rf_arena_tensor(t->arena, &sumsq, RF_DTYPE_F32, 1, srows, "t5 sumsq", err)) ||
        (rc = rf_arena_tensor(t->arena, &rel, RF_DTYPE_F32, 2, rshape, "t5 rel bias", err)) ||
        (mask && (rc = rf_arena_tensor(t->arena, &m, RF_DTYPE_U8, 2, mshape, "t5 mask", err))))
        return rc;
    /* embedding rows, converted on the host */
    const size_t row = (size_t)c->dim * rf_dtype_size(t->embedding->dtype);
    const char *table = t->embedding->data;
    for (int64_t i = 0; i < T; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab)
            return rf_error_set(err, RF_EINVAL,
                                "t5 encoder: token id %d (position %lld) is outside the "
                                "vocabulary of %lld; was the prompt tokenized with this "
                                "model's tokenizer?",
                                (int)ids[i], (long long)i, (long long)c->vocab);
        rf_convert_to_f32(t->host + i * c->dim, table + (size_t)ids[i] * row, t->embedding->dtype,
                          (size_t)c->dim);
    }
    if ((rc = rf_tensor_upload(be, &x, t->host, (size_t)T * (size_t)c->dim * sizeof(float), err)) ||
        (mask && (rc = rf_tensor_upload(be, &m, mask, (size_t)T, err))))
        return rc;
    int64_t s4[4] = {B, L, c->heads, c->head_dim};
    rf_tensor q4 = rf_tensor_view(&q, 4, s4), k4 = rf_tensor_view(&k, 4, s4),
              v4 = rf_tensor_view(&v, 4, s4), a4 = rf_tensor_view(&a, 4, s4);
    for (int64_t i = 0; i < c->layers; i++) {
        const s_block *b = &t->blocks[i];
        if ((rc = rf_op_rms_norm(be, &h, &x, &sumsq, &b->norm1, c->eps, err)) ||
            (rc = rf_op_linear(be, &q, &h, &b->q, NULL, t->arena, err)) ||
            (rc = rf_op_linear(be, &k, &h, &b->k, NULL, t->arena, err)) ||
            (rc = rf_op_linear(be, &v, &h, &b->v, NULL, t->arena, err)) ||
            (rc = rf_op_rel_pos_bias(be, &rel, &b->pos, L, 1, c->max_distance, err)) ||
            (rc = rf_op_attention_relbias(be, &a4, &q4, &k4, &v4, mask ? &m : NULL, &rel, 1.0f,
                                          t->arena, err)) ||
            (rc = rf_op_linear(be, &o, &a, &b->o, NULL, t->arena, err)) ||
            (rc = rf_op_binary(be, &x, &x, &o, RF_BINARY_ADD, err)) ||
            (rc = rf_op_rms_norm(be, &h, &x, &sumsq, &b->norm2, c->eps, err)) ||
            (rc = rf_op_linear(be, &g, &h, &b->gate, NULL, t->arena, err)) ||
            (rc = rf_op_unary(be, &g, &g, RF_UNARY_GELU_TANH, err)) ||
            (rc = rf_op_linear(be, &f, &h, &b->fc1, NULL, t->arena, err)) ||
            (rc = rf_op_binary(be, &f, &f, &g, RF_BINARY_MUL, err)) ||
            (rc = rf_op_linear(be, &o, &f, &b->fc2, NULL, t->arena, err)) ||
            (rc = rf_op_binary(be, &x, &x, &o, RF_BINARY_ADD, err)))
            return rf_error_prefix(err, "t5 encoder block %lld", (long long)i);
    }
    if ((rc = rf_op_rms_norm(be, &x, &x, &sumsq, &t->norm, c->eps, err)))
        return rc;
    return rf_tensor_download(be, &x, out, (size_t)T * (size_t)c->dim * sizeof(float), err);
}

int rf_t5_encode(rf_t5 *self, const int32_t *ids, const uint8_t *mask, int64_t batch, int64_t len,
                 float *out, rf_error *err)
{
    if (batch < 1 || len < 1)
        return rf_error_set(err, RF_EINVAL, "t5 encoder: nothing to encode (batch %lld, len %lld)",
                            (long long)batch, (long long)len);
    if (len > self->max_tokens / batch)
        return rf_error_set(err, RF_EINVAL,
                            "t5 encoder: %lld x %lld tokens exceed the %lld it was loaded for",
                            (long long)batch, (long long)len, (long long)self->max_tokens);
    size_t mark = rf_arena_mark(self->arena);
    int rc = s_forward(self, ids, mask, batch, len, out, err);
    rf_arena_reset(self->arena, mark);
    return rc;
}
