/* fusion.c - weighted means of chunk states over the frames their windows share.
 *
 * The work is a loop over global frames: the chunks covering a frame (in ascending
 * window start), their ramp weights normalized to sum 1, then for every framed tensor a
 * double accumulation in that order, rounded once to f32 and written to every covering
 * chunk. All checks run before the first write, so a refused fusion changes nothing.
 */
#include "fusion.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_ramp_names[RF_FUSION_RAMP_COUNT] = {"linear", "uniform", "cosine"};

int rf_fusion_ramp_parse(const char *name, rf_fusion_ramp *out, rf_error *err)
{
    for (int i = 0; name && i < RF_FUSION_RAMP_COUNT; i++)
        if (strcmp(name, s_ramp_names[i]) == 0) {
            *out = (rf_fusion_ramp)i;
            return 0;
        }
    return rf_error_set(err, RF_EINVAL,
                        "fusion ramp '%s' is unknown; use linear (default), uniform or cosine",
                        name ? name : "(null)");
}

const char *rf_fusion_ramp_name(rf_fusion_ramp ramp)
{
    return (unsigned)ramp < RF_FUSION_RAMP_COUNT ? s_ramp_names[ramp] : "?";
}

static int s_check_windows(const rf_cs_span *w, size_t n, rf_error *err)
{
    /* the usual case, windows in chunk order: distinct starts in one pass (a timeline of
     * 10,000 chunks would otherwise cost 10^8 comparisons per call) */
    size_t sorted = 1;
    while (sorted < n && w[sorted - 1].start < w[sorted].start && w[sorted - 1].len >= 1)
        sorted++;
    if (n > 0 && sorted == n && w[0].start >= 0 && w[n - 1].len >= 1)
        return 0;
    for (size_t a = 0; a < n; a++) {
        if (w[a].start < 0 || w[a].len < 1)
            return rf_error_set(err, RF_EINVAL,
                                "fusion: window %zu [%" PRId64 ", +%" PRId64 ") is empty or "
                                "negative",
                                a, w[a].start, w[a].len);
        for (size_t b = a + 1; b < n; b++)
            if (w[a].start == w[b].start)
                return rf_error_set(err, RF_EINVAL,
                                    "fusion: two chunks both start at frame %" PRId64
                                    "; each chunk of a timeline needs its own window",
                                    w[a].start);
    }
    return 0;
}

int rf_fusion_overlaps(const rf_cs_span *windows, size_t n, size_t i, int64_t *left, int64_t *right,
                       rf_error *err)
{
    int rc = s_check_windows(windows, n, err);
    if (rc)
        return rc;
    int64_t s = windows[i].start, e = s + windows[i].len, l = 0, r = 0;
    for (size_t j = 0; j < n; j++) {
        if (j == i)
            continue;
        int64_t sj = windows[j].start, ej = sj + windows[j].len;
        if (sj < s && ej > s) {
            int64_t c = (ej < e ? ej : e) - s;
            l = c > l ? c : l;
        }
        if (ej > e && sj < e) {
            int64_t c = e - (sj > s ? sj : s);
            r = c > r ? c : r;
        }
    }
    *left = l;
    *right = r;
    return 0;
}

int rf_fusion_overlap_spans(const rf_cs_span *windows, size_t n, size_t i,
                            rf_cs_span spans[RF_CS_MAX_SPANS], int *nspans, rf_error *err)
{
    int64_t l, r;
    int rc = rf_fusion_overlaps(windows, n, i, &l, &r, err);
    if (rc)
        return rc;
    int64_t s = windows[i].start, len = windows[i].len;
    *nspans = 0;
    if (l + r >= len) {
        spans[(*nspans)++] = (rf_cs_span){s, len};
        return 0;
    }
    if (l > 0)
        spans[(*nspans)++] = (rf_cs_span){s, l};
    if (r > 0)
        spans[(*nspans)++] = (rf_cs_span){s + len - r, r};
    return 0;
}

double rf_fusion_weight(rf_fusion_ramp ramp, int64_t len, int64_t left, int64_t right, int64_t pos)
{
    if (ramp == RF_FUSION_UNIFORM)
        return 1.0;
    double w = 1.0;
    if (left > 0 && pos < left)
        w = (double)(pos + 1) / (double)(left + 1);
    if (right > 0 && pos >= len - right) {
        double wr = (double)(len - pos) / (double)(right + 1);
        w = wr < w ? wr : w;
    }
    if (ramp == RF_FUSION_COSINE)
        w = 0.5 - 0.5 * cos(M_PI * w);
    return w;
}

