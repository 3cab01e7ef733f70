/* test_fusion.c - frame-wise fusion of chunk states: shared frames agree afterwards,
 * private frames untouched, agreeing chunks bit-exact, film ends at weight 1, arrival
 * order irrelevant, disagreeing scalars refused, overlap-only fusion equals full fusion,
 * fusing only the windows rf_fusion_needed names gives the full fusion's bits on the range. */
#include "chunk_state.h"
#include "fusion.h"
#include "rf_test.h"

#include <stdlib.h>

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

static float s_rand(void)
{
    s_rng = s_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(s_rng >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

/* A value that depends only on (tensor, global frame, element): chunks built with it
 * already agree on every shared frame. Spans many binades on purpose. */
static float s_global(int tensor, int64_t f, size_t j)
{
    uint64_t h = (uint64_t)(tensor * 1000003 + f * 7919) * 0x9e3779b97f4a7c15ull + j * 40503u;
    h ^= h >> 29;
    float m = (float)((h >> 11) % 100000) / 7.0f - 7000.0f;
    int e = (int)((h >> 3) % 60) - 30;
    return ldexpf(m, e);
}

/* A state for window [start, start+len): "x" [2,len,3] (frame axis 1), "h" [len,4]
 * (frame axis 0), unframed "u" [5]; scalars step, sampler, shift. agree: fill from
 * s_global instead of random values. */
static rf_chunk_state *s_state(int64_t start, int64_t len, int step, int agree)
{
    rf_error err = {0};
    rf_chunk_state *s = rf_chunk_state_new(start, len, &err);
    RF_CHECK_MSG(s, "%s", err.msg);
    int64_t sx[3] = {2, len, 3}, sh[2] = {len, 4}, su[1] = {5};
    rf_cs_tensor *x = rf_chunk_state_add(s, "x", 3, sx, 1, NULL, &err);
    rf_cs_tensor *h = rf_chunk_state_add(s, "h", 2, sh, 0, NULL, &err);
    rf_cs_tensor *u = rf_chunk_state_add(s, "u", 1, su, -1, NULL, &err);
    RF_CHECK_MSG(x && h && u, "%s", err.msg);
    for (int o = 0; o < 2; o++)
        for (int64_t f = 0; f < len; f++)
            for (int j = 0; j < 3; j++)
                x->data[(o * len + f) * 3 + j] =
                    agree ? s_global(0, start + f, (size_t)(o * 3 + j)) : s_rand();
    for (int64_t f = 0; f < len; f++)
        for (int j = 0; j < 4; j++)
            h->data[f * 4 + j] = agree ? s_global(1, start + f, (size_t)j) : s_rand();
    for (int j = 0; j < 5; j++)
        u->data[j] = s_rand();
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(s, "step", step, &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_str(s, "sampler", "unipc", &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_f64(s, "shift", 5.0, &err), 0);
    return s;
}

/* Value of tensor name at (outer o, global frame f, inner j) of state s. */
static float s_at(const rf_chunk_state *s, const char *name, size_t o, int64_t f, size_t j)
{
    const rf_cs_tensor *t = rf_chunk_state_tensor(s, name);
    size_t inner = t->frame_axis == 1 ? 3 : 4;
    int64_t p = rf_chunk_state_frame_pos(s, f);
    return t->data[(o * (size_t)t->shape[t->frame_axis] + (size_t)p) * inner + j];
}

static int s_same_bits(const rf_chunk_state *a, const rf_chunk_state *b)
{
    if (a->ntensors != b->ntensors)
        return 0;
    for (int k = 0; k < a->ntensors; k++)
        if (memcmp(a->tensors[k].data, b->tensors[k].data,
                   rf_cs_numel(&a->tensors[k]) * sizeof(float)) != 0)
            return 0;
    return 1;
}

/* T = 17 latent frames, C = 8, stride 5, the last window aligned to the end. */
static const int64_t s_starts[3] = {0, 5, 9};
#define LEN 8

static void s_make3(rf_chunk_state *st[3], int agree)
{
    for (int i = 0; i < 3; i++)
        st[i] = s_state(s_starts[i], LEN, 7, agree);
}

static void s_free3(rf_chunk_state *st[3])
{
    for (int i = 0; i < 3; i++)
        rf_chunk_state_destroy(&st[i]);
}

static int s_covers(int64_t start, int64_t f)
{
    return f >= start && f < start + LEN;
}

RF_TEST(shared_frames_identical_private_frames_untouched)
{
    for (int ramp = 0; ramp < RF_FUSION_RAMP_COUNT; ramp++) {
        rf_chunk_state *st[3], *before[3];
        s_make3(st, 0);
        for (int i = 0; i < 3; i++)
            before[i] = rf_chunk_state_clone(st[i], NULL);
        rf_error err = {0};
        RF_CHECK_MSG(rf_fusion_fuse(st, 3, (rf_fusion_ramp)ramp, &err) == 0, "%s", err.msg);
        for (int64_t f = 0; f < 17; f++) {
            int holders[3], nh = 0;
            for (int i = 0; i < 3; i++)
                if (s_covers(s_starts[i], f))
                    holders[nh++] = i;
            for (size_t o = 0; o < 2; o++)
                for (size_t j = 0; j < 3; j++) {
                    float v0 = s_at(st[holders[0]], "x", o, f, j);
                    if (nh == 1) /* nobody else covers f: untouched */
                        RF_CHECK(v0 == s_at(before[holders[0]], "x", o, f, j));
                    for (int k = 1; k < nh; k++)
                        RF_CHECK(memcmp(&v0, &(float){s_at(st[holders[k]], "x", o, f, j)},
                                        sizeof(float)) == 0);
                }
            for (size_t j = 0; j < 4; j++) {
                float v0 = s_at(st[holders[0]], "h", 0, f, j);
                if (nh == 1)
                    RF_CHECK(v0 == s_at(before[holders[0]], "h", 0, f, j));
                for (int k = 1; k < nh; k++)
                    RF_CHECK(v0 == s_at(st[holders[k]], "h", 0, f, j));
            }
        }
        for (int i = 0; i < 3; i++) { /* unframed tensors are per chunk: untouched */
            RF_CHECK(memcmp(rf_chunk_state_tensor(st[i], "u")->data,
                            rf_chunk_state_tensor(before[i], "u")->data, 5 * sizeof(float)) == 0);
            rf_chunk_state_destroy(&before[i]);
        }
        s_free3(st);
    }
}

RF_TEST(fused_values_are_the_ramp_weighted_mean)
{
    rf_chunk_state *st[3], *before[3];
    s_make3(st, 0);
    for (int i = 0; i < 3; i++)
        before[i] = rf_chunk_state_clone(st[i], NULL);
    RF_CHECK_EQ_INT(rf_fusion_fuse(st, 3, RF_FUSION_LINEAR, NULL), 0);
    /* chunks 0 and 1 share frames 5, 6, 7 (overlap 3): chunk 0 weighs 3/4, 2/4, 1/4 */
    for (int64_t f = 5; f < 8; f++) {
        double w0 = (double)(8 - f) / 4.0, w1 = (double)(f - 4) / 4.0;
        double want = w0 * s_at(before[0], "x", 1, f, 2) + w1 * s_at(before[1], "x", 1, f, 2);
        RF_CHECK_NEAR(s_at(st[0], "x", 1, f, 2), want, 1e-6);
    }
    /* chunks 1 and 2 share frames 9..12 (overlap 4, the end-aligned window) */
    for (int64_t f = 9; f < 13; f++) {
        double w1 = (double)(13 - f) / 5.0, w2 = (double)(f - 8) / 5.0;
        double want = w1 * s_at(before[1], "h", 0, f, 3) + w2 * s_at(before[2], "h", 0, f, 3);
        RF_CHECK_NEAR(s_at(st[2], "h", 0, f, 3), want, 1e-6);
    }
    for (int i = 0; i < 3; i++)
        rf_chunk_state_destroy(&before[i]);
    s_free3(st);
    /* uniform: a plain mean */
    s_make3(st, 0);
    float a = s_at(st[0], "x", 0, 6, 0), b = s_at(st[1], "x", 0, 6, 0);
    RF_CHECK_EQ_INT(rf_fusion_fuse(st, 3, RF_FUSION_UNIFORM, NULL), 0);
    RF_CHECK_NEAR(s_at(st[1], "x", 0, 6, 0), 0.5 * a + 0.5 * b, 1e-6);
    s_free3(st);
}

RF_TEST(chunks_that_agree_are_unchanged_bit_exact)
{
    for (int ramp = 0; ramp < RF_FUSION_RAMP_COUNT; ramp++) {
        rf_chunk_state *st[3], *before[3];
        s_make3(st, 1);
        for (int i = 0; i < 3; i++)
            before[i] = rf_chunk_state_clone(st[i], NULL);
        RF_CHECK_EQ_INT(rf_fusion_fuse(st, 3, (rf_fusion_ramp)ramp, NULL), 0);
        for (int i = 0; i < 3; i++) {
            RF_CHECK_MSG(s_same_bits(st[i], before[i]), "ramp %s chunk %d changed",
                         rf_fusion_ramp_name((rf_fusion_ramp)ramp), i);
            rf_chunk_state_destroy(&before[i]);
        }
        s_free3(st);
    }
}

RF_TEST(film_first_and_last_frames_keep_weight_one)
{
    /* a short film covered twice: [0,8) and [2,10) */
    rf_cs_span w[2] = {{0, 8}, {2, 8}};
    int64_t l0, r0, l1, r1;
    RF_CHECK_EQ_INT(rf_fusion_overlaps(w, 2, 0, &l0, &r0, NULL), 0);
    RF_CHECK_EQ_INT(rf_fusion_overlaps(w, 2, 1, &l1, &r1, NULL), 0);
    RF_CHECK(l0 == 0 && r0 == 6 && l1 == 6 && r1 == 0);
    for (int ramp = 0; ramp < RF_FUSION_RAMP_COUNT; ramp++) {
        rf_fusion_ramp rp = (rf_fusion_ramp)ramp;
        RF_CHECK(rf_fusion_weight(rp, 8, l0, r0, 0) == 1.0);
        RF_CHECK(rf_fusion_weight(rp, 8, l0, r0, 1) == 1.0); /* not overlapped: 1 */
        RF_CHECK(rf_fusion_weight(rp, 8, l1, r1, 7) == 1.0);
        for (int64_t p = 0; p < 8; p++) {
            double a = rf_fusion_weight(rp, 8, l0, r0, p);
            RF_CHECK(a > 0.0 && a <= 1.0);
            if (ramp != RF_FUSION_UNIFORM && p >= 2) {
                /* the two ramps cross-fade: weights of the two chunks sum to 1 */
                RF_CHECK(a < 1.0);
                RF_CHECK_NEAR(a + rf_fusion_weight(rp, 8, l1, r1, p - 2), 1.0, 1e-15);
            }
        }
    }
    /* and in a fusion the private first two and last two frames are untouched */
    rf_chunk_state *a = s_state(0, 8, 1, 0), *b = s_state(2, 8, 1, 0);
    float f0 = s_at(a, "x", 0, 0, 0), f9 = s_at(b, "x", 1, 9, 2);
    rf_chunk_state *both[2] = {b, a};
    RF_CHECK_EQ_INT(rf_fusion_fuse(both, 2, RF_FUSION_COSINE, NULL), 0);
    RF_CHECK(s_at(a, "x", 0, 0, 0) == f0 && s_at(b, "x", 1, 9, 2) == f9);
    rf_chunk_state_destroy(&a);
    rf_chunk_state_destroy(&b);
}

RF_TEST(result_does_not_depend_on_arrival_order)
{
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    rf_chunk_state *orig[3], *ref[3];
    s_make3(orig, 0);
    for (int p = 0; p < 6; p++) {
        rf_chunk_state *c[3], *arrive[3];
        for (int i = 0; i < 3; i++)
            c[i] = rf_chunk_state_clone(orig[i], NULL);
        for (int i = 0; i < 3; i++)
            arrive[i] = c[perms[p][i]];
        RF_CHECK_EQ_INT(rf_fusion_fuse(arrive, 3, RF_FUSION_LINEAR, NULL), 0);
        for (int i = 0; i < 3; i++) {
            if (p == 0)
                ref[i] = rf_chunk_state_clone(c[i], NULL);
            else
                RF_CHECK_MSG(s_same_bits(c[i], ref[i]), "order %d changes chunk %d", p, i);
        }
        s_free3(c);
    }
    s_free3(ref);
    s_free3(orig);
}

RF_TEST(disagreeing_scalars_are_refused_and_nothing_changes)
{
    rf_chunk_state *st[3], *before[3];
    s_make3(st, 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(st[1], "step", 8, NULL), 0);
    for (int i = 0; i < 3; i++)
        before[i] = rf_chunk_state_clone(st[i], NULL);
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_fusion_fuse(st, 3, RF_FUSION_LINEAR, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "'step'");
    RF_CHECK_CONTAINS(err.msg, "7");
    RF_CHECK_CONTAINS(err.msg, "8");
    for (int i = 0; i < 3; i++)
        RF_CHECK(s_same_bits(st[i], before[i]));
    /* a solver order counter present in one chunk only */
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(st[1], "step", 7, NULL), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(st[2], "lower_order_nums", 1, NULL), 0);
    RF_CHECK_EQ_INT(rf_fusion_fuse(st, 3, RF_FUSION_LINEAR, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "lower_order_nums");
    /* a different shift (f64, compared bit for bit) or sampler */
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(st[0], "lower_order_nums", 1, NULL), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(st[1], "lower_order_nums", 1, NULL), 0);
    RF_CHECK_EQ_INT(rf_fusion_fuse(st, 3, RF_FUSION_LINEAR, &err), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_f64(st[2], "shift", 5.000000001, NULL), 0);
    RF_CHECK_EQ_INT(rf_fusion_fuse(st, 3, RF_FUSION_LINEAR, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "shift");
    RF_CHECK_EQ_INT(rf_chunk_state_set_f64(st[2], "shift", 5.0, NULL), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_str(st[0], "sampler", "euler", NULL), 0);
    RF_CHECK_EQ_INT(rf_fusion_fuse(st, 3, RF_FUSION_LINEAR, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "sampler");
    for (int i = 0; i < 3; i++)
        rf_chunk_state_destroy(&before[i]);
    s_free3(st);
}

RF_TEST(overlap_only_fusion_equals_full_fusion)
{
    rf_cs_span win[3];
    for (int i = 0; i < 3; i++)
        win[i] = (rf_cs_span){s_starts[i], LEN};
    rf_cs_span sp[RF_CS_MAX_SPANS];
    int nsp;
    RF_CHECK_EQ_INT(rf_fusion_overlap_spans(win, 3, 1, sp, &nsp, NULL), 0);
    RF_CHECK(nsp == 2 && sp[0].start == 5 && sp[0].len == 3 && sp[1].start == 9 && sp[1].len == 4);
    RF_CHECK_EQ_INT(rf_fusion_overlap_spans(win, 3, 0, sp, &nsp, NULL), 0);
    RF_CHECK(nsp == 1 && sp[0].start == 5 && sp[0].len == 3);
    for (int ramp = 0; ramp < RF_FUSION_RAMP_COUNT; ramp++) {
        rf_chunk_state *full[3], *workers[3], *piece[3];
        s_make3(full, 0);
        for (int i = 0; i < 3; i++) {
            workers[i] = rf_chunk_state_clone(full[i], NULL);
            RF_CHECK_EQ_INT(rf_fusion_overlap_spans(win, 3, (size_t)i, sp, &nsp, NULL), 0);
            piece[i] = rf_chunk_state_extract(workers[i], sp, nsp, NULL);
            RF_CHECK(piece[i] && piece[i]->ntensors == 2); /* "u" does not travel */
        }
        RF_CHECK_EQ_INT(rf_fusion_fuse(full, 3, (rf_fusion_ramp)ramp, NULL), 0);
        RF_CHECK_EQ_INT(rf_fusion_fuse(piece, 3, (rf_fusion_ramp)ramp, NULL), 0);
        rf_error err = {0};
        for (int i = 0; i < 3; i++) {
            RF_CHECK_MSG(rf_chunk_state_apply(workers[i], piece[i], &err) == 0, "%s", err.msg);
            RF_CHECK(s_same_bits(workers[i], full[i]));
        }
        s_free3(piece);
        s_free3(workers);
        s_free3(full);
    }
}

/* Windows of mixed lengths in random order, one inside another, several deep: every
 * fused value is the ramp-weighted mean (in chunk order, in double) with each window's
 * overlaps as rf_fusion_overlaps reports them, bit for bit. */
RF_TEST(mixed_windows_match_the_reference_bit_for_bit)
{
    for (int trial = 0; trial < 40; trial++) {
        enum { N = 9 };
        int64_t start[N], len[N];
        int64_t next = 0;
        for (int i = 0; i < N; i++) { /* distinct starts, lengths 1..12 */
            next += 1 + (int64_t)((s_rng >> 33) % 3);
            s_rand();
            start[i] = next;
            len[i] = 1 + (int64_t)((s_rng >> 35) % 12);
            s_rand();
        }
        rf_chunk_state *st[N], *ref[N];
        rf_cs_span win[N];
        for (int i = 0; i < N; i++) {
            int k = (i * 5 + trial) % N; /* arrival order is not chunk order */
            st[i] = s_state(start[k], len[k], 3, 0);
            ref[i] = rf_chunk_state_clone(st[i], NULL);
            win[k] = (rf_cs_span){start[k], len[k]};
        }
        rf_fusion_ramp ramp = (rf_fusion_ramp)(trial % RF_FUSION_RAMP_COUNT);
        rf_error err = {0};
        RF_CHECK_MSG(rf_fusion_fuse(st, N, ramp, &err) == 0, "%s", err.msg);
        for (int k = 0; k < N; k++) { /* state of chunk k (st[] is in arrival order) */
            int sk = 0;
            while (st[sk]->window_start != start[k])
                sk++;
            for (int64_t f = start[k]; f < start[k] + len[k]; f++) {
                double w[N], wsum = 0;
                int cov[N], nc = 0;
                for (int i = 0; i < N; i++) {
                    if (f < start[i] || f >= start[i] + len[i])
                        continue;
                    int64_t l, r;
                    RF_CHECK_EQ_INT(rf_fusion_overlaps(win, N, (size_t)i, &l, &r, NULL), 0);
                    w[nc] = rf_fusion_weight(ramp, len[i], l, r, f - start[i]);
                    wsum += w[nc];
                    cov[nc++] = i;
                }
                for (size_t j = 0; j < 3; j++) {
                    double acc = 0;
                    for (int q = 0; q < nc; q++) {
                        int rk = 0;
                        while (ref[rk]->window_start != start[cov[q]])
                            rk++;
                        acc += w[q] / wsum * (double)s_at(ref[rk], "x", 1, f, j);
                    }
                    float want = nc < 2 ? s_at(ref[sk], "x", 1, f, j) : (float)acc;
                    RF_CHECK_MSG(memcmp(&want, &(float){s_at(st[sk], "x", 1, f, j)}, 4) == 0,
                                 "trial %d chunk %d frame %lld: %.9g, want %.9g", trial, k,
                                 (long long)f, (double)s_at(st[sk], "x", 1, f, j), (double)want);
                }
            }
        }
        for (int i = 0; i < N; i++) {
            rf_chunk_state_destroy(&st[i]);
            rf_chunk_state_destroy(&ref[i]);
        }
    }
}

/* A range's fused values from just the windows rf_fusion_needed names (what the
 * coordinator reads for one DECODE segment) are the full fusion's, bit for bit, for
 * windows of mixed lengths, one inside another, and ranges inside, across and beyond them;
 * the windows named are few (not the timeline). */
RF_TEST(fusing_the_needed_windows_gives_the_full_fusion_on_the_range)
{
    for (int trial = 0; trial < 60; trial++) {
        enum { N = 40 };
        int64_t next = 0, maxlen = 0;
        rf_cs_span win[N];
        rf_chunk_state *all[N];
        for (int i = 0; i < N; i++) { /* distinct sorted starts, lengths 1..10 (or all 2) */
            next += 1 + (int64_t)((s_rng >> 33) % 3);
            s_rand();
            int64_t len = trial % 3 == 0 ? 2 : 1 + (int64_t)((s_rng >> 35) % 10);
            s_rand();
            win[i] = (rf_cs_span){next, len};
            maxlen = len > maxlen ? len : maxlen;
            all[i] = s_state(win[i].start, len, 3, 0);
        }
        rf_fusion_ramp ramp = (rf_fusion_ramp)(trial % RF_FUSION_RAMP_COUNT);
        int64_t end = win[N - 1].start + win[N - 1].len;
        int64_t f0 = (int64_t)((s_rng >> 30) % (uint64_t)(end + 4)) - 2;
        s_rand();
        int64_t f1 = f0 + 1 + (int64_t)((s_rng >> 30) % 9);
        s_rand();
        size_t lo = 99, hi = 0;
        rf_fusion_needed(win, N, maxlen, f0, f1, &lo, &hi);
        RF_CHECK(lo <= hi && hi <= N);
        rf_chunk_state *part[N];
        for (size_t i = lo; i < hi; i++)
            part[i - lo] = rf_chunk_state_clone(all[i], NULL);
        rf_error err = {0};
        RF_CHECK_MSG(rf_fusion_fuse(all, N, ramp, &err) == 0, "%s", err.msg);
        RF_CHECK_MSG(rf_fusion_fuse(part, hi - lo, ramp, &err) == 0, "%s", err.msg);
        for (int i = 0; i < N; i++) {
            int64_t a = win[i].start > f0 ? win[i].start : f0;
            int64_t b = win[i].start + win[i].len < f1 ? win[i].start + win[i].len : f1;
            if (a >= b)
                continue; /* window i covers nothing of the range */
            RF_CHECK_MSG((size_t)i >= lo && (size_t)i < hi,
                         "trial %d: window %d covers [%lld, %lld) but is not named", trial, i,
                         (long long)f0, (long long)f1);
            if ((size_t)i < lo || (size_t)i >= hi)
                continue;
            for (int64_t f = a; f < b; f++)
                for (size_t o = 0; o < 2; o++)
                    for (size_t j = 0; j < 3; j++) {
                        float x = s_at(all[i], "x", o, f, j), y = s_at(part[i - lo], "x", o, f, j);
                        RF_CHECK_MSG(memcmp(&x, &y, 4) == 0,
                                     "trial %d window %d frame %lld: %.9g, full fusion %.9g", trial,
                                     i, (long long)f, (double)y, (double)x);
                    }
        }
        RF_CHECK_MSG(hi - lo <= 20, "trial %d: %zu windows named for %lld frames", trial, hi - lo,
                     (long long)(f1 - f0));
        for (size_t i = lo; i < hi; i++)
            rf_chunk_state_destroy(&part[i - lo]);
        for (int i = 0; i < N; i++)
            rf_chunk_state_destroy(&all[i]);
    }
    size_t lo = 7, hi = 7;
    rf_fusion_needed(NULL, 0, 0, 0, 4, &lo, &hi);
    RF_CHECK(lo == hi);
}

RF_TEST(hostile_inputs)
{
    rf_error err = {0};
    rf_fusion_ramp r;
    RF_CHECK_EQ_INT(rf_fusion_ramp_parse("cosine", &r, &err), 0);
    RF_CHECK_EQ_INT(r, RF_FUSION_COSINE);
    RF_CHECK_EQ_INT(rf_fusion_ramp_parse("gaussian", &r, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "linear");
    RF_CHECK_EQ_INT(rf_fusion_ramp_parse(NULL, &r, &err), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_fusion_fuse(NULL, 0, RF_FUSION_LINEAR, &err), 0);
    rf_chunk_state *st[3];
    s_make3(st, 0);
    RF_CHECK_EQ_INT(rf_fusion_fuse(st, 3, (rf_fusion_ramp)7, &err), RF_EINVAL);
    /* two chunks with the same window start */
    rf_chunk_state *dup[2] = {st[1], st[1]};
    RF_CHECK_EQ_INT(rf_fusion_fuse(dup, 2, RF_FUSION_LINEAR, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "both start at frame 5");
    /* a piece that lacks a shared frame */
    rf_cs_span part = {5, 2}; /* chunk 1 shares 5..7 with chunk 0 */
    rf_chunk_state *p1 = rf_chunk_state_extract(st[1], &part, 1, &err);
    RF_CHECK(p1);
    rf_chunk_state *mixed[3] = {st[0], p1, st[2]};
    RF_CHECK_EQ_INT(rf_fusion_fuse(mixed, 3, RF_FUSION_LINEAR, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "does not hold");
    rf_chunk_state_destroy(&p1);
    /* a tensor with another shape */
    rf_chunk_state *odd = rf_chunk_state_new(5, LEN, &err);
    int64_t sx[3] = {2, LEN, 4}, sh[2] = {LEN, 4};
    RF_CHECK(rf_chunk_state_add(odd, "x", 3, sx, 1, NULL, &err));
    RF_CHECK(rf_chunk_state_add(odd, "h", 2, sh, 0, NULL, &err));
    RF_CHECK_EQ_INT(rf_chunk_state_set_i64(odd, "step", 7, NULL), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_str(odd, "sampler", "unipc", NULL), 0);
    RF_CHECK_EQ_INT(rf_chunk_state_set_f64(odd, "shift", 5.0, NULL), 0);
    rf_chunk_state *two[2] = {st[0], odd};
    RF_CHECK_EQ_INT(rf_fusion_fuse(two, 2, RF_FUSION_LINEAR, &err), RF_ESHAPE);
    RF_CHECK_CONTAINS(err.msg, "'x'");
    rf_chunk_state_destroy(&odd);
    /* a lone chunk: nothing to fuse, nothing changes */
    rf_chunk_state *c = rf_chunk_state_clone(st[0], NULL);
    RF_CHECK_EQ_INT(rf_fusion_fuse(st, 1, RF_FUSION_LINEAR, &err), 0);
    RF_CHECK(s_same_bits(c, st[0]));
    rf_chunk_state_destroy(&c);
    s_free3(st);
}
