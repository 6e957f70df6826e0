#!/usr/bin/python3
"""Make the demo's input clips in samples/ from held-out material.

    /usr/bin/python3 tools/train/make_samples.py

  * samples/music-22k.flac: 6 s of the held-out music (from 10 s of
    traveling_minstrels.ogg, wesnoth-1.16-music), decimated 2x to
    22.05 kHz stereo as the audio model's training input was, 16-bit FLAC;
  * samples/megamind-360x264.avi: 2 s (48 frames from frame 30) of the
    held-out Megamind.avi (opencv-doc), 2x2 area downscaled to 360x264 as
    the video models' training input was, Motion-JPEG (quality 80) in AVI
    at 23.976 fps.

Both decode with GStreamer's base and good plugins (flacdec, avidemux,
jpegdec).  Encoding runs through gst-launch-1.0 as well.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

SAMPLES = os.path.join(common.ROOT, "samples")
MUSIC_START, MUSIC_SECONDS = 10, 6
VIDEO_START, VIDEO_FRAMES = 30, 48


def gst(*pipeline):
    subprocess.run(["gst-launch-1.0", "-q", *pipeline], check=True,
                   stdout=subprocess.DEVNULL)


def main():
    common.ensure_packages()
    with tempfile.TemporaryDirectory() as tmp:
        rate, x = common.decode_audio(os.path.join(common.MUSIC_DIR,
                                                   common.HELD_OUT_MUSIC))
        x = x[:, MUSIC_START * rate:(MUSIC_START + MUSIC_SECONDS) * rate]
        wav = os.path.join(tmp, "low.wav")
        common.write_wav(wav, rate // 2, common.decimate2(x))
        flac = os.path.join(SAMPLES, "music-22k.flac")
        gst("filesrc", f"location={wav}", "!", "wavparse", "!", "audioconvert",
            "!", "audio/x-raw,format=S16LE", "!", "flacenc", "!", "filesink",
            f"location={flac}")

        frames = common.even(common.read_video(
            os.path.join(common.VIDEO_DIR, common.HELD_OUT_VIDEO)))
        low = common.downscale2(frames[VIDEO_START:VIDEO_START + VIDEO_FRAMES])
        raw = os.path.join(tmp, "low.rgb")
        np.ascontiguousarray(low).tofile(raw)
        h, w = low.shape[1:3]
        avi = os.path.join(SAMPLES, f"megamind-{w}x{h}.avi")
        gst("filesrc", f"location={raw}", "!", "rawvideoparse", "format=rgb",
            f"width={w}", f"height={h}", "framerate=24000/1001", "!",
            "videoconvert", "!", "jpegenc", "quality=80", "!", "avimux", "!",
            "filesink", f"location={avi}")
    for path in (flac, avi):
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
