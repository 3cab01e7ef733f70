/* test_inputs.c - image -> video, video -> video, continuation and stills through the
 * engine pipeline (rf_pipeline_render), on the tiny random model (tests/support/tiny_model):
 * exact invariants that hold for any weights. The decoder is causal, so output frames made
 * only from re-imposed latent frames equal the input's VAE round trip byte for byte (both
 * written by the same PNG writer): the image's frame 0, a continued clip's known frames,
 * every frame of a video -> video render at strength 0. Later frames must move; bad inputs
 * get errors naming the file and what to do. Quality on a trained model (PSNR figures) is
 * in test_inputs_quality.c. */
#include "pipeline.h"
#include "rf_test.h"
#include "tests/support/tiny_model.h"
#include "video.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S  32 /* the tiny model's size */
#define PX (S * S * 3)

static rf_pipeline *s_open(void)
{
    char dir[1024];
    RF_CHECK(rf_test_tiny_model(dir, sizeof(dir)));
    rf_pipeline_opts po = {1};
    rf_error err = {0};
    rf_pipeline *p = rf_pipeline_open(dir, &po, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    return p;
}

/* A moving colour pattern: frame k of a clip (k = 0 for the image). */
static void s_pattern(uint8_t *rgb, int k)
{
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            uint8_t *p = rgb + (y * S + x) * 3;
            p[0] = (uint8_t)((x * 8 + k * 9) & 255);
            p[1] = (uint8_t)((y * 8) & 255);
            p[2] = (uint8_t)(((x + y) * 4 + k * 20) & 255);
        }
}

/* Writes n frames of the pattern to path (a .png still or a PNG directory). */
static void s_write_clip(const char *path, int n)
{
    rf_video_opts vo = {RF_CODEC_PNG, S, S, 0, 0, 8, -1};
    rf_error err = {0};
    rf_video_writer *w = rf_video_writer_open(path, &vo, &err);
    RF_CHECK_MSG(w, "%s", err.msg);
    uint8_t rgb[PX];
    for (int k = 0; k < n; k++) {
        s_pattern(rgb, k);
        RF_CHECK_EQ_INT(rf_video_writer_write_u8(w, rgb, &err), 0);
    }
    RF_CHECK_MSG(rf_video_writer_close(&w, &err) == 0, "%s", err.msg);
}

/* Reads every frame of path (at most max) into out (PX each); returns the count. */
static int s_read(const char *path, uint8_t *out, int max)
{
    rf_error err = {0};
    rf_video_reader *r = rf_video_reader_open(path, S, S, &err);
    RF_CHECK_MSG(r, "%s", err.msg);
    int n = 0, got = 1;
    while (n < max) {
        RF_CHECK_EQ_INT(rf_video_reader_read_u8(r, out + (size_t)n * PX, &got, &err), 0);
        if (!got)
            break;
        n++;
    }
    rf_video_reader_close(&r);
    return n;
}

typedef struct s_wr {
    rf_video_writer *w;
} s_wr;

static int s_frame(void *ctx, const float *rgb, rf_error *err)
{
    return rf_video_writer_write_f32(((s_wr *)ctx)->w, rgb, err);
}

/* The VAE round trip of the first `frames` frames of path, as PNG frames in dir. */
static void s_round_trip(rf_pipeline *p, const char *path, int frames, const char *dir)
{
    rf_error err = {0};
    float *z = NULL;
    int64_t T = 0;
    RF_CHECK_MSG(rf_pipeline_encode_media(p, path, S, S, 0, frames, &z, &T, &err) == 0, "%s",
                 err.msg);
    RF_CHECK_EQ_INT(T, (frames - 1) / 4 + 1);
    rf_video_opts vo = {RF_CODEC_PNG, S, S, 0, 0, 8, -1};
    s_wr wr = {rf_video_writer_open(dir, &vo, &err)};
    RF_CHECK_MSG(wr.w, "%s", err.msg);
    RF_CHECK_MSG(rf_pipeline_decode(p, z, 0, T, S / 8, S / 8, 0, T, 0, s_frame, &wr, &err) == 0,
                 "%s", err.msg);
    RF_CHECK_EQ_INT(rf_video_writer_close(&wr.w, &err), 0);
    free(z);
}

