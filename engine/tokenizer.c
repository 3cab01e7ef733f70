/* tokenizer.c - SentencePiece unigram encoder: model loading, normalizer, Viterbi.
 *
 * The .model protobuf is unpacked with protobuf-c, validated the way sentencepiece
 * validates it (unique pieces, one unk, 256 byte pieces under byte_fallback, a
 * character map whose trie fits its blob), and copied into flat arrays; the protobuf
 * is freed at once. Lookups use our own byte tries (sorted children, binary search);
 * the character map is the model's darts-clone double array, walked in place with
 * every index bounds-checked. Encoding follows sentencepiece's normalizer.cc,
 * unigram_model.cc (EncodeOptimized: best path ending at each byte, ties keep the
 * earliest start) and PopulateSentencePieceText (byte fallback, unknown merging),
 * including its float/double arithmetic, so ids match bit for bit. Never trusts a
 * length or offset from the file without checking it.
 */
#include "tokenizer.h"

#include "text_clean.h"

#include "sentencepiece_model.pb-c.h"

#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_MODEL_BYTES (1024u * 1024u * 1024u)
#define S_UNK_PENALTY     10.0f

enum { S_NORMAL = 1, S_UNKNOWN = 2, S_CONTROL = 3, S_USER_DEFINED = 4, S_UNUSED = 5, S_BYTE = 6 };

/* ---- byte trie ------------------------------------------------------------------ */

typedef struct s_trie_node {
    uint32_t first; /* index of the first child; children are contiguous, sorted */
    uint16_t nkids;
    uint8_t label;
    int32_t value; /* piece id ending here, or -1 */
} s_trie_node;

typedef struct s_trie {
    s_trie_node *nodes;
    size_t n, cap;
} s_trie;

typedef struct s_key {
    const char *key;
    uint32_t len;
    int32_t value;
} s_key;

typedef struct s_job {
    uint32_t node, lo, hi, depth;
} s_job;

static int s_key_cmp(const void *a, const void *b)
{
    const s_key *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int s_trie_add(s_trie *t, uint8_t label)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        s_trie_node *p = realloc(t->nodes, cap * sizeof(*p));
        if (!p)
            return -1;
        t->nodes = p;
        t->cap = cap;
    }
    t->nodes[t->n] = (s_trie_node){0, 0, label, -1};
    t->n++;
    return 0;
}

/* Builds t from keys (sorted here; equal keys must have been refused before). */
static int s_trie_build(s_trie *t, s_key *keys, size_t m)
{
    qsort(keys, m, sizeof(*keys), s_key_cmp);
    size_t jcap = 64, jn = 0, jh = 0;
    s_job *jobs = malloc(jcap * sizeof(*jobs));
    if (!jobs || s_trie_add(t, 0)) {
        free(jobs);
        return -1;
    }
    jobs[jn++] = (s_job){0, 0, (uint32_t)m, 0};
    while (jh < jn) {
        s_job j = jobs[jh++];
        uint32_t lo = j.lo;
        if (lo < j.hi && keys[lo].len == j.depth)
            t->nodes[j.node].value = keys[lo++].value;
        uint32_t first = (uint32_t)t->n, groups = 0;
        while (lo < j.hi) {
            uint8_t c = (uint8_t)keys[lo].key[j.depth];
            uint32_t hi = lo + 1;
            while (hi < j.hi && (uint8_t)keys[hi].key[j.depth] == c)
                hi++;
            if (s_trie_add(t, c))
                goto oom;
            if (jn == jcap) {
                size_t cap = jcap * 2;
                s_job *p = realloc(jobs, cap * sizeof(*p));
                if (!p)
                    goto oom;
                jobs = p;
                jcap = cap;
            }
            jobs[jn++] = (s_job){(uint32_t)(t->n - 1), lo, hi, j.depth + 1};
            groups++;
            lo = hi;
        }
        t->nodes[j.node].first = first;
        t->nodes[j.node].nkids = (uint16_t)groups;
    }
    free(jobs);
    return 0;
oom:
    free(jobs);
    return -1;
}

