/* dit_load.c - reading a Wan DiT folder: config, naming form, shape checks, shards.
 *
 * First the configuration (config.json in either key set, or inferred from the shapes of
 * a repack), then a load plan: every tensor the model needs, with its expected full
 * shape and this rank's slice. The plan is checked completely (names, shapes, dtypes,
 * no extra blocks) before one weight buffer is allocated and filled. Nothing here runs
 * per forward.
 */
#include "dit_internal.h"

#include "log.h"
#include "safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NAME_CAP      160
#define REPACK_PREFIX "model.diffusion_model."

/* ---- names ---------------------------------------------------------------------- */

typedef struct {
    const char *official, *diffusers;
} s_rename;

/* Prefix rewrites from the official naming to the diffusers naming (WAN_SPEC.md §1). */
static const s_rename s_block_renames[] = {
    {"modulation", "scale_shift_table"},     {"self_attn.q.", "attn1.to_q."},
    {"self_attn.k.", "attn1.to_k."},         {"self_attn.v.", "attn1.to_v."},
    {"self_attn.o.", "attn1.to_out.0."},     {"self_attn.norm_q.", "attn1.norm_q."},
    {"self_attn.norm_k.", "attn1.norm_k."},  {"cross_attn.q.", "attn2.to_q."},
    {"cross_attn.k.", "attn2.to_k."},        {"cross_attn.v.", "attn2.to_v."},
    {"cross_attn.o.", "attn2.to_out.0."},    {"cross_attn.norm_q.", "attn2.norm_q."},
    {"cross_attn.norm_k.", "attn2.norm_k."}, {"norm3.", "norm2."},
    {"ffn.0.", "ffn.net.0.proj."},           {"ffn.2.", "ffn.net.2."},
};

static const s_rename s_top_renames[] = {
    {"time_embedding.0.", "condition_embedder.time_embedder.linear_1."},
    {"time_embedding.2.", "condition_embedder.time_embedder.linear_2."},
    {"text_embedding.0.", "condition_embedder.text_embedder.linear_1."},
    {"text_embedding.2.", "condition_embedder.text_embedder.linear_2."},
    {"time_projection.1.", "condition_embedder.time_proj."},
    {"head.modulation", "scale_shift_table"},
    {"head.head.", "proj_out."},
    {"patch_embedding.", "patch_embedding."},
};

/* Writes the file's name for canonical (official) name `canon` in form f. */
static void s_file_name(rf_dit_form f, const char *canon, char *out, size_t cap)
{
    if (f == RF_DIT_FORM_REPACK) {
        snprintf(out, cap, REPACK_PREFIX "%s", canon);
        return;
    }
    if (f == RF_DIT_FORM_DIFFUSERS) {
        int n, len = 0;
        if (sscanf(canon, "blocks.%d.%n", &n, &len) == 1 && len > 0) {
            const char *rest = canon + len;
            for (size_t i = 0; i < sizeof(s_block_renames) / sizeof(s_block_renames[0]); i++) {
                size_t pl = strlen(s_block_renames[i].official);
                if (!strncmp(rest, s_block_renames[i].official, pl)) {
                    snprintf(out, cap, "blocks.%d.%s%s", n, s_block_renames[i].diffusers,
                             rest + pl);
                    return;
                }
            }
        }
        for (size_t i = 0; i < sizeof(s_top_renames) / sizeof(s_top_renames[0]); i++) {
            size_t pl = strlen(s_top_renames[i].official);
            if (!strncmp(canon, s_top_renames[i].official, pl)) {
                snprintf(out, cap, "%s%s", s_top_renames[i].diffusers, canon + pl);
                return;
            }
        }
    }
    snprintf(out, cap, "%s", canon);
}

static const char *s_form_name(rf_dit_form f)
{
    return f == RF_DIT_FORM_REPACK      ? "single-file repack (model.diffusion_model.*)"
           : f == RF_DIT_FORM_DIFFUSERS ? "diffusers naming"
                                        : "official naming";
}

