/* test_spec.c - the job spec: every valid kind (film, one shot, still, JSON, each input),
 * defaults and derived timelines, each kind of mistake with its file, line and field,
 * hostile text, -o, model resolution, and the JSON dump round trip. */
#include "spec.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rf_test.h"

static rf_job_spec *s_parse(const char *text, rf_spec_diags *d, rf_error *err)
{
    rf_error_clear(err);
    return rf_spec_parse(text, strlen(text), "t.yaml", d, err);
}

/* Parses text expecting failure; checks the joined message contains want. */
#define EXPECT_ERROR(text, want)                                             \
    do {                                                                     \
        rf_error e_;                                                         \
        rf_spec_diags d_;                                                    \
        rf_job_spec *s_ = s_parse((text), &d_, &e_);                         \
        RF_CHECK_MSG(s_ == NULL, "spec parsed but should fail: %s", (want)); \
        RF_CHECK_EQ_INT(e_.code, RF_EINVAL);                                 \
        RF_CHECK_CONTAINS(e_.msg, (want));                                   \
    } while (0)

#define BASE "model: reel-tiny\nwidth: 256\nheight: 256\n"

static char *s_example(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf), "%s/examples/%s", RF_SOURCE_DIR, name);
    return buf;
}

/* ---- valid specs --------------------------------------------------------------------- */

RF_TEST(minimal_spec_gets_the_documented_defaults)
{
    rf_error err;
    rf_job_spec *s = s_parse(BASE "shots:\n  - prompt: a cat\n    frames: 81\n", NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_STR(s->model, "reel-tiny");
    RF_CHECK_EQ_STR(s->name, "t");
    RF_CHECK_EQ_INT(s->width, 256);
    RF_CHECK_EQ_INT(s->fps, 16);
    RF_CHECK_EQ_INT(s->steps, 50);
    RF_CHECK(s->guidance == 5.0 && s->shift == 5.0);
    RF_CHECK_EQ_INT(s->sampler, RF_SAMPLER_UNIPC);
    RF_CHECK_EQ_INT(s->chunk.frames, 81);
    RF_CHECK_EQ_INT(s->chunk.overlap, 16);
    RF_CHECK_EQ_INT(s->chunk.sync_every, 1);
    RF_CHECK_EQ_INT(s->chunk.checkpoint_every, 5);
    RF_CHECK_EQ_INT(s->chunk.weights, RF_WEIGHTS_LINEAR);
    RF_CHECK_EQ_INT(s->mode, RF_MODE_LOCKSTEP);
    RF_CHECK_EQ_INT(s->seed_set, 0);
    RF_CHECK_EQ_INT(s->still, 0);
    RF_CHECK_EQ_INT(s->inputs.kind, RF_INPUT_NONE);
    RF_CHECK_EQ_INT(s->output.codec, RF_CODEC_H264);
    RF_CHECK_EQ_INT(s->output.crf, 18);
    RF_CHECK_EQ_STR(s->output.path, "t.mp4");
    RF_CHECK_EQ_INT(s->output.scale_width, 0);
    RF_CHECK_EQ_INT(s->priority, 0);
    RF_CHECK_EQ_INT(s->explicit_fields, 0);
    RF_CHECK_EQ_INT(s->shot_count, 1);
    RF_CHECK(s->shots[0].negative == NULL);
    RF_CHECK(s->plan.negative == NULL); /* the plan's inputs: none given */
    RF_CHECK_EQ_INT(s->plan.decode_segment, 0);
    RF_CHECK_EQ_INT(s->plan.decode_warmup, -1);
    RF_CHECK_EQ_INT(s->timeline_count, 1);
    RF_CHECK_EQ_INT(s->timelines[0].render_frames, 81);
    RF_CHECK_EQ_INT(s->timelines[0].latent_frames, 21);
    rf_spec_free(&s);
    RF_CHECK(s == NULL);
    rf_spec_free(&s);
}

RF_TEST(every_field_is_read)
{
    const char *text = "name: full-1\n"
                       "model: /models/wan\n"
                       "width: 832\n"
                       "height: 480\n"
                       "fps: 24\n"
                       "seed: 9007199254740993\n"
                       "steps: 30\n"
                       "guidance: 6\n"
                       "sampler: dpm++\n"
                       "shift: 8.5\n"
                       "chunk: {frames: 49, overlap: 8, sync_every: 2, checkpoint_every: 3, "
                       "weights: cosine}\n"
                       "mode: independent\n"
                       "priority: -5\n"
                       "shots:\n"
                       "  - prompt: one\n"
                       "    negative: ugly\n"
                       "    seconds: 2.5\n"
                       "  - {prompt: two, frames: 17, transition: cut}\n"
                       "output: {path: out/film.mp4, codec: h265, crf: 30, scale: 1280x720}\n";
    rf_error err;
    rf_job_spec *s = s_parse(text, NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_STR(s->name, "full-1");
    RF_CHECK_EQ_STR(s->model, "/models/wan");
    RF_CHECK_EQ_INT(s->height, 480);
    RF_CHECK_EQ_INT(s->fps, 24);
    RF_CHECK(s->seed == 9007199254740993ull && s->seed_set);
    RF_CHECK_EQ_INT(s->steps, 30);
    RF_CHECK(s->guidance == 6.0 && s->shift == 8.5);
    RF_CHECK_EQ_INT(s->sampler, RF_SAMPLER_DPMPP);
    RF_CHECK_EQ_INT(s->chunk.frames, 49);
    RF_CHECK_EQ_INT(s->chunk.overlap, 8);
    RF_CHECK_EQ_INT(s->chunk.sync_every, 2);
    RF_CHECK_EQ_INT(s->chunk.checkpoint_every, 3);
    RF_CHECK_EQ_INT(s->chunk.weights, RF_WEIGHTS_COSINE);
    RF_CHECK_EQ_INT(s->mode, RF_MODE_INDEPENDENT);
    RF_CHECK_EQ_INT(s->priority, -5);
    RF_CHECK_EQ_STR(s->shots[0].negative, "ugly");
    RF_CHECK_EQ_INT(s->shots[0].frames, 60); /* 2.5 s * 24 fps */
    RF_CHECK_EQ_INT(s->shots[1].frames, 17);
    RF_CHECK_EQ_INT(s->shots[1].transition, RF_TRANSITION_CUT);
    RF_CHECK_EQ_INT(s->output.codec, RF_CODEC_H265);
    RF_CHECK_EQ_INT(s->output.crf, 30);
    RF_CHECK_EQ_INT(s->output.scale_width, 1280);
    RF_CHECK_EQ_INT(s->output.scale_height, 720);
    RF_CHECK(s->explicit_fields & RF_SPEC_SET_STEPS);
    RF_CHECK(s->explicit_fields & RF_SPEC_SET_SAMPLER);
    RF_CHECK(s->explicit_fields & RF_SPEC_SET_CRF);
    rf_spec_free(&s);
}

RF_TEST(demo_film_example_has_two_timelines)
{
    rf_error err;
    rf_spec_diags d;
    rf_job_spec *s = rf_spec_load(s_example("demo-film.yaml"), &d, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->shot_count, 5);
    RF_CHECK(s->total_frames >= 30 * s->fps);
    RF_CHECK_EQ_INT(s->total_frames, 36 * 16);
    RF_CHECK_EQ_INT(s->timeline_count, 2);
    /* 8 + 6 + 8 s blend into one timeline; the cut starts the second */
    RF_CHECK_EQ_INT(s->timelines[0].first_shot, 0);
    RF_CHECK_EQ_INT(s->timelines[0].shot_count, 3);
    RF_CHECK_EQ_INT(s->timelines[0].frames, 22 * 16);
    RF_CHECK_EQ_INT(s->timelines[0].render_frames, 22 * 16 + 1);
    RF_CHECK_EQ_INT(s->timelines[0].latent_frames, 89);
    RF_CHECK_EQ_INT(s->timelines[1].first_shot, 3);
    RF_CHECK_EQ_INT(s->timelines[1].frames, 14 * 16);
    RF_CHECK_EQ_INT(s->timelines[1].film_start, 22 * 16);
    RF_CHECK_EQ_INT(s->shots[2].start_frame, 14 * 16);
    RF_CHECK_EQ_INT(s->shots[4].timeline, 1);
    RF_CHECK_EQ_INT(s->shots[4].start_frame, 8 * 16);
    RF_CHECK_EQ_STR(s->name, "demo-film");
    rf_spec_free(&s);
}

RF_TEST(every_example_parses)
{
    /* every spec in examples/, so a new one is checked the day it is added */
    char dirp[1024];
    snprintf(dirp, sizeof(dirp), "%s/examples", RF_SOURCE_DIR);
    DIR *d = opendir(dirp);
    RF_CHECK_MSG(d != NULL, "cannot list %s", dirp);
    int inputs = 0, n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || !((len > 5 && !strcmp(e->d_name + len - 5, ".yaml")) ||
                                     (len > 5 && !strcmp(e->d_name + len - 5, ".json"))))
            continue;
        n++;
        rf_error err;
        rf_job_spec *s = rf_spec_load(s_example(e->d_name), NULL, &err);
        RF_CHECK_MSG(s != NULL, "%s: %s", e->d_name, err.msg);
        /* an example's input file is beside it (reelctl render reads it from there) */
        if (s && s->inputs.kind != RF_INPUT_NONE) {
            char path[1200];
            snprintf(path, sizeof(path), "%s/examples/%s", RF_SOURCE_DIR, s->inputs.path);
            RF_CHECK_MSG(!s->inputs.is_url && access(path, R_OK) == 0,
                         "%s: its input %s is not in examples/", e->d_name, s->inputs.path);
            inputs |= 1 << s->inputs.kind;
        }
        rf_spec_free(&s);
    }
    if (d)
        closedir(d);
    RF_CHECK_MSG(n >= 10, "only %d specs in examples/", n);
    /* one example per input mode */
    RF_CHECK_EQ_INT(inputs,
                    (1 << RF_INPUT_IMAGE) | (1 << RF_INPUT_VIDEO) | (1 << RF_INPUT_CONTINUE));
}

