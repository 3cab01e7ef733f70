/* safetensors.c - mmap reader (single files, sharded sets) and atomic writer.
 *
 * The reader checks everything before handing out a pointer: header length against
 * RF_ST_MAX_HEADER and the file size, the header with jansson (duplicate keys refused),
 * each entry's dtype, shape (0 <= dim, product x size without overflow == byte length)
 * and offsets. Like the format's reference implementation we require the entries,
 * sorted by begin, to tile the data section exactly: no overlap, no gap, nothing after
 * the last tensor (holes would let a file carry unindexed bytes). It must never read a
 * byte of the mapping that a checked entry does not cover.
 */
#include "safetensors.h"

#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct s_shard {
    char *path;
    void *map;
    size_t len;
} s_shard;

typedef struct s_entry {
    rf_st_tensor t;
    size_t shard;
    uint64_t begin, end; /* offsets in the data section, used while validating */
} s_entry;

struct rf_safetensors {
    s_shard *shards;
    size_t nshards;
    s_entry *entries;
    size_t count, cap;
    size_t *by_name; /* entry indices sorted by name */
    char **meta;     /* key, value, key, value, ... */
    size_t nmeta;
};

static char *s_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static int s_has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void s_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

/* ---- reader ---------------------------------------------------------------------- */

static const s_shard *s_shard_of(const rf_safetensors *self, const rf_st_tensor *t)
{
    const s_entry *e = (const s_entry *)t; /* t is the first member of its entry */
    return &self->shards[e->shard];
}

static int s_add_meta(rf_safetensors *self, const char *key, const char *value)
{
    for (size_t i = 0; i < self->nmeta; i++)
        if (strcmp(self->meta[2 * i], key) == 0)
            return 0; /* first occurrence wins (sharded sets repeat keys) */
    char **m = realloc(self->meta, (self->nmeta + 1) * 2 * sizeof(*m));
    if (!m)
        return -1;
    self->meta = m;
    m[2 * self->nmeta] = s_strdup(key);
    m[2 * self->nmeta + 1] = s_strdup(value);
    self->nmeta++;
    if (!m[2 * self->nmeta - 2] || !m[2 * self->nmeta - 1])
        return -1;
    return 0;
}

static int s_entry_push(rf_safetensors *self, s_entry **out)
{
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        s_entry *e = realloc(self->entries, cap * sizeof(*e));
        if (!e)
            return -1;
        self->entries = e;
        self->cap = cap;
    }
    *out = &self->entries[self->count++];
    memset(*out, 0, sizeof(**out));
    return 0;
}

