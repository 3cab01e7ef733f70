/* cmd_render.c - `reelfarm-engine render`: a prompt to a video file on this machine.
 *
 * Parses the options, fills in the model folder's defaults, runs the pipeline and
 * prints where the file went with the time split. The one-process path; the farm
 * (reelctl render) splits the same work into chunks over workers.
 */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void s_usage(FILE *f)
{
    fprintf(
        f,
        "usage: reelfarm-engine render --model DIR --prompt TEXT -o OUT [options]\n"
        "\n"
        "Renders one clip from a prompt on this machine: tokenizer, umT5, the DiT with a\n"
        "sampler and classifier-free guidance, the VAE, then the video encoder.\n"
        "\n"
        "  --model DIR        model folder (model.json, or the official Wan2.1 layout)\n"
        "  --prompt TEXT      what to show\n"
        "  --negative TEXT    what to avoid (default: the model's negative prompt)\n"
        "  --frames N         pixel frames, 4n+1 (default: the model's, e.g. 81)\n"
        "  --seconds S        length in seconds instead (rounded to 4n+1 frames at --fps)\n"
        "  --size WxH         multiples of 16 (default: the model's native size)\n"
        "  --steps N          sampler steps (default: the model's)\n"
        "  --seed S           noise seed (default 0)\n"
        "  --sampler NAME     unipc | euler | dpm++ (default: the model's)\n"
        "  --shift K          schedule shift (default: the model's)\n"
        "  --guidance G       classifier-free guidance scale; <= 1 turns it off\n"
        "  --fps N            playback rate (default: the model's, 16)\n"
        "  --codec NAME       h264 | h265 | prores | ffv1 | png (default: from OUT)\n"
        "  --crf N            h264/h265 quality (default 18 / 23)\n"
        "  --threads N        CPU threads (default: all cores)\n"
        "  --image PATH       animate a picture: the film opens on it (latent frame 0 is\n"
        "                     re-imposed at every step); with --frames 1 and --strength,\n"
        "                     restyle it instead\n"
        "  --video PATH       restyle a clip (SDEdit): its first N frames, noised to\n"
        "  --strength S       S in [0, 1] (default 0.7; 0 keeps the clip, 1 ignores it)\n"
        "  --continue PATH    continue a clip: its frames (the first 4n+1) are the known\n"
        "                     beginning of the film, which must be at least 4 frames longer\n"
        "  -o, --output OUT   out.mp4 | out.mov | out.mkv | a directory (png frames) |\n"
        "                     still.png (with --frames 1)\n"
        "\n"
        "example:\n"
        "  reelfarm-engine render --model models/reel-tiny \\\n"
        "      --prompt \"a yellow star moves to the left on a black background\" -o star.mp4\n");
}

static int s_codec_from_path(const char *out, rf_codec *c)
{
    const char *dot = strrchr(out, '.');
    const char *slash = strrchr(out, '/');
    if (!dot || (slash && dot < slash)) {
        *c = RF_CODEC_PNG; /* a directory of frames */
        return 0;
    }
    if (!strcmp(dot, ".mp4"))
        *c = RF_CODEC_H264;
    else if (!strcmp(dot, ".mov"))
        *c = RF_CODEC_PRORES;
    else if (!strcmp(dot, ".mkv"))
        *c = RF_CODEC_FFV1;
    else if (!strcmp(dot, ".png"))
        *c = RF_CODEC_PNG;
    else
        return -1;
    return 0;
}

static int s_num(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = v ? strtod(v, &end) : 0;
    if (!v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "reelfarm-engine render: %s needs a number in [%g, %g], got '%s'\n", flag,
                lo, hi, v ? v : "");
        return -1;
    }
    *out = d;
    return 0;
}