RF_TEST(single_shot_shorthand)
{
    rf_error err;
    rf_job_spec *s = rf_spec_load(s_example("single-shot.yaml"), NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->shot_count, 1);
    RF_CHECK_EQ_STR(s->shots[0].prompt, "a paper boat drifting down a rain-soaked street");
    RF_CHECK_EQ_STR(s->shots[0].negative, "blurry, low quality");
    RF_CHECK_EQ_INT(s->shots[0].frames, 80);
    RF_CHECK_EQ_INT(s->timelines[0].render_frames, 81);
    /* the .mkv path picks FFV1, which has no crf */
    RF_CHECK_EQ_INT(s->output.codec, RF_CODEC_FFV1);
    RF_CHECK_EQ_INT(s->output.crf, -1);
    RF_CHECK_EQ_STR(s->name, "single-shot");
    rf_spec_free(&s);
}

RF_TEST(stills_by_frames_1_or_still_true)
{
    rf_error err;
    rf_job_spec *s = rf_spec_load(s_example("still.yaml"), NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->still, 1);
    RF_CHECK_EQ_INT(s->total_frames, 1);
    RF_CHECK_EQ_INT(s->timelines[0].render_frames, 1);
    RF_CHECK_EQ_INT(s->timelines[0].latent_frames, 1);
    RF_CHECK_EQ_INT(s->output.codec, RF_CODEC_PNG);
    rf_spec_free(&s);

    s = s_parse(BASE "frames: 1\nshots:\n  - prompt: a still life\n", NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->still, 1);
    RF_CHECK_EQ_STR(s->output.path, "t.png");
    RF_CHECK_EQ_INT(s->shots[0].frames, 1);
    rf_spec_free(&s);
}

