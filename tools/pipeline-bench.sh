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
# The pipelines run in rounds (environment REPEATS rounds, default 3), each
# round running every pipeline once: these VMs drift by up to 2x within
# minutes, and interleaving gives every pipeline the same slow and fast
# periods. Each pipeline's best and median wall time are reported.
repeats=${REPEATS:-3}
declare -a labels=() pipelines=()
add() { # label, then the pipeline
  labels+=("$1")
  shift
  pipelines+=("$*")
}
buffers=$((seconds * 100)) # 10 ms buffers
audio="audiotestsrc num-buffers=$buffers samplesperbuffer=480 wave=white-noise ! audio/x-raw,format=F32LE,rate=48000,channels=2"
video="videotestsrc num-buffers=$frames pattern=smpte ! video/x-raw,format=RGB,width=640,height=360,framerate=30/1"
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $seconds s of 48 kHz stereo, $frames frames 640x360"
add audio-source-only "$audio ! fakesink sync=false"
add convtranspose1d-2x "$audio ! convtranspose1d model=$work/k1.safetensors ! fakesink sync=false"
add audioresample-q4-2x "$audio ! audioresample quality=4 ! audio/x-raw,rate=96000 ! fakesink sync=false"
add video-source-only "$video ! fakesink sync=false"
add convtranspose2d-2x "$video ! convtranspose2d model=$work/k5.safetensors ! fakesink sync=false"
add videoscale-bilinear-2x "$video ! videoscale method=bilinear ! video/x-raw,width=1280,height=720 ! fakesink sync=false"
add convtranspose3d-2x "$video ! convtranspose3d model=$work/k6.safetensors ! fakesink sync=false"
walls=$work/walls
for _ in $(seq "$repeats"); do
  for i in "${!labels[@]}"; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086 # the pipeline is words for gst-launch
    gst-launch-1.0 -q ${pipelines[$i]} >/dev/null
    end=$(date +%s.%N)
    echo "${labels[$i]} $(echo "$end - $start" | bc -l)" >>"$walls"
  done
done
for label in "${labels[@]}"; do
  sorted=$(awk -v l="$label" '$1 == l { print $2 }' "$walls" | sort -g)
  best=$(echo "$sorted" | head -1)
  median=$(echo "$sorted" | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  case $label in
  audio* | convtranspose1d* | audioresample*) n=$seconds unit="audio seconds per wall second" ;;
  *) n=$frames unit="frames per second" ;;
  esac
  printf '%-24s best %6.2f s  %8.1f %s  (median %6.2f s: %8.1f)\n' "$label" "$best" \
    "$(echo "$n / $best" | bc -l)" "$unit" "$median" "$(echo "$n / $median" | bc -l)"
done
