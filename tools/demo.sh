#!/usr/bin/env bash
# The shipped models on the shipped clips, through gst-launch-1.0 pipelines
# with the plugin of ./build (tools/run.sh demo builds it first). Writes
# out/demo/ and prints, for each pipeline, what went in and came out (from
# the caps the convtranspose element negotiated) and the real-time factor:
# seconds of media per second of wall time, decoding and encoding included.
set -euo pipefail
cd "$(dirname "$0")/.."

out=out/demo
mkdir -p "$out"
export GST_PLUGIN_PATH=$PWD/build

# run NAME SECONDS_OF_MEDIA PIPELINE...: run the pipeline verbosely, keep the
# caps on the convtranspose element's pads, print them and the speed.
run() {
  local name=$1 media=$2 log="$out/$1.log" start end
  shift 2
  start=$(date +%s.%N)
  gst-launch-1.0 -v "$@" >"$log" 2>&1 || {
    cat "$log" >&2
    return 1
  }
  end=$(date +%s.%N)
  python3 - "$name" "$media" "$start" "$end" "$log" <<'PY'
import re, sys
name, media, start, end, log = sys.argv[1:]
caps = {}
for line in open(log):
    m = re.search(r"GstConvTranspose\dd:\w+\.GstPad:(sink|src): caps = (.*)", line)
    if m:
        caps[m.group(1)] = m.group(2)
def short(c):
    fields = dict(re.findall(r"(\w+)=\(\w+\)([^,]+)", c))
    if c.startswith("audio"):
        return f"{fields['channels']} ch @ {fields['rate']} Hz"
    rate = fields["framerate"].split("/")
    fps = int(rate[0]) / int(rate[1])
    return f"{fields['width']}x{fields['height']} @ {fps:.3f} fps"
wall = float(end) - float(start)
print(f"{name}: {short(caps['sink'])} -> {short(caps['src'])}; "
      f"{float(media):.2f} s in {wall:.2f} s wall = "
      f"{float(media) / wall:.2f}x real time")
PY
}

audio_in=samples/music-22k.flac
video_in=samples/megamind-360x264.avi
audio_seconds=6
video_seconds=$(python3 -c 'print(48 * 1001 / 24000)')

echo "== audio: 2x upsampling, $audio_in -> $out/music-44k.wav"
run audio-up2x $audio_seconds filesrc location=$audio_in ! flacparse ! flacdec ! \
  audioconvert ! audio/x-raw,format=F32LE ! \
  convtranspose1d model=models/audio-up2x.safetensors ! \
  audioconvert ! wavenc ! filesink location=$out/music-44k.wav

for model in video-sr2x video-sr2x-3d video-fps2x; do
  element=convtranspose3d
  [ $model = video-sr2x ] && element=convtranspose2d
  echo "== video: $model ($element), $video_in -> $out/megamind-$model.avi"
  run $model "$video_seconds" filesrc location=$video_in ! avidemux ! jpegdec ! \
    videoconvert ! video/x-raw,format=RGB ! \
    $element model=models/$model.safetensors ! \
    videoconvert ! jpegenc quality=90 ! avimux ! filesink location=$out/megamind-$model.avi
done
echo "== outputs in $out/ (pipeline logs: $out/*.log)"