/* ---- config --------------------------------------------------------------------- */

static int s_json_int(json_t *root, const char *key, int64_t *out, int required, const char *path,
                      rf_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required)
            return rf_error_set(err, RF_EINVAL, "%s: missing key \"%s\"", path, key);
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return rf_error_set(err, RF_EINVAL, "%s: \"%s\" must be a positive integer", path, key);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int s_json_patch(json_t *root, const char *path, int64_t patch[3], rf_error *err)
{
    json_t *p = json_object_get(root, "patch_size");
    if (!p || json_is_null(p))
        return 0;
    if (!json_is_array(p) || json_array_size(p) != 3)
        return rf_error_set(err, RF_EINVAL, "%s: \"patch_size\" must be a list of 3 integers",
                            path);
    for (int i = 0; i < 3; i++) {
        json_t *e = json_array_get(p, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) <= 0)
            return rf_error_set(err, RF_EINVAL, "%s: \"patch_size\" must be a list of 3 integers",
                                path);
        patch[i] = (int64_t)json_integer_value(e);
    }
    return 0;
}

static void s_defaults(rf_dit_config *c)
{
    memset(c, 0, sizeof(*c));
    c->freq_dim = 256;
    c->in_dim = 16;
    c->out_dim = 16;
    c->text_len = 512;
    c->text_dim = 4096;
    c->patch[0] = 1, c->patch[1] = 2, c->patch[2] = 2;
    c->eps = 1e-6;
    c->rope_theta = 10000.0;
}

/* Parses config.json at path into c; sets c->form to OFFICIAL or DIFFUSERS. */
static int s_read_json(const char *path, rf_dit_config *c, rf_error *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return rf_error_set(err, RF_EINVAL, "%s: not valid JSON (line %d: %s)", path, je.line,
                            je.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = rf_error_set(err, RF_EINVAL, "%s: expected a JSON object", path);
        goto done;
    }
    if ((rc = s_json_patch(root, path, c->patch, err)))
        goto done;
    json_t *eps = json_object_get(root, "eps");
    if (eps && json_is_number(eps))
        c->eps = json_number_value(eps);
    if ((rc = s_json_int(root, "freq_dim", &c->freq_dim, 0, path, err)) ||
        (rc = s_json_int(root, "text_dim", &c->text_dim, 0, path, err)) ||
        (rc = s_json_int(root, "text_len", &c->text_len, 0, path, err)) ||
        (rc = s_json_int(root, "ffn_dim", &c->ffn_dim, 1, path, err)) ||
        (rc = s_json_int(root, "num_layers", &c->num_layers, 1, path, err)))
        goto done;
    if (json_object_get(root, "num_attention_heads")) {
        c->form = RF_DIT_FORM_DIFFUSERS;
        if ((rc = s_json_int(root, "num_attention_heads", &c->num_heads, 1, path, err)) ||
            (rc = s_json_int(root, "attention_head_dim", &c->head_dim, 1, path, err)) ||
            (rc = s_json_int(root, "in_channels", &c->in_dim, 0, path, err)) ||
            (rc = s_json_int(root, "out_channels", &c->out_dim, 0, path, err)))
            goto done;
        c->dim = c->num_heads * c->head_dim;
        const char *bad[] = {"image_dim", "added_kv_proj_dim"};
        for (int i = 0; i < 2; i++) {
            json_t *v = json_object_get(root, bad[i]);
            if (v && !json_is_null(v)) {
                rc = rf_error_set(err, RF_EUNSUPPORTED,
                                  "%s: \"%s\" is set: image-to-video models are not supported "
                                  "(text-to-video only)",
                                  path, bad[i]);
                goto done;
            }
        }
        json_t *qk = json_object_get(root, "qk_norm");
        if (qk && json_is_string(qk) && strcmp(json_string_value(qk), "rms_norm_across_heads")) {
            rc =
                rf_error_set(err, RF_EUNSUPPORTED,
                             "%s: qk_norm \"%s\" is not supported (Wan uses rms_norm_across_heads)",
                             path, json_string_value(qk));
            goto done;
        }
    } else {
        c->form = RF_DIT_FORM_OFFICIAL;
        if ((rc = s_json_int(root, "dim", &c->dim, 1, path, err)) ||
            (rc = s_json_int(root, "num_heads", &c->num_heads, 1, path, err)) ||
            (rc = s_json_int(root, "in_dim", &c->in_dim, 0, path, err)) ||
            (rc = s_json_int(root, "out_dim", &c->out_dim, 0, path, err)))
            goto done;
        if (c->dim % c->num_heads) {
            rc = rf_error_set(err, RF_EINVAL, "%s: dim %lld is not a multiple of num_heads %lld",
                              path, (long long)c->dim, (long long)c->num_heads);
            goto done;
        }
        c->head_dim = c->dim / c->num_heads;
        json_t *mt = json_object_get(root, "model_type");
        if (mt && json_is_string(mt) && strcmp(json_string_value(mt), "t2v")) {
            rc = rf_error_set(err, RF_EUNSUPPORTED,
                              "%s: model_type \"%s\" is not supported (text-to-video \"t2v\" only)",
                              path, json_string_value(mt));
            goto done;
        }
    }
    if (c->head_dim % 2) {
        rc = rf_error_set(err, RF_EINVAL, "%s: head_dim %lld must be even (rotary pairs)", path,
                          (long long)c->head_dim);
        goto done;
    }
    if (!(c->eps > 0) || c->freq_dim % 2) {
        rc = rf_error_set(err, RF_EINVAL, "%s: eps must be > 0 and freq_dim even", path);
        goto done;
    }
done:
    json_decref(root);
    return rc;
}

