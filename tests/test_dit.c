/* test_dit.c - the Wan DiT forward against the PyTorch golden fixtures, its loader's
 * errors, its memory discipline, and tensor parallelism.
 *
 * Fixtures: tests/fixtures/dit (tools/reference/make_dit_fixtures.py). Parity is NMSE
 * of v against the reference's v. The allocation test interposes malloc & co. in this
 * binary (calling glibc's __libc_* entry points) and counts calls during a forward. TP
 * tests build a random 12-head model in the temp dir so degrees 2, 3, 4, 6 all divide.
 */
#include "rf_test.h"

#include "backend.h"
#include "cpu/cpu.h"
#include "dit/dit.h"
#include "dit/dit_tp.h"
#include "ops.h"
#include "safetensors.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- allocation counter (interposes the C allocator for this binary) ---- */
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void *__libc_memalign(size_t, size_t);
void __libc_free(void *);

static _Atomic int s_counting;
static _Atomic long s_allocs;

static void s_count(void)
{
    if (atomic_load_explicit(&s_counting, memory_order_relaxed))
        atomic_fetch_add(&s_allocs, 1);
}

void *malloc(size_t n)
{
    s_count();
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    s_count();
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    s_count();
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t al, size_t n)
{
    s_count();
    return __libc_memalign(al, n);
}

