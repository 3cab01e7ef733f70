#!/bin/bash
# train_tiny.sh - retrains models/reel-tiny from scratch: `make train-tiny`.
# The recipe as it was run, in three sessions (each stage resumable: checkpoints under
# build/train-tiny/, delete them to restart). Session 1: tokenizer -> VAE (joint) ->
# latents of 400 clips (encoder frozen from here on) -> DiT + umT5 on them while the VAE
# decoder trains on crops and frames. Session 2: 1,600 more clips encoded (the 400's
# latent statistics kept) -> the DiT continues on all 2,000 (batch 32, sigma shifted
# toward the noisy end for 2/3 of a batch, lr decayed at the end) while the decoder
# trains on whole cached clips. Session 3: the encoder, frozen since session 1, kept
# purple and cyan too close to blue for the DiT to learn them; encoder and decoder
# retrain together on whole clips (foreground x15, latents anchored near the old ones),
# the 2,000 clips are encoded again (new statistics), the DiT continues on them while
# the decoder trains on alone (lone frames too: image inputs) ->
# export (+ decode warm-up) -> adherence (PyTorch and C).
# Every seed is fixed; the stages are time-boxed (minutes below, totals over resumed
# runs), so a slower or busier machine trains fewer steps. Needs Debian's
# /usr/bin/python3 (torch 1.13, numpy, sentencepiece): `make deps` / install-deps.sh --tools.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
W=build/train-tiny
VAE_MIN=${VAE_MIN:-18}
DEC_MIN=${DEC_MIN:-17}      # decoder on crops + frames (session 1)
DEC2A_MIN=${DEC2A_MIN:-53}  # decoder total after whole clips, foreground x5 (session 2)
DEC2_MIN=${DEC2_MIN:-124}   # ... then foreground x15
DIT_MIN=${DIT_MIN:-50}      # DiT on the first clips (session 1)
DIT2_MIN=${DIT2_MIN:-158}   # DiT total after session 2
JOINT_MIN=${JOINT_MIN:-45}  # encoder + decoder on whole clips (session 3)
DEC3_MIN=${DEC3_MIN:-20}    # ... then the decoder alone, lone frames included
DIT3_MIN=${DIT3_MIN:-205}   # DiT total after session 3
CLIPS=${CLIPS:-400}
CLIPS2=${CLIPS2:-2000}
GUIDANCE=${GUIDANCE:-3.0}    # 3 follows as well as 4 and joins chunks more smoothly (model card)
mkdir -p "$W" "$W/c"
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
$PY tools/train/train_dit.py --minutes "$DIT_MIN" --batch 16 > "$W/dit.log" 2>&1
wait $d
# session 2: more clips (same encoder, the first clips' statistics), then the DiT and the
# decoder on whole clips side by side
$PY tools/train/encode_latents.py --clips "$CLIPS2" --first "$CLIPS" > "$W/enc_ext.log" 2>&1
$PY tools/train/encode_latents.py --clips "$CLIPS2" --merge --stats-clips "$CLIPS"
( $PY tools/train/train_vae.py --decoder-only --cached-clips 2 --fg-weight 5 --latent-noise 0.1 \
    --minutes "$DEC2A_MIN" > "$W/vae_dec3.log" 2>&1
  $PY tools/train/train_vae.py --decoder-only --cached-clips 2 --fg-weight 15 --latent-noise 0.1 \
    --minutes "$DEC2_MIN" --decay-from $((DEC2_MIN - 24)) > "$W/vae_dec4.log" 2>&1 ) &
d=$!
$PY tools/train/train_dit.py --minutes "$DIT2_MIN" --decay-from $((DIT2_MIN - 30)) --batch 32 --shifted 0.67 \
  > "$W/dit3.log" 2>&1
wait $d
# session 3: encoder + decoder together, then the latents again, then the DiT on them
$PY tools/train/train_vae.py --joint-clips 2 --fg-weight 15 --latent-noise 0.1 --lr 3e-4 \
  --minutes "$JOINT_MIN" --decay-from $((JOINT_MIN - 8)) > "$W/vae_joint.log" 2>&1
$PY tools/train/vae_roundtrip.py --ckpt vae_joint_ckpt.pt
mkdir -p "$W/session2"
mv "$W"/latents_shard*.pt "$W/session2/"
$PY tools/train/encode_latents.py --clips "$CLIPS2" --shard 0 --of 2 > "$W/enc3_0.log" 2>&1 &
e0=$!
$PY tools/train/encode_latents.py --clips "$CLIPS2" --shard 1 --of 2 > "$W/enc3_1.log" 2>&1
wait $e0
$PY tools/train/encode_latents.py --clips "$CLIPS2" --merge --stats-clips "$CLIPS"
# the decoder on (encoder frozen), with lone frames too, while the DiT continues
$PY tools/train/train_vae.py --decoder-only --after-joint --cached-clips 2 --lone-frames --fg-weight 5 \
  --latent-noise 0.1 --lr 3e-4 --minutes "$DEC3_MIN" --decay-from $((DEC3_MIN - 6)) > "$W/vae_joint_dec.log" 2>&1 &
d=$!
$PY tools/train/train_dit.py --minutes "$DIT3_MIN" --decay-from $((DIT3_MIN - 15)) --batch 32 --shifted 0.67 \
  --lr 5e-4 > "$W/dit4.log" 2>&1
wait $d
$PY tools/train/export.py --guidance "$GUIDANCE"
$PY tools/train/eval_adherence.py
make build/bin/reelfarm-engine
$PY tools/train/eval_adherence.py --engine build/bin/reelfarm-engine --out "$W/c/adherence.json"
echo "train-tiny: done in $(( ($(date +%s) - t0) / 60 )) min"