static int s_shape_of(const rf_safetensors *st, rf_dit_form f, const char *canon, int ndim,
                      int64_t *shape, rf_error *err)
{
    char name[NAME_CAP];
    s_file_name(f, canon, name, sizeof(name));
    const rf_st_tensor *t = rf_st_find(st, name);
    if (!t)
        return rf_error_set(err, RF_ENOTFOUND,
                            "tensor %s is missing (needed to infer the model's dimensions; "
                            "add a config.json or use a complete file)",
                            name);
    if (t->ndim != ndim)
        return rf_error_set(err, RF_ESHAPE, "tensor %s has %d dims, expected %d", name, t->ndim,
                            ndim);
    for (int i = 0; i < ndim; i++)
        shape[i] = t->shape[i];
    return 0;
}

/* Dims from shapes (repack form, or any form without a config), head_dim 128. */
static int s_infer(const rf_safetensors *st, rf_dit_form f, rf_dit_config *c, rf_error *err)
{
    int64_t pe[5] = {0}, t0[2] = {0}, f0[2] = {0}, hh[2] = {0}, te[2] = {0};
    int rc;
    if ((rc = s_shape_of(st, f, "patch_embedding.weight", 5, pe, err)) ||
        (rc = s_shape_of(st, f, "time_embedding.0.weight", 2, te, err)) ||
        (rc = s_shape_of(st, f, "text_embedding.0.weight", 2, t0, err)) ||
        (rc = s_shape_of(st, f, "blocks.0.ffn.0.weight", 2, f0, err)) ||
        (rc = s_shape_of(st, f, "head.head.weight", 2, hh, err)))
        return rc;
    c->dim = pe[0];
    c->in_dim = pe[1];
    c->patch[0] = pe[2], c->patch[1] = pe[3], c->patch[2] = pe[4];
    c->freq_dim = te[1];
    c->text_dim = t0[1];
    c->ffn_dim = f0[0];
    int64_t p = pe[2] * pe[3] * pe[4];
    if (p <= 0 || hh[0] % p)
        return rf_error_set(
            err, RF_ESHAPE,
            "head.head.weight has %lld rows, not a multiple of the patch volume %lld",
            (long long)hh[0], (long long)p);
    c->out_dim = hh[0] / p;
    c->head_dim = 128;
    if (c->dim % 128)
        return rf_error_set(err, RF_EINVAL,
                            "cannot infer the head count: dim %lld is not a multiple of head_dim "
                            "128; add a config.json with num_heads",
                            (long long)c->dim);
    c->num_heads = c->dim / 128;
    char canon[NAME_CAP], name[NAME_CAP];
    int64_t n = 0;
    for (;; n++) {
        snprintf(canon, sizeof(canon), "blocks.%lld.modulation", (long long)n);
        s_file_name(f, canon, name, sizeof(name));
        if (!rf_st_find(st, name))
            break;
    }
    c->num_layers = n;
    return 0;
}

