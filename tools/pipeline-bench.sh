#!/usr/bin/env bash
# Throughput of the elements in real pipelines (fakesink sync=false), beside
# the classic elements a GStreamer user would use instead, same sources.
#   tools/pipeline-bench.sh [SECONDS_OF_AUDIO] [VIDEO_FRAMES]    (REPEATS=3)
# Layers: K1's audio upsampler, K5's 2d and K6's 3d video super-resolution
# (random weights: speed does not depend on them).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
frames=${2:-120}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work" <<'PY'
import os, sys
import numpy as np
sys.path.insert(0, "tools")
from ctexport.safetensors_io import save_file
rng = np.random.default_rng(1)
def layer(name, shape, meta):
    save_file({"weight": (rng.standard_normal(shape) * 0.1).astype(np.float32)},
              os.path.join(sys.argv[1], name), meta)
layer("k1.safetensors", (2, 1, 64), {"stride": "2", "padding": "31", "groups": "2"})
layer("k5.safetensors", (3, 3, 4, 4), {"stride": "2", "padding": "1"})
layer("k6.safetensors", (3, 3, 3, 4, 4), {"stride": "[1,2,2]", "padding": "1"})
PY
# Only our plugin on the path: scanning the whole build tree costs startup time.
mkdir -p "$work/plugins"
cp build/libgstconvtranspose.so "$work/plugins/"
export GST_PLUGIN_PATH=$work/plugins GST_REGISTRY=$work/registry.bin
gst-inspect-1.0 convtranspose >/dev/null # registry built before timing
# Each pipeline runs $repeats times (environment REPEATS, default 3) and the
# best wall time is kept: these VMs are noisy, and every pipeline gets the
# same treatment.
repeats=${REPEATS:-3}
run() { # label, then the pipeline
  local label=$1 start end wall best=""
  shift
  for _ in $(seq "$repeats"); do
    start=$(date +%s.%N)
    gst-launch-1.0 -q "$@" >/dev/null
    end=$(date +%s.%N)
    wall=$(echo "$end - $start" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$wall < $best" | bc -l)" = 1 ]; then best=$wall; fi
  done
  echo "$label $best"
}
buffers=$((seconds * 100)) # 10 ms buffers
audio="audiotestsrc num-buffers=$buffers samplesperbuffer=480 wave=white-noise ! audio/x-raw,format=F32LE,rate=48000,channels=2"
video="videotestsrc num-buffers=$frames pattern=smpte ! video/x-raw,format=RGB,width=640,height=360,framerate=30/1"
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $seconds s of 48 kHz stereo, $frames frames 640x360"
{
  run audio-source-only $audio ! fakesink sync=false
  run convtranspose1d-2x $audio ! convtranspose1d model="$work/k1.safetensors" ! fakesink sync=false
  run audioresample-q4-2x $audio ! audioresample quality=4 ! audio/x-raw,rate=96000 ! fakesink sync=false
  run video-source-only $video ! fakesink sync=false
  run convtranspose2d-2x $video ! convtranspose2d model="$work/k5.safetensors" ! fakesink sync=false
  run videoscale-bilinear-2x $video ! videoscale method=bilinear ! video/x-raw,width=1280,height=720 ! fakesink sync=false
  run convtranspose3d-2x $video ! convtranspose3d model="$work/k6.safetensors" ! fakesink sync=false
} | while read -r label wall; do
  case $label in
  audio* | convtranspose1d* | audioresample*)
    printf '%-24s %7.2f s wall  %8.1f audio seconds per wall second\n' "$label" "$wall" \
      "$(echo "$seconds / $wall" | bc -l)" ;;
  *)
    printf '%-24s %7.2f s wall  %8.1f frames per second\n' "$label" "$wall" \
      "$(echo "$frames / $wall" | bc -l)" ;;
  esac
done