typedef struct s_chunk {
    rf_chunk_state *st;
    int64_t left, right;
} s_chunk;

static int s_by_start(const void *a, const void *b)
{
    const s_chunk *x = a, *y = b;
    return (x->st->window_start > y->st->window_start) -
           (x->st->window_start < y->st->window_start);
}

/* Fuses frame f of tensor name over the covering chunks cov[0..nc) with weights w. */
static void s_fuse_frame(s_chunk *const *cov, const double *w, size_t nc, const char *name,
                         int64_t f, double *acc)
{
    const rf_cs_tensor *t0 = rf_chunk_state_tensor(cov[0]->st, name);
    size_t outer = 1, inner = 1;
    for (int d = 0; d < t0->frame_axis; d++)
        outer *= (size_t)t0->shape[d];
    for (int d = t0->frame_axis + 1; d < t0->ndim; d++)
        inner *= (size_t)t0->shape[d];
    for (size_t o = 0; o < outer; o++) {
        for (size_t j = 0; j < inner; j++)
            acc[j] = 0.0;
        for (size_t k = 0; k < nc; k++) {
            const rf_cs_tensor *t = rf_chunk_state_tensor(cov[k]->st, name);
            size_t nf = (size_t)t->shape[t->frame_axis];
            size_t pos = (size_t)rf_chunk_state_frame_pos(cov[k]->st, f);
            const float *x = t->data + (o * nf + pos) * inner;
            for (size_t j = 0; j < inner; j++)
                acc[j] += w[k] * (double)x[j];
        }
        for (size_t k = 0; k < nc; k++) {
            rf_cs_tensor *t = rf_chunk_state_tensor(cov[k]->st, name);
            size_t nf = (size_t)t->shape[t->frame_axis];
            size_t pos = (size_t)rf_chunk_state_frame_pos(cov[k]->st, f);
            float *x = t->data + (o * nf + pos) * inner;
            for (size_t j = 0; j < inner; j++)
                x[j] = (float)acc[j];
        }
    }
}