static int s_is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Opens the weights and works out form + config. */
static rf_safetensors *s_open(const char *dir, rf_dit_config *c, rf_error *err)
{
    s_defaults(c);
    int have_json = 0;
    char path[4096];
    if (s_is_dir(dir)) {
        snprintf(path, sizeof(path), "%s/config.json", dir);
        struct stat sb;
        if (stat(path, &sb) == 0) {
            if (s_read_json(path, c, err))
                return NULL;
            have_json = 1;
        }
    }
    rf_safetensors *st = rf_st_open(dir, err);
    if (!st) {
        rf_error_prefix(err, "loading the DiT from %s", dir);
        return NULL;
    }
    rf_dit_form names = RF_DIT_FORM_OFFICIAL;
    if (rf_st_find(st, REPACK_PREFIX "patch_embedding.weight"))
        names = RF_DIT_FORM_REPACK;
    else if (rf_st_find(st, "condition_embedder.time_proj.weight") ||
             rf_st_find(st, "proj_out.weight"))
        names = RF_DIT_FORM_DIFFUSERS;
    if (have_json && names != RF_DIT_FORM_REPACK && names != c->form) {
        rf_error_set(err, RF_EINVAL,
                     "%s/config.json uses the %s keys but the weights use the %s; they must match",
                     dir, c->form == RF_DIT_FORM_DIFFUSERS ? "diffusers" : "official",
                     s_form_name(names));
        rf_st_destroy(&st);
        return NULL;
    }
    c->form = names;
    if (!have_json && s_infer(st, names, c, err)) {
        rf_error_prefix(err, "%s (%s, no config.json)", dir, s_form_name(names));
        rf_st_destroy(&st);
        return NULL;
    }
    if (c->num_layers < 1 || c->dim < 1) {
        rf_error_set(err, RF_EINVAL, "%s: no transformer blocks found", dir);
        rf_st_destroy(&st);
        return NULL;
    }
    return st;
}

int rf_dit_read_config(const char *dir, rf_dit_config *out, rf_error *err)
{
    rf_safetensors *st = s_open(dir, out, err);
    if (!st)
        return err ? (int)err->code : RF_EINVAL;
    rf_st_destroy(&st);
    return 0;
}

int rf_dit_valid_tp_degrees(const rf_dit_config *c, int *out, int cap)
{
    int n = 0;
    for (int64_t d = 1; d <= c->num_heads; d++)
        if (c->num_heads % d == 0 && c->ffn_dim % d == 0 && n < cap)
            out[n++] = (int)d;
    return n;
}

/* ---- the load plan ------------------------------------------------------------------ */

typedef enum { S_KEEP = 0, S_F32 } s_conv;

typedef struct {
    rf_tensor *dst;
    char canon[NAME_CAP];
    int ndim;
    int64_t shape[5]; /* full shape in the file */
    int split;        /* -1 none, 0 rows (dim 0), 1 columns (dim 1) */
    s_conv conv;
    int as_2d; /* store as [ne0, prod(rest)] (patch embedding) */
    const rf_st_tensor *src;
} s_item;

typedef struct {
    s_item *items;
    int n, cap;
} s_plan;

