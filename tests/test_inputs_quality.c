/* test_inputs_quality.c - inputs on a trained model (models/reel-tiny): how well they work.
 *
 * The input is in the model's world: a red circle moving right on black, drawn the way
 * tools/train/clips.py draws its training clips. Image -> video must open on the picture
 * (first frame PSNR >= 28 dB and within 1 dB of the VAE round trip) and move on (the last
 * frame more than 3 dB further away); video -> video at strength 0 is the round trip, and
 * at 0.8 under another prompt it leaves the clip (how far toward the prompt is printed:
 * reel-tiny follows colour words weakly); a continuation brings its known
 * frames back within 1 dB of their round trip and joins the new frames without a seam
 * (cli/seams.c, the farm's bound 1.5). The engine path is the farm's (test_farm_inputs
 * shows them equal). Figures are printed as "# ..." lines.
 */
#include "cli/seams.h"
#include "pipeline.h"
#include "rf_test.h"
#include "video.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S      64
#define PX     (S * S * 3)
#define PROMPT "a red circle moves to the right on a black background"

static rf_pipeline *s_open(void)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/models/reel-tiny", RF_SOURCE_DIR);
    struct stat st;
    if (stat(dir, &st) != 0)
        RF_SKIP("models/reel-tiny is not in this tree");
    rf_pipeline_opts po = {1};
    rf_error err = {0};
    rf_pipeline *p = rf_pipeline_open(dir, &po, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    return p;
}

/* The background level (0 black, 110 gray: two of the training backgrounds). */
static int s_bg;

/* Frame f of a 16 fps clip of `frames` frames: a red circle (radius 0.15 S) crossing
 * 0.45 S per second to the right on s_bg, centred on its path (clips.py's layout). */
static void s_circle(uint8_t *rgb, int f, int frames)
{
    const double r = 0.15 * S, speed = 0.45 * S, dur = frames / 16.0;
    const double cx = (S - speed * dur) / 2 + speed * f / 16.0, cy = S / 2.0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
            int in = dx * dx + dy * dy <= r * r;
            uint8_t *p = rgb + (y * S + x) * 3;
            p[0] = in ? 220 : s_bg;
            p[1] = in ? 40 : s_bg;
            p[2] = in ? 40 : s_bg;
        }
}

static char *s_clip(const char *name, int n, int of)
{
    static char paths[4][1024];
    static int next;
    char *path = paths[next++ % 4];
    rf_test_path(path, 1024, name);
    rf_video_opts vo = {n == 1 ? RF_CODEC_PNG : RF_CODEC_FFV1, S, S, 0, 0, 16, -1};
    rf_error err = {0};
    rf_video_writer *w = rf_video_writer_open(path, &vo, &err);
    RF_CHECK_MSG(w, "%s", err.msg);
    static uint8_t rgb[PX];
    for (int k = 0; k < n; k++) {
        s_circle(rgb, k, of);
        RF_CHECK_EQ_INT(rf_video_writer_write_u8(w, rgb, &err), 0);
    }
    RF_CHECK_MSG(rf_video_writer_close(&w, &err) == 0, "%s", err.msg);
    return path;
}

/* Reads up to max frames of path into out; returns the count. */
static int s_read(const char *path, uint8_t *out, int max)
{
    rf_error err = {0};
    rf_video_reader *r = rf_video_reader_open(path, S, S, &err);
    RF_CHECK_MSG(r, "%s", err.msg);
    int n = 0;
    for (int got = 1; n < max;) {
        RF_CHECK_EQ_INT(rf_video_reader_read_u8(r, out + (size_t)n * PX, &got, &err), 0);
        if (!got)
            break;
        n++;
    }
    rf_video_reader_close(&r);
    return n;
}

static double s_psnr(const uint8_t *a, const uint8_t *b)
{
    double se = 0;
    for (int i = 0; i < PX; i++) {
        double d = (double)a[i] - (double)b[i];
        se += d * d;
    }
    double mse = se / PX;
    return mse <= 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / mse);
}

typedef struct s_wr {
    rf_video_writer *w;
} s_wr;

static int s_frame(void *ctx, const float *rgb, rf_error *err)
{
    return rf_video_writer_write_f32(((s_wr *)ctx)->w, rgb, err);
}

