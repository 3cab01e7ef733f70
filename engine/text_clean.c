/* text_clean.c - prompt cleaning before tokenization: HTML unescape and whitespace.
 *
 * Reproduces Python's html.unescape (the regex
 *   &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
 * scanned left to right, each match replaced as html._replace_charref does) and the
 * `\s+` -> ' ' plus strip() of Wan's whitespace_clean, on UTF-8 bytes. The entity data
 * lives in html_entities.c (generated). It never reads past len and never trusts an
 * entity length it has not bounded (names are at most 32 code points).
 */
#include "text_clean.h"

#include "html_entities.h"

#include <stdlib.h>
#include <string.h>

typedef struct s_buf {
    char *p;
    size_t n, cap;
} s_buf;

static int s_buf_put(s_buf *b, const void *src, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static int s_buf_put_cp(s_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return s_buf_put(b, u, n);
}

/* Decodes one valid code point at s[0..len); returns its byte length, or 0 if the
 * bytes there are not valid UTF-8. */
static size_t s_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

int rf_utf8_validate(const char *s, size_t len, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = s_utf8_decode(u + i, len - i, &cp);
        if (n == 0) {
            if (bad_at)
                *bad_at = i;
            return -1;
        }
        i += n;
    }
    return 0;
}

int rf_text_is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* The entity named exactly name[0..n), or NULL. */
static const char *s_entity(const char *name, size_t n)
{
    size_t lo = 0, hi = rf_html_entities_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = rf_html_entities[mid].name;
        int c = strncmp(k, name, n);
        if (c == 0 && k[n] != '\0')
            c = 1; /* k is longer: it sorts after name */
        if (c == 0)
            return rf_html_entities[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* html._replace_charref for a numeric reference whose value is num (saturated). */
static int s_put_numeric(s_buf *b, uint32_t num)
{
    if (num == 0x00)
        return s_buf_put_cp(b, 0xFFFD);
    if (num == 0x0D)
        return s_buf_put_cp(b, 0x0D);
    if (num >= 0x80 && num <= 0x9F)
        return s_buf_put_cp(b, rf_html_cp1252[num - 0x80]);
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF)
        return s_buf_put_cp(b, 0xFFFD);
    if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
        (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF) ||
        (num & 0xFFFE) == 0xFFFE)
        return 0; /* an invalid code point: dropped */
    return s_buf_put_cp(b, num);
}

static int s_is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static uint32_t s_hex_val(unsigned char c)
{
    return c <= '9' ? (uint32_t)(c - '0') : (uint32_t)((c | 0x20) - 'a' + 10);
}

/* Tries a reference at s[i] == '&'. Appends its replacement and returns the bytes
 * consumed, or returns 0 when the regex does not match there. -1 on ENOMEM. */
static long s_charref(s_buf *b, const unsigned char *s, size_t len, size_t i)
{
    size_t j = i + 1;
    if (j < len && s[j] == '#') {
        j++;
        int hex = 0;
        if (j < len && s[j] >= '0' && s[j] <= '9') {
            hex = 0;
        } else if (j + 1 < len && (s[j] == 'x' || s[j] == 'X') && s_is_hex(s[j + 1])) {
            hex = 1;
            j++;
        } else {
            return 0; /* '#' cannot start a name either */
        }
        uint32_t num = 0;
        while (j < len && (hex ? s_is_hex(s[j]) : (s[j] >= '0' && s[j] <= '9'))) {
            uint32_t d = hex ? s_hex_val(s[j]) : (uint32_t)(s[j] - '0');
            num = num * (hex ? 16u : 10u) + d;
            if (num > 0x110000)
                num = 0x110000; /* anything past U+10FFFF reads the same */
            j++;
        }
        if (j < len && s[j] == ';')
            j++;
        return s_put_numeric(b, num) ? -1 : (long)(j - i);
    }
    /* [^\t\n\f <&#;]{1,32};? counted in code points */
    size_t chars = 0;
    while (j < len && chars < 32) {
        unsigned char c = s[j];
        if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
            c == ';')
            break;
        uint32_t cp;
        size_t n = s_utf8_decode(s + j, len - j, &cp);
        j += n ? n : 1;
        chars++;
    }
    if (chars == 0)
        return 0;
    if (j < len && s[j] == ';')
        j++;
    const char *name = (const char *)s + i + 1;
    size_t n = j - i - 1;
    const char *v = s_entity(name, n);
    if (v)
        return s_buf_put(b, v, strlen(v)) ? -1 : (long)(j - i);
    /* the longest known prefix of at least 2 characters, shorter than the whole */
    for (size_t x = n - 1; x >= 2 && x < n; x--) {
        v = s_entity(name, x);
        if (v) {
            if (s_buf_put(b, v, strlen(v)) || s_buf_put(b, name + x, n - x))
                return -1;
            return (long)(j - i);
        }
    }
    return s_buf_put(b, s + i, j - i) ? -1 : (long)(j - i);
}

char *rf_html_unescape(const char *s, size_t len, size_t *out_len, rf_error *err)
{
    s_buf b = {0};
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    if (s_buf_put(&b, "", 0))
        goto oom;
    while (i < len) {
        const unsigned char *amp = memchr(u + i, '&', len - i);
        size_t run = amp ? (size_t)(amp - (u + i)) : len - i;
        if (s_buf_put(&b, u + i, run))
            goto oom;
        i += run;
        if (i >= len)
            break;
        long used = s_charref(&b, u, len, i);
        if (used < 0)
            goto oom;
        if (used == 0) {
            if (s_buf_put(&b, "&", 1))
                goto oom;
            used = 1;
        }
        i += (size_t)used;
    }
    if (out_len)
        *out_len = b.n;
    return b.p;
oom:
    free(b.p);
    rf_error_set(err, RF_ENOMEM, "html unescape: out of memory for a %zu-byte prompt", len);
    return NULL;
}

char *rf_text_clean(const char *text, size_t len, rf_error *err)
{
    size_t bad = 0;
    if (rf_utf8_validate(text, len, &bad)) {
        rf_error_set(err, RF_EINVAL,
                     "prompt is not valid UTF-8 (bad byte 0x%02x at offset %zu); pass UTF-8 text",
                     (unsigned char)text[bad], bad);
        return NULL;
    }
    size_t n1 = 0, n2 = 0;
    char *once = rf_html_unescape(text, len, &n1, err);
    if (!once)
        return NULL;
    char *twice = rf_html_unescape(once, n1, &n2, err);
    free(once);
    if (!twice)
        return NULL;
    /* collapse whitespace runs to one space, dropping them at both ends; writing in
     * place is safe since the output never outgrows what was read */
    const unsigned char *u = (const unsigned char *)twice;
    size_t r = 0, w = 0;
    int pending = 0;
    while (r < n2) {
        uint32_t cp = 0;
        size_t n = s_utf8_decode(u + r, n2 - r, &cp);
        if (n == 0) /* cannot happen: the input was validated and unescaping writes UTF-8 */
            n = 1;
        if (rf_text_is_space(cp)) {
            pending = 1;
        } else {
            if (pending && w > 0)
                twice[w++] = ' ';
            pending = 0;
            memmove(twice + w, twice + r, n);
            w += n;
        }
        r += n;
    }
    twice[w] = '\0';
    return twice;
}