static int s_add(s_plan *p, rf_tensor *dst, const char *canon, int ndim, const int64_t *shape,
                 int split, s_conv conv)
{
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        s_item *it = realloc(p->items, sizeof(*it) * (size_t)cap);
        if (!it)
            return RF_ENOMEM;
        p->items = it;
        p->cap = cap;
    }
    s_item *it = &p->items[p->n++];
    memset(it, 0, sizeof(*it));
    it->dst = dst;
    snprintf(it->canon, sizeof(it->canon), "%s", canon);
    it->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        it->shape[i] = shape[i];
    it->split = split;
    it->conv = conv;
    return 0;
}

/* A linear layer: weight [out, in] (+ bias [out] unless no_bias). split 0 = by output
 * rows (bias split too), 1 = by input columns (bias only on rank 0). */
static int s_add_lin(s_plan *p, rf_dit_lin *l, const char *prefix, int64_t out, int64_t in,
                     int split, int bias_here)
{
    char name[NAME_CAP];
    int64_t ws[2] = {out, in};
    snprintf(name, sizeof(name), "%s.weight", prefix);
    int rc = s_add(p, &l->w, name, 2, ws, split, S_KEEP);
    if (rc || !bias_here)
        return rc;
    snprintf(name, sizeof(name), "%s.bias", prefix);
    return s_add(p, &l->b, name, 1, &out, split == 0 ? 0 : -1, S_F32);
}

static int s_build_plan(rf_dit *d, s_plan *p)
{
    const rf_dit_config *c = &d->cfg;
    int64_t dim = c->dim, P = c->patch[0] * c->patch[1] * c->patch[2];
    int tp = d->size > 1, r0 = d->rank == 0;
    int rc = 0;
    int64_t pe[5] = {dim, c->in_dim, c->patch[0], c->patch[1], c->patch[2]};
    rc |= s_add(p, &d->patch.w, "patch_embedding.weight", 5, pe, -1, S_KEEP);
    p->items[p->n - 1].as_2d = 1;
    rc |= s_add(p, &d->patch.b, "patch_embedding.bias", 1, &dim, -1, S_F32);
    rc |= s_add_lin(p, &d->text0, "text_embedding.0", dim, c->text_dim, tp ? 0 : -1, 1);
    rc |= s_add_lin(p, &d->text2, "text_embedding.2", dim, dim, tp ? 1 : -1, r0);
    rc |= s_add_lin(p, &d->time0, "time_embedding.0", dim, c->freq_dim, tp ? 0 : -1, 1);
    rc |= s_add_lin(p, &d->time2, "time_embedding.2", dim, dim, tp ? 1 : -1, r0);
    rc |= s_add_lin(p, &d->tproj, "time_projection.1", 6 * dim, dim, tp ? 0 : -1, 1);
    int64_t hm[3] = {1, 2, dim}, bm[3] = {1, 6, dim};
    rc |= s_add(p, &d->head_mod, "head.modulation", 3, hm, -1, S_F32);
    rc |= s_add_lin(p, &d->head, "head.head", c->out_dim * P, dim, -1, 1);
    for (int64_t l = 0; l < c->num_layers && !rc; l++) {
        rf_dit_block *b = &d->blocks[l];
        char pre[NAME_CAP], name[NAME_CAP];
        int sp0 = tp ? 0 : -1, sp1 = tp ? 1 : -1;
        snprintf(name, sizeof(name), "blocks.%lld.modulation", (long long)l);
        rc |= s_add(p, &b->mod, name, 3, bm, -1, S_F32);
        const char *att[2] = {"self_attn", "cross_attn"};
        for (int a = 0; a < 2; a++) {
            rf_dit_lin *q = a ? &b->ca_q : &b->sa_q, *k = a ? &b->ca_k : &b->sa_k;
            rf_dit_lin *v = a ? &b->ca_v : &b->sa_v, *o = a ? &b->ca_o : &b->sa_o;
            snprintf(pre, sizeof(pre), "blocks.%lld.%s.q", (long long)l, att[a]);
            rc |= s_add_lin(p, q, pre, dim, dim, sp0, 1);
            snprintf(pre, sizeof(pre), "blocks.%lld.%s.k", (long long)l, att[a]);
            rc |= s_add_lin(p, k, pre, dim, dim, sp0, 1);
            snprintf(pre, sizeof(pre), "blocks.%lld.%s.v", (long long)l, att[a]);
            rc |= s_add_lin(p, v, pre, dim, dim, sp0, 1);
            snprintf(pre, sizeof(pre), "blocks.%lld.%s.o", (long long)l, att[a]);
            rc |= s_add_lin(p, o, pre, dim, dim, sp1, r0);
            snprintf(name, sizeof(name), "blocks.%lld.%s.norm_q.weight", (long long)l, att[a]);
            rc |= s_add(p, a ? &b->ca_nq : &b->sa_nq, name, 1, &dim, sp0, S_F32);
            snprintf(name, sizeof(name), "blocks.%lld.%s.norm_k.weight", (long long)l, att[a]);
            rc |= s_add(p, a ? &b->ca_nk : &b->sa_nk, name, 1, &dim, sp0, S_F32);
        }
        snprintf(name, sizeof(name), "blocks.%lld.norm3.weight", (long long)l);
        rc |= s_add(p, &b->n3_w, name, 1, &dim, -1, S_F32);
        snprintf(name, sizeof(name), "blocks.%lld.norm3.bias", (long long)l);
        rc |= s_add(p, &b->n3_b, name, 1, &dim, -1, S_F32);
        snprintf(pre, sizeof(pre), "blocks.%lld.ffn.0", (long long)l);
        rc |= s_add_lin(p, &b->ffn1, pre, c->ffn_dim, dim, sp0, 1);
        snprintf(pre, sizeof(pre), "blocks.%lld.ffn.2", (long long)l);
        rc |= s_add_lin(p, &b->ffn2, pre, dim, c->ffn_dim, sp1, r0);
    }
    return rc ? RF_ENOMEM : 0;
}

