/* test_plan.c - timelines, chunk windows, prompts per chunk and decode segments. */
#include "coordinator/plan.h"
#include "rf_test.h"

static const rf_plan_params s_default = {21, 4, 8, 4}; /* 81/16 pixel frames, Wan's */

RF_TEST(latent_pixel_mapping)
{
    RF_CHECK_EQ_INT(rf_plan_latent_frames(1), 1);
    RF_CHECK_EQ_INT(rf_plan_latent_frames(81), 21);
    RF_CHECK_EQ_INT(rf_plan_latent_frames(82), 22); /* rendered to at least P, trimmed */
    RF_CHECK_EQ_INT(rf_plan_latent_frames(85), 22);
    int a, b;
    rf_plan_latent_pixels(0, &a, &b);
    RF_CHECK(a == 0 && b == 0);
    rf_plan_latent_pixels(3, &a, &b);
    RF_CHECK(a == 9 && b == 12);
}

RF_TEST(short_film_is_one_chunk)
{
    rf_plan_shot shots[] = {{33, 0}};
    rf_plan *p = rf_plan_new(shots, 1, &s_default, NULL);
    RF_CHECK(p);
    RF_CHECK_EQ_INT(p->chunk_count, 1);
    RF_CHECK_EQ_INT(p->chunks[0].start, 0);
    RF_CHECK_EQ_INT(p->chunks[0].end, 9);
    rf_plan_destroy(&p);
    RF_CHECK(p == NULL);
    rf_plan_destroy(&p);
}

RF_TEST(windows_cover_with_overlap_and_last_aligned_to_end)
{
    rf_plan_shot shots[] = {{30 * 16 + 1, 0}}; /* 30 s at 16 fps: 121 latent frames */
    rf_plan *p = rf_plan_new(shots, 1, &s_default, NULL);
    RF_CHECK(p);
    int T = p->timelines[0].latent_frames;
    RF_CHECK_EQ_INT(T, 121);
    RF_CHECK_EQ_INT(p->chunks[0].start, 0);
    RF_CHECK_EQ_INT(p->chunks[p->chunk_count - 1].end, T);
    for (int k = 0; k < p->chunk_count; k++) {
        RF_CHECK_EQ_INT(p->chunks[k].end - p->chunks[k].start, 21);
        if (k > 0) {
            int shared = p->chunks[k - 1].end - p->chunks[k].start;
            RF_CHECK_MSG(shared >= 4, "chunk %d overlaps its neighbour by %d < 4", k, shared);
            RF_CHECK(p->chunks[k].start > p->chunks[k - 1].start);
        }
        if (k > 0 && k < p->chunk_count - 1)
            RF_CHECK_EQ_INT(p->chunks[k].start, k * 17);
    }
    rf_plan_destroy(&p);
}

RF_TEST(cut_starts_a_new_timeline_on_the_exact_frame)
{
    rf_plan_shot shots[] = {{40, 0}, {50, 0}, {37, 1}, {20, 0}};
    rf_plan *p = rf_plan_new(shots, 4, &s_default, NULL);
    RF_CHECK(p);
    RF_CHECK_EQ_INT(p->timeline_count, 2);
    RF_CHECK_EQ_INT(p->timelines[0].pixel_frames, 90);
    RF_CHECK_EQ_INT(p->timelines[1].pixel_frames, 57);
    RF_CHECK_EQ_INT(p->timelines[1].output_offset, 90); /* the cut lands on frame 90 */
    RF_CHECK_EQ_INT(p->total_pixel_frames, 147);
    for (int k = 0; k < p->chunk_count; k++) {
        const rf_plan_chunk *c = &p->chunks[k];
        RF_CHECK(c->end <= p->timelines[c->timeline].latent_frames);
        int fs = p->timelines[c->timeline].first_shot;
        RF_CHECK(c->shot >= fs && c->shot < fs + p->timelines[c->timeline].shot_count);
    }
    rf_plan_destroy(&p);
}

RF_TEST(chunk_prompt_is_the_dominant_shot)
{
    /* shot 0: pixels [0,100), shot 1: [100,400) -> the first window (pixels 0..80) is
     * shot 0, later windows shot 1 */
    rf_plan_shot shots[] = {{100, 0}, {300, 0}};
    rf_plan *p = rf_plan_new(shots, 2, &s_default, NULL);
    RF_CHECK(p);
    RF_CHECK_EQ_INT(p->chunks[0].shot, 0);
    RF_CHECK_EQ_INT(p->chunks[p->chunk_count - 1].shot, 1);
    rf_plan_destroy(&p);
}