/* The child of node labelled c, or -1. */
static long s_trie_step(const s_trie *t, uint32_t node, uint8_t c)
{
    const s_trie_node *nd = &t->nodes[node];
    uint32_t lo = nd->first, hi = nd->first + nd->nkids;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint8_t l = t->nodes[mid].label;
        if (l == c)
            return (long)mid;
        if (l < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Length of the longest key that prefixes s[0..len), 0 if none. */
static size_t s_trie_longest(const s_trie *t, const char *s, size_t len)
{
    size_t best = 0;
    uint32_t node = 0;
    if (t->n == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        long nx = s_trie_step(t, node, (uint8_t)s[i]);
        if (nx < 0)
            break;
        node = (uint32_t)nx;
        if (t->nodes[node].value >= 0)
            best = i + 1;
    }
    return best;
}

/* ---- the model ------------------------------------------------------------------ */

struct rf_tokenizer {
    char *name;
    int npieces;
    char *arena;      /* piece strings, NUL-terminated, back to back */
    size_t *offset;   /* piece i at arena + offset[i] */
    uint32_t *length; /* piece byte length */
    float *score;
    uint8_t *type;
    float min_score, max_score;
    int unk_id, eos_id, pad_id;
    int byte_fallback;
    int byte_id[256];
    s_trie pieces;       /* NORMAL, USER_DEFINED, UNUSED */
    s_trie user_defined; /* USER_DEFINED only (passed through the normalizer) */
    /* normalizer */
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces, ws_as_suffix;
    uint32_t *units; /* darts-clone double array, decoded from little-endian */
    size_t nunits;
    char *strs; /* replacement strings, NUL-terminated */
    size_t nstrs;
};

void rf_tokenizer_destroy(rf_tokenizer **self)
{
    if (!self || !*self)
        return;
    rf_tokenizer *t = *self;
    free(t->name);
    free(t->arena);
    free(t->offset);
    free(t->length);
    free(t->score);
    free(t->type);
    free(t->pieces.nodes);
    free(t->user_defined.nodes);
    free(t->units);
    free(t->strs);
    free(t);
    *self = NULL;
}

int rf_tokenizer_vocab_size(const rf_tokenizer *self)
{
    return self->npieces;
}
int rf_tokenizer_eos_id(const rf_tokenizer *self)
{
    return self->eos_id;
}
int rf_tokenizer_unk_id(const rf_tokenizer *self)
{
    return self->unk_id;
}
int rf_tokenizer_pad_id(const rf_tokenizer *self)
{
    return self->pad_id;
}

const char *rf_tokenizer_piece(const rf_tokenizer *self, int id)
{
    if (id < 0 || id >= self->npieces)
        return NULL;
    return self->arena + self->offset[id];
}

/* "<0xNN>" with uppercase hex, as sentencepiece's ByteToPiece writes it; -1 otherwise. */
static int s_piece_to_byte(const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>')
        return -1;
    const char *a = memchr(hex, p[3], 16), *b = memchr(hex, p[4], 16);
    if (!a || !b || !p[3] || !p[4])
        return -1;
    return (int)((a - hex) * 16 + (b - hex));
}

/* The id of the reserved (CONTROL/UNKNOWN/BYTE) piece named s with type want, or -1:
 * sentencepiece's eos_id()/pad_id()/unk_id() look the trainer_spec's piece name up. */
static int s_special_id(const rf_tokenizer *t, const char *s, int want)
{
    if (!s)
        return -1;
    for (int i = 0; i < t->npieces; i++) {
        if (t->type[i] == want && strcmp(t->arena + t->offset[i], s) == 0)
            return i;
    }
    return -1;
}

static int s_load_charsmap(rf_tokenizer *t, const uint8_t *blob, size_t len, rf_error *err)
{
    if (len <= 4)
        return rf_error_set(err, RF_EINVAL,
                            "%s: normalizer_spec.precompiled_charsmap is %zu bytes, too short to "
                            "hold its trie size; the model file is broken, re-export it",
                            t->name, len);
    uint32_t trie = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 |
                    (uint32_t)blob[3] << 24;
    if (trie > len - 4 || trie / 4 == 0)
        return rf_error_set(err, RF_EINVAL,
                            "%s: precompiled_charsmap says its trie has %u bytes but the map "
                            "holds %zu; the model file is broken",
                            t->name, trie, len);
    t->nunits = trie / 4;
    t->units = malloc(t->nunits * sizeof(uint32_t));
    t->nstrs = len - 4 - trie;
    t->strs = malloc(t->nstrs + 1);
    if (!t->units || !t->strs)
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory for the character map", t->name);
    for (size_t i = 0; i < t->nunits; i++) {
        const uint8_t *u = blob + 4 + 4 * i;
        t->units[i] =
            (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    }
    memcpy(t->strs, blob + 4 + trie, t->nstrs);
    t->strs[t->nstrs] = '\0';
    return 0;
}

static int s_build(rf_tokenizer *t, const Sentencepiece__ModelProto *mp, rf_error *err)
{
    const Sentencepiece__TrainerSpec *ts = mp->trainer_spec;
    const Sentencepiece__NormalizerSpec *ns = mp->normalizer_spec;
    if (ts && ts->model_type != SENTENCEPIECE__TRAINER_SPEC__MODEL_TYPE__UNIGRAM)
        return rf_error_set(err, RF_EUNSUPPORTED,
                            "%s: trainer_spec.model_type is %d; only unigram models (1) are "
                            "supported (umT5's tokenizer is unigram)",
                            t->name, (int)ts->model_type);
    if (mp->n_pieces == 0)
        return rf_error_set(err, RF_EINVAL,
                            "%s: no pieces; this is not a SentencePiece .model file (or it is "
                            "truncated); use the tokenizer's spiece.model",
                            t->name);
    if (mp->n_pieces > (size_t)INT32_MAX / 2)
        return rf_error_set(err, RF_EINVAL, "%s: %zu pieces is too many", t->name, mp->n_pieces);
    t->npieces = (int)mp->n_pieces;
    size_t total = 0;
    for (size_t i = 0; i < mp->n_pieces; i++) {
        const char *p = mp->pieces[i]->piece;
        if (!p || !*p)
            return rf_error_set(err, RF_EINVAL, "%s: piece %zu is empty; the model is broken",
                                t->name, i);
        total += strlen(p) + 1;
    }
    t->arena = malloc(total);
    t->offset = malloc(mp->n_pieces * sizeof(size_t));
    t->length = malloc(mp->n_pieces * sizeof(uint32_t));
    t->score = malloc(mp->n_pieces * sizeof(float));
    t->type = malloc(mp->n_pieces);
    s_key *normal = malloc(mp->n_pieces * sizeof(s_key));
    s_key *reserved = malloc(mp->n_pieces * sizeof(s_key));
    s_key *user = malloc(mp->n_pieces * sizeof(s_key));
    int rc = 0;
    if (!t->arena || !t->offset || !t->length || !t->score || !t->type || !normal || !reserved ||
        !user) {
        rc =
            rf_error_set(err, RF_ENOMEM, "%s: out of memory for %zu pieces", t->name, mp->n_pieces);
        goto done;
    }
    size_t off = 0, nn = 0, nr = 0, nu = 0;
    t->unk_id = -1;
    t->byte_fallback = ts && ts->byte_fallback;
    for (int b = 0; b < 256; b++)
        t->byte_id[b] = -1;
    t->min_score = FLT_MAX;
    t->max_score = FLT_MIN; /* sentencepiece starts from FLT_MIN, the smallest positive */
    for (size_t i = 0; i < mp->n_pieces; i++) {
        const Sentencepiece__ModelProto__SentencePiece *sp = mp->pieces[i];
        size_t len = strlen(sp->piece);
        if (len > UINT32_MAX / 2) {
            rc = rf_error_set(err, RF_EINVAL, "%s: piece %zu is too long", t->name, i);
            goto done;
        }
        memcpy(t->arena + off, sp->piece, len + 1);
        t->offset[i] = off;
        t->length[i] = (uint32_t)len;
        t->score[i] = sp->score;
        int ty = (int)sp->type;
        if (ty < S_NORMAL || ty > S_BYTE) {
            rc = rf_error_set(err, RF_EINVAL, "%s: piece %zu ('%s') has unknown type %d", t->name,
                              i, sp->piece, ty);
            goto done;
        }
        t->type[i] = (uint8_t)ty;
        s_key k = {t->arena + off, (uint32_t)len, (int32_t)i};
        off += len + 1;
        if (ty == S_NORMAL || ty == S_USER_DEFINED || ty == S_UNUSED)
            normal[nn++] = k;
        else
            reserved[nr++] = k;
        if (ty == S_USER_DEFINED)
            user[nu++] = k;
        if (ty == S_NORMAL) {
            if (sp->score < t->min_score)
                t->min_score = sp->score;
            if (sp->score > t->max_score)
                t->max_score = sp->score;
        }
        if (ty == S_UNKNOWN) {
            if (t->unk_id >= 0) {
                rc = rf_error_set(err, RF_EINVAL, "%s: two unknown pieces (ids %d and %zu)",
                                  t->name, t->unk_id, i);
                goto done;
            }
            t->unk_id = (int)i;
        }
        if (ty == S_BYTE) {
            int b = s_piece_to_byte(sp->piece, len);
            if (!t->byte_fallback) {
                rc = rf_error_set(err, RF_EINVAL,
                                  "%s: byte piece '%s' (id %zu) although byte_fallback is off",
                                  t->name, sp->piece, i);
                goto done;
            }
            if (b < 0) {
                rc = rf_error_set(err, RF_EINVAL, "%s: byte piece '%s' (id %zu) is not <0xNN>",
                                  t->name, sp->piece, i);
                goto done;
            }
            t->byte_id[b] = (int)i;
        }
    }
    if (t->unk_id < 0) {
        rc = rf_error_set(err, RF_EINVAL, "%s: the model defines no unknown piece", t->name);
        goto done;
    }
    for (int b = 0; t->byte_fallback && b < 256; b++) {
        if (t->byte_id[b] < 0) {
            rc = rf_error_set(err, RF_EINVAL,
                              "%s: byte_fallback is on but piece <0x%02X> is missing", t->name, b);
            goto done;
        }
    }
    /* duplicates: sentencepiece refuses a piece defined twice in either map */
    s_key *sets[2] = {normal, reserved};
    size_t counts[2] = {nn, nr};
    for (int s = 0; s < 2; s++) {
        qsort(sets[s], counts[s], sizeof(s_key), s_key_cmp);
        for (size_t i = 1; i < counts[s]; i++) {
            if (s_key_cmp(&sets[s][i - 1], &sets[s][i]) == 0) {
                rc = rf_error_set(err, RF_EINVAL, "%s: piece '%s' is defined twice (ids %d, %d)",
                                  t->name, sets[s][i].key, sets[s][i - 1].value, sets[s][i].value);
                goto done;
            }
        }
    }
    if (s_trie_build(&t->pieces, normal, nn) || s_trie_build(&t->user_defined, user, nu)) {
        rc = rf_error_set(err, RF_ENOMEM, "%s: out of memory building the piece trie", t->name);
        goto done;
    }
    const char *eos_piece = ts ? ts->eos_piece : "</s>";
    const char *pad_piece = ts ? ts->pad_piece : "<pad>";
    t->eos_id = s_special_id(t, eos_piece, S_CONTROL);
    t->pad_id = s_special_id(t, pad_piece, S_CONTROL);
    t->ws_as_suffix = ts && ts->treat_whitespace_as_suffix;
    t->add_dummy_prefix = ns ? ns->add_dummy_prefix : 1;
    t->remove_extra_whitespaces = ns ? ns->remove_extra_whitespaces : 1;
    t->escape_whitespaces = ns ? ns->escape_whitespaces : 1;
    if (ns && ns->has_precompiled_charsmap && ns->precompiled_charsmap.len > 0)
        rc = s_load_charsmap(t, ns->precompiled_charsmap.data, ns->precompiled_charsmap.len, err);
done:
    free(normal);
    free(reserved);
    free(user);
    return rc;
}

rf_tokenizer *rf_tokenizer_from_memory(const void *data, size_t len, const char *name,
                                       rf_error *err)
{
    if (!name)
        name = "tokenizer model";
    rf_tokenizer *t = calloc(1, sizeof(*t));
    if (!t || !(t->name = strdup(name))) {
        free(t);
        rf_error_set(err, RF_ENOMEM, "%s: out of memory", name);
        return NULL;
    }
    Sentencepiece__ModelProto *mp = sentencepiece__model_proto__unpack(NULL, len, data);
    if (!mp) {
        rf_error_set(err, RF_EINVAL,
                     "%s: not a SentencePiece model (the %zu bytes do not parse as a "
                     "ModelProto: truncated or another format); pass the tokenizer's "
                     "spiece.model",
                     name, len);
        rf_tokenizer_destroy(&t);
        return NULL;
    }
    int rc = s_build(t, mp, err);
    sentencepiece__model_proto__free_unpacked(mp, NULL);
    if (rc) {
        rf_tokenizer_destroy(&t);
        return NULL;
    }
    return t;
}

rf_tokenizer *rf_tokenizer_load(const char *path, rf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        rf_error_set(err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO, "tokenizer %s: cannot open: %s",
                     path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            if (cap > S_MAX_MODEL_BYTES) {
                fclose(f);
                free(buf);
                rf_error_set(err, RF_EINVAL, "tokenizer %s: larger than %u bytes; not a model",
                             path, S_MAX_MODEL_BYTES);
                return NULL;
            }
            char *p = realloc(buf, cap);
            if (!p) {
                fclose(f);
                free(buf);
                rf_error_set(err, RF_ENOMEM, "tokenizer %s: out of memory reading it", path);
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        rf_error_set(err, RF_EIO, "tokenizer %s: read error", path);
        return NULL;
    }
    rf_tokenizer *t = rf_tokenizer_from_memory(buf, n, path, err);
    free(buf);
    return t;
}

/* ---- normalizer ----------------------------------------------------------------- */

typedef struct s_out {
    char *p;
    size_t n, cap;
} s_out;

static int s_out_put(s_out *o, const char *s, size_t n)
{
    if (o->n + n > o->cap) {
        size_t cap = o->cap ? o->cap : 64;
        while (cap < o->n + n)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p)
            return -1;
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    return 0;
}

/* sentencepiece's OneCharLen: the UTF-8 length its lead byte announces. */
static size_t s_one_char_len(unsigned char c)
{
    static const unsigned char tab[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return tab[c >> 4];
}

/* sentencepiece's IsValidDecodeUTF8: length of a valid character (U+FFFD itself is
 * valid), 0 when malformed. */
static size_t s_valid_utf8_len(const unsigned char *s, size_t len)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xE0) == 0xC0   ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (n == 0 || len < n)
        return 0;
    uint32_t cp = s[0] & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* darts-clone commonPrefixSearch keeping the longest match: the length of the longest
 * key prefixing s and its value. Returns 0 (no match) or 1; -1 when the array sends an
 * index outside itself. */
static int s_charsmap_match(const rf_tokenizer *t, const unsigned char *s, size_t len, size_t *mlen,
                            uint32_t *value)
{
    const uint32_t *a = t->units;
    size_t n = t->nunits;
    int found = 0;
#define S_OFFSET(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))
    size_t id = S_OFFSET(a[0]);
    for (size_t i = 0; i < len; i++) {
        id ^= s[i];
        if (id >= n)
            return -1;
        uint32_t unit = a[id];
        if ((unit & ((1u << 31) | 0xFFu)) != s[i])
            return found;
        id ^= S_OFFSET(unit);
        if ((unit >> 8) & 1) {
            if (id >= n)
                return -1;
            *value = a[id] & ((1u << 31) - 1);
            *mlen = i + 1;
            found = 1;
        }
    }
#undef S_OFFSET
    return found;
}

/* Normalizer::NormalizePrefix: the normalized form of the text's first unit and how
 * many input bytes it consumed. */
static int s_norm_prefix(const rf_tokenizer *t, const char *in, size_t len, const char **out,
                         size_t *out_len, size_t *consumed, rf_error *err)
{
    size_t m = s_trie_longest(&t->user_defined, in, len);
    if (m > 0) {
        *out = in;
        *out_len = m;
        *consumed = m;
        return 0;
    }
    if (t->units) {
        size_t mlen = 0;
        uint32_t v = 0;
        int r = s_charsmap_match(t, (const unsigned char *)in, len, &mlen, &v);
        if (r < 0)
            return rf_error_set(err, RF_EINVAL,
                                "%s: the character map's trie points outside itself; the model "
                                "file is broken",
                                t->name);
        if (r > 0) {
            if (v >= t->nstrs) /* strs[nstrs] is our NUL: every string ends in bounds */
                return rf_error_set(err, RF_EINVAL,
                                    "%s: the character map names replacement %u outside its "
                                    "%zu-byte string table; the model file is broken",
                                    t->name, v, t->nstrs);
            *out = t->strs + v;
            *out_len = strlen(t->strs + v);
            *consumed = mlen;
            return 0;
        }
    }
    size_t n = s_valid_utf8_len((const unsigned char *)in, len);
    if (n == 0) {
        *out = "\xEF\xBF\xBD";
        *out_len = 3;
        *consumed = 1;
    } else {
        *out = in;
        *out_len = n;
        *consumed = n;
    }
    return 0;
}

static const char s_space_sym[] = "\xE2\x96\x81"; /* U+2581 */

static int s_put_ws(const rf_tokenizer *t, s_out *o)
{
    return t->escape_whitespaces ? s_out_put(o, s_space_sym, 3) : s_out_put(o, " ", 1);
}

/* Normalizer::Normalize (without the alignment, which ids do not need). */
static int s_normalize(const rf_tokenizer *t, const char *in, size_t len, s_out *o, rf_error *err)
{
    const char *sp;
    size_t sp_len, used;
    int rc;
    o->n = 0;
    if (len == 0)
        return 0;
    if (t->remove_extra_whitespaces) {
        while (len > 0) {
            if ((rc = s_norm_prefix(t, in, len, &sp, &sp_len, &used, err)))
                return rc;
            if (!(sp_len == 1 && sp[0] == ' '))
                break;
            in += used;
            len -= used;
        }
    }
    if (len == 0)
        return 0;
    if (!t->ws_as_suffix && t->add_dummy_prefix && s_put_ws(t, o))
        goto oom;
    int prev_space = t->remove_extra_whitespaces;
    while (len > 0) {
        if ((rc = s_norm_prefix(t, in, len, &sp, &sp_len, &used, err)))
            return rc;
        if (prev_space && t->remove_extra_whitespaces) {
            while (sp_len > 0 && sp[0] == ' ') {
                sp++;
                sp_len--;
            }
        }
        if (sp_len > 0) {
            for (size_t i = 0; i < sp_len; i++) {
                int r = (t->escape_whitespaces && sp[i] == ' ') ? s_out_put(o, s_space_sym, 3)
                                                                : s_out_put(o, sp + i, 1);
                if (r)
                    goto oom;
            }
            prev_space = sp[sp_len - 1] == ' ';
        }
        in += used;
        len -= used;
        if (!t->remove_extra_whitespaces)
            prev_space = 0;
    }
    if (t->remove_extra_whitespaces) {
        const char *ws = t->escape_whitespaces ? s_space_sym : " ";
        size_t wl = t->escape_whitespaces ? 3 : 1;
        while (o->n >= wl && memcmp(o->p + o->n - wl, ws, wl) == 0)
            o->n -= wl;
    }
    if (t->ws_as_suffix && t->add_dummy_prefix && s_put_ws(t, o))
        goto oom;
    return 0;
oom:
    return rf_error_set(err, RF_ENOMEM, "tokenizer: out of memory normalizing %zu bytes", len);
}

/* ---- Viterbi and ids ------------------------------------------------------------ */

typedef struct s_best {
    int id;     /* -1 until reached */
    int starts; /* byte where the best piece ending here starts, -1 until reached */
    float score;
} s_best;

static int s_push(int32_t **ids, size_t *n, size_t *cap, int32_t id)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        int32_t *p = realloc(*ids, c * sizeof(*p));
        if (!p)
            return -1;
        *ids = p;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

int rf_tokenizer_encode_raw(const rf_tokenizer *self, const char *text, size_t len,
                            int32_t **ids_out, size_t *n_out, rf_error *err)
{
    *ids_out = NULL;
    *n_out = 0;
    s_out norm = {0};
    int rc = s_normalize(self, text, len, &norm, err);
    if (rc) {
        free(norm.p);
        return rc;
    }
    const size_t size = norm.n;
    if (size == 0) {
        free(norm.p);
        return 0;
    }
    if (size > (size_t)INT32_MAX) {
        free(norm.p);
        return rf_error_set(err, RF_EINVAL, "tokenizer: text of %zu bytes is too long", size);
    }
    const char *s = norm.p;
    s_best *best = malloc((size + 1) * sizeof(*best));
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    int *path = NULL;
    if (!best)
        goto oom;
    for (size_t i = 0; i <= size; i++)
        best[i] = (s_best){-1, -1, 0.0f};
    const float unk_score = self->min_score - S_UNK_PENALTY;
    for (size_t start = 0; start < size;) {
        const float here = best[start].score;
        int has_single = 0;
        size_t mblen = s_one_char_len((unsigned char)s[start]);
        if (mblen > size - start)
            mblen = size - start;
        uint32_t node = 0;
        for (size_t k = start; k < size; k++) {
            long nx = s_trie_step(&self->pieces, node, (uint8_t)s[k]);
            if (nx < 0)
                break;
            node = (uint32_t)nx;
            int id = self->pieces.nodes[node].value;
            if (id < 0 || self->type[id] == S_UNUSED)
                continue;
            size_t end = k + 1, length = end - start;
            /* as in sentencepiece: the score is a double (user-defined pieces get
             * length * max_score - 0.1), the sum compared in double, stored as float */
            double score = self->type[id] == S_USER_DEFINED
                               ? (double)((float)length * self->max_score) - 0.1
                               : (double)self->score[id];
            double cand = score + (double)here;
            if (best[end].starts < 0 || cand > (double)best[end].score) {
                best[end].score = (float)cand;
                best[end].starts = (int)start;
                best[end].id = id;
            }
            if (length == mblen)
                has_single = 1;
        }
        if (!has_single) {
            s_best *b = &best[start + mblen];
            float cand = unk_score + here;
            if (b->starts < 0 || cand > b->score) {
                b->score = cand;
                b->starts = (int)start;
                b->id = self->unk_id;
            }
        }
        start += mblen;
    }
    /* backtrack into path (piece end offsets, in reverse) */
    size_t np = 0;
    path = malloc((size + 1) * sizeof(*path));
    if (!path)
        goto oom;
    for (size_t end = size; end > 0; end = (size_t)best[end].starts)
        path[np++] = (int)end;
    int prev_unk = 0;
    for (size_t i = np; i-- > 0;) {
        size_t end = (size_t)path[i], start = (size_t)best[end].starts;
        int id = best[end].id;
        int is_unk = id == self->unk_id;
        if (is_unk && self->byte_fallback) {
            for (size_t b = start; b < end; b++) {
                if (s_push(&ids, &n, &cap, self->byte_id[(unsigned char)s[b]]))
                    goto oom;
            }
        } else if (!(is_unk && prev_unk)) {
            if (s_push(&ids, &n, &cap, id))
                goto oom;
        }
        prev_unk = is_unk;
    }
    free(path);
    free(best);
    free(norm.p);
    *ids_out = ids;
    *n_out = n;
    return 0;
oom:
    free(path);
    free(best);
    free(ids);
    free(norm.p);
    return rf_error_set(err, RF_ENOMEM, "tokenizer: out of memory encoding %zu bytes", len);
}

int rf_tokenizer_encode(const rf_tokenizer *self, const char *prompt, size_t max_len,
                        int32_t **ids_out, size_t *n_out, rf_error *err)
{
    *ids_out = NULL;
    *n_out = 0;
    if (max_len < 2)
        return rf_error_set(err, RF_EINVAL, "tokenizer: max_len %zu leaves no room for text",
                            max_len);
    if (self->eos_id < 0)
        return rf_error_set(err, RF_EINVAL,
                            "%s: the model has no control piece named by trainer_spec.eos_piece "
                            "(</s>), so prompts cannot be terminated; use umT5's spiece.model",
                            self->name);
    char *clean = rf_text_clean(prompt, strlen(prompt), err);
    if (!clean)
        return err ? err->code : RF_EINVAL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = rf_tokenizer_encode_raw(self, clean, strlen(clean), &ids, &n, err);
    free(clean);
    if (rc)
        return rc;
    if (n > max_len - 1)
        n = max_len - 1;
    int32_t *p = realloc(ids, (n + 1) * sizeof(*p));
    if (!p) {
        free(ids);
        return rf_error_set(err, RF_ENOMEM, "tokenizer: out of memory");
    }
    p[n] = self->eos_id;
    *ids_out = p;
    *n_out = n + 1;
    return 0;
}