/* The VAE round trip of the first `frames` frames of path into out (frames * PX). */
static void s_round_trip(rf_pipeline *p, const char *path, int frames, const char *name,
                         uint8_t *out)
{
    rf_error err = {0};
    float *z = NULL;
    int64_t T = 0;
    RF_CHECK_MSG(rf_pipeline_encode_media(p, path, S, S, 0, frames, &z, &T, &err) == 0, "%s",
                 err.msg);
    char dir[1024];
    rf_video_opts vo = {RF_CODEC_PNG, S, S, 0, 0, 16, -1};
    s_wr wr = {rf_video_writer_open(rf_test_path(dir, sizeof(dir), name), &vo, &err)};
    RF_CHECK_MSG(wr.w, "%s", err.msg);
    RF_CHECK_MSG(rf_pipeline_decode(p, z, 0, T, S / 8, S / 8, 0, T, 0, s_frame, &wr, &err) == 0,
                 "%s", err.msg);
    RF_CHECK_EQ_INT(rf_video_writer_close(&wr.w, &err), 0);
    free(z);
    RF_CHECK_EQ_INT(s_read(dir, out, frames), frames);
}

static rf_render_opts s_opts(const char *out, int frames, const char *prompt)
{
    rf_render_opts o;
    memset(&o, 0, sizeof(o));
    o.prompt = prompt;
    o.frames = frames;
    o.shift = -1;
    o.guidance = -1;
    o.crf = -1;
    o.seed = 11;
    o.output = out;
    o.codec = RF_CODEC_PNG;
    return o;
}

/* Renders image -> video from the circle on background bg; fills the PSNRs (dB) of the
 * first and last frames against the picture and of the picture's VAE round trip. */
static void s_i2v(rf_pipeline *p, int bg, const char *prompt, double *first, double *last,
                  double *trip)
{
    s_bg = bg;
    char name[64];
    snprintf(name, sizeof(name), "q-image-%d.png", bg);
    char *img = s_clip(name, 1, 17);
    static uint8_t in[PX], rt[PX], out[17 * PX];
    RF_CHECK_EQ_INT(s_read(img, in, 1), 1);
    snprintf(name, sizeof(name), "q-image-%d-rt", bg);
    s_round_trip(p, img, 1, name, rt);
    char dir[1024];
    snprintf(name, sizeof(name), "q-i2v-%d", bg);
    rf_render_opts o = s_opts(rf_test_path(dir, sizeof(dir), name), 17, prompt);
    o.image = img;
    rf_render_stats st;
    rf_error err = {0};
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(s_read(dir, out, 17), 17);
    *trip = s_psnr(rt, in);
    *first = s_psnr(out, in);
    *last = s_psnr(out + 16 * PX, in);
    printf("# image -> video (reel-tiny 64x64, 17 frames, background %d): first frame %.2f dB, "
           "VAE round trip %.2f dB, last frame %.2f dB\n",
           bg, *first, *trip, *last);
    s_bg = 0;
}

RF_TEST(image_to_video_opens_on_the_picture_and_moves_on)
{
    rf_pipeline *p = s_open();
    double first, last, trip;
    s_i2v(p, 110, "a red circle moves to the right on a gray background", &first, &last, &trip);
    RF_CHECK_MSG(first >= 28.0, "first frame PSNR %.2f dB < 28", first);
    RF_CHECK_MSG(first >= trip - 1.0, "first frame %.2f dB, round trip %.2f dB", first, trip);
    RF_CHECK_MSG(first - last > 3.0, "the last frame is only %.2f dB further away", first - last);
    /* On black, the VAE's own round trip of this picture is under 28 dB (27.4): the film
     * can only be as close as the round trip, so there the bar is the round trip's. */
    s_i2v(p, 0, PROMPT, &first, &last, &trip);
    RF_CHECK_MSG(first >= trip - 1.0, "first frame %.2f dB, round trip %.2f dB", first, trip);
    RF_CHECK_MSG(first - last > 3.0, "the last frame is only %.2f dB further away", first - last);
    rf_pipeline_destroy(&p);
}

/* Mean colour of the frame's pixels that are not background (any channel > 60). */
static void s_shape_colour(const uint8_t *f, double rgb[3])
{
    double n = 0;
    rgb[0] = rgb[1] = rgb[2] = 0;
    for (int i = 0; i < S * S; i++) {
        const uint8_t *q = f + i * 3;
        if (q[0] > 60 || q[1] > 60 || q[2] > 60) {
            for (int c = 0; c < 3; c++)
                rgb[c] += q[c];
            n++;
        }
    }
    for (int c = 0; c < 3; c++)
        rgb[c] = n > 0 ? rgb[c] / n : 0;
}

