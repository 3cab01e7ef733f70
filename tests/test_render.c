/* test_render.c - `reelfarm-engine render` makes a playable file in every codec.
 *
 * Renders a short clip with a tiny random model folder (tests/support/tiny_model: the
 * real tokenizer -> umT5 -> DiT + sampler -> VAE -> encoder path, noise for pictures)
 * and checks each file with
 * ffprobe: codec, size and frame count. Also the errors a user meets first: a model
 * folder that is missing a piece, frames that are not 4n+1, an unknown extension.
 */
#include "rf_test.h"
#include "support/proc.h"
#include "support/tiny_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *s_model(void)
{
    static char path[1024];
    RF_CHECK_MSG(rf_test_tiny_model(path, sizeof(path)), "cannot make the tiny model folder");
    return path;
}

/* Runs reelfarm-engine with args; returns its exit status, output in *log. */
static int s_engine(const char *const *args, char **log)
{
    char bin[1024];
    rf_proc_bin(bin, sizeof(bin), "reelfarm-engine");
    const char *argv[32] = {bin};
    int n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    rf_error err;
    rf_proc *p = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    int status = -1;
    RF_CHECK_MSG(rf_proc_wait(p, 300000, &status, &err) == 0, "%s", err.msg);
    *log = rf_proc_log(p, NULL);
    rf_proc_destroy(&p);
    return status;
}

/* ffprobe's "codec_name,width,height,nb_read_frames" of the first video stream. */
static void s_probe(const char *path, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
             "stream=codec_name,width,height,nb_read_frames -of csv=p=0 '%s' 2>&1",
             path);
    FILE *f = popen(cmd, "r");
    RF_CHECK(f);
    size_t n = fread(out, 1, cap - 1, f);
    pclose(f);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
}

static void s_render(const char *model, const char *out, const char *frames)
{
    char *log;
    const char *a[] = {"render",
                       "--model",
                       model,
                       "--prompt",
                       "a red circle moves to the right on a black background",
                       "--frames",
                       frames,
                       "--steps",
                       "2",
                       "--seed",
                       "3",
                       "--threads",
                       "2",
                       "-o",
                       out,
                       NULL};
    int rc = s_engine(a, &log);
    RF_CHECK_MSG(rc == 0, "render %s failed: %s", out, log);
    RF_CHECK_CONTAINS(log, "time: text");
    free(log);
}

RF_TEST(renders_every_codec_playable)
{
    const char *model = s_model();
    static const struct {
        const char *file, *codec;
    } cases[] = {{"clip.mp4", "h264"}, {"clip.mov", "prores"}, {"clip.mkv", "ffv1"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[512], probe[256];
        rf_test_path(out, sizeof(out), cases[i].file);
        s_render(model, out, "9");
        s_probe(out, probe, sizeof(probe));
        RF_CHECK_MSG(strncmp(probe, cases[i].codec, strlen(cases[i].codec)) == 0,
                     "%s: ffprobe says %s", cases[i].file, probe);
        RF_CHECK_MSG(strstr(probe, ",9") != NULL, "%s: not 9 frames: %s", cases[i].file, probe);
    }
    /* h265 by name, png as a directory of frames and as a still */
    char out[512], probe[256], *log;
    rf_test_path(out, sizeof(out), "clip265.mp4");
    const char *h265[] = {"render",   "--model", model,     "--prompt", "a blue square moves up",
                          "--frames", "5",       "--steps", "2",        "--codec",
                          "h265",     "-o",      out,       NULL};
    RF_CHECK_EQ_INT(s_engine(h265, &log), 0);
    free(log);
    s_probe(out, probe, sizeof(probe));
    RF_CHECK_MSG(strncmp(probe, "hevc", 4) == 0, "h265: ffprobe says %s", probe);
    rf_test_path(out, sizeof(out), "frames");
    s_render(model, out, "5");
    char last[600];
    snprintf(last, sizeof(last), "%s/frame_000004.png", out); /* 5 frames: 000000..000004 */
    s_probe(last, probe, sizeof(probe));
    RF_CHECK_MSG(strncmp(probe, "png", 3) == 0, "png sequence: %s", probe);
    snprintf(last, sizeof(last), "%s/frame_000005.png", out);
    struct stat sb;
    RF_CHECK_MSG(stat(last, &sb) != 0, "png sequence has more than 5 frames");
    rf_test_path(out, sizeof(out), "still.png");
    s_render(model, out, "1");
    s_probe(out, probe, sizeof(probe));
    RF_CHECK_MSG(strncmp(probe, "png", 3) == 0, "still: %s", probe);
}

RF_TEST(user_mistakes_are_explained)
{
    char *log, dir[512], out[512];
    rf_test_path(dir, sizeof(dir), "not-a-model");
    mkdir(dir, 0700);
    rf_test_path(out, sizeof(out), "x.mp4");
    const char *a[] = {"render", "--model", dir, "--prompt", "x", "-o", out, NULL};
    RF_CHECK_EQ_INT(s_engine(a, &log), 1);
    RF_CHECK_CONTAINS(log, "no DiT");
    RF_CHECK_CONTAINS(log, "no tokenizer");
    free(log);
    const char *model = s_model();
    const char *b[] = {"render",   "--model", model, "--prompt", "x",
                       "--frames", "30",      "-o",  out,        NULL};
    RF_CHECK_EQ_INT(s_engine(b, &log), 1);
    RF_CHECK_CONTAINS(log, "4n+1");
    free(log);
    const char *c[] = {"render", "--model", model, "--prompt", "x", "-o", "clip.avi", NULL};
    RF_CHECK_EQ_INT(s_engine(c, &log), 2);
    RF_CHECK_CONTAINS(log, "cannot tell the codec");
    free(log);
}