void *memalign(size_t al, size_t n)
{
    s_count();
    return __libc_memalign(al, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
    s_count();
    void *p = __libc_memalign(al, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void free(void *p)
{
    __libc_free(p);
}

/* ---- fixture input ---- */
typedef struct {
    float *x, *t, *ctx, *v;
    int64_t b, f, h, w, lc;
    size_t nv;
} s_io;

static void s_io_load(s_io *io, const char *file)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/dit/%s", rf_test_fixtures(), file);
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    const rf_st_tensor *x = rf_st_find(st, "x"), *t = rf_st_find(st, "t");
    const rf_st_tensor *c = rf_st_find(st, "context"), *v = rf_st_find(st, "v");
    RF_CHECK(x && t && c && v && x->ndim == 5 && c->ndim == 3);
    io->b = x->shape[0], io->f = x->shape[2], io->h = x->shape[3], io->w = x->shape[4];
    io->lc = c->shape[1];
    io->nv = rf_st_numel(v);
    io->x = malloc(rf_st_numel(x) * 4);
    io->t = malloc(rf_st_numel(t) * 4);
    io->ctx = malloc(rf_st_numel(c) * 4);
    io->v = malloc(io->nv * 4);
    RF_CHECK(rf_st_read_f32(x, io->x, &err) == 0 && rf_st_read_f32(t, io->t, &err) == 0 &&
             rf_st_read_f32(c, io->ctx, &err) == 0 && rf_st_read_f32(v, io->v, &err) == 0);
    rf_st_destroy(&st);
}

static void s_io_free(s_io *io)
{
    free(io->x), free(io->t), free(io->ctx), free(io->v);
}

static int64_t s_tokens(const rf_dit_config *c, int64_t f, int64_t h, int64_t w)
{
    return (f / c->patch[0]) * (h / c->patch[1]) * (w / c->patch[2]);
}

/* Runs model dir (tp ranks, threads) on io and returns the NMSE against io's v. */
static double s_run_nmse(const char *dir, int tp, int threads, const s_io *io, float *out)
{
    rf_error err = {0};
    rf_dit_tp *g = rf_dit_tp_load(dir, tp, threads, &err);
    RF_CHECK_MSG(g, "%s", err.msg);
    const rf_dit_config *c = rf_dit_get_config(rf_dit_tp_rank(g, 0));
    RF_CHECK(rf_dit_tp_reserve(g, io->b, s_tokens(c, io->f, io->h, io->w), &err) == 0);
    int rc =
        rf_dit_tp_forward(g, io->b, io->f, io->h, io->w, io->x, io->t, io->ctx, io->lc, out, &err);
    RF_CHECK_MSG(rc == 0, "%s", err.msg);
    rf_dit_tp_destroy(&g);
    return rf_test_nmse(out, io->v, io->nv);
}

static const char *s_fix(const char *sub, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/dit/%s", rf_test_fixtures(), sub);
    return buf;
}

RF_TEST(parity_official_f32_weights)
{
    s_io io;
    s_io_load(&io, "io.safetensors");
    float *out = malloc(io.nv * 4);
    char dir[1024];
    double nmse = s_run_nmse(s_fix("official", dir, sizeof(dir)), 1, 2, &io, out);
    /* Bound of issue 3: 1e-6. Measured about 6e-12; 1e-9 catches any real regression. */
    RF_CHECK_MSG(nmse <= 1e-9, "official f32: nmse %g", nmse);
    free(out);
    s_io_free(&io);
}

RF_TEST(parity_bf16_weights_sharded_repack_diffusers)
{
    s_io io;
    s_io_load(&io, "io_small.safetensors");
    float *out = malloc(io.nv * 4);
    const char *forms[] = {"small_sharded", "small_repack", "small_diffusers"};
    for (int i = 0; i < 3; i++) {
        char dir[1024];
        double nmse = s_run_nmse(s_fix(forms[i], dir, sizeof(dir)), 1, 2, &io, out);
        /* The reference ran in f32 on the bf16-rounded weights: f32 rounding only. */
        RF_CHECK_MSG(nmse <= 1e-9, "%s (bf16 weights): nmse %g", forms[i], nmse);
    }
    free(out);
    s_io_free(&io);
}

RF_TEST(forms_are_detected_and_dims_inferred)
{
    char dir[1024];
    rf_dit_config c;
    rf_error err = {0};
    RF_CHECK(rf_dit_read_config(s_fix("small_repack", dir, sizeof(dir)), &c, &err) == 0);
    RF_CHECK_EQ_INT(c.form, RF_DIT_FORM_REPACK);
    RF_CHECK_EQ_INT(c.dim, 128);
    RF_CHECK_EQ_INT(c.num_heads, 1);
    RF_CHECK_EQ_INT(c.num_layers, 2);
    RF_CHECK_EQ_INT(c.ffn_dim, 256);
    RF_CHECK_EQ_INT(c.text_len, 512);
    RF_CHECK(rf_dit_read_config(s_fix("small_diffusers", dir, sizeof(dir)), &c, &err) == 0);
    RF_CHECK_EQ_INT(c.form, RF_DIT_FORM_DIFFUSERS);
    RF_CHECK_EQ_INT(c.text_len, 512);
    RF_CHECK(rf_dit_read_config(s_fix("official", dir, sizeof(dir)), &c, &err) == 0);
    RF_CHECK_EQ_INT(c.form, RF_DIT_FORM_OFFICIAL);
    RF_CHECK_EQ_INT(c.num_heads, 2);
    RF_CHECK_EQ_INT(c.head_dim, 128);
}

/* ---- damaged copies of the official fixture ---- */

typedef struct {
    const char *skip;    /* tensor left out */
    const char *reshape; /* tensor written with its first dim halved */
    const char *retype;  /* tensor written with dtype I32 (same bytes) */
    const char *config;  /* config.json text, or NULL to copy the original */
} s_damage;

static void s_write_damaged(const char *dst, const s_damage *dm)
{
    char src[1024], path[1200];
    s_fix("official", src, sizeof(src));
    mkdir(dst, 0700);
    rf_error err = {0};
    snprintf(path, sizeof(path), "%s/diffusion_pytorch_model.safetensors", src);
    rf_safetensors *st = rf_st_open(path, &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    rf_st_writer *w = rf_st_writer_new();
    for (size_t i = 0; i < rf_st_count(st); i++) {
        const rf_st_tensor *t = rf_st_at(st, i);
        if (dm->skip && !strcmp(t->name, dm->skip))
            continue;
        int64_t shape[RF_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof(shape));
        if (dm->reshape && !strcmp(t->name, dm->reshape))
            shape[0] /= 2; /* the data is longer than needed; the writer copies what fits */
        rf_dtype dt = dm->retype && !strcmp(t->name, dm->retype) ? RF_DTYPE_I32 : t->dtype;
        RF_CHECK(rf_st_writer_add(w, t->name, dt, t->ndim, shape, t->data, &err) == 0);
    }
    snprintf(path, sizeof(path), "%s/diffusion_pytorch_model.safetensors", dst);
    RF_CHECK_MSG(rf_st_writer_write(w, path, &err) == 0, "%s", err.msg);
    rf_st_writer_destroy(&w);
    rf_st_destroy(&st);
    snprintf(path, sizeof(path), "%s/config.json", dst);
    if (dm->config) {
        RF_CHECK(rf_test_write_file(path, dm->config, strlen(dm->config)) == 0);
    } else {
        char cpath[1200];
        snprintf(cpath, sizeof(cpath), "%s/config.json", src);
        FILE *f = fopen(cpath, "rb");
        char buf[4096];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        RF_CHECK(rf_test_write_file(path, buf, n) == 0);
    }
}

static const char *s_load_error(const char *name, const s_damage *dm, rf_error *err)
{
    static char dir[1024];
    rf_test_path(dir, sizeof(dir), name);
    s_write_damaged(dir, dm);
    rf_backend *be = rf_backend_cpu_new(1, err);
    rf_dit *d = rf_dit_load(dir, be, NULL, err);
    RF_CHECK(d == NULL);
    rf_backend_destroy(&be);
    return err->msg;
}

#define CFG(dim, heads, layers)                                                           \
    "{\"dim\": " #dim ", \"ffn_dim\": 512, \"freq_dim\": 256, \"num_heads\": " #heads     \
    ", \"num_layers\": " #layers ", \"in_dim\": 16, \"out_dim\": 16, \"text_len\": 512, " \
    "\"eps\": 1e-06, \"model_type\": \"t2v\"}"

RF_TEST(bad_weights_name_the_tensor_and_both_shapes)
{
    rf_error err = {0};
    s_damage missing = {"blocks.1.cross_attn.norm_k.weight", NULL, NULL, NULL};
    s_load_error("missing", &missing, &err);
    RF_CHECK(err.code == RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "blocks.1.cross_attn.norm_k.weight");

    s_damage shape = {NULL, "blocks.0.ffn.0.weight", NULL, NULL};
    s_load_error("shape", &shape, &err);
    RF_CHECK_EQ_INT(err.code, RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg, "blocks.0.ffn.0.weight");
    RF_CHECK_CONTAINS(err.msg, "512");
    RF_CHECK_CONTAINS(err.msg, "256");

    /* config contradicting the weights: wrong dim, too few and too many layers */
    s_damage dtype = {NULL, NULL, "blocks.1.self_attn.o.weight", NULL};
    s_load_error("dtype", &dtype, &err);
    RF_CHECK_EQ_INT(err.code, RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg, "blocks.1.self_attn.o.weight");
    RF_CHECK_CONTAINS(err.msg, "I32");

    s_damage dim = {NULL, NULL, NULL, CFG(384, 3, 2)};
    s_load_error("cfgdim", &dim, &err);
    RF_CHECK_EQ_INT(err.code, RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg, "patch_embedding.weight");
    RF_CHECK_CONTAINS(err.msg, "384");
    s_damage fewer = {NULL, NULL, NULL, CFG(256, 2, 1)};
    s_load_error("cfgfewer", &fewer, &err);
    RF_CHECK_CONTAINS(err.msg, "blocks.1.modulation");
    s_damage more = {NULL, NULL, NULL, CFG(256, 2, 3)};
    s_load_error("cfgmore", &more, &err);
    RF_CHECK_EQ_INT(err.code, RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "blocks.2.");
    s_damage i2v = {NULL, NULL, NULL,
                    "{\"dim\": 256, \"ffn_dim\": 512, \"num_heads\": 2, \"num_layers\": 2, "
                    "\"model_type\": \"i2v\"}"};
    s_load_error("i2v", &i2v, &err);
    RF_CHECK_EQ_INT(err.code, RF_EUNSUPPORTED);
    s_damage junk = {NULL, NULL, NULL, "{\"dim\": 256,"};
    s_load_error("junk", &junk, &err);
    RF_CHECK_CONTAINS(err.msg, "config.json");
}

RF_TEST(a_forward_allocates_nothing)
{
    s_io io;
    s_io_load(&io, "io.safetensors");
    float *out = malloc(io.nv * 4);
    char dir[1024];
    rf_error err = {0};
    for (int tp = 1; tp <= 2; tp++) {
        rf_dit_tp *g = rf_dit_tp_load(s_fix("official", dir, sizeof(dir)), tp, 2, &err);
        RF_CHECK_MSG(g, "%s", err.msg);
        const rf_dit_config *c = rf_dit_get_config(rf_dit_tp_rank(g, 0));
        RF_CHECK(rf_dit_tp_reserve(g, io.b, s_tokens(c, io.f, io.h, io.w), &err) == 0);
        /* the first forward may warm up the BLAS library's own buffers */
        RF_CHECK(rf_dit_tp_forward(g, io.b, io.f, io.h, io.w, io.x, io.t, io.ctx, io.lc, out,
                                   &err) == 0);
        uint64_t kb = rf_kernels_alloc_count();
        atomic_store(&s_allocs, 0);
        atomic_store(&s_counting, 1);
        int rc = rf_dit_tp_forward(g, io.b, io.f, io.h, io.w, io.x, io.t, io.ctx, io.lc, out, &err);
        atomic_store(&s_counting, 0);
        RF_CHECK(rc == 0);
        RF_CHECK_MSG(atomic_load(&s_allocs) == 0, "tp %d: %ld allocations during a forward", tp,
                     (long)atomic_load(&s_allocs));
        RF_CHECK_EQ_INT(rf_kernels_alloc_count(), kb);
        RF_CHECK(rf_test_nmse(out, io.v, io.nv) <= 1e-9);
        /* the counter does count: a reserve allocates */
        atomic_store(&s_counting, 1);
        RF_CHECK(rf_dit_tp_reserve(g, io.b, s_tokens(c, io.f, io.h, io.w), &err) == 0);
        atomic_store(&s_counting, 0);
        RF_CHECK(atomic_load(&s_allocs) > 0);
        /* input larger than reserved: an error, not an overflow */
        RF_CHECK_EQ_INT(
            rf_dit_tp_forward(g, io.b + 1, io.f, io.h, io.w, io.x, io.t, io.ctx, io.lc, out, &err),
            RF_EINVAL);
        RF_CHECK_CONTAINS(err.msg, "rf_dit_reserve");
        rf_dit_tp_destroy(&g);
    }
    free(out);
    s_io_free(&io);
}

RF_TEST(attention_memory_bound_at_8192_tokens)
{
    /* SMALL model at 8192 tokens: one 8192^2 F32 score matrix is 256 MiB; the whole
     * arena (every activation plus scratch) must be smaller than that, and run. */
    char dir[1024];
    rf_error err = {0};
    rf_backend *be = rf_backend_cpu_new(2, &err);
    rf_dit *d = rf_dit_load(s_fix("small_repack", dir, sizeof(dir)), be, NULL, &err);
    RF_CHECK_MSG(d, "%s", err.msg);
    int64_t F = 4, H = 64, W = 128, T = F * (H / 2) * (W / 2);
    RF_CHECK_EQ_INT(T, 8192);
    size_t bytes = rf_dit_arena_bytes(d, 1, T);
    size_t t2 = (size_t)T * (size_t)T * sizeof(float);
    RF_CHECK_MSG(bytes < t2 / 2, "arena %zu bytes vs T^2 scores %zu", bytes, t2);
    RF_CHECK(rf_dit_reserve(d, 1, T, &err) == 0);
    size_t nx = (size_t)(16 * F * H * W);
    float *x = malloc(nx * 4), *v = malloc(nx * 4), *ctx = calloc(4096 * 3, 4);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    float t = 500.0f;
    int rc = rf_dit_forward(d, 1, F, H, W, x, &t, ctx, 3, v, &err);
    RF_CHECK_MSG(rc == 0, "%s", err.msg);
    for (size_t i = 0; i < nx; i += 997)
        RF_CHECK(isfinite(v[i]));
    free(x), free(v), free(ctx);
    rf_dit_destroy(&d);
    rf_backend_destroy(&be);
}

/* ---- tensor parallelism on a random 12-head model ---- */

static uint64_t s_rng = 88172645463325252ull;

static float s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (float)((double)(s_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void s_add_rand(rf_st_writer *w, const char *name, int nd, const int64_t *sh, float amp,
                       float base)
{
    size_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= (size_t)sh[i];
    float *p = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        p[i] = base + amp * s_rand();
    rf_error err = {0};
    RF_CHECK(rf_st_writer_add(w, name, RF_DTYPE_F32, nd, sh, p, &err) == 0);
    free(p);
}

/* dim 96 = 12 heads x 8, ffn 192, 2 layers, text_dim 32, text_len 16, freq_dim 32. */
static const char *s_make_tp_model(void)
{
    static char dir[1024];
    if (dir[0])
        return dir;
    rf_test_path(dir, sizeof(dir), "tp12");
    mkdir(dir, 0700);
    const int64_t D = 96, FF = 192, TD = 32, FD = 32;
    rf_st_writer *w = rf_st_writer_new();
    char n[128];
    s_add_rand(w, "patch_embedding.weight", 5, (int64_t[]){D, 16, 1, 2, 2}, 0.2f, 0);
    s_add_rand(w, "patch_embedding.bias", 1, &D, 0.2f, 0);
    s_add_rand(w, "text_embedding.0.weight", 2, (int64_t[]){D, TD}, 0.3f, 0);
    s_add_rand(w, "text_embedding.0.bias", 1, &D, 0.2f, 0);
    s_add_rand(w, "text_embedding.2.weight", 2, (int64_t[]){D, D}, 0.2f, 0);
    s_add_rand(w, "text_embedding.2.bias", 1, &D, 0.2f, 0);
    s_add_rand(w, "time_embedding.0.weight", 2, (int64_t[]){D, FD}, 0.3f, 0);
    s_add_rand(w, "time_embedding.0.bias", 1, &D, 0.2f, 0);
    s_add_rand(w, "time_embedding.2.weight", 2, (int64_t[]){D, D}, 0.2f, 0);
    s_add_rand(w, "time_embedding.2.bias", 1, &D, 0.2f, 0);
    s_add_rand(w, "time_projection.1.weight", 2, (int64_t[]){6 * D, D}, 0.1f, 0);
    s_add_rand(w, "time_projection.1.bias", 1, (int64_t[]){6 * D}, 0.1f, 0);
    s_add_rand(w, "head.modulation", 3, (int64_t[]){1, 2, D}, 0.2f, 0);
    s_add_rand(w, "head.head.weight", 2, (int64_t[]){64, D}, 0.2f, 0);
    s_add_rand(w, "head.head.bias", 1, (int64_t[]){64}, 0.2f, 0);
    for (int l = 0; l < 2; l++) {
        snprintf(n, sizeof(n), "blocks.%d.modulation", l);
        s_add_rand(w, n, 3, (int64_t[]){1, 6, D}, 0.2f, 0);
        const char *att[2] = {"self_attn", "cross_attn"};
        const char *pr[4] = {"q", "k", "v", "o"};
        for (int a = 0; a < 2; a++) {
            for (int p = 0; p < 4; p++) {
                snprintf(n, sizeof(n), "blocks.%d.%s.%s.weight", l, att[a], pr[p]);
                s_add_rand(w, n, 2, (int64_t[]){D, D}, 0.2f, 0);
                snprintf(n, sizeof(n), "blocks.%d.%s.%s.bias", l, att[a], pr[p]);
                s_add_rand(w, n, 1, &D, 0.2f, 0);
            }
            snprintf(n, sizeof(n), "blocks.%d.%s.norm_q.weight", l, att[a]);
            s_add_rand(w, n, 1, &D, 0.5f, 1.5f);
            snprintf(n, sizeof(n), "blocks.%d.%s.norm_k.weight", l, att[a]);
            s_add_rand(w, n, 1, &D, 0.5f, 1.5f);
        }
        snprintf(n, sizeof(n), "blocks.%d.norm3.weight", l);
        s_add_rand(w, n, 1, &D, 0.5f, 1.0f);
        snprintf(n, sizeof(n), "blocks.%d.norm3.bias", l);
        s_add_rand(w, n, 1, &D, 0.2f, 0);
        snprintf(n, sizeof(n), "blocks.%d.ffn.0.weight", l);
        s_add_rand(w, n, 2, (int64_t[]){FF, D}, 0.2f, 0);
        snprintf(n, sizeof(n), "blocks.%d.ffn.0.bias", l);
        s_add_rand(w, n, 1, &FF, 0.2f, 0);
        snprintf(n, sizeof(n), "blocks.%d.ffn.2.weight", l);
        s_add_rand(w, n, 2, (int64_t[]){D, FF}, 0.15f, 0);
        snprintf(n, sizeof(n), "blocks.%d.ffn.2.bias", l);
        s_add_rand(w, n, 1, &D, 0.2f, 0);
    }
    char path[1200];
    rf_error err = {0};
    snprintf(path, sizeof(path), "%s/diffusion_pytorch_model.safetensors", dir);
    RF_CHECK_MSG(rf_st_writer_write(w, path, &err) == 0, "%s", err.msg);
    rf_st_writer_destroy(&w);
    const char *cfg = "{\"dim\": 96, \"ffn_dim\": 192, \"freq_dim\": 32, \"num_heads\": 12, "
                      "\"num_layers\": 2, \"in_dim\": 16, \"out_dim\": 16, \"text_len\": 16, "
                      "\"text_dim\": 32, \"eps\": 1e-06, \"model_type\": \"t2v\"}";
    snprintf(path, sizeof(path), "%s/config.json", dir);
    RF_CHECK(rf_test_write_file(path, cfg, strlen(cfg)) == 0);
    return dir;
}

RF_TEST(tensor_parallel_2_3_4_6_equal_tp1)
{
    const char *dir = s_make_tp_model();
    int64_t B = 2, F = 2, H = 4, W = 6, LC = 5;
    size_t nx = (size_t)(B * 16 * F * H * W);
    float *x = malloc(nx * 4), *ref = malloc(nx * 4), *out = malloc(nx * 4);
    float t[2] = {999.0f, 31.5f}, ctx[2 * 5 * 32];
    for (size_t i = 0; i < nx; i++)
        x[i] = s_rand();
    for (int i = 0; i < 2 * 5 * 32; i++)
        ctx[i] = s_rand();
    rf_error err = {0};
    size_t whole = 0;
    const int degrees[] = {1, 2, 3, 4, 6};
    for (int di = 0; di < 5; di++) {
        int tp = degrees[di];
        rf_dit_tp *g = rf_dit_tp_load(dir, tp, 2, &err);
        RF_CHECK_MSG(g, "tp %d: %s", tp, err.msg);
        RF_CHECK(rf_dit_tp_reserve(g, B, 12, &err) == 0);
        int rc = rf_dit_tp_forward(g, B, F, H, W, x, t, ctx, LC, tp == 1 ? ref : out, &err);
        RF_CHECK_MSG(rc == 0, "tp %d: %s", tp, err.msg);
        if (tp == 1) {
            whole = rf_dit_weight_bytes(rf_dit_tp_rank(g, 0));
        } else {
            double nmse = rf_test_nmse(out, ref, nx);
            RF_CHECK_MSG(nmse <= 1e-10, "tp %d vs tp 1: nmse %g", tp, nmse);
            /* each rank holds about 1/n (the replicated patch embedding, head and
             * modulation tables are about 5% of this model) */
            for (int r = 0; r < tp; r++) {
                double frac = (double)rf_dit_weight_bytes(rf_dit_tp_rank(g, r)) / (double)whole;
                RF_CHECK_MSG(frac <= 1.0 / tp + 0.06 && frac >= 0.9 / tp,
                             "tp %d rank %d holds %.3f of the weights", tp, r, frac);
            }
        }
        rf_dit_tp_destroy(&g);
    }
    free(x), free(ref), free(out);
}

RF_TEST(tensor_parallel_on_the_golden_fixture_and_invalid_degrees)
{
    s_io io;
    s_io_load(&io, "io.safetensors");
    float *out = malloc(io.nv * 4);
    char dir[1024];
    double nmse = s_run_nmse(s_fix("official", dir, sizeof(dir)), 2, 2, &io, out);
    RF_CHECK_MSG(nmse <= 1e-9, "official tp 2: nmse %g", nmse);
    rf_error err = {0};
    RF_CHECK(rf_dit_tp_load(s_fix("official", dir, sizeof(dir)), 3, 2, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "valid degrees: 1, 2");
    RF_CHECK(rf_dit_tp_load(s_make_tp_model(), 5, 2, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "valid degrees: 1, 2, 3, 4, 6, 12");
    RF_CHECK(rf_dit_tp_load(s_make_tp_model(), 0, 2, &err) == NULL);
    /* a failure on the ranks comes back as an error, not a hang, and the group recovers */
    rf_dit_tp *g = rf_dit_tp_load(s_fix("official", dir, sizeof(dir)), 2, 2, &err);
    RF_CHECK(g && rf_dit_tp_reserve(g, 1, 144, &err) == 0);
    RF_CHECK_EQ_INT(
        rf_dit_tp_forward(g, 1, io.f, io.h + 1, io.w, io.x, io.t, io.ctx, io.lc, out, &err),
        RF_ESHAPE);
    RF_CHECK(rf_dit_tp_forward(g, 1, io.f, io.h, io.w, io.x, io.t, io.ctx, io.lc, out, &err) == 0);
    RF_CHECK(rf_test_nmse(out, io.v, io.nv / 2) <= 1e-9);
    rf_dit_tp_destroy(&g);
    free(out);
    s_io_free(&io);
}

RF_TEST(cli_dit_runs_every_form)
{
    const char *b = getenv("RF_BUILD");
    char bin[1024];
    snprintf(bin, sizeof(bin), "%s/bin/reelfarm-engine", b && *b ? b : RF_SOURCE_DIR "/build");
    struct stat sb;
    if (stat(bin, &sb) != 0)
        RF_SKIP("no %s (run through make test)", bin);
    const char *forms[] = {"official", "small_sharded", "small_repack", "small_diffusers"};
    for (int i = 0; i < 4; i++) {
        char cmd[4096], outp[1024], dir[1024];
        rf_test_path(outp, sizeof(outp), "cli_v.safetensors");
        const char *io = i == 0 ? "io.safetensors" : "io_small.safetensors";
        snprintf(cmd, sizeof(cmd),
                 "%s dit --model %s --input %s/dit/%s --output %s --threads 2 %s 2>/dev/null", bin,
                 s_fix(forms[i], dir, sizeof(dir)), rf_test_fixtures(), io, outp,
                 i == 0 ? "--tp 2" : "");
        RF_CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
        s_io ref;
        s_io_load(&ref, io);
        rf_error err = {0};
        rf_safetensors *st = rf_st_open(outp, &err);
        RF_CHECK_MSG(st, "%s", err.msg);
        const rf_st_tensor *v = rf_st_find(st, "v");
        RF_CHECK(v && rf_st_numel(v) == ref.nv);
        RF_CHECK(rf_test_nmse(v->data, ref.v, ref.nv) <= 1e-9);
        rf_st_destroy(&st);
        s_io_free(&ref);
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s dit --help >/dev/null", bin);
    RF_CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof(cmd), "%s dit --model /nonexistent --input x --output y 2>/dev/null", bin);
    RF_CHECK(system(cmd) != 0);
}

RF_TEST(op_probes_and_rope_angles_match_the_reference)
{
    char path[1024];
    rf_error err = {0};
    rf_safetensors *st = rf_st_open(s_fix("debug.safetensors", path, sizeof(path)), &err);
    RF_CHECK_MSG(st, "%s", err.msg);
    const rf_st_tensor *gx = rf_st_find(st, "probe_gelu_x"),
                       *gy = rf_st_find(st, "probe_gelu_tanh");
    const rf_st_tensor *nx = rf_st_find(st, "probe_norm_x"),
                       *ln = rf_st_find(st, "probe_layernorm");
    const rf_st_tensor *rn = rf_st_find(st, "probe_rmsnorm"), *ra = rf_st_find(st, "rope_angles");
    RF_CHECK(gx && gy && nx && ln && rn && ra && ra->dtype == RF_DTYPE_F64);
    rf_backend *be = rf_backend_cpu_new(2, &err);
    rf_arena *a = rf_arena_new(be, 1 << 20, &err);
    int64_t ng = (int64_t)rf_st_numel(gx), rows = nx->shape[0], cols = nx->shape[1];
    rf_tensor tg, tn, to, ss;
    RF_CHECK(rf_arena_tensor(a, &tg, RF_DTYPE_F32, 1, &ng, "g", &err) == 0);
    RF_CHECK(rf_arena_tensor(a, &tn, RF_DTYPE_F32, 2, (int64_t[]){rows, cols}, "n", &err) == 0);
    RF_CHECK(rf_arena_tensor(a, &to, RF_DTYPE_F32, 2, (int64_t[]){rows, cols}, "o", &err) == 0);
    RF_CHECK(rf_arena_tensor(a, &ss, RF_DTYPE_F32, 1, &rows, "ss", &err) == 0);
    RF_CHECK(rf_st_read_f32(gx, tg.data, &err) == 0 && rf_st_read_f32(nx, tn.data, &err) == 0);
    RF_CHECK(rf_op_unary(be, &tg, &tg, RF_UNARY_GELU_TANH, &err) == 0);
    double e = rf_test_nmse(tg.data, gy->data, (size_t)ng);
    RF_CHECK_MSG(e < 1e-13, "gelu-tanh probe nmse %g", e);
    RF_CHECK(rf_op_layer_norm(be, &to, &tn, NULL, NULL, 1e-6f, &err) == 0);
    e = rf_test_nmse(to.data, ln->data, (size_t)(rows * cols));
    RF_CHECK_MSG(e < 1e-13, "layernorm probe nmse %g", e);
    RF_CHECK(rf_op_rms_norm(be, &to, &tn, &ss, NULL, 1e-6f, &err) == 0);
    e = rf_test_nmse(to.data, rn->data, (size_t)(rows * cols));
    RF_CHECK_MSG(e < 1e-13, "rmsnorm probe nmse %g", e);
    /* rope_angles [144, 64] for the 3 x 6 x 8 grid of io.safetensors */
    double *c = malloc(sizeof(double) * 144 * 64), *s = malloc(sizeof(double) * 144 * 64);
    rf_rope3d_tables(c, s, 3, 6, 8, 128, 10000.0);
    const double *ang = ra->data;
    for (int i = 0; i < 144 * 64; i++) {
        RF_CHECK_NEAR(c[i], cos(ang[i]), 1e-12);
        RF_CHECK_NEAR(s[i], sin(ang[i]), 1e-12);
    }
    free(c), free(s);
    rf_arena_destroy(&a);
    rf_backend_destroy(&be);
    rf_st_destroy(&st);
}

RF_TEST(same_thread_count_gives_identical_bits)
{
    s_io io;
    s_io_load(&io, "io_small.safetensors");
    float *o1 = malloc(io.nv * 4), *o2 = malloc(io.nv * 4);
    char dir[1024];
    rf_error err = {0};
    rf_dit_tp *g = rf_dit_tp_load(s_fix("small_repack", dir, sizeof(dir)), 1, 3, &err);
    RF_CHECK(g && rf_dit_tp_reserve(g, io.b, 48, &err) == 0);
    RF_CHECK(rf_dit_tp_forward(g, io.b, io.f, io.h, io.w, io.x, io.t, io.ctx, io.lc, o1, &err) ==
             0);
    rf_dit_tp_destroy(&g);
    g = rf_dit_tp_load(s_fix("small_repack", dir, sizeof(dir)), 1, 3, &err);
    RF_CHECK(g && rf_dit_tp_reserve(g, io.b, 48, &err) == 0);
    RF_CHECK(rf_dit_tp_forward(g, io.b, io.f, io.h, io.w, io.x, io.t, io.ctx, io.lc, o2, &err) ==
             0);
    RF_CHECK(memcmp(o1, o2, io.nv * 4) == 0);
    /* batch entries are independent: batch entry 1 alone equals entry 1 of the pair */
    size_t per = io.nv / 2, px = per, pc = (size_t)io.lc * 4096;
    RF_CHECK(rf_dit_tp_forward(g, 1, io.f, io.h, io.w, io.x + px, io.t + 1, io.ctx + pc, io.lc, o2,
                               &err) == 0);
    RF_CHECK(rf_test_nmse(o2, o1 + per, per) < 1e-12);
    rf_dit_tp_destroy(&g);
    free(o1), free(o2);
    s_io_free(&io);
}
