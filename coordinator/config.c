/* config.c - the coordinator's config file: libyaml document -> rf_config, plus flags.
 *
 * One table names every key, its type, range, where it lives in rf_config and whether
 * SIGHUP may change it; the file walk, the flag setter, copy, compare and free are all
 * driven by it, so a new key is one line. Loading parses into a copy and swaps only
 * when there was no mistake, so a bad file (at start or on SIGHUP) changes nothing.
 * It must never accept a key it does not know and never stop at the first mistake.
 */
#include "config.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

typedef enum {
    T_ENDPOINT, /* tcp://, ipc://, inproc:// */
    T_ADDR,     /* HOST:PORT for HTTP */
    T_PATH,     /* resolved against the file's directory */
    T_PATHS,    /* list of T_PATH */
    T_HOSTS,    /* list of host patterns */
    T_INT,
    T_BYTES,
    T_SECONDS,
    T_MILLIS,
    T_BOOL,
    T_LEVEL
} s_type;

typedef struct s_field {
    const char *key;  /* "listen", "limits.max_jobs" */
    const char *flag; /* long option without dashes */
    s_type type;
    size_t off;
    int64_t lo, hi;
    int reload; /* SIGHUP may change it */
} s_field;

#define F(k, fl, t, m, lo, hi, r)                   \
    {                                               \
        k, fl, t, offsetof(rf_config, m), lo, hi, r \
    }
#define S_DAY 86400LL
#define S_GIB (1LL << 30)

static const s_field s_fields[] = {
    F("listen", "listen", T_ENDPOINT, listen, 0, 0, 0),
    F("api", "api", T_ENDPOINT, api, 0, 0, 0),
    F("metrics", "metrics", T_ADDR, metrics, 0, 0, 0),
    F("state", "state", T_PATH, state_dir, 0, 0, 0),
    F("models", "models", T_PATHS, models, 0, 0, 0),
    F("output_root", "output-root", T_PATH, output_root, 0, 0, 0),
    F("input_root", "input-root", T_PATH, input_root, 0, 0, 0),
    F("allowed_url_hosts", "allow-url-host", T_HOSTS, url_hosts, 0, 0, 1),
    F("insecure", "insecure", T_BOOL, insecure, 0, 1, 0),
    F("log_level", "log-level", T_LEVEL, log_level, 0, 0, 0),
    F("retention", "retention", T_SECONDS, retention_s, 0, 100 * 365 * S_DAY, 0),
    F("keys.server_secret_key", "server-secret-key", T_PATH, server_secret_key, 0, 0, 1),
    F("keys.allowed_worker_keys", "allowed-worker-keys", T_PATH, allowed_worker_keys, 0, 0, 1),
    F("keys.allowed_client_keys", "allowed-client-keys", T_PATH, allowed_client_keys, 0, 0, 1),
    F("limits.max_jobs", "max-jobs", T_INT, limits.max_jobs, 1, 100000000, 0),
    F("limits.max_frames", "max-frames", T_INT, limits.max_frames, 1, INT32_MAX, 0),
    F("limits.max_message_bytes", "max-message-bytes", T_BYTES, limits.max_message_bytes, 4096,
      64 * S_GIB, 0),
    F("limits.max_input_bytes", "max-input-bytes", T_BYTES, limits.max_input_bytes, 1, 1024 * S_GIB,
      0),
    F("limits.fetch_timeout", "fetch-timeout", T_MILLIS, limits.fetch_timeout_ms, 100, S_DAY * 1000,
      0),
    F("limits.fetch_low_speed_timeout", "fetch-low-speed-timeout", T_MILLIS,
      limits.fetch_low_speed_timeout_ms, 1000, S_DAY * 1000, 0),
    F("limits.fetch_retries", "fetch-retries", T_INT, limits.fetch_retries, 0, 100, 0),
    F("limits.fetch_max_redirects", "fetch-max-redirects", T_INT, limits.fetch_max_redirects, 0, 50,
      0),
    F("timing.heartbeat_ms", "heartbeat-ms", T_INT, timing.heartbeat_ms, 10, 600000, 0),
    F("timing.liveness", "liveness", T_INT, timing.liveness, 1, 1000, 0),
    F("timing.lease_ms", "lease-ms", T_INT, timing.lease_ms, 50, 86400000, 0),
};
#define S_NFIELDS   ((int)(sizeof(s_fields) / sizeof(s_fields[0])))
#define S_SECTIONS  "keys, limits, timing"
#define S_MAX_DEPTH 8

