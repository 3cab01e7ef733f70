/* adherence.c - the reel-tiny adherence measure and its fixed prompt suite.
 *
 * The measurement mirrors tools/train/eval_adherence.measure() step for step (float32
 * pixel values, per-row medians as numpy takes them: the mean of the two middle values of
 * an even count), so the C figures and the PyTorch figures mean the same thing. Renders go
 * through the public pipeline pieces (text, denoise, decode) at the model's defaults with
 * the same Philox noise as `reelfarm-engine render --seed`. Never writes files.
 */
#include "adherence.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FG_THRESHOLD 0.25f /* max-channel |pixel - row background|, of 1 */
#define MIN_AREA     12    /* foreground pixels for a frame to count */
#define MIN_SHIFT    4.0   /* pixels of centroid travel below which the motion is static */

static const char *const s_colour_names[RF_ADH_COLOURS] = {"red",   "green",  "blue",   "yellow",
                                                           "white", "purple", "orange", "cyan"};
static const float s_colour_rgb[RF_ADH_COLOURS][3] = {
    {220, 40, 40},   {40, 200, 60},  {50, 90, 230},  {240, 220, 40},
    {245, 245, 245}, {150, 60, 200}, {245, 140, 30}, {40, 210, 220}};
static const char *const s_motion_names[RF_ADH_MOTIONS] = {"moves to the right",
                                                           "moves to the left",
                                                           "moves up",
                                                           "moves down",
                                                           "moves diagonally up and to the right",
                                                           "moves diagonally down and to the left"};
static const double s_motion_vec[RF_ADH_MOTIONS][2] = {{1, 0}, {-1, 0}, {0, -1},
                                                       {0, 1}, {1, -1}, {-1, 1}};

enum { RED, GREEN, BLUE, YELLOW, WHITE, PURPLE, ORANGE, CYAN };
enum { RIGHT, LEFT, UP, DOWN, UP_RIGHT, DOWN_LEFT };

/* eval_adherence.prompt_set(): the held-out four, then twelve in-distribution ones. */
static const rf_adherence_prompt s_prompts[RF_ADH_PROMPTS] = {
    {"circle", PURPLE, UP, "black", 1},
    {"square", ORANGE, DOWN, "dark blue", 1},
    {"star", YELLOW, LEFT, "gray", 1},
    {"triangle", CYAN, RIGHT, "dark green", 1},
    {"circle", RED, RIGHT, "dark blue", 0},
    {"circle", GREEN, LEFT, "black", 0},
    {"square", BLUE, UP, "night gradient", 0},
    {"square", YELLOW, DOWN, "sunset gradient", 0},
    {"triangle", WHITE, UP_RIGHT, "dark green", 0},
    {"triangle", PURPLE, DOWN_LEFT, "gray", 0},
    {"star", ORANGE, RIGHT, "dark blue", 0},
    {"star", CYAN, LEFT, "black", 0},
    {"circle", RED, UP, "night gradient", 0},
    {"circle", GREEN, DOWN, "sunset gradient", 0},
    {"square", BLUE, UP_RIGHT, "dark green", 0},
    {"square", YELLOW, DOWN_LEFT, "gray", 0},
};

const char *rf_adherence_colour_name(int i)
{
    return i >= 0 && i < RF_ADH_COLOURS ? s_colour_names[i] : "none";
}

const char *rf_adherence_motion_name(int j)
{
    if (j == RF_ADH_STATIC)
        return "static";
    return j >= 0 && j < RF_ADH_MOTIONS ? s_motion_names[j] : "none";
}

int rf_adherence_colour_swap(int colour)
{
    return (colour + 4) % RF_ADH_COLOURS;
}

int rf_adherence_motion_reverse(int motion)
{
    return motion ^ 1; /* right/left, up/down, the diagonals are neighbours */
}

const rf_adherence_prompt *rf_adherence_prompt_get(int i)
{
    return i >= 0 && i < RF_ADH_PROMPTS ? &s_prompts[i] : NULL;
}

char *rf_adherence_caption(const rf_adherence_prompt *p, int colour, int motion, char *buf,
                           size_t cap)
{
    const char *c = rf_adherence_colour_name(colour);
    const char *article = strchr("aeiou", c[0]) ? "an" : "a";
    snprintf(buf, cap, "%s %s %s %s on a %s background", article, c, p->shape,
             rf_adherence_motion_name(motion), p->background);
    return buf;
}

/* The k-th smallest (0-based) of the values counted in hist[256]. */
static int s_kth(const int64_t *hist, int64_t k)
{
    int64_t seen = 0;
    for (int v = 0; v < 256; v++) {
        seen += hist[v];
        if (seen > k)
            return v;
    }
    return 255;
}