RF_TEST(inputs_of_each_kind)
{
    rf_error err;
    rf_job_spec *s = rf_spec_load(s_example("animate-image.yaml"), NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->inputs.kind, RF_INPUT_IMAGE);
    RF_CHECK_EQ_STR(s->inputs.path, "media/red-circle.png");
    RF_CHECK_EQ_INT(s->inputs.is_url, 0);
    rf_spec_free(&s);
    s = rf_spec_load(s_example("restyle-video.yaml"), NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->inputs.kind, RF_INPUT_VIDEO);
    RF_CHECK_NEAR(s->inputs.strength, 0.6, 1e-12);
    rf_spec_free(&s);
    s = rf_spec_load(s_example("continue-clip.yaml"), NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->inputs.kind, RF_INPUT_CONTINUE);
    rf_spec_free(&s);
    s = s_parse(BASE "prompt: x\nseconds: 1\ninputs: {video: 'https://example.com/a.mp4'}\n", NULL,
                &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->inputs.is_url, 1);
    RF_CHECK_NEAR(s->inputs.strength, 0.7, 1e-12); /* the documented default */
    rf_spec_free(&s);
}

RF_TEST(json_input_parses)
{
    rf_error err;
    rf_job_spec *s = rf_spec_load(s_example("ad-variant.json"), NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->mode, RF_MODE_INDEPENDENT);
    RF_CHECK_EQ_INT(s->priority, -10);
    RF_CHECK_EQ_INT(s->output.codec, RF_CODEC_H265);
    RF_CHECK_EQ_INT(s->output.scale_width, 512);
    /* "\u2014 \ud83e\udee7": an em dash and an astral emoji from a surrogate pair */
    RF_CHECK_CONTAINS(s->shots[1].prompt, "glass \xe2\x80\x94 \xf0\x9f\xab\xa7");
    rf_spec_free(&s);

    /* compact JSON with no spaces, tabs, escaped slashes, exponent numbers */
    const char *j = "{\"model\":\"a\\/b\",\"width\":256,\"height\":2.56e2,\n\t\"shots\":[{"
                    "\"prompt\":\"x\\ty\",\"frames\":9}],\"guidance\":4.5e0,\"still\":false}";
    s = s_parse(j, NULL, &err);
    RF_CHECK(s == NULL); /* height 2.56e2 is not a whole number literal */
    RF_CHECK_CONTAINS(err.msg, "t.yaml:1: height must be a whole number");
    const char *j2 = "{\"model\":\"a\\/b\",\"width\":256,\"height\":256,\n\t\"shots\":[{"
                     "\"prompt\":\"x\\ty\",\"frames\":9}],\"guidance\":4.5e0,\"still\":false}";
    s = s_parse(j2, NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_STR(s->model, "a/b");
    RF_CHECK_EQ_STR(s->shots[0].prompt, "x\ty");
    RF_CHECK(s->guidance == 4.5);
    rf_spec_free(&s);

    /* JSON mistakes carry lines too */
    EXPECT_ERROR("{\n\"model\": \"m\",\n\"width\": \"256\",\n\"height\": 256,\n\"shots\": []\n}",
                 "t.yaml:3: width must be a number");
    EXPECT_ERROR("{\"model\": \"m\",\n \"width\": 256,\n}", "t.yaml:");
}

RF_TEST(seconds_round_to_the_nearest_frame_and_timelines_round_up_to_4n_plus_1)
{
    rf_error err;
    rf_job_spec *s = s_parse(BASE "fps: 24\nshots:\n"
                                  "  - {prompt: a, seconds: 1.02}\n"   /* 24.48 -> 24 */
                                  "  - {prompt: b, seconds: 1.0625}\n" /* 25.5 -> 26 */
                                  "  - {prompt: c, frames: 5, transition: cut}\n"
                                  "  - {prompt: d, frames: 6, transition: blend}\n",
                             NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(s->shots[0].frames, 24);
    RF_CHECK_EQ_INT(s->shots[1].frames, 26);
    RF_CHECK_EQ_INT(s->timeline_count, 2);
    RF_CHECK_EQ_INT(s->timelines[0].frames, 50);
    RF_CHECK_EQ_INT(s->timelines[0].render_frames, 53);
    RF_CHECK_EQ_INT(s->timelines[0].latent_frames, 14);
    RF_CHECK_EQ_INT(s->timelines[1].frames, 11);
    RF_CHECK_EQ_INT(s->timelines[1].render_frames, 13);
    RF_CHECK_EQ_INT(s->timelines[1].film_start, 50);
    RF_CHECK_EQ_INT(s->total_frames, 61);
    rf_spec_free(&s);
}

RF_TEST(anchors_and_aliases_are_allowed)
{
    rf_error err;
    rf_job_spec *s = s_parse(BASE "shots:\n"
                                  "  - {prompt: a, negative: &neg 'blurry, dark', frames: 9}\n"
                                  "  - {prompt: b, negative: *neg, frames: 9}\n",
                             NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_STR(s->shots[1].negative, "blurry, dark");
    rf_spec_free(&s);
}

/* ---- each kind of mistake: file, line, field, what is allowed -------------------------- */

RF_TEST(chunk_mistakes)
{
    EXPECT_ERROR(BASE "prompt: x\nseconds: 5\nchunk:\n  frames: 30\n",
                 "t.yaml:7: chunk.frames must be 4n+1 (5, 9, ..., 77, 81, 85, ...), got 30");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 5\nchunk:\n  overlap: 10\n",
                 "t.yaml:7: chunk.overlap must be a multiple of 4");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 5\nchunk: {frames: 17, overlap: 20}\n",
                 "t.yaml:6: chunk.overlap must be less than chunk.frames (17), got 20");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 5\nchunk: {sync_every: 0}\n",
                 "t.yaml:6: chunk.sync_every must be between 1 and 1000, got 0");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 5\nchunk: {weights: gauss}\n",
                 "t.yaml:6: chunk.weights must be one of linear | uniform | cosine, got gauss");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 5\nchunk: 81\n", "t.yaml:6: chunk must be a mapping");
}