static int s_cmp_begin(const void *a, const void *b)
{
    const s_entry *x = *(const s_entry *const *)a, *y = *(const s_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* A non-negative JSON integer (not a real, not a string). */
static int s_json_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Parses one tensor entry of shard si's header into a new entry. */
static int s_parse_entry(rf_safetensors *self, size_t si, const char *name, const json_t *obj,
                         uint64_t data_len, rf_error *err)
{
    const char *path = self->shards[si].path;
    if (!json_is_object(obj))
        return rf_error_set(err, RF_EINVAL, "%s: header entry '%s' is not an object", path, name);
    if (name[0] == '\0')
        return rf_error_set(err, RF_EINVAL, "%s: header has a tensor with an empty name", path);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return rf_error_set(err, RF_EINVAL,
                                "%s: tensor %s has unknown field '%s' (allowed: dtype, shape, "
                                "data_offsets)",
                                path, name, key);
    }
    const json_t *jd = json_object_get(obj, "dtype");
    const json_t *js = json_object_get(obj, "shape");
    const json_t *jo = json_object_get(obj, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo))
        return rf_error_set(err, RF_EINVAL,
                            "%s: tensor %s needs dtype (string), shape (array) and data_offsets "
                            "(array)",
                            path, name);
    rf_dtype dt;
    if (rf_dtype_parse(json_string_value(jd), &dt) != 0)
        return rf_error_set(err, RF_EUNSUPPORTED,
                            "%s: tensor %s has dtype '%s'; supported: F32, BF16, F16, F64, I64, "
                            "I32, U8",
                            path, name, json_string_value(jd));
    size_t ndim = json_array_size(js);
    if (ndim > RF_ST_MAX_DIMS)
        return rf_error_set(err, RF_EUNSUPPORTED, "%s: tensor %s has %zu dims (at most %d)", path,
                            name, ndim, RF_ST_MAX_DIMS);
    uint64_t begin, end;
    if (json_array_size(jo) != 2 || s_json_u64(json_array_get(jo, 0), &begin) ||
        s_json_u64(json_array_get(jo, 1), &end))
        return rf_error_set(err, RF_EINVAL,
                            "%s: tensor %s: data_offsets must be two non-negative integers", path,
                            name);
    if (begin > end || end > data_len)
        return rf_error_set(err, RF_EINVAL,
                            "%s: tensor %s: data_offsets [%llu,%llu] outside the data section "
                            "(%llu bytes); the file is truncated or corrupt",
                            path, name, (unsigned long long)begin, (unsigned long long)end,
                            (unsigned long long)data_len);
    s_entry *e;
    if (s_entry_push(self, &e))
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory reading the header", path);
    e->shard = si;
    e->begin = begin;
    e->end = end;
    e->t.dtype = dt;
    e->t.ndim = (int)ndim;
    uint64_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d;
        if (s_json_u64(json_array_get(js, i), &d) || d > INT64_MAX)
            return rf_error_set(err, RF_EINVAL,
                                "%s: tensor %s: shape entry %zu is not a non-negative integer",
                                path, name, i);
        e->t.shape[i] = (int64_t)d;
        if (__builtin_mul_overflow(numel, d, &numel))
            return rf_error_set(err, RF_EINVAL, "%s: tensor %s: shape product overflows", path,
                                name);
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)rf_dtype_size(dt), &nbytes))
        return rf_error_set(err, RF_EINVAL, "%s: tensor %s: shape byte size overflows", path, name);
    if (nbytes != end - begin) {
        char sh[160];
        s_shape_str(sh, sizeof(sh), (int)ndim, e->t.shape);
        return rf_error_set(err, RF_EINVAL,
                            "%s: tensor %s: shape %s of %s needs %llu bytes but data_offsets "
                            "span %llu",
                            path, name, sh, rf_dtype_name(dt), (unsigned long long)nbytes,
                            (unsigned long long)(end - begin));
    }
    e->t.nbytes = (size_t)nbytes;
    e->t.name = s_strdup(name);
    if (!e->t.name)
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory reading the header", path);
    return 0;
}