RF_TEST(video_to_video_keeps_the_clip_at_zero_and_leaves_it_above)
{
    rf_pipeline *p = s_open();
    char *clip = s_clip("q-clip17.mkv", 17, 17);
    static uint8_t rt[17 * PX], out[17 * PX];
    s_round_trip(p, clip, 17, "q-clip-rt", rt);
    char dir[1024];
    rf_render_opts o = s_opts(rf_test_path(dir, sizeof(dir), "q-v2v0"), 17, PROMPT);
    o.video = clip;
    o.strength = 0.0;
    rf_render_stats st;
    rf_error err = {0};
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(s_read(dir, out, 17), 17);
    RF_CHECK_MSG(memcmp(out, rt, sizeof(out)) == 0, "strength 0 is not the VAE round trip");
    /* strength 0.8 under a green-circle prompt: the circle turns toward green */
    o = s_opts(rf_test_path(dir, sizeof(dir), "q-v2v8"), 17,
               "a green circle moves to the right on a black background");
    o.video = clip;
    o.strength = 0.8;
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(s_read(dir, out, 17), 17);
    double a[3], b[3];
    s_shape_colour(rt + 8 * PX, a);
    s_shape_colour(out + 8 * PX, b);
    printf("# video -> video strength 0.8, 'green' prompt: shape colour (%.0f, %.0f, %.0f) -> "
           "(%.0f, %.0f, %.0f); start step %d of %d\n",
           a[0], a[1], a[2], b[0], b[1], b[2], st.start_step, st.steps);
    /* reel-tiny follows colour words weakly (19% of text-only renders, its model card), so
     * the prompt's pull is reported, not asserted; the render must leave the clip, though */
    double moved = s_psnr(out + 8 * PX, rt + 8 * PX);
    printf("# video -> video strength 0.8: middle frame %.2f dB from the clip's round trip\n",
           moved);
    RF_CHECK(st.start_step > 0 && st.start_step < st.steps);
    RF_CHECK_MSG(moved < 30.0, "strength 0.8 left the clip as it was (%.2f dB)", moved);
    rf_pipeline_destroy(&p);
}

RF_TEST(continuation_keeps_its_frames_and_joins_without_a_seam)
{
    rf_pipeline *p = s_open();
    enum { KNOWN = 9, FRAMES = 33 };
    /* the clip is the first 9 frames of a 33-frame crossing, so the film can go on */
    char *clip = s_clip("q-clip9.mkv", KNOWN, FRAMES);
    static uint8_t in[KNOWN * PX], rt[KNOWN * PX], out[FRAMES * PX];
    RF_CHECK_EQ_INT(s_read(clip, in, KNOWN), KNOWN);
    s_round_trip(p, clip, KNOWN, "q-clip9-rt", rt);
    char dir[1024];
    rf_render_opts o = s_opts(rf_test_path(dir, sizeof(dir), "q-cont"), FRAMES, PROMPT);
    o.continues = clip;
    rf_render_stats st;
    rf_error err = {0};
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(st.known_frames, KNOWN);
    RF_CHECK_EQ_INT(s_read(dir, out, FRAMES), FRAMES);
    double worst = 99;
    for (int k = 0; k < KNOWN; k++) {
        double d = s_psnr(out + k * PX, in + k * PX) - s_psnr(rt + k * PX, in + k * PX);
        worst = d < worst ? d : worst;
    }
    rf_seam_input si;
    memset(&si, 0, sizeof(si));
    si.boundaries[si.nboundaries++] = KNOWN; /* the step from the last known frame */
    rf_seam_result sr;
    RF_CHECK_MSG(rf_seams_measure(dir, &si, &sr, &err) == 0, "%s", err.msg);
    printf("# continuation (9 known of 33 frames): known frames vs their round trip %+.2f dB "
           "at worst; seam %.2f (join change %.2f / median change %.2f)\n",
           worst, sr.ratio, sr.boundary_mean, sr.interior_median);
    RF_CHECK_MSG(worst >= -1.0, "a known frame is %.2f dB below its round trip", -worst);
    RF_CHECK_MSG(sr.ratio >= 0 && sr.ratio <= 1.5, "seam figure %.2f > 1.5", sr.ratio);
    rf_pipeline_destroy(&p);
}
