#!/bin/sh
# make_example_media.sh - the input media of the examples (examples/media/), drawn the way
# tools/train/clips.py draws reel-tiny's training clips: a red circle (radius 0.15 of the
# 64-pixel frame) crossing 0.45 frame widths per second to the right on gray, 16 fps.
#   red-circle.png   its first frame (lossless)       -> examples/animate-image.yaml
#   red-circle.mp4   17 frames, H.264                   -> restyle-video, continue-clip
# Needs the ffmpeg command line; run from anywhere: tools/make_example_media.sh
set -eu
out="$(cd "$(dirname "$0")/.." && pwd)/examples/media"
mkdir -p "$out"
cx='((64-0.45*64*17/16)/2+0.45*64*T)'
inside="lte(hypot(X+0.5-$cx\,Y+0.5-32)\,9.6)"
draw="format=rgb24,geq=r='if($inside\,220\,110)':g='if($inside\,40\,110)':b='if($inside\,40\,110)'"
ffmpeg -loglevel error -y -f lavfi -i "color=c=gray:s=64x64:r=16" -vf "$draw" -frames:v 1 \
    -c:v png "$out/red-circle.png"
ffmpeg -loglevel error -y -f lavfi -i "color=c=gray:s=64x64:r=16" -vf "$draw" -frames:v 17 \
    -c:v libx264 -pix_fmt yuv420p -crf 12 -g 17 -bf 0 -map_metadata -1 -fflags +bitexact \
    -flags:v +bitexact "$out/red-circle.mp4"
ls -l "$out"