int rf_cmd_render(int argc, char **argv)
{
    const char *model = NULL, *codec_name = NULL, *size = NULL;
    rf_render_opts o;
    memset(&o, 0, sizeof(o));
    o.shift = -1;
    o.guidance = -1;
    o.crf = -1;
    double seconds = 0, threads = 0, v;
    int strength_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            return 0;
        }
        if (!val) {
            fprintf(stderr, "reelfarm-engine render: %s needs a value (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model"))
            model = val;
        else if (!strcmp(a, "--prompt"))
            o.prompt = val;
        else if (!strcmp(a, "--negative"))
            o.negative = val;
        else if (!strcmp(a, "--sampler"))
            o.sampler = val;
        else if (!strcmp(a, "--codec"))
            codec_name = val;
        else if (!strcmp(a, "--size"))
            size = val;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            o.output = val;
        else if (!strcmp(a, "--frames") && !(bad = s_num(a, val, 1, 100001, &v)))
            o.frames = (int)v;
        else if (!strcmp(a, "--seconds"))
            bad = s_num(a, val, 0.01, 86400, &seconds);
        else if (!strcmp(a, "--steps") && !(bad = s_num(a, val, 1, 10000, &v)))
            o.steps = (int)v;
        else if (!strcmp(a, "--seed") && !(bad = s_num(a, val, 0, 1.8e19, &v)))
            o.seed = strtoull(val, NULL, 10);
        else if (!strcmp(a, "--shift"))
            bad = s_num(a, val, 0.001, 100, &o.shift);
        else if (!strcmp(a, "--guidance"))
            bad = s_num(a, val, 0, 50, &o.guidance);
        else if (!strcmp(a, "--fps") && !(bad = s_num(a, val, 1, 240, &v)))
            o.fps = (int)v;
        else if (!strcmp(a, "--crf") && !(bad = s_num(a, val, 0, 51, &v)))
            o.crf = (int)v;
        else if (!strcmp(a, "--image"))
            o.image = val;
        else if (!strcmp(a, "--video"))
            o.video = val;
        else if (!strcmp(a, "--continue"))
            o.continues = val;
        else if (!strcmp(a, "--strength") && !(bad = s_num(a, val, 0, 1, &o.strength)))
            strength_set = 1;
        else if (!strcmp(a, "--threads"))
            bad = s_num(a, val, 1, 1024, &threads);
        else if (!bad) {
            fprintf(stderr, "reelfarm-engine render: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (bad)
            return 2;
    }
    if (!model || !o.prompt || !o.output) {
        fprintf(stderr, "reelfarm-engine render: --model, --prompt and -o are required (see "
                        "--help)\n");
        return 2;
    }
    if (size && (sscanf(size, "%dx%d", &o.width, &o.height) != 2 || o.width <= 0 || o.height <= 0 ||
                 o.width % 16 || o.height % 16)) {
        fprintf(stderr,
                "reelfarm-engine render: --size must be WxH in multiples of 16, e.g. "
                "832x480; got '%s'\n",
                size);
        return 2;
    }
    if (codec_name ? rf_codec_parse(codec_name, &o.codec) != 0
                   : s_codec_from_path(o.output, &o.codec) != 0) {
        fprintf(stderr,
                "reelfarm-engine render: cannot tell the codec of '%s': use .mp4, .mov, "
                ".mkv, .png, a directory, or --codec h264|h265|prores|ffv1|png\n",
                codec_name ? codec_name : o.output);
        return 2;
    }
    if (strength_set && !o.video && !o.image) {
        fprintf(stderr, "reelfarm-engine render: --strength goes with --video (or --image for a "
                        "still)\n");
        return 2;
    }
    if (o.video && !strength_set)
        o.strength = 0.7;
    rf_pipeline_opts po = {(int)threads};
    rf_error err;
    rf_error_clear(&err);
    rf_pipeline *p = rf_pipeline_open(model, &po, &err);
    if (!p) {
        fprintf(stderr, "reelfarm-engine render: %s\n", err.msg);
        return 1;
    }
    if (seconds > 0) {
        int fps = o.fps > 0 ? o.fps : rf_pipeline_model(p)->defaults.fps;
        int f = (int)(seconds * fps + 0.5);
        o.frames = ((f < 1 ? 1 : f) - 1 + 3) / 4 * 4 + 1;
    }
    o.progress = isatty(2);
    rf_render_stats st;
    int rc = rf_pipeline_render(p, &o, &st, &err);
    rf_pipeline_destroy(&p);
    if (rc) {
        fprintf(stderr, "reelfarm-engine render: %s\n", err.msg);
        return 1;
    }
    printf("%s: %d frames %dx%d, %d steps\n", o.output, st.frames, st.width, st.height, st.steps);
    if (st.known_frames)
        printf("input: %d known frame%s re-imposed\n", st.known_frames,
               st.known_frames == 1 ? "" : "s");
    if (o.video || (o.image && o.strength > 0))
        printf("input: strength %.3g, sampling from step %d of %d\n", o.strength, st.start_step,
               st.steps);
    printf("time: text %.2fs, sampling %.2fs, decode %.2fs, encode %.2fs, total %.2fs\n", st.text_s,
           st.sample_s, st.decode_s, st.encode_s, st.total_s);
    return 0;
}