RF_TEST(size_mistakes)
{
    EXPECT_ERROR("model: m\nwidth: 250\nheight: 256\nprompt: x\nseconds: 1\n",
                 "t.yaml:2: width must be a multiple of 16 (e.g. 240 or 256), got 250");
    EXPECT_ERROR("model: m\nwidth: 256\nheight: 8192\nprompt: x\nseconds: 1\n",
                 "t.yaml:3: height must be between 16 and 4096, got 8192");
    EXPECT_ERROR("model: m\nwidth: -16\nheight: 256\nprompt: x\nseconds: 1\n",
                 "t.yaml:2: width must be between 16 and 4096, got -16");
    EXPECT_ERROR("model: m\nheight: 256\nprompt: x\nseconds: 1\n", "t.yaml:1: width is required");
}

RF_TEST(type_mistakes)
{
    EXPECT_ERROR("model: m\nwidth: \"256\"\nheight: 256\nprompt: x\nseconds: 1\n",
                 "t.yaml:2: width must be a number between 16 and 4096, got a string \"256\"");
    EXPECT_ERROR(BASE "steps: fifty\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: steps must be a number between 1 and 1000, got a value fifty");
    EXPECT_ERROR(BASE "steps: [1, 2]\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: steps must be a number between 1 and 1000, got a list");
    EXPECT_ERROR(BASE "guidance: high\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: guidance must be a number >= 0 and <= 50, got a value high");
    EXPECT_ERROR(BASE "shift: 0\nprompt: x\nseconds: 1\n", "t.yaml:4: shift must be > 0");
    EXPECT_ERROR(BASE "still: yes\nprompt: x\n", "t.yaml:4: still must be true or false, got yes");
    EXPECT_ERROR(BASE "seed: -1\nprompt: x\nseconds: 1\n", "t.yaml:4: seed must be between 0");
    EXPECT_ERROR(BASE "seed: 99999999999999999999\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: seed must be a whole number");
    EXPECT_ERROR(BASE "fps: 23.976\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: fps must be a whole number between 1 and 120, got 23.976");
    EXPECT_ERROR(BASE "prompt: [a, b]\nseconds: 1\n", "t.yaml:4: prompt must be text, got a list");
    EXPECT_ERROR(BASE "prompt: ~\nseconds: 1\n", "t.yaml:4: prompt must be text, got null");
    EXPECT_ERROR(BASE "sampler: ddim\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: sampler must be one of unipc | euler | dpm++, got ddim");
    EXPECT_ERROR(BASE "mode: parallel\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: mode must be one of lockstep | independent, got parallel");
    EXPECT_ERROR(BASE "priority: 1000\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: priority must be between -100 and 100, got 1000");
    EXPECT_ERROR(BASE "name: 'my film'\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: name may hold only letters, digits");
    EXPECT_ERROR("- model: m\n", "t.yaml:1: the top level must be a mapping");
}

RF_TEST(shot_mistakes)
{
    EXPECT_ERROR(BASE "shots:\n  - prompt: x\n    seconds: -3\n",
                 "t.yaml:6: shots[0].seconds must be > 0 and <= 10800, got -3");
    EXPECT_ERROR(BASE "shots:\n  - prompt: x\n    frames: 30.5\n",
                 "t.yaml:6: shots[0].frames must be a whole number between 5 and 172800, got "
                 "30.5");
    EXPECT_ERROR(BASE "shots: []\n", "t.yaml:4: shots is empty; a film needs at least one shot");
    EXPECT_ERROR(BASE "shots:\n  - prompt: ''\n    seconds: 1\n",
                 "t.yaml:5: shots[0].prompt must not be empty");
    EXPECT_ERROR(BASE "shots:\n  - prompt: '   '\n    seconds: 1\n",
                 "t.yaml:5: shots[0].prompt must not be empty");
    EXPECT_ERROR(BASE "shots:\n  - prompt: x\n    seconds: 0.1\n",
                 "t.yaml:6: shots[0].seconds is too short: 0.1 s at 16 fps is 2 frames; a shot "
                 "needs at least 5 frames");
    EXPECT_ERROR(BASE "shots:\n  - prompt: x\n    frames: 3\n",
                 "t.yaml:6: shots[0].frames must be between 5 and 172800, got 3");
    EXPECT_ERROR(BASE "shots:\n  - prompt: x\n    frames: 1\n", "a single image is `frames: 1`");
    EXPECT_ERROR(BASE "shots:\n  - prompt: x\n    frames: 9\n    seconds: 1\n",
                 "t.yaml:6: give shots[0].seconds or shots[0].frames, not both");
    EXPECT_ERROR(BASE "shots:\n  - prompt: x\n  - prompt: y\n",
                 "t.yaml:5: shots[0].seconds (or shots[0].frames) is required");
    EXPECT_ERROR(BASE "shots:\n  - seconds: 2\n", "t.yaml:5: shots[0].prompt is required");
    EXPECT_ERROR(BASE "shots:\n  - {prompt: a, seconds: 2, transition: fade}\n",
                 "t.yaml:5: shots[0].transition must be one of blend | cut, got fade");
    EXPECT_ERROR(BASE "shots:\n  - just a prompt\n",
                 "t.yaml:5: shots[0] must be a mapping (key: value lines), got a value");
    EXPECT_ERROR(BASE "shots: {prompt: x}\n", "t.yaml:4: shots must be a list of shots");
    EXPECT_ERROR(BASE "shots:\n  - {prompt: a, seconds: 2}\nprompt: b\n",
                 "t.yaml:6: give either a shots list or a top-level prompt");
    EXPECT_ERROR(BASE, "t.yaml:1: shots is required");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 20000\n",
                 "t.yaml:5: seconds must be > 0 and <= 10800, got 20000");
    EXPECT_ERROR(BASE "fps: 120\nshots:\n"
                      "  - {prompt: a, seconds: 1000}\n"
                      "  - {prompt: a, seconds: 1000}\n",
                 "t.yaml:5: the film is 240000 frames (2000.0 s at 120 fps); at most 172800");
}