RF_TEST(segments_tile_the_timeline_with_warmup)
{
    rf_plan_shot shots[] = {{161, 0}}; /* 41 latent frames */
    rf_plan *p = rf_plan_new(shots, 1, &s_default, NULL);
    RF_CHECK(p);
    int prev_end = 0, pix = 0;
    for (int k = 0; k < p->segment_count; k++) {
        const rf_plan_segment *s = &p->segments[k];
        RF_CHECK_EQ_INT(s->start, prev_end);
        RF_CHECK_EQ_INT(s->warmup, k == 0 ? 0 : 4);
        RF_CHECK_EQ_INT(s->pixel_start, pix);
        prev_end = s->end;
        pix = s->pixel_end;
    }
    RF_CHECK_EQ_INT(prev_end, 41);
    RF_CHECK_EQ_INT(pix, 161);
    rf_plan_destroy(&p);
}

/* Checks that the segments of timeline 0 tile [0, T) in order, each warmed up by
 * min(start, W), and returns the largest number of latent frames one segment decodes. */
static int s_tiles(const rf_plan *p, int T, int W)
{
    int prev = 0, most = 0;
    for (int k = 0; k < p->segment_count; k++) {
        const rf_plan_segment *s = &p->segments[k];
        RF_CHECK_EQ_INT(s->start, prev);
        RF_CHECK(s->end > s->start);
        RF_CHECK_EQ_INT(s->warmup, s->start < W ? s->start : W);
        int cost = s->end - s->start + s->warmup;
        most = cost > most ? cost : most;
        prev = s->end;
    }
    RF_CHECK_EQ_INT(prev, T);
    return most;
}

RF_TEST(segments_balance_the_warmup)
{
    /* 16 latent frames, segments of 8, warm-up 10: equal lengths would decode 8 and 16;
     * the first segment takes the warm-up's share: [0, 13) and [13, 16) from 3, 13 each */
    rf_plan_params pp = s_default;
    pp.segment_latent = 8;
    pp.warmup_latent = 10;
    rf_plan_shot shots[] = {{61, 0}};
    rf_plan *p = rf_plan_new(shots, 1, &pp, NULL);
    RF_CHECK(p);
    RF_CHECK_EQ_INT(p->segment_count, 2);
    RF_CHECK_EQ_INT(p->segments[0].end, 13);
    RF_CHECK_EQ_INT(s_tiles(p, 16, 10), 13);
    rf_plan_destroy(&p);
    /* a long timeline keeps about S per later segment */
    shots[0].frames = 401; /* 101 latent frames */
    p = rf_plan_new(shots, 1, &pp, NULL);
    RF_CHECK(p);
    RF_CHECK_EQ_INT(p->segment_count, 13);
    RF_CHECK(s_tiles(p, 101, 10) <= 8 + 10);
    RF_CHECK(p->segments[1].end - p->segments[1].start >= 7);
    rf_plan_destroy(&p);
    /* more segments than the warm-up lets balance: the plain tiling */
    pp.segment_latent = 1;
    pp.warmup_latent = 2;
    shots[0].frames = 17; /* 5 latent frames */
    p = rf_plan_new(shots, 1, &pp, NULL);
    RF_CHECK(p);
    RF_CHECK_EQ_INT(p->segment_count, 5);
    s_tiles(p, 5, 2);
    rf_plan_destroy(&p);
}

RF_TEST(rendered_tail_is_trimmed)
{
    rf_plan_shot shots[] = {{83, 0}}; /* needs 22 latent frames = 85 pixel frames */
    rf_plan *p = rf_plan_new(shots, 1, &s_default, NULL);
    RF_CHECK(p);
    RF_CHECK_EQ_INT(p->timelines[0].latent_frames, 22);
    RF_CHECK_EQ_INT(p->segments[p->segment_count - 1].pixel_end, 83);
    rf_plan_destroy(&p);
}

RF_TEST(bad_parameters_are_refused)
{
    rf_error err;
    rf_plan_shot shots[] = {{33, 0}};
    rf_plan_params bad = {5, 5, 8, 0};
    RF_CHECK(rf_plan_new(shots, 1, &bad, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "smaller than the chunk");
    RF_CHECK(rf_plan_new(shots, 0, &s_default, &err) == NULL);
    rf_plan_shot empty[] = {{0, 0}};
    RF_CHECK(rf_plan_new(empty, 1, &s_default, &err) == NULL);
    RF_CHECK_CONTAINS(err.msg, "shot 1 has 0 frames");
}
