/* test_video.c - every codec written, read back by our reader and checked by ffprobe;
 * segments joined by stream copy decode frame-exactly; resize and cover-crop on read;
 * bad paths, mismatched segments and damaged files give errors naming the path. */
#include "video.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_test.h"

#define W 96
#define H 64

/* A smooth moving pattern in [-1, 1]. */
static void s_frame(float *rgb, int w, int h, int t)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = 0.8f * sinf(x * 0.11f + t * 0.3f);
            p[1] = 0.8f * cosf(y * 0.13f - t * 0.2f);
            p[2] = 0.7f * sinf((x + y) * 0.07f + t * 0.5f);
        }
}

static void s_to_u8(const float *f, uint8_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        u[i] = (uint8_t)lrintf((f[i] + 1.0f) * 127.5f);
}

static double s_psnr(const uint8_t *a, const uint8_t *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        se += d * d;
    }
    if (se == 0)
        return INFINITY;
    return 10.0 * log10(255.0 * 255.0 / (se / n));
}

static const char *s_ext[RF_CODEC_COUNT] = {"mp4", "mp4", "mov", "mkv", ""};
/* PSNR floors against the source at crf defaults on this smooth pattern */
static const double s_floor[RF_CODEC_COUNT] = {36.0, 35.0, 50.0, INFINITY, INFINITY};

static void s_out_path(char *buf, size_t cap, const char *stem, rf_codec c)
{
    char name[128];
    if (*s_ext[c])
        snprintf(name, sizeof(name), "%s-%s.%s", stem, rf_codec_name(c), s_ext[c]);
    else
        snprintf(name, sizeof(name), "%s-%s", stem, rf_codec_name(c));
    rf_test_path(buf, cap, name);
}

/* Writes frames [t0, t0+n) of the pattern. */
static int s_write(const char *path, rf_codec c, int t0, int n, int ow, int oh, rf_error *err)
{
    rf_video_opts o = {.codec = c,
                       .width = W,
                       .height = H,
                       .out_width = ow,
                       .out_height = oh,
                       .fps = 16,
                       .crf = -1};
    rf_video_writer *w = rf_video_writer_open(path, &o, err);
    if (!w)
        return err->code;
    float *buf = malloc(sizeof(float) * W * H * 3);
    int rc = 0;
    for (int t = t0; t < t0 + n && !rc; t++) {
        s_frame(buf, W, H, t);
        rc = rf_video_writer_write_f32(w, buf, err);
    }
    free(buf);
    if (rc) {
        rf_video_writer_abort(&w);
        return rc;
    }
    if (rf_video_writer_frames(w) != n)
        return -1;
    return rf_video_writer_close(&w, err);
}

/* Reads all frames (at most cap) at w x h into out; returns the count or -1. */
static int s_read_all(const char *path, int w, int h, uint8_t *out, int cap, rf_error *err)
{
    rf_video_reader *r = rf_video_reader_open(path, w, h, err);
    if (!r)
        return -1;
    int n = 0, got = 1;
    size_t fs = (size_t)rf_video_reader_width(r) * rf_video_reader_height(r) * 3;
    uint8_t *tmp = calloc(1, fs);
    while (got) {
        if (rf_video_reader_read_u8(r, n < cap ? out + fs * n : tmp, &got, err)) {
            n = -1;
            break;
        }
        n += got;
    }
    free(tmp);
    rf_video_reader_close(&r);
    return n;
}

/* Runs ffprobe on path and returns "codec,width,height,frames" in buf. */
static const char *s_ffprobe(const char *path, char *buf, size_t cap)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
             "stream=codec_name,width,height,nb_read_frames -of csv=p=0 '%s' 2>&1",
             path);
    FILE *p = popen(cmd, "r");
    buf[0] = '\0';
    if (!p)
        return buf;
    if (!fgets(buf, (int)cap, p))
        buf[0] = '\0';
    pclose(p);
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static void s_need_ffprobe(void)
{
    if (system("ffprobe -version >/dev/null 2>&1") != 0)
        RF_SKIP("ffprobe is missing (make deps installs ffmpeg)");
}

