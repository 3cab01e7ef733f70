/* test_adherence.c - the adherence measure (engine/adherence.h) and the bundled model's
 * adherence to its prompts (issue #7 item 5).
 *
 * The measure is checked on clips drawn here (a square moving right over black, a disc
 * moving up over a gradient, nothing, a still object) and on hostile sizes. Then the
 * bundled model renders the model card's 16 prompts (4 held-out combinations) with the C
 * engine at its defaults: at least 80% of the colours and 70% of the motions must match
 * the caption, and the negative controls (the same seed, the colour word swapped or the
 * direction reversed) must disagree with the original caption as often, so neither a
 * measure that always says yes nor a model that ignores its prompt passes. The figures
 * and the time are in `make bench` (bench_adherence).
 */
#include "adherence.h"
#include "rf_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NF 17
#define S  64

/* A clip of a flat disc (or square) of colour rgb moving (vx, vy) pixels per frame. */
static uint8_t *s_clip(const uint8_t rgb[3], int square, double x0, double y0, double vx, double vy,
                       int gradient)
{
    uint8_t *v = malloc((size_t)NF * S * S * 3);
    if (!v)
        return NULL;
    for (int f = 0; f < NF; f++) {
        double cx = x0 + vx * f, cy = y0 + vy * f;
        for (int y = 0; y < S; y++) {
            for (int x = 0; x < S; x++) {
                uint8_t *px = &v[(((size_t)f * S + y) * S + x) * 3];
                double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                int in = square ? fabs(dx) <= 7 && fabs(dy) <= 7 : dx * dx + dy * dy <= 64;
                for (int c = 0; c < 3; c++)
                    px[c] = in ? rgb[c] : (uint8_t)(gradient ? 10 + y * (c + 1) / 2 : 0);
            }
        }
    }
    return v;
}

RF_TEST(measures_a_red_square_moving_right)
{
    const uint8_t red[3] = {220, 40, 40};
    uint8_t *v = s_clip(red, 1, 16, 32, 2.0, 0.0, 0);
    RF_CHECK(v);
    rf_adherence_measure m;
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_adherence_measure_frames(v, NF, S, S, &m, &err), 0);
    free(v);
    RF_CHECK_EQ_STR(rf_adherence_colour_name(m.colour), "red");
    RF_CHECK_EQ_STR(rf_adherence_motion_name(m.motion), "moves to the right");
    RF_CHECK(fabs(m.dx - 32.0) < 1.0 && fabs(m.dy) < 0.5);
    RF_CHECK_EQ_INT(m.fg_frames, NF);
}

RF_TEST(measures_a_cyan_disc_moving_up_over_a_gradient)
{
    const uint8_t cyan[3] = {40, 210, 220};
    uint8_t *v = s_clip(cyan, 0, 32, 48, 0.3, -1.5, 1);
    RF_CHECK(v);
    rf_adherence_measure m;
    RF_CHECK_EQ_INT(rf_adherence_measure_frames(v, NF, S, S, &m, NULL), 0);
    free(v);
    RF_CHECK_EQ_STR(rf_adherence_colour_name(m.colour), "cyan");
    RF_CHECK_EQ_STR(rf_adherence_motion_name(m.motion), "moves up");
}

RF_TEST(an_empty_clip_has_no_colour_and_a_still_one_is_static)
{
    uint8_t *v = calloc((size_t)NF * S * S * 3, 1);
    RF_CHECK(v);
    rf_adherence_measure m;
    RF_CHECK_EQ_INT(rf_adherence_measure_frames(v, NF, S, S, &m, NULL), 0);
    free(v);
    RF_CHECK_EQ_INT(m.colour, RF_ADH_NONE);
    RF_CHECK_EQ_INT(m.motion, RF_ADH_NONE);
    const uint8_t white[3] = {245, 245, 245};
    v = s_clip(white, 0, 30, 30, 0.0, 0.0, 0);
    RF_CHECK(v);
    RF_CHECK_EQ_INT(rf_adherence_measure_frames(v, NF, S, S, &m, NULL), 0);
    free(v);
    RF_CHECK_EQ_STR(rf_adherence_colour_name(m.colour), "white");
    RF_CHECK_EQ_INT(m.motion, RF_ADH_STATIC);
}