RF_TEST(too_long_prompt_is_refused)
{
    size_t n = RF_SPEC_MAX_PROMPT + 1;
    char *text = malloc(n + 128);
    RF_CHECK(text != NULL);
    int o = snprintf(text, 128, BASE "seconds: 1\nprompt: ");
    memset(text + o, 'a', n);
    text[o + n] = '\n';
    text[o + n + 1] = '\0';
    rf_error err;
    rf_job_spec *s = s_parse(text, NULL, &err);
    free(text);
    RF_CHECK(s == NULL);
    RF_CHECK_CONTAINS(err.msg, "t.yaml:5: prompt is 4097 bytes; at most 4096 are allowed");
}

RF_TEST(still_mistakes)
{
    EXPECT_ERROR(BASE "still: true\nshots:\n  - {prompt: a}\n  - {prompt: b}\n",
                 "t.yaml:5: a still takes exactly one shot, got 2");
    EXPECT_ERROR(BASE "still: true\nprompt: a\noutput: {codec: h264}\n",
                 "t.yaml:6: output.codec must be png for a still");
    EXPECT_ERROR(BASE "still: true\nframes: 9\nprompt: a\n",
                 "t.yaml:5: a still (still: true) has no frames");
    EXPECT_ERROR(BASE "still: false\nframes: 1\nprompt: a\n",
                 "t.yaml:5: frames: 1 asks for a single image but still is false");
    EXPECT_ERROR(BASE "still: true\nshots:\n  - {prompt: a, seconds: 2}\n",
                 "t.yaml:6: a still has no length");
    EXPECT_ERROR(BASE "still: true\nprompt: a\ninputs: {continue: c.mp4}\n",
                 "t.yaml:6: inputs.continue makes no sense for a still");
    EXPECT_ERROR(BASE "still: true\nprompt: a\noutput: {path: a.jpg}\n",
                 "t.yaml:6: output.path for codec png must be a .png file");
}

RF_TEST(unknown_keys_with_did_you_mean)
{
    EXPECT_ERROR(BASE "guidence: 5\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: unknown key guidence; did you mean guidance?");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\nchunk:\n  overlp: 8\n",
                 "t.yaml:7: unknown key chunk.overlp; did you mean chunk.overlap?");
    EXPECT_ERROR(BASE "shots:\n  - {prompt: a, second: 2}\n",
                 "t.yaml:5: unknown key shots[0].second; did you mean shots[0].seconds?");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\ncolour: red\n",
                 "t.yaml:6: unknown key colour; allowed at the top level: name, model, width");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\noutput: {format: mp4}\n",
                 "t.yaml:6: unknown key output.format; allowed in output: path, codec, crf, scale");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\nwidth: 512\n",
                 "t.yaml:6: width is given twice (first on line 2)");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\n[a]: 1\n",
                 "t.yaml:6: keys at the top level must be plain names");
}

RF_TEST(output_mistakes)
{
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\noutput: {codec: prores, crf: 20}\n",
                 "t.yaml:6: output.crf applies only to h264 and h265 (codec is prores)");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\noutput: {crf: 52}\n",
                 "t.yaml:6: output.crf must be between 0 and 51, got 52");
    EXPECT_ERROR(
        BASE "prompt: x\nseconds: 1\noutput: {codec: av1}\n",
        "t.yaml:6: output.codec must be one of h264 | h265 | prores | ffv1 | png, got av1");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\noutput: {codec: prores, path: a.mp4}\n",
                 "t.yaml:6: output.path for codec prores must be a .mov file, got a.mp4");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\noutput: {path: frames.tif}\n",
                 "t.yaml:6: output.path for codec h264 must be a .mp4, .mov or .mkv file");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\noutput: {scale: 9}\n",
                 "t.yaml:6: output.scale must be a factor > 0 and <= 8");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\noutput: {scale: 641x480}\n",
                 "t.yaml:6: output.scale size must have even sides");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\noutput: {scale: big}\n",
                 "t.yaml:6: output.scale must be a factor (e.g. 2 or 0.5) or a size like 1280x720");
}

RF_TEST(input_mistakes)
{
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\ninputs:\n  image: a.png\n  video: b.mp4\n",
                 "t.yaml:8: inputs takes one of image, video or continue, not several");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\ninputs:\n  image: a.png\n  strength: 0.5\n",
                 "t.yaml:8: inputs.strength applies only to inputs.video");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\ninputs:\n  video: a.mp4\n  strength: 1.5\n",
                 "t.yaml:8: inputs.strength must be >= 0 and <= 1, got 1.5");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\ninputs:\n  image: ftp://host/a.png\n",
                 "t.yaml:7: inputs.image must be a file path or an http:// or https:// URL");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\ninputs:\n  strength: 0.5\n",
                 "t.yaml:6: inputs needs one of image, video or continue");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\ninputs:\n  image: ''\n",
                 "t.yaml:7: inputs.image must not be empty");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\ninputs:\n  image: http://\n",
                 "t.yaml:7: inputs.image is a URL without a host");
}

RF_TEST(missing_model_and_syntax_errors)
{
    EXPECT_ERROR("width: 256\nheight: 256\nprompt: x\nseconds: 1\n", "t.yaml:1: model is required");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\nchunk:\n  frames: 81\n overlap: 16\n",
                 "t.yaml:8: not valid YAML or JSON");
    EXPECT_ERROR(BASE "prompt: \"unterminated\nseconds: 1\n", "t.yaml:");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\n---\nmodel: b\n",
                 "t.yaml:6: holds more than one YAML document");
    EXPECT_ERROR("", "t.yaml: is empty");
    EXPECT_ERROR("# only a comment\n", "t.yaml: is empty");
    EXPECT_ERROR(BASE "prompt: *nothing\nseconds: 1\n", "t.yaml:4: alias *nothing names no");
}