int rf_fusion_fuse(rf_chunk_state *const *states, size_t n, rf_fusion_ramp ramp, rf_error *err)
{
    if ((unsigned)ramp >= RF_FUSION_RAMP_COUNT)
        return rf_error_set(err, RF_EINVAL, "fusion: ramp %d is unknown", (int)ramp);
    if (n == 0)
        return 0;
    int rc = 0;
    s_chunk *ch = calloc(n, sizeof(*ch));
    rf_cs_span *win = calloc(n, sizeof(*win));
    s_chunk **cov = calloc(n, sizeof(*cov));
    double *w = calloc(n, sizeof(*w));
    int64_t *ends = calloc(n, sizeof(*ends));
    double *acc = NULL;
    if (!ch || !win || !cov || !w || !ends) {
        rc = rf_error_set(err, RF_ENOMEM, "fusion: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        ch[i].st = states[i];
    qsort(ch, n, sizeof(*ch), s_by_start); /* chunk order, whatever the arrival order */
    size_t inner_max = 1;
    int64_t f_lo = INT64_MAX, f_hi = 0;
    for (size_t i = 0; i < n; i++) {
        win[i] = (rf_cs_span){ch[i].st->window_start, ch[i].st->window_len};
        if (i > 0 && (rc = rf_chunk_state_compatible(ch[0].st, ch[i].st, err)))
            goto done;
        f_lo = win[i].start < f_lo ? win[i].start : f_lo;
        f_hi = win[i].start + win[i].len > f_hi ? win[i].start + win[i].len : f_hi;
        const rf_chunk_state *s = ch[i].st;
        for (int k = 0; k < s->ntensors; k++) {
            size_t inner = 1;
            for (int d = s->tensors[k].frame_axis + 1; d < s->tensors[k].ndim; d++)
                inner *= (size_t)s->tensors[k].shape[d];
            inner_max = inner > inner_max ? inner : inner_max;
        }
    }
    if ((rc = s_check_windows(win, n, err)))
        goto done;
    /* the windows are sorted by start (distinct starts, checked): the overlaps of window i
     * come from the largest end before it and the windows starting inside it, so this is
     * linear in the chunks (a timeline of 10,000 would cost 10^8 otherwise), and gives
     * what rf_fusion_overlaps gives */
    for (size_t i = 0; i < n; i++) {
        int64_t s = win[i].start, e = s + win[i].len;
        ends[i] = i > 0 && ends[i - 1] > e ? ends[i - 1] : e; /* max end of windows 0..i */
        int64_t before = i > 0 ? ends[i - 1] : INT64_MIN, l = 0, r = 0;
        if (before > s)
            l = (before < e ? before : e) - s;
        if (before > e) {
            r = e - s;
        } else {
            for (size_t j = i + 1; j < n && win[j].start < e; j++)
                if (win[j].start + win[j].len > e) {
                    r = e - win[j].start;
                    break;
                }
        }
        ch[i].left = l;
        ch[i].right = r;
    }
    for (size_t i = 0; i < n; i++) {
        rf_cs_span sp[RF_CS_MAX_SPANS];
        int nsp = 0;
        int64_t l = ch[i].left, r = ch[i].right, s = win[i].start, len = win[i].len;
        if (l + r >= len) { /* as rf_fusion_overlap_spans */
            sp[nsp++] = (rf_cs_span){s, len};
        } else {
            if (l > 0)
                sp[nsp++] = (rf_cs_span){s, l};
            if (r > 0)
                sp[nsp++] = (rf_cs_span){s + len - r, r};
        }
        for (int k = 0; k < nsp; k++)
            for (int64_t f = sp[k].start; f < sp[k].start + sp[k].len; f++)
                if (rf_chunk_state_frame_pos(ch[i].st, f) < 0) {
                    rc = rf_error_set(err, RF_EINVAL,
                                      "fusion: the chunk at frame %" PRId64 " shares frame %" PRId64
                                      " with another chunk but its state does not hold it; "
                                      "send every overlap frame (rf_fusion_overlap_spans)",
                                      win[i].start, f);
                    goto done;
                }
    }
    acc = malloc(inner_max * sizeof(double));
    if (!acc) {
        rc = rf_error_set(err, RF_ENOMEM, "fusion: out of memory");
        goto done;
    }
    const rf_chunk_state *first = ch[0].st;
    size_t lo = 0; /* windows before lo (and every one before them) end at or before f */
    for (int64_t f = f_lo; f < f_hi; f++) {
        size_t nc = 0;
        double wsum = 0.0;
        while (lo < n && ends[lo] <= f)
            lo++;
        for (size_t i = lo; i < n && win[i].start <= f; i++) { /* in chunk order */
            if (f >= win[i].start + win[i].len)
                continue;
            w[nc] = rf_fusion_weight(ramp, win[i].len, ch[i].left, ch[i].right, f - win[i].start);
            wsum += w[nc];
            cov[nc++] = &ch[i];
        }
        if (nc < 2)
            continue;
        for (size_t k = 0; k < nc; k++)
            w[k] /= wsum;
        for (int k = 0; k < first->ntensors; k++)
            if (first->tensors[k].frame_axis >= 0)
                s_fuse_frame(cov, w, nc, first->tensors[k].name, f, acc);
    }
done:
    free(acc);
    free(ends);
    free(w);
    free(cov);
    free(win);
    free(ch);
    return rc;
}

/* The first of windows[0..n) (sorted by start) whose start is >= x. */
static size_t s_first_start_ge(const rf_cs_span *w, size_t n, int64_t x)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (w[m].start < x)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* The windows that overlap [s, e): all lie in [*lo, *hi) (a window before the first whose
 * start is > s - maxlen ends at or before s); *lo is moved to the first that does. */
static void s_overlapping(const rf_cs_span *w, size_t n, int64_t maxlen, int64_t s, int64_t e,
                          size_t *lo, size_t *hi)
{
    size_t a = s_first_start_ge(w, n, s - maxlen + 1), b = s_first_start_ge(w, n, e);
    while (a < b && w[a].start + w[a].len <= s)
        a++;
    *lo = a;
    *hi = a < b ? b : a;
}

void rf_fusion_needed(const rf_cs_span *windows, size_t n, int64_t maxlen, int64_t f0, int64_t f1,
                      size_t *lo, size_t *hi)
{
    size_t a, b;
    s_overlapping(windows, n, maxlen, f0, f1, &a, &b);
    int64_t s = INT64_MAX, e = INT64_MIN; /* the span of the windows covering [f0, f1) */
    for (size_t i = a; i < b; i++) {
        if (windows[i].start + windows[i].len <= f0)
            continue; /* a shorter window among longer ones */
        s = windows[i].start < s ? windows[i].start : s;
        e = windows[i].start + windows[i].len > e ? windows[i].start + windows[i].len : e;
    }
    if (s >= e) {
        *lo = *hi = 0;
        return;
    }
    s_overlapping(windows, n, maxlen, s, e, lo, hi);
}
