/* vae.c - the Wan-VAE encoder and decoder over the op API, in causal streams.
 *
 * Activations are channel-last [T, H, W, C] (one video; T outermost so a frame range is
 * a contiguous slice). Conv weights are repacked at load to [Cout, kt, kh, kw, Cin].
 * Each causal 3-frame conv keeps its last two input frames (zeros at the start); the
 * down3d time conv keeps one; up3d/down3d time convs skip the timeline's frame 0. A push
 * runs block by block between two activation slots with temporaries above them in one
 * arena; its size comes from a dry run of the same code at stream creation (dry: shapes
 * only, no op called), so pushes never allocate. Never holds more than one push of
 * activations: memory is bounded by the stream, never by the timeline.
 */
#include "vae.h"

#include "ops.h"
#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_LAYERS 64
#define S_MAX_CACHES 256
#define S_RMS_EPS    1e-24f

static const float s_wan21_mean[16] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                                       -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                                       -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
static const float s_wan21_std[16] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f,
                                      2.6052f, 2.0743f, 3.2687f, 2.1526f, 2.8652f, 1.5579f,
                                      1.6382f, 1.1253f, 2.8251f, 1.9160f};

typedef struct {
    rf_tensor w, b; /* w [Cout, kt, kh, kw, Cin] F32; b [Cout] (b.data NULL: no bias) */
    int cin, cout, kt, kh, kw;
    int cache; /* stream cache index (causal, kt > 1), else -1 */
} s_conv;

typedef enum { S_RES, S_ATTN, S_DOWN2D, S_DOWN3D, S_UP2D, S_UP3D } s_kind;

typedef struct {
    s_kind kind;
    s_conv c1, c2, sc; /* residual.2, residual.6, shortcut (sc.cout == 0: identity) */
    rf_tensor g1, g2;
    rf_tensor gn, wq, wk, wv, bq, bk, bv, wp, bp; /* attention */
    s_conv rs, tc, tca, tcb; /* resample.1, time_conv (up3d: its two output halves) */
    int flag;                /* stream flag index of a 3d resample */
} s_layer;

typedef struct {
    s_conv in, out; /* encoder.conv1 / encoder.head.2, or decoder.conv1 / decoder.head.2 */
    rf_tensor gout;
    s_layer mid[3];
    s_layer layers[S_MAX_LAYERS];
    int nlayers, ncache, nflag, sf, tf;
} s_coder;

struct rf_vae {
    rf_backend *be;
    rf_arena *weights;
    int z_dim, has_enc;
    s_coder enc, dec;
    s_conv top_enc, top_dec; /* conv1 (after the encoder), conv2 (before the decoder) */
    float mean[RF_VAE_MAX_Z], std[RF_VAE_MAX_Z];
};

struct rf_vae_stream {
    rf_vae *vae;
    s_coder *cd;
    int decode, first, h, w;
    rf_arena *state, *work;
    rf_tensor cache[S_MAX_CACHES];
    int64_t cache_shape[S_MAX_CACHES][4];
    int flags[S_MAX_LAYERS];
    size_t slot_bytes, dry_high;
    float *host;
    size_t host_floats;
};

/* ---- loading --------------------------------------------------------------------- */

typedef struct {
    rf_vae *v;
    rf_safetensors *st;
    const char *path;
    float *tmp; /* host staging, big enough for any tensor */
} s_loader;

static int s_upload(s_loader *L, rf_tensor *t, int ndim, const int64_t *shape, const float *src,
                    const char *name, rf_error *err)
{
    int rc = rf_arena_tensor(L->v->weights, t, RF_DTYPE_F32, ndim, shape, name, err);
    if (rc)
        return rc;
    return rf_tensor_upload(L->v->be, t, src, rf_tensor_nbytes(t), err);
}

static const rf_st_tensor *s_find(s_loader *L, const char *fmt, const char *p, const char *s)
{
    char name[256];
    snprintf(name, sizeof(name), fmt, p, s);
    return rf_st_find(L->st, name);
}

/* Loads conv `p` (.weight [O,I,kt,kh,kw] or [O,I,kh,kw], .bias [O] optional). cin > 0
 * must match; *ncache (when given) numbers causal caches. */
static int s_load_conv(s_loader *L, const char *p, int cin, s_conv *c, int *ncache, rf_error *err)
{
    char name[256];
    snprintf(name, sizeof(name), "%s.weight", p);
    const rf_st_tensor *t = rf_st_find(L->st, name);
    if (!t)
        return rf_error_set(err, RF_ENOTFOUND,
                            "%s: tensor %s is missing; is this a Wan2.1 VAE file (official "
                            "names, see tests/fixtures/vae/README.md)?",
                            L->path, name);
    if (t->ndim != 5 && t->ndim != 4)
        return rf_error_set(err, RF_ESHAPE, "%s: %s has %d dims; a conv weight has 4 or 5", L->path,
                            name, t->ndim);
    memset(c, 0, sizeof(*c));
    c->cout = (int)t->shape[0];
    c->cin = (int)t->shape[1];
    c->kt = t->ndim == 5 ? (int)t->shape[2] : 1;
    c->kh = (int)t->shape[t->ndim - 2];
    c->kw = (int)t->shape[t->ndim - 1];
    c->cache = -1;
    if (c->cout < 1 || c->cin < 1 || c->kt < 1 || c->kt > 3 || c->kh < 1 || c->kw < 1 ||
        c->kh % 2 == 0 || c->kw % 2 == 0 || (cin > 0 && c->cin != cin))
        return rf_error_set(err, RF_ESHAPE,
                            "%s: %s is [%d,%d,%d,%d,%d]; expected %d input channels and odd "
                            "spatial kernels",
                            L->path, name, c->cout, c->cin, c->kt, c->kh, c->kw, cin);
    int rc = rf_st_read_f32(t, L->tmp, err);
    if (rc)
        return rf_error_prefix(err, "%s: %s", L->path, name);
    int64_t taps = (int64_t)c->kt * c->kh * c->kw;
    float *dst = L->tmp + rf_st_numel(t);
    for (int64_t o = 0; o < c->cout; o++)
        for (int64_t i = 0; i < c->cin; i++)
            for (int64_t k = 0; k < taps; k++)
                dst[(o * taps + k) * c->cin + i] = L->tmp[(o * c->cin + i) * taps + k];
    int64_t shape[5] = {c->cout, c->kt, c->kh, c->kw, c->cin};
    if ((rc = s_upload(L, &c->w, 5, shape, dst, name, err)))
        return rc;
    snprintf(name, sizeof(name), "%s.bias", p);
    t = rf_st_find(L->st, name);
    if (t) {
        if (rf_st_numel(t) != (size_t)c->cout)
            return rf_error_set(err, RF_ESHAPE, "%s: %s has %zu elements; expected %d", L->path,
                                name, rf_st_numel(t), c->cout);
        if ((rc = rf_st_read_f32(t, L->tmp, err)))
            return rf_error_prefix(err, "%s: %s", L->path, name);
        int64_t bs[1] = {c->cout};
        if ((rc = s_upload(L, &c->b, 1, bs, L->tmp, name, err)))
            return rc;
    }
    if (ncache && c->kt > 1)
        c->cache = (*ncache)++;
    return 0;
}

