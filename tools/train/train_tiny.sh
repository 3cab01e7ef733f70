#!/bin/bash
# train_tiny.sh - retrains models/reel-tiny from scratch: `make train-tiny`.
# Stages (each resumable: checkpoints under build/train-tiny/, delete them to restart):
# tokenizer -> VAE (joint) -> latents (encoder frozen) -> DiT + umT5 while the VAE
# decoder trains on -> export (+ decode warm-up) -> adherence evaluation.
# Every seed is fixed; the stages are time-boxed (minutes below), so a slower or
# busier machine trains fewer steps. Needs Debian's /usr/bin/python3 (torch 1.13,
# numpy, sentencepiece): `make deps` / deploy/install-deps.sh --tools.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
W=build/train-tiny
VAE_MIN=${VAE_MIN:-18}
DEC_MIN=${DEC_MIN:-17}
DIT_MIN=${DIT_MIN:-50}
CLIPS=${CLIPS:-400}
mkdir -p "$W"
export REEL_TINY_THREADS=1  # one thread per process: OpenMP crawls on a shared box
t0=$(date +%s)
$PY tools/train/train_tokenizer.py
$PY tools/train/train_vae.py --minutes "$VAE_MIN"
# the decoder trains on (encoder frozen) while the latents are encoded and the DiT trains
$PY tools/train/train_vae.py --decoder-only --fg-weight 5 --minutes "$DEC_MIN" > "$W/vae_dec.log" 2>&1 &
d=$!
$PY tools/train/encode_latents.py --clips "$CLIPS" --shard 0 --of 2 > "$W/enc0.log" 2>&1 &
e0=$!
$PY tools/train/encode_latents.py --clips "$CLIPS" --shard 1 --of 2 > "$W/enc1.log" 2>&1
wait $e0
$PY tools/train/encode_latents.py --clips "$CLIPS" --merge
$PY tools/train/train_dit.py --minutes "$DIT_MIN" --batch 16
wait $d
$PY tools/train/export.py
$PY tools/train/eval_adherence.py
echo "train-tiny: done in $(( ($(date +%s) - t0) / 60 )) min"
