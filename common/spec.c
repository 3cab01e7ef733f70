/* spec.c - job spec parsing and validation (see spec.h for the schema and limits).
 *
 * Two passes over the text: libyaml's event parser builds a small tree of our own
 * (scalars keep their line and whether they were plain, so `"832"` stays a string; depth,
 * node count and anchors are bounded; an alias can only name a finished node, so there
 * are no cycles), then a schema walk fills rf_job_spec and records every mistake with
 * its line. Cross-field rules and derived values come last. It must never stop at the
 * first mistake when it can go on, never accept a key it does not know, and never crash
 * on hostile text.
 */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define S_MAX_DEPTH   16
#define S_MAX_NODES   200000
#define S_MAX_ANCHORS 1000

/* ---- the tree ------------------------------------------------------------------------ */

typedef enum { S_SCALAR, S_SEQ, S_MAP } s_kind;

typedef struct s_node {
    s_kind kind;
    int line;
    char *str; /* scalar value (NUL-terminated; may hold NULs, see len) */
    size_t len;
    int plain;            /* plain scalar (resolved as null/bool/number), else a string */
    struct s_node **kids; /* seq: items; map: key, value, key, value ... */
    size_t n, cap;
} s_node;

typedef struct s_tree {
    s_node **all; /* every node, for freeing (aliases share nodes) */
    size_t n, cap;
    struct {
        char *name;
        s_node *node;
    } anchors[S_MAX_ANCHORS];
    size_t nanchors;
    s_node *root;
} s_tree;

static void s_tree_free(s_tree *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->all[i]->str);
        free(t->all[i]->kids);
        free(t->all[i]);
    }
    free(t->all);
    for (size_t i = 0; i < t->nanchors; i++)
        free(t->anchors[i].name);
    memset(t, 0, sizeof(*t));
}

static s_node *s_node_new(s_tree *t, s_kind kind, int line)
{
    if (t->n >= S_MAX_NODES)
        return NULL;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        s_node **all = realloc(t->all, cap * sizeof(*all));
        if (!all)
            return NULL;
        t->all = all;
        t->cap = cap;
    }
    s_node *nd = calloc(1, sizeof(*nd));
    if (!nd)
        return NULL;
    nd->kind = kind;
    nd->line = line;
    t->all[t->n++] = nd;
    return nd;
}

static int s_node_push(s_node *parent, s_node *kid)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        s_node **kids = realloc(parent->kids, cap * sizeof(*kids));
        if (!kids)
            return -1;
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

/* ---- the parse context --------------------------------------------------------------- */

typedef struct s_ctx {
    const char *source;
    rf_spec_diags *diags;
    int nomem;
} s_ctx;

static void s_diag(s_ctx *c, int line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_diag(s_ctx *c, int line, const char *field, const char *fmt, ...)
{
    if (c->diags->count >= RF_SPEC_MAX_ERRORS) {
        c->diags->dropped++;
        return;
    }
    rf_spec_diag *d = &c->diags->items[c->diags->count++];
    d->line = line;
    snprintf(d->field, sizeof(d->field), "%s", field ? field : "");
    char body[sizeof(d->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(d->msg, sizeof(d->msg), "%s:%d: %s", c->source, line, body);
    else
        snprintf(d->msg, sizeof(d->msg), "%s: %s", c->source, body);
}

static int s_errors(const s_ctx *c)
{
    return c->diags->count + c->diags->dropped;
}

/* Shows a scalar in a message: quoted, truncated, non-printables escaped. */
static const char *s_show(const s_node *nd, char *buf, size_t cap)
{
    if (nd->kind == S_SEQ)
        return "a list";
    if (nd->kind == S_MAP)
        return "a mapping";
    size_t o = 0;
    if (!nd->plain)
        buf[o++] = '"';
    for (size_t i = 0; i < nd->len && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)nd->str[i];
        if (ch < 0x20 || ch == 0x7f)
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
        if (i == 60 && nd->len > 64) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
    }
    if (!nd->plain)
        buf[o++] = '"';
    if (o == 0)
        return "nothing";
    buf[o] = '\0';
    return buf;
}

#define SHOW(nd) s_show((nd), (char[96]){0}, 96)

/* ---- building the tree from libyaml events --------------------------------------------- */

static int s_anchor_add(s_tree *t, s_ctx *c, const yaml_event_t *ev, const char *anchor, s_node *nd)
{
    if (!anchor)
        return 0;
    if (t->nanchors >= S_MAX_ANCHORS) {
        s_diag(c, (int)ev->start_mark.line + 1, NULL, "more than %d anchors", S_MAX_ANCHORS);
        return -1;
    }
    t->anchors[t->nanchors].name = strdup(anchor);
    if (!t->anchors[t->nanchors].name) {
        c->nomem = 1;
        return -1;
    }
    t->anchors[t->nanchors++].node = nd;
    return 0;
}

static s_node *s_anchor_find(s_tree *t, const char *name)
{
    /* latest definition wins (YAML allows redefinition) */
    for (size_t i = t->nanchors; i-- > 0;)
        if (strcmp(t->anchors[i].name, name) == 0)
            return t->anchors[i].node;
    return NULL;
}

/* JSON escapes astral characters as UTF-16 surrogate pairs ("\ud83d\ude00"), which
 * libyaml refuses; in a JSON document (first character '{' or '[') rewrite each pair
 * inside strings as YAML's "\U0001f600". Lines are unchanged. Returns a new buffer. */
static char *s_fix_json_surrogates(const char *text, size_t len, size_t *out_len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    if (i >= len || (text[i] != '{' && text[i] != '[')) {
        memcpy(out, text, len);
        out[len] = '\0';
        *out_len = len;
        return out;
    }
    size_t o = 0;
    int in_str = 0;
    for (i = 0; i < len; i++) {
        char ch = text[i];
        if (!in_str) {
            in_str = ch == '"';
            out[o++] = ch;
            continue;
        }
        if (ch == '"') {
            in_str = 0;
            out[o++] = ch;
            continue;
        }
        if (ch == '\\' && i + 12 <= len && text[i + 1] == 'u' && text[i + 6] == '\\' &&
            text[i + 7] == 'u') {
            char h1[5], h2[5];
            memcpy(h1, text + i + 2, 4);
            memcpy(h2, text + i + 8, 4);
            h1[4] = h2[4] = '\0';
            char *e1, *e2;
            unsigned long hi = strtoul(h1, &e1, 16), lo = strtoul(h2, &e2, 16);
            if (*e1 == '\0' && *e2 == '\0' && isxdigit((unsigned char)h1[0]) &&
                isxdigit((unsigned char)h2[0]) && hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 &&
                lo <= 0xdfff) {
                unsigned long cp = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                o += (size_t)snprintf(out + o, 11, "\\U%08lx", cp);
                i += 11;
                continue;
            }
        }
        if (ch == '\\' && i + 1 < len) {
            out[o++] = ch;
            out[o++] = text[++i];
            continue;
        }
        out[o++] = ch;
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Builds the tree; on failure records one diagnostic and returns -1. */
static int s_build_tree(s_ctx *c, const char *text, size_t len, s_tree *t)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        c->nomem = 1;
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    s_node *stack[S_MAX_DEPTH];
    int depth = 0, docs = 0, rc = 0, done = 0;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            int line = (int)p.problem_mark.line + 1;
            s_diag(c, line, NULL, "not valid YAML or JSON: %s%s%s (column %d)",
                   p.problem ? p.problem : "syntax error", p.context ? " " : "",
                   p.context ? p.context : "", (int)p.problem_mark.column + 1);
            if (p.error == YAML_MEMORY_ERROR)
                c->nomem = 1;
            rc = -1;
            break;
        }
        int line = (int)ev.start_mark.line + 1;
        s_node *nd = NULL;
        const char *anchor = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                s_diag(c, line, NULL, "holds more than one YAML document; a spec is one document");
                rc = -1;
            }
            break;
        case YAML_ALIAS_EVENT:
            nd = s_anchor_find(t, (const char *)ev.data.alias.anchor);
            if (!nd) {
                s_diag(c, line, NULL,
                       "alias *%s names no finished anchor (define &%s before, and "
                       "outside, its use)",
                       (const char *)ev.data.alias.anchor, (const char *)ev.data.alias.anchor);
                rc = -1;
            }
            break;
        case YAML_SCALAR_EVENT:
            nd = s_node_new(t, S_SCALAR, line);
            if (!nd)
                break;
            nd->str = malloc(ev.data.scalar.length + 1);
            if (!nd->str) {
                nd = NULL;
                break;
            }
            memcpy(nd->str, ev.data.scalar.value, ev.data.scalar.length);
            nd->str[ev.data.scalar.length] = '\0';
            nd->len = ev.data.scalar.length;
            nd->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            anchor = (const char *)ev.data.scalar.anchor;
            if (s_anchor_add(t, c, &ev, anchor, nd))
                rc = -1;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            nd = s_node_new(t, ev.type == YAML_SEQUENCE_START_EVENT ? S_SEQ : S_MAP, line);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            s_node *top = stack[--depth];
            /* the anchor was stashed in str while the collection was open */
            if (top->str) {
                if (s_anchor_add(t, c, &ev, top->str, top))
                    rc = -1;
                free(top->str);
                top->str = NULL;
            }
            break;
        }
        default: break;
        }
        int is_node = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_ALIAS_EVENT ||
                      ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT;
        if (is_node && !nd && rc == 0) {
            if (t->n >= S_MAX_NODES)
                s_diag(c, line, NULL, "has more than %d values", S_MAX_NODES);
            else
                c->nomem = 1;
            rc = -1;
        }
        if (is_node && nd && rc == 0) {
            if (depth > 0) {
                /* a block collection under a key is reported at the key's line */
                s_node *parent = stack[depth - 1];
                if (parent->kind == S_MAP && (parent->n & 1) && ev.type != YAML_ALIAS_EVENT &&
                    nd->kind != S_SCALAR)
                    nd->line = parent->kids[parent->n - 1]->line;
                if (s_node_push(parent, nd)) {
                    c->nomem = 1;
                    rc = -1;
                }
            } else if (!t->root) {
                t->root = nd;
            }
            if (rc == 0 &&
                (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)) {
                if (depth >= S_MAX_DEPTH) {
                    s_diag(c, line, NULL, "is nested more than %d levels deep", S_MAX_DEPTH);
                    rc = -1;
                } else {
                    const char *a = ev.type == YAML_SEQUENCE_START_EVENT
                                        ? (const char *)ev.data.sequence_start.anchor
                                        : (const char *)ev.data.mapping_start.anchor;
                    if (a) {
                        nd->str = strdup(a);
                        if (!nd->str) {
                            c->nomem = 1;
                            rc = -1;
                        }
                    }
                    stack[depth++] = nd;
                }
            }
        }
        yaml_event_delete(&ev);
        if (rc)
            break;
    }
    yaml_parser_delete(&p);
    if (rc == 0 && !t->root) {
        s_diag(c, 0, NULL, "is empty; a spec needs at least model, width, height and shots");
        rc = -1;
    }
    return rc;
}

