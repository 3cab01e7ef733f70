/* codec.h - the output codecs a job can ask for, shared by the job spec and the video writer.
 *
 * One enum so a spec, a DECODE task and the encoder agree on names. Each codec has one
 * container: H.264 and H.265 in MP4, ProRes in MOV, FFV1 in MKV, PNG as a directory of
 * numbered files (or one .png for a single image). Pure tables: no libav here.
 */
#ifndef RF_CODEC_H
#define RF_CODEC_H

typedef enum rf_codec {
    RF_CODEC_H264 = 0, /* libx264, yuv420p, MP4 */
    RF_CODEC_H265,     /* libx265, yuv420p, MP4 */
    RF_CODEC_PRORES,   /* prores_ks 422 HQ, yuv422p10le, MOV */
    RF_CODEC_FFV1,     /* FFV1 level 3, lossless, MKV */
    RF_CODEC_PNG,      /* rgb24 PNG files: frame_%06d.png in a directory */
    RF_CODEC_COUNT
} rf_codec;

/* The spec spelling: "h264", "h265", "prores", "ffv1", "png" ("?" when invalid). */
const char *rf_codec_name(rf_codec c);
/* Parses a spec spelling (exact, lower case); returns 0 and sets *out, or -1. */
int rf_codec_parse(const char *name, rf_codec *out);
/* The file extension of the codec's container without the dot: "mp4", "mov", "mkv", and
 * "" for png (a directory). */
const char *rf_codec_extension(rf_codec c);
/* 1 when the codec takes a constant rate factor (h264, h265), else 0. */
int rf_codec_has_crf(rf_codec c);
/* The default crf of a codec that has one (h264 18, h265 23), else -1. */
int rf_codec_default_crf(rf_codec c);

#endif