/* Maps shard si, validates its header and appends its entries. */
static int s_load_shard(rf_safetensors *self, size_t si, rf_error *err)
{
    s_shard *sh = &self->shards[si];
    int fd = open(sh->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rf_error_set(err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO, "cannot open %s: %s",
                            sh->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rf_error_set(err, RF_EINVAL, "%s is not a regular file", sh->path);
    }
    if (st.st_size < 8) {
        close(fd);
        return rf_error_set(err, RF_EINVAL,
                            "%s: %lld bytes is too short for a safetensors file (truncated?)",
                            sh->path, (long long)st.st_size);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return rf_error_set(err, RF_ENOMEM, "%s is too large to map", sh->path);
    }
    sh->len = (size_t)st.st_size;
    void *map = mmap(NULL, sh->len, PROT_READ, MAP_PRIVATE, fd, 0);
    int merr = errno;
    close(fd);
    if (map == MAP_FAILED)
        return rf_error_set(err, RF_EIO, "cannot mmap %s: %s", sh->path, strerror(merr));
    sh->map = map;

    const unsigned char *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | p[i];
    if (hlen > RF_ST_MAX_HEADER)
        return rf_error_set(err, RF_EINVAL,
                            "%s: header length %llu exceeds the limit of %u bytes (not a "
                            "safetensors file, or corrupt)",
                            sh->path, (unsigned long long)hlen, RF_ST_MAX_HEADER);
    if (hlen > sh->len - 8)
        return rf_error_set(err, RF_EINVAL,
                            "%s: header length %llu is larger than the file (%zu bytes); the "
                            "file is truncated",
                            sh->path, (unsigned long long)hlen, sh->len);
    if (hlen < 2 || p[8] != '{')
        return rf_error_set(err, RF_EINVAL, "%s: header is not a JSON object", sh->path);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return rf_error_set(err, RF_EINVAL, "%s: header is not valid JSON (%s at byte %d)",
                            sh->path, jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return rf_error_set(err, RF_EINVAL, "%s: header is not a JSON object", sh->path);
    }
    const uint64_t data_len = sh->len - 8 - hlen;
    const unsigned char *data = p + 8 + hlen;
    size_t first = self->count;
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                rc = rf_error_set(err, RF_EINVAL, "%s: __metadata__ is not an object", sh->path);
                break;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv)
            {
                if (!json_is_string(mv)) {
                    rc = rf_error_set(err, RF_EINVAL,
                                      "%s: __metadata__ value of '%s' is not a string", sh->path,
                                      mk);
                    break;
                }
                if (s_add_meta(self, mk, json_string_value(mv))) {
                    rc = rf_error_set(err, RF_ENOMEM, "%s: out of memory", sh->path);
                    break;
                }
            }
            if (rc)
                break;
            continue;
        }
        rc = s_parse_entry(self, si, key, val, data_len, err);
        if (rc)
            break;
    }
    json_decref(root);
    if (rc)
        return rc;

    /* The entries, sorted by begin, must tile [0, data_len) exactly. */
    size_t n = self->count - first;
    s_entry **sorted = malloc((n ? n : 1) * sizeof(*sorted));
    if (!sorted)
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory", sh->path);
    for (size_t i = 0; i < n; i++)
        sorted[i] = &self->entries[first + i];
    qsort(sorted, n, sizeof(*sorted), s_cmp_begin);
    uint64_t at = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (sorted[i]->begin < at)
            rc = rf_error_set(err, RF_EINVAL, "%s: tensor %s (bytes %llu..%llu) overlaps tensor %s",
                              sh->path, sorted[i]->t.name, (unsigned long long)sorted[i]->begin,
                              (unsigned long long)sorted[i]->end, sorted[i - 1]->t.name);
        else if (sorted[i]->begin > at)
            rc = rf_error_set(err, RF_EINVAL,
                              "%s: %llu unindexed bytes before tensor %s (the data section "
                              "must be fully covered)",
                              sh->path, (unsigned long long)(sorted[i]->begin - at),
                              sorted[i]->t.name);
        at = sorted[i]->end;
    }
    free(sorted);
    if (rc)
        return rc;
    if (at != data_len)
        return rf_error_set(err, RF_EINVAL,
                            "%s: %llu bytes after the last tensor are not indexed by the header",
                            sh->path, (unsigned long long)(data_len - at));
    for (size_t i = first; i < self->count; i++)
        self->entries[i].t.data = data + self->entries[i].begin;
    return 0;
}

static int s_cmp_name(const void *a, const void *b, void *ctx)
{
    const rf_safetensors *self = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return strcmp(self->entries[x].t.name, self->entries[y].t.name);
}

