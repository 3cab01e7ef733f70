/* cmd_vae_encode.c - `reelfarm-engine vae-encode`: video frames (safetensors `video`) to latents.
 *
 * Reads `video` [B, 3, F, H, W] in [-1, 1] (F = 4n+1, H and W multiples of 8), encodes the
 * whole clip or the latent segment [A, B) with W warm-up latent frames (a continuation
 * when A-W > 0, like decoding), and writes `z` [B, z_dim, T, H/8, W/8]: the normalized
 * mu, (mu - mean) / std. Memory beyond the input and output is one encoder stream.
 */
#include "cpu/cpu.h"
#include "safetensors.h"
#include "vae/vae.h"
#include "vae_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: reelfarm-engine vae-encode --vae FILE --input IN --output OUT\n"
            "                                  [--segment A:B --warmup W] [--threads N]\n\n"
            "Encodes `video` [B,3,F,H,W] in [-1,1] from IN (safetensors; F = 4n+1, H and W\n"
            "multiples of 8) with the Wan-VAE encoder in FILE and writes `z` [B,16,1+n,H/8,W/8]\n"
            "(normalized mu) to OUT. With --segment only latent frames [A,B) are encoded, run\n"
            "from A-W as a continuation. --threads: CPU threads (default: all).\n"
            "Example: reelfarm-engine vae-encode --vae models/wan/vae.safetensors \\\n"
            "           --input clip.safetensors --output z.safetensors\n");
    return rc;
}

int rf_cmd_vae_encode(int argc, char **argv)
{
    rf_vae_args o;
    int usage_rc = rf_vae_args_parse(&o, "vae-encode", argc, argv, s_usage);
    if (usage_rc >= 0)
        return usage_rc;
    const char *vae_path = o.vae, *in = o.input, *outp = o.output;
    long long a = o.a, b = o.b, warm = o.warmup;
    int threads = o.threads, seg = o.segment;
    rf_error err = {0};
    int rc = 1;
    rf_backend *be = rf_backend_cpu_new(threads, &err);
    rf_vae *vae = be ? rf_vae_load(vae_path, be, &err) : NULL;
    rf_safetensors *st = vae ? rf_st_open(in, &err) : NULL;
    rf_st_writer *wr = NULL;
    float *vbuf = NULL, *out = NULL;
    if (!st)
        goto done;
    const rf_st_tensor *vt = NULL;
    int64_t vshape[5] = {-1, 3, -1, -1, -1};
    if (rf_st_expect(st, "video", 5, vshape, &vt, &err))
        goto done;
    int64_t B = vt->shape[0], F = vt->shape[2], H = vt->shape[3], W = vt->shape[4];
    int64_t tf = rf_vae_temporal_factor(vae), sf = rf_vae_spatial_factor(vae);
    if (B < 1 || F < 1 || (F - 1) % tf || H < sf || W < sf || H % sf || W % sf || H > 65536 ||
        W > 65536) {
        rf_error_set(&err, RF_EINVAL,
                     "%s: video is [%lld,3,%lld,%lld,%lld]; frames must be 1 + %lld n and "
                     "height/width positive multiples of %lld",
                     in, (long long)B, (long long)F, (long long)H, (long long)W, (long long)tf,
                     (long long)sf);
        goto done;
    }
    int64_t T = (F - 1) / tf + 1;
    if (!seg) {
        a = 0;
        b = T;
    }
    if (a < 0 || b > T || a >= b) {
        rf_error_set(&err, RF_EINVAL, "segment %lld:%lld must satisfy 0 <= A < B <= %lld", a, b,
                     (long long)T);
        goto done;
    }
    const float *v = vt->data;
    if (vt->dtype != RF_DTYPE_F32 || ((uintptr_t)vt->data % sizeof(float)) != 0) {
        if (!(vbuf = malloc(rf_st_numel(vt) * sizeof(float)))) {
            rf_error_set(&err, RF_ENOMEM, "out of memory reading %s", in);
            goto done;
        }
        if (rf_st_read_f32(vt, vbuf, &err))
            goto done;
        v = vbuf;
    }
    int64_t zd = rf_vae_z_dim(vae), per = zd * (b - a) * (H / sf) * (W / sf);
    int64_t vper = 3 * F * H * W;
    if (!(out = malloc((size_t)(B * per) * sizeof(float)))) {
        rf_error_set(&err, RF_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < B; i++)
        if (rf_vae_encode_segment(vae, v + i * vper, F, (int)H, (int)W, a, b, warm, out + i * per,
                                  &err))
            goto done;
    int64_t oshape[5] = {B, zd, b - a, H / sf, W / sf};
    char meta[64];
    snprintf(meta, sizeof(meta), "%lld:%lld:%lld", a, b, warm);
    wr = rf_st_writer_new();
    if (!wr || rf_st_writer_add(wr, "z", RF_DTYPE_F32, 5, oshape, out, &err) ||
        rf_st_writer_set_metadata(wr, "segment", meta, &err) || rf_st_writer_write(wr, outp, &err))
        goto done;
    printf("vae-encode: %s: z [%lld,%lld,%lld,%lld,%lld]\n", outp, (long long)B, (long long)zd,
           (long long)(b - a), (long long)(H / sf), (long long)(W / sf));
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "vae-encode: %s\n", err.msg[0] ? err.msg : "out of memory");
    rf_st_writer_destroy(&wr);
    free(out);
    free(vbuf);
    rf_st_destroy(&st);
    rf_vae_destroy(&vae);
    rf_backend_destroy(&be);
    return rc;
}