static int s_load_vec(s_loader *L, const char *name, int n, rf_tensor *out, rf_error *err)
{
    const rf_st_tensor *t = rf_st_find(L->st, name);
    if (!t)
        return rf_error_set(err, RF_ENOTFOUND, "%s: tensor %s is missing", L->path, name);
    if (rf_st_numel(t) != (size_t)n)
        return rf_error_set(err, RF_ESHAPE, "%s: %s has %zu elements; expected %d", L->path, name,
                            rf_st_numel(t), n);
    int rc = rf_st_read_f32(t, L->tmp, err);
    if (rc)
        return rf_error_prefix(err, "%s: %s", L->path, name);
    int64_t s[1] = {n};
    return s_upload(L, out, 1, s, L->tmp, name, err);
}

static int s_load_res(s_loader *L, const char *p, int cin, s_layer *l, int *nc, rf_error *err)
{
    char n[256];
    int rc;
    l->kind = S_RES;
    snprintf(n, sizeof(n), "%s.residual.2", p);
    if ((rc = s_load_conv(L, n, cin, &l->c1, nc, err)))
        return rc;
    snprintf(n, sizeof(n), "%s.residual.6", p);
    if ((rc = s_load_conv(L, n, l->c1.cout, &l->c2, nc, err)))
        return rc;
    snprintf(n, sizeof(n), "%s.residual.0.gamma", p);
    if ((rc = s_load_vec(L, n, cin, &l->g1, err)))
        return rc;
    snprintf(n, sizeof(n), "%s.residual.3.gamma", p);
    if ((rc = s_load_vec(L, n, l->c1.cout, &l->g2, err)))
        return rc;
    if (l->c1.kt != 3 || l->c2.kt != 3)
        return rf_error_set(err, RF_ESHAPE, "%s: %s convs must be 3x3x3", L->path, p);
    snprintf(n, sizeof(n), "%s.shortcut", p);
    if (s_find(L, "%s%s", n, ".weight")) {
        if ((rc = s_load_conv(L, n, cin, &l->sc, NULL, err)))
            return rc;
        if (l->sc.cout != l->c2.cout || l->sc.kt != 1 || l->sc.kh != 1)
            return rf_error_set(err, RF_ESHAPE, "%s: %s must be a 1x1x1 conv to %d channels",
                                L->path, n, l->c2.cout);
    } else if (cin != l->c2.cout) {
        return rf_error_set(err, RF_ENOTFOUND, "%s: %s.weight is missing (%d -> %d channels)",
                            L->path, n, cin, l->c2.cout);
    }
    return 0;
}

static int s_load_attn(s_loader *L, const char *p, int c, s_layer *l, rf_error *err)
{
    char n[256];
    int rc;
    l->kind = S_ATTN;
    snprintf(n, sizeof(n), "%s.norm.gamma", p);
    if ((rc = s_load_vec(L, n, c, &l->gn, err)))
        return rc;
    s_conv qkv, proj;
    snprintf(n, sizeof(n), "%s.to_qkv", p);
    if ((rc = s_load_conv(L, n, c, &qkv, NULL, err)))
        return rc;
    snprintf(n, sizeof(n), "%s.proj", p);
    if ((rc = s_load_conv(L, n, c, &proj, NULL, err)))
        return rc;
    if (qkv.cout != 3 * c || qkv.kh != 1 || qkv.kt != 1 || proj.cout != c || proj.kh != 1 ||
        proj.kt != 1 || !qkv.b.data || !proj.b.data)
        return rf_error_set(err, RF_ESHAPE,
                            "%s: %s needs to_qkv [%d,%d,1,1] and proj [%d,%d,1,1] with biases",
                            L->path, p, 3 * c, c, c, c);
    int64_t ws[2] = {3 * c, c}, ps[2] = {c, c};
    rf_tensor w = rf_tensor_view(&qkv.w, 2, ws);
    l->wq = rf_tensor_slice0(&w, 0, c);
    l->wk = rf_tensor_slice0(&w, c, c);
    l->wv = rf_tensor_slice0(&w, 2 * c, c);
    l->bq = rf_tensor_slice0(&qkv.b, 0, c);
    l->bk = rf_tensor_slice0(&qkv.b, c, c);
    l->bv = rf_tensor_slice0(&qkv.b, 2 * c, c);
    l->wp = rf_tensor_view(&proj.w, 2, ps);
    l->bp = proj.b;
    return 0;
}

