/* seams.h - how visible the chunk boundaries of a rendered film are.
 *
 * The seam figure: the mean absolute difference between consecutive frames across the
 * frames where one chunk's window ends and the next one's begins, divided by the median
 * of the same difference between all other consecutive frames of the same timelines
 * (8-bit RGB). About 1 means a boundary changes no more than any other frame step; a
 * visible seam shows as a jump well above 1. Transitions across a hard cut are left out
 * of both sets. Every chunk edge falls between two latent frames (pixel frame 4k-3 of its
 * timeline), and a VAE's frame change there is larger than between the pixel frames one
 * latent frame decodes to, so the figure also comes against the median of only those
 * interior steps (same place in the latent frame): about 1 there means the edges are no
 * worse than any other latent-frame step. Reads the video back with common/video; never
 * writes.
 */
#ifndef RF_SEAMS_H
#define RF_SEAMS_H

#include "error.h"

#include <stdint.h>

#define RF_SEAMS_MAX 4096

typedef struct rf_seam_input {
    int64_t boundaries[RF_SEAMS_MAX]; /* pixel frame p: the step (p-1 -> p) crosses an edge */
    int nboundaries;
    int64_t cuts[RF_SEAMS_MAX]; /* pixel frame p starting a new timeline (excluded) */
    int ncuts;
} rf_seam_input;

typedef struct rf_seam_result {
    double ratio;         /* boundary mean / interior median; -1 when undefined */
    double boundary_mean; /* 8-bit levels */
    double interior_median;
    double latent_step_ratio;  /* boundary mean / latent_step_median; -1 when undefined */
    double latent_step_median; /* interior steps into a latent frame's first pixel frame */
    int64_t boundaries; /* frame steps measured across chunk boundaries (0: one chunk each) */
    int64_t frames;
    int width, height;
} rf_seam_result;

/* Measures the video at path. */
int rf_seams_measure(const char *path, const rf_seam_input *in, rf_seam_result *out, rf_error *err);

/* Adds the pixel-frame edges of a chunk window of latent frames [start, end) of a
 * timeline of latent_frames, pixel_frames long, beginning at film pixel frame offset
 * (edges at the timeline's own ends are not seams). */
void rf_seams_add_window(rf_seam_input *in, int64_t offset, int64_t pixel_frames,
                         int64_t latent_frames, int64_t start, int64_t end);

#endif
