/* seams.c - per-step frame differences of a video, split into chunk edges and the rest. */
#include "seams.h"

#include "video.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Appends v to a growing array; returns -1 when memory runs out. */
static int s_push(double **arr, size_t *n, size_t *cap, double v)
{
    if (*n == *cap) {
        double *p = realloc(*arr, *cap * 2 * sizeof(double));
        if (!p)
            return -1;
        *arr = p;
        *cap *= 2;
    }
    (*arr)[(*n)++] = v;
    return 0;
}

static int s_in(const int64_t *set, int n, int64_t v)
{
    for (int i = 0; i < n; i++)
        if (set[i] == v)
            return 1;
    return 0;
}

void rf_seams_add_window(rf_seam_input *in, int64_t offset, int64_t pixel_frames,
                         int64_t latent_frames, int64_t start, int64_t end)
{
    /* latent frame k decodes to pixel frames [4k-3, 4k] (k > 0) and [0] (k = 0) */
    if (start > 0 && in->nboundaries < RF_SEAMS_MAX) {
        int64_t p = 4 * start - 3;
        if (p < pixel_frames && !s_in(in->boundaries, in->nboundaries, offset + p))
            in->boundaries[in->nboundaries++] = offset + p;
    }
    if (end < latent_frames && in->nboundaries < RF_SEAMS_MAX) {
        int64_t p = 4 * (end - 1) + 1;
        if (p < pixel_frames && !s_in(in->boundaries, in->nboundaries, offset + p))
            in->boundaries[in->nboundaries++] = offset + p;
    }
}

/* The median of v[0..n) (sorted in place); 0 when n is 0. */
static double s_median(double *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof(double), s_cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int rf_seams_measure(const char *path, const rf_seam_input *in, rf_seam_result *out, rf_error *err)
{
    memset(out, 0, sizeof(*out));
    out->ratio = -1;
    out->latent_step_ratio = -1;
    rf_video_reader *r = rf_video_reader_open(path, 0, 0, err);
    if (!r)
        return err ? (int)err->code : RF_EIO;
    int W = rf_video_reader_width(r), H = rf_video_reader_height(r);
    size_t n = (size_t)W * (size_t)H * 3;
    uint8_t *prev = malloc(n), *cur = malloc(n);
    size_t cap = 1024, nb = 0, ni = 0, nl = 0;
    double *bd = malloc(cap * sizeof(double)), *id = malloc(cap * sizeof(double));
    double *ld = malloc(cap * sizeof(double));
    size_t bcap = cap, icap = cap, lcap = cap;
    int rc = prev && cur && bd && id && ld ? 0 : rf_error_set(err, RF_ENOMEM, "out of memory");
    int64_t f = 0, start = 0; /* start: the first pixel frame of f's timeline */
    while (!rc) {
        int got = 0;
        rc = rf_video_reader_read_u8(r, f == 0 ? prev : cur, &got, err);
        if (rc || !got)
            break;
        if (f > 0) {
            double sum = 0;
            for (size_t i = 0; i < n; i++)
                sum += abs((int)cur[i] - (int)prev[i]);
            double d = sum / (double)n;
            int edge = s_in(in->boundaries, in->nboundaries, f);
            if (s_in(in->cuts, in->ncuts, f)) {
                start = f; /* across a hard cut: neither seam nor interior */
            } else if (s_push(edge ? &bd : &id, edge ? &nb : &ni, edge ? &bcap : &icap, d) ||
                       (!edge && (f - start) % 4 == 1 && s_push(&ld, &nl, &lcap, d))) {
                rc = rf_error_set(err, RF_ENOMEM, "out of memory");
                break;
            }
            uint8_t *t = prev;
            prev = cur;
            cur = t;
        }
        f++;
    }
    rf_video_reader_close(&r);
    if (!rc) {
        out->frames = f;
        out->width = W;
        out->height = H;
        double bsum = 0;
        for (size_t i = 0; i < nb; i++)
            bsum += bd[i];
        out->boundary_mean = nb ? bsum / (double)nb : 0;
        out->boundaries = (int64_t)nb;
        out->interior_median = s_median(id, ni);
        if (nb && out->interior_median > 0)
            out->ratio = out->boundary_mean / out->interior_median;
        out->latent_step_ratio = -1;
        out->latent_step_median = s_median(ld, nl);
        if (nb && out->latent_step_median > 0)
            out->latent_step_ratio = out->boundary_mean / out->latent_step_median;
    }
    free(prev);
    free(cur);
    free(bd);
    free(id);
    free(ld);
    return rc;
}