/* The layer list of encoder.downsamples / decoder.upsamples, kinds read from the names. */
static int s_load_coder(s_loader *L, s_coder *cd, int decode, int cin, rf_error *err)
{
    const char *root = decode ? "decoder" : "encoder";
    char p[256], n[256];
    int rc, c;
    int *nc = &cd->ncache;
    snprintf(p, sizeof(p), "%s.conv1", root);
    if ((rc = s_load_conv(L, p, cin, &cd->in, nc, err)))
        return rc;
    c = cd->in.cout;
    cd->sf = 1;
    cd->tf = 1;
    if (decode) {
        snprintf(p, sizeof(p), "%s.middle.0", root);
        if ((rc = s_load_res(L, p, c, &cd->mid[0], nc, err)))
            return rc;
        snprintf(p, sizeof(p), "%s.middle.1", root);
        if ((rc = s_load_attn(L, p, c, &cd->mid[1], err)))
            return rc;
        snprintf(p, sizeof(p), "%s.middle.2", root);
        if ((rc = s_load_res(L, p, c, &cd->mid[2], nc, err)))
            return rc;
    }
    for (int i = 0;; i++) {
        if (i >= S_MAX_LAYERS)
            return rf_error_set(err, RF_EUNSUPPORTED, "%s: more than %d %s blocks", L->path,
                                S_MAX_LAYERS, root);
        snprintf(p, sizeof(p), "%s.%s.%d", root, decode ? "upsamples" : "downsamples", i);
        s_layer *l = &cd->layers[i];
        if (s_find(L, "%s%s", p, ".residual.0.gamma")) {
            if ((rc = s_load_res(L, p, c, l, nc, err)))
                return rc;
            c = l->c2.cout;
        } else if (s_find(L, "%s%s", p, ".norm.gamma")) {
            if ((rc = s_load_attn(L, p, c, l, err)))
                return rc;
        } else if (s_find(L, "%s%s", p, ".resample.1.weight")) {
            int is3d = s_find(L, "%s%s", p, ".time_conv.weight") != NULL;
            snprintf(n, sizeof(n), "%s.resample.1", p);
            if ((rc = s_load_conv(L, n, c, &l->rs, NULL, err)))
                return rc;
            if (l->rs.kt != 1 || l->rs.kh != 3 || l->rs.kw != 3 ||
                l->rs.cout != (decode ? c / 2 : c))
                return rf_error_set(err, RF_ESHAPE, "%s: %s must be a 3x3 conv %d -> %d", L->path,
                                    n, c, decode ? c / 2 : c);
            l->kind = decode ? (is3d ? S_UP3D : S_UP2D) : (is3d ? S_DOWN3D : S_DOWN2D);
            cd->sf *= 2;
            if (is3d) {
                snprintf(n, sizeof(n), "%s.time_conv", p);
                if ((rc = s_load_conv(L, n, c, &l->tc, NULL, err)))
                    return rc;
                if (l->tc.kt != 3 || l->tc.kh != 1 || l->tc.kw != 1 ||
                    l->tc.cout != (decode ? 2 * c : c) || !l->tc.b.data)
                    return rf_error_set(err, RF_ESHAPE,
                                        "%s: %s must be a 3x1x1 conv %d -> %d with bias", L->path,
                                        n, c, decode ? 2 * c : c);
                l->tc.cache = (*nc)++;
                l->flag = cd->nflag++;
                cd->tf *= 2;
                if (decode) {
                    l->tca = l->tc;
                    l->tcb = l->tc;
                    l->tca.cout = l->tcb.cout = c;
                    l->tca.w = rf_tensor_slice0(&l->tc.w, 0, c);
                    l->tcb.w = rf_tensor_slice0(&l->tc.w, c, c);
                    l->tca.b = rf_tensor_slice0(&l->tc.b, 0, c);
                    l->tcb.b = rf_tensor_slice0(&l->tc.b, c, c);
                }
            }
            c = l->rs.cout;
        } else {
            cd->nlayers = i;
            break;
        }
    }
    if (!decode) {
        snprintf(p, sizeof(p), "%s.middle.0", root);
        if ((rc = s_load_res(L, p, c, &cd->mid[0], nc, err)))
            return rc;
        snprintf(p, sizeof(p), "%s.middle.1", root);
        if ((rc = s_load_attn(L, p, c, &cd->mid[1], err)))
            return rc;
        snprintf(p, sizeof(p), "%s.middle.2", root);
        if ((rc = s_load_res(L, p, c, &cd->mid[2], nc, err)))
            return rc;
    }
    snprintf(p, sizeof(p), "%s.head.0.gamma", root);
    if ((rc = s_load_vec(L, p, c, &cd->gout, err)))
        return rc;
    snprintf(p, sizeof(p), "%s.head.2", root);
    if ((rc = s_load_conv(L, p, c, &cd->out, nc, err)))
        return rc;
    if (cd->ncache > S_MAX_CACHES)
        return rf_error_set(err, RF_EUNSUPPORTED, "%s: too many causal convs", L->path);
    return 0;
}

rf_vae *rf_vae_load(const char *path, rf_backend *be, rf_error *err)
{
    rf_safetensors *st = rf_st_open(path, err);
    if (!st)
        return NULL;
    rf_vae *v = calloc(1, sizeof(*v));
    s_loader L = {v, st, path, NULL};
    size_t total = 1 << 16, maxn = 1;
    for (size_t i = 0; i < rf_st_count(st); i++) {
        size_t n = rf_st_numel(rf_st_at(st, i));
        total += rf_arena_round(n * sizeof(float));
        maxn = n > maxn ? n : maxn;
    }
    int rc = 0;
    if (!v || !(L.tmp = malloc(2 * maxn * sizeof(float)))) {
        rc = rf_error_set(err, RF_ENOMEM, "%s: out of memory loading the VAE", path);
        goto done;
    }
    v->be = be;
    if (!(v->weights = rf_arena_new(be, total, err))) {
        rc = err ? err->code : RF_ENOMEM;
        goto done;
    }
    const rf_st_tensor *c2 = rf_st_find(st, "conv2.weight");
    if (!c2 || c2->shape[0] < 1 || c2->shape[0] > RF_VAE_MAX_Z) {
        rc = rf_error_set(err, RF_ENOTFOUND,
                          "%s: conv2.weight (the decoder's input 1x1x1 conv) is missing or "
                          "has more than %d channels; is this a Wan2.1 VAE?",
                          path, RF_VAE_MAX_Z);
        goto done;
    }
    v->z_dim = (int)c2->shape[0];
    if ((rc = s_load_conv(&L, "conv2", v->z_dim, &v->top_dec, NULL, err)) ||
        (rc = s_load_coder(&L, &v->dec, 1, v->z_dim, err)))
        goto done;
    if (v->top_dec.kt != 1 || v->top_dec.kh != 1 || v->top_dec.cout != v->z_dim ||
        v->dec.out.cout != 3) {
        rc = rf_error_set(err, RF_ESHAPE,
                          "%s: conv2 must be 1x1x1 %d -> %d and decoder.head.2 end in 3 "
                          "channels",
                          path, v->z_dim, v->z_dim);
        goto done;
    }
    if (rf_st_find(st, "encoder.conv1.weight")) {
        v->has_enc = 1;
        if ((rc = s_load_coder(&L, &v->enc, 0, 3, err)) ||
            (rc = s_load_conv(&L, "conv1", v->enc.out.cout, &v->top_enc, NULL, err)))
            goto done;
        if (v->top_enc.kt != 1 || v->top_enc.kh != 1 || v->top_enc.cout < v->z_dim) {
            rc = rf_error_set(err, RF_ESHAPE, "%s: conv1 must be 1x1x1 with >= %d outputs", path,
                              v->z_dim);
            goto done;
        }
    }
    const rf_st_tensor *m = rf_st_find(st, "latents_mean"), *s = rf_st_find(st, "latents_std");
    if (m && s) {
        if (rf_st_numel(m) != (size_t)v->z_dim || rf_st_numel(s) != (size_t)v->z_dim) {
            rc = rf_error_set(err, RF_ESHAPE, "%s: latents_mean/latents_std must have %d values",
                              path, v->z_dim);
            goto done;
        }
        if ((rc = rf_st_read_f32(m, v->mean, err)) || (rc = rf_st_read_f32(s, v->std, err)))
            goto done;
        for (int i = 0; i < v->z_dim; i++)
            if (!(v->std[i] > 0.0f) || !isfinite(v->mean[i])) {
                rc = rf_error_set(err, RF_EINVAL, "%s: latents_std[%d] must be > 0", path, i);
                goto done;
            }
    } else if (v->z_dim == 16) {
        memcpy(v->mean, s_wan21_mean, sizeof(s_wan21_mean));
        memcpy(v->std, s_wan21_std, sizeof(s_wan21_std));
    } else {
        rc = rf_error_set(err, RF_ENOTFOUND,
                          "%s: z_dim is %d and the file has no latents_mean/latents_std; add "
                          "them (Wan2.1's defaults only exist for z_dim 16)",
                          path, v->z_dim);
        goto done;
    }
done:
    free(L.tmp);
    rf_st_destroy(&st);
    if (rc) {
        rf_vae_destroy(&v);
        return NULL;
    }
    return v;
}