/* ---- scalars ------------------------------------------------------------------------- */

static int s_is_null(const s_node *nd)
{
    if (nd->kind != S_SCALAR || !nd->plain)
        return 0;
    return nd->len == 0 || strcmp(nd->str, "~") == 0 || strcmp(nd->str, "null") == 0 ||
           strcmp(nd->str, "Null") == 0 || strcmp(nd->str, "NULL") == 0;
}

/* YAML 1.2 core schema integer (decimal, 0x, 0o); returns 0 and *out, or -1. */
static int s_scalar_int(const s_node *nd, long long *out)
{
    if (nd->kind != S_SCALAR || !nd->plain || nd->len == 0 || strlen(nd->str) != nd->len)
        return -1;
    const char *s = nd->str;
    int base = 10;
    const char *digits = s;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        digits = s + 2;
    } else if (s[0] == '-' || s[0] == '+') {
        digits = s + 1;
    }
    if (!*digits)
        return -1;
    for (const char *p = digits; *p; p++) {
        int ok = base == 16  ? isxdigit((unsigned char)*p)
                 : base == 8 ? (*p >= '0' && *p <= '7')
                             : isdigit((unsigned char)*p);
        if (!ok)
            return -1;
    }
    errno = 0;
    char *end;
    long long v = strtoll(base == 10 ? s : digits, &end, base);
    if (errno == ERANGE || *end)
        return -1;
    *out = v;
    return 0;
}