static char **s_str(rf_config *c, const s_field *f)
{
    return (char **)((char *)c + f->off);
}
static rf_config_list *s_list(rf_config *c, const s_field *f)
{
    return (rf_config_list *)((char *)c + f->off);
}
static int64_t *s_i64(rf_config *c, const s_field *f)
{
    return (int64_t *)((char *)c + f->off);
}
static int *s_int(rf_config *c, const s_field *f)
{
    return (int *)((char *)c + f->off);
}
static int s_is_str(s_type t)
{
    return t == T_ENDPOINT || t == T_ADDR || t == T_PATH || t == T_LEVEL;
}
static int s_is_list(s_type t)
{
    return t == T_PATHS || t == T_HOSTS;
}

static void s_list_free(rf_config_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int s_list_push(rf_config_list *l, const char *v)
{
    char *dup = strdup(v);
    char **items = dup ? realloc(l->items, (size_t)(l->n + 1) * sizeof(*items)) : NULL;
    if (!items) {
        free(dup);
        return -1;
    }
    l->items = items;
    l->items[l->n++] = dup;
    return 0;
}

/* Frees what the config owns (not the struct). */
static void s_clear(rf_config *c)
{
    for (int i = 0; i < S_NFIELDS; i++) {
        const s_field *f = &s_fields[i];
        if (s_is_str(f->type)) {
            free(*s_str(c, f));
            *s_str(c, f) = NULL;
        } else if (s_is_list(f->type)) {
            s_list_free(s_list(c, f));
        }
    }
    free(c->path);
    c->path = NULL;
}

/* Deep copy of src into dst (dst uninitialised). -1 when out of memory (dst cleared). */
static int s_copy(rf_config *dst, const rf_config *src)
{
    *dst = *src;
    dst->path = NULL;
    for (int i = 0; i < S_NFIELDS; i++) {
        const s_field *f = &s_fields[i];
        if (s_is_str(f->type))
            *s_str(dst, f) = NULL;
        else if (s_is_list(f->type))
            memset(s_list(dst, f), 0, sizeof(rf_config_list));
    }
    rf_config *s = (rf_config *)src;
    int bad = 0;
    for (int i = 0; i < S_NFIELDS; i++) {
        const s_field *f = &s_fields[i];
        if (s_is_str(f->type) && *s_str(s, f)) {
            *s_str(dst, f) = strdup(*s_str(s, f));
            bad |= !*s_str(dst, f);
        } else if (s_is_list(f->type)) {
            const rf_config_list *l = s_list(s, f);
            for (int j = 0; j < l->n && !bad; j++)
                bad |= s_list_push(s_list(dst, f), l->items[j]) != 0;
        }
    }
    if (src->path) {
        dst->path = strdup(src->path);
        bad |= !dst->path;
    }
    if (bad) {
        s_clear(dst);
        return -1;
    }
    return 0;
}

/* 1 when field f holds the same value in a and b. */
static int s_same(rf_config *a, rf_config *b, const s_field *f)
{
    if (s_is_str(f->type)) {
        const char *x = *s_str(a, f), *y = *s_str(b, f);
        return (!x && !y) || (x && y && strcmp(x, y) == 0);
    }
    if (s_is_list(f->type)) {
        const rf_config_list *x = s_list(a, f), *y = s_list(b, f);
        if (x->n != y->n)
            return 0;
        for (int i = 0; i < x->n; i++)
            if (strcmp(x->items[i], y->items[i]) != 0)
                return 0;
        return 1;
    }
    if (f->type == T_BOOL)
        return *s_int(a, f) == *s_int(b, f);
    return *s_i64(a, f) == *s_i64(b, f);
}

rf_config *rf_config_new(void)
{
    rf_config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->retention_s = 7 * S_DAY;
    c->limits.max_jobs = 10000;
    c->limits.max_frames = 172800;
    c->limits.max_message_bytes = S_GIB;
    c->limits.max_input_bytes = S_GIB;
    c->limits.fetch_timeout_ms = 300000;
    c->limits.fetch_low_speed_timeout_ms = 30000;
    c->limits.fetch_retries = 3;
    c->limits.fetch_max_redirects = 5;
    return c;
}

void rf_config_destroy(rf_config **self)
{
    if (!self || !*self)
        return;
    s_clear(*self);
    free(*self);
    *self = NULL;
}

/* ---- parsing one value ------------------------------------------------------------------ */

typedef struct s_ctx {
    const char *source;
    const char *base_dir;
    char *msgs[RF_CONFIG_MAX_ERRORS];
    int n, dropped, nomem;
    uint64_t seen; /* fields given in this file (duplicate keys) */
} s_ctx;

static void s_diag(s_ctx *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void s_diag(s_ctx *c, int line, const char *fmt, ...)
{
    if (c->n >= RF_CONFIG_MAX_ERRORS) {
        c->dropped++;
        return;
    }
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    char *m = NULL;
    int rc = line > 0 ? asprintf(&m, "%s:%d: %s", c->source, line, body)
                      : asprintf(&m, "%s: %s", c->source, body);
    if (rc < 0) {
        c->nomem = 1;
        return;
    }
    c->msgs[c->n++] = m;
}

/* Number with an optional unit; *mult from the table. Returns 0 or -1. */
static int s_number_unit(const char *s, const char *const *units, const int64_t *mults,
                         int64_t *out)
{
    errno = 0;
    char *end = NULL;
    if (!isdigit((unsigned char)*s))
        return -1;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return -1;
    while (*end == ' ')
        end++;
    int64_t m = -1;
    for (int i = 0; units[i]; i++)
        if (strcmp(end, units[i]) == 0)
            m = mults[i];
    if (m < 0 || (m > 0 && v > INT64_MAX / m))
        return -1;
    *out = (int64_t)v * m;
    return 0;
}

static int s_valid_host(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return 0;
    if (strcmp(h, "*") == 0)
        return 1;
    if (h[0] == '[') { /* IPv6 literal */
        if (h[n - 1] != ']' || n < 4)
            return 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
                return 0;
        return 1;
    }
    const char *p = h;
    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    if (!*p || *p == '.' || *p == '-' || p[strlen(p) - 1] == '.')
        return 0;
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
            return 0;
    return strstr(h, "..") == NULL;
}

static int s_valid_addr(const char *a)
{
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a)
        return 0;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535)
        return 0;
    for (const char *p = a; p < colon; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-:[]*", *p))
            return 0;
    return 1;
}

/* Resolves a path from the file against base_dir. Caller frees. */
static char *s_resolve(const char *base_dir, const char *v)
{
    char *out = NULL;
    if (v[0] == '/' || !base_dir || !*base_dir || strcmp(base_dir, ".") == 0)
        return strdup(v);
    if (asprintf(&out, "%s/%s", base_dir, v) < 0)
        return NULL;
    return out;
}

/* Parses text for field f into cfg. from_file: resolve paths against c->base_dir.
 * first: a list's first item (replaces the list). Errors go to c. */
static void s_set(s_ctx *c, rf_config *cfg, const s_field *f, const char *text, int line,
                  int from_file, int first)
{
    static const char *const size_units[] = {"",  "B",   "K", "KiB", "M", "MiB",
                                             "G", "GiB", "T", "TiB", NULL};
    static const int64_t size_mults[] = {1,         1,         1LL << 10, 1LL << 10, 1LL << 20,
                                         1LL << 20, 1LL << 30, 1LL << 30, 1LL << 40, 1LL << 40};
    static const char *const dur_units[] = {"", "ms", "s", "m", "h", "d", NULL};
    static const int64_t dur_ms[] = {1000, 1, 1000, 60000, 3600000, 86400000};
    const char *k = f->key;
    if (!text || (!*text && f->type != T_PATH)) {
        s_diag(c, line, "%s needs a value", k);
        return;
    }
    switch (f->type) {
    case T_ENDPOINT:
        if (strncmp(text, "tcp://", 6) != 0 && strncmp(text, "ipc://", 6) != 0 &&
            strncmp(text, "inproc://", 9) != 0) {
            s_diag(c, line, "%s must be a ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH), got %s",
                   k, text);
            return;
        }
        break;
    case T_ADDR:
        if (!s_valid_addr(text)) {
            s_diag(c, line, "%s must be HOST:PORT (e.g. 127.0.0.1:9464), got %s", k, text);
            return;
        }
        break;
    case T_LEVEL:
        if (strcmp(text, "debug") && strcmp(text, "info") && strcmp(text, "warn") &&
            strcmp(text, "error") && strcmp(text, "off")) {
            s_diag(c, line, "%s allowed debug, info, warn, error or off, got %s", k, text);
            return;
        }
        break;
    case T_PATH:
    case T_PATHS:
        if (!*text || strlen(text) >= PATH_MAX) {
            s_diag(c, line, "%s must be a path of 1 to %d bytes", k, PATH_MAX - 1);
            return;
        }
        break;
    case T_HOSTS:
        if (!s_valid_host(text)) {
            s_diag(c, line,
                   "%s: '%s' is not a host name (allowed: a name like cdn.example.com, "
                   "*.example.com for its subdomains, an IP address, or * for any host)",
                   k, text);
            return;
        }
        break;
    case T_BOOL:
        if (strcmp(text, "true") == 0)
            *s_int(cfg, f) = 1;
        else if (strcmp(text, "false") == 0)
            *s_int(cfg, f) = 0;
        else
            s_diag(c, line, "%s allowed true or false, got %s", k, text);
        return;
    case T_INT:
    case T_BYTES:
    case T_SECONDS:
    case T_MILLIS: {
        int64_t v = 0;
        static const char *const none[] = {"", NULL};
        static const int64_t one[] = {1};
        int rc;
        const char *what;
        if (f->type == T_INT) {
            rc = s_number_unit(text, none, one, &v);
            what = "a whole number";
        } else if (f->type == T_BYTES) {
            rc = s_number_unit(text, size_units, size_mults, &v);
            what = "a size (e.g. 512MiB, 2GiB; a bare number is bytes)";
        } else {
            rc = s_number_unit(text, dur_units, dur_ms, &v);
            what = "a duration (e.g. 30s, 5m, 12h, 7d; a bare number is seconds)";
            if (!rc && f->type == T_SECONDS)
                v /= 1000;
        }
        if (rc) {
            s_diag(c, line, "%s must be %s, got %s", k, what, text);
            return;
        }
        if (v < f->lo || v > f->hi) {
            if (f->type == T_MILLIS)
                s_diag(c, line, "%s must be between %" PRId64 " ms and %" PRId64 " ms, got %s", k,
                       f->lo, f->hi, text);
            else
                s_diag(c, line, "%s must be between %" PRId64 " and %" PRId64 ", got %s", k, f->lo,
                       f->hi, text);
            return;
        }
        *s_i64(cfg, f) = v;
        return;
    }
    }
    char *val;
    if (f->type == T_PATH || f->type == T_PATHS)
        val = from_file ? s_resolve(c->base_dir, text) : strdup(text);
    else if (f->type == T_HOSTS) {
        val = strdup(text);
        for (char *p = val; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
    } else
        val = strdup(text);
    if (!val) {
        c->nomem = 1;
        return;
    }
    if (s_is_list(f->type)) {
        rf_config_list *l = s_list(cfg, f);
        if (first)
            s_list_free(l);
        if (l->n >= RF_CONFIG_MAX_ITEMS)
            s_diag(c, line, "%s holds more than %d entries", k, RF_CONFIG_MAX_ITEMS);
        else if (s_list_push(l, val))
            c->nomem = 1;
        free(val);
        return;
    }
    free(*s_str(cfg, f));
    *s_str(cfg, f) = val;
}

/* ---- the file walk ---------------------------------------------------------------------- */

static const s_field *s_find(const char *key)
{
    for (int i = 0; i < S_NFIELDS; i++)
        if (strcmp(s_fields[i].key, key) == 0)
            return &s_fields[i];
    return NULL;
}

static int s_line(const yaml_node_t *n)
{
    return (int)n->start_mark.line + 1;
}

static const char *s_scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A "did you mean" for an unknown key: the first known key sharing its prefix. */
static void s_unknown(s_ctx *c, int line, const char *section, const char *key)
{
    char known[1024] = "";
    size_t used = 0;
    const char *hint = NULL;
    size_t slen = section ? strlen(section) : 0;
    for (int i = 0; i < S_NFIELDS; i++) {
        const char *fk = s_fields[i].key;
        const char *dot = strchr(fk, '.');
        const char *name;
        if (section) {
            if (strncmp(fk, section, slen) != 0 || fk[slen] != '.')
                continue;
            name = fk + slen + 1;
        } else {
            if (dot)
                continue;
            name = fk;
        }
        if (!hint && strlen(key) >= 3 && strncmp(name, key, 3) == 0)
            hint = name;
        used += (size_t)snprintf(known + used, used < sizeof(known) ? sizeof(known) - used : 0,
                                 "%s%s", used ? ", " : "", name);
    }
    if (!section)
        snprintf(known + strlen(known), sizeof(known) - strlen(known), ", %s", S_SECTIONS);
    if (hint)
        s_diag(c, line, "unknown key %s%s%s; did you mean %s?", section ? section : "",
               section ? "." : "", key, hint);
    else
        s_diag(c, line, "unknown key %s%s%s; known keys: %s", section ? section : "",
               section ? "." : "", key, known);
}

static void s_value(s_ctx *c, yaml_document_t *doc, rf_config *cfg, const s_field *f,
                    yaml_node_t *v)
{
    int idx = (int)(f - s_fields);
    if (c->seen & (1ull << idx)) {
        s_diag(c, s_line(v), "%s is given twice", f->key);
        return;
    }
    c->seen |= 1ull << idx;
    if (cfg->from_flags & (1ull << idx))
        return; /* a flag set it: the flag wins */
    if (s_is_list(f->type)) {
        if (v->type == YAML_SCALAR_NODE) {
            s_set(c, cfg, f, s_scalar(v), s_line(v), 1, 1);
        } else if (v->type == YAML_SEQUENCE_NODE) {
            s_list_free(s_list(cfg, f));
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                yaml_node_t *item = yaml_document_get_node(doc, *it);
                if (!s_scalar(item))
                    s_diag(c, s_line(item), "%s must be a list of strings", f->key);
                else
                    s_set(c, cfg, f, s_scalar(item), s_line(item), 1, 0);
            }
        } else {
            s_diag(c, s_line(v), "%s must be a list, e.g. [a, b]", f->key);
        }
        return;
    }
    if (!s_scalar(v)) {
        s_diag(c, s_line(v), "%s must be a single value, not a %s", f->key,
               v->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return;
    }
    const char *text = s_scalar(v);
    /* "~", "null" or an empty plain value: unset a string field */
    if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (!*text || strcmp(text, "~") == 0 || strcmp(text, "null") == 0) && s_is_str(f->type)) {
        free(*s_str(cfg, f));
        *s_str(cfg, f) = NULL;
        return;
    }
    s_set(c, cfg, f, text, s_line(v), 1, 0);
}

static void s_mapping(s_ctx *c, yaml_document_t *doc, rf_config *cfg, yaml_node_t *map,
                      const char *section)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        const char *key = s_scalar(k);
        if (!key || !v) {
            s_diag(c, k ? s_line(k) : 0, "keys must be plain names");
            continue;
        }
        char full[256];
        snprintf(full, sizeof(full), "%s%s%s", section ? section : "", section ? "." : "", key);
        const s_field *f = s_find(full);
        if (f) {
            s_value(c, doc, cfg, f, v);
            continue;
        }
        int is_section = !section && (strcmp(key, "keys") == 0 || strcmp(key, "limits") == 0 ||
                                      strcmp(key, "timing") == 0);
        if (is_section) {
            if (v->type != YAML_MAPPING_NODE) {
                if (!(v->type == YAML_SCALAR_NODE && !*s_scalar(v)))
                    s_diag(c, s_line(v), "%s must be a mapping of keys", key);
                continue;
            }
            s_mapping(c, doc, cfg, v, key);
            continue;
        }
        s_unknown(c, s_line(k), section, key);
    }
}