void rf_vae_destroy(rf_vae **self)
{
    if (!self || !*self)
        return;
    rf_arena_destroy(&(*self)->weights);
    free(*self);
    *self = NULL;
}

int rf_vae_z_dim(const rf_vae *self)
{
    return self->z_dim;
}
int rf_vae_spatial_factor(const rf_vae *self)
{
    return self->dec.sf;
}
int rf_vae_temporal_factor(const rf_vae *self)
{
    return self->dec.tf;
}
int rf_vae_has_encoder(const rf_vae *self)
{
    return self->has_enc;
}
const float *rf_vae_latent_mean(const rf_vae *self)
{
    return self->mean;
}
const float *rf_vae_latent_std(const rf_vae *self)
{
    return self->std;
}

int64_t rf_vae_pixel_frames(const rf_vae *vae, int64_t a, int64_t b)
{
    if (b <= a)
        return 0;
    return a == 0 ? 1 + (int64_t)vae->dec.tf * (b - 1) : (int64_t)vae->dec.tf * (b - a);
}

/* ---- one push: the forward over the op API (dry: shapes only) -------------------- */

typedef struct {
    rf_vae_stream *s;
    rf_backend *be;
    int dry, cont; /* cont: take the continuation path (dry runs size for it) */
    size_t top, high, slot_need;
    void *slot[2];
    int cur;        /* slot holding the current activation */
    rf_tensor last; /* the last block output (in slot 1 - cur until the block flips cur) */
} s_run;

static int s_new(s_run *r, rf_tensor *t, int64_t T, int64_t H, int64_t W, int64_t C,
                 const char *what, rf_error *err)
{
    int64_t sh[4] = {T, H, W, C};
    if (r->dry) {
        rf_tensor_init(t, RF_DTYPE_F32, 4, sh, NULL, NULL);
        r->top += rf_arena_tensor_bytes(RF_DTYPE_F32, 4, sh);
        r->high = r->top > r->high ? r->top : r->high;
        return 0;
    }
    return rf_arena_tensor(r->s->work, t, RF_DTYPE_F32, 4, sh, what, err);
}

/* The other slot as a [T, H, W, C] tensor: where a block writes its output. */
static void s_out(s_run *r, rf_tensor *t, int64_t T, int64_t H, int64_t W, int64_t C)
{
    int64_t sh[4] = {T, H, W, C};
    size_t need = (size_t)(T * H * W * C) * sizeof(float);
    r->slot_need = need > r->slot_need ? need : r->slot_need;
    rf_tensor_init(t, RF_DTYPE_F32, 4, sh, r->dry ? NULL : r->slot[1 - r->cur], NULL);
    r->last = *t;
}

static size_t s_mark(s_run *r)
{
    return r->dry ? r->top : rf_arena_mark(r->s->work);
}
static void s_reset(s_run *r, size_t m)
{
    if (r->dry)
        r->top = m;
    else
        rf_arena_reset(r->s->work, m);
}
static void s_scratch(s_run *r, size_t bytes)
{
    if (r->dry && r->top + bytes + 64 > r->high)
        r->high = r->top + bytes + 64;
}

static int s_conv_raw(s_run *r, const s_conv *c, rf_tensor *y, const rf_tensor *prev,
                      const rf_tensor *x, const rf_conv3d_params *p, rf_error *err)
{
    s_scratch(r, rf_op_conv3d_scratch(r->be, y, &c->w, p));
    if (r->dry)
        return 0;
    return rf_op_conv3d(r->be, y, prev, x, &c->w, c->b.data ? &c->b : NULL, p, r->s->work, err);
}

/* cache (P frames) := the last P frames of cat(cache, x). */
static int s_cache_push(s_run *r, int idx, const rf_tensor *x, int64_t P, rf_error *err)
{
    if (r->dry) {
        int64_t *cs = r->s->cache_shape[idx];
        cs[0] = P;
        cs[1] = x->ne[1];
        cs[2] = x->ne[2];
        cs[3] = x->ne[3];
        return 0;
    }
    rf_tensor *c = &r->s->cache[idx];
    int64_t n = x->ne[0];
    int rc = 0;
    if (n >= P) {
        rf_tensor src = rf_tensor_slice0(x, n - P, P);
        return rf_op_copy(r->be, c, &src, err);
    }
    for (int64_t i = 0; i < P - n && !rc; i++) {
        rf_tensor d = rf_tensor_slice0(c, i, 1), s = rf_tensor_slice0(c, i + n, 1);
        rc = rf_op_copy(r->be, &d, &s, err);
    }
    if (!rc) {
        rf_tensor d = rf_tensor_slice0(c, P - n, n);
        rc = rf_op_copy(r->be, &d, x, err);
    }
    return rc;
}

/* y = causal conv(x): same-padded spatially, its cache prepended in time. */
static int s_cconv(s_run *r, const s_conv *c, const rf_tensor *x, rf_tensor *y, rf_error *err)
{
    rf_conv3d_params p = {1, 1, 1, c->kh / 2, c->kh / 2, c->kw / 2, c->kw / 2, 0};
    rf_tensor *prev = c->cache >= 0 ? &r->s->cache[c->cache] : NULL;
    if (r->dry && prev) {
        int64_t sh[4] = {c->kt - 1, x->ne[1], x->ne[2], x->ne[3]};
        rf_tensor_init(prev, RF_DTYPE_F32, 4, sh, NULL, NULL);
    }
    int rc = s_conv_raw(r, c, y, prev, x, &p, err);
    if (!rc && prev)
        rc = s_cache_push(r, c->cache, x, c->kt - 1, err);
    return rc;
}

