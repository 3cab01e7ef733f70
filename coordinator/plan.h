/* plan.h - cut a film into timelines, overlapping chunks and decode segments.
 *
 * Pure arithmetic, no I/O: the coordinator stores what this returns. Units: shots
 * arrive in pixel frames; a timeline of P pixel frames is rendered as
 * T = ceil((P - 1) / 4) + 1 latent frames (4(T-1)+1 >= P pixel frames, trimmed to P
 * on output). Consecutive shots joined by a blend share a timeline; a cut starts a
 * new one, so no fusion or decode context crosses it and it lands on the exact
 * pixel frame asked. Chunks are windows of C latent frames with overlap O (stride
 * C - O), the last aligned to the timeline's end; a timeline shorter than C is one
 * chunk. Each chunk takes the prompt of the shot covering most of its pixel frames.
 */
#ifndef RF_PLAN_H
#define RF_PLAN_H

#include "error.h"

typedef struct rf_plan_shot {
    int frames; /* pixel frames, >= 1 */
    int cut;    /* 1: a hard cut before this shot starts a new timeline */
} rf_plan_shot;

typedef struct rf_plan_params {
    int chunk_latent;   /* C: latent frames per chunk (spec chunk.frames 4n+1 -> n+1) */
    int overlap_latent; /* O: latent frames shared by neighbours (chunk.overlap / 4), < C */
    int segment_latent; /* latent frames per DECODE segment, >= 1 */
    int warmup_latent;  /* decode warm-up w (latent frames) the VAE needs, >= 0 */
} rf_plan_params;

typedef struct rf_plan_chunk {
    int timeline;   /* index into rf_plan.timelines */
    int index;      /* chunk index inside its timeline */
    int start, end; /* latent frames [start, end) of its timeline */
    int shot;       /* index of the shot whose prompt this chunk uses */
} rf_plan_chunk;

typedef struct rf_plan_segment {
    int timeline;
    int start, end;             /* latent frames [start, end) this segment outputs */
    int warmup;                 /* latent frames decoded before start and discarded (<= start) */
    int pixel_start, pixel_end; /* output pixel frames of the timeline, trimmed to its length */
} rf_plan_segment;

typedef struct rf_plan_timeline {
    int first_shot, shot_count;
    int pixel_frames;  /* P: frames the film keeps */
    int latent_frames; /* T */
    int output_offset; /* first pixel frame of this timeline in the film */
    int first_chunk, chunk_count;
    int first_segment, segment_count;
} rf_plan_timeline;

typedef struct rf_plan {
    int timeline_count, chunk_count, segment_count;
    int total_pixel_frames;
    rf_plan_timeline *timelines;
    rf_plan_chunk *chunks;
    rf_plan_segment *segments;
} rf_plan;

/* Plans n shots. Returns NULL and sets err on invalid parameters (C < 1, O < 0,
 * O >= C, no shots, a shot with < 1 frame). Caller frees with rf_plan_destroy. */
rf_plan *rf_plan_new(const rf_plan_shot *shots, int n, const rf_plan_params *params, rf_error *err);
void rf_plan_destroy(rf_plan **self);

/* Latent frames for P pixel frames: ceil((P - 1) / 4) + 1. */
int rf_plan_latent_frames(int pixel_frames);
/* Pixel frames [first, last] a latent frame decodes to: 0 -> [0, 0], k -> [4k-3, 4k]. */
void rf_plan_latent_pixels(int latent, int *first, int *last);

#endif
