/* model_id.c - the content hash of a model folder (see model_id.h for the definition).
 *
 * Collects (relative path, file digest) pairs with a bounded recursive walk, sorts them
 * by path and hashes the list. Files are hashed streamed (constant memory); the walk
 * never follows a directory symlink into a loop deeper than RF_MODEL_ID_MAX_DEPTH.
 */
#include "model_id.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct s_entry {
    char *rel;
    rf_hash digest;
} s_entry;

typedef struct s_walk {
    const char *root;
    s_entry *items;
    size_t n, cap;
} s_walk;

static int s_cmp(const void *a, const void *b)
{
    return strcmp(((const s_entry *)a)->rel, ((const s_entry *)b)->rel);
}

static int s_add(s_walk *w, const char *rel, rf_error *err)
{
    if (w->n >= RF_MODEL_ID_MAX_FILES)
        return rf_error_set(err, RF_EINVAL,
                            "model folder %s holds more than %d files; point the model at the "
                            "folder of one model",
                            w->root, RF_MODEL_ID_MAX_FILES);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        s_entry *p = realloc(w->items, cap * sizeof(*p));
        if (!p)
            return rf_error_set(err, RF_ENOMEM, "out of memory hashing %s", w->root);
        w->items = p;
        w->cap = cap;
    }
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", w->root, rel) >= (int)sizeof(path))
        return rf_error_set(err, RF_EINVAL, "path too long under %s", w->root);
    s_entry *e = &w->items[w->n];
    e->rel = strdup(rel);
    if (!e->rel)
        return rf_error_set(err, RF_ENOMEM, "out of memory hashing %s", w->root);
    int rc = rf_blake2b_file(path, &e->digest, err);
    if (rc) {
        free(e->rel);
        return rc;
    }
    w->n++;
    return 0;
}

static int s_walk_dir(s_walk *w, const char *rel, int depth, rf_error *err)
{
    if (depth > RF_MODEL_ID_MAX_DEPTH)
        return rf_error_set(err, RF_EINVAL, "model folder %s nests deeper than %d levels at %s",
                            w->root, RF_MODEL_ID_MAX_DEPTH, rel);
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s%s%s", w->root, *rel ? "/" : "", rel) >= (int)sizeof(path))
        return rf_error_set(err, RF_EINVAL, "path too long under %s", w->root);
    DIR *d = opendir(path);
    if (!d)
        return rf_error_set(err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO,
                            "cannot read the model folder %s: %s", path, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char sub[PATH_MAX], full[PATH_MAX];
        if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
                (int)sizeof(sub) ||
            snprintf(full, sizeof(full), "%s/%s", path, de->d_name) >= (int)sizeof(full)) {
            rc = rf_error_set(err, RF_EINVAL, "path too long under %s", w->root);
            break;
        }
        struct stat st;
        if (stat(full, &st) != 0)
            continue; /* a dangling symlink is not part of the model */
        if (S_ISREG(st.st_mode))
            rc = s_add(w, sub, err);
        else if (S_ISDIR(st.st_mode))
            rc = s_walk_dir(w, sub, depth + 1, err);
    }
    closedir(d);
    return rc;
}

int rf_model_hash(const char *dir, rf_hash *out, char *hex, rf_error *err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return rf_error_set(err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO, "model folder %s: %s",
                            dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return rf_error_set(err, RF_EINVAL, "model %s is not a folder; give the model's folder",
                            dir);
    s_walk w = {.root = dir};
    int rc = s_walk_dir(&w, "", 0, err);
    if (!rc && w.n == 0)
        rc = rf_error_set(err, RF_EINVAL, "model folder %s holds no file", dir);
    if (!rc) {
        qsort(w.items, w.n, sizeof(*w.items), s_cmp);
        rf_blake2b_stream *bs = rf_blake2b_stream_new();
        if (!bs) {
            rc = rf_error_set(err, RF_ENOMEM, "out of memory hashing %s", dir);
        } else {
            for (size_t i = 0; i < w.n; i++) {
                rf_blake2b_stream_update(bs, w.items[i].rel, strlen(w.items[i].rel) + 1);
                rf_blake2b_stream_update(bs, w.items[i].digest.bytes, RF_HASH_BYTES);
            }
            rf_blake2b_stream_final(bs, out);
            rf_blake2b_stream_destroy(&bs);
            if (hex)
                rf_hash_to_hex(out, hex);
        }
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.items[i].rel);
    free(w.items);
    return rc;
}