/* Builds the name index and refuses duplicate names (across shards). */
static int s_build_index(rf_safetensors *self, rf_error *err)
{
    self->by_name = malloc((self->count ? self->count : 1) * sizeof(size_t));
    if (!self->by_name)
        return rf_error_set(err, RF_ENOMEM, "out of memory indexing tensors");
    for (size_t i = 0; i < self->count; i++)
        self->by_name[i] = i;
    qsort_r(self->by_name, self->count, sizeof(size_t), s_cmp_name, self); /* GNU: reentrant */
    for (size_t i = 1; i < self->count; i++) {
        const s_entry *a = &self->entries[self->by_name[i - 1]];
        const s_entry *b = &self->entries[self->by_name[i]];
        if (strcmp(a->t.name, b->t.name) == 0)
            return rf_error_set(err, RF_EINVAL, "tensor %s appears in both %s and %s", a->t.name,
                                self->shards[a->shard].path, self->shards[b->shard].path);
    }
    return 0;
}

static int s_add_shard(rf_safetensors *self, const char *path, rf_error *err)
{
    s_shard *s = realloc(self->shards, (self->nshards + 1) * sizeof(*s));
    if (!s)
        return rf_error_set(err, RF_ENOMEM, "out of memory");
    self->shards = s;
    memset(&s[self->nshards], 0, sizeof(*s));
    s[self->nshards].path = s_strdup(path);
    self->nshards++;
    if (!s[self->nshards - 1].path)
        return rf_error_set(err, RF_ENOMEM, "out of memory");
    return 0;
}

static int s_open_index(rf_safetensors *self, const char *path, rf_error *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return rf_error_set(err, RF_EINVAL, "%s: not valid JSON (%s, line %d)", path, jerr.text,
                            jerr.line);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        json_decref(root);
        return rf_error_set(err, RF_EINVAL,
                            "%s: needs a non-empty \"weight_map\" object {tensor: shard file}",
                            path);
    }
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    int rc = 0;
    const char *name;
    json_t *file;
    /* Shards in order of first appearance in the weight map. */
    json_object_foreach(wm, name, file)
    {
        const char *f = json_string_value(file);
        if (!f || !*f || f[0] == '/' || strstr(f, "..")) {
            rc = rf_error_set(err, RF_EINVAL,
                              "%s: weight_map[%s] must be a shard file name relative to the "
                              "index's directory",
                              path, name);
            break;
        }
        char full[PATH_MAX];
        if (snprintf(full, sizeof(full), "%.*s%s", dirlen, path, f) >= (int)sizeof(full)) {
            rc = rf_error_set(err, RF_EINVAL, "%s: shard path too long", path);
            break;
        }
        int seen = 0;
        for (size_t i = 0; i < self->nshards && !seen; i++)
            seen = strcmp(self->shards[i].path, full) == 0;
        if (seen)
            continue;
        rc = s_add_shard(self, full, err);
        if (!rc)
            rc = s_load_shard(self, self->nshards - 1, err);
        if (rc) {
            rf_error_prefix(err, "shard of %s", path);
            break;
        }
    }
    if (!rc)
        rc = s_build_index(self, err);
    /* Every index entry must be in its shard, and every shard tensor in the index. */
    if (!rc) {
        json_object_foreach(wm, name, file)
        {
            const rf_st_tensor *t = rf_st_find(self, name);
            char full[PATH_MAX];
            snprintf(full, sizeof(full), "%.*s%s", dirlen, path, json_string_value(file));
            if (!t || strcmp(s_shard_of(self, t)->path, full) != 0) {
                rc = rf_error_set(err, RF_ENOTFOUND,
                                  "%s: tensor %s is listed in shard %s but is not in it", path,
                                  name, full);
                break;
            }
        }
    }
    if (!rc && self->count != json_object_size(wm)) {
        for (size_t i = 0; i < self->count; i++) {
            if (!json_object_get(wm, self->entries[i].t.name)) {
                rc = rf_error_set(err, RF_EINVAL, "%s: tensor %s in shard %s is not in the index",
                                  path, self->entries[i].t.name,
                                  self->shards[self->entries[i].shard].path);
                break;
            }
        }
    }
    json_decref(root);
    return rc;
}