/* A plain scalar that is a finite number (integer or decimal, exponent allowed). */
static int s_scalar_num(const s_node *nd, double *out)
{
    long long iv;
    if (s_scalar_int(nd, &iv) == 0) {
        *out = (double)iv;
        return 0;
    }
    if (nd->kind != S_SCALAR || !nd->plain || nd->len == 0 || strlen(nd->str) != nd->len)
        return -1;
    const char *s = nd->str;
    size_t i = 0;
    if (s[i] == '-' || s[i] == '+')
        i++;
    int digits = 0;
    while (isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (!digits)
        return -1;
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        if (s[i] == '-' || s[i] == '+')
            i++;
        if (!isdigit((unsigned char)s[i]))
            return -1;
        while (isdigit((unsigned char)s[i]))
            i++;
    }
    if (s[i])
        return -1;
    double v = strtod(s, NULL);
    if (!isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static const char *s_kind_word(const s_node *nd)
{
    if (nd->kind == S_SEQ)
        return "a list";
    if (nd->kind == S_MAP)
        return "a mapping";
    if (!nd->plain)
        return "a string";
    if (s_is_null(nd))
        return "null";
    return "a value";
}

/* Reads an integer in [lo, hi]; records a diagnostic and returns -1 otherwise. */
static int s_get_int(s_ctx *c, const s_node *nd, const char *field, long long lo, long long hi,
                     long long *out)
{
    long long v;
    double d;
    if (s_scalar_int(nd, &v) == 0) {
        if (v < lo || v > hi) {
            s_diag(c, nd->line, field, "%s must be between %lld and %lld, got %lld", field, lo, hi,
                   v);
            return -1;
        }
        *out = v;
        return 0;
    }
    if (s_scalar_num(nd, &d) == 0)
        s_diag(c, nd->line, field, "%s must be a whole number between %lld and %lld, got %s", field,
               lo, hi, SHOW(nd));
    else
        s_diag(c, nd->line, field, "%s must be a number between %lld and %lld, got %s %s", field,
               lo, hi, s_kind_word(nd), SHOW(nd));
    return -1;
}

/* Reads a number in [lo, hi] (open at lo when lo_open). */
static int s_get_num(s_ctx *c, const s_node *nd, const char *field, double lo, int lo_open,
                     double hi, double *out)
{
    double v;
    if (s_scalar_num(nd, &v)) {
        s_diag(c, nd->line, field, "%s must be a number %s %g and <= %g, got %s %s", field,
               lo_open ? ">" : ">=", lo, hi, s_kind_word(nd), SHOW(nd));
        return -1;
    }
    if ((lo_open ? v <= lo : v < lo) || v > hi) {
        s_diag(c, nd->line, field, "%s must be %s %g and <= %g, got %s", field,
               lo_open ? ">" : ">=", lo, hi, nd->str);
        return -1;
    }
    *out = v;
    return 0;
}

static int s_get_bool(s_ctx *c, const s_node *nd, const char *field, int *out)
{
    static const char *yes[] = {"true", "True", "TRUE"}, *no[] = {"false", "False", "FALSE"};
    if (nd->kind == S_SCALAR && nd->plain) {
        for (int i = 0; i < 3; i++) {
            if (strcmp(nd->str, yes[i]) == 0) {
                *out = 1;
                return 0;
            }
            if (strcmp(nd->str, no[i]) == 0) {
                *out = 0;
                return 0;
            }
        }
    }
    s_diag(c, nd->line, field, "%s must be true or false, got %s", field, SHOW(nd));
    return -1;
}

/* Reads a string of 1..maxlen bytes (owned copy in *out). Plain scalars count as text
 * too (prompt: hello), except null. */
static int s_get_str(s_ctx *c, const s_node *nd, const char *field, size_t maxlen, char **out)
{
    if (nd->kind != S_SCALAR || s_is_null(nd)) {
        s_diag(c, nd->line, field, "%s must be text, got %s", field, s_kind_word(nd));
        return -1;
    }
    if (strlen(nd->str) != nd->len) {
        s_diag(c, nd->line, field, "%s must not contain NUL characters", field);
        return -1;
    }
    const char *p = nd->str;
    while (*p && isspace((unsigned char)*p))
        p++;
    if (!*p) {
        s_diag(c, nd->line, field, "%s must not be empty", field);
        return -1;
    }
    if (nd->len > maxlen) {
        s_diag(c, nd->line, field, "%s is %zu bytes; at most %zu are allowed", field, nd->len,
               maxlen);
        return -1;
    }
    char *s = strdup(nd->str);
    if (!s) {
        c->nomem = 1;
        return -1;
    }
    free(*out);
    *out = s;
    return 0;
}

/* Reads one of names[0..n-1] (exact); allowed is the "a | b | c" list for messages. */
static int s_get_enum(s_ctx *c, const s_node *nd, const char *field, const char *const *names,
                      int n, const char *allowed, int *out)
{
    if (nd->kind == S_SCALAR) {
        for (int i = 0; i < n; i++) {
            if (strcmp(nd->str, names[i]) == 0 && strlen(names[i]) == nd->len) {
                *out = i;
                return 0;
            }
        }
    }
    s_diag(c, nd->line, field, "%s must be one of %s, got %s", field, allowed, SHOW(nd));
    return -1;
}

/* ---- mappings and unknown keys --------------------------------------------------------- */

static size_t s_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] +
                         (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

/* Checks that nd is a mapping whose keys are distinct known strings; fills vals[i] with
 * the value of keys[i] (or NULL). Records a diagnostic per problem; returns -1 when nd is
 * not a mapping (then nothing is filled). where: "" for the top level or "chunk." etc. */
static int s_map(s_ctx *c, const s_node *nd, const char *where, const char *const *keys, int nkeys,
                 const s_node **vals)
{
    for (int i = 0; i < nkeys; i++)
        vals[i] = NULL;
    char what[96];
    snprintf(what, sizeof(what), "%.*s", (int)(strlen(where) ? strlen(where) - 1 : 0), where);
    if (nd->kind != S_MAP) {
        if (*where)
            s_diag(c, nd->line, what, "%s must be a mapping (key: value lines), got %s", what,
                   s_kind_word(nd));
        else
            s_diag(c, nd->line, NULL, "the top level must be a mapping (key: value lines), got %s",
                   s_kind_word(nd));
        return -1;
    }
    for (size_t i = 0; i + 1 < nd->n; i += 2) {
        const s_node *k = nd->kids[i];
        if (k->kind != S_SCALAR || strlen(k->str) != k->len) {
            s_diag(c, k->line, what, "keys %s%s must be plain names, got %s",
                   *where ? "in " : "at the top level", *where ? what : "", s_kind_word(k));
            continue;
        }
        int found = -1;
        for (int j = 0; j < nkeys; j++)
            if (strcmp(k->str, keys[j]) == 0)
                found = j;
        char field[160];
        snprintf(field, sizeof(field), "%s%s", where, k->str);
        if (found < 0) {
            int best = -1;
            size_t bestd = 99;
            for (int j = 0; j < nkeys; j++) {
                size_t d = s_edit_distance(k->str, keys[j]);
                if (d < bestd) {
                    bestd = d;
                    best = j;
                }
            }
            size_t klen = strlen(k->str);
            if (best >= 0 && (bestd <= 2 && bestd < klen)) {
                s_diag(c, k->line, field, "unknown key %s; did you mean %s%s?", field, where,
                       keys[best]);
            } else {
                char allowed[512];
                size_t o = 0;
                for (int j = 0; j < nkeys && o < sizeof(allowed) - 64; j++)
                    o += (size_t)snprintf(allowed + o, sizeof(allowed) - o, "%s%s", j ? ", " : "",
                                          keys[j]);
                s_diag(c, k->line, field, "unknown key %s; allowed %s%s: %s", field,
                       *where ? "in " : "at the top level", *where ? what : "", allowed);
            }
            continue;
        }
        if (vals[found]) {
            s_diag(c, k->line, field, "%s is given twice (first on line %d)", field,
                   vals[found]->line);
            continue;
        }
        vals[found] = nd->kids[i + 1];
    }
    return 0;
}

/* ---- the schema walk ------------------------------------------------------------------ */

static const char *const s_sampler_names[] = {"unipc", "euler", "dpm++"};
static const char *const s_weights_names[] = {"linear", "uniform", "cosine"};
static const char *const s_mode_names[] = {"lockstep", "independent"};
static const char *const s_transition_names[] = {"blend", "cut"};
static const char *const s_input_names[] = {"none", "image", "video", "continue"};
static const char *const s_codec_names[] = {"h264", "h265", "prores", "ffv1", "png"};

const char *rf_spec_wan21_negative(void)
{
    return "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差"
           "质量，"
           "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形"
           "的，"
           "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着"
           "走";
}

const char *rf_sampler_name(rf_sampler_kind s)
{
    return (unsigned)s < 3 ? s_sampler_names[s] : "?";
}
const char *rf_weights_name(rf_fusion_weights w)
{
    return (unsigned)w < 3 ? s_weights_names[w] : "?";
}
const char *rf_mode_name(rf_job_mode m)
{
    return (unsigned)m < 2 ? s_mode_names[m] : "?";
}
const char *rf_input_kind_name(rf_input_kind k)
{
    return (unsigned)k < 4 ? s_input_names[k] : "?";
}

/* Top-level keys, in the order of the issue. */
enum {
    K_NAME,
    K_MODEL,
    K_WIDTH,
    K_HEIGHT,
    K_FPS,
    K_SEED,
    K_STEPS,
    K_GUIDANCE,
    K_SAMPLER,
    K_SHIFT,
    K_CHUNK,
    K_MODE,
    K_SHOTS,
    K_PROMPT,
    K_NEGATIVE,
    K_SECONDS,
    K_FRAMES,
    K_STILL,
    K_INPUTS,
    K_OUTPUT,
    K_PRIORITY,
    K_PLAN,
    K_COUNT
};
static const char *const s_top_keys[K_COUNT] = {
    "name",    "model", "width",  "height", "fps",      "seed",   "steps",    "guidance",
    "sampler", "shift", "chunk",  "mode",   "shots",    "prompt", "negative", "seconds",
    "frames",  "still", "inputs", "output", "priority", "plan"};

/* A shot as read, before the spec's fps is known. */
typedef struct s_shot_in {
    const s_node *seconds, *frames;
} s_shot_in;

static int s_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RF_SPEC_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static void s_read_shot(s_ctx *c, rf_job_spec *spec, const s_node *nd, int idx, s_shot_in *in)
{
    static const char *const keys[] = {"prompt", "negative", "seconds", "frames", "transition"};
    const s_node *v[5];
    char where[48], field[80];
    snprintf(where, sizeof(where), "shots[%d].", idx);
    rf_spec_shot *sh = &spec->shots[idx];
    sh->line = nd->line;
    memset(in, 0, sizeof(*in));
    if (s_map(c, nd, where, keys, 5, v))
        return;
    snprintf(field, sizeof(field), "shots[%d].prompt", idx);
    if (v[0])
        s_get_str(c, v[0], field, RF_SPEC_MAX_PROMPT, &sh->prompt);
    else
        s_diag(c, nd->line, field, "%s is required (the text this shot shows)", field);
    snprintf(field, sizeof(field), "shots[%d].negative", idx);
    if (v[1])
        s_get_str(c, v[1], field, RF_SPEC_MAX_PROMPT, &sh->negative);
    in->seconds = v[2];
    in->frames = v[3];
    snprintf(field, sizeof(field), "shots[%d].transition", idx);
    int t;
    if (v[4] && s_get_enum(c, v[4], field, s_transition_names, 2, "blend | cut", &t) == 0)
        sh->transition = (rf_transition)t;
}

/* Resolves a shot's length: exactly one of seconds / frames. */
static void s_shot_length(s_ctx *c, rf_job_spec *spec, int idx, const s_shot_in *in,
                          const char *prefix, int line)
{
    rf_spec_shot *sh = &spec->shots[idx];
    char fs[80], ff[80];
    snprintf(fs, sizeof(fs), "%sseconds", prefix);
    snprintf(ff, sizeof(ff), "%sframes", prefix);
    if (in->seconds && in->frames) {
        s_diag(c, in->frames->line, ff, "give %s or %s, not both", fs, ff);
        return;
    }
    if (!in->seconds && !in->frames) {
        s_diag(c, line, fs, "%s (or %s) is required: how long the shot lasts", fs, ff);
        return;
    }
    long long maxf = RF_SPEC_MAX_FRAMES;
    if (in->frames) {
        long long f;
        if (s_get_int(c, in->frames, ff, RF_SPEC_MIN_SHOT_FRAMES, maxf, &f) == 0)
            sh->frames = f;
        else if (s_scalar_int(in->frames, &f) == 0 && f == 1)
            s_diag(c, in->frames->line, ff,
                   "(a single image is `frames: 1` or `still: true` at the top level of a "
                   "one-shot spec)");
        return;
    }
    double s;
    double maxs = (double)maxf / spec->fps;
    if (s_get_num(c, in->seconds, fs, 0.0, 1, maxs, &s))
        return;
    sh->seconds = s;
    int64_t f = (int64_t)floor(s * spec->fps + 0.5);
    if (f < RF_SPEC_MIN_SHOT_FRAMES) {
        s_diag(c, in->seconds->line, fs,
               "%s is too short: %g s at %d fps is %lld frames; a shot needs at least %d "
               "frames (%.3g s)",
               fs, s, spec->fps, (long long)f, RF_SPEC_MIN_SHOT_FRAMES,
               (double)RF_SPEC_MIN_SHOT_FRAMES / spec->fps);
        return;
    }
    sh->frames = f;
}

/* Output path <-> codec: h264/h265 in .mp4/.mov/.mkv, prores in .mov, ffv1 in .mkv
 * (or .mov), png a directory (no extension or a trailing '/'), or one .png for a still. */
static const char *s_path_ext(const char *path)
{
    size_t n = strlen(path);
    if (n && path[n - 1] == '/')
        return "/";
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        return "";
    return dot + 1;
}

static int s_ext_is(const char *ext, const char *want)
{
    return strcasecmp(ext, want) == 0;
}

/* Codec for a path extension when the spec did not name one; -1 when unknown. */
static int s_codec_for_ext(const char *ext, int still)
{
    if (s_ext_is(ext, "mp4"))
        return RF_CODEC_H264;
    if (s_ext_is(ext, "mov"))
        return RF_CODEC_PRORES;
    if (s_ext_is(ext, "mkv"))
        return RF_CODEC_FFV1;
    if (s_ext_is(ext, "png"))
        return still ? RF_CODEC_PNG : -1;
    if (*ext == '\0' || *ext == '/')
        return RF_CODEC_PNG;
    return -1;
}

/* Returns NULL when path suits codec, else what is allowed. */
static const char *s_path_codec_problem(const char *path, rf_codec codec, int still)
{
    const char *ext = s_path_ext(path);
    switch (codec) {
    case RF_CODEC_H264:
    case RF_CODEC_H265:
        if (s_ext_is(ext, "mp4") || s_ext_is(ext, "mov") || s_ext_is(ext, "mkv"))
            return NULL;
        return "a .mp4, .mov or .mkv file";
    case RF_CODEC_PRORES: return s_ext_is(ext, "mov") ? NULL : "a .mov file";
    case RF_CODEC_FFV1:
        return s_ext_is(ext, "mkv") || s_ext_is(ext, "mov") ? NULL : "a .mkv or .mov file";
    case RF_CODEC_PNG:
        if (still)
            return s_ext_is(ext, "png") ? NULL : "a .png file (the spec is a still)";
        return *ext == '\0' || *ext == '/' ? NULL
                                           : "a directory (no extension, or ending in '/') "
                                             "that will hold frame_000000.png ...";
    default: return "a known codec";
    }
}

static int s_check_path_text(const char *p, size_t len)
{
    return len > 0 && len <= RF_SPEC_MAX_PATH && strlen(p) == len;
}

static void s_read_chunk(s_ctx *c, rf_job_spec *spec, const s_node *nd)
{
    static const char *const keys[] = {"frames", "overlap", "sync_every", "checkpoint_every",
                                       "weights"};
    const s_node *v[5];
    if (s_map(c, nd, "chunk.", keys, 5, v))
        return;
    long long x;
    int bad = 0;
    if (v[0] && s_get_int(c, v[0], "chunk.frames", 5, RF_SPEC_MAX_CHUNK, &x) == 0) {
        if ((x - 1) % 4 != 0 && ++bad)
            s_diag(c, v[0]->line, "chunk.frames",
                   "chunk.frames must be 4n+1 (5, 9, ..., 77, 81, 85, ...), got %lld", x);
        else
            spec->chunk.frames = (int)x;
    } else if (v[0])
        bad++;
    if (v[1] && s_get_int(c, v[1], "chunk.overlap", 0, RF_SPEC_MAX_CHUNK, &x) == 0) {
        if (x % 4 != 0 && ++bad)
            s_diag(c, v[1]->line, "chunk.overlap",
                   "chunk.overlap must be a multiple of 4 (0, 4, 8, 12, 16, ...), got %lld", x);
        else
            spec->chunk.overlap = (int)x;
    } else if (v[1]) {
        bad++;
    }
    if (v[2] && s_get_int(c, v[2], "chunk.sync_every", 1, RF_SPEC_MAX_SYNC, &x) == 0)
        spec->chunk.sync_every = (int)x;
    if (v[3] && s_get_int(c, v[3], "chunk.checkpoint_every", 1, RF_SPEC_MAX_SYNC, &x) == 0)
        spec->chunk.checkpoint_every = (int)x;
    int e;
    if (v[4] && s_get_enum(c, v[4], "chunk.weights", s_weights_names, 3,
                           "linear | uniform | cosine", &e) == 0)
        spec->chunk.weights = (rf_fusion_weights)e;
    if (!bad && spec->chunk.overlap >= spec->chunk.frames)
        s_diag(c, v[1] ? v[1]->line : nd->line, "chunk.overlap",
               "chunk.overlap must be less than chunk.frames (%d), got %d", spec->chunk.frames,
               spec->chunk.overlap);
}

/* plan: what the coordinator fixes at submit. plan.negative may be empty (no negative
 * prompt: a model without a default one), unlike a shot's. */
static void s_read_plan(s_ctx *c, rf_job_spec *spec, const s_node *nd)
{
    static const char *const keys[] = {"negative", "decode_segment", "decode_warmup"};
    const s_node *v[3];
    if (s_map(c, nd, "plan.", keys, 3, v))
        return;
    long long x;
    if (v[0]) {
        if (v[0]->kind != S_SCALAR || s_is_null(v[0]))
            s_diag(c, v[0]->line, "plan.negative", "plan.negative must be text, got %s",
                   s_kind_word(v[0]));
        else if (strlen(v[0]->str) != v[0]->len)
            s_diag(c, v[0]->line, "plan.negative", "plan.negative must not contain NUL characters");
        else if (v[0]->len > RF_SPEC_MAX_PROMPT)
            s_diag(c, v[0]->line, "plan.negative",
                   "plan.negative is %zu bytes; at most %d are allowed", v[0]->len,
                   RF_SPEC_MAX_PROMPT);
        else if (!(spec->plan.negative = strdup(v[0]->str)))
            c->nomem = 1;
    }
    if (v[1] && s_get_int(c, v[1], "plan.decode_segment", 1, RF_SPEC_MAX_SEGMENT, &x) == 0)
        spec->plan.decode_segment = (int)x;
    if (v[2] && s_get_int(c, v[2], "plan.decode_warmup", 0, RF_SPEC_MAX_WARMUP, &x) == 0)
        spec->plan.decode_warmup = (int)x;
}

static void s_read_inputs(s_ctx *c, rf_job_spec *spec, const s_node *nd)
{
    static const char *const keys[] = {"image", "video", "continue", "strength"};
    const s_node *v[4];
    if (s_map(c, nd, "inputs.", keys, 4, v))
        return;
    int given = 0;
    const s_node *src = NULL;
    for (int i = 0; i < 3; i++) {
        if (!v[i])
            continue;
        if (given++) {
            s_diag(c, v[i]->line, "inputs",
                   "inputs takes one of image, video or continue, not several");
            continue;
        }
        spec->inputs.kind = (rf_input_kind)(RF_INPUT_IMAGE + i);
        src = v[i];
    }
    if (src) {
        char field[32];
        snprintf(field, sizeof(field), "inputs.%s", s_input_names[spec->inputs.kind]);
        if (s_get_str(c, src, field, RF_SPEC_MAX_PATH, &spec->inputs.path) == 0) {
            const char *p = spec->inputs.path;
            const char *sep = strstr(p, "://");
            if (strncmp(p, "http://", 7) == 0 || strncmp(p, "https://", 8) == 0) {
                spec->inputs.is_url = 1;
                if (strlen(p) <= (size_t)(p[4] == 's' ? 8 : 7))
                    s_diag(c, src->line, field, "%s is a URL without a host: %s", field, p);
            } else if (sep && strcspn(p, "/") > (size_t)(sep - p)) {
                s_diag(c, src->line, field,
                       "%s must be a file path or an http:// or https:// URL, got %s", field,
                       SHOW(src));
            }
        }
    } else if (given == 0) {
        s_diag(c, nd->line, "inputs", "inputs needs one of image, video or continue");
    }
    if (v[3]) {
        double s;
        if (spec->inputs.kind != RF_INPUT_VIDEO && given == 1)
            s_diag(c, v[3]->line, "inputs.strength",
                   "inputs.strength applies only to inputs.video (how far to move from the "
                   "clip)");
        else if (s_get_num(c, v[3], "inputs.strength", 0.0, 0, 1.0, &s) == 0)
            spec->inputs.strength = s;
    }
}

static void s_read_output(s_ctx *c, rf_job_spec *spec, const s_node *nd, const s_node **path_node,
                          const s_node **crf_node, const s_node **scale_node)
{
    static const char *const keys[] = {"path", "codec", "crf", "scale"};
    const s_node *v[4];
    if (s_map(c, nd, "output.", keys, 4, v))
        return;
    if (v[0]) {
        if (s_get_str(c, v[0], "output.path", RF_SPEC_MAX_PATH, &spec->output.path) == 0)
            spec->explicit_fields |= RF_SPEC_SET_OUTPUT_PATH;
        *path_node = v[0];
    }
    int e;
    if (v[1] && s_get_enum(c, v[1], "output.codec", s_codec_names, RF_CODEC_COUNT,
                           "h264 | h265 | prores | ffv1 | png", &e) == 0) {
        spec->output.codec = (rf_codec)e;
        spec->explicit_fields |= RF_SPEC_SET_CODEC;
    }
    *crf_node = v[2];
    *scale_node = v[3];
}

/* output.scale: a factor (0 < f <= 8) or "WxH". */
static void s_read_scale(s_ctx *c, rf_job_spec *spec, const s_node *nd)
{
    double f;
    int w = 0, h = 0;
    if (s_scalar_num(nd, &f) == 0) {
        if (!(f > 0 && f <= 8)) {
            s_diag(c, nd->line, "output.scale",
                   "output.scale must be a factor > 0 and <= 8 or a size like 1280x720, got %s",
                   nd->str);
            return;
        }
        w = (int)floor(spec->width * f + 0.5);
        h = (int)floor(spec->height * f + 0.5);
        w += w & 1;
        h += h & 1;
    } else {
        char tail;
        if (nd->kind != S_SCALAR || strlen(nd->str) != nd->len ||
            sscanf(nd->str, "%dx%d%c", &w, &h, &tail) != 2) {
            s_diag(c, nd->line, "output.scale",
                   "output.scale must be a factor (e.g. 2 or 0.5) or a size like 1280x720, got "
                   "%s",
                   SHOW(nd));
            return;
        }
        if (w < 2 || h < 2 || w > RF_SPEC_MAX_SCALED || h > RF_SPEC_MAX_SCALED || (w & 1) ||
            (h & 1)) {
            s_diag(c, nd->line, "output.scale",
                   "output.scale size must have even sides between 2 and %d, got %s",
                   RF_SPEC_MAX_SCALED, nd->str);
            return;
        }
    }
    if (w < 2 || h < 2 || w > RF_SPEC_MAX_SCALED || h > RF_SPEC_MAX_SCALED) {
        s_diag(c, nd->line, "output.scale",
               "output.scale %s gives %dx%d; each side must be between 2 and %d", nd->str, w, h,
               RF_SPEC_MAX_SCALED);
        return;
    }
    if (w == spec->width && h == spec->height)
        w = h = 0;
    spec->output.scale_width = w;
    spec->output.scale_height = h;
}

static void s_defaults(rf_job_spec *spec)
{
    spec->fps = 16;
    spec->steps = 50;
    spec->guidance = 5.0;
    spec->shift = 5.0;
    spec->sampler = RF_SAMPLER_UNIPC;
    spec->chunk.frames = 81;
    spec->chunk.overlap = 16;
    spec->chunk.sync_every = 1;
    spec->chunk.checkpoint_every = 5;
    spec->chunk.weights = RF_WEIGHTS_LINEAR;
    spec->mode = RF_MODE_LOCKSTEP;
    spec->output.codec = RF_CODEC_H264;
    spec->output.crf = -1;
    spec->inputs.strength = 0.7;
    spec->plan.decode_warmup = -1;
}

/* The name from a source file: basename without extension, if valid. */
static char *s_name_from_source(const char *source)
{
    const char *slash = strrchr(source, '/');
    const char *base = slash ? slash + 1 : source;
    size_t n = strcspn(base, ".");
    char buf[RF_SPEC_MAX_NAME + 1];
    if (n == 0 || n > RF_SPEC_MAX_NAME)
        return strdup("job");
    memcpy(buf, base, n);
    buf[n] = '\0';
    return strdup(s_valid_name(buf) ? buf : "job");
}

static void s_derive(rf_job_spec *spec)
{
    int nt = 0;
    int64_t total = 0;
    for (int i = 0; i < spec->shot_count; i++) {
        rf_spec_shot *sh = &spec->shots[i];
        if (i == 0 || sh->transition == RF_TRANSITION_CUT) {
            rf_spec_timeline *tl = &spec->timelines[nt++];
            tl->first_shot = i;
            tl->film_start = total;
        }
        rf_spec_timeline *tl = &spec->timelines[nt - 1];
        sh->timeline = nt - 1;
        sh->start_frame = tl->frames;
        tl->frames += sh->frames;
        tl->shot_count++;
        total += sh->frames;
    }
    for (int t = 0; t < nt; t++) {
        rf_spec_timeline *tl = &spec->timelines[t];
        tl->render_frames = tl->frames <= 1 ? 1 : ((tl->frames - 1 + 3) / 4) * 4 + 1;
        tl->latent_frames = (tl->render_frames - 1) / 4 + 1;
    }
    spec->timeline_count = nt;
    spec->total_frames = total;
}

static void s_walk(s_ctx *c, rf_job_spec *spec, const s_node *root)
{
    const s_node *v[K_COUNT];
    if (s_map(c, root, "", s_top_keys, K_COUNT, v))
        return;
    long long x;
    int e;
    double d;
    if (v[K_NAME] && s_get_str(c, v[K_NAME], "name", RF_SPEC_MAX_NAME, &spec->name) == 0) {
        spec->explicit_fields |= RF_SPEC_SET_NAME;
        if (!s_valid_name(spec->name))
            s_diag(c, v[K_NAME]->line, "name",
                   "name may hold only letters, digits, '.', '_' and '-' (at most %d), got %s",
                   RF_SPEC_MAX_NAME, SHOW(v[K_NAME]));
    }
    if (v[K_MODEL])
        s_get_str(c, v[K_MODEL], "model", RF_SPEC_MAX_PATH, &spec->model);
    else
        s_diag(c, root->line, "model",
               "model is required: a model name from the model directories (e.g. reel-tiny) "
               "or a path to a model folder");
    const char *dims[2] = {"width", "height"};
    int *dimp[2] = {&spec->width, &spec->height};
    for (int i = 0; i < 2; i++) {
        const s_node *nd = v[K_WIDTH + i];
        if (!nd) {
            s_diag(c, root->line, dims[i], "%s is required (pixels, a multiple of 16, %d-%d)",
                   dims[i], RF_SPEC_MIN_SIZE, RF_SPEC_MAX_SIZE);
            continue;
        }
        if (s_get_int(c, nd, dims[i], RF_SPEC_MIN_SIZE, RF_SPEC_MAX_SIZE, &x))
            continue;
        long long lower = x / 16 * 16;
        if (x % 16)
            s_diag(c, nd->line, dims[i],
                   "%s must be a multiple of 16 (e.g. %lld or %lld), got %lld", dims[i],
                   lower < 16 ? 16 : lower, (x / 16 + 1) * 16, x);
        else
            *dimp[i] = (int)x;
    }
    if (v[K_FPS] && s_get_int(c, v[K_FPS], "fps", 1, RF_SPEC_MAX_FPS, &x) == 0)
        spec->fps = (int)x;
    if (v[K_SEED] && s_get_int(c, v[K_SEED], "seed", 0, LLONG_MAX, &x) == 0) {
        spec->seed = (uint64_t)x;
        spec->seed_set = 1;
    }
    if (v[K_STEPS] && s_get_int(c, v[K_STEPS], "steps", 1, RF_SPEC_MAX_STEPS, &x) == 0) {
        spec->steps = (int)x;
        spec->explicit_fields |= RF_SPEC_SET_STEPS;
    }
    if (v[K_GUIDANCE] &&
        s_get_num(c, v[K_GUIDANCE], "guidance", 0.0, 0, RF_SPEC_MAX_GUIDANCE, &d) == 0) {
        spec->guidance = d;
        spec->explicit_fields |= RF_SPEC_SET_GUIDANCE;
    }
    if (v[K_SAMPLER] && s_get_enum(c, v[K_SAMPLER], "sampler", s_sampler_names, 3,
                                   "unipc | euler | dpm++", &e) == 0) {
        spec->sampler = (rf_sampler_kind)e;
        spec->explicit_fields |= RF_SPEC_SET_SAMPLER;
    }
    if (v[K_SHIFT] && s_get_num(c, v[K_SHIFT], "shift", 0.0, 1, RF_SPEC_MAX_SHIFT, &d) == 0) {
        spec->shift = d;
        spec->explicit_fields |= RF_SPEC_SET_SHIFT;
    }
    if (v[K_CHUNK])
        s_read_chunk(c, spec, v[K_CHUNK]);
    if (v[K_MODE] &&
        s_get_enum(c, v[K_MODE], "mode", s_mode_names, 2, "lockstep | independent", &e) == 0)
        spec->mode = (rf_job_mode)e;
    if (v[K_PRIORITY] && s_get_int(c, v[K_PRIORITY], "priority", -RF_SPEC_MAX_PRIORITY,
                                   RF_SPEC_MAX_PRIORITY, &x) == 0)
        spec->priority = (int)x;
    if (v[K_INPUTS])
        s_read_inputs(c, spec, v[K_INPUTS]);
    if (v[K_PLAN])
        s_read_plan(c, spec, v[K_PLAN]);

    /* still: `frames: 1` or `still: true` at the top level */
    int still = 0, still_flag = -1;
    if (v[K_STILL] && s_get_bool(c, v[K_STILL], "still", &still_flag) == 0)
        still = still_flag;
    long long top_frames = -1;
    if (v[K_FRAMES] && s_scalar_int(v[K_FRAMES], &x) == 0 && x == 1) {
        top_frames = 1;
        if (still_flag == 0)
            s_diag(c, v[K_FRAMES]->line, "frames",
                   "frames: 1 asks for a single image but still is false; drop one of them");
        still = 1;
    } else if (v[K_FRAMES] && still) {
        s_diag(c, v[K_FRAMES]->line, "frames",
               "a still (still: true) has no frames; drop frames or set it to 1");
    }
    spec->still = still;
    if (still && spec->inputs.kind == RF_INPUT_CONTINUE)
        s_diag(c, v[K_INPUTS]->line, "inputs.continue",
               "inputs.continue makes no sense for a still (a single image); use inputs.image "
               "or inputs.video");

    /* shots: a list, or the one-shot shorthand prompt/negative/seconds/frames */
    const s_node *shots = v[K_SHOTS];
    int shorthand = v[K_PROMPT] || v[K_NEGATIVE] || v[K_SECONDS] || (v[K_FRAMES] && !still);
    s_shot_in *ins = NULL;
    if (shots && shorthand) {
        const s_node *which = v[K_PROMPT]     ? v[K_PROMPT]
                              : v[K_NEGATIVE] ? v[K_NEGATIVE]
                              : v[K_SECONDS]  ? v[K_SECONDS]
                                              : v[K_FRAMES];
        s_diag(c, which->line, "shots",
               "give either a shots list or a top-level prompt (with seconds or frames) for "
               "one shot, not both; move it into a shot");
    } else if (shots) {
        if (shots->kind != S_SEQ) {
            s_diag(c, shots->line, "shots",
                   "shots must be a list of shots (- prompt: ..., seconds: ...), got %s",
                   s_kind_word(shots));
        } else if (shots->n == 0) {
            s_diag(c, shots->line, "shots", "shots is empty; a film needs at least one shot");
        } else if (shots->n > RF_SPEC_MAX_SHOTS) {
            s_diag(c, shots->line, "shots", "shots has %zu shots; at most %d are allowed", shots->n,
                   RF_SPEC_MAX_SHOTS);
        } else if (still && shots->n != 1) {
            s_diag(c, shots->line, "shots", "a still takes exactly one shot, got %zu", shots->n);
        } else {
            spec->shots = calloc(shots->n, sizeof(*spec->shots));
            ins = calloc(shots->n, sizeof(*ins));
            spec->timelines = calloc(shots->n, sizeof(*spec->timelines));
            if (!spec->shots || !ins || !spec->timelines) {
                c->nomem = 1;
                free(ins);
                return;
            }
            spec->shot_count = (int)shots->n;
            for (size_t i = 0; i < shots->n; i++)
                s_read_shot(c, spec, shots->kids[i], (int)i, &ins[i]);
        }
    } else if (shorthand || v[K_FRAMES] || still) {
        spec->shots = calloc(1, sizeof(*spec->shots));
        ins = calloc(1, sizeof(*ins));
        spec->timelines = calloc(1, sizeof(*spec->timelines));
        if (!spec->shots || !ins || !spec->timelines) {
            c->nomem = 1;
            free(ins);
            return;
        }
        spec->shot_count = 1;
        rf_spec_shot *sh = &spec->shots[0];
        sh->line = v[K_PROMPT] ? v[K_PROMPT]->line : root->line;
        if (v[K_PROMPT])
            s_get_str(c, v[K_PROMPT], "prompt", RF_SPEC_MAX_PROMPT, &sh->prompt);
        else
            s_diag(c, root->line, "prompt", "prompt is required (the text to render)");
        if (v[K_NEGATIVE])
            s_get_str(c, v[K_NEGATIVE], "negative", RF_SPEC_MAX_PROMPT, &sh->negative);
        ins[0].seconds = v[K_SECONDS];
        ins[0].frames = top_frames == 1 ? NULL : v[K_FRAMES];
    } else {
        s_diag(c, root->line, "shots",
               "shots is required: a list of shots (- prompt: ..., seconds: ...), or a "
               "top-level prompt with seconds or frames, or still: true with a prompt");
    }

    /* lengths need the final fps */
    if (ins) {
        for (int i = 0; i < spec->shot_count; i++) {
            char prefix[48];
            if (shots)
                snprintf(prefix, sizeof(prefix), "shots[%d].", i);
            else
                prefix[0] = '\0';
            if (still) {
                const s_node *extra = ins[i].seconds ? ins[i].seconds : ins[i].frames;
                if (extra)
                    s_diag(c, extra->line, shots ? "shots[0]" : "seconds",
                           "a still has no length; drop %sseconds/%sframes", prefix, prefix);
                spec->shots[i].frames = 1;
            } else {
                s_shot_length(c, spec, i, &ins[i], prefix, spec->shots[i].line);
            }
        }
        free(ins);
    }

    /* output */
    const s_node *path_node = NULL, *crf_node = NULL, *scale_node = NULL;
    if (v[K_OUTPUT])
        s_read_output(c, spec, v[K_OUTPUT], &path_node, &crf_node, &scale_node);
    if (!(spec->explicit_fields & RF_SPEC_SET_CODEC)) {
        int inferred = -1;
        if (spec->output.path)
            inferred = s_codec_for_ext(s_path_ext(spec->output.path), still);
        spec->output.codec =
            still ? RF_CODEC_PNG : (inferred >= 0 ? (rf_codec)inferred : RF_CODEC_H264);
    }
    if (still && spec->output.codec != RF_CODEC_PNG)
        s_diag(c, v[K_OUTPUT] ? v[K_OUTPUT]->line : root->line, "output.codec",
               "output.codec must be png for a still (a single image), got %s",
               rf_codec_name(spec->output.codec));
    if (spec->output.path) {
        const char *why = s_path_codec_problem(spec->output.path, spec->output.codec, still);
        if (why && path_node)
            s_diag(c, path_node->line, "output.path", "output.path for codec %s must be %s, got %s",
                   rf_codec_name(spec->output.codec), why, SHOW(path_node));
    }
    if (crf_node) {
        if (!rf_codec_has_crf(spec->output.codec))
            s_diag(c, crf_node->line, "output.crf",
                   "output.crf applies only to h264 and h265 (codec is %s); drop it",
                   rf_codec_name(spec->output.codec));
        else if (s_get_int(c, crf_node, "output.crf", 0, 51, &x) == 0) {
            spec->output.crf = (int)x;
            spec->explicit_fields |= RF_SPEC_SET_CRF;
        }
    }
    if (spec->output.crf < 0)
        spec->output.crf = rf_codec_default_crf(spec->output.codec);
    if (scale_node && spec->width && spec->height)
        s_read_scale(c, spec, scale_node);

    /* the whole film's length */
    int64_t total = 0;
    for (int i = 0; i < spec->shot_count; i++)
        total += spec->shots[i].frames;
    if (total > RF_SPEC_MAX_FRAMES)
        s_diag(c, shots ? shots->line : root->line, "shots",
               "the film is %lld frames (%.1f s at %d fps); at most %d frames are allowed",
               (long long)total, (double)total / spec->fps, spec->fps, RF_SPEC_MAX_FRAMES);
}

static void s_spec_free_fields(rf_job_spec *spec)
{
    free(spec->source);
    free(spec->name);
    free(spec->model);
    for (int i = 0; i < spec->shot_count; i++) {
        free(spec->shots[i].prompt);
        free(spec->shots[i].negative);
    }
    free(spec->shots);
    free(spec->timelines);
    free(spec->inputs.path);
    free(spec->output.path);
    free(spec->plan.negative);
}

void rf_spec_free(rf_job_spec **spec)
{
    if (!spec || !*spec)
        return;
    s_spec_free_fields(*spec);
    free(*spec);
    *spec = NULL;
}

/* Fills err from diags: messages joined by '\n', and a count of what did not fit. */
static int s_fill_error(const rf_spec_diags *d, int nomem, rf_error *err)
{
    if (!err)
        return nomem ? RF_ENOMEM : RF_EINVAL;
    err->code = nomem ? RF_ENOMEM : RF_EINVAL;
    size_t o = 0, cap = sizeof(err->msg);
    err->msg[0] = '\0';
    int shown = 0;
    for (int i = 0; i < d->count; i++) {
        size_t need = strlen(d->items[i].msg) + (i ? 1 : 0);
        if (o + need + 48 >= cap)
            break;
        o += (size_t)snprintf(err->msg + o, cap - o, "%s%s", i ? "\n" : "", d->items[i].msg);
        shown++;
    }
    int more = d->count - shown + d->dropped;
    if (more > 0)
        snprintf(err->msg + o, cap - o, "%s(and %d more error%s)", o ? "\n" : "", more,
                 more == 1 ? "" : "s");
    if (nomem && d->count == 0)
        snprintf(err->msg, cap, "out of memory while parsing the spec");
    return err->code;
}

rf_job_spec *rf_spec_parse(const char *text, size_t len, const char *source, rf_spec_diags *diags,
                           rf_error *err)
{
    rf_spec_diags local;
    if (!diags)
        diags = &local;
    memset(diags, 0, sizeof(*diags));
    s_ctx c = {.source = source ? source : "<spec>", .diags = diags};
    if (!text)
        len = 0;
    if (len > RF_SPEC_MAX_BYTES) {
        s_diag(&c, 0, NULL, "is %zu bytes; a spec may be at most %d bytes", len, RF_SPEC_MAX_BYTES);
        s_fill_error(diags, 0, err);
        return NULL;
    }
    size_t fixed_len = 0;
    char *fixed = s_fix_json_surrogates(text ? text : "", len, &fixed_len);
    rf_job_spec *spec = calloc(1, sizeof(*spec));
    if (!fixed || !spec) {
        free(fixed);
        free(spec);
        s_fill_error(diags, 1, err);
        return NULL;
    }
    s_defaults(spec);
    spec->source = strdup(c.source);
    s_tree t;
    memset(&t, 0, sizeof(t));
    if (s_build_tree(&c, fixed, fixed_len, &t) == 0 && !c.nomem)
        s_walk(&c, spec, t.root);
    s_tree_free(&t);
    free(fixed);
    if (!spec->source)
        c.nomem = 1;
    if (s_errors(&c) == 0 && !c.nomem) {
        if (!spec->name) {
            spec->name = s_name_from_source(c.source);
            if (!spec->name)
                c.nomem = 1;
        }
        if (!spec->output.path && spec->name) {
            char buf[RF_SPEC_MAX_NAME + 16];
            if (spec->still)
                snprintf(buf, sizeof(buf), "%s.png", spec->name);
            else if (spec->output.codec == RF_CODEC_PNG)
                snprintf(buf, sizeof(buf), "%s/", spec->name);
            else
                snprintf(buf, sizeof(buf), "%s.%s", spec->name,
                         rf_codec_extension(spec->output.codec));
            spec->output.path = strdup(buf);
            if (!spec->output.path)
                c.nomem = 1;
        }
        if (spec->inputs.kind != RF_INPUT_VIDEO)
            spec->inputs.strength = 0.0;
        if (!c.nomem)
            s_derive(spec);
    }
    if (s_errors(&c) || c.nomem) {
        s_fill_error(diags, c.nomem, err);
        rf_spec_free(&spec);
        return NULL;
    }
    return spec;
}

rf_job_spec *rf_spec_load(const char *path, rf_spec_diags *diags, rf_error *err)
{
    if (diags)
        memset(diags, 0, sizeof(*diags));
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        rf_error_set(err, e == ENOENT ? RF_ENOTFOUND : RF_EIO, "%s: cannot open the spec: %s", path,
                     strerror(e));
        return NULL;
    }
    char *buf = malloc(RF_SPEC_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        rf_error_set(err, RF_ENOMEM, "%s: out of memory reading the spec", path);
        return NULL;
    }
    size_t n = fread(buf, 1, RF_SPEC_MAX_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        rf_error_set(err, RF_EIO, "%s: cannot read the spec (is it a directory?)", path);
        return NULL;
    }
    if (n > RF_SPEC_MAX_BYTES) {
        free(buf);
        rf_error_set(err, RF_EINVAL, "%s: the spec is larger than %d bytes", path,
                     RF_SPEC_MAX_BYTES);
        return NULL;
    }
    rf_job_spec *spec = rf_spec_parse(buf, n, path, diags, err);
    free(buf);
    return spec;
}

int rf_spec_set_output_path(rf_job_spec *spec, const char *path, rf_error *err)
{
    if (!path || !s_check_path_text(path, strlen(path)))
        return rf_error_set(err, RF_EINVAL, "-o: the output path must be 1 to %d bytes",
                            RF_SPEC_MAX_PATH);
    rf_codec codec = spec->output.codec;
    if (!(spec->explicit_fields & RF_SPEC_SET_CODEC) && !spec->still) {
        int inferred = s_codec_for_ext(s_path_ext(path), 0);
        if (inferred < 0)
            return rf_error_set(err, RF_EINVAL,
                                "-o %s: unknown output kind; use .mp4 (h264), .mov (prores), "
                                ".mkv (ffv1) or a directory (png), or set output.codec",
                                path);
        codec = (rf_codec)inferred;
    }
    const char *why = s_path_codec_problem(path, codec, spec->still);
    if (why)
        return rf_error_set(err, RF_EINVAL, "-o %s: the output for codec %s must be %s", path,
                            rf_codec_name(codec), why);
    char *copy = strdup(path);
    if (!copy)
        return rf_error_set(err, RF_ENOMEM, "-o: out of memory");
    free(spec->output.path);
    spec->output.path = copy;
    if (codec != spec->output.codec) {
        spec->output.codec = codec;
        if (!(spec->explicit_fields & RF_SPEC_SET_CRF) || !rf_codec_has_crf(codec))
            spec->output.crf = rf_codec_default_crf(codec);
    }
    spec->explicit_fields |= RF_SPEC_SET_OUTPUT_PATH;
    return 0;
}

/* ---- model resolution ------------------------------------------------------------------ */

int rf_spec_resolve_model(const char *model, const char *const *dirs, size_t ndirs, char **out_path,
                          rf_error *err)
{
    *out_path = NULL;
    if (!model || !*model)
        return rf_error_set(err, RF_EINVAL, "model: no model given");
    struct stat st;
    if (strchr(model, '/') || model[0] == '.' || model[0] == '~') {
        if (model[0] == '~')
            return rf_error_set(err, RF_EINVAL,
                                "model %s: '~' is not expanded; give an absolute path", model);
        if (stat(model, &st) != 0)
            return rf_error_set(err, RF_ENOTFOUND, "model %s: no such file or folder (%s)", model,
                                strerror(errno));
        *out_path = strdup(model);
        return *out_path ? 0 : rf_error_set(err, RF_ENOMEM, "model: out of memory");
    }
    char searched[RF_ERROR_MSG_MAX / 2];
    size_t o = 0;
    searched[0] = '\0';
    for (size_t i = 0; i < ndirs; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        size_t n = strlen(dirs[i]) + strlen(model) + 2;
        char *cand = malloc(n);
        if (!cand)
            return rf_error_set(err, RF_ENOMEM, "model: out of memory");
        snprintf(cand, n, "%s%s%s", dirs[i], dirs[i][strlen(dirs[i]) - 1] == '/' ? "" : "/", model);
        if (stat(cand, &st) == 0) {
            *out_path = cand;
            return 0;
        }
        if (o < sizeof(searched) - 1)
            o += (size_t)snprintf(searched + o, sizeof(searched) - o, "%s%s", o ? ", " : "", cand);
        free(cand);
    }
    if (o == 0)
        return rf_error_set(err, RF_ENOTFOUND,
                            "model %s: no model directories are configured; give a path to the "
                            "model folder or configure model directories",
                            model);
    return rf_error_set(err, RF_ENOTFOUND,
                        "model %s not found; searched %s; put the model folder in one of the "
                        "model directories or give its path",
                        model, searched);
}

/* ---- JSON ------------------------------------------------------------------------------ */

static int s_set(json_t *obj, const char *key, json_t *val)
{
    return val ? json_object_set_new(obj, key, val) : -1;
}

static json_t *s_to_json(const rf_job_spec *spec, int derived)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = 0;
    rc |= s_set(o, "name", json_string(spec->name));
    rc |= s_set(o, "model", json_string(spec->model));
    rc |= s_set(o, "width", json_integer(spec->width));
    rc |= s_set(o, "height", json_integer(spec->height));
    rc |= s_set(o, "fps", json_integer(spec->fps));
    if (spec->seed_set)
        rc |= s_set(o, "seed", json_integer((json_int_t)spec->seed));
    rc |= s_set(o, "steps", json_integer(spec->steps));
    rc |= s_set(o, "guidance", json_real(spec->guidance));
    rc |= s_set(o, "sampler", json_string(rf_sampler_name(spec->sampler)));
    rc |= s_set(o, "shift", json_real(spec->shift));
    json_t *ch = json_object();
    rc |= s_set(o, "chunk", ch);
    if (ch) {
        rc |= s_set(ch, "frames", json_integer(spec->chunk.frames));
        rc |= s_set(ch, "overlap", json_integer(spec->chunk.overlap));
        rc |= s_set(ch, "sync_every", json_integer(spec->chunk.sync_every));
        rc |= s_set(ch, "checkpoint_every", json_integer(spec->chunk.checkpoint_every));
        rc |= s_set(ch, "weights", json_string(rf_weights_name(spec->chunk.weights)));
    }
    rc |= s_set(o, "mode", json_string(rf_mode_name(spec->mode)));
    if (spec->still)
        rc |= s_set(o, "still", json_true());
    json_t *shots = json_array();
    rc |= s_set(o, "shots", shots);
    for (int i = 0; shots && i < spec->shot_count; i++) {
        const rf_spec_shot *sh = &spec->shots[i];
        json_t *s = json_object();
        if (!s || json_array_append_new(shots, s)) {
            rc = -1;
            break;
        }
        rc |= s_set(s, "prompt", json_string(sh->prompt));
        if (sh->negative)
            rc |= s_set(s, "negative", json_string(sh->negative));
        if (!spec->still)
            rc |= s_set(s, "frames", json_integer(sh->frames));
        if (i > 0)
            rc |= s_set(s, "transition",
                        json_string(sh->transition == RF_TRANSITION_CUT ? "cut" : "blend"));
    }
    if (spec->inputs.kind != RF_INPUT_NONE) {
        json_t *in = json_object();
        rc |= s_set(o, "inputs", in);
        if (in) {
            rc |= s_set(in, rf_input_kind_name(spec->inputs.kind), json_string(spec->inputs.path));
            if (spec->inputs.kind == RF_INPUT_VIDEO)
                rc |= s_set(in, "strength", json_real(spec->inputs.strength));
        }
    }
    json_t *out = json_object();
    rc |= s_set(o, "output", out);
    if (out) {
        rc |= s_set(out, "path", json_string(spec->output.path));
        rc |= s_set(out, "codec", json_string(rf_codec_name(spec->output.codec)));
        if (rf_codec_has_crf(spec->output.codec))
            rc |= s_set(out, "crf", json_integer(spec->output.crf));
        if (spec->output.scale_width) {
            char sz[32];
            snprintf(sz, sizeof(sz), "%dx%d", spec->output.scale_width, spec->output.scale_height);
            rc |= s_set(out, "scale", json_string(sz));
        }
    }
    rc |= s_set(o, "priority", json_integer(spec->priority));
    if (spec->plan.negative || spec->plan.decode_segment > 0 || spec->plan.decode_warmup >= 0) {
        json_t *pl = json_object();
        rc |= s_set(o, "plan", pl);
        if (pl && spec->plan.negative)
            rc |= s_set(pl, "negative", json_string(spec->plan.negative));
        if (pl && spec->plan.decode_segment > 0)
            rc |= s_set(pl, "decode_segment", json_integer(spec->plan.decode_segment));
        if (pl && spec->plan.decode_warmup >= 0)
            rc |= s_set(pl, "decode_warmup", json_integer(spec->plan.decode_warmup));
    }
    if (derived) {
        json_t *dv = json_object();
        rc |= s_set(o, "derived", dv);
        json_t *tls = json_array();
        if (dv) {
            rc |= s_set(dv, "total_frames", json_integer(spec->total_frames));
            rc |= s_set(dv, "seconds", json_real((double)spec->total_frames / spec->fps));
            rc |= s_set(dv, "timelines", tls);
        }
        for (int t = 0; tls && t < spec->timeline_count; t++) {
            const rf_spec_timeline *tl = &spec->timelines[t];
            json_t *j =
                json_pack("{s:i, s:i, s:I, s:I, s:I, s:I}", "first_shot", tl->first_shot,
                          "shot_count", tl->shot_count, "frames", (json_int_t)tl->frames,
                          "render_frames", (json_int_t)tl->render_frames, "latent_frames",
                          (json_int_t)tl->latent_frames, "film_start", (json_int_t)tl->film_start);
            if (!j || json_array_append_new(tls, j))
                rc = -1;
        }
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *rf_spec_to_json(const rf_job_spec *spec, unsigned flags, rf_error *err)
{
    json_t *o = s_to_json(spec, (flags & RF_SPEC_JSON_DERIVED) != 0);
    char *s = o ? json_dumps(o, (flags & RF_SPEC_JSON_PRETTY) ? JSON_INDENT(2) | JSON_PRESERVE_ORDER
                                                              : JSON_COMPACT | JSON_PRESERVE_ORDER)
                : NULL;
    json_decref(o);
    if (!s)
        rf_error_set(err, RF_ENOMEM, "out of memory writing the spec as JSON");
    return s;
}

char *rf_spec_canonical(const rf_job_spec *spec, rf_error *err)
{
    json_t *o = s_to_json(spec, 0);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII |
                                    JSON_REAL_PRECISION(17))
                : NULL;
    json_decref(o);
    if (!s)
        rf_error_set(err, RF_ENOMEM, "out of memory writing the canonical spec");
    return s;
}