/* This rank's stored shape of item it (after split and 2-D flattening). */
static void s_local_shape(const rf_dit *d, const s_item *it, int *ndim, int64_t *shape)
{
    *ndim = it->ndim;
    for (int i = 0; i < it->ndim; i++)
        shape[i] = it->shape[i];
    if (it->split >= 0)
        shape[it->split] /= d->size;
    if (it->as_2d) {
        int64_t rest = 1;
        for (int i = 1; i < it->ndim; i++)
            rest *= shape[i];
        shape[1] = rest;
        *ndim = 2;
    }
    if (it->conv == S_F32 && it->ndim == 3 && it->shape[0] == 1) { /* modulation [1,M,dim] */
        shape[0] = it->shape[1] * it->shape[2];
        *ndim = 1;
    }
}

/* Biases, norms and tables are F32; matrices keep the file's dtype (F32 for F64) unless
 * the backend multiplies in another one (the CUDA backend: BF16), then they become that. */
static rf_dtype s_store_dtype(const rf_dit *d, const s_item *it)
{
    if (it->conv == S_F32)
        return RF_DTYPE_F32;
    rf_dtype dt = it->src->dtype;
    dt = dt == RF_DTYPE_BF16 || dt == RF_DTYPE_F16 ? dt : RF_DTYPE_F32;
    return rf_backend_matrix_dtype(d->be, dt);
}

/* Copies rows [0, rows) x cols [c0, c0+nc) of a [rows, cols] source into dst (packed),
 * converting to the destination dtype. */