RF_TEST(each_codec_writes_and_reads_back)
{
    s_need_ffprobe();
    const int n = 17;
    size_t fs = (size_t)W * H * 3;
    float *src = malloc(sizeof(float) * fs);
    uint8_t *ref = malloc(fs * n), *got = malloc(fs * (n + 4));
    for (int t = 0; t < n; t++) {
        s_frame(src, W, H, t);
        s_to_u8(src, ref + fs * t, fs);
    }
    free(src);
    static const char *probe_names[RF_CODEC_COUNT] = {"h264", "hevc", "prores", "ffv1", "png"};
    for (int c = 0; c < RF_CODEC_COUNT; c++) {
        char path[512];
        rf_error err;
        s_out_path(path, sizeof(path), "each", (rf_codec)c);
        RF_CHECK_MSG(s_write(path, (rf_codec)c, 0, n, 0, 0, &err) == 0, "%s: %s", path, err.msg);
        char tmp[600];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        RF_CHECK(access(tmp, F_OK) != 0); /* no temp file left behind */
        int k = s_read_all(path, 0, 0, got, n + 4, &err);
        RF_CHECK_MSG(k == n, "%s: read %d frames of %d (%s)", path, k, n, err.msg);
        double worst = INFINITY;
        for (int t = 0; t < n; t++) {
            double p = s_psnr(got + fs * t, ref + fs * t, fs);
            worst = p < worst ? p : worst;
        }
        RF_CHECK_MSG(worst >= s_floor[c], "%s: worst PSNR %.2f dB < %.1f", path, worst, s_floor[c]);
        char want[128], line[256], probe[600];
        snprintf(probe, sizeof(probe), "%s%s", path, c == RF_CODEC_PNG ? "/frame_%06d.png" : "");
        snprintf(want, sizeof(want), "%s,%d,%d,%d", probe_names[c], W, H, n);
        RF_CHECK_EQ_STR(s_ffprobe(probe, line, sizeof(line)), want);
    }
    free(ref);
    free(got);
}

RF_TEST(float_frames_map_exactly_through_a_lossless_codec)
{
    size_t fs = (size_t)W * H * 3;
    float *f = malloc(sizeof(float) * fs);
    uint8_t *back = malloc(fs);
    for (size_t i = 0; i < fs; i++)
        f[i] = (float)(i % 256) / 127.5f - 1.0f;
    f[0] = -7.0f; /* clamped to 0 */
    f[1] = 3.0f;  /* clamped to 255 */
    char path[512];
    rf_test_path(path, sizeof(path), "exact.mkv");
    rf_video_opts o = {.codec = RF_CODEC_FFV1, .width = W, .height = H, .fps = 16, .crf = -1};
    rf_error err;
    rf_video_writer *w = rf_video_writer_open(path, &o, &err);
    RF_CHECK_MSG(w != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_video_writer_write_f32(w, f, &err), 0);
    RF_CHECK_EQ_INT(rf_video_writer_close(&w, &err), 0);
    RF_CHECK(w == NULL);
    RF_CHECK_EQ_INT(s_read_all(path, 0, 0, back, 1, &err), 1);
    RF_CHECK_EQ_INT(back[0], 0);
    RF_CHECK_EQ_INT(back[1], 255);
    for (size_t i = 2; i < fs; i++)
        RF_CHECK_MSG(back[i] == i % 256, "byte %zu: %d != %zu", i, back[i], i % 256);
    /* and read back as floats */
    rf_video_reader *r = rf_video_reader_open(path, 0, 0, &err);
    int got = 0;
    RF_CHECK_EQ_INT(rf_video_reader_read_f32(r, f, &got, &err), 0);
    RF_CHECK_EQ_INT(got, 1);
    RF_CHECK_NEAR(f[0], -1.0, 1e-6);
    RF_CHECK_NEAR(f[1], 1.0, 1e-6);
    RF_CHECK_NEAR(f[300], (300 % 256) / 127.5 - 1.0, 1e-6);
    RF_CHECK_EQ_INT(rf_video_reader_read_f32(r, f, &got, &err), 0);
    RF_CHECK_EQ_INT(got, 0);
    rf_video_reader_close(&r);
    free(f);
    free(back);
}

