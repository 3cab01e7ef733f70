"""wan_vae.py - the reference Wan-VAE (Wan2.1 architecture) in plain PyTorch, fp32.

Functional: the model is its state dict (official Wan2.1 VAE names, see
tests/fixtures/vae/README.md); every width comes from the weight shapes and the layer
kinds from the names, so any base width (8, 16, 96) works. Two paths compute the same
function: the streamed path runs chunk by chunk with per-conv caches exactly as the
release does (encoder chunks [0], [1-4], [5-8], ...; decoder one latent frame per call;
every causal 3-frame conv caches two input frames, the down3d time conv one; frame 0
skips the up3d/down3d time convs), and the whole path runs each causal conv once over
the full sequence. Segments run from a - w as a continuation (zero caches, no first
frame rule) unless they start at the timeline's frame 0. Never used for serving.
"""
import math

import torch
import torch.nn.functional as F

# Wan2.1 latent normalisation (WAN_SPEC.md section 2).
WAN21_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
              0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
WAN21_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
             3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160]


def wan_vae_shapes(dim=96, z_dim=16, dim_mult=(1, 2, 4, 4), num_res=2,
                   temporal_down=(False, True, True)):
    """name -> shape of every parameter of a Wan2.1-structured VAE (official names)."""
    s = {}

    def conv(p, cout, cin, k):
        s[p + ".weight"] = (cout, cin) + tuple(k)
        s[p + ".bias"] = (cout,)

    def res(p, cin, cout):
        s[p + ".residual.0.gamma"] = (cin, 1, 1, 1)
        conv(p + ".residual.2", cout, cin, (3, 3, 3))
        s[p + ".residual.3.gamma"] = (cout, 1, 1, 1)
        conv(p + ".residual.6", cout, cout, (3, 3, 3))
        if cin != cout:
            conv(p + ".shortcut", cout, cin, (1, 1, 1))

    def attn(p, c):
        s[p + ".norm.gamma"] = (c, 1, 1)
        conv(p + ".to_qkv", 3 * c, c, (1, 1))
        conv(p + ".proj", c, c, (1, 1))

    # encoder
    dims = [dim * u for u in (1,) + tuple(dim_mult)]
    conv("encoder.conv1", dims[0], 3, (3, 3, 3))
    n = 0
    for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
        for _ in range(num_res):
            res("encoder.downsamples.%d" % n, cin, cout)
            n += 1
            cin = cout
        if i != len(dim_mult) - 1:
            p = "encoder.downsamples.%d" % n
            conv(p + ".resample.1", cout, cout, (3, 3))
            if temporal_down[i]:
                conv(p + ".time_conv", cout, cout, (3, 1, 1))
            n += 1
    c = dims[-1]
    res("encoder.middle.0", c, c)
    attn("encoder.middle.1", c)
    res("encoder.middle.2", c, c)
    s["encoder.head.0.gamma"] = (c, 1, 1, 1)
    conv("encoder.head.2", 2 * z_dim, c, (3, 3, 3))
    conv("conv1", 2 * z_dim, 2 * z_dim, (1, 1, 1))
    conv("conv2", z_dim, z_dim, (1, 1, 1))
    # decoder
    dims = [dim * u for u in (dim_mult[-1],) + tuple(dim_mult[::-1])]
    temporal_up = tuple(temporal_down[::-1])
    conv("decoder.conv1", dims[0], z_dim, (3, 3, 3))
    res("decoder.middle.0", dims[0], dims[0])
    attn("decoder.middle.1", dims[0])
    res("decoder.middle.2", dims[0], dims[0])
    n = 0
    for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
        if i in (1, 2, 3):
            cin = cin // 2
        for _ in range(num_res + 1):
            res("decoder.upsamples.%d" % n, cin, cout)
            n += 1
            cin = cout
        if i != len(dim_mult) - 1:
            p = "decoder.upsamples.%d" % n
            conv(p + ".resample.1", cout // 2, cout, (3, 3))
            if temporal_up[i]:
                conv(p + ".time_conv", 2 * cout, cout, (3, 1, 1))
            n += 1
    s["decoder.head.0.gamma"] = (dims[-1], 1, 1, 1)
    conv("decoder.head.2", 3, dims[-1], (3, 3, 3))
    return s


def random_state(shapes, seed=0, out_gain=1.0):
    """Randomizes every parameter: conv weights ~ N(0, 1/fan_in), biases ~ N(0, 0.05^2),
    norm gammas ~ 1 + N(0, 0.1^2). out_gain scales the final decoder conv."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name in sorted(shapes):
        shp = shapes[name]
        if name.endswith(".gamma"):
            t = 1.0 + 0.1 * torch.randn(shp, generator=g)
        elif name.endswith(".bias"):
            t = 0.05 * torch.randn(shp, generator=g)
        else:
            fan_in = 1
            for d in shp[1:]:
                fan_in *= d
            t = torch.randn(shp, generator=g) / math.sqrt(fan_in)
            if name == "decoder.head.2.weight":
                t = t * out_gain
        sd[name] = t.float()
    return sd


class WanVAE:
    """The reference model over a state dict (name -> f32 tensor)."""

    def __init__(self, sd):
        self.sd = sd
        self.z_dim = sd["conv2.weight"].shape[0]
        self.enc_layers = self._layers("encoder.downsamples", "down")
        self.dec_layers = self._layers("decoder.upsamples", "up")
        if "latents_mean" in sd and "latents_std" in sd:
            mean, std = sd["latents_mean"].reshape(-1), sd["latents_std"].reshape(-1)
        else:
            if self.z_dim != 16:
                raise ValueError("z_dim %d has no default normalization; add latents_mean/"
                                 "latents_std tensors" % self.z_dim)
            mean, std = torch.tensor(WAN21_MEAN), torch.tensor(WAN21_STD)
        self.mean = mean.float().view(1, -1, 1, 1, 1)
        self.std = std.float().view(1, -1, 1, 1, 1)

    def _layers(self, prefix, direction):
        out = []
        n = 0
        while True:
            p = "%s.%d" % (prefix, n)
            if p + ".residual.0.gamma" in self.sd:
                out.append((p, "res"))
            elif p + ".norm.gamma" in self.sd:
                out.append((p, "attn"))
            elif p + ".resample.1.weight" in self.sd:
                kind = "3d" if p + ".time_conv.weight" in self.sd else "2d"
                out.append((p, direction + kind))
            else:
                return out
            n += 1

    # ---- ops -------------------------------------------------------------------------
    def cconv(self, x, name, st):
        """Causal conv3d. st None: over the whole sequence with zero front padding;
        else the cache st[name] holds the last kt-1 input frames (zeros at first)."""
        w = self.sd[name + ".weight"]
        b = self.sd.get(name + ".bias")
        kt, kh, kw = w.shape[2:]
        pt = kt - 1
        if pt > 0:
            if st is None:
                x = F.pad(x, (0, 0, 0, 0, pt, 0))
            else:
                prev = st.get(name)
                if prev is None:
                    prev = x.new_zeros(x.shape[:2] + (pt,) + x.shape[3:])
                x = torch.cat([prev, x], 2)
                st[name] = x[:, :, -pt:].clone()
        return F.conv3d(x, w, b, padding=(0, kh // 2, kw // 2))

    def rms(self, x, gname):
        g = self.sd[gname].reshape(1, -1, *([1] * (x.dim() - 2)))
        return F.normalize(x, dim=1, eps=1e-12) * math.sqrt(x.shape[1]) * g

    def res(self, x, p, st):
        h = self.cconv(x, p + ".shortcut", st) if p + ".shortcut.weight" in self.sd else x
        y = F.silu(self.rms(x, p + ".residual.0.gamma"))
        y = self.cconv(y, p + ".residual.2", st)
        y = F.silu(self.rms(y, p + ".residual.3.gamma"))
        y = self.cconv(y, p + ".residual.6", st)
        return y + h

    def attn(self, x, p):
        b, c, t, h, w = x.shape
        idt = x
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = self.rms(x, p + ".norm.gamma")
        qkv = F.conv2d(x, self.sd[p + ".to_qkv.weight"], self.sd[p + ".to_qkv.bias"])
        qkv = qkv.reshape(b * t, 3 * c, h * w).permute(0, 2, 1)  # [bt, hw, 3c]
        q, k, v = qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1) @ v  # [bt, hw, c]
        x = a.permute(0, 2, 1).reshape(b * t, c, h, w)
        x = F.conv2d(x, self.sd[p + ".proj.weight"], self.sd[p + ".proj.bias"])
        return x.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4) + idt

    def frames2d(self, x, fn):
        b, c, t, h, w = x.shape
        y = fn(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def resample(self, x, p, kind, st):
        w2, b2 = self.sd[p + ".resample.1.weight"], self.sd[p + ".resample.1.bias"]
        if kind == "up3d":
            key = p + ".started"
            if st is None:  # whole: frame 0 passes, the rest go through the causal time conv
                if x.shape[2] > 1:
                    x = torch.cat([x[:, :, :1], self._double(self.cconv(x[:, :, 1:], p + ".time_conv",
                                                                        None))], 2)
            elif st.get(key) or st.get("continuation"):
                x = self._double(self.cconv(x, p + ".time_conv", st))
            else:  # the timeline's first frame: skip and arm
                st[key] = True
        if kind.startswith("up"):
            x = self.frames2d(x, lambda f: F.conv2d(F.interpolate(f, scale_factor=2.0, mode="nearest"),
                                                    w2, b2, padding=1))
        else:
            x = self.frames2d(x, lambda f: F.conv2d(F.pad(f, (0, 1, 0, 1)), w2, b2, stride=2))
        if kind == "down3d":
            wt, bt = self.sd[p + ".time_conv.weight"], self.sd[p + ".time_conv.bias"]
            if st is None:
                if x.shape[2] > 1:
                    x = torch.cat([x[:, :, :1], F.conv3d(x, wt, bt, stride=(2, 1, 1))], 2)
            else:
                key = p + ".time_conv"
                prev = st.get(key)
                if prev is None and not st.get("continuation"):
                    st[key] = x[:, :, -1:].clone()  # frame 0 passes through, fills the cache
                else:
                    if prev is None:
                        prev = x.new_zeros(x.shape[:2] + (1,) + x.shape[3:])
                    st[key] = x[:, :, -1:].clone()  # ONE frame
                    x = F.conv3d(torch.cat([prev, x], 2), wt, bt, stride=(2, 1, 1))
        return x

    @staticmethod
    def _double(y):
        b, c2, t, h, w = y.shape
        c = c2 // 2
        return y.reshape(b, 2, c, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * t, h, w)

    def _blocks(self, x, layers, st):
        for p, kind in layers:
            if kind == "res":
                x = self.res(x, p, st)
            elif kind == "attn":
                x = self.attn(x, p)
            else:
                x = self.resample(x, p, kind, st)
        return x

    def _middle(self, x, p, st):
        x = self.res(x, p + ".0", st)
        x = self.attn(x, p + ".1")
        return self.res(x, p + ".2", st)

    # ---- encoder / decoder bodies ----------------------------------------------------
    def enc_body(self, x, st):
        x = self.cconv(x, "encoder.conv1", st)
        x = self._blocks(x, self.enc_layers, st)
        x = self._middle(x, "encoder.middle", st)
        x = F.silu(self.rms(x, "encoder.head.0.gamma"))
        return self.cconv(x, "encoder.head.2", st)

    def dec_body(self, x, st):
        x = self.cconv(x, "decoder.conv1", st)
        x = self._middle(x, "decoder.middle", st)
        x = self._blocks(x, self.dec_layers, st)
        x = F.silu(self.rms(x, "decoder.head.0.gamma"))
        return self.cconv(x, "decoder.head.2", st)

    # ---- public ----------------------------------------------------------------------
    def decode(self, z, whole=False):
        """z: normalized latent [B, z_dim, T, h, w] -> video [B, 3, 1+4(T-1), 8h, 8w] in [-1, 1]."""
        return self.decode_segment(z, 0, z.shape[2], 0, whole=whole)

    def decode_segment(self, z, a, b, w, whole=False):
        """Pixel frames of latent frames [a, b) of the timeline z, run from s = max(0, a-w):
        from 0 with the first-frame rule, else as a continuation; warm-up output dropped."""
        s = max(0, a - w)
        x = self.cconv(z[:, :, s:b] * self.std + self.mean, "conv2", None)
        if whole:
            assert s == 0, "the whole path only runs from frame 0"
            y = self.dec_body(x, None)
            drop = 0 if a == 0 else 1 + 4 * (a - 1)
            return y[:, :, drop:].clamp(-1, 1)
        st = {} if s == 0 else {"continuation": True}
        outs = [self.dec_body(x[:, :, i:i + 1], st) for i in range(b - s)]
        return torch.cat(outs[a - s:], 2).clamp(-1, 1)

    def encode(self, video, whole=False):
        """video [B, 3, F, H, W] in [-1, 1], F = 4n+1 -> normalized mu [B, z_dim, 1+n, H/8, W/8]."""
        t = (video.shape[2] - 1) // 4 + 1
        return self.encode_segment(video, 0, t, 0, whole=whole)

    def encode_segment(self, video, a, b, w, whole=False):
        """Latent frames [a, b) of the clip, run from s = max(0, a-w) (continuation when s > 0)."""
        s = max(0, a - w)
        if whole:
            assert s == 0
            out = self.enc_body(video[:, :, :1 + 4 * (b - 1)], None)[:, :, a:]
        else:
            st = {} if s == 0 else {"continuation": True}
            outs = []
            for i in range(s, b):
                chunk = video[:, :, :1] if i == 0 else video[:, :, 1 + 4 * (i - 1):1 + 4 * i]
                outs.append(self.enc_body(chunk, st))
            out = torch.cat(outs[a - s:], 2)
        mu = self.cconv(out, "conv1", None)[:, :self.z_dim]
        return (mu - self.mean) / self.std