static int s_rms_silu(s_run *r, rf_tensor *y, const rf_tensor *x, const rf_tensor *g, int silu,
                      rf_error *err)
{
    rf_tensor ss;
    int64_t rows = (int64_t)rf_tensor_rows(x);
    int rc = s_new(r, &ss, rows, 1, 1, 1, "rms rows", err);
    if (rc || r->dry)
        return rc;
    int64_t s1[1] = {rows};
    ss = rf_tensor_view(&ss, 1, s1);
    if ((rc = rf_op_rms_norm(r->be, y, x, &ss, g, S_RMS_EPS, err)))
        return rc;
    return silu ? rf_op_unary(r->be, y, y, RF_UNARY_SILU, err) : 0;
}

static int s_res(s_run *r, const s_layer *l, const rf_tensor *x, rf_error *err)
{
    size_t m = s_mark(r);
    int64_t T = x->ne[0], H = x->ne[1], W = x->ne[2];
    rf_tensor t1, t2, y, sc;
    int rc;
    if ((rc = s_new(r, &t1, T, H, W, x->ne[3], "res in", err)) ||
        (rc = s_rms_silu(r, &t1, x, &l->g1, 1, err)) ||
        (rc = s_new(r, &t2, T, H, W, l->c1.cout, "res mid", err)) ||
        (rc = s_cconv(r, &l->c1, &t1, &t2, err)) || (rc = s_rms_silu(r, &t2, &t2, &l->g2, 1, err)))
        return rc;
    s_out(r, &y, T, H, W, l->c2.cout);
    if ((rc = s_cconv(r, &l->c2, &t2, &y, err)))
        return rc;
    if (l->sc.cout) {
        if ((rc = s_new(r, &sc, T, H, W, l->sc.cout, "shortcut", err)) ||
            (rc = s_cconv(r, &l->sc, x, &sc, err)))
            return rc;
        if (!r->dry && (rc = rf_op_binary(r->be, &y, &y, &sc, RF_BINARY_ADD, err)))
            return rc;
    } else if (!r->dry && (rc = rf_op_binary(r->be, &y, &y, x, RF_BINARY_ADD, err))) {
        return rc;
    }
    s_reset(r, m);
    r->cur = 1 - r->cur;
    return 0;
}

static int s_attn(s_run *r, const s_layer *l, const rf_tensor *x, rf_error *err)
{
    size_t m = s_mark(r);
    int64_t T = x->ne[0], L = x->ne[1] * x->ne[2], C = x->ne[3];
    rf_tensor t1, q, k, v, o, y;
    int rc;
    if ((rc = s_new(r, &t1, T, x->ne[1], x->ne[2], C, "attn norm", err)) ||
        (rc = s_rms_silu(r, &t1, x, &l->gn, 0, err)) ||
        (rc = s_new(r, &q, T, L, 1, C, "attn q", err)) ||
        (rc = s_new(r, &k, T, L, 1, C, "attn k", err)) ||
        (rc = s_new(r, &v, T, L, 1, C, "attn v", err)) ||
        (rc = s_new(r, &o, T, L, 1, C, "attn out", err)))
        return rc;
    s_scratch(r, rf_op_attention_scratch(r->be, T, L, L, 1, C));
    s_out(r, &y, T, x->ne[1], x->ne[2], C);
    if (!r->dry) {
        int64_t s2[2] = {T * L, C};
        rf_tensor h2 = rf_tensor_view(&t1, 2, s2), q2 = rf_tensor_view(&q, 2, s2),
                  k2 = rf_tensor_view(&k, 2, s2), v2 = rf_tensor_view(&v, 2, s2),
                  o2 = rf_tensor_view(&o, 2, s2), y2 = rf_tensor_view(&y, 2, s2);
        if ((rc = rf_op_linear(r->be, &q2, &h2, &l->wq, &l->bq, r->s->work, err)) ||
            (rc = rf_op_linear(r->be, &k2, &h2, &l->wk, &l->bk, r->s->work, err)) ||
            (rc = rf_op_linear(r->be, &v2, &h2, &l->wv, &l->bv, r->s->work, err)) ||
            (rc = rf_op_attention(r->be, &o, &q, &k, &v, NULL, 1.0f / sqrtf((float)C), r->s->work,
                                  err)) ||
            (rc = rf_op_linear(r->be, &y2, &o2, &l->wp, &l->bp, r->s->work, err)) ||
            (rc = rf_op_binary(r->be, &y, &y, x, RF_BINARY_ADD, err)))
            return rc;
    }
    s_reset(r, m);
    r->cur = 1 - r->cur;
    return 0;
}

static int s_resample(s_run *r, const s_layer *l, const rf_tensor *x, rf_error *err)
{
    size_t m = s_mark(r);
    int64_t T = x->ne[0], H = x->ne[1], W = x->ne[2], C = x->ne[3];
    int *flag = (l->kind == S_UP3D || l->kind == S_DOWN3D) ? &r->s->flags[l->flag] : NULL;
    int active = flag && (r->cont || *flag);
    rf_tensor y, t;
    int rc;
    if (l->kind == S_UP3D || l->kind == S_UP2D) {
        const rf_tensor *in = x;
        if (l->kind == S_UP3D && active) { /* causal time conv C -> 2C, halves interleaved */
            if ((rc = s_new(r, &t, 2 * T, H, W, C, "up3d time", err)))
                return rc;
            rf_tensor *cache = &r->s->cache[l->tc.cache];
            if (r->dry) {
                int64_t sh[4] = {2, H, W, C};
                rf_tensor_init(cache, RF_DTYPE_F32, 4, sh, NULL, NULL);
            }
            rf_conv3d_params p = {1, 1, 1, 0, 0, 0, 0, 0};
            for (int64_t i = 0; i < T; i++) { /* output i reads frames i..i+2 of [cache, x] */
                rf_tensor pv, xv = rf_tensor_slice0(x, i < 2 ? 0 : i - 2, i < 2 ? i + 1 : 3);
                rf_tensor ya = rf_tensor_slice0(&t, 2 * i, 1),
                          yb = rf_tensor_slice0(&t, 2 * i + 1, 1);
                const rf_tensor *pp = NULL;
                if (i < 2) {
                    pv = rf_tensor_slice0(cache, i, 2 - i);
                    pp = &pv;
                }
                if ((rc = s_conv_raw(r, &l->tca, &ya, pp, &xv, &p, err)) ||
                    (rc = s_conv_raw(r, &l->tcb, &yb, pp, &xv, &p, err)))
                    return rc;
            }
            if ((rc = s_cache_push(r, l->tc.cache, x, 2, err)))
                return rc;
            in = &t;
        } else if (flag && !r->dry) {
            *flag = 1; /* the timeline's frame 0: not doubled; arms the time conv */
        }
        rf_conv3d_params p = {1, 1, 1, 1, 1, 1, 1, 1};
        s_out(r, &y, in->ne[0], 2 * H, 2 * W, l->rs.cout);
        if ((rc = s_conv_raw(r, &l->rs, &y, NULL, in, &p, err)))
            return rc;
    } else {
        rf_conv3d_params p = {1, 2, 2, 0, 1, 0, 1, 0};
        int64_t Ho = H / 2, Wo = W / 2;
        if (l->kind == S_DOWN3D && active) {
            if ((rc = s_new(r, &t, T, Ho, Wo, C, "down3d 2d", err)) ||
                (rc = s_conv_raw(r, &l->rs, &t, NULL, x, &p, err)))
                return rc;
            rf_tensor *cache = &r->s->cache[l->tc.cache];
            if (r->dry) {
                int64_t sh[4] = {1, Ho, Wo, C};
                rf_tensor_init(cache, RF_DTYPE_F32, 4, sh, NULL, NULL);
            }
            rf_conv3d_params pt = {2, 1, 1, 0, 0, 0, 0, 0};
            s_out(r, &y, (1 + T - 3) / 2 + 1, Ho, Wo, C);
            if ((rc = s_conv_raw(r, &l->tc, &y, cache, &t, &pt, err)) ||
                (rc = s_cache_push(r, l->tc.cache, &t, 1, err)))
                return rc;
        } else {
            s_out(r, &y, T, Ho, Wo, l->rs.cout);
            if ((rc = s_conv_raw(r, &l->rs, &y, NULL, x, &p, err)))
                return rc;
            if (flag) { /* frame 0 passes through and fills the one-frame cache */
                if ((rc = s_cache_push(r, l->tc.cache, &y, 1, err)))
                    return rc;
                if (!r->dry)
                    *flag = 1;
            }
        }
    }
    s_reset(r, m);
    r->cur = 1 - r->cur;
    return 0;
}