RF_TEST(segments_concatenate_frame_exactly)
{
    s_need_ffprobe();
    const int seg = 9, nseg = 3, n = seg * nseg;
    size_t fs = (size_t)W * H * 3;
    float *src = malloc(sizeof(float) * fs);
    uint8_t *ref = malloc(fs * n), *whole = malloc(fs * (n + 2)), *part = malloc(fs * (seg + 2));
    for (int t = 0; t < n; t++) {
        s_frame(src, W, H, t);
        s_to_u8(src, ref + fs * t, fs);
    }
    free(src);
    for (int c = 0; c < RF_CODEC_COUNT; c++) {
        char segs[3][512], out[512];
        const char *list[3];
        rf_error err;
        for (int s = 0; s < nseg; s++) {
            char stem[32];
            snprintf(stem, sizeof(stem), "seg%d", s);
            s_out_path(segs[s], sizeof(segs[s]), stem, (rf_codec)c);
            RF_CHECK_MSG(s_write(segs[s], (rf_codec)c, s * seg, seg, 0, 0, &err) == 0, "%s: %s",
                         segs[s], err.msg);
            list[s] = segs[s];
        }
        s_out_path(out, sizeof(out), "joined", (rf_codec)c);
        RF_CHECK_MSG(rf_video_concat(list, nseg, out, &err) == 0, "%s: %s", out, err.msg);
        int k = s_read_all(out, 0, 0, whole, n + 2, &err);
        RF_CHECK_MSG(k == n, "%s: %d frames, want %d (%s)", out, k, n, err.msg);
        /* stream copy: every frame decodes exactly as in its own segment */
        for (int s = 0; s < nseg; s++) {
            RF_CHECK_EQ_INT(s_read_all(segs[s], 0, 0, part, seg + 2, &err), seg);
            RF_CHECK_MSG(memcmp(part, whole + fs * seg * s, fs * seg) == 0,
                         "%s: segment %d decodes differently after joining", out, s);
        }
        for (int t = 0; t < n; t++) {
            double p = s_psnr(whole + fs * t, ref + fs * t, fs);
            RF_CHECK_MSG(p >= s_floor[c], "%s frame %d: PSNR %.2f < %.1f", out, t, p, s_floor[c]);
        }
        if (c != RF_CODEC_PNG) {
            char line[256], want[64];
            snprintf(want, sizeof(want), ",%d,%d,%d", W, H, n);
            RF_CHECK_CONTAINS(s_ffprobe(out, line, sizeof(line)), want);
        }
    }
    free(ref);
    free(whole);
    free(part);
}

