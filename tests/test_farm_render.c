/* test_farm_render.c - the whole farm on one machine with the demo model, as a user runs it.
 *
 * `reelctl render` starts a private coordinator and real CPU workers (models/reel-tiny),
 * renders a multi-chunk single-shot film in lockstep and in independent mode, and reads
 * the seam figure it reports: lockstep must keep chunk boundaries within 1.5x the median
 * frame change inside chunks (independent mode is reported beside it). A film with a hard
 * cut must have exactly the frames its shots ask for.
 */
#include "rf_test.h"
#include "support/proc.h"

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

/* Renders spec text with reelctl render --json; returns the parsed JSON summary. */
static json_t *s_render(const char *name, const char *spec_text)
{
    char spec[512], out[512], bin[1024];
    snprintf(spec, sizeof(spec), "%s/%s.yaml", rf_test_tmpdir(), name);
    snprintf(out, sizeof(out), "%s/%s.mkv", rf_test_tmpdir(), name);
    RF_CHECK_EQ_INT(rf_test_write_file(spec, spec_text, strlen(spec_text)), 0);
    rf_proc_bin(bin, sizeof(bin), "reelctl");
    char models[1100];
    snprintf(models, sizeof(models), "%s/models", RF_SOURCE_DIR);
    const char *argv[] = {bin, "--json",    "render", spec,       "-o",   out, "--workers",
                          "2", "--threads", "1",      "--models", models, NULL};
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

static const char *s_spec =
    "name: %s\nmodel: reel-tiny\nseed: 5\nsteps: 8\nmode: %s\n"
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
    printf("# seams: lockstep %.3f, independent %.3f (boundary change / median change)\n", rl, ri);
    RF_CHECK_EQ_INT(json_integer_value(json_object_get(lock, "frames")), 97);
    RF_CHECK_MSG(rl >= 0 && rl <= 1.5, "lockstep seam figure %.3f > 1.5", rl);
    json_decref(lock);
    json_decref(ind);
}

RF_TEST(cut_lands_on_the_exact_frame)
{
    s_model_dir();
    const char *text = "name: cut\nmodel: reel-tiny\nseed: 9\nsteps: 4\n"
                       "shots:\n  - prompt: a red circle moves to the right on a black background\n"
                       "    frames: 23\n"
                       "  - prompt: a yellow star moves to the left on a gray background\n"
                       "    frames: 18\n    transition: cut\n"
                       "output:\n  codec: ffv1\n";
    json_t *j = s_render("cut", text);
    RF_CHECK_EQ_INT(json_integer_value(json_object_get(j, "frames")), 41);
    json_decref(j);
}