RF_TEST(all_errors_are_collected_in_one_pass)
{
    rf_error err;
    rf_spec_diags d;
    rf_job_spec *s = s_parse("model: m\n"
                             "width: 250\n"
                             "height: 256\n"
                             "sampler: ddim\n"
                             "chunk: {frames: 30}\n"
                             "shots:\n"
                             "  - {prompt: a, seconds: -1}\n"
                             "  - {prompt: '', frames: 9}\n",
                             &d, &err);
    RF_CHECK(s == NULL);
    RF_CHECK_EQ_INT(d.count, 5);
    RF_CHECK_EQ_INT(d.dropped, 0);
    RF_CHECK_EQ_INT(d.items[0].line, 2);
    RF_CHECK_EQ_STR(d.items[0].field, "width");
    RF_CHECK_EQ_STR(d.items[1].field, "sampler");
    RF_CHECK_EQ_STR(d.items[2].field, "chunk.frames");
    RF_CHECK_EQ_INT(d.items[2].line, 5);
    RF_CHECK_EQ_STR(d.items[3].field, "shots[1].prompt");
    RF_CHECK_EQ_INT(d.items[3].line, 8);
    RF_CHECK_EQ_STR(d.items[4].field, "shots[0].seconds");
    RF_CHECK_EQ_INT(d.items[4].line, 7);
    /* the joined message holds them all, one a line */
    RF_CHECK_CONTAINS(err.msg, "t.yaml:2: width");
    RF_CHECK_CONTAINS(err.msg, "\nt.yaml:4: sampler");
    RF_CHECK_CONTAINS(err.msg, "\nt.yaml:7: shots[0].seconds");
}

RF_TEST(error_count_is_capped_and_the_rest_counted)
{
    char text[8192];
    int o = snprintf(text, sizeof(text), BASE "shots:\n");
    for (int i = 0; i < 40; i++)
        o += snprintf(text + o, sizeof(text) - (size_t)o, "  - {prompt: p, frames: 2}\n");
    rf_error err;
    rf_spec_diags d;
    rf_job_spec *s = s_parse(text, &d, &err);
    RF_CHECK(s == NULL);
    RF_CHECK_EQ_INT(d.count, RF_SPEC_MAX_ERRORS);
    RF_CHECK_EQ_INT(d.dropped, 40 - RF_SPEC_MAX_ERRORS);
    RF_CHECK_CONTAINS(err.msg, "more errors)");
    RF_CHECK(strlen(err.msg) < RF_ERROR_MSG_MAX);
}

/* ---- hostile text ---------------------------------------------------------------------- */

RF_TEST(hostile_inputs_fail_cleanly)
{
    rf_error err;
    /* deep nesting */
    size_t n = 100000;
    char *deep = malloc(2 * n + 64);
    RF_CHECK(deep != NULL);
    int o = sprintf(deep, "model: ");
    memset(deep + o, '[', n);
    memset(deep + o + n, ']', n);
    deep[o + 2 * n] = '\0';
    rf_job_spec *s = s_parse(deep, NULL, &err);
    free(deep);
    RF_CHECK(s == NULL);
    RF_CHECK_CONTAINS(err.msg, "nested more than 16 levels deep");

    /* a self-referencing anchor cannot make a cycle */
    EXPECT_ERROR(BASE "prompt: x\nseconds: 1\nchunk: &a {frames: *a}\n",
                 "t.yaml:6: alias *a names no finished anchor");

    /* an alias fan-out ("billion laughs") stays bounded: the schema does not expand it */
    EXPECT_ERROR(BASE "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a]\n"
                      "c: [*b, *b, *b, *b, *b, *b, *b, *b]\nprompt: x\nseconds: 1\n",
                 "t.yaml:4: unknown key a");

    /* NUL inside a double-quoted string */
    EXPECT_ERROR(BASE "prompt: \"ab\\0cd\"\nseconds: 1\n", "t.yaml:4: prompt must not contain NUL");

    /* binary garbage and invalid UTF-8 */
    const char garbage[] = "model: \xff\xfe\x00\x01\x80 x\n";
    s = rf_spec_parse(garbage, sizeof(garbage) - 1, "g.yaml", NULL, &err);
    RF_CHECK(s == NULL);
    RF_CHECK_CONTAINS(err.msg, "g.yaml");

    /* too large */
    s = rf_spec_parse("x", (size_t)RF_SPEC_MAX_BYTES + 1, "big.yaml", NULL, &err);
    RF_CHECK(s == NULL);
    RF_CHECK_CONTAINS(err.msg, "big.yaml: is 1048577 bytes; a spec may be at most");

    /* NULL text is an empty spec */
    s = rf_spec_parse(NULL, 0, NULL, NULL, &err);
    RF_CHECK(s == NULL);
    RF_CHECK_CONTAINS(err.msg, "<spec>: is empty");

    /* a shot list over the limit */
    size_t cap = (RF_SPEC_MAX_SHOTS + 1) * 32 + 128;
    char *many = malloc(cap);
    RF_CHECK(many != NULL);
    o = snprintf(many, cap, BASE "shots:\n");
    for (int i = 0; i <= RF_SPEC_MAX_SHOTS; i++)
        o += snprintf(many + o, cap - (size_t)o, "- {prompt: p, frames: 5}\n");
    s = s_parse(many, NULL, &err);
    free(many);
    RF_CHECK(s == NULL);
    RF_CHECK_CONTAINS(err.msg, "t.yaml:4: shots has 1001 shots; at most 1000 are allowed");
}