static int s_finish(s_ctx *c, rf_error *err)
{
    if (c->nomem) {
        for (int i = 0; i < c->n; i++)
            free(c->msgs[i]);
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory reading the config", c->source);
    }
    if (!c->n)
        return 0;
    char buf[RF_ERROR_MSG_MAX];
    size_t used = 0, room = sizeof(buf) - 64; /* keep space for "and N more" */
    int more = c->dropped;
    for (int i = 0; i < c->n; i++) {
        size_t need = strlen(c->msgs[i]) + (i ? 1 : 0);
        if (used + need < room)
            used +=
                (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "\n" : "", c->msgs[i]);
        else
            more++;
        free(c->msgs[i]);
    }
    if (more)
        snprintf(buf + used, sizeof(buf) - used, "\n%s: and %d more mistakes", c->source, more);
    return rf_error_set(err, RF_EINVAL, "%s", buf);
}

/* Parses text into cfg (a scratch copy). */
static int s_parse(rf_config *cfg, const char *name, const char *base_dir, const char *text,
                   size_t len, rf_error *err)
{
    s_ctx c;
    memset(&c, 0, sizeof(c));
    c.source = name;
    c.base_dir = base_dir;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        s_diag(&c, (int)parser.problem_mark.line + 1, "not valid YAML: %s%s%s",
               parser.problem ? parser.problem : "parse error", parser.context ? " " : "",
               parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return s_finish(&c, err);
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) {
        yaml_document_t extra;
        if (yaml_parser_load(&parser, &extra)) {
            if (yaml_document_get_root_node(&extra))
                s_diag(&c, 0, "holds more than one YAML document; a config is one document");
            yaml_document_delete(&extra);
        }
        if (root->type == YAML_MAPPING_NODE)
            s_mapping(&c, &doc, cfg, root, NULL);
        else if (!(root->type == YAML_SCALAR_NODE && !*s_scalar(root)))
            s_diag(&c, s_line(root), "must be a mapping of keys (listen:, api:, state: ...)");
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return s_finish(&c, err);
}

/* Reads the whole file; caller frees. */
static char *s_read(const char *path, size_t *len, rf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        rf_error_set(err, e == ENOENT ? RF_ENOTFOUND : RF_EIO, "%s: cannot open the config: %s",
                     path, strerror(e));
        return NULL;
    }
    char *buf = malloc(RF_CONFIG_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, RF_CONFIG_MAX_BYTES + 1, f) : 0;
    int bad = buf && ferror(f);
    fclose(f);
    if (!buf) {
        rf_error_set(err, RF_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (bad || n > RF_CONFIG_MAX_BYTES) {
        free(buf);
        rf_error_set(err, RF_EINVAL,
                     bad ? "%s: cannot read the config (is it a directory?)"
                         : "%s: the config is larger than 1 MiB",
                     path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Loads text over a copy of self; on success *out holds the new config (caller clears). */
static int s_load_copy(const rf_config *self, const char *name, const char *base_dir,
                       const char *text, size_t len, rf_config *out, rf_error *err)
{
    if (s_copy(out, self))
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory", name);
    int rc = s_parse(out, name, base_dir, text, len, err);
    if (rc)
        s_clear(out);
    return rc;
}

static char *s_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int rf_config_load_text(rf_config *self, const char *name, const char *base_dir, const char *text,
                        rf_error *err)
{
    rf_config fresh;
    int rc = s_load_copy(self, name, base_dir, text, strlen(text), &fresh, err);
    if (rc)
        return rc;
    s_clear(self);
    *self = fresh;
    return 0;
}

int rf_config_load(rf_config *self, const char *path, rf_error *err)
{
    size_t len = 0;
    char *text = s_read(path, &len, err);
    if (!text)
        return err ? err->code : RF_EIO;
    char *dir = s_dirname(path);
    char *p = strdup(path);
    rf_config fresh;
    int rc = dir && p ? s_load_copy(self, path, dir, text, len, &fresh, err)
                      : rf_error_set(err, RF_ENOMEM, "%s: out of memory", path);
    free(text);
    free(dir);
    if (rc) {
        free(p);
        return rc;
    }
    s_clear(self);
    *self = fresh;
    free(self->path);
    self->path = p;
    return 0;
}

int rf_config_set(rf_config *self, const char *key, const char *value, rf_error *err)
{
    const s_field *f = s_find(key);
    if (!f)
        return rf_error_set(err, RF_EINVAL, "unknown config key %s", key);
    int idx = (int)(f - s_fields);
    s_ctx c;
    memset(&c, 0, sizeof(c));
    char src[128];
    snprintf(src, sizeof(src), "--%s", f->flag);
    c.source = src;
    int first = !(self->from_flags & (1ull << idx));
    s_set(&c, self, f, value, 0, 0, first);
    int rc = s_finish(&c, err);
    if (!rc)
        self->from_flags |= 1ull << idx;
    return rc;
}

const char *rf_config_flag_key(const char *flag)
{
    for (int i = 0; i < S_NFIELDS; i++)
        if (strcmp(s_fields[i].flag, flag) == 0)
            return s_fields[i].key;
    return NULL;
}

int rf_config_arg(rf_config *self, int argc, char **argv, int i, rf_error *err)
{
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strncmp(a, "--", 2) != 0)
        return 0;
    if (strcmp(a, "--config") == 0) {
        if (!v)
            return rf_error_set(err, RF_EINVAL, "--config needs a file"), -1;
        return rf_config_load(self, v, err) ? -1 : 2;
    }
    const char *key = rf_config_flag_key(a + 2);
    if (!key)
        return 0;
    const s_field *f = s_find(key);
    if (f->type == T_BOOL)
        return rf_config_set(self, key, "true", err) ? -1 : 1;
    if (!v)
        return rf_error_set(err, RF_EINVAL, "%s needs a value", a), -1;
    return rf_config_set(self, key, v, err) ? -1 : 2;
}

int rf_config_check(const rf_config *self, rf_error *err)
{
    const char *where = self->path ? self->path : "the command line";
    if (!self->listen || !self->api || !self->state_dir)
        return rf_error_set(err, RF_EINVAL,
                            "%s: listen, api and state are required (in the config or as "
                            "--listen, --api, --state)",
                            where);
    int allowed = self->allowed_worker_keys || self->allowed_client_keys;
    if (self->server_secret_key && !allowed)
        return rf_error_set(err, RF_EINVAL,
                            "%s: keys.server_secret_key is set but no allowed keys file: set "
                            "keys.allowed_worker_keys and keys.allowed_client_keys",
                            where);
    if (allowed && !self->server_secret_key)
        return rf_error_set(err, RF_EINVAL,
                            "%s: allowed keys files are set but keys.server_secret_key is not "
                            "(make one with reelctl keygen)",
                            where);
    return 0;
}

int rf_config_reload(rf_config *self, rf_error *err)
{
    if (!self->path)
        return 0;
    size_t len = 0;
    char *text = s_read(self->path, &len, err);
    if (!text)
        return rf_error_prefix(err, "reloading the config (nothing changed)");
    char *dir = s_dirname(self->path);
    rf_config fresh;
    /* Parse over the defaults plus flags, so keys removed from the file fall back. */
    rf_config *base = rf_config_new();
    int rc;
    if (!dir || !base)
        rc = rf_error_set(err, RF_ENOMEM, "%s: out of memory", self->path);
    else {
        base->from_flags = self->from_flags;
        rc = s_load_copy(base, self->path, dir, text, len, &fresh, err);
    }
    rf_config_destroy(&base);
    free(text);
    free(dir);
    if (rc)
        return rf_error_prefix(err, "reloading the config (nothing changed)");
    for (int i = 0; i < S_NFIELDS; i++) {
        const s_field *f = &s_fields[i];
        if (self->from_flags & (1ull << i))
            continue;
        if (s_same(self, &fresh, f))
            continue;
        if (!f->reload) {
            rf_log_kv(RF_LOG_WARN, "config", "changed key needs a restart; keeping the old value",
                      "file=%s key=%s", self->path, f->key);
            continue;
        }
        if (s_is_str(f->type)) {
            char **a = s_str(self, f), **b = s_str(&fresh, f);
            char *t = *a;
            *a = *b;
            *b = t;
        } else if (s_is_list(f->type)) {
            rf_config_list t = *s_list(self, f);
            *s_list(self, f) = *s_list(&fresh, f);
            *s_list(&fresh, f) = t;
        }
        rf_log_kv(RF_LOG_INFO, "config", "reloaded", "file=%s key=%s", self->path, f->key);
    }
    s_clear(&fresh);
    return 0;
}