int rf_adherence_measure_frames(const uint8_t *frames, int nf, int h, int w,
                                rf_adherence_measure *out, rf_error *err)
{
    memset(out, 0, sizeof(*out));
    out->colour = RF_ADH_NONE;
    out->motion = RF_ADH_NONE;
    if (!frames || nf < 1 || h < 1 || w < 1 || nf > 4096 || h > 4096 || w > 4096)
        return rf_error_set(err, RF_EINVAL,
                            "adherence: frames must be 1..4096 of 1..4096 x 1..4096 pixels "
                            "(got %d frames of %dx%d)",
                            nf, w, h);
    float *bg = malloc(sizeof(float) * (size_t)h * 3);
    int64_t *area = calloc((size_t)nf, sizeof(int64_t));
    double *cx = calloc((size_t)nf, sizeof(double)), *cy = calloc((size_t)nf, sizeof(double));
    if (!bg || !area || !cx || !cy) {
        free(bg);
        free(area);
        free(cx);
        free(cy);
        return rf_error_set(err, RF_ENOMEM, "adherence: out of memory (%d frames)", nf);
    }
    /* 1. background: per row and channel, the median over all frames and columns */
    const int64_t count = (int64_t)nf * w;
    for (int y = 0; y < h; y++) {
        for (int c = 0; c < 3; c++) {
            int64_t hist[256] = {0};
            for (int f = 0; f < nf; f++)
                for (int x = 0; x < w; x++)
                    hist[frames[(((size_t)f * h + y) * w + x) * 3 + c]]++;
            float lo = (float)s_kth(hist, (count - 1) / 2) / 255.0f;
            float hi = (float)s_kth(hist, count / 2) / 255.0f;
            bg[y * 3 + c] = count % 2 ? lo : (lo + hi) * 0.5f;
        }
    }
    /* 2. foreground mask; 3. its colour sum and per-frame centroid */
    double sum[3] = {0, 0, 0};
    for (int f = 0; f < nf; f++) {
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                const uint8_t *px = &frames[(((size_t)f * h + y) * w + x) * 3];
                float d = 0.0f;
                for (int c = 0; c < 3; c++) {
                    float v = fabsf((float)px[c] / 255.0f - bg[y * 3 + c]);
                    d = v > d ? v : d;
                }
                if (!(d > FG_THRESHOLD))
                    continue;
                area[f]++;
                cx[f] += x;
                cy[f] += y;
                for (int c = 0; c < 3; c++)
                    sum[c] += (double)((float)px[c] / 255.0f);
            }
        }
        out->fg += area[f];
    }
    if (out->fg >= MIN_AREA) {
        double best = INFINITY;
        for (int c = 0; c < 3; c++)
            out->rgb[c] = sum[c] / (double)out->fg * 255.0;
        for (int i = 0; i < RF_ADH_COLOURS; i++) {
            double d = 0;
            for (int c = 0; c < 3; c++)
                d += (out->rgb[c] - s_colour_rgb[i][c]) * (out->rgb[c] - s_colour_rgb[i][c]);
            if (d < best) {
                best = d;
                out->colour = i;
            }
        }
        /* 4. motion: least-squares slope of the centroid over the frames that count */
        double st = 0, sx = 0, sy = 0;
        int n = 0;
        for (int f = 0; f < nf; f++) {
            if (area[f] < MIN_AREA)
                continue;
            cx[f] /= (double)area[f];
            cy[f] /= (double)area[f];
            st += f;
            sx += cx[f];
            sy += cy[f];
            n++;
        }
        out->fg_frames = n;
        if (n >= 3) {
            double mt = st / n, mx = sx / n, my = sy / n, vt = 0, cxt = 0, cyt = 0;
            for (int f = 0; f < nf; f++) {
                if (area[f] < MIN_AREA)
                    continue;
                vt += (f - mt) * (f - mt);
                cxt += (f - mt) * (cx[f] - mx);
                cyt += (f - mt) * (cy[f] - my);
            }
            out->dx = cxt / vt * (nf - 1);
            out->dy = cyt / vt * (nf - 1);
            double len = hypot(out->dx, out->dy);
            if (len < MIN_SHIFT) {
                out->motion = RF_ADH_STATIC;
            } else {
                double bc = -2.0;
                for (int j = 0; j < RF_ADH_MOTIONS; j++) {
                    double vx = s_motion_vec[j][0], vy = s_motion_vec[j][1];
                    double c = (out->dx * vx + out->dy * vy) / (len * hypot(vx, vy));
                    if (c > bc) {
                        bc = c;
                        out->motion = j;
                    }
                }
            }
        }
    }
    free(bg);
    free(area);
    free(cx);
    free(cy);
    return 0;
}

/* ---- rendering ----------------------------------------------------------------- */

typedef struct s_frames {
    uint8_t *u8;
    int n, cap, pixels;
} s_frames;

static int s_take_frame(void *ctx, const float *rgb, rf_error *err)
{
    s_frames *fr = ctx;
    (void)err;
    if (fr->n >= fr->cap)
        return 0;
    uint8_t *dst = fr->u8 + (size_t)fr->n * fr->pixels * 3;
    for (int i = 0; i < fr->pixels * 3; i++) { /* as rf_video_writer_write_f32 */
        float v = (rgb[i] + 1.0f) * 127.5f;
        v = v != v ? 0.0f : v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        dst[i] = (uint8_t)lrintf(v);
    }
    fr->n++;
    return 0;
}

/* Renders prompt at the defaults with `seed` (negative: the default, encoded in neg) and
 * measures it. */
