/* plan.c - timelines, chunk windows and decode segments of a film.
 *
 * Two passes over the shots: count, then fill arrays allocated once. Everything is
 * integer arithmetic on frame indices; the same shots and parameters always give
 * the same plan, which is what lets a restarted coordinator rebuild it.
 */
#include "plan.h"

#include <stdlib.h>

int rf_plan_latent_frames(int pixel_frames)
{
    if (pixel_frames <= 1)
        return 1;
    return (pixel_frames - 1 + 3) / 4 + 1;
}

void rf_plan_latent_pixels(int latent, int *first, int *last)
{
    if (latent <= 0) {
        *first = *last = 0;
        return;
    }
    *first = 4 * latent - 3;
    *last = 4 * latent;
}

/* Number of chunk windows for T latent frames. */
static int s_chunk_count(int T, int C, int O)
{
    if (T <= C)
        return 1;
    int stride = C - O;
    int n = 0;
    for (int s = 0;; s += stride) {
        n++;
        if (s + C >= T)
            break;
    }
    return n;
}

static int s_segment_count(int T, int S)
{
    return (T + S - 1) / S;
}

/* Index (into the timeline's shots) of the shot covering most pixel frames of the
 * latent window [a, b); ties go to the earlier shot. */
static int s_dominant_shot(const rf_plan_shot *shots, int first, int count, int a, int b)
{
    int lo, hi, tmp;
    rf_plan_latent_pixels(a, &lo, &tmp);
    rf_plan_latent_pixels(b - 1, &tmp, &hi);
    int best = first, best_cover = -1, p0 = 0;
    for (int s = first; s < first + count; s++) {
        int p1 = p0 + shots[s].frames; /* shot covers pixels [p0, p1) of the timeline */
        if (s == first + count - 1)
            p1 = hi + 1 > p1 ? hi + 1 : p1; /* the rendered tail belongs to the last shot */
        int from = p0 > lo ? p0 : lo;
        int to = p1 < hi + 1 ? p1 : hi + 1;
        int cover = to > from ? to - from : 0;
        if (cover > best_cover) {
            best_cover = cover;
            best = s;
        }
        p0 += shots[s].frames;
    }
    return best;
}

rf_plan *rf_plan_new(const rf_plan_shot *shots, int n, const rf_plan_params *p, rf_error *err)
{
    if (n < 1)
        return rf_error_set(err, RF_EINVAL, "a film needs at least one shot"), NULL;
    if (p->chunk_latent < 1 || p->overlap_latent < 0 || p->overlap_latent >= p->chunk_latent)
        return rf_error_set(err, RF_EINVAL,
                            "chunk overlap (%d latent frames) must be >= 0 and smaller than "
                            "the chunk (%d latent frames)",
                            p->overlap_latent, p->chunk_latent),
               NULL;
    if (p->segment_latent < 1 || p->warmup_latent < 0)
        return rf_error_set(err, RF_EINVAL, "decode segments need >= 1 frame and warm-up >= 0"),
               NULL;
    int timelines = 0;
    for (int i = 0; i < n; i++) {
        if (shots[i].frames < 1)
            return rf_error_set(err, RF_EINVAL, "shot %d has %d frames; a shot needs >= 1", i + 1,
                                shots[i].frames),
                   NULL;
        if (i == 0 || shots[i].cut)
            timelines++;
    }

    rf_plan *self = calloc(1, sizeof(*self));
    if (!self)
        return rf_error_set(err, RF_ENOMEM, "out of memory planning %d shots", n), NULL;
    self->timelines = calloc((size_t)timelines, sizeof(*self->timelines));
    if (!self->timelines)
        goto oom;
    self->timeline_count = timelines;

    /* pass 1: timelines and counts */
    int t = -1;
    for (int i = 0; i < n; i++) {
        if (i == 0 || shots[i].cut) {
            t++;
            self->timelines[t].first_shot = i;
        }
        self->timelines[t].shot_count++;
        self->timelines[t].pixel_frames += shots[i].frames;
    }
    for (t = 0; t < timelines; t++) {
        rf_plan_timeline *tl = &self->timelines[t];
        tl->latent_frames = rf_plan_latent_frames(tl->pixel_frames);
        tl->output_offset = self->total_pixel_frames;
        self->total_pixel_frames += tl->pixel_frames;
        tl->first_chunk = self->chunk_count;
        tl->chunk_count = s_chunk_count(tl->latent_frames, p->chunk_latent, p->overlap_latent);
        self->chunk_count += tl->chunk_count;
        tl->first_segment = self->segment_count;
        tl->segment_count = s_segment_count(tl->latent_frames, p->segment_latent);
        self->segment_count += tl->segment_count;
    }
    self->chunks = calloc((size_t)self->chunk_count, sizeof(*self->chunks));
    self->segments = calloc((size_t)self->segment_count, sizeof(*self->segments));
    if (!self->chunks || !self->segments)
        goto oom;

    /* pass 2: fill */
    for (t = 0; t < timelines; t++) {
        rf_plan_timeline *tl = &self->timelines[t];
        int T = tl->latent_frames;
        int C = T < p->chunk_latent ? T : p->chunk_latent;
        int stride = p->chunk_latent - p->overlap_latent;
        for (int k = 0; k < tl->chunk_count; k++) {
            rf_plan_chunk *c = &self->chunks[tl->first_chunk + k];
            c->timeline = t;
            c->index = k;
            c->start = k == tl->chunk_count - 1 ? T - C : k * stride;
            c->end = c->start + C;
            c->shot = s_dominant_shot(shots, tl->first_shot, tl->shot_count, c->start, c->end);
        }
        /* Every segment but the first decodes W warm-up frames it then drops, so equal
         * lengths would leave the first worker idle while the others decode S + W: the
         * first segment takes first = ceil((T + (n-1) W) / n) frames and the others
         * first - W, so each decodes about the same number of frames (the segment count
         * n is unchanged; a long timeline keeps about S per later segment). */
        int n = tl->segment_count, W = p->warmup_latent;
        int first = p->segment_latent, rest = first;
        if (n >= 2 && W > 0) {
            int c = (T + (n - 1) * W + n - 1) / n;
            if (c - W >= 1 && c + (n - 2) * (c - W) < T) {
                first = c;
                rest = c - W;
            }
        }
        for (int k = 0; k < tl->segment_count; k++) {
            rf_plan_segment *s = &self->segments[tl->first_segment + k];
            s->timeline = t;
            s->start = k == 0 ? 0 : first + (k - 1) * rest;
            int len = k == 0 ? first : rest;
            s->end = k == tl->segment_count - 1 || s->start + len > T ? T : s->start + len;
            s->warmup = s->start < p->warmup_latent ? s->start : p->warmup_latent;
            int lo, hi, tmp;
            rf_plan_latent_pixels(s->start, &lo, &tmp);
            rf_plan_latent_pixels(s->end - 1, &tmp, &hi);
            s->pixel_start = lo < tl->pixel_frames ? lo : tl->pixel_frames;
            s->pixel_end = hi + 1 < tl->pixel_frames ? hi + 1 : tl->pixel_frames;
        }
    }
    return self;
oom:
    rf_plan_destroy(&self);
    rf_error_set(err, RF_ENOMEM, "out of memory planning %d shots", n);
    return NULL;
}

void rf_plan_destroy(rf_plan **self)
{
    if (!self || !*self)
        return;
    free((*self)->timelines);
    free((*self)->chunks);
    free((*self)->segments);
    free(*self);
    *self = NULL;
}
