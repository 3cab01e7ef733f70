/* codec.c - names, containers and crf defaults of the output codecs (see codec.h).
 *
 * Tables only; the encoders themselves live in video.c.
 */
#include "codec.h"

#include <string.h>

static const struct {
    const char *name;
    const char *ext;
    int default_crf;
} s_codecs[RF_CODEC_COUNT] = {
    [RF_CODEC_H264] = {"h264", "mp4", 18},     [RF_CODEC_H265] = {"h265", "mp4", 23},
    [RF_CODEC_PRORES] = {"prores", "mov", -1}, [RF_CODEC_FFV1] = {"ffv1", "mkv", -1},
    [RF_CODEC_PNG] = {"png", "", -1},
};

const char *rf_codec_name(rf_codec c)
{
    if ((unsigned)c >= RF_CODEC_COUNT)
        return "?";
    return s_codecs[c].name;
}

int rf_codec_parse(const char *name, rf_codec *out)
{
    if (!name)
        return -1;
    for (int i = 0; i < RF_CODEC_COUNT; i++) {
        if (strcmp(name, s_codecs[i].name) == 0) {
            *out = (rf_codec)i;
            return 0;
        }
    }
    return -1;
}

const char *rf_codec_extension(rf_codec c)
{
    if ((unsigned)c >= RF_CODEC_COUNT)
        return "";
    return s_codecs[c].ext;
}

int rf_codec_has_crf(rf_codec c)
{
    return c == RF_CODEC_H264 || c == RF_CODEC_H265;
}

int rf_codec_default_crf(rf_codec c)
{
    if ((unsigned)c >= RF_CODEC_COUNT)
        return -1;
    return s_codecs[c].default_crf;
}
