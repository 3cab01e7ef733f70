/* condition.c - known latent frames on the flow-matching line, SDEdit starts, media encoding.
 *
 * The blend is elementwise f32 with the two coefficients rounded once from double, and the
 * noise is recomputed per element with rf_noise (no scratch, so re-imposing allocates
 * nothing per step); the element index is (c*h + y)*w + x, as rf_noise_latent numbers it.
 * Media are read frame by frame (common/video) and pushed into a VAE encoder stream, so a
 * long clip costs one push of memory plus its latent.
 */
#include "condition.h"

#include "rng.h"
#include "video.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int rf_cond_blend(float *x, const int64_t shape[4], int64_t window_start, double sigma,
                  const rf_cond_span *spans, int nspans, uint64_t seed, uint32_t timeline,
                  rf_error *err)
{
    const int64_t C = shape[0], T = shape[1], H = shape[2], W = shape[3];
    const float a = (float)(1.0 - sigma), b = (float)sigma;
    for (int k = 0; k < nspans; k++) {
        const rf_cond_span *sp = &spans[k];
        if (sp->c != C || sp->h != H || sp->w != W)
            return rf_error_set(err, RF_ESHAPE,
                                "condition latent is [%" PRId64 ", ., %" PRId64 ", %" PRId64
                                "]; the chunk's latent is [%" PRId64 ", ., %" PRId64 ", %" PRId64
                                "] (encode the input at the job's size)",
                                sp->c, sp->h, sp->w, C, H, W);
        int64_t lo = sp->first > window_start ? sp->first : window_start;
        int64_t hi = sp->first + sp->n < window_start + T ? sp->first + sp->n : window_start + T;
        for (int64_t f = lo; f < hi; f++) {
            int64_t tx = f - window_start, tz = f - sp->first;
            for (int64_t c = 0; c < C; c++) {
                float *xr = x + ((size_t)c * (size_t)T + (size_t)tx) * (size_t)(H * W);
                const float *zr =
                    sp->z + ((size_t)c * (size_t)sp->n + (size_t)tz) * (size_t)(H * W);
                for (int64_t e = 0; e < H * W; e++) {
                    float eps = rf_noise(seed, timeline, (uint32_t)f, (uint64_t)(c * H * W + e));
                    xr[e] = a * zr[e] + b * eps;
                }
            }
        }
    }
    return 0;
}

int rf_cond_reimpose(const rf_sampler *smp, rf_chunk_state *st, const rf_cond_span *spans,
                     int nspans, uint64_t seed, uint32_t timeline, rf_error *err)
{
    int step = rf_sampler_state_step(st);
    rf_cs_tensor *x = rf_chunk_state_tensor(st, "latent");
    if (step < 0 || step > rf_sampler_get_config(smp)->steps || !x || x->ndim != 4 ||
        st->nspans != 1)
        return rf_error_set(err, RF_EINVAL,
                            "re-imposing known frames needs a whole sampler chunk state");
    return rf_cond_blend(x->data, x->shape, st->window_start, rf_sampler_sigma(smp, step), spans,
                         nspans, seed, timeline, err);
}

int rf_cond_start_step(const rf_sampler *smp, double strength)
{
    int n = rf_sampler_get_config(smp)->steps;
    for (int i = 0; i < n; i++)
        if (rf_sampler_sigma(smp, i) <= strength)
            return i;
    return n;
}

int rf_cond_covers(const rf_cond_span *spans, int nspans, int64_t a, int64_t b)
{
    for (int64_t f = a; f < b; f++) {
        int held = 0;
        for (int k = 0; k < nspans && !held; k++)
            held = f >= spans[k].first && f < spans[k].first + spans[k].n;
        if (!held)
            return 0;
    }
    return 1;
}

int rf_cond_sdedit_init(const rf_sampler *smp, rf_chunk_state *st, double strength,
                        const rf_cond_span *spans, int nspans, uint64_t seed, uint32_t timeline,
                        rf_error *err)
{
    if (!(strength >= 0.0 && strength <= 1.0))
        return rf_error_set(err, RF_EINVAL, "strength must be in [0, 1], got %g", strength);
    if (rf_sampler_state_step(st) != 0)
        return rf_error_set(err, RF_EINVAL, "a video -> video start needs a fresh state");
    int64_t a = st->window_start, b = st->window_start + st->window_len;
    if (!rf_cond_covers(spans, nspans, a, b))
        return rf_error_set(err, RF_EINVAL,
                            "video -> video: the input's latent does not cover frames [%" PRId64
                            ", %" PRId64 ") of the chunk (the clip is shorter than the film)",
                            a, b);
    int k = rf_cond_start_step(smp, strength);
    rf_cs_tensor *x = rf_chunk_state_tensor(st, "latent");
    int rc = rf_cond_blend(x->data, x->shape, a, rf_sampler_sigma(smp, k), spans, nspans, seed,
                           timeline, err);
    if (!rc)
        rc = rf_chunk_state_set_i64(st, RF_COND_START_SCALAR, k, err);
    return rc;
}