RF_TEST(load_names_the_missing_file)
{
    rf_error err;
    rf_job_spec *s = rf_spec_load("/nonexistent/film.yaml", NULL, &err);
    RF_CHECK(s == NULL);
    RF_CHECK_EQ_INT(err.code, RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "/nonexistent/film.yaml: cannot open the spec");
    char path[512];
    rf_test_path(path, sizeof(path), "bad.yaml");
    const char *text = "model: m\nwidth: 256\nheight: 256\nchunk: {frames: 30}\nprompt: x\n"
                       "seconds: 1\n";
    RF_CHECK_EQ_INT(rf_test_write_file(path, text, strlen(text)), 0);
    s = rf_spec_load(path, NULL, &err);
    RF_CHECK(s == NULL);
    char want[600];
    snprintf(want, sizeof(want), "%s:4: chunk.frames must be 4n+1", path);
    RF_CHECK_CONTAINS(err.msg, want);
}

/* ---- -o, model resolution, JSON ---------------------------------------------------------- */

RF_TEST(output_override)
{
    rf_error err;
    rf_job_spec *s = s_parse(BASE "prompt: x\nseconds: 1\n", NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_spec_set_output_path(s, "/tmp/out.mov", &err), 0);
    RF_CHECK_EQ_STR(s->output.path, "/tmp/out.mov");
    RF_CHECK_EQ_INT(s->output.codec, RF_CODEC_PRORES); /* follows the extension */
    RF_CHECK_EQ_INT(s->output.crf, -1);
    RF_CHECK_EQ_INT(rf_spec_set_output_path(s, "frames/", &err), 0);
    RF_CHECK_EQ_INT(s->output.codec, RF_CODEC_PNG);
    RF_CHECK_EQ_INT(rf_spec_set_output_path(s, "out.mp4", &err), 0);
    RF_CHECK_EQ_INT(s->output.codec, RF_CODEC_H264);
    RF_CHECK_EQ_INT(s->output.crf, 18);
    RF_CHECK(rf_spec_set_output_path(s, "out.webm", &err) == RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "-o out.webm: unknown output kind");
    RF_CHECK_EQ_STR(s->output.path, "out.mp4"); /* unchanged on error */
    rf_spec_free(&s);

    s = s_parse(BASE "prompt: x\nseconds: 1\noutput: {codec: h265, crf: 28}\n", NULL, &err);
    RF_CHECK_MSG(s != NULL, "%s", err.msg);
    RF_CHECK_EQ_INT(rf_spec_set_output_path(s, "b.mkv", &err), 0);
    RF_CHECK_EQ_INT(s->output.codec, RF_CODEC_H265); /* the spec named its codec */
    RF_CHECK_EQ_INT(s->output.crf, 28);
    RF_CHECK(rf_spec_set_output_path(s, "b.png", &err) == RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "-o b.png: the output for codec h265 must be a .mp4, .mov or .mkv");
    RF_CHECK(rf_spec_set_output_path(s, "", &err) == RF_EINVAL);
    rf_spec_free(&s);
}