RF_TEST(refuses_empty_or_oversized_frames)
{
    uint8_t px[3] = {0, 0, 0};
    rf_adherence_measure m;
    rf_error err = {0};
    RF_CHECK_EQ_INT(rf_adherence_measure_frames(px, 0, 1, 1, &m, &err), RF_EINVAL);
    RF_CHECK_CONTAINS(err.msg, "adherence");
    RF_CHECK_EQ_INT(rf_adherence_measure_frames(NULL, 1, 1, 1, &m, NULL), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_adherence_measure_frames(px, 1, 5000, 1, &m, NULL), RF_EINVAL);
    RF_CHECK_EQ_INT(rf_adherence_measure_frames(px, 1, 1, 1, &m, NULL), 0);
    RF_CHECK_EQ_INT(m.colour, RF_ADH_NONE);
}

RF_TEST(prompt_set_and_controls_are_the_model_cards)
{
    char buf[256];
    const rf_adherence_prompt *p = rf_adherence_prompt_get(2);
    RF_CHECK(p && p->held_out);
    RF_CHECK_EQ_STR(rf_adherence_caption(p, p->colour, p->motion, buf, sizeof(buf)),
                    "a yellow star moves to the left on a gray background");
    p = rf_adherence_prompt_get(1);
    RF_CHECK_EQ_STR(rf_adherence_caption(p, p->colour, p->motion, buf, sizeof(buf)),
                    "an orange square moves down on a dark blue background");
    RF_CHECK_EQ_STR(rf_adherence_colour_name(rf_adherence_colour_swap(0)), "white");
    RF_CHECK_EQ_STR(rf_adherence_colour_name(rf_adherence_colour_swap(3)), "cyan");
    RF_CHECK_EQ_STR(rf_adherence_motion_name(rf_adherence_motion_reverse(4)),
                    "moves diagonally down and to the left");
    RF_CHECK_EQ_STR(rf_adherence_motion_name(rf_adherence_motion_reverse(3)), "moves up");
    RF_CHECK(rf_adherence_prompt_get(RF_ADH_PROMPTS) == NULL);
    int held = 0;
    for (int i = 0; i < RF_ADH_PROMPTS; i++)
        held += rf_adherence_prompt_get(i)->held_out;
    RF_CHECK_EQ_INT(held, 4);
}

RF_TEST(reel_tiny_follows_its_prompts)
{
    rf_pipeline_opts o = {1};
    rf_error err = {0};
    rf_pipeline *pl = rf_pipeline_open(RF_SOURCE_DIR "/models/reel-tiny", &o, &err);
    RF_CHECK_MSG(pl != NULL, "%s", err.msg);
    rf_adherence_report r;
    int rc = rf_adherence_run(pl, RF_ADH_PROMPTS, &r, NULL, NULL, &err);
    rf_pipeline_destroy(&pl);
    RF_CHECK_MSG(rc == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(r.n, RF_ADH_PROMPTS);
    double n = r.n;
    RF_CHECK_MSG(r.colour_ok / n >= 0.8, "colour matches %d of %d (bar 80%%)", r.colour_ok, r.n);
    RF_CHECK_MSG(r.motion_ok / n >= 0.7, "motion matches %d of %d (bar 70%%)", r.motion_ok, r.n);
    RF_CHECK_MSG(r.control_colour_disagrees / n >= 0.8,
                 "only %d of %d colour-swapped renders disagree with the original caption",
                 r.control_colour_disagrees, r.n);
    RF_CHECK_MSG(r.control_motion_disagrees / n >= 0.7,
                 "only %d of %d direction-reversed renders disagree with the original caption",
                 r.control_motion_disagrees, r.n);
}
