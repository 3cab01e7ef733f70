/* model_set.c - the models a worker serves, loaded on first use, least recently used out.
 *
 * A small array: each model's folder and hash, its executor while loaded, and the tick of
 * its last use. See model_set.h for the contract; the set never loads anything until the
 * compute thread asks for a model.
 */
#include "model_set.h"

#include "log.h"
#include "model_id.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct s_model {
    char *dir; /* NULL: the sim executor's built-in model */
    char hash[65];
    rf_executor *ex;
    unsigned long long last_use;
} s_model;

struct rf_model_set {
    char backend[16];
    rf_model_loader load;
    void *lctx;
    int max_loaded, media;
    s_model models[RF_MODEL_SET_MAX];
    int n;
    unsigned long long tick;
};

rf_model_set *rf_model_set_new(const char *backend, rf_model_loader load, void *lctx,
                               int max_loaded, int media, rf_error *err)
{
    rf_model_set *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "out of memory"), NULL;
    snprintf(self->backend, sizeof(self->backend), "%s", backend);
    self->load = load;
    self->lctx = lctx;
    self->max_loaded = max_loaded < 1 ? 1 : max_loaded;
    self->media = media;
    return self;
}

void rf_model_set_destroy(rf_model_set **self)
{
    if (!self || !*self)
        return;
    for (int i = 0; i < (*self)->n; i++) {
        rf_executor_destroy(&(*self)->models[i].ex);
        free((*self)->models[i].dir);
    }
    free(*self);
    *self = NULL;
}

static int s_is_file(const char *dir, const char *name)
{
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A model folder has model.json, or the official layout's DiT config.json. */
static int s_is_model_folder(const char *dir)
{
    return s_is_file(dir, "model.json") || s_is_file(dir, "config.json");
}

static int s_push(rf_model_set *self, const char *dir, const char *hash, rf_error *err)
{
    for (int i = 0; i < self->n; i++)
        if (!strcmp(self->models[i].hash, hash))
            return 0; /* the same model twice (a copy, or named twice) */
    if (self->n == RF_MODEL_SET_MAX)
        return rf_error_set(err, RF_EINVAL, "more than %d models: serve fewer per worker",
                            RF_MODEL_SET_MAX);
    s_model *m = &self->models[self->n];
    memset(m, 0, sizeof(*m));
    if (dir && !(m->dir = strdup(dir)))
        return rf_error_set(err, RF_ENOMEM, "out of memory");
    snprintf(m->hash, sizeof(m->hash), "%s", hash);
    self->n++;
    return 0;
}

static int s_add_folder(rf_model_set *self, const char *dir, rf_error *err)
{
    rf_hash h;
    char hex[65];
    int rc = rf_model_hash(dir, &h, hex, err);
    if (rc)
        return rf_error_prefix(err, "model folder %s", dir);
    return s_push(self, dir, hex, err);
}

static int s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int rf_model_set_add(rf_model_set *self, const char *path, rf_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return rf_error_set(err, RF_ENOTFOUND, "%s: no such model folder or directory", path);
    if (!S_ISDIR(st.st_mode))
        return rf_error_set(err, RF_EINVAL,
                            "%s is not a directory: give a model folder or a directory of "
                            "model folders",
                            path);
    if (s_is_model_folder(path))
        return s_add_folder(self, path, err);
    DIR *d = opendir(path);
    if (!d)
        return rf_error_set(err, RF_EIO, "%s: cannot list it", path);
    char *names[RF_MODEL_SET_MAX + 1] = {0};
    int n = 0, rc = 0;
    struct dirent *e;
    char sub[PATH_MAX];
    while ((e = readdir(d)) != NULL && n <= RF_MODEL_SET_MAX) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && s_is_model_folder(sub) &&
            (names[n] = strdup(e->d_name)) != NULL)
            n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), s_cmp_names); /* a stable advertised order */
    for (int i = 0; i < n; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", path, names[i]);
        if (!rc)
            rc = s_add_folder(self, sub, err);
        free(names[i]);
    }
    if (!rc && n == 0)
        rc = rf_error_set(err, RF_ENOTFOUND,
                          "%s holds no model folder (a folder with model.json, or the official "
                          "Wan2.1 layout with config.json): give --model DIR for one model or "
                          "--models DIR for a directory of them",
                          path);
    return rc;
}

int rf_model_set_add_builtin(rf_model_set *self, const char *hash, rf_error *err)
{
    return s_push(self, NULL, hash, err);
}

int rf_model_set_add_loaded(rf_model_set *self, rf_executor *ex, rf_error *err)
{
    int n = self->n, rc = s_push(self, NULL, ex->model_hash, err);
    if (rc || self->n == n) {
        rf_executor_destroy(&ex);
        return rc;
    }
    self->models[n].ex = ex;
    self->models[n].last_use = ++self->tick;
    return 0;
}

int rf_model_set_count(const rf_model_set *self)
{
    return self->n;
}

const char *rf_model_set_hash(const rf_model_set *self, int i)
{
    return i >= 0 && i < self->n ? self->models[i].hash : NULL;
}

const char *rf_model_set_dir(const rf_model_set *self, int i)
{
    return i >= 0 && i < self->n ? self->models[i].dir : NULL;
}

static int s_find(const rf_model_set *self, const char *hash)
{
    if ((!hash || !*hash) && self->n == 1)
        return 0;
    for (int i = 0; hash && i < self->n; i++)
        if (!strcmp(self->models[i].hash, hash))
            return i;
    return -1;
}

int rf_model_set_has(const rf_model_set *self, const char *hash)
{
    return s_find(self, hash) >= 0;
}

const char *rf_model_set_backend(const rf_model_set *self)
{
    return self->backend;
}

int rf_model_set_encodes_media(const rf_model_set *self)
{
    return self->media;
}

int rf_model_set_loaded(const rf_model_set *self)
{
    int n = 0;
    for (int i = 0; i < self->n; i++)
        n += self->models[i].ex != NULL;
    return n;
}

rf_executor *rf_model_set_get(rf_model_set *self, const char *hash, rf_error *err)
{
    int i = s_find(self, hash);
    if (i < 0)
        return rf_error_set(err, RF_ENOTFOUND, "this worker does not serve model %.12s",
                            hash && *hash ? hash : "(none named)"),
               NULL;
    s_model *m = &self->models[i];
    m->last_use = ++self->tick;
    if (m->ex)
        return m->ex;
    while (rf_model_set_loaded(self) >= self->max_loaded) {
        s_model *lru = NULL;
        for (int k = 0; k < self->n; k++)
            if (self->models[k].ex && (!lru || self->models[k].last_use < lru->last_use))
                lru = &self->models[k];
        if (!lru)
            break;
        rf_log_kv(RF_LOG_INFO, "worker", "model unloaded (least recently used)",
                  "model=%.12s dir=%s loaded_max=%d", lru->hash, lru->dir ? lru->dir : "-",
                  self->max_loaded);
        rf_executor_destroy(&lru->ex);
    }
    m->ex = self->load(self->lctx, m->dir, m->hash, err);
    if (!m->ex)
        return rf_error_prefix(err, "loading model %s", m->dir ? m->dir : m->hash), NULL;
    rf_log_kv(RF_LOG_INFO, "worker", "model loaded", "model=%.12s dir=%s", m->hash,
              m->dir ? m->dir : "-");
    return m->ex;
}