/* Runs one block on x (in the current slot); x becomes its output (in the other slot). */
static int s_block(s_run *r, const s_layer *l, rf_tensor *x, rf_error *err)
{
    rf_tensor in = *x;
    int rc = l->kind == S_RES    ? s_res(r, l, &in, err)
             : l->kind == S_ATTN ? s_attn(r, l, &in, err)
                                 : s_resample(r, l, &in, err);
    if (!rc)
        *x = r->last;
    return rc;
}

/* A conv from the current slot into the other one, as a block. */
static int s_conv_block(s_run *r, const s_conv *c, rf_tensor *x, rf_error *err)
{
    rf_tensor y;
    int64_t H = x->ne[1], W = x->ne[2];
    s_out(r, &y, x->ne[0], H, W, c->cout);
    int rc = s_cconv(r, c, x, &y, err);
    if (rc)
        return rc;
    r->cur = 1 - r->cur;
    *x = y;
    return 0;
}

/* conv1, the blocks, the head: x (current slot) -> x = the coder's output. */
static int s_coder_fwd(s_run *r, const s_coder *cd, int decode, rf_tensor *x, rf_error *err)
{
    int rc = s_conv_block(r, &cd->in, x, err);
    if (decode)
        for (int i = 0; i < 3 && !rc; i++)
            rc = s_block(r, &cd->mid[i], x, err);
    for (int i = 0; i < cd->nlayers && !rc; i++)
        rc = s_block(r, &cd->layers[i], x, err);
    if (!decode)
        for (int i = 0; i < 3 && !rc; i++)
            rc = s_block(r, &cd->mid[i], x, err);
    if (rc)
        return rc;
    size_t m = s_mark(r);
    rf_tensor t;
    rf_tensor y;
    if ((rc = s_new(r, &t, x->ne[0], x->ne[1], x->ne[2], x->ne[3], "head", err)) ||
        (rc = s_rms_silu(r, &t, x, &cd->gout, 1, err)))
        return rc;
    s_out(r, &y, x->ne[0], x->ne[1], x->ne[2], cd->out.cout);
    if ((rc = s_cconv(r, &cd->out, &t, &y, err)))
        return rc;
    s_reset(r, m);
    r->cur = 1 - r->cur;
    *x = y;
    return 0;
}

/* One push: in = host channel-last input [n, H, W, C] already staged in s->host (or
 * nothing when dry); leaves the channel-last output in *out (backend memory). */
static int s_push(rf_vae_stream *s, int dry, int64_t n, rf_tensor *out, rf_error *err)
{
    s_run r;
    memset(&r, 0, sizeof(r));
    r.s = s;
    r.be = s->vae->be;
    r.dry = dry;
    r.cont = dry || !s->first;
    int rc;
    if (!dry) {
        r.slot[0] = rf_arena_alloc(s->work, s->slot_bytes);
        r.slot[1] = rf_arena_alloc(s->work, s->slot_bytes);
        if (!r.slot[0] || !r.slot[1])
            return rf_error_set(err, RF_ENOMEM, "vae: stream arena too small for its slots");
    }
    rf_tensor x;
    int64_t cin = s->decode ? s->vae->z_dim : 3;
    int64_t sh[4] = {n, s->h, s->w, cin};
    rf_tensor_init(&x, RF_DTYPE_F32, 4, sh, dry ? NULL : r.slot[0], NULL);
    if (!dry && (rc = rf_tensor_upload(r.be, &x, s->host, rf_tensor_nbytes(&x), err)))
        return rc;
    if (s->decode) {
        rc = s_conv_block(&r, &s->vae->top_dec, &x, err);
        if (!rc)
            rc = s_coder_fwd(&r, s->cd, 1, &x, err);
    } else {
        rc = s_coder_fwd(&r, s->cd, 0, &x, err);
        if (!rc)
            rc = s_conv_block(&r, &s->vae->top_enc, &x, err);
    }
    if (rc)
        return rc;
    if (dry) {
        s->slot_bytes = rf_arena_round(r.slot_need);
        s->dry_high = r.high;
    }
    *out = x;
    if (!dry)
        s->first = 0;
    return 0;
}