/* Resolves a directory to its single .safetensors file or index. */
static int s_resolve_dir(const char *dir, char *out, size_t cap, rf_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return rf_error_set(err, RF_EIO, "cannot read directory %s: %s", dir, strerror(errno));
    char one[NAME_MAX + 1] = "", index[NAME_MAX + 1] = "";
    int nfiles = 0, nindex = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (s_has_suffix(de->d_name, ".safetensors.index.json")) {
            nindex++;
            snprintf(index, sizeof(index), "%s", de->d_name);
        } else if (s_has_suffix(de->d_name, ".safetensors")) {
            nfiles++;
            snprintf(one, sizeof(one), "%s", de->d_name);
        }
    }
    closedir(d);
    const char *pick = NULL;
    if (nindex > 1)
        return rf_error_set(err, RF_EINVAL,
                            "%s holds %d *.safetensors.index.json files; name the one to use", dir,
                            nindex);
    if (nindex == 1)
        pick = index;
    else if (nfiles == 1)
        pick = one;
    else if (nfiles == 0)
        return rf_error_set(err, RF_ENOTFOUND, "%s holds no .safetensors file", dir);
    else
        return rf_error_set(err, RF_EINVAL,
                            "%s holds %d .safetensors files and no index; name the file to use",
                            dir, nfiles);
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    if (snprintf(out, cap, "%.*s/%s", (int)dl, dir, pick) >= (int)cap)
        return rf_error_set(err, RF_EINVAL, "path too long in %s", dir);
    return 0;
}

rf_safetensors *rf_st_open(const char *path, rf_error *err)
{
    rf_safetensors *self = calloc(1, sizeof(*self));
    if (!self) {
        rf_error_set(err, RF_ENOMEM, "out of memory opening %s", path);
        return NULL;
    }
    char resolved[PATH_MAX];
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0) {
        rc = rf_error_set(err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO, "cannot open %s: %s", path,
                          strerror(errno));
    } else if (S_ISDIR(st.st_mode)) {
        rc = s_resolve_dir(path, resolved, sizeof(resolved), err);
        path = resolved;
    }
    if (!rc) {
        if (s_has_suffix(path, ".json")) {
            rc = s_open_index(self, path, err);
        } else {
            rc = s_add_shard(self, path, err);
            if (!rc)
                rc = s_load_shard(self, 0, err);
            if (!rc)
                rc = s_build_index(self, err);
        }
    }
    if (rc) {
        rf_st_destroy(&self);
        return NULL;
    }
    return self;
}

void rf_st_destroy(rf_safetensors **pself)
{
    if (!pself || !*pself)
        return;
    rf_safetensors *self = *pself;
    for (size_t i = 0; i < self->nshards; i++) {
        if (self->shards[i].map)
            munmap(self->shards[i].map, self->shards[i].len);
        free(self->shards[i].path);
    }
    for (size_t i = 0; i < self->count; i++)
        free((char *)self->entries[i].t.name);
    for (size_t i = 0; i < 2 * self->nmeta; i++)
        free(self->meta[i]);
    free(self->meta);
    free(self->shards);
    free(self->entries);
    free(self->by_name);
    free(self);
    *pself = NULL;
}

size_t rf_st_count(const rf_safetensors *self)
{
    return self->count;
}

const rf_st_tensor *rf_st_at(const rf_safetensors *self, size_t i)
{
    return i < self->count ? &self->entries[i].t : NULL;
}

const rf_st_tensor *rf_st_find(const rf_safetensors *self, const char *name)
{
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const s_entry *e = &self->entries[self->by_name[mid]];
        int c = strcmp(name, e->t.name);
        if (c == 0)
            return &e->t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *rf_st_metadata(const rf_safetensors *self, const char *key)
{
    for (size_t i = 0; i < self->nmeta; i++)
        if (strcmp(self->meta[2 * i], key) == 0)
            return self->meta[2 * i + 1];
    return NULL;
}

const char *rf_st_path_of(const rf_safetensors *self, const rf_st_tensor *t)
{
    return s_shard_of(self, t)->path;
}

size_t rf_st_numel(const rf_st_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i]; /* cannot overflow: checked when the header was read */
    return n;
}