static int s_copy_block(void *dst, rf_dtype ddt, const rf_st_tensor *src, int64_t rows,
                        int64_t cols, int64_t r0, int64_t c0, int64_t nr, int64_t nc)
{
    size_t ses = rf_dtype_size(src->dtype), des = rf_dtype_size(ddt);
    (void)rows;
    for (int64_t r = 0; r < nr; r++) {
        const char *s =
            (const char *)src->data + ((size_t)(r0 + r) * (size_t)cols + (size_t)c0) * ses;
        void *o = (char *)dst + (size_t)r * (size_t)nc * des;
        if (ddt == src->dtype) {
            memcpy(o, s, (size_t)nc * des);
        } else if (ddt == RF_DTYPE_F32) {
            if (rf_convert_to_f32(o, s, src->dtype, (size_t)nc) != 0)
                return -1;
        } else if (ddt == RF_DTYPE_BF16) { /* through f32, one element at a time */
            float one;
            for (int64_t i = 0; i < nc; i++) {
                if (rf_convert_to_f32(&one, s + (size_t)i * ses, src->dtype, 1) != 0)
                    return -1;
                ((uint16_t *)o)[i] = rf_f32_to_bf16(one);
            }
        } else {
            return -1;
        }
    }
    return 0;
}

static int s_fill_item(rf_dit *d, const s_item *it, void *stage, rf_error *err)
{
    const rf_st_tensor *src = it->src;
    int64_t rows = it->shape[0], cols = 1;
    for (int i = 1; i < it->ndim; i++)
        cols *= it->shape[i];
    if (it->ndim == 1)
        rows = 1, cols = it->shape[0];
    int64_t r0 = 0, nr = rows, c0 = 0, nc = cols;
    if (it->split == 0 && it->ndim >= 2) {
        nr = rows / d->size;
        r0 = nr * d->rank;
    } else if (it->split == 0 && it->ndim == 1) {
        nc = cols / d->size;
        c0 = nc * d->rank;
    } else if (it->split == 1) {
        nc = cols / d->size;
        c0 = nc * d->rank;
    }
    /* Staged in host memory, then uploaded: backend memory may be a GPU's. */
    if (s_copy_block(stage, it->dst->dtype, src, rows, cols, r0, c0, nr, nc))
        return rf_error_set(err, RF_ESHAPE, "tensor %s: cannot convert dtype %s to %s", src->name,
                            rf_dtype_name(src->dtype), rf_dtype_name(it->dst->dtype));
    return rf_tensor_upload(d->be, it->dst, stage, rf_tensor_nbytes(it->dst), err);
}

