/* test_seams.c - the seam figure of cli/seams.h on films written here.
 *
 * Gray films whose frame-to-frame change is known exactly: steps into a latent frame's
 * first pixel frame (pixel frame 4k-3 of a timeline) change more than the others, as a
 * VAE's do. A chunk edge that changes like any other such step must read as no seam
 * against those steps (1) while the plain figure reads it against the median of all
 * steps; a real jump must show in both; a hard cut restarts the timeline's phase and is
 * left out.
 */
#include "cli/seams.h"
#include "rf_test.h"
#include "video.h"

#include <stdio.h>
#include <string.h>

#define S 16

/* Writes a gray ffv1 film of n frames whose step into frame f is step(f). */
static void s_film(const char *path, int n, int (*step)(int f))
{
    rf_video_opts o = {RF_CODEC_FFV1, S, S, 0, 0, 16, -1};
    rf_error err = {0};
    rf_video_writer *w = rf_video_writer_open(path, &o, &err);
    RF_CHECK_MSG(w != NULL, "%s", err.msg);
    static uint8_t px[S * S * 3];
    int level = 20;
    for (int f = 0; f < n; f++) {
        if (f > 0)
            level += step(f);
        memset(px, level, sizeof(px));
        RF_CHECK_EQ_INT(rf_video_writer_write_u8(w, px, &err), 0);
    }
    RF_CHECK_MSG(rf_video_writer_close(&w, &err) == 0, "%s", err.msg);
}

static int s_cut_at; /* 0: no cut */

/* 6 levels into a latent frame's first pixel frame (of its timeline), 2 otherwise. */
static int s_vae_like(int f)
{
    int start = s_cut_at && f >= s_cut_at ? s_cut_at : 0;
    return (f - start) % 4 == 1 ? 6 : 2;
}

/* The same, with a jump of 12 at pixel frame 17. */
static int s_with_seam(int f)
{
    return f == 17 ? 12 : s_vae_like(f);
}

RF_TEST(an_edge_like_any_latent_step_is_no_seam_against_latent_steps)
{
    char path[1024];
    s_film(rf_test_path(path, sizeof(path), "vae-like.mkv"), 33, s_vae_like);
    rf_seam_input in;
    memset(&in, 0, sizeof(in));
    rf_seams_add_window(&in, 0, 33, 9, 0, 5); /* two chunks of one timeline: edges at 17 */
    rf_seams_add_window(&in, 0, 33, 9, 4, 9); /* (end of the first) and 13 (start of the 2nd) */
    rf_seam_result r;
    rf_error err = {0};
    RF_CHECK_MSG(rf_seams_measure(path, &in, &r, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(r.frames, 33);
    RF_CHECK_EQ_INT(r.boundaries, 2);
    RF_CHECK_NEAR(r.boundary_mean, 6.0, 1e-9);
    RF_CHECK_NEAR(r.interior_median, 2.0, 1e-9);
    RF_CHECK_NEAR(r.ratio, 3.0, 1e-9);
    RF_CHECK_NEAR(r.latent_step_median, 6.0, 1e-9);
    RF_CHECK_NEAR(r.latent_step_ratio, 1.0, 1e-9);
}

RF_TEST(a_jump_at_an_edge_shows_in_both_figures)
{
    char path[1024];
    s_film(rf_test_path(path, sizeof(path), "seam.mkv"), 33, s_with_seam);
    rf_seam_input in;
    memset(&in, 0, sizeof(in));
    rf_seams_add_window(&in, 0, 33, 9, 0, 5);
    rf_seam_result r;
    rf_error err = {0};
    RF_CHECK_MSG(rf_seams_measure(path, &in, &r, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(r.boundaries, 1);
    RF_CHECK_NEAR(r.ratio, 6.0, 1e-9);
    RF_CHECK_NEAR(r.latent_step_ratio, 2.0, 1e-9);
}

RF_TEST(a_cut_restarts_the_phase_and_is_left_out)
{
    char path[1024];
    s_cut_at = 18; /* the second timeline starts at pixel frame 18: its steps 19, 23, ... */
    s_film(rf_test_path(path, sizeof(path), "cut.mkv"), 35, s_vae_like);
    s_cut_at = 0;
    rf_seam_input in;
    memset(&in, 0, sizeof(in));
    in.cuts[in.ncuts++] = 18;
    rf_seams_add_window(&in, 18, 17, 5, 0, 3); /* the second timeline in two chunks: edge */
    rf_seams_add_window(&in, 18, 17, 5, 2, 5); /* at its frames 9 and 5 = film 27 and 23 */
    rf_seam_result r;
    rf_error err = {0};
    RF_CHECK_MSG(rf_seams_measure(path, &in, &r, &err) == 0, "%s", err.msg);
    RF_CHECK_EQ_INT(r.boundaries, 2);
    RF_CHECK_NEAR(r.boundary_mean, 6.0, 1e-9);
    RF_CHECK_NEAR(r.latent_step_ratio, 1.0, 1e-9);
}

RF_TEST(a_missing_film_is_an_error)
{
    rf_seam_input in;
    memset(&in, 0, sizeof(in));
    rf_seam_result r;
    rf_error err = {0};
    RF_CHECK(rf_seams_measure("/nonexistent/film.mkv", &in, &r, &err) != 0);
    RF_CHECK(err.msg[0] != '\0');
    RF_CHECK(r.ratio < 0 && r.latent_step_ratio < 0);
}