static rf_render_opts s_opts(const char *out, int frames)
{
    rf_render_opts o;
    memset(&o, 0, sizeof(o));
    o.prompt = "a red ball bounces on the grass";
    o.frames = frames;
    o.shift = -1;
    o.guidance = -1;
    o.crf = -1;
    o.seed = 7;
    o.output = out;
    o.codec = RF_CODEC_PNG;
    return o;
}

static double s_mean_abs(const uint8_t *a, const uint8_t *b)
{
    double d = 0;
    for (int i = 0; i < PX; i++)
        d += abs((int)a[i] - (int)b[i]);
    return d / PX;
}

RF_TEST(image_to_video_opens_on_the_image)
{
    rf_pipeline *p = s_open();
    char img[1024], out[1024], rt[1024];
    s_write_clip(rf_test_path(img, sizeof(img), "image.png"), 1);
    rf_render_opts o = s_opts(rf_test_path(out, sizeof(out), "i2v"), 9);
    o.image = img;
    rf_render_stats st;
    rf_error err = {0};
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(st.known_frames, 1);
    s_round_trip(p, img, 1, rf_test_path(rt, sizeof(rt), "i2v-rt"));
    static uint8_t a[9 * PX], b[PX];
    RF_CHECK_EQ_INT(s_read(out, a, 9), 9);
    RF_CHECK_EQ_INT(s_read(rt, b, 1), 1);
    RF_CHECK(memcmp(a, b, PX) == 0);
    RF_CHECK_MSG(s_mean_abs(a + 8 * PX, b) > 1.0, "the last frame did not move (%g)",
                 s_mean_abs(a + 8 * PX, b));
    /* the same picture from a text-only render is not frame 0 */
    rf_render_opts t = s_opts(rf_test_path(out, sizeof(out), "t2v"), 9);
    RF_CHECK_MSG(rf_pipeline_render(p, &t, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(s_read(out, a, 9), 9);
    RF_CHECK(memcmp(a, b, PX) != 0);
    rf_pipeline_destroy(&p);
}

RF_TEST(continuation_keeps_the_known_frames)
{
    rf_pipeline *p = s_open();
    char clip[1024], out[1024], rt[1024];
    s_write_clip(rf_test_path(clip, sizeof(clip), "clip11"), 11); /* 9 frames are used */
    rf_render_opts o = s_opts(rf_test_path(out, sizeof(out), "cont"), 17);
    o.continues = clip;
    rf_render_stats st;
    rf_error err = {0};
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(st.known_frames, 9);
    s_round_trip(p, clip, 9, rf_test_path(rt, sizeof(rt), "cont-rt"));
    static uint8_t a[17 * PX], b[9 * PX];
    RF_CHECK_EQ_INT(s_read(out, a, 17), 17);
    RF_CHECK_EQ_INT(s_read(rt, b, 9), 9);
    RF_CHECK(memcmp(a, b, 9 * PX) == 0);
    RF_CHECK(s_mean_abs(a + 16 * PX, b + 8 * PX) > 1.0);
    rf_pipeline_destroy(&p);
}

RF_TEST(video_to_video_strength_zero_is_the_round_trip)
{
    rf_pipeline *p = s_open();
    char clip[1024], out[1024], out2[1024], rt[1024];
    s_write_clip(rf_test_path(clip, sizeof(clip), "clip9"), 9);
    rf_render_opts o = s_opts(rf_test_path(out, sizeof(out), "v2v0"), 9);
    o.video = clip;
    o.strength = 0.0;
    rf_render_stats st;
    rf_error err = {0};
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(st.start_step, st.steps);
    s_round_trip(p, clip, 9, rf_test_path(rt, sizeof(rt), "v2v-rt"));
    static uint8_t a[9 * PX], b[9 * PX];
    RF_CHECK_EQ_INT(s_read(out, a, 9), 9);
    RF_CHECK_EQ_INT(s_read(rt, b, 9), 9);
    RF_CHECK(memcmp(a, b, sizeof(a)) == 0);
    /* strength 1 starts at step 0 and leaves the clip */
    o = s_opts(rf_test_path(out2, sizeof(out2), "v2v1"), 9);
    o.video = clip;
    o.strength = 1.0;
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(st.start_step, 0);
    RF_CHECK_EQ_INT(s_read(out2, a, 9), 9);
    RF_CHECK(s_mean_abs(a, b) > 1.0);
    rf_pipeline_destroy(&p);
}

RF_TEST(stills_are_one_png)
{
    rf_pipeline *p = s_open();
    char out[1024], img[1024], out2[1024];
    rf_render_opts o = s_opts(rf_test_path(out, sizeof(out), "still.png"), 1);
    rf_render_stats st;
    rf_error err = {0};
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(st.frames, 1);
    static uint8_t a[2 * PX];
    RF_CHECK_EQ_INT(s_read(out, a, 2), 1);
    /* a still restyled from a picture (image + strength) */
    s_write_clip(rf_test_path(img, sizeof(img), "still-in.png"), 1);
    o = s_opts(rf_test_path(out2, sizeof(out2), "still2.png"), 1);
    o.image = img;
    o.strength = 0.6;
    RF_CHECK_MSG(rf_pipeline_render(p, &o, &st, &err) == 0, "%s", err.msg);
    RF_CHECK(st.start_step > 0 && st.start_step < st.steps);
    RF_CHECK_EQ_INT(s_read(out2, a, 2), 1);
    rf_pipeline_destroy(&p);
}

RF_TEST(bad_inputs_are_refused_clearly)
{
    rf_pipeline *p = s_open();
    char clip[1024], out[1024], junk[1024];
    s_write_clip(rf_test_path(clip, sizeof(clip), "clip5"), 5);
    rf_render_stats st;
    rf_error err = {0};
    /* a clip shorter than a video -> video film */
    rf_render_opts o = s_opts(rf_test_path(out, sizeof(out), "bad1"), 9);
    o.video = clip;
    o.strength = 0.5;
    RF_CHECK_EQ_INT(rf_pipeline_render(p, &o, &st, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "has 5 frames; the film needs 9");
    /* a continuation that leaves nothing new */
    o = s_opts(out, 5);
    o.continues = clip;
    RF_CHECK_EQ_INT(rf_pipeline_render(p, &o, &st, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "at least 9 frames");
    /* a still cannot continue */
    o = s_opts(out, 1);
    o.continues = clip;
    RF_CHECK_EQ_INT(rf_pipeline_render(p, &o, &st, &err), RF_EINVAL);
    /* an unreadable image names the file */
    RF_CHECK_EQ_INT(rf_test_write_file(rf_test_path(junk, sizeof(junk), "junk.png"), "nope", 4), 0);
    o = s_opts(out, 9);
    o.image = junk;
    RF_CHECK(rf_pipeline_render(p, &o, &st, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "junk.png");
    /* two inputs, strength out of range, an image with strength in a film */
    o.video = clip;
    RF_CHECK_EQ_INT(rf_pipeline_render(p, &o, &st, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "one input");
    o.video = NULL;
    o.image = clip;
    o.strength = 0.5;
    RF_CHECK_EQ_INT(rf_pipeline_render(p, &o, &st, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "restyles a still");
    o.strength = 2;
    RF_CHECK_EQ_INT(rf_pipeline_render(p, &o, &st, &err), RF_EINVAL);
    rf_pipeline_destroy(&p);
}