rf_dit *rf_dit_load(const char *dir, rf_backend *be, const rf_dit_load_opts *opts, rf_error *err)
{
    rf_dit *d = calloc(1, sizeof(*d));
    if (!d) {
        rf_error_set(err, RF_ENOMEM, "loading the DiT: out of memory");
        return NULL;
    }
    s_plan plan = {0};
    void *stage = NULL;
    rf_safetensors *st = s_open(dir, &d->cfg, err);
    if (!st)
        goto fail;
    const rf_dit_config *c = &d->cfg;
    d->be = be;
    d->rank = opts ? opts->tp_rank : 0;
    d->size = opts && opts->tp_size > 0 ? opts->tp_size : 1;
    d->comm = opts ? opts->comm : NULL;
    if (d->size > 1 && (c->num_heads % d->size || c->ffn_dim % d->size)) {
        int deg[64];
        int n = rf_dit_valid_tp_degrees(c, deg, 64);
        char list[512] = "";
        size_t len = 0;
        for (int i = 0; i < n && len < sizeof(list); i++)
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d", i ? ", " : "", deg[i]);
        rf_error_set(err, RF_EINVAL,
                     "tensor parallel degree %d does not divide the %lld heads and the FFN width "
                     "%lld of %s; valid degrees: %s",
                     d->size, (long long)c->num_heads, (long long)c->ffn_dim, dir, list);
        goto fail;
    }
    if (d->rank < 0 || d->rank >= d->size || (d->size > 1 && !d->comm)) {
        rf_error_set(err, RF_EINVAL, "tensor parallel rank %d of %d needs a communicator", d->rank,
                     d->size);
        goto fail;
    }
    d->dim_l = c->dim / d->size;
    d->ffn_l = c->ffn_dim / d->size;
    d->heads_l = c->num_heads / d->size;
    d->blocks = calloc((size_t)c->num_layers, sizeof(*d->blocks));
    if (!d->blocks || s_build_plan(d, &plan)) {
        rf_error_set(err, RF_ENOMEM, "loading the DiT: out of memory");
        goto fail;
    }
    /* A block past num_layers means the config contradicts the weights. */
    char canon[NAME_CAP], name[NAME_CAP];
    snprintf(canon, sizeof(canon), "blocks.%lld.modulation", (long long)c->num_layers);
    s_file_name(c->form, canon, name, sizeof(name));
    if (rf_st_find(st, name)) {
        rf_error_set(err, RF_ESHAPE,
                     "%s: the config says %lld layers but the weights hold tensor %s; the config "
                     "does not match these weights",
                     dir, (long long)c->num_layers, name);
        goto fail;
    }
    size_t total = 0, stage_bytes = 0;
    for (int i = 0; i < plan.n; i++) {
        s_item *it = &plan.items[i];
        s_file_name(c->form, it->canon, name, sizeof(name));
        if (rf_st_expect(st, name, it->ndim, it->shape, &it->src, err)) {
            rf_error_prefix(err, "%s (%s)", dir, s_form_name(c->form));
            goto fail;
        }
        rf_dtype dt = it->src->dtype;
        if (dt != RF_DTYPE_F32 && dt != RF_DTYPE_BF16 && dt != RF_DTYPE_F16 && dt != RF_DTYPE_F64) {
            rf_error_set(err, RF_ESHAPE, "%s: tensor %s has dtype %s; expected F32, BF16 or F16",
                         dir, name, rf_dtype_name(dt));
            goto fail;
        }
        int nd;
        int64_t sh[5];
        s_local_shape(d, it, &nd, sh);
        size_t tb = rf_arena_tensor_bytes(s_store_dtype(d, it), nd, sh);
        total += tb;
        stage_bytes = tb > stage_bytes ? tb : stage_bytes;
    }
    d->wbuf = rf_buffer_new(be, total, err);
    if (!d->wbuf)
        goto fail;
    if (!(stage = malloc(stage_bytes ? stage_bytes : 1))) {
        rf_error_set(err, RF_ENOMEM, "loading the DiT: out of host memory for a %zu-byte tensor",
                     stage_bytes);
        goto fail;
    }
    size_t off = 0;
    for (int i = 0; i < plan.n; i++) {
        s_item *it = &plan.items[i];
        int nd;
        int64_t sh[5];
        s_local_shape(d, it, &nd, sh);
        rf_dtype dt = s_store_dtype(d, it);
        rf_tensor_init(it->dst, dt, nd, sh, (char *)d->wbuf->data + off, d->wbuf);
        off += rf_arena_tensor_bytes(dt, nd, sh);
        if (s_fill_item(d, it, stage, err))
            goto fail;
    }
    d->wbytes = total;
    free(stage);
    free(plan.items);
    rf_st_destroy(&st);
    RF_DEBUG("dit", "loaded %s: dim %lld, %lld layers, tp %d/%d, %zu weight bytes", dir,
             (long long)c->dim, (long long)c->num_layers, d->rank, d->size, total);
    return d;
fail:
    free(stage);
    free(plan.items);
    rf_st_destroy(&st);
    rf_dit_destroy(&d);
    return NULL;
}

void rf_dit_destroy(rf_dit **d)
{
    if (!d || !*d)
        return;
    rf_arena_destroy(&(*d)->arena);
    rf_buffer_destroy(&(*d)->wbuf);
    free((*d)->blocks);
    free((*d)->rope_host);
    free((*d)->tsin_host);
    free(*d);
    *d = NULL;
}

const rf_dit_config *rf_dit_get_config(const rf_dit *d)
{
    return &d->cfg;
}

size_t rf_dit_weight_bytes(const rf_dit *d)
{
    return d->wbytes;
}
