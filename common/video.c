/* video.c - encode RGB frames, join segments by stream copy, decode any video to RGB.
 *
 * Writer: RGB24 -> (libswscale: resize, BT.709 limited-range yuv or planar RGB) -> the
 * codec's encoder -> libavformat muxer writing PATH.tmp, renamed on close. Settings are
 * fixed per codec (closed GOPs, no scene-cut open GOPs, fixed gop length) so independent
 * segments have byte-identical codec headers and can be concatenated without decoding.
 * Concat: remux packets of each segment in order, shifting its timestamps by the
 * duration already written. Reader: demux + decode, convert to RGB24 honouring the
 * stream's colour tags, cover-crop and resize to the target size.
 * It must never leave a partial container under the final name, never trust a decoded
 * size without bounds, and never print to stdout (FFmpeg's log goes to rf_log debug).
 */
#include "video.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "log.h"

/* ---- shared helpers ------------------------------------------------------------------ */

static pthread_once_t s_log_once = PTHREAD_ONCE_INIT;

static void s_av_log(void *avcl, int level, const char *fmt, va_list ap)
{
    if (level > AV_LOG_WARNING || rf_log_get_level() > RF_LOG_DEBUG)
        return;
    char line[512];
    int prefix = 1;
    av_log_format_line2(avcl, level, fmt, ap, line, sizeof(line), &prefix);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n)
        rf_log_kv(RF_LOG_DEBUG, "ffmpeg", "libav message", "av_level=%d text=\"%s\"", level, line);
}

static void s_log_init(void)
{
    av_log_set_callback(s_av_log);
}

static const char *s_averr(int rc, char *buf, size_t cap)
{
    if (av_strerror(rc, buf, cap) < 0)
        snprintf(buf, cap, "libav error %d", rc);
    return buf;
}

#define AVERR(rc) s_averr((rc), (char[128]){0}, 128)

static int s_status_of(int averr)
{
    if (averr == AVERROR(ENOSPC))
        return RF_ENOSPC;
    if (averr == AVERROR(ENOENT))
        return RF_ENOTFOUND;
    if (averr == AVERROR(ENOMEM))
        return RF_ENOMEM;
    if (averr == AVERROR(EACCES) || averr == AVERROR(EROFS) || averr == AVERROR(EIO) ||
        averr == AVERROR(EISDIR) || averr == AVERROR(ENOTDIR))
        return RF_EIO;
    return RF_EINVAL;
}

static int s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static int s_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Copies the directory part of path into buf ("." when none). */
static void s_dirname(const char *path, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        snprintf(buf, cap, ".");
    else if (slash == buf)
        buf[1] = '\0';
    else
        *slash = '\0';
}

/* The container a path asks for, by extension (NULL when none fits). */
static const char *s_container(const char *path)
{
    if (s_ends_with(path, ".mp4"))
        return "mp4";
    if (s_ends_with(path, ".mov"))
        return "mov";
    if (s_ends_with(path, ".mkv"))
        return "matroska";
    return NULL;
}