RF_TEST(resize_on_write_and_on_read)
{
    s_need_ffprobe();
    char path[512], line[256];
    rf_error err;
    rf_test_path(path, sizeof(path), "big.mkv");
    RF_CHECK_MSG(s_write(path, RF_CODEC_FFV1, 0, 3, 2 * W, 2 * H, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_STR(s_ffprobe(path, line, sizeof(line)), "ffv1,192,128,3");
    size_t fs = (size_t)W * H * 3;
    uint8_t *got = malloc(fs * 3), *ref = malloc(fs);
    float *src = malloc(sizeof(float) * fs);
    rf_video_reader *r = rf_video_reader_open(path, W, H, &err);
    RF_CHECK(r != NULL);
    RF_CHECK_EQ_INT(rf_video_reader_source_width(r), 2 * W);
    RF_CHECK_EQ_INT(rf_video_reader_width(r), W);
    RF_CHECK_NEAR(rf_video_reader_fps(r), 16.0, 1e-9);
    rf_video_reader_close(&r);
    RF_CHECK_EQ_INT(s_read_all(path, W, H, got, 3, &err), 3);
    s_frame(src, W, H, 1);
    s_to_u8(src, ref, fs);
    double p = s_psnr(got + fs, ref, fs);
    RF_CHECK_MSG(p >= 30.0, "up then down: PSNR %.2f", p);
    free(got);
    free(ref);
    free(src);
}

RF_TEST(reader_cover_crops_to_the_target_aspect)
{
    /* 128x64 frame: left quarter red, middle half green, right quarter blue */
    const int w = 128, h = 64;
    uint8_t *img = malloc((size_t)w * h * 3), *out = malloc(64 * 64 * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img + ((size_t)y * w + x) * 3;
            p[0] = x < 32 ? 255 : 0;
            p[1] = x >= 32 && x < 96 ? 255 : 0;
            p[2] = x >= 96 ? 255 : 0;
        }
    char path[512];
    rf_test_path(path, sizeof(path), "bands.mkv");
    rf_video_opts o = {.codec = RF_CODEC_FFV1, .width = w, .height = h, .fps = 16, .crf = -1};
    rf_error err;
    rf_video_writer *wr = rf_video_writer_open(path, &o, &err);
    RF_CHECK(wr != NULL);
    RF_CHECK_EQ_INT(rf_video_writer_write_u8(wr, img, &err), 0);
    RF_CHECK_EQ_INT(rf_video_writer_close(&wr, &err), 0);
    RF_CHECK_EQ_INT(s_read_all(path, 64, 64, out, 1, &err), 1);
    for (int i = 0; i < 64 * 64; i++)
        RF_CHECK_MSG(out[3 * i] == 0 && out[3 * i + 1] == 255 && out[3 * i + 2] == 0,
                     "pixel %d is %d,%d,%d", i, out[3 * i], out[3 * i + 1], out[3 * i + 2]);
    RF_CHECK_EQ_INT(s_read_all(path, 32, 32, out, 1, &err), 1);
    for (int i = 0; i < 32 * 32; i++)
        RF_CHECK(out[3 * i] <= 2 && out[3 * i + 1] >= 253 && out[3 * i + 2] <= 2);
    free(img);
    free(out);
}

RF_TEST(single_png_still)
{
    char path[512];
    rf_error err;
    rf_test_path(path, sizeof(path), "still.png");
    RF_CHECK_MSG(s_write(path, RF_CODEC_PNG, 5, 1, 0, 0, &err) == 0, "%s", err.msg);
    size_t fs = (size_t)W * H * 3;
    uint8_t *got = malloc(fs), *ref = malloc(fs);
    float *src = malloc(sizeof(float) * fs);
    RF_CHECK_EQ_INT(s_read_all(path, 0, 0, got, 1, &err), 1);
    s_frame(src, W, H, 5);
    s_to_u8(src, ref, fs);
    RF_CHECK(memcmp(got, ref, fs) == 0);
    /* a second frame into one .png is refused */
    rf_video_opts o = {.codec = RF_CODEC_PNG, .width = W, .height = H, .fps = 16, .crf = -1};
    rf_video_writer *w = rf_video_writer_open(path, &o, &err);
    RF_CHECK(w != NULL);
    RF_CHECK_EQ_INT(rf_video_writer_write_u8(w, ref, &err), 0);
    RF_CHECK_EQ_INT(rf_video_writer_write_u8(w, ref, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "a single .png holds one frame");
    rf_video_writer_abort(&w);
    free(got);
    free(ref);
    free(src);
}

RF_TEST(writer_errors_name_the_path)
{
    rf_error err;
    rf_video_opts o = {.codec = RF_CODEC_H264, .width = W, .height = H, .fps = 16, .crf = -1};
    RF_CHECK(rf_video_writer_open("/nonexistent-dir/x/out.mp4", &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent-dir/x/out.mp4: cannot create the file in "
                               "/nonexistent-dir/x");
    char file[512], bad[600];
    rf_test_path(file, sizeof(file), "plain-file");
    RF_CHECK_EQ_INT(rf_test_write_file(file, "x", 1), 0);
    snprintf(bad, sizeof(bad), "%s/out.mp4", file);
    RF_CHECK(rf_video_writer_open(bad, &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, bad);
    RF_CHECK_EQ_INT(err.code, RF_EIO);
    snprintf(bad, sizeof(bad), "%s/frames", file);
    o.codec = RF_CODEC_PNG;
    RF_CHECK(rf_video_writer_open(bad, &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "cannot create the PNG frame directory");
    RF_CHECK(rf_video_writer_open(file, &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "a file of that name exists");
    o.codec = RF_CODEC_PRORES;
    RF_CHECK(rf_video_writer_open("out.mp4", &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "out.mp4: codec prores does not go in this file");
    o.codec = RF_CODEC_H264;
    o.width = 95;
    RF_CHECK(rf_video_writer_open("out.mp4", &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "h264 needs an even width and height, got 95x64");
    o.width = W;
    o.fps = 0;
    RF_CHECK(rf_video_writer_open("out.mp4", &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "fps must be 1..240");
    o.fps = 16;
    o.crf = 60;
    RF_CHECK(rf_video_writer_open("out.mp4", &o, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "crf must be 0..51");
    /* abort leaves neither the file nor its temp */
    char path[512], tmp[600];
    rf_test_path(path, sizeof(path), "aborted.mp4");
    o.crf = -1;
    rf_video_writer *w = rf_video_writer_open(path, &o, &err);
    RF_CHECK(w != NULL);
    rf_video_writer_abort(&w);
    rf_video_writer_abort(&w);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    RF_CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0);
}

RF_TEST(reader_and_concat_errors)
{
    rf_error err;
    RF_CHECK(rf_video_reader_open("/nonexistent/clip.mp4", 64, 64, &err) == NULL);
    RF_CHECK_EQ_INT(err.code, RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent/clip.mp4: cannot open");
    char path[512];
    rf_test_path(path, sizeof(path), "notes.mp4");
    const char *text = "this is not a video at all, just some text\n";
    RF_CHECK_EQ_INT(rf_test_write_file(path, text, strlen(text)), 0);
    RF_CHECK(rf_video_reader_open(path, 64, 64, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, path);
    char dir[512];
    rf_test_path(dir, sizeof(dir), "empty-dir");
    RF_CHECK_EQ_INT(mkdir(dir, 0700), 0);
    RF_CHECK(rf_video_reader_open(dir, 64, 64, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "frame_000000.png is missing");
    RF_CHECK(rf_video_reader_open(dir, 64, 0, &err) == NULL);

    /* a truncated file: an error naming it or fewer frames, never a crash */
    char good[512], cut[512];
    rf_test_path(good, sizeof(good), "whole.mp4");
    rf_test_path(cut, sizeof(cut), "cut.mp4");
    RF_CHECK_EQ_INT(s_write(good, RF_CODEC_H264, 0, 17, 0, 0, &err), 0);
    FILE *f = fopen(good, "rb");
    RF_CHECK(f != NULL);
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    RF_CHECK_EQ_INT(rf_test_write_file(cut, buf, n / 2), 0);
    free(buf);
    uint8_t *frames = malloc((size_t)W * H * 3 * 20);
    int k = s_read_all(cut, 0, 0, frames, 20, &err);
    if (k < 0)
        RF_CHECK_CONTAINS(err.msg, cut);
    else
        RF_CHECK(k < 17);
    free(frames);

    /* concat refuses mismatched segments and names the odd one */
    char a[512], b[512], out[512];
    rf_test_path(a, sizeof(a), "ma.mp4");
    rf_test_path(b, sizeof(b), "mb.mp4");
    rf_test_path(out, sizeof(out), "mixed.mp4");
    RF_CHECK_EQ_INT(s_write(a, RF_CODEC_H264, 0, 3, 0, 0, &err), 0);
    RF_CHECK_EQ_INT(s_write(b, RF_CODEC_H264, 0, 3, 2 * W, 2 * H, &err), 0);
    const char *list[] = {a, b};
    RF_CHECK_EQ_INT(rf_video_concat(list, 2, out, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "segment 1");
    RF_CHECK_CONTAINS(err.msg, "was not encoded with the same settings");
    RF_CHECK(access(out, F_OK) != 0);
    const char *missing[] = {a, "/nonexistent/seg.mp4"};
    RF_CHECK(rf_video_concat(missing, 2, out, &err) != 0);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent/seg.mp4: cannot open segment 1");
    RF_CHECK(access(out, F_OK) != 0);
    RF_CHECK_EQ_INT(rf_video_concat(list, 0, out, &err), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_video_concat(list, 1, "joined.webm", &err), RF_EINVAL);
}

RF_TEST(inputs_cannot_reach_other_files)
{
    /* a playlist or a concat list naming a real video beside it: an untrusted input must
     * not make the reader open that file (or a URL) */
    rf_error err;
    char seg[512], m3u8[512], ffc[512];
    rf_test_path(seg, sizeof(seg), "secret.mkv");
    RF_CHECK_EQ_INT(s_write(seg, RF_CODEC_FFV1, 0, 3, 0, 0, &err), 0);
    const char *hls = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n"
                      "secret.mkv\n#EXT-X-ENDLIST\n";
    const char *cat = "ffconcat version 1.0\nfile secret.mkv\n";
    rf_test_path(m3u8, sizeof(m3u8), "list.m3u8");
    rf_test_path(ffc, sizeof(ffc), "list.ffconcat");
    RF_CHECK_EQ_INT(rf_test_write_file(m3u8, hls, strlen(hls)), 0);
    RF_CHECK_EQ_INT(rf_test_write_file(ffc, cat, strlen(cat)), 0);
    const char *lists[] = {m3u8, ffc};
    uint8_t *frames = malloc((size_t)W * H * 3 * 4);
    for (int i = 0; i < 2; i++) {
        int k = s_read_all(lists[i], 0, 0, frames, 4, &err);
        RF_CHECK_MSG(k <= 0, "%s: %d frames of the file it names were read", lists[i], k);
    }
    free(frames);
    RF_CHECK_EQ_INT(s_read_all(seg, 0, 0, NULL, 0, &err), 3); /* the file itself reads */
}