static int s_render_measure(rf_pipeline *pl, const char *prompt, uint64_t seed, const float *neg,
                            int64_t nrows, rf_adherence_measure *m, rf_error *err)
{
    const rf_model_defaults *d = &rf_pipeline_model(pl)->defaults;
    rf_denoise_params p;
    memset(&p, 0, sizeof(p));
    int rc = rf_sampler_kind_parse(d->sampler, &p.sampler, err);
    if (rc)
        return rc;
    p.steps = d->steps;
    p.shift = d->shift;
    p.guidance = d->guidance;
    p.seed = seed;
    p.width = d->width;
    p.height = d->height;
    p.window_len = (d->frames - 1) / 4 + 1;
    float *ctx = NULL;
    int64_t rows = 0, dim = 0;
    rc = rf_pipeline_encode_text(pl, prompt, &ctx, &rows, &dim, err);
    if (rc)
        return rc;
    p.context = ctx;
    p.ctx_rows = rows;
    p.dim = dim;
    p.negative = neg;
    p.neg_rows = nrows;
    s_frames fr = {NULL, 0, d->frames, d->width * d->height};
    rf_chunk_state *st = rf_pipeline_denoise_init(pl, &p, err);
    if (!st) {
        free(ctx);
        return err && err->code ? (int)err->code : RF_EINVAL;
    }
    rc = rf_pipeline_denoise(pl, &p, st, p.steps, NULL, NULL, err);
    if (!rc) {
        fr.u8 = malloc((size_t)fr.cap * fr.pixels * 3);
        if (!fr.u8)
            rc = rf_error_set(err, RF_ENOMEM, "adherence: out of memory (frames)");
    }
    if (!rc) {
        const rf_cs_tensor *x = rf_chunk_state_tensor(st, "latent");
        rc = rf_pipeline_decode(pl, x->data, 0, p.window_len, p.height / 8, p.width / 8, 0,
                                p.window_len, 0, s_take_frame, &fr, err);
    }
    if (!rc)
        rc = rf_adherence_measure_frames(fr.u8, fr.n, p.height, p.width, m, err);
    rf_chunk_state_destroy(&st);
    free(fr.u8);
    free(ctx);
    return rc;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int rf_adherence_run(rf_pipeline *pl, int n, rf_adherence_report *out,
                     void (*log)(void *ctx, const char *line), void *lctx, rf_error *err)
{
    memset(out, 0, sizeof(*out));
    if (n < 1 || n > RF_ADH_PROMPTS)
        return rf_error_set(err, RF_EINVAL, "adherence: the suite has 1..%d prompts, asked for %d",
                            RF_ADH_PROMPTS, n);
    const rf_model_defaults *d = &rf_pipeline_model(pl)->defaults;
    double t0 = s_now();
    float *neg = NULL;
    int64_t nrows = 0, ndim = 0;
    if (d->guidance > 1.0) {
        int rc = rf_pipeline_encode_text(pl, d->negative, &neg, &nrows, &ndim, err);
        if (rc)
            return rc;
    }
    int rc = 0;
    char cap[256], line[512];
    for (int i = 0; i < n && !rc; i++) {
        const rf_adherence_prompt *p = &s_prompts[i];
        rf_adherence_row *r = &out->rows[i];
        uint64_t seed = 1000 + (uint64_t)i;
        int cs = rf_adherence_colour_swap(p->colour), mr = rf_adherence_motion_reverse(p->motion);
        rc = s_render_measure(pl, rf_adherence_caption(p, p->colour, p->motion, cap, sizeof(cap)),
                              seed, neg, nrows, &r->m, err);
        if (!rc)
            rc = s_render_measure(pl, rf_adherence_caption(p, cs, p->motion, line, sizeof(line)),
                                  seed, neg, nrows, &r->colour, err);
        if (!rc)
            rc = s_render_measure(pl, rf_adherence_caption(p, p->colour, mr, line, sizeof(line)),
                                  seed, neg, nrows, &r->motion, err);
        if (rc)
            break;
        int cok = r->m.colour == p->colour, mok = r->m.motion == p->motion;
        out->n++;
        out->held_out += p->held_out;
        out->colour_ok += cok;
        out->motion_ok += mok;
        out->held_colour_ok += p->held_out && cok;
        out->held_motion_ok += p->held_out && mok;
        out->control_colour_disagrees += r->colour.colour != p->colour;
        out->control_motion_disagrees += r->motion.motion != p->motion;
        out->control_colour_follows += r->colour.colour == cs;
        out->control_motion_follows += r->motion.motion == mr;
        if (log) {
            snprintf(line, sizeof(line),
                     "%-92s colour %-6s %s motion %-38s %s | swapped -> %s, reversed -> %s", cap,
                     rf_adherence_colour_name(r->m.colour), cok ? "ok" : "NO",
                     rf_adherence_motion_name(r->m.motion), mok ? "ok" : "NO",
                     rf_adherence_colour_name(r->colour.colour),
                     rf_adherence_motion_name(r->motion.motion));
            log(lctx, line);
        }
    }
    free(neg);
    out->seconds = s_now() - t0;
    return rc;
}
