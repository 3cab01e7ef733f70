/* test_t5.c - engine/t5 (umT5 encoder) against the PyTorch reference's golden outputs.
 *
 * tests/fixtures/t5 (tools/reference/make_t5_fixtures.py): a tiny random umT5 in F32
 * and BF16, a short sequence, a 150-token one (every bucket region), a padded batch of
 * two with a key mask, and the bucket matrix. NMSE <= 1e-6 on every real row. Also:
 * dims read from the weights, no backend allocation during a forward, and hostile
 * inputs (ids outside the vocabulary, too many tokens, a missing or misshapen tensor).
 */
#include "rf_test.h"

#include "backend.h"
#include "cpu/cpu.h"
#include "ops.h"
#include "safetensors.h"
#include "t5.h"

#include <stdio.h>
#include <stdlib.h>

static rf_safetensors *s_io(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/t5/io.safetensors", rf_test_fixtures());
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    return st;
}

static rf_t5 *s_model(rf_backend *be, const char *file, int64_t max_tokens)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/t5/%s", rf_test_fixtures(), file);
    rf_error err = {0};
    rf_t5 *t = rf_t5_load(be, path, max_tokens, &err);
    RF_CHECK_MSG(t, "%s", err.msg);
    return t;
}

/* ids (I64 in the fixture) as int32, malloc'd. */
static int32_t *s_ids(rf_safetensors *io, const char *name, int64_t *b, int64_t *l)
{
    const rf_st_tensor *t = rf_st_find(io, name);
    RF_CHECK_MSG(t && t->dtype == RF_DTYPE_I64 && t->ndim == 2, "%s", name);
    *b = t->shape[0];
    *l = t->shape[1];
    size_t n = rf_st_numel(t);
    int32_t *ids = malloc(n * sizeof(int32_t));
    const int64_t *src = t->data;
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)src[i];
    return ids;
}

static float *s_f32(rf_safetensors *io, const char *name, size_t *n)
{
    const rf_st_tensor *t = rf_st_find(io, name);
    RF_CHECK_MSG(t, "%s missing from the fixture", name);
    *n = rf_st_numel(t);
    float *p = malloc(*n * sizeof(float));
    rf_error err = {0};
    RF_CHECK_MSG(rf_st_read_f32(t, p, &err) == 0, "%s", err.msg);
    return p;
}

/* Encodes ids_name with the model and compares with out_name (rows [0, real) of each
 * sequence, real from lens or all). Returns the worst NMSE. */
static double s_case(rf_t5 *t5, rf_safetensors *io, const char *ids_name, const char *mask_name,
                     const char *out_name)
{
    int64_t B, L;
    int32_t *ids = s_ids(io, ids_name, &B, &L);
    uint8_t *mask = NULL;
    int64_t lens[8];
    RF_CHECK(B <= 8);
    for (int64_t b = 0; b < B; b++)
        lens[b] = L;
    if (mask_name) {
        int64_t mb, ml;
        int32_t *m = s_ids(io, mask_name, &mb, &ml);
        RF_CHECK(mb == B && ml == L);
        mask = malloc((size_t)(B * L));
        for (int64_t b = 0; b < B; b++) {
            lens[b] = 0;
            for (int64_t j = 0; j < L; j++) {
                mask[b * L + j] = (uint8_t)(m[b * L + j] != 0);
                lens[b] += m[b * L + j] != 0;
            }
        }
        free(m);
    }
    size_t n;
    float *want = s_f32(io, out_name, &n);
    const int64_t dim = rf_t5_get_config(t5)->dim;
    RF_CHECK_EQ_INT(n, B * L * dim);
    float *got = malloc(n * sizeof(float));
    rf_error err = {0};
    RF_CHECK_MSG(rf_t5_encode(t5, ids, mask, B, L, got, &err) == 0, "%s", err.msg);
    double worst = 0;
    for (int64_t b = 0; b < B; b++) {
        size_t off = (size_t)(b * L * dim), cnt = (size_t)(lens[b] * dim);
        double e = rf_test_nmse(got + off, want + off, cnt);
        fprintf(stderr, "# %s[%lld] (%lld tokens): nmse %.3g\n", out_name, (long long)b,
                (long long)lens[b], e);
        if (e > worst)
            worst = e;
    }
    free(ids);
    free(mask);
    free(want);
    free(got);
    return worst;
}

