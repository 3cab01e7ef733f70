/* bench_adherence.c - how well the bundled demo model follows its prompts (issue #7).
 *
 * Renders the fixed prompt set of engine/adherence.h with models/reel-tiny through the C
 * pipeline at the model's defaults (48 renders: each caption, its colour swapped, its
 * direction reversed) and prints the share of colours and motions that match the
 * caption, the held-out four apart, the negative controls, and each share as a multiple
 * of chance (1/8 colours, 1/6 motions): the peer here is a model that ignores its prompt.
 * RF_BENCH_THREADS sets the threads (default 1). A figure, not a pass/fail test.
 */
#include "adherence.h"

#include <stdio.h>
#include <stdlib.h>

static void s_print(void *ctx, const char *line)
{
    (void)ctx;
    printf("  %s\n", line);
}

int main(void)
{
    const char *t = getenv("RF_BENCH_THREADS");
    rf_pipeline_opts o = {t ? atoi(t) : 1};
    rf_error err = {0};
    rf_pipeline *pl = rf_pipeline_open(RF_SOURCE_DIR "/models/reel-tiny", &o, &err);
    if (!pl) {
        fprintf(stderr, "bench_adherence: %s\n", err.msg);
        return 1;
    }
    rf_adherence_report r;
    int rc = rf_adherence_run(pl, RF_ADH_PROMPTS, &r, s_print, NULL, &err);
    rf_pipeline_destroy(&pl);
    if (rc) {
        fprintf(stderr, "bench_adherence: %s\n", err.msg);
        return 1;
    }
    double n = r.n, h = r.held_out > 0 ? r.held_out : 1;
    printf("adherence colour=%.3f (%.1fx chance) motion=%.3f (%.1fx chance) held_out_colour=%.3f "
           "held_out_motion=%.3f\n",
           r.colour_ok / n, r.colour_ok / n * 8.0, r.motion_ok / n, r.motion_ok / n * 6.0,
           r.held_colour_ok / h, r.held_motion_ok / h);
    printf("adherence_controls colour_disagrees=%.3f motion_disagrees=%.3f "
           "colour_follows_swap=%.3f motion_follows_reversal=%.3f (%d prompts x 3 renders, "
           "%.1f s; reel-tiny defaults; bar: colour 0.8, motion 0.7)\n",
           r.control_colour_disagrees / n, r.control_motion_disagrees / n,
           r.control_colour_follows / n, r.control_motion_follows / n, r.n, r.seconds);
    return 0;
}
