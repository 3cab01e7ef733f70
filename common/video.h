/* video.h - writing, concatenating and reading video with libavformat/libavcodec.
 *
 * The writer takes RGB frames (interleaved HWC, float in [-1, 1] or uint8) and encodes
 * them with one of the job codecs (codec.h), optionally resized with libswscale. Every
 * encoder runs with closed GOPs and fixed settings, so segments encoded independently by
 * different workers join with rf_video_concat by stream copy (no re-encode; timestamps
 * rebased). The reader decodes any container/codec FFmpeg knows (and PNG sequences and
 * single images), converts to RGB and resizes to a target size. Colour: yuv output is
 * limited-range BT.709, tagged so; the reader honours the tags it finds.
 * Nothing here knows about models; it must never leave a half-written file under the
 * final name (containers are written to PATH.tmp and renamed on close).
 */
#ifndef RF_VIDEO_H
#define RF_VIDEO_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "error.h"

#define RF_VIDEO_MAX_SIDE 16384 /* frames larger than this are refused */

typedef struct rf_video_opts {
    rf_codec codec;
    int width, height;         /* size of the frames handed to the writer */
    int out_width, out_height; /* encoded size; 0, 0: the same (must be even for h264/h265) */
    int fps;                   /* frames per second, 1..240 */
    int crf;                   /* h264/h265 rate factor 0..51; -1: the codec's default */
} rf_video_opts;

typedef struct rf_video_writer rf_video_writer;

/* Opens path for writing. Containers: .mp4 (h264, h265), .mov (prores; h264/h265/ffv1
 * too), .mkv (ffv1; h264/h265 too); png writes path/frame_%06d.png into the directory
 * path (created if missing; its parent must exist), or a single file when path ends in
 * ".png" (one frame only). Returns NULL with a message naming the path on a bad size,
 * an unwritable place or an encoder missing from this FFmpeg build. */
rf_video_writer *rf_video_writer_open(const char *path, const rf_video_opts *opts, rf_error *err);

/* Appends one frame: width*height*3 values, row-major, RGB interleaved. Floats are
 * mapped from [-1, 1] (clamped) to 0..255. */
int rf_video_writer_write_u8(rf_video_writer *self, const uint8_t *rgb, rf_error *err);
int rf_video_writer_write_f32(rf_video_writer *self, const float *rgb, rf_error *err);

/* Frames written so far. */
int64_t rf_video_writer_frames(const rf_video_writer *self);

/* Flushes the encoder, finishes the container, fsyncs it and renames it to its final
 * name. Frees *self and NULLs it in every case; on failure nothing is left under the
 * final name (a PNG directory keeps the frames written so far). */
int rf_video_writer_close(rf_video_writer **self, rf_error *err);

/* Drops a writer without finishing: removes the temp file. Safe on NULL and twice. */
void rf_video_writer_abort(rf_video_writer **self);

/* Joins n segments written by rf_video_writer with identical options into out_path by
 * stream copy (for png: copies the frames of n directories into one, renumbered). The
 * segments must share codec, size, pixel format and codec headers; a mismatch names the
 * segment. The output container follows out_path's extension. */
int rf_video_concat(const char *const *segments, size_t n, const char *out_path, rf_error *err);

typedef struct rf_video_reader rf_video_reader;

/* Opens a video file, a single image, or a directory of frame_%06d.png. Frames come out
 * as RGB at width x height (0, 0: the source's own size); a source with another aspect
 * ratio is scaled to cover the target and centre-cropped. NULL with a message naming the
 * path when it cannot be opened or holds no video stream. */
rf_video_reader *rf_video_reader_open(const char *path, int width, int height, rf_error *err);

/* Output frame size and the source's own size and frame rate (0 when unknown). */
int rf_video_reader_width(const rf_video_reader *self);
int rf_video_reader_height(const rf_video_reader *self);
int rf_video_reader_source_width(const rf_video_reader *self);
int rf_video_reader_source_height(const rf_video_reader *self);
double rf_video_reader_fps(const rf_video_reader *self);

/* Decodes the next frame into rgb (width*height*3 values). Sets *got to 1, or to 0 at
 * the end of the stream. A corrupt stream is an error naming the path and frame. */
int rf_video_reader_read_u8(rf_video_reader *self, uint8_t *rgb, int *got, rf_error *err);
/* The same as floats in [-1, 1] (v / 127.5 - 1). */
int rf_video_reader_read_f32(rf_video_reader *self, float *rgb, int *got, rf_error *err);

/* Frees the reader and NULLs *self; safe on NULL and twice. */
void rf_video_reader_close(rf_video_reader **self);

#endif