static rf_vae_stream *s_stream_new(rf_vae *vae, int decode, int h, int w, int first, rf_error *err)
{
    if (!decode && !vae->has_enc) {
        rf_error_set(err, RF_EUNSUPPORTED, "vae: this VAE file has no encoder weights");
        return NULL;
    }
    s_coder *cd = decode ? &vae->dec : &vae->enc;
    if (h < 1 || w < 1 || h > 65536 || w > 65536 ||
        (!decode && (h % cd->sf != 0 || w % cd->sf != 0))) {
        rf_error_set(err, RF_EINVAL, "vae: %s size %dx%d is invalid%s", decode ? "latent" : "video",
                     h, w, decode ? "" : "; height and width must be multiples of 8");
        return NULL;
    }
    rf_vae_stream *s = calloc(1, sizeof(*s));
    if (!s) {
        rf_error_set(err, RF_ENOMEM, "vae: out of memory");
        return NULL;
    }
    s->vae = vae;
    s->cd = cd;
    s->decode = decode;
    s->first = first ? 1 : 0;
    s->h = h;
    s->w = w;
    rf_tensor out;
    int64_t n = decode ? 1 : cd->tf;
    if (s_push(s, 1, n, &out, err)) {
        rf_vae_stream_destroy(&s);
        return NULL;
    }
    size_t high = s->dry_high;
    size_t state = 1 << 12;
    int ncache = cd->ncache;
    for (int i = 0; i < ncache; i++)
        state += rf_arena_tensor_bytes(RF_DTYPE_F32, 4, s->cache_shape[i]);
    size_t work = 2 * s->slot_bytes + high + (1 << 16);
    if (!(s->state = rf_arena_new(vae->be, state, err)) ||
        !(s->work = rf_arena_new(vae->be, work, err))) {
        rf_vae_stream_destroy(&s);
        return NULL;
    }
    for (int i = 0; i < ncache; i++) {
        if (s->cache_shape[i][0] == 0) { /* a cache the dry run never reached */
            int64_t one[4] = {1, 1, 1, 1};
            memcpy(s->cache_shape[i], one, sizeof(one));
        }
        if (rf_arena_tensor(s->state, &s->cache[i], RF_DTYPE_F32, 4, s->cache_shape[i], "vae cache",
                            err) ||
            rf_op_fill(vae->be, &s->cache[i], 0.0f, err)) {
            rf_vae_stream_destroy(&s);
            return NULL;
        }
    }
    int64_t H = decode ? (int64_t)h * cd->sf : h, W = decode ? (int64_t)w * cd->sf : w;
    size_t in = (size_t)(decode ? (int64_t)vae->z_dim * h * w : 3 * cd->tf * H * W);
    size_t o = (size_t)(decode ? 3 * cd->tf * H * W : (int64_t)out.ne[3] * out.ne[1] * out.ne[2]);
    s->host_floats = in > o ? in : o;
    if (!(s->host = malloc(s->host_floats * sizeof(float)))) {
        rf_error_set(err, RF_ENOMEM, "vae: out of memory for %zu host floats", s->host_floats);
        rf_vae_stream_destroy(&s);
        return NULL;
    }
    return s;
}

rf_vae_stream *rf_vae_decoder_new(rf_vae *vae, int h, int w, int first, rf_error *err)
{
    return s_stream_new(vae, 1, h, w, first, err);
}

rf_vae_stream *rf_vae_encoder_new(rf_vae *vae, int H, int W, int first, rf_error *err)
{
    return s_stream_new(vae, 0, H, W, first, err);
}

void rf_vae_stream_destroy(rf_vae_stream **self)
{
    if (!self || !*self)
        return;
    rf_arena_destroy(&(*self)->state);
    rf_arena_destroy(&(*self)->work);
    free((*self)->host);
    free(*self);
    *self = NULL;
}

size_t rf_vae_stream_bytes(const rf_vae_stream *self)
{
    return rf_arena_capacity(self->state) + rf_arena_capacity(self->work);
}

size_t rf_vae_stream_high_water(const rf_vae_stream *self)
{
    return rf_arena_high_water(self->work);
}

int rf_vae_decode_push(rf_vae_stream *self, const float *z, float *out, int *n_out, rf_error *err)
{
    if (!self->decode)
        return rf_error_set(err, RF_EINVAL, "vae: decode_push on an encoder stream");
    const rf_vae *v = self->vae;
    int64_t hw = (int64_t)self->h * self->w, zd = v->z_dim;
    for (int64_t c = 0; c < zd; c++)
        for (int64_t p = 0; p < hw; p++)
            self->host[p * zd + c] = z[c * hw + p] * v->std[c] + v->mean[c];
    size_t m = rf_arena_mark(self->work);
    rf_tensor y;
    int rc = s_push(self, 0, 1, &y, err);
    if (!rc) {
        int64_t n = y.ne[0], HW = y.ne[1] * y.ne[2];
        rc = rf_tensor_download(v->be, &y, self->host, rf_tensor_nbytes(&y), err);
        for (int64_t t = 0; !rc && t < n; t++)
            for (int64_t c = 0; c < 3; c++)
                for (int64_t p = 0; p < HW; p++) {
                    float a = self->host[(t * HW + p) * 3 + c];
                    a = a < -1.0f ? -1.0f : a > 1.0f ? 1.0f : a;
                    out[(c * n + t) * HW + p] = a;
                }
        *n_out = (int)n;
    }
    rf_arena_reset(self->work, m);
    return rc;
}

int rf_vae_encode_push(rf_vae_stream *self, const float *frames, int n, float *z, rf_error *err)
{
    if (self->decode)
        return rf_error_set(err, RF_EINVAL, "vae: encode_push on a decoder stream");
    int want = self->first ? 1 : self->cd->tf;
    if (n != want)
        return rf_error_set(err, RF_EINVAL,
                            "vae: encoder push of %d frames; expected %d (the clip's frame 0 "
                            "alone, then %d at a time)",
                            n, want, self->cd->tf);
    const rf_vae *v = self->vae;
    int64_t HW = (int64_t)self->h * self->w;
    for (int64_t t = 0; t < n; t++)
        for (int64_t c = 0; c < 3; c++)
            for (int64_t p = 0; p < HW; p++)
                self->host[(t * HW + p) * 3 + c] = frames[(c * n + t) * HW + p];
    size_t m = rf_arena_mark(self->work);
    rf_tensor y;
    int rc = s_push(self, 0, n, &y, err);
    if (!rc) {
        int64_t hw = y.ne[1] * y.ne[2], C = y.ne[3], zd = v->z_dim;
        rc = rf_tensor_download(v->be, &y, self->host, rf_tensor_nbytes(&y), err);
        for (int64_t c = 0; !rc && c < zd; c++)
            for (int64_t p = 0; p < hw; p++)
                z[c * hw + p] = (self->host[p * C + c] - v->mean[c]) / v->std[c];
    }
    rf_arena_reset(self->work, m);
    return rc;
}

/* ---- segments -------------------------------------------------------------------- */