RF_TEST(dims_come_from_the_weights)
{
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(1, &err);
    rf_t5 *t5 = s_model(be, "umt5_tiny.safetensors", 16);
    const rf_t5_config *c = rf_t5_get_config(t5);
    RF_CHECK_EQ_INT(c->vocab, 512);
    RF_CHECK_EQ_INT(c->dim, 64);
    RF_CHECK_EQ_INT(c->heads, 4);
    RF_CHECK_EQ_INT(c->head_dim, 16);
    RF_CHECK_EQ_INT(c->dim_ffn, 128);
    RF_CHECK_EQ_INT(c->layers, 2);
    RF_CHECK_EQ_INT(c->num_buckets, 32);
    RF_CHECK(rf_t5_backend_bytes(t5) > 0);
    rf_t5_destroy(&t5);
    rf_t5_destroy(&t5);
    rf_backend_destroy(&be);
}

RF_TEST(buckets_match_the_reference_matrix)
{
    rf_safetensors *io = s_io();
    const rf_st_tensor *t = rf_st_find(io, "buckets");
    RF_CHECK(t && t->dtype == RF_DTYPE_I32 && t->ndim == 2);
    const int32_t *b = t->data;
    for (int64_t i = 0; i < t->shape[0]; i++)
        for (int64_t j = 0; j < t->shape[1]; j++)
            RF_CHECK_EQ_INT(rf_rel_pos_bucket(j - i, 32, 1, 128), b[i * t->shape[1] + j]);
    rf_st_destroy(&io);
}

RF_TEST(f32_weights_match_pytorch)
{
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(2, &err);
    rf_safetensors *io = s_io();
    rf_t5 *t5 = s_model(be, "umt5_tiny.safetensors", 150);
    uint64_t allocs = rf_kernels_alloc_count();
    RF_CHECK(s_case(t5, io, "ids_short", NULL, "out_short") <= 1e-6);
    RF_CHECK(s_case(t5, io, "ids_long", NULL, "out_long") <= 1e-6);
    RF_CHECK(s_case(t5, io, "ids_batch", "mask_batch", "out_batch") <= 1e-6);
    RF_CHECK_EQ_INT(rf_kernels_alloc_count(), allocs); /* forwards allocate nothing */
    rf_t5_destroy(&t5);
    rf_st_destroy(&io);
    rf_backend_destroy(&be);
}

RF_TEST(bf16_weights_match_pytorch)
{
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(2, &err);
    rf_safetensors *io = s_io();
    rf_t5 *t5 = s_model(be, "umt5_tiny_bf16.safetensors", 150);
    RF_CHECK(s_case(t5, io, "ids_short", NULL, "out_short_bf16") <= 1e-6);
    RF_CHECK(s_case(t5, io, "ids_long", NULL, "out_long_bf16") <= 1e-6);
    RF_CHECK(s_case(t5, io, "ids_batch", "mask_batch", "out_batch_bf16") <= 1e-6);
    rf_t5_destroy(&t5);
    rf_st_destroy(&io);
    rf_backend_destroy(&be);
}

RF_TEST(padding_does_not_change_real_rows)
{
    /* sequence 1 of the batch alone (its 23 real ids) equals its padded rows */
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(2, &err);
    rf_safetensors *io = s_io();
    rf_t5 *t5 = s_model(be, "umt5_tiny.safetensors", 80);
    int64_t B, L;
    int32_t *ids = s_ids(io, "ids_batch", &B, &L);
    float *alone = malloc(sizeof(float) * 23 * 64), *padded = malloc(sizeof(float) * 2 * 40 * 64);
    uint8_t mask[80];
    for (int j = 0; j < 80; j++)
        mask[j] = j < 40 || j - 40 < 23;
    RF_CHECK(rf_t5_encode(t5, ids + 40, NULL, 1, 23, alone, &err) == 0);
    RF_CHECK(rf_t5_encode(t5, ids, mask, 2, 40, padded, &err) == 0);
    RF_CHECK(rf_test_nmse(padded + 40 * 64, alone, 23 * 64) < 1e-10);
    free(ids);
    free(alone);
    free(padded);
    rf_t5_destroy(&t5);
    rf_st_destroy(&io);
    rf_backend_destroy(&be);
}

