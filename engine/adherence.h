/* adherence.h - does a model draw what its prompt says? (the reel-tiny world's measure)
 *
 * From decoded frames alone it measures the dominant foreground colour and the direction
 * of the foreground centroid's motion, exactly as models/reel-tiny/README.md and
 * tools/train/eval_adherence.py describe: per-row median background, foreground where a
 * channel differs by more than 0.25, mean foreground RGB -> nearest of the eight caption
 * colours, least-squares centroid track -> the nearest of the six translations. The
 * suite renders a fixed prompt set (four held-out combinations + twelve others) with the
 * pipeline and its negative controls (colour word swapped, direction reversed). It only
 * measures; it never changes what the engine renders.
 */
#ifndef RF_ADHERENCE_H
#define RF_ADHERENCE_H

#include "error.h"
#include "pipeline.h"

#include <stdint.h>

#define RF_ADH_COLOURS 8
#define RF_ADH_MOTIONS 6
#define RF_ADH_NONE    (-1) /* no foreground (colour) / too few foreground frames (motion) */
#define RF_ADH_STATIC  (-2) /* motion: the centroid travels under 4 pixels */
#define RF_ADH_PROMPTS 16

/* Caption words: colour i is rf_adherence_colour_name(i) (red, green, blue, yellow, white,
 * purple, orange, cyan); motion j is rf_adherence_motion_name(j) (moves to the right,
 * ... left, up, down, diagonally up and to the right, diagonally down and to the left).
 * Out of range (RF_ADH_NONE, RF_ADH_STATIC included): "none" / "static". */
const char *rf_adherence_colour_name(int i);
const char *rf_adherence_motion_name(int j);

typedef struct rf_adherence_measure {
    int colour;    /* 0..7 or RF_ADH_NONE */
    int motion;    /* 0..5, RF_ADH_STATIC or RF_ADH_NONE */
    double rgb[3]; /* mean foreground colour, 0..255 */
    double dx, dy; /* centroid travel over the clip, pixels (x right, y down) */
    int64_t fg;    /* foreground pixels over all frames */
    int fg_frames; /* frames with at least 12 foreground pixels */
} rf_adherence_measure;

/* Measures frames uint8 RGB [nf, h, w, 3] (h, w <= 4096, nf <= 4096). Returns 0, or
 * RF_EINVAL for empty or oversized frames, RF_ENOMEM. */
int rf_adherence_measure_frames(const uint8_t *frames, int nf, int h, int w,
                                rf_adherence_measure *out, rf_error *err);

/* One prompt of the fixed set: shape, colour index, motion index, background, held out. */
typedef struct rf_adherence_prompt {
    const char *shape;
    int colour, motion;
    const char *background;
    int held_out;
} rf_adherence_prompt;

/* Prompt i (0..RF_ADH_PROMPTS-1) of the fixed set (= eval_adherence.prompt_set()). */
const rf_adherence_prompt *rf_adherence_prompt_get(int i);
/* Writes its caption with the given colour and motion into buf ("a red circle moves to
 * the right on a black background"); returns buf. */
char *rf_adherence_caption(const rf_adherence_prompt *p, int colour, int motion, char *buf,
                           size_t cap);

typedef struct rf_adherence_row {
    rf_adherence_measure m;      /* the render of the caption */
    rf_adherence_measure colour; /* the render with the colour word swapped */
    rf_adherence_measure motion; /* the render with the direction reversed */
} rf_adherence_row;

typedef struct rf_adherence_report {
    int n, held_out;
    int colour_ok, motion_ok, held_colour_ok, held_motion_ok;
    int control_colour_disagrees, control_motion_disagrees; /* with the original caption */
    int control_colour_follows, control_motion_follows;     /* their own swapped prompt */
    double seconds;
    rf_adherence_row rows[RF_ADH_PROMPTS];
} rf_adherence_report;

/* Renders the first n (1..RF_ADH_PROMPTS) prompts, seed 1000 + i, at the model's defaults
 * (three renders each: caption, colour swapped, direction reversed) and measures them.
 * log(ctx, line) gets one line per prompt when not NULL. Returns 0 or the pipeline's
 * error. */
int rf_adherence_run(rf_pipeline *pl, int n, rf_adherence_report *out,
                     void (*log)(void *ctx, const char *line), void *lctx, rf_error *err);

/* The colour swap of the controls: red<->white, green<->purple, blue<->orange,
 * yellow<->cyan; the reversal: right<->left, up<->down, the two diagonals. */
int rf_adherence_colour_swap(int colour);
int rf_adherence_motion_reverse(int motion);

#endif