static int s_fsync_path(const char *path, rf_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rf_error_set(err, RF_EIO, "%s: cannot reopen to sync: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc)
        return rf_error_set(err, e == ENOSPC ? RF_ENOSPC : RF_EIO, "%s: fsync failed: %s", path,
                            strerror(e));
    return 0;
}

/* ---- writer -------------------------------------------------------------------------- */

struct rf_video_writer {
    rf_video_opts o;
    char *path;     /* final path */
    char *tmp_path; /* container: path.tmp; png: NULL */
    int png_dir;    /* png sequence into a directory */
    int png_single; /* one .png file */
    const AVCodec *codec;
    AVCodecContext *enc;
    AVFormatContext *oc;
    AVStream *st;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    uint8_t *u8; /* width*height*3 for float input */
    int64_t frames;
    int header_written;
};

static int s_check_opts(const char *path, const rf_video_opts *o, rf_error *err)
{
    if ((unsigned)o->codec >= RF_CODEC_COUNT)
        return rf_error_set(err, RF_EINVAL, "%s: unknown codec %d", path, (int)o->codec);
    if (o->width < 2 || o->height < 2 || o->width > RF_VIDEO_MAX_SIDE ||
        o->height > RF_VIDEO_MAX_SIDE)
        return rf_error_set(err, RF_EINVAL, "%s: frame size %dx%d is outside 2..%d", path, o->width,
                            o->height, RF_VIDEO_MAX_SIDE);
    if ((o->out_width == 0) != (o->out_height == 0) || o->out_width < 0 || o->out_height < 0 ||
        o->out_width > RF_VIDEO_MAX_SIDE || o->out_height > RF_VIDEO_MAX_SIDE ||
        (o->out_width && (o->out_width < 2 || o->out_height < 2)))
        return rf_error_set(err, RF_EINVAL,
                            "%s: output size %dx%d must be both 0 (no resize) or 2..%d", path,
                            o->out_width, o->out_height, RF_VIDEO_MAX_SIDE);
    int ow = o->out_width ? o->out_width : o->width;
    int oh = o->out_height ? o->out_height : o->height;
    if ((o->codec == RF_CODEC_H264 || o->codec == RF_CODEC_H265 || o->codec == RF_CODEC_PRORES) &&
        ((ow & 1) || (oh & 1)))
        return rf_error_set(err, RF_EINVAL,
                            "%s: %s needs an even width and height, got %dx%d; resize to an "
                            "even size",
                            path, rf_codec_name(o->codec), ow, oh);
    if (o->codec == RF_CODEC_H265 && (ow < 16 || oh < 16))
        return rf_error_set(err, RF_EINVAL, "%s: h265 needs at least 16x16, got %dx%d", path, ow,
                            oh);
    if (o->fps < 1 || o->fps > 240)
        return rf_error_set(err, RF_EINVAL, "%s: fps must be 1..240, got %d", path, o->fps);
    if (o->crf < -1 || o->crf > 51)
        return rf_error_set(err, RF_EINVAL, "%s: crf must be 0..51 (or -1 for the default), got %d",
                            path, o->crf);
    return 0;
}

/* Sets up the encoder for the codec: fixed settings so segments match. */
static int s_open_encoder(rf_video_writer *w, int global_header, rf_error *err)
{
    static const char *names[RF_CODEC_COUNT] = {"libx264", "libx265", "prores_ks", "ffv1", "png"};
    const char *name = names[w->o.codec];
    w->codec = avcodec_find_encoder_by_name(name);
    if (!w->codec)
        return rf_error_set(err, RF_EUNSUPPORTED,
                            "%s: the encoder %s is not in this FFmpeg build (libavcodec); "
                            "install Debian's libavcodec59 with %s or choose another codec",
                            w->path, name, name);
    AVCodecContext *c = avcodec_alloc_context3(w->codec);
    if (!c)
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory (encoder)", w->path);
    w->enc = c;
    c->width = w->o.out_width ? w->o.out_width : w->o.width;
    c->height = w->o.out_height ? w->o.out_height : w->o.height;
    c->time_base = (AVRational){1, w->o.fps};
    c->framerate = (AVRational){w->o.fps, 1};
    c->sample_aspect_ratio = (AVRational){1, 1};
    if (global_header)
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    int crf = w->o.crf >= 0 ? w->o.crf : rf_codec_default_crf(w->o.codec);
    char crfs[16];
    snprintf(crfs, sizeof(crfs), "%d", crf);
    int yuv = 1;
    switch (w->o.codec) {
    case RF_CODEC_H264:
        c->pix_fmt = AV_PIX_FMT_YUV420P;
        c->gop_size = 5 * w->o.fps;
        c->flags |= AV_CODEC_FLAG_CLOSED_GOP;
        av_opt_set(c->priv_data, "preset", "medium", 0);
        av_opt_set(c->priv_data, "crf", crfs, 0);
        av_opt_set(c->priv_data, "x264-params", "open-gop=0:scenecut=0", 0);
        break;
    case RF_CODEC_H265:
        c->pix_fmt = AV_PIX_FMT_YUV420P;
        c->gop_size = 5 * w->o.fps;
        c->flags |= AV_CODEC_FLAG_CLOSED_GOP;
        c->codec_tag = MKTAG('h', 'v', 'c', '1');
        av_opt_set(c->priv_data, "preset", "medium", 0);
        av_opt_set(c->priv_data, "crf", crfs, 0);
        av_opt_set(c->priv_data, "x265-params", "open-gop=0:scenecut=0:log-level=error", 0);
        break;
    case RF_CODEC_PRORES:
        c->pix_fmt = AV_PIX_FMT_YUV422P10LE;
        av_opt_set(c->priv_data, "profile", "hq", 0);
        av_opt_set(c->priv_data, "vendor", "apl0", 0);
        break;
    case RF_CODEC_FFV1:
        c->pix_fmt = AV_PIX_FMT_BGR0; /* 8-bit RGB, lossless */
        c->gop_size = 1;
        c->level = 3;
        av_opt_set_int(c->priv_data, "slicecrc", 1, 0);
        yuv = 0;
        break;
    case RF_CODEC_PNG:
    default:
        c->pix_fmt = AV_PIX_FMT_RGB24;
        yuv = 0;
        break;
    }
    if (yuv) {
        c->colorspace = AVCOL_SPC_BT709;
        c->color_primaries = AVCOL_PRI_BT709;
        c->color_trc = AVCOL_TRC_BT709;
        c->color_range = AVCOL_RANGE_MPEG;
    } else {
        c->color_range = AVCOL_RANGE_JPEG;
    }
    int rc = avcodec_open2(c, w->codec, NULL);
    if (rc < 0)
        return rf_error_set(err, RF_EINVAL, "%s: cannot open the %s encoder at %dx%d: %s", w->path,
                            name, c->width, c->height, AVERR(rc));
    w->sws =
        sws_getContext(w->o.width, w->o.height, AV_PIX_FMT_RGB24, c->width, c->height, c->pix_fmt,
                       SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (!w->sws)
        return rf_error_set(err, RF_EUNSUPPORTED, "%s: libswscale cannot convert %dx%d RGB to %s",
                            w->path, w->o.width, w->o.height, av_get_pix_fmt_name(c->pix_fmt));
    if (yuv) {
        const int *coef = sws_getCoefficients(SWS_CS_ITU709);
        sws_setColorspaceDetails(w->sws, coef, 1, coef, 0, 0, 1 << 16, 1 << 16);
    }
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->frame || !w->pkt)
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory (frame)", w->path);
    w->frame->format = c->pix_fmt;
    w->frame->width = c->width;
    w->frame->height = c->height;
    w->frame->color_range = c->color_range;
    w->frame->colorspace = c->colorspace;
    w->frame->color_primaries = c->color_primaries;
    w->frame->color_trc = c->color_trc;
    rc = av_frame_get_buffer(w->frame, 0);
    if (rc < 0)
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory (frame buffer)", w->path);
    return 0;
}

static void s_writer_free(rf_video_writer *w)
{
    if (w->oc) {
        if (w->oc->pb)
            avio_closep(&w->oc->pb);
        avformat_free_context(w->oc);
    }
    avcodec_free_context(&w->enc);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    sws_freeContext(w->sws);
    free(w->u8);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

rf_video_writer *rf_video_writer_open(const char *path, const rf_video_opts *opts, rf_error *err)
{
    pthread_once(&s_log_once, s_log_init);
    if (!path || !*path) {
        rf_error_set(err, RF_EINVAL, "video output: empty path");
        return NULL;
    }
    if (s_check_opts(path, opts, err))
        return NULL;
    rf_video_writer *w = calloc(1, sizeof(*w));
    if (!w || !(w->path = strdup(path))) {
        free(w);
        rf_error_set(err, RF_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    w->o = *opts;
    char dir[PATH_MAX];
    if (opts->codec == RF_CODEC_PNG) {
        w->png_single = s_ends_with(path, ".png");
        w->png_dir = !w->png_single;
        s_dirname(path, dir, sizeof(dir));
        if (w->png_dir) {
            if (mkdir(path, 0755) != 0 && !(errno == EEXIST && s_is_dir(path))) {
                int e = errno;
                rf_error_set(err, e == ENOSPC ? RF_ENOSPC : RF_EIO,
                             "%s: cannot create the PNG frame directory: %s%s", path,
                             e == EEXIST ? "a file of that name exists" : strerror(e),
                             e == ENOENT ? " (its parent directory must exist)" : "");
                s_writer_free(w);
                return NULL;
            }
            if (access(path, W_OK) != 0) {
                rf_error_set(err, RF_EIO, "%s: the PNG frame directory is not writable: %s", path,
                             strerror(errno));
                s_writer_free(w);
                return NULL;
            }
        } else if (access(dir, W_OK) != 0) {
            rf_error_set(err, RF_EIO, "%s: cannot write into %s: %s", path, dir, strerror(errno));
            s_writer_free(w);
            return NULL;
        }
        if (s_open_encoder(w, 0, err)) {
            s_writer_free(w);
            return NULL;
        }
        return w;
    }
    const char *cont = s_container(path);
    int ok = cont && (strcmp(cont, "mp4") == 0
                          ? (opts->codec == RF_CODEC_H264 || opts->codec == RF_CODEC_H265)
                      : strcmp(cont, "mov") == 0 ? 1
                                                 : opts->codec != RF_CODEC_PRORES);
    if (!ok) {
        rf_error_set(err, RF_EINVAL,
                     "%s: codec %s does not go in this file; use .mp4 for h264/h265, .mov for "
                     "prores, .mkv for ffv1 (h264/h265 also fit .mov and .mkv)",
                     path, rf_codec_name(opts->codec));
        s_writer_free(w);
        return NULL;
    }
    size_t n = strlen(path) + 5;
    w->tmp_path = malloc(n);
    if (!w->tmp_path) {
        s_writer_free(w);
        rf_error_set(err, RF_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    snprintf(w->tmp_path, n, "%s.tmp", path);
    int rc = avformat_alloc_output_context2(&w->oc, NULL, cont, w->tmp_path);
    if (rc < 0 || !w->oc) {
        rf_error_set(err, RF_EUNSUPPORTED, "%s: the %s muxer is missing from this FFmpeg: %s", path,
                     cont, AVERR(rc));
        s_writer_free(w);
        return NULL;
    }
    if (s_open_encoder(w, (w->oc->oformat->flags & AVFMT_GLOBALHEADER) != 0, err)) {
        s_writer_free(w);
        return NULL;
    }
    w->st = avformat_new_stream(w->oc, NULL);
    if (!w->st || avcodec_parameters_from_context(w->st->codecpar, w->enc) < 0) {
        rf_error_set(err, RF_ENOMEM, "%s: out of memory (stream)", path);
        s_writer_free(w);
        return NULL;
    }
    w->st->time_base = w->enc->time_base;
    w->st->avg_frame_rate = w->enc->framerate;
    rc = avio_open(&w->oc->pb, w->tmp_path, AVIO_FLAG_WRITE);
    if (rc < 0) {
        s_dirname(path, dir, sizeof(dir));
        rf_error_set(err, s_status_of(rc), "%s: cannot create the file in %s: %s", path, dir,
                     AVERR(rc));
        s_writer_free(w);
        return NULL;
    }
    AVDictionary *mo = NULL;
    if (strcmp(cont, "matroska") != 0)
        av_dict_set(&mo, "movflags", "+faststart", 0);
    else
        av_dict_set(&mo, "write_crc32", "1", 0);
    rc = avformat_write_header(w->oc, &mo);
    av_dict_free(&mo);
    if (rc < 0) {
        rf_error_set(err, s_status_of(rc), "%s: cannot write the container header: %s", path,
                     AVERR(rc));
        rf_video_writer_abort(&w);
        return NULL;
    }
    w->header_written = 1;
    return w;
}

/* Writes every packet the encoder has ready. */
static int s_drain(rf_video_writer *w, rf_error *err)
{
    for (;;) {
        int rc = avcodec_receive_packet(w->enc, w->pkt);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return rf_error_set(err, RF_EINVAL, "%s: encoder failed: %s", w->path, AVERR(rc));
        if (w->png_dir || w->png_single) {
            char name[PATH_MAX];
            if (w->png_single)
                snprintf(name, sizeof(name), "%s", w->path);
            else
                snprintf(name, sizeof(name), "%s/frame_%06lld.png", w->path,
                         (long long)w->pkt->pts);
            int wr = rf_atomic_write(name, w->pkt->data, (size_t)w->pkt->size, err);
            av_packet_unref(w->pkt);
            if (wr)
                return wr;
            continue;
        }
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        rc = av_interleaved_write_frame(w->oc, w->pkt);
        if (rc < 0)
            return rf_error_set(err, s_status_of(rc), "%s: cannot write a packet: %s", w->path,
                                AVERR(rc));
    }
}

int rf_video_writer_write_u8(rf_video_writer *self, const uint8_t *rgb, rf_error *err)
{
    if (self->png_single && self->frames >= 1)
        return rf_error_set(err, RF_EINVAL,
                            "%s: a single .png holds one frame; write a sequence to a "
                            "directory instead",
                            self->path);
    int rc = av_frame_make_writable(self->frame);
    if (rc < 0)
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory (frame)", self->path);
    const uint8_t *src[1] = {rgb};
    int stride[1] = {self->o.width * 3};
    sws_scale(self->sws, src, stride, 0, self->o.height, self->frame->data, self->frame->linesize);
    self->frame->pts = self->frames;
    rc = avcodec_send_frame(self->enc, self->frame);
    if (rc < 0)
        return rf_error_set(err, RF_EINVAL, "%s: encoder refused frame %lld: %s", self->path,
                            (long long)self->frames, AVERR(rc));
    self->frames++;
    return s_drain(self, err);
}

int rf_video_writer_write_f32(rf_video_writer *self, const float *rgb, rf_error *err)
{
    size_t n = (size_t)self->o.width * (size_t)self->o.height * 3;
    if (!self->u8) {
        self->u8 = malloc(n);
        if (!self->u8)
            return rf_error_set(err, RF_ENOMEM, "%s: out of memory (frame)", self->path);
    }
    for (size_t i = 0; i < n; i++) {
        float v = (rgb[i] + 1.0f) * 127.5f;
        v = v != v ? 0.0f : v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        self->u8[i] = (uint8_t)lrintf(v);
    }
    return rf_video_writer_write_u8(self, self->u8, err);
}

int64_t rf_video_writer_frames(const rf_video_writer *self)
{
    return self->frames;
}

int rf_video_writer_close(rf_video_writer **self, rf_error *err)
{
    if (!self || !*self)
        return 0;
    rf_video_writer *w = *self;
    int rc = 0;
    int sr = avcodec_send_frame(w->enc, NULL);
    if (sr < 0 && sr != AVERROR_EOF)
        rc = rf_error_set(err, RF_EINVAL, "%s: cannot flush the encoder: %s", w->path, AVERR(sr));
    if (!rc)
        rc = s_drain(w, err);
    if (!rc && w->png_single && w->frames != 1)
        rc = rf_error_set(err, RF_EINVAL, "%s: no frame was written", w->path);
    if (w->oc) {
        if (!rc) {
            int tr = av_write_trailer(w->oc);
            if (tr < 0)
                rc = rf_error_set(err, s_status_of(tr), "%s: cannot finish the container: %s",
                                  w->path, AVERR(tr));
        }
        int cr = avio_closep(&w->oc->pb);
        if (!rc && cr < 0)
            rc = rf_error_set(err, s_status_of(cr), "%s: cannot close the file: %s", w->path,
                              AVERR(cr));
        if (!rc)
            rc = s_fsync_path(w->tmp_path, err);
        if (!rc && rename(w->tmp_path, w->path) != 0)
            rc = rf_error_set(err, RF_EIO, "%s: cannot rename %s into place: %s", w->path,
                              w->tmp_path, strerror(errno));
        if (!rc) {
            char dir[PATH_MAX];
            s_dirname(w->path, dir, sizeof(dir));
            rc = rf_fsync_dir(dir, err);
        } else {
            unlink(w->tmp_path);
        }
    }
    s_writer_free(w);
    *self = NULL;
    return rc;
}

void rf_video_writer_abort(rf_video_writer **self)
{
    if (!self || !*self)
        return;
    rf_video_writer *w = *self;
    if (w->oc && w->oc->pb)
        avio_closep(&w->oc->pb);
    if (w->tmp_path)
        unlink(w->tmp_path);
    s_writer_free(w);
    *self = NULL;
}

/* ---- concatenation ----------------------------------------------------------------------- */

static int s_copy_file(const char *from, const char *to, rf_error *err)
{
    FILE *f = fopen(from, "rb");
    if (!f)
        return rf_error_set(err, RF_EIO, "%s: cannot open: %s", from, strerror(errno));
    rf_atomic_file *af = rf_atomic_file_begin(to, err);
    if (!af) {
        fclose(f);
        return err ? (int)err->code : RF_EIO;
    }
    char buf[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        rc = rf_atomic_file_write(af, buf, n, err);
    if (!rc && ferror(f))
        rc = rf_error_set(err, RF_EIO, "%s: read error", from);
    fclose(f);
    if (rc) {
        rf_atomic_file_abort(&af);
        return rc;
    }
    return rf_atomic_file_commit(&af, err);
}

static int s_concat_png(const char *const *segs, size_t n, const char *out, rf_error *err)
{
    if (mkdir(out, 0755) != 0 && !(errno == EEXIST && s_is_dir(out)))
        return rf_error_set(err, RF_EIO, "%s: cannot create the output directory: %s", out,
                            strerror(errno));
    long long k = 0;
    for (size_t s = 0; s < n; s++) {
        if (!s_is_dir(segs[s]))
            return rf_error_set(err, RF_ENOTFOUND, "%s: segment %zu is not a PNG frame directory",
                                segs[s], s);
        for (long long i = 0;; i++) {
            char from[PATH_MAX], to[PATH_MAX];
            snprintf(from, sizeof(from), "%s/frame_%06lld.png", segs[s], i);
            if (access(from, F_OK) != 0) {
                if (i == 0)
                    return rf_error_set(err, RF_ENOTFOUND, "%s: segment %zu holds no frames",
                                        segs[s], s);
                break;
            }
            snprintf(to, sizeof(to), "%s/frame_%06lld.png", out, k++);
            int rc = s_copy_file(from, to, err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int s_same_par(const AVCodecParameters *a, const AVCodecParameters *b)
{
    return a->codec_id == b->codec_id && a->width == b->width && a->height == b->height &&
           a->format == b->format && a->extradata_size == b->extradata_size &&
           (a->extradata_size == 0 || memcmp(a->extradata, b->extradata, a->extradata_size) == 0);
}

static int s_open_segment(const char *path, size_t idx, AVFormatContext **fc, int *stream,
                          rf_error *err)
{
    int rc = avformat_open_input(fc, path, NULL, NULL);
    if (rc < 0)
        return rf_error_set(err, s_status_of(rc), "%s: cannot open segment %zu: %s", path, idx,
                            AVERR(rc));
    rc = avformat_find_stream_info(*fc, NULL);
    if (rc < 0)
        return rf_error_set(err, RF_EINVAL, "%s: segment %zu is not readable video: %s", path, idx,
                            AVERR(rc));
    *stream = av_find_best_stream(*fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (*stream < 0)
        return rf_error_set(err, RF_EINVAL, "%s: segment %zu holds no video stream", path, idx);
    return 0;
}

int rf_video_concat(const char *const *segments, size_t n, const char *out_path, rf_error *err)
{
    pthread_once(&s_log_once, s_log_init);
    if (n == 0)
        return rf_error_set(err, RF_EINVAL, "%s: no segments to join", out_path);
    if (s_is_dir(segments[0]) && !s_container(out_path))
        return s_concat_png(segments, n, out_path, err);
    const char *cont = s_container(out_path);
    if (!cont)
        return rf_error_set(err, RF_EINVAL,
                            "%s: the joined file must be .mp4, .mov or .mkv (or a directory "
                            "for PNG segments)",
                            out_path);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
    AVFormatContext *oc = NULL;
    AVFormatContext *ic = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVCodecParameters *first = avcodec_parameters_alloc();
    int rc = 0, header = 0;
    AVStream *ost = NULL;
    int64_t offset = 0; /* in the output stream's time base */
    if (!pkt || !first) {
        rc = rf_error_set(err, RF_ENOMEM, "%s: out of memory", out_path);
        goto done;
    }
    int arc = avformat_alloc_output_context2(&oc, NULL, cont, tmp);
    if (arc < 0 || !oc) {
        rc = rf_error_set(err, RF_EUNSUPPORTED, "%s: no %s muxer: %s", out_path, cont, AVERR(arc));
        goto done;
    }
    for (size_t s = 0; s < n && !rc; s++) {
        int si = -1;
        rc = s_open_segment(segments[s], s, &ic, &si, err);
        if (rc)
            break;
        AVStream *ist = ic->streams[si];
        if (s == 0) {
            if (avcodec_parameters_copy(first, ist->codecpar) < 0 ||
                !(ost = avformat_new_stream(oc, NULL)) ||
                avcodec_parameters_copy(ost->codecpar, ist->codecpar) < 0) {
                rc = rf_error_set(err, RF_ENOMEM, "%s: out of memory", out_path);
                break;
            }
            if (ist->codecpar->codec_id == AV_CODEC_ID_HEVC)
                ost->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
            else
                ost->codecpar->codec_tag = 0;
            ost->time_base = ist->time_base;
            ost->avg_frame_rate = ist->avg_frame_rate;
            ost->r_frame_rate = ist->r_frame_rate;
            int orc = avio_open(&oc->pb, tmp, AVIO_FLAG_WRITE);
            if (orc < 0) {
                rc = rf_error_set(err, s_status_of(orc), "%s: cannot create: %s", out_path,
                                  AVERR(orc));
                break;
            }
            AVDictionary *mo = NULL;
            if (strcmp(cont, "matroska") != 0)
                av_dict_set(&mo, "movflags", "+faststart", 0);
            orc = avformat_write_header(oc, &mo);
            av_dict_free(&mo);
            if (orc < 0) {
                rc = rf_error_set(err, s_status_of(orc),
                                  "%s: cannot write the header (codec %s in %s): %s", out_path,
                                  avcodec_get_name(ist->codecpar->codec_id), cont, AVERR(orc));
                break;
            }
            header = 1;
        } else if (!s_same_par(first, ist->codecpar)) {
            rc = rf_error_set(err, RF_EINVAL,
                              "%s: segment %zu (%s %dx%d) was not encoded with the same "
                              "settings as segment 0 (%s %dx%d); segments must share codec, "
                              "size and encoder settings to be joined without re-encoding",
                              segments[s], s, avcodec_get_name(ist->codecpar->codec_id),
                              ist->codecpar->width, ist->codecpar->height,
                              avcodec_get_name(first->codec_id), first->width, first->height);
            break;
        }
        /* shift this segment so its first presentation time lands at offset */
        int64_t start = ist->start_time != AV_NOPTS_VALUE ? ist->start_time : 0;
        int64_t seg_end = offset;
        AVRational frame_dur =
            av_inv_q(ist->avg_frame_rate.num ? ist->avg_frame_rate : ist->r_frame_rate);
        for (;;) {
            int r = av_read_frame(ic, pkt);
            if (r == AVERROR_EOF)
                break;
            if (r < 0) {
                rc = rf_error_set(err, RF_EINVAL, "%s: segment %zu is damaged: %s", segments[s], s,
                                  AVERR(r));
                break;
            }
            if (pkt->stream_index != si) {
                av_packet_unref(pkt);
                continue;
            }
            if (pkt->duration <= 0 && frame_dur.num)
                pkt->duration = av_rescale_q(1, frame_dur, ist->time_base);
            if (pkt->pts != AV_NOPTS_VALUE)
                pkt->pts -= start;
            if (pkt->dts != AV_NOPTS_VALUE)
                pkt->dts -= start;
            av_packet_rescale_ts(pkt, ist->time_base, ost->time_base);
            if (pkt->pts != AV_NOPTS_VALUE) {
                pkt->pts += offset;
                if (pkt->pts + pkt->duration > seg_end)
                    seg_end = pkt->pts + pkt->duration;
            }
            if (pkt->dts != AV_NOPTS_VALUE)
                pkt->dts += offset;
            pkt->stream_index = ost->index;
            pkt->pos = -1;
            r = av_interleaved_write_frame(oc, pkt);
            if (r < 0) {
                rc = rf_error_set(err, s_status_of(r), "%s: cannot write segment %zu: %s", out_path,
                                  s, AVERR(r));
                break;
            }
        }
        offset = seg_end;
        avformat_close_input(&ic);
    }
    if (!rc && header) {
        int tr = av_write_trailer(oc);
        if (tr < 0)
            rc = rf_error_set(err, s_status_of(tr), "%s: cannot finish: %s", out_path, AVERR(tr));
    }
done:
    avformat_close_input(&ic);
    if (oc) {
        if (oc->pb) {
            int cr = avio_closep(&oc->pb);
            if (!rc && cr < 0)
                rc =
                    rf_error_set(err, s_status_of(cr), "%s: cannot close: %s", out_path, AVERR(cr));
        }
        avformat_free_context(oc);
    }
    av_packet_free(&pkt);
    avcodec_parameters_free(&first);
    if (!rc)
        rc = s_fsync_path(tmp, err);
    if (!rc && rename(tmp, out_path) != 0)
        rc = rf_error_set(err, RF_EIO, "%s: cannot rename into place: %s", out_path,
                          strerror(errno));
    if (!rc) {
        char dir[PATH_MAX];
        s_dirname(out_path, dir, sizeof(dir));
        rc = rf_fsync_dir(dir, err);
    } else {
        unlink(tmp);
    }
    return rc;
}

/* ---- reader ---------------------------------------------------------------------------- */

struct rf_video_reader {
    char *path;
    AVFormatContext *fc;
    AVCodecContext *dec;
    int stream;
    AVFrame *frame;
    AVPacket *pkt;
    int eof_sent;
    int64_t frames;
    int out_w, out_h;
    int src_w, src_h;
    /* conversion: native -> rgb24 at the decoded size, then crop + scale */
    struct SwsContext *to_rgb, *fit;
    int key_w, key_h, key_fmt, key_cs, key_range; /* what to_rgb was built for */
    uint8_t *native;                              /* key_w * key_h * 3 */
    int crop_x, crop_y, crop_w, crop_h;
    uint8_t *u8; /* for read_f32 */
};

void rf_video_reader_close(rf_video_reader **self)
{
    if (!self || !*self)
        return;
    rf_video_reader *r = *self;
    avcodec_free_context(&r->dec);
    avformat_close_input(&r->fc);
    av_frame_free(&r->frame);
    av_packet_free(&r->pkt);
    sws_freeContext(r->to_rgb);
    sws_freeContext(r->fit);
    free(r->native);
    free(r->u8);
    free(r->path);
    free(r);
    *self = NULL;
}

/* Demuxers whose files name other files or URLs to read (they open them themselves). */
static int s_refers_elsewhere(const AVInputFormat *f)
{
    static const char *const names[] = {
        "concat", "hls", "dash", "imf", "sdp", "rtsp", "webm_dash_manifest"};
    for (size_t i = 0; f && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(f->name, names[i]) == 0)
            return 1;
    return 0;
}

static int s_io_open_self(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                          AVDictionary **options)
{
    const char *self = s->opaque;
    if (!self || !url || strcmp(url, self) != 0 || (flags & AVIO_FLAG_WRITE))
        return AVERROR(EPERM);
    return avio_open2(pb, url, flags, &s->interrupt_callback, options);
}

rf_video_reader *rf_video_reader_open(const char *path, int width, int height, rf_error *err)
{
    pthread_once(&s_log_once, s_log_init);
    if (!path || !*path) {
        rf_error_set(err, RF_EINVAL, "video input: empty path");
        return NULL;
    }
    if (width < 0 || height < 0 || (width == 0) != (height == 0) || width > RF_VIDEO_MAX_SIDE ||
        height > RF_VIDEO_MAX_SIDE) {
        rf_error_set(err, RF_EINVAL, "%s: target size %dx%d must be 0x0 or 1..%d", path, width,
                     height, RF_VIDEO_MAX_SIDE);
        return NULL;
    }
    rf_video_reader *r = calloc(1, sizeof(*r));
    if (!r || !(r->path = strdup(path))) {
        free(r);
        rf_error_set(err, RF_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    r->key_fmt = -1;
    struct stat st;
    if (stat(path, &st) != 0) {
        rf_error_set(err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO, "%s: cannot open: %s", path,
                     strerror(errno));
        rf_video_reader_close(&r);
        return NULL;
    }
    int rc;
    if (S_ISDIR(st.st_mode)) {
        char pattern[PATH_MAX], first[PATH_MAX];
        snprintf(pattern, sizeof(pattern), "%s/frame_%%06d.png", path);
        snprintf(first, sizeof(first), "%s/frame_000000.png", path);
        if (access(first, R_OK) != 0) {
            rf_error_set(err, RF_ENOTFOUND,
                         "%s: a directory input must hold frame_000000.png, frame_000001.png, "
                         "...; frame_000000.png is missing",
                         path);
            rf_video_reader_close(&r);
            return NULL;
        }
        AVDictionary *o = NULL;
        av_dict_set(&o, "start_number", "0", 0);
        av_dict_set(&o, "framerate", "16", 0);
        rc = avformat_open_input(&r->fc, pattern, av_find_input_format("image2"), &o);
        av_dict_free(&o);
    } else {
        /* only the file itself: an input is untrusted (a user's upload, a download), and a
         * playlist, concat list or reference inside it must not make us open another file
         * or a URL */
        AVDictionary *o = NULL;
        av_dict_set(&o, "protocol_whitelist", "file", 0);
        r->fc = avformat_alloc_context();
        if (r->fc) {
            r->fc->opaque = r->path;
            r->fc->io_open = s_io_open_self;
            rc = avformat_open_input(&r->fc, path, NULL, &o);
            if (rc >= 0 && s_refers_elsewhere(r->fc->iformat))
                rc = AVERROR(EPERM);
        } else {
            rc = AVERROR(ENOMEM);
        }
        av_dict_free(&o);
    }
    if (rc < 0) {
        rf_error_set(err, s_status_of(rc), "%s: not a video or image FFmpeg can read: %s", path,
                     AVERR(rc));
        rf_video_reader_close(&r);
        return NULL;
    }
    rc = avformat_find_stream_info(r->fc, NULL);
    if (rc < 0) {
        rf_error_set(err, RF_EINVAL, "%s: cannot read stream information: %s", path, AVERR(rc));
        rf_video_reader_close(&r);
        return NULL;
    }
    const AVCodec *codec = NULL;
    r->stream = av_find_best_stream(r->fc, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (r->stream < 0 || !codec) {
        rf_error_set(err, r->stream == AVERROR_DECODER_NOT_FOUND ? RF_EUNSUPPORTED : RF_EINVAL,
                     "%s: %s", path,
                     r->stream == AVERROR_DECODER_NOT_FOUND
                         ? "no decoder in this FFmpeg build for its video"
                         : "holds no video stream");
        rf_video_reader_close(&r);
        return NULL;
    }
    AVCodecParameters *par = r->fc->streams[r->stream]->codecpar;
    if (par->width < 1 || par->height < 1 || par->width > RF_VIDEO_MAX_SIDE ||
        par->height > RF_VIDEO_MAX_SIDE) {
        rf_error_set(err, RF_EINVAL, "%s: video size %dx%d is outside 1..%d", path, par->width,
                     par->height, RF_VIDEO_MAX_SIDE);
        rf_video_reader_close(&r);
        return NULL;
    }
    r->dec = avcodec_alloc_context3(codec);
    r->frame = av_frame_alloc();
    r->pkt = av_packet_alloc();
    if (!r->dec || !r->frame || !r->pkt || avcodec_parameters_to_context(r->dec, par) < 0) {
        rf_error_set(err, RF_ENOMEM, "%s: out of memory (decoder)", path);
        rf_video_reader_close(&r);
        return NULL;
    }
    r->dec->thread_count = 0;
    rc = avcodec_open2(r->dec, codec, NULL);
    if (rc < 0) {
        rf_error_set(err, RF_EINVAL, "%s: cannot open the %s decoder: %s", path, codec->name,
                     AVERR(rc));
        rf_video_reader_close(&r);
        return NULL;
    }
    r->src_w = par->width;
    r->src_h = par->height;
    r->out_w = width ? width : par->width;
    r->out_h = height ? height : par->height;
    return r;
}

int rf_video_reader_width(const rf_video_reader *self)
{
    return self->out_w;
}
int rf_video_reader_height(const rf_video_reader *self)
{
    return self->out_h;
}
int rf_video_reader_source_width(const rf_video_reader *self)
{
    return self->src_w;
}
int rf_video_reader_source_height(const rf_video_reader *self)
{
    return self->src_h;
}
double rf_video_reader_fps(const rf_video_reader *self)
{
    AVRational fr = self->fc->streams[self->stream]->avg_frame_rate;
    if (!fr.num || !fr.den)
        fr = self->fc->streams[self->stream]->r_frame_rate;
    return fr.num && fr.den ? av_q2d(fr) : 0.0;
}

static int s_sws_cs(int colorspace)
{
    switch (colorspace) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    default: return SWS_CS_DEFAULT;
    }
}

/* (Re)builds the converters for the current frame's format and size. */
static int s_reader_setup(rf_video_reader *r, const AVFrame *f, rf_error *err)
{
    if (f->width == r->key_w && f->height == r->key_h && f->format == r->key_fmt &&
        (int)f->colorspace == r->key_cs && (int)f->color_range == r->key_range && r->to_rgb)
        return 0;
    if (f->width < 1 || f->height < 1 || f->width > RF_VIDEO_MAX_SIDE ||
        f->height > RF_VIDEO_MAX_SIDE)
        return rf_error_set(err, RF_EINVAL, "%s: frame %lld has size %dx%d, outside 1..%d", r->path,
                            (long long)r->frames, f->width, f->height, RF_VIDEO_MAX_SIDE);
    sws_freeContext(r->to_rgb);
    sws_freeContext(r->fit);
    r->to_rgb = r->fit = NULL;
    free(r->native);
    r->native = malloc((size_t)f->width * (size_t)f->height * 3);
    if (!r->native)
        return rf_error_set(err, RF_ENOMEM, "%s: out of memory (frame)", r->path);
    r->to_rgb = sws_getContext(
        f->width, f->height, (enum AVPixelFormat)f->format, f->width, f->height, AV_PIX_FMT_RGB24,
        SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (!r->to_rgb)
        return rf_error_set(err, RF_EUNSUPPORTED, "%s: cannot convert pixel format %s to RGB",
                            r->path, av_get_pix_fmt_name((enum AVPixelFormat)f->format));
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)f->format);
    if (d && !(d->flags & AV_PIX_FMT_FLAG_RGB)) {
        const int *coef = sws_getCoefficients(s_sws_cs(f->colorspace));
        int full = f->color_range == AVCOL_RANGE_JPEG;
        const int *dst_coef = sws_getCoefficients(SWS_CS_DEFAULT);
        sws_setColorspaceDetails(r->to_rgb, coef, full, dst_coef, 1, 0, 1 << 16, 1 << 16);
    }
    /* cover: crop the source to the target's aspect ratio, centred */
    int64_t sw = f->width, sh = f->height, ow = r->out_w, oh = r->out_h;
    if (sw * oh > ow * sh) {
        r->crop_h = (int)sh;
        r->crop_w = (int)((sh * ow + oh / 2) / oh);
    } else {
        r->crop_w = (int)sw;
        r->crop_h = (int)((sw * oh + ow / 2) / ow);
    }
    if (r->crop_w < 1)
        r->crop_w = 1;
    if (r->crop_h < 1)
        r->crop_h = 1;
    r->crop_x = (int)(sw - r->crop_w) / 2;
    r->crop_y = (int)(sh - r->crop_h) / 2;
    if (r->crop_w != r->out_w || r->crop_h != r->out_h) {
        r->fit = sws_getContext(r->crop_w, r->crop_h, AV_PIX_FMT_RGB24, r->out_w, r->out_h,
                                AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
        if (!r->fit)
            return rf_error_set(err, RF_EUNSUPPORTED, "%s: cannot resize %dx%d to %dx%d", r->path,
                                r->crop_w, r->crop_h, r->out_w, r->out_h);
    }
    r->key_w = f->width;
    r->key_h = f->height;
    r->key_fmt = f->format;
    r->key_cs = f->colorspace;
    r->key_range = f->color_range;
    return 0;
}

int rf_video_reader_read_u8(rf_video_reader *self, uint8_t *rgb, int *got, rf_error *err)
{
    *got = 0;
    for (;;) {
        int rc = avcodec_receive_frame(self->dec, self->frame);
        if (rc == 0)
            break;
        if (rc == AVERROR_EOF)
            return 0;
        if (rc != AVERROR(EAGAIN))
            return rf_error_set(err, RF_EINVAL, "%s: cannot decode frame %lld: %s", self->path,
                                (long long)self->frames, AVERR(rc));
        if (self->eof_sent)
            return 0;
        rc = av_read_frame(self->fc, self->pkt);
        if (rc == AVERROR_EOF) {
            self->eof_sent = 1;
            avcodec_send_packet(self->dec, NULL);
            continue;
        }
        if (rc < 0)
            return rf_error_set(err, s_status_of(rc), "%s: cannot read after frame %lld: %s",
                                self->path, (long long)self->frames, AVERR(rc));
        if (self->pkt->stream_index != self->stream) {
            av_packet_unref(self->pkt);
            continue;
        }
        rc = avcodec_send_packet(self->dec, self->pkt);
        av_packet_unref(self->pkt);
        if (rc < 0 && rc != AVERROR(EAGAIN))
            return rf_error_set(err, RF_EINVAL, "%s: damaged data at frame %lld: %s", self->path,
                                (long long)self->frames, AVERR(rc));
    }
    AVFrame *f = self->frame;
    int rc = s_reader_setup(self, f, err);
    if (rc) {
        av_frame_unref(f);
        return rc;
    }
    int nstride[1] = {f->width * 3};
    uint8_t *ndst[1] = {self->native};
    sws_scale(self->to_rgb, (const uint8_t *const *)f->data, f->linesize, 0, f->height, ndst,
              nstride);
    av_frame_unref(f);
    const uint8_t *crop =
        self->native + ((size_t)self->crop_y * (size_t)self->key_w + (size_t)self->crop_x) * 3;
    if (self->fit) {
        const uint8_t *src[1] = {crop};
        uint8_t *dst[1] = {rgb};
        int dstride[1] = {self->out_w * 3};
        sws_scale(self->fit, src, nstride, 0, self->crop_h, dst, dstride);
    } else {
        for (int y = 0; y < self->out_h; y++)
            memcpy(rgb + (size_t)y * self->out_w * 3, crop + (size_t)y * nstride[0],
                   (size_t)self->out_w * 3);
    }
    self->frames++;
    *got = 1;
    return 0;
}

int rf_video_reader_read_f32(rf_video_reader *self, float *rgb, int *got, rf_error *err)
{
    size_t n = (size_t)self->out_w * (size_t)self->out_h * 3;
    if (!self->u8) {
        self->u8 = malloc(n);
        if (!self->u8)
            return rf_error_set(err, RF_ENOMEM, "%s: out of memory (frame)", self->path);
    }
    int rc = rf_video_reader_read_u8(self, self->u8, got, err);
    if (rc || !*got)
        return rc;
    for (size_t i = 0; i < n; i++)
        rgb[i] = (float)self->u8[i] / 127.5f - 1.0f;
    return 0;
}