int rf_cond_state_start(const rf_chunk_state *st)
{
    const rf_cs_scalar *sc = rf_chunk_state_scalar(st, RF_COND_START_SCALAR);
    return sc && sc->kind == RF_CS_I64 && sc->i > 0 && sc->i <= RF_SAMPLER_MAX_STEPS ? (int)sc->i
                                                                                     : 0;
}

/* ---- media ------------------------------------------------------------------------- */

int rf_cond_count_frames(const char *path, int64_t *frames, rf_error *err)
{
    rf_video_reader *r = rf_video_reader_open(path, 16, 16, err);
    if (!r)
        return err ? (int)err->code : RF_EIO;
    uint8_t px[16 * 16 * 3];
    int64_t n = 0;
    int got = 1, rc = 0;
    while (!rc && got) {
        rc = rf_video_reader_read_u8(r, px, &got, err);
        n += !rc && got;
    }
    rf_video_reader_close(&r);
    if (!rc)
        *frames = n;
    return rc;
}

int rf_cond_encode_media(rf_vae *vae, const char *path, int width, int height, int64_t first_frame,
                         int64_t frames, float **z, int64_t *T, rf_error *err)
{
    const int sf = rf_vae_spatial_factor(vae), tf = rf_vae_temporal_factor(vae);
    if (!rf_vae_has_encoder(vae))
        return rf_error_set(err, RF_EUNSUPPORTED,
                            "the model's VAE file has no encoder; image, video and continuation "
                            "inputs need the full VAE (with encoder.* tensors)");
    if (width <= 0 || height <= 0 || width % sf || height % sf)
        return rf_error_set(err, RF_EINVAL, "input size %dx%d must be multiples of %d", width,
                            height, sf);
    if (frames < 1 || (frames - 1) % tf || first_frame < 0)
        return rf_error_set(err, RF_EINVAL,
                            "%s: frames to encode must be %dn+1 from frame >= 0, got %" PRId64
                            " from %" PRId64,
                            path, tf, frames, first_frame);
    const int64_t nT = (frames - 1) / tf + 1, zd = rf_vae_z_dim(vae);
    const int64_t h = height / sf, w = width / sf, HW = (int64_t)width * height;
    rf_video_reader *rd = rf_video_reader_open(path, width, height, err);
    if (!rd)
        return rf_error_prefix(err, "reading the input");
    rf_vae_stream *es = rf_vae_encoder_new(vae, height, width, 1, err);
    float *rgb = malloc((size_t)HW * 3 * sizeof(float));
    float *px = malloc((size_t)HW * 3 * (size_t)tf * sizeof(float));
    float *zf = malloc((size_t)(zd * h * w) * sizeof(float));
    float *out = malloc((size_t)(zd * nT * h * w) * sizeof(float));
    int rc = 0;
    if (!es)
        rc = err ? (int)err->code : RF_ENOMEM;
    else if (!rgb || !px || !zf || !out)
        rc =
            rf_error_set(err, RF_ENOMEM, "out of memory encoding %s at %dx%d", path, width, height);
    int64_t read = 0; /* frames read from the file */
    for (int64_t t = 0; t < nT && !rc; t++) {
        int n = t == 0 ? 1 : tf;
        for (int k = 0; k < n && !rc; k++) {
            int got = 0;
            do {
                rc = rf_video_reader_read_f32(rd, rgb, &got, err);
                read += !rc && got;
            } while (!rc && got && read <= first_frame);
            if (!rc && !got)
                rc = rf_error_set(err, RF_EINVAL,
                                  "%s has %" PRId64 " frames; %" PRId64
                                  " are needed (frames %" PRId64 "..%" PRId64 ")",
                                  path, read, first_frame + frames, first_frame,
                                  first_frame + frames - 1);
            /* HWC interleaved -> [3, n, H, W] planar */
            for (int64_t i = 0; !rc && i < HW; i++)
                for (int c = 0; c < 3; c++)
                    px[((size_t)c * (size_t)n + (size_t)k) * (size_t)HW + (size_t)i] =
                        rgb[i * 3 + c];
        }
        if (!rc)
            rc = rf_vae_encode_push(es, px, n, zf, err);
        for (int64_t c = 0; !rc && c < zd; c++) /* [zd, h, w] -> frame t of [zd, T, h, w] */
            memcpy(out + ((size_t)c * (size_t)nT + (size_t)t) * (size_t)(h * w),
                   zf + (size_t)c * (size_t)(h * w), (size_t)(h * w) * sizeof(float));
    }
    rf_vae_stream_destroy(&es);
    rf_video_reader_close(&rd);
    free(rgb);
    free(px);
    free(zf);
    if (rc) {
        free(out);
        return rc;
    }
    *z = out;
    *T = nT;
    return 0;
}