RF_TEST(model_resolution_lists_what_was_searched)
{
    char d1[512], d2[512], m[600];
    rf_test_path(d1, sizeof(d1), "models1");
    rf_test_path(d2, sizeof(d2), "models2/");
    RF_CHECK_EQ_INT(mkdir(d1, 0700), 0);
    RF_CHECK_EQ_INT(mkdir(d2, 0700), 0);
    snprintf(m, sizeof(m), "%sreel-tiny", d2);
    RF_CHECK_EQ_INT(mkdir(m, 0700), 0);
    const char *dirs[] = {d1, d2};
    char *path = NULL;
    rf_error err;
    RF_CHECK_EQ_INT(rf_spec_resolve_model("reel-tiny", dirs, 2, &path, &err), 0);
    RF_CHECK_EQ_STR(path, m);
    free(path);
    RF_CHECK_EQ_INT(rf_spec_resolve_model("wan-1.3b", dirs, 2, &path, &err), RF_ENOTFOUND);
    RF_CHECK(path == NULL);
    RF_CHECK_CONTAINS(err.msg, "model wan-1.3b not found; searched ");
    char want[600];
    snprintf(want, sizeof(want), "%s/wan-1.3b, %swan-1.3b", d1, d2);
    RF_CHECK_CONTAINS(err.msg, want);
    RF_CHECK_EQ_INT(rf_spec_resolve_model(m, NULL, 0, &path, &err), 0);
    RF_CHECK_EQ_STR(path, m);
    free(path);
    RF_CHECK_EQ_INT(rf_spec_resolve_model("./no/such", dirs, 2, &path, &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "model ./no/such: no such file or folder");
    RF_CHECK_EQ_INT(rf_spec_resolve_model("reel-tiny", NULL, 0, &path, &err), RF_ENOTFOUND);
    RF_CHECK_CONTAINS(err.msg, "no model directories are configured");
}

RF_TEST(json_dump_parses_back_to_the_same_spec)
{
    const char *names[] = {"demo-film.yaml",  "single-shot.yaml",   "still.yaml",
                           "ad-variant.json", "restyle-video.yaml", "continue-clip.yaml"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        rf_error err;
        rf_job_spec *a = rf_spec_load(s_example(names[i]), NULL, &err);
        RF_CHECK_MSG(a != NULL, "%s: %s", names[i], err.msg);
        char *json = rf_spec_to_json(a, RF_SPEC_JSON_PRETTY, &err);
        RF_CHECK(json != NULL);
        rf_job_spec *b = rf_spec_parse(json, strlen(json), "dump.json", NULL, &err);
        RF_CHECK_MSG(b != NULL, "%s: %s\n%s", names[i], err.msg, json);
        char *ca = rf_spec_canonical(a, &err), *cb = rf_spec_canonical(b, &err);
        RF_CHECK(ca && cb);
        RF_CHECK_EQ_STR(ca, cb);
        RF_CHECK_EQ_INT(a->timeline_count, b->timeline_count);
        free(json);
        free(ca);
        free(cb);
        rf_spec_free(&a);
        rf_spec_free(&b);
    }
}

/* plan: what the coordinator fixes at submit; an empty negative is a value (a model
 * without a default negative prompt), and the section survives the JSON round trip. */
RF_TEST(plan_inputs_are_read_and_dumped)
{
    rf_error err;
    rf_job_spec *a =
        s_parse(BASE "prompt: x\nseconds: 2\n"
                     "plan:\n  negative: \"\"\n  decode_segment: 3\n  decode_warmup: 0\n",
                NULL, &err);
    RF_CHECK_MSG(a != NULL, "%s", err.msg);
    RF_CHECK_EQ_STR(a->plan.negative, "");
    RF_CHECK_EQ_INT(a->plan.decode_segment, 3);
    RF_CHECK_EQ_INT(a->plan.decode_warmup, 0);
    char *json = rf_spec_to_json(a, 0, &err);
    RF_CHECK(json != NULL);
    RF_CHECK_CONTAINS(json,
                      "\"plan\":{\"negative\":\"\",\"decode_segment\":3,\"decode_warmup\":0}");
    rf_job_spec *b = rf_spec_parse(json, strlen(json), "dump.json", NULL, &err);
    RF_CHECK_MSG(b != NULL, "%s\n%s", err.msg, json);
    RF_CHECK_EQ_STR(b->plan.negative, "");
    RF_CHECK_EQ_INT(b->plan.decode_segment, 3);
    RF_CHECK_EQ_INT(b->plan.decode_warmup, 0);
    free(json);
    rf_spec_free(&b);
    /* the coordinator fills what a spec left out; each part is dumped alone */
    free(a->plan.negative);
    a->plan.negative = strdup("blurry, static");
    a->plan.decode_segment = 0;
    json = rf_spec_to_json(a, 0, &err);
    RF_CHECK_CONTAINS(json, "\"plan\":{\"negative\":\"blurry, static\",\"decode_warmup\":0}");
    b = rf_spec_parse(json, strlen(json), "dump.json", NULL, &err);
    RF_CHECK(b && b->plan.decode_segment == 0 && b->plan.decode_warmup == 0);
    free(json);
    rf_spec_free(&b);
    rf_spec_free(&a);
    /* without it the dump has none */
    a = s_parse(BASE "prompt: x\nseconds: 2\n", NULL, &err);
    json = rf_spec_to_json(a, 0, &err);
    RF_CHECK(json && strstr(json, "plan") == NULL);
    free(json);
    rf_spec_free(&a);
}

RF_TEST(plan_mistakes)
{
    EXPECT_ERROR(BASE "prompt: x\nseconds: 2\nplan: {decode_segment: 0}\n",
                 "t.yaml:6: plan.decode_segment must be between 1 and 100000, got 0");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 2\nplan: {decode_warmup: 1000}\n",
                 "t.yaml:6: plan.decode_warmup must be between 0 and 999, got 1000");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 2\nplan: {decode_warmup: \"4\"}\n",
                 "t.yaml:6: plan.decode_warmup must be a number between 0 and 999, got a string");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 2\nplan: {negative: [a, b]}\n",
                 "t.yaml:6: plan.negative must be text");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 2\nplan: {negative: null}\n",
                 "t.yaml:6: plan.negative must be text, got null");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 2\nplan: {segment: 4}\n",
                 "t.yaml:6: unknown key plan.segment; allowed in plan: negative, decode_segment");
    EXPECT_ERROR(BASE "prompt: x\nseconds: 2\nplan: 4\n", "t.yaml:6: plan must be a mapping");
    char *big = malloc(RF_SPEC_MAX_PROMPT + 200);
    RF_CHECK(big != NULL);
    int n = snprintf(big, 200, BASE "prompt: x\nseconds: 2\nplan:\n  negative: ");
    memset(big + n, 'a', RF_SPEC_MAX_PROMPT + 1);
    big[n + RF_SPEC_MAX_PROMPT + 1] = '\n';
    big[n + RF_SPEC_MAX_PROMPT + 2] = 0;
    EXPECT_ERROR(big, "plan.negative is 4097 bytes; at most 4096 are allowed");
    free(big);
}

RF_TEST(canonical_form_ignores_spelling)
{
    rf_error err;
    rf_job_spec *a = s_parse("name: x\nmodel: m\nwidth: 256\nheight: 256\nprompt: p\n"
                             "seconds: 2\nsteps: 50\n",
                             NULL, &err);
    rf_job_spec *b = rf_spec_parse("{\"steps\": 50, \"shots\": [{\"frames\": 32, \"prompt\": "
                                   "\"p\"}], \"height\": 256, \"width\": 256, \"model\": \"m\", "
                                   "\"name\": \"x\"}",
                                   strlen("{\"steps\": 50, \"shots\": [{\"frames\": 32, "
                                          "\"prompt\": \"p\"}], \"height\": 256, \"width\": "
                                          "256, \"model\": \"m\", \"name\": \"x\"}"),
                                   "other.json", NULL, &err);
    RF_CHECK(a && b);
    char *ca = rf_spec_canonical(a, &err), *cb = rf_spec_canonical(b, &err);
    RF_CHECK_EQ_STR(ca, cb);
    RF_CHECK(strchr(ca, '\n') == NULL);
    RF_CHECK_CONTAINS(ca, "\"chunk\":{\"checkpoint_every\":5,\"frames\":81");
    free(cb);
    /* a different seed is a different job */
    rf_job_spec *c = s_parse("name: x\nmodel: m\nwidth: 256\nheight: 256\nprompt: p\n"
                             "seconds: 2\nseed: 1\n",
                             NULL, &err);
    RF_CHECK(c != NULL);
    char *cc = rf_spec_canonical(c, &err);
    RF_CHECK(strcmp(ca, cc) != 0);
    free(ca);
    free(cc);
    char *dj = rf_spec_to_json(a, RF_SPEC_JSON_DERIVED, &err);
    RF_CHECK_CONTAINS(dj, "\"derived\":{\"total_frames\":32");
    RF_CHECK_CONTAINS(dj, "\"render_frames\":33");
    free(dj);
    rf_spec_free(&a);
    rf_spec_free(&b);
    rf_spec_free(&c);
}
