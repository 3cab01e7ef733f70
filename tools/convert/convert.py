#!/usr/bin/python3
"""Convert the official Wan2.1 release's .pth files to safetensors and write model.json.

    /usr/bin/python3 tools/convert/convert.py ~/Wan2.1-T2V-1.3B
    /usr/bin/python3 tools/convert/convert.py --pth Wan2.1_VAE.pth --out vae.safetensors

The first form converts Wan2.1_VAE.pth and models_t5_umt5-xxl-enc-bf16.pth next to
themselves (same tensor names, same dtypes), leaves the DiT's own safetensors alone,
and writes model.json naming the files and the sampler defaults. Needs only Python's
standard library and numpy (no torch): see pth.py for how checkpoints are read safely.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pth  # noqa: E402
import safetensors_io  # noqa: E402

VAE_PTH = "Wan2.1_VAE.pth"
T5_PTH = "models_t5_umt5-xxl-enc-bf16.pth"
TOKENIZER = os.path.join("google", "umt5-xxl", "spiece.model")

# WAN_SPEC.md section 4: the release's defaults for text-to-video.
NEGATIVE = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)


def convert_file(src, dst):
    tensors = pth.load(src)
    items = []
    for name, t in tensors.items():
        if t.dtype in ("I8", "I16", "BOOL"):
            raise pth.PthError(f"{src}: tensor {name} has dtype {t.dtype}, not a model weight")
        items.append((name, t.dtype, t.array.shape, t.array.tobytes()))
    safetensors_io.write(dst, items, {"format": "pt", "converted_from": os.path.basename(src)})
    return len(items)


def convert_release(folder, steps, shift, guidance):
    if not os.path.isdir(folder):
        raise pth.PthError(f"{folder} is not a directory")
    model = {"name": os.path.basename(os.path.normpath(folder))}
    for key, src_name in (("vae", VAE_PTH), ("t5", T5_PTH)):
        src = os.path.join(folder, src_name)
        dst_name = os.path.splitext(src_name)[0] + ".safetensors"
        dst = os.path.join(folder, dst_name)
        if os.path.exists(src):
            n = convert_file(src, dst)
            print(f"convert: {src_name} -> {dst_name} ({n} tensors)")
        elif not os.path.exists(dst):
            raise pth.PthError(f"{folder} has neither {src_name} nor {dst_name}: is it the release folder?")
        model[key] = dst_name
    if not os.path.exists(os.path.join(folder, "config.json")):
        raise pth.PthError(f"{folder} has no config.json for the DiT: is it the release folder?")
    model["dit"] = "."
    if os.path.exists(os.path.join(folder, TOKENIZER)):
        model["tokenizer"] = TOKENIZER
    else:
        print(f"convert: warning: {TOKENIZER} not found; add the tokenizer before rendering")
    model["defaults"] = {
        "sampler": "unipc",
        "steps": steps,
        "shift": shift,
        "guidance": guidance,
        "width": 832,
        "height": 480,
        "frames": 81,
        "fps": 16,
        "negative": NEGATIVE,
    }
    out = os.path.join(folder, "model.json")
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        json.dump(model, f, ensure_ascii=False, indent=2)
        f.write("\n")
    os.replace(out + ".tmp", out)
    print(f"convert: wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", help="the downloaded release folder (e.g. Wan2.1-T2V-1.3B)")
    ap.add_argument("--pth", help="convert one .pth file instead")
    ap.add_argument("--out", help="output .safetensors for --pth")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--shift", type=float, default=5.0)
    ap.add_argument("--guidance", type=float, default=5.0)
    args = ap.parse_args()
    try:
        if args.pth:
            out = args.out or os.path.splitext(args.pth)[0] + ".safetensors"
            n = convert_file(args.pth, out)
            print(f"convert: {args.pth} -> {out} ({n} tensors)")
        elif args.folder:
            convert_release(args.folder, args.steps, args.shift, args.guidance)
        else:
            ap.error("give the release folder, or --pth FILE")
    except (pth.PthError, OSError) as e:
        print(f"convert: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
