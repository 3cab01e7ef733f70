/* test_farm_render.c - the whole farm on one machine with the demo model, as a user runs it.
 *
 * `reelctl render` starts a private coordinator and real CPU workers (models/reel-tiny),
 * renders a multi-chunk single-shot film in lockstep and in independent mode, and reads
 * the seam figure it reports: lockstep must keep chunk boundaries within 1.5x the median
 * frame change inside chunks, and within 1.25x the median change between latent frames
 * inside chunks (where the edges fall; independent mode is reported beside it). A film with a hard
 * cut must have exactly the frames its shots ask for.
 */
#include "rf_test.h"
#include "support/proc.h"
#include "support/tiny_model.h"
#include "video.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *s_model_dir(void)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/models/reel-tiny", RF_SOURCE_DIR);
    struct stat sb;
    if (stat(path, &sb) != 0)
        RF_SKIP("models/reel-tiny is not in this tree");
    return path;
}

/* Renders spec text with reelctl render --json on `workers` CPU workers, models looked up
 * in models_dir; returns the parsed JSON summary. */
static json_t *s_render_with(const char *name, const char *spec_text, const char *models_dir,
                             const char *workers)
{
    char spec[512], out[512], bin[1024];
    snprintf(spec, sizeof(spec), "%s/%s.yaml", rf_test_tmpdir(), name);
    snprintf(out, sizeof(out), "%s/%s.mkv", rf_test_tmpdir(), name);
    RF_CHECK_EQ_INT(rf_test_write_file(spec, spec_text, strlen(spec_text)), 0);
    rf_proc_bin(bin, sizeof(bin), "reelctl");
    const char *argv[] = {bin,     "--json",    "render", spec,       "-o",       out, "--workers",
                          workers, "--threads", "1",      "--models", models_dir, NULL};
    rf_error err;
    rf_proc *p = rf_proc_start(argv, NULL, &err);
    RF_CHECK_MSG(p, "%s", err.msg);
    int status = -1;
    RF_CHECK_MSG(rf_proc_wait(p, 600000, &status, &err) == 0, "%s", err.msg);
    char *log = rf_proc_log(p, NULL);
    rf_proc_destroy(&p);
    RF_CHECK_MSG(status == 0, "reelctl render failed: %s", log);
    /* the summary is the last JSON object printed */
    char *brace = log ? strrchr(log, '{') : NULL;
    while (brace && brace > log && strstr(brace, "\"output\"") == NULL)
        brace = NULL;
    json_t *j = brace ? json_loads(brace, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    RF_CHECK_MSG(j && json_object_get(j, "output"), "no summary in: %s", log);
    free(log);
    return j;
}

static json_t *s_render(const char *name, const char *spec_text)
{
    char models[1100];
    snprintf(models, sizeof(models), "%s/models", RF_SOURCE_DIR);
    return s_render_with(name, spec_text, models, "2");
}

/* Decodes every frame of a video into one malloc'd buffer (caller frees). */
static uint8_t *s_frames(const char *path, int64_t *n, size_t *bytes)
{
    rf_error err;
    rf_video_reader *r = rf_video_reader_open(path, 0, 0, &err);
    RF_CHECK_MSG(r, "%s", err.msg);
    size_t fb = (size_t)rf_video_reader_width(r) * (size_t)rf_video_reader_height(r) * 3;
    uint8_t *all = NULL;
    *n = 0;
    for (;;) {
        uint8_t *p = realloc(all, fb * (size_t)(*n + 1));
        RF_CHECK(p);
        all = p;
        int got = 0;
        RF_CHECK_EQ_INT(rf_video_reader_read_u8(r, all + fb * (size_t)*n, &got, &err), 0);
        if (!got)
            break;
        (*n)++;
    }
    rf_video_reader_close(&r);
    *bytes = fb * (size_t)*n;
    return all;
}

RF_TEST(engine_workers_render_the_same_film_on_one_or_two_workers)
{
    char model[1024];
    RF_CHECK(rf_test_tiny_model(model, sizeof(model)));
    const char *text = "name: %s\nmodel: tiny-model\nwidth: 32\nheight: 32\nseed: 4\nsteps: 3\n"
                       "chunk:\n  frames: 9\n  overlap: 4\n"
                       "shots:\n  - prompt: a red circle\n    frames: 21\n"
                       "  - prompt: a blue square\n    frames: 10\n    transition: cut\n"
                       "output:\n  codec: ffv1\n";
    char spec[1024];
    snprintf(spec, sizeof(spec), text, "one");
    json_t *a = s_render_with("one", spec, rf_test_tmpdir(), "1");
    snprintf(spec, sizeof(spec), text, "two");
    json_t *b = s_render_with("two", spec, rf_test_tmpdir(), "2");
    RF_CHECK_EQ_INT(json_integer_value(json_object_get(a, "frames")), 31);
    int64_t na, nb;
    size_t la, lb;
    uint8_t *fa = s_frames(json_string_value(json_object_get(a, "output")), &na, &la);
    uint8_t *fb = s_frames(json_string_value(json_object_get(b, "output")), &nb, &lb);
    RF_CHECK_EQ_INT(na, 31);
    RF_CHECK_EQ_INT(nb, 31);
    RF_CHECK_MSG(la == lb && memcmp(fa, fb, la) == 0,
                 "the film differs between 1 and 2 workers (lossless ffv1)");
    free(fa);
    free(fb);
    json_decref(a);
    json_decref(b);
}

/* The film as a user renders it: the sampler settings are the model's (model.json). */
static const char *s_spec =
    "name: %s\nmodel: reel-tiny\nwidth: 64\nheight: 64\nseed: 5\nmode: %s\n"
    "chunk:\n  frames: 33\n  overlap: 16\n"
    "shots:\n  - prompt: a red circle moves to the right on a black background\n"
    "    frames: 97\n"
    "output:\n  codec: ffv1\n";

RF_TEST(lockstep_seams_stay_invisible)
{
    s_model_dir();
    char text[1024];
    snprintf(text, sizeof(text), s_spec, "lockstep", "lockstep");
    json_t *lock = s_render("lockstep", text);
    snprintf(text, sizeof(text), s_spec, "independent", "independent");
    json_t *ind = s_render("independent", text);
    double rl = json_real_value(json_object_get(lock, "seam_ratio"));
    double ri = json_real_value(json_object_get(ind, "seam_ratio"));
    double ll = json_real_value(json_object_get(lock, "seam_ratio_latent_steps"));
    double li = json_real_value(json_object_get(ind, "seam_ratio_latent_steps"));
    printf("# seams: lockstep %.3f, independent %.3f (boundary change / median change); against "
           "the steps between latent frames: %.3f, %.3f\n",
           rl, ri, ll, li);
    RF_CHECK_EQ_INT(json_integer_value(json_object_get(lock, "frames")), 97);
    RF_CHECK_MSG(rl >= 0 && rl <= 1.5, "lockstep seam figure %.3f > 1.5", rl);
    /* the edges are steps between latent frames: against those, a seam-free film reads ~1 */
    RF_CHECK_MSG(ll >= 0 && ll <= 1.25, "lockstep edges %.3f x the steps between latent frames",
                 ll);
    json_decref(lock);
    json_decref(ind);
}

RF_TEST(cut_lands_on_the_exact_frame)
{
    s_model_dir();
    const char *text = "name: cut\nmodel: reel-tiny\nwidth: 64\nheight: 64\nseed: 9\nsteps: 4\n"
                       "shots:\n  - prompt: a red circle moves to the right on a black background\n"
                       "    frames: 23\n"
                       "  - prompt: a yellow star moves to the left on a gray background\n"
                       "    frames: 18\n    transition: cut\n"
                       "output:\n  codec: ffv1\n";
    json_t *j = s_render("cut", text);
    RF_CHECK_EQ_INT(json_integer_value(json_object_get(j, "frames")), 41);
    json_decref(j);
}