int rf_st_expect(const rf_safetensors *self, const char *name, int ndim, const int64_t *shape,
                 const rf_st_tensor **out, rf_error *err)
{
    const rf_st_tensor *t = rf_st_find(self, name);
    char want[200], got[200];
    s_shape_str(want, sizeof(want), ndim, shape);
    if (!t) {
        return rf_error_set(err, RF_ENOTFOUND,
                            "tensor %s (shape %s) not found in %s; is this the right model?", name,
                            want, self->nshards ? self->shards[0].path : "(empty)");
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = shape[i] == -1 || shape[i] == t->shape[i];
    if (!ok) {
        s_shape_str(got, sizeof(got), t->ndim, t->shape);
        return rf_error_set(err, RF_ESHAPE, "tensor %s: expected shape %s, got %s in %s", name,
                            want, got, s_shard_of(self, t)->path);
    }
    if (out)
        *out = t;
    return 0;
}

int rf_st_read_f32(const rf_st_tensor *t, float *dst, rf_error *err)
{
    size_t n = rf_st_numel(t);
    size_t es = rf_dtype_size(t->dtype);
    if (t->dtype != RF_DTYPE_F32 && t->dtype != RF_DTYPE_BF16 && t->dtype != RF_DTYPE_F16 &&
        t->dtype != RF_DTYPE_F64)
        return rf_error_set(err, RF_ESHAPE,
                            "tensor %s has dtype %s; only F32, BF16, F16 and F64 convert to f32",
                            t->name, rf_dtype_name(t->dtype));
    /* The mapping may leave data unaligned (a header length not a multiple of 8), so
     * elements go through an aligned bounce buffer. */
    double bounce[512];
    size_t per = sizeof(bounce) / es;
    const unsigned char *src = t->data;
    for (size_t i = 0; i < n; i += per) {
        size_t k = n - i < per ? n - i : per;
        memcpy(bounce, src + i * es, k * es);
        rf_convert_to_f32(dst + i, bounce, t->dtype, k);
    }
    return 0;
}

/* ---- writer ---------------------------------------------------------------------- */

typedef struct s_wentry {
    char *name;
    rf_dtype dtype;
    int ndim;
    int64_t shape[RF_ST_MAX_DIMS];
    void *data;
    size_t nbytes;
} s_wentry;

struct rf_st_writer {
    s_wentry *e;
    size_t n, cap;
    json_t *meta;
};

rf_st_writer *rf_st_writer_new(void)
{
    rf_st_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->meta = json_object();
    if (!w->meta) {
        free(w);
        return NULL;
    }
    return w;
}

void rf_st_writer_destroy(rf_st_writer **pself)
{
    if (!pself || !*pself)
        return;
    rf_st_writer *w = *pself;
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].data);
    }
    free(w->e);
    json_decref(w->meta);
    free(w);
    *pself = NULL;
}

