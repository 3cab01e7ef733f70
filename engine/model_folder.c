/* model_folder.c - model.json, or the official file names, into rf_model_folder.
 *
 * Collects every problem before failing so a user fixes a folder in one go. Paths in
 * model.json may not escape the folder (no absolute paths, no ".."): a model folder
 * is a self-contained unit that workers copy and hash.
 */
#include "model_folder.h"

#include "spec.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void rf_model_defaults_wan21(rf_model_defaults *d)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->sampler, sizeof(d->sampler), "unipc");
    d->steps = 50;
    d->shift = 5.0;
    d->guidance = 5.0;
    d->width = 832;
    d->height = 480;
    d->frames = 81;
    d->fps = 16;
    snprintf(d->negative, sizeof(d->negative), "%s", rf_spec_wan21_negative());
}

static int s_exists(const char *path, int want_dir)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return 0;
    return want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode);
}

/* Appends "; " + text to the collected problems. */
static void s_problem(char *buf, size_t cap, const char *text)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%s", n ? "; " : "", text);
}

static int s_join(char *out, size_t cap, const char *dir, const char *rel)
{
    return snprintf(out, cap, "%s/%s", dir, rel) >= (int)cap ? -1 : 0;
}

static int s_safe_rel(const char *rel)
{
    if (!rel || !*rel || rel[0] == '/')
        return 0;
    for (const char *p = rel; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == rel || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
            return 0;
    return 1;
}

/* A piece named in model.json: key -> absolute path, checked. */
static void s_piece(json_t *root, const char *key, const char *dir, char *out, size_t cap,
                    int want_dir_ok, char *problems, size_t pcap)
{
    json_t *v = json_object_get(root, key);
    char msg[PATH_MAX + 200];
    if (!v) {
        snprintf(msg, sizeof(msg), "model.json has no \"%s\"", key);
        s_problem(problems, pcap, msg);
        return;
    }
    const char *rel = json_string_value(v);
    if (!s_safe_rel(rel)) {
        snprintf(msg, sizeof(msg),
                 "model.json \"%s\" must be a relative path inside the folder, got %s", key,
                 rel ? rel : "a non-string");
        s_problem(problems, pcap, msg);
        return;
    }
    if (s_join(out, cap, dir, rel) != 0 ||
        !(s_exists(out, 0) || (want_dir_ok && s_exists(out, 1)))) {
        snprintf(msg, sizeof(msg), "model.json \"%s\": %s does not exist", key, out);
        s_problem(problems, pcap, msg);
    }
}

static void s_defaults(json_t *d, rf_model_defaults *out, char *problems, size_t pcap)
{
    if (!d)
        return;
    if (!json_is_object(d)) {
        s_problem(problems, pcap, "model.json \"defaults\" must be an object");
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(d, key, v)
    {
        char msg[256];
        int ok = 1;
        if (!strcmp(key, "sampler")) {
            const char *s = json_string_value(v);
            ok = s && (!strcmp(s, "unipc") || !strcmp(s, "euler") || !strcmp(s, "dpm++"));
            if (ok)
                snprintf(out->sampler, sizeof(out->sampler), "%s", s);
        } else if (!strcmp(key, "negative")) {
            const char *s = json_string_value(v);
            ok = s != NULL;
            if (ok)
                snprintf(out->negative, sizeof(out->negative), "%s", s);
        } else if (!strcmp(key, "shift") || !strcmp(key, "guidance")) {
            ok = json_is_number(v) && json_number_value(v) >= 0;
            if (ok)
                *(!strcmp(key, "shift") ? &out->shift : &out->guidance) = json_number_value(v);
        } else if (!strcmp(key, "steps") || !strcmp(key, "width") || !strcmp(key, "height") ||
                   !strcmp(key, "frames") || !strcmp(key, "fps")) {
            ok = json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 100000;
            int *dst = !strcmp(key, "steps")    ? &out->steps
                       : !strcmp(key, "width")  ? &out->width
                       : !strcmp(key, "height") ? &out->height
                       : !strcmp(key, "frames") ? &out->frames
                                                : &out->fps;
            if (ok)
                *dst = (int)json_integer_value(v);
        } else {
            snprintf(msg, sizeof(msg), "model.json defaults: unknown key \"%s\"", key);
            s_problem(problems, pcap, msg);
            continue;
        }
        if (!ok) {
            snprintf(msg, sizeof(msg), "model.json defaults.%s has an invalid value", key);
            s_problem(problems, pcap, msg);
        }
    }
}

static int s_read_json(const char *dir, const char *path, rf_model_folder *out, rf_error *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return rf_error_set(err, RF_EINVAL, "%s:%d: not a valid JSON object: %s", path, jerr.line,
                            jerr.text);
    }
    char problems[RF_ERROR_MSG_MAX] = "";
    const char *name = json_string_value(json_object_get(root, "name"));
    if (name)
        snprintf(out->name, sizeof(out->name), "%s", name);
    s_piece(root, "dit", dir, out->dit, sizeof(out->dit), 1, problems, sizeof(problems));
    s_piece(root, "vae", dir, out->vae, sizeof(out->vae), 0, problems, sizeof(problems));
    s_piece(root, "t5", dir, out->t5, sizeof(out->t5), 0, problems, sizeof(problems));
    s_piece(root, "tokenizer", dir, out->tokenizer, sizeof(out->tokenizer), 0, problems,
            sizeof(problems));
    s_defaults(json_object_get(root, "defaults"), &out->defaults, problems, sizeof(problems));
    json_t *w = json_object_get(root, "decode_warmup");
    if (w) {
        if (json_is_integer(w) && json_integer_value(w) >= 0 && json_integer_value(w) < 1000)
            out->decode_warmup = (int)json_integer_value(w);
        else
            s_problem(problems, sizeof(problems),
                      "model.json decode_warmup must be an integer in [0, 1000)");
    }
    json_decref(root);
    if (problems[0])
        return rf_error_set(err, RF_EINVAL, "model folder %s: %s", dir, problems);
    return 0;
}

static int s_read_official(const char *dir, rf_model_folder *out, rf_error *err)
{
    char problems[RF_ERROR_MSG_MAX] = "";
    char p[PATH_MAX + 64], msg[PATH_MAX + 300];
    const char *base = strrchr(dir, '/');
    snprintf(out->name, sizeof(out->name), "%s", base && base[1] ? base + 1 : dir);
    snprintf(out->dit, sizeof(out->dit), "%s", dir);
    snprintf(p, sizeof(p), "%s/config.json", dir);
    char st[PATH_MAX + 64], idx[PATH_MAX + 64];
    snprintf(st, sizeof(st), "%s/diffusion_pytorch_model.safetensors", dir);
    snprintf(idx, sizeof(idx), "%s/diffusion_pytorch_model.safetensors.index.json", dir);
    if (!s_exists(p, 0) || !(s_exists(st, 0) || s_exists(idx, 0))) {
        snprintf(msg, sizeof(msg),
                 "no DiT: expected config.json and diffusion_pytorch_model.safetensors (or its "
                 "sharded index), or a model.json naming the pieces");
        s_problem(problems, sizeof(problems), msg);
    }
    static const struct {
        const char *file, *pth, *what;
        size_t off;
    } pieces[] = {
        {"Wan2.1_VAE.safetensors", "Wan2.1_VAE.pth", "VAE", offsetof(rf_model_folder, vae)},
        {"models_t5_umt5-xxl-enc-bf16.safetensors", "models_t5_umt5-xxl-enc-bf16.pth",
         "text encoder", offsetof(rf_model_folder, t5)},
    };
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        char *dst = (char *)out + pieces[i].off;
        snprintf(dst, PATH_MAX, "%s/%s", dir, pieces[i].file);
        if (s_exists(dst, 0))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, pieces[i].pth);
        if (s_exists(p, 0))
            snprintf(msg, sizeof(msg),
                     "the %s is still the release's %s: convert it with "
                     "`/usr/bin/python3 tools/convert/convert.py %s`",
                     pieces[i].what, pieces[i].pth, dir);
        else
            snprintf(msg, sizeof(msg), "no %s: expected %s (or a model.json naming it)",
                     pieces[i].what, pieces[i].file);
        s_problem(problems, sizeof(problems), msg);
    }
    snprintf(out->tokenizer, sizeof(out->tokenizer), "%s/google/umt5-xxl/spiece.model", dir);
    if (!s_exists(out->tokenizer, 0))
        s_problem(problems, sizeof(problems),
                  "no tokenizer: expected google/umt5-xxl/spiece.model (the umT5 SentencePiece "
                  "model of the release) or a model.json naming it");
    if (problems[0])
        return rf_error_set(err, RF_ENOTFOUND, "model folder %s: %s", dir, problems);
    return 0;
}

int rf_model_folder_read(const char *dir, rf_model_folder *out, rf_error *err)
{
    memset(out, 0, sizeof(*out));
    if (!s_exists(dir, 1))
        return rf_error_set(err, RF_ENOTFOUND, "model folder %s does not exist", dir);
    snprintf(out->dir, sizeof(out->dir), "%s", dir);
    rf_model_defaults_wan21(&out->defaults);
    out->decode_warmup = -1;
    char mj[PATH_MAX + 16];
    snprintf(mj, sizeof(mj), "%s/model.json", dir);
    if (s_exists(mj, 0))
        return s_read_json(dir, mj, out, err);
    return s_read_official(dir, out, err);
}