int rf_vae_decode_segment(rf_vae *vae, const float *z, int64_t T, int h, int w, int64_t a,
                          int64_t b, int64_t warmup, float *out, rf_error *err)
{
    if (a < 0 || b > T || a >= b || warmup < 0)
        return rf_error_set(err, RF_EINVAL,
                            "vae: segment [%lld, %lld) with warm-up %lld does not fit a timeline "
                            "of %lld latent frames",
                            (long long)a, (long long)b, (long long)warmup, (long long)T);
    int64_t s0 = a - warmup > 0 ? a - warmup : 0;
    rf_vae_stream *st = rf_vae_decoder_new(vae, h, w, s0 == 0, err);
    if (!st)
        return err ? err->code : RF_EINVAL;
    int64_t hw = (int64_t)h * w, zd = vae->z_dim, sf = vae->dec.sf, tf = vae->dec.tf;
    int64_t HW = hw * sf * sf, F = rf_vae_pixel_frames(vae, a, b);
    float *zf = malloc((size_t)(zd * hw) * sizeof(float));
    float *px = malloc((size_t)(3 * tf * HW) * sizeof(float));
    int rc = (!zf || !px) ? rf_error_set(err, RF_ENOMEM, "vae: out of memory") : 0;
    int64_t f0 = 0;
    for (int64_t i = s0; i < b && !rc; i++) {
        for (int64_t c = 0; c < zd; c++)
            memcpy(zf + c * hw, z + (c * T + i) * hw, (size_t)hw * sizeof(float));
        int n = 0;
        if ((rc = rf_vae_decode_push(st, zf, px, &n, err)))
            break;
        if (i < a)
            continue;
        for (int64_t c = 0; c < 3; c++)
            memcpy(out + (c * F + f0) * HW, px + c * n * HW, (size_t)(n * HW) * sizeof(float));
        f0 += n;
    }
    free(zf);
    free(px);
    rf_vae_stream_destroy(&st);
    return rc;
}

int rf_vae_encode_segment(rf_vae *vae, const float *video, int64_t F, int H, int W, int64_t a,
                          int64_t b, int64_t warmup, float *z, rf_error *err)
{
    if (!vae->has_enc)
        return rf_error_set(err, RF_EUNSUPPORTED, "vae: this VAE file has no encoder weights");
    int64_t tf = vae->enc.tf, sf = vae->enc.sf;
    if (F < 1 || (F - 1) % tf != 0)
        return rf_error_set(err, RF_EINVAL,
                            "vae: a clip to encode needs 1 + %lld n frames, got %lld",
                            (long long)tf, (long long)F);
    int64_t T = (F - 1) / tf + 1;
    if (a < 0 || b > T || a >= b || warmup < 0)
        return rf_error_set(err, RF_EINVAL,
                            "vae: segment [%lld, %lld) with warm-up %lld does not fit a clip of "
                            "%lld latent frames",
                            (long long)a, (long long)b, (long long)warmup, (long long)T);
    int64_t s0 = a - warmup > 0 ? a - warmup : 0;
    rf_vae_stream *st = rf_vae_encoder_new(vae, H, W, s0 == 0, err);
    if (!st)
        return err ? err->code : RF_EINVAL;
    int64_t HW = (int64_t)H * W, hw = HW / (sf * sf), zd = vae->z_dim;
    float *fr = malloc((size_t)(3 * tf * HW) * sizeof(float));
    float *zf = malloc((size_t)(zd * hw) * sizeof(float));
    int rc = (!zf || !fr) ? rf_error_set(err, RF_ENOMEM, "vae: out of memory") : 0;
    for (int64_t i = s0; i < b && !rc; i++) {
        int64_t p0 = i == 0 ? 0 : 1 + tf * (i - 1), n = i == 0 ? 1 : tf;
        for (int64_t c = 0; c < 3; c++)
            memcpy(fr + c * n * HW, video + (c * F + p0) * HW, (size_t)(n * HW) * sizeof(float));
        if ((rc = rf_vae_encode_push(st, fr, (int)n, zf, err)))
            break;
        if (i < a)
            continue;
        for (int64_t c = 0; c < zd; c++)
            memcpy(z + (c * (b - a) + (i - a)) * hw, zf + c * hw, (size_t)hw * sizeof(float));
    }
    free(fr);
    free(zf);
    rf_vae_stream_destroy(&st);
    return rc;
}

/* ---- warm-up measurement ----------------------------------------------------------- */

static double s_gauss(uint64_t *st)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        *st += 0x9E3779B97F4A7C15ull;
        uint64_t x = *st;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        x ^= x >> 31;
        u[i] = ((double)(x >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

int rf_vae_measure_warmup(rf_vae *vae, int h, int w, int max_w, uint64_t seed, double *max_abs,
                          int *w_8bit, int *w_1e3, rf_error *err)
{
    if (max_w < 0 || max_w > 4096)
        return rf_error_set(err, RF_EINVAL, "vae: max warm-up %d out of range", max_w);
    int64_t a = max_w + 1, b = a + 2, T = b, zd = vae->z_dim, hw = (int64_t)h * w;
    int64_t HW = hw * vae->dec.sf * vae->dec.sf;
    int64_t Fw = rf_vae_pixel_frames(vae, 0, T), Fs = rf_vae_pixel_frames(vae, a, b);
    float *z = malloc((size_t)(zd * T * hw) * sizeof(float));
    float *whole = malloc((size_t)(3 * Fw * HW) * sizeof(float));
    float *seg = malloc((size_t)(3 * Fs * HW) * sizeof(float));
    int rc = (!z || !whole || !seg) ? rf_error_set(err, RF_ENOMEM, "vae: out of memory") : 0;
    uint64_t st = seed;
    for (int64_t i = 0; !rc && i < zd * T * hw; i++)
        z[i] = (float)s_gauss(&st);
    if (!rc)
        rc = rf_vae_decode_segment(vae, z, T, h, w, 0, T, 0, whole, err);
    int64_t off = rf_vae_pixel_frames(vae, 0, a);
    for (int wu = 0; !rc && wu <= max_w; wu++) {
        if ((rc = rf_vae_decode_segment(vae, z, T, h, w, a, b, wu, seg, err)))
            break;
        double m = 0;
        for (int64_t c = 0; c < 3; c++)
            for (int64_t i = 0; i < Fs * HW; i++) {
                double d = fabs((double)seg[c * Fs * HW + i] - whole[(c * Fw + off) * HW + i]);
                m = d > m ? d : m;
            }
        max_abs[wu] = m;
    }
    if (!rc) {
        *w_8bit = *w_1e3 = -1;
        for (int wu = max_w; wu >= 0 && max_abs[wu] * 127.5 <= 1.0; wu--)
            *w_8bit = wu;
        for (int wu = max_w; wu >= 0 && max_abs[wu] <= 1e-3; wu--)
            *w_1e3 = wu;
    }
    free(z);
    free(whole);
    free(seg);
    return rc;
}