int rf_st_writer_add(rf_st_writer *self, const char *name, rf_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, rf_error *err)
{
    if (!name || !*name || strcmp(name, "__metadata__") == 0)
        return rf_error_set(err, RF_EINVAL, "safetensors writer: invalid tensor name '%s'",
                            name ? name : "(null)");
    if (rf_dtype_size(dtype) == 0)
        return rf_error_set(err, RF_EINVAL, "safetensors writer: tensor %s has an invalid dtype",
                            name);
    if (ndim < 0 || ndim > RF_ST_MAX_DIMS)
        return rf_error_set(err, RF_EINVAL, "safetensors writer: tensor %s has %d dims (0..%d)",
                            name, ndim, RF_ST_MAX_DIMS);
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->e[i].name, name) == 0)
            return rf_error_set(err, RF_EINVAL, "safetensors writer: tensor %s added twice", name);
    size_t nbytes = rf_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(nbytes, (size_t)shape[i], &nbytes))
            return rf_error_set(err, RF_EINVAL, "safetensors writer: tensor %s has a bad shape",
                                name);
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        s_wentry *e = realloc(self->e, cap * sizeof(*e));
        if (!e)
            return rf_error_set(err, RF_ENOMEM, "safetensors writer: out of memory");
        self->e = e;
        self->cap = cap;
    }
    s_wentry *e = &self->e[self->n];
    memset(e, 0, sizeof(*e));
    e->name = s_strdup(name);
    e->data = malloc(nbytes ? nbytes : 1);
    if (!e->name || !e->data) {
        free(e->name);
        free(e->data);
        return rf_error_set(err, RF_ENOMEM,
                            "safetensors writer: out of memory for tensor %s (%zu "
                            "bytes)",
                            name, nbytes);
    }
    if (nbytes)
        memcpy(e->data, data, nbytes);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        e->shape[i] = shape[i];
    e->nbytes = nbytes;
    self->n++;
    return 0;
}

int rf_st_writer_set_metadata(rf_st_writer *self, const char *key, const char *value, rf_error *err)
{
    json_t *v = json_string(value);
    if (!v || json_object_set_new(self->meta, key, v) != 0)
        return rf_error_set(err, RF_EINVAL,
                            "safetensors writer: metadata %s must be valid UTF-8 strings", key);
    return 0;
}

static char *s_header(const rf_st_writer *self, size_t *len_out, rf_error *err)
{
    json_t *root = json_object();
    int bad = !root;
    if (!bad && json_object_size(self->meta))
        bad = json_object_set(root, "__metadata__", self->meta) != 0;
    uint64_t off = 0;
    for (size_t i = 0; i < self->n && !bad; i++) {
        const s_wentry *e = &self->e[i];
        json_t *shape = json_array();
        for (int d = 0; shape && d < e->ndim; d++)
            json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *t =
            json_pack("{s:s, s:o, s:[I,I]}", "dtype", rf_dtype_name(e->dtype), "shape", shape,
                      "data_offsets", (json_int_t)off, (json_int_t)(off + e->nbytes));
        bad = !t || json_object_set_new(root, e->name, t) != 0;
        off += e->nbytes;
    }
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s) {
        rf_error_set(err, RF_ENOMEM, "safetensors writer: cannot build the header");
        return NULL;
    }
    size_t n = strlen(s), padded = (n + 7) & ~(size_t)7;
    char *h = malloc(8 + padded);
    if (!h) {
        free(s);
        rf_error_set(err, RF_ENOMEM, "safetensors writer: out of memory");
        return NULL;
    }
    for (int i = 0; i < 8; i++)
        h[i] = (char)(((uint64_t)padded >> (8 * i)) & 0xff);
    memcpy(h + 8, s, n);
    memset(h + 8 + n, ' ', padded - n);
    free(s);
    *len_out = 8 + padded;
    return h;
}

int rf_st_writer_write(rf_st_writer *self, const char *path, rf_error *err)
{
    size_t hlen;
    char *header = s_header(self, &hlen, err);
    if (!header)
        return err ? (int)err->code : RF_ENOMEM;
    rf_atomic_file *f = rf_atomic_file_begin(path, err);
    int rc = f ? rf_atomic_file_write(f, header, hlen, err) : (err ? (int)err->code : RF_EIO);
    for (size_t i = 0; i < self->n && !rc; i++)
        rc = rf_atomic_file_write(f, self->e[i].data, self->e[i].nbytes, err);
    free(header);
    if (rc) {
        rf_atomic_file_abort(&f);
        return rc;
    }
    return rf_atomic_file_commit(&f, err);
}