RF_TEST(hostile_ids_and_sizes)
{
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(1, &err);
    rf_t5 *t5 = s_model(be, "umt5_tiny.safetensors", 8);
    float out[8 * 64];
    int32_t ids[9] = {1, 2, 3, 512, 5, 6, 7, 8, 9};
    RF_CHECK_EQ_INT(rf_t5_encode(t5, ids, NULL, 1, 5, out, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "token id 512");
    ids[3] = -1;
    RF_CHECK_EQ_INT(rf_t5_encode(t5, ids, NULL, 1, 5, out, &err), RF_EINVAL);
    ids[3] = 4;
    RF_CHECK_EQ_INT(rf_t5_encode(t5, ids, NULL, 1, 9, out, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "exceed");
    RF_CHECK_EQ_INT(rf_t5_encode(t5, ids, NULL, 3, 3, out, &err), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_t5_encode(t5, ids, NULL, 0, 3, out, &err), RF_EINVAL);
    RF_CHECK(rf_t5_encode(t5, ids, NULL, 2, 4, out, &err) == 0);
    rf_t5_destroy(&t5);
    rf_backend_destroy(&be);
}

/* Writes a copy of the tiny model with tensor `drop` left out (or reshaped when
 * reshape is set) and returns rf_t5_load's error. */
static int s_load_edited(rf_backend *be, const char *drop, int reshape, rf_error *err)
{
    char src[1024], dst[1024];
    snprintf(src, sizeof(src), "%s/t5/umt5_tiny.safetensors", rf_test_fixtures());
    rf_test_path(dst, sizeof(dst), "edited.safetensors");
    rf_safetensors *st = rf_st_open(src, err);
    RF_CHECK(st);
    rf_st_writer *w = rf_st_writer_new();
    for (size_t i = 0; i < rf_st_count(st); i++) {
        const rf_st_tensor *t = rf_st_at(st, i);
        int64_t shape[RF_ST_MAX_DIMS];
        int ndim = t->ndim;
        for (int d = 0; d < ndim; d++)
            shape[d] = t->shape[d];
        if (!strcmp(t->name, drop)) {
            if (!reshape)
                continue;
            shape[0] = 1; /* same bytes, wrong shape: [1, n] */
            shape[1] = (int64_t)rf_st_numel(t);
            ndim = 2;
        }
        RF_CHECK(rf_st_writer_add(w, t->name, t->dtype, ndim, shape, t->data, err) == 0);
    }
    RF_CHECK(rf_st_writer_write(w, dst, err) == 0);
    rf_st_writer_destroy(&w);
    rf_st_destroy(&st);
    rf_t5 *t5 = rf_t5_load(be, dst, 8, err);
    int rc = t5 ? 0 : err->code;
    rf_t5_destroy(&t5);
    return rc;
}

RF_TEST(missing_or_misshapen_tensors_are_named)
{
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(1, &err);
    RF_CHECK(s_load_edited(be, "blocks.1.ffn.fc2.weight", 0, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "blocks.1.ffn.fc2.weight");
    RF_CHECK(s_load_edited(be, "blocks.0.attn.o.weight", 1, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "blocks.0.attn.o.weight");
    RF_CHECK(s_load_edited(be, "norm.weight", 0, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "norm.weight");
    RF_CHECK(s_load_edited(be, "token_embedding.weight", 0, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "token_embedding.weight");
    char missing[1024];
    rf_test_path(missing, sizeof(missing), "nope.safetensors");
    RF_CHECK(rf_t5_load(be, missing, 8, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "nope.safetensors");
    RF_CHECK(rf_t5_load(be, missing, 0, &err) == NULL);
    rf_backend_destroy(&be);
}
