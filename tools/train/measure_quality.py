#!/usr/bin/python3
"""Measure the shipped models against GStreamer's classic elements.

    /usr/bin/python3 tools/train/measure_quality.py [--build DIR]

On the held-out files of tools/train/common.py, degraded as there, every
method runs as a real gst-launch-1.0 pipeline (the plugin taken from the
build directory through GST_PLUGIN_PATH): the learned models in
convtranspose1d/2d/3d against audioresample, videoscale and videorate.
Writes docs/quality.md (tables, the exact pipelines) and its pictures in
docs/img/.  Needs a build (tools/run.sh build); installs what it reads
with apt-get when missing.
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
import common  # noqa: E402
from ctexport.export import export_layer  # noqa: E402
from train import AUDIO_MARGIN  # noqa: E402

MODELS = "models"  # pipelines run from the repository root
DOC = os.path.join(common.ROOT, "docs", "quality.md")
IMG = os.path.join(common.ROOT, "docs", "img")

# The picture of one held-out frame: frame index, then the crop's top row,
# left column and size in output pixels (even, so the input crop aligns).
CROP_FRAME, CROP_TOP, CROP_LEFT, CROP_SIZE = 200, 140, 300, 120
# The spectrograms: seconds of the held-out music shown, from START.
SPECTRUM_START, SPECTRUM_SECONDS = 10.0, 5.0


class Gst:
    """Runs gst-launch-1.0 with the plugin of a build directory."""

    def __init__(self, build):
        self.env = dict(os.environ, GST_PLUGIN_PATH=os.path.abspath(build))

    def run(self, pipeline):
        """Run `pipeline` (gst-launch syntax); returns the wall seconds."""
        start = time.monotonic()
        subprocess.run(["gst-launch-1.0", "-q", *shlex.split(pipeline)],
                       check=True, env=self.env, cwd=common.ROOT,
                       stdout=subprocess.DEVNULL)
        return time.monotonic() - start


def best_lag(ref, out, margin, span=8):
    """The shift of `out` (within +-span samples) that maximises its SNR."""
    return max(range(-span, span + 1), key=lambda lag: common.snr_db(
        ref, np.roll(out, lag, axis=1), margin))


def measure_audio(gst, tmp):
    """SNR table rows and the signals of the spectrogram picture."""
    methods = [
        ("`audioresample quality=4`", "audioresample quality=4 ! audio/x-raw,rate={rate}"),
        ("`audioresample quality=10`", "audioresample quality=10 ! audio/x-raw,rate={rate}"),
        ("`convtranspose1d` audio-up2x (learned)",
         f"convtranspose1d model={MODELS}/audio-up2x.safetensors"),
    ]
    results = {name: {} for name, _ in methods}
    pipelines, pictures = [], {}
    for label, rate, x in common.held_out_audio():
        # Dual mono for the mono clip: every method gets the same 2 channels.
        x2 = np.repeat(x, 2 // x.shape[0], axis=0)
        low = os.path.join(tmp, "low.wav")
        common.write_wav(low, rate // 2, common.decimate2(x2))
        for name, element in methods:
            out = os.path.join(tmp, "out.wav")
            pipeline = (f"filesrc location={low} ! wavparse ! audioconvert ! "
                        f"{element.format(rate=rate)} ! audioconvert ! "
                        "audio/x-raw,format=F32LE ! wavenc ! "
                        f"filesink location={out}")
            gst.run(pipeline)
            y = common.read_wav(out)[1][:, :x2.shape[1]]
            y = np.pad(y, ((0, 0), (0, x2.shape[1] - y.shape[1])))
            results[name][label] = (common.snr_db(x2, y, AUDIO_MARGIN),
                                    best_lag(x2, y, AUDIO_MARGIN))
            if label == "music":
                pipelines.append(pipeline.replace(tmp + "/", ""))
                pictures[name] = (rate, y[0])
        if label == "music":
            pictures["input"] = (rate // 2, common.decimate2(x2)[0])
            pictures["original"] = (rate, x2[0])
    return results, pipelines, pictures


def spectrogram_png(pictures, path):
    """Spectrograms of the held-out music excerpt, one panel per signal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("input: decimated 2x (22.05 kHz)", pictures["input"]),
              ("audioresample quality=10", pictures["`audioresample quality=10`"]),
              ("convtranspose1d audio-up2x (learned)",
               pictures["`convtranspose1d` audio-up2x (learned)"]),
              ("original (44.1 kHz)", pictures["original"])]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 8), sharex=True)
    for ax, (title, (rate, y)) in zip(axes, panels):
        seg = y[int(SPECTRUM_START * rate):
                int((SPECTRUM_START + SPECTRUM_SECONDS) * rate)]
        ax.specgram(seg, NFFT=1024, Fs=rate, noverlap=512, cmap="magma",
                    vmin=-150, vmax=-30)
        ax.set_ylim(0, 22050)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("Hz", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel(f"seconds from {SPECTRUM_START:.0f} s of "
                        f"{common.HELD_OUT_MUSIC}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def raw_source(path, width, height, rate):
    """Pipeline head reading raw RGB frames from `path`."""
    return (f"filesrc location={path} ! rawvideoparse format=rgb "
            f"width={width} height={height} framerate={rate}")


def run_video(gst, tmp, source, element, caps, width, height):
    """Run source ! element ! video/x-raw,format=RGB<caps> ! filesink;
    returns (uint8 frames, wall seconds, the pipeline as documented)."""
    out = os.path.join(tmp, "out.rgb")
    pipeline = (f"{source} ! {element} ! video/x-raw,format=RGB{caps} ! "
                f"filesink location={out}")
    wall = gst.run(pipeline)
    frames = np.fromfile(out, np.uint8).reshape(-1, height, width, 3)
    return frames, wall, pipeline.replace(tmp + "/", "")


def measure_sr(gst, tmp):
    """PSNR rows of 2x super-resolution and the frames of the crop picture."""
    frames = common.even(common.read_video(
        os.path.join(common.VIDEO_DIR, common.HELD_OUT_VIDEO)))
    photo = common.even(common.read_photo(common.HELD_OUT_PHOTO))[None]
    methods = [(f"`videoscale method={m}`", f"videoscale method={m}")
               for m in ("nearest-neighbour", "bilinear", "lanczos")]
    methods += [
        ("`convtranspose2d` video-sr2x (learned)",
         f"convtranspose2d model={MODELS}/video-sr2x.safetensors"),
        ("`convtranspose3d` video-sr2x-3d (learned)",
         f"convtranspose3d model={MODELS}/video-sr2x-3d.safetensors"),
    ]
    rows, pipelines, crops = [], [], {}
    for name, element in methods:
        row = [name]
        for label, ref, rate in (("video", frames, "24000/1001"),
                                 ("photo", photo, "1/1")):
            if label == "photo" and "3d" in name:
                row.append("—")
                continue
            h, w = ref.shape[1:3]
            low = common.downscale2(ref)
            src = os.path.join(tmp, "low.rgb")
            low.tofile(src)
            out, wall, pipeline = run_video(
                gst, tmp, raw_source(src, w // 2, h // 2, rate), element,
                f",width={w},height={h}", w, h)
            if len(out) != len(ref):
                raise RuntimeError(f"{name}: {len(out)} frames for {len(ref)}")
            row.append(f"{common.psnr_db(ref, out):.2f}")
            if label == "video":
                row.append(f"{len(ref) / wall:.0f}")
                pipelines.append(pipeline)
                crops[name] = out[CROP_FRAME]
                crops["input"] = low[CROP_FRAME]
                crops["original"] = ref[CROP_FRAME]
        rows.append(row)
    return rows, pipelines, crops


def crop_png(crops, path):
    """The crop of one held-out frame by each method, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, l, n = CROP_TOP, CROP_LEFT, CROP_SIZE
    panels = [
        ("input (half size)",
         np.repeat(np.repeat(crops["input"][t // 2:(t + n) // 2,
                                            l // 2:(l + n) // 2], 2, 0), 2, 1)),
        ("videoscale bilinear",
         crops["`videoscale method=bilinear`"][t:t + n, l:l + n]),
        ("learned 2d", crops["`convtranspose2d` video-sr2x (learned)"]
         [t:t + n, l:l + n]),
        ("learned 3d", crops["`convtranspose3d` video-sr2x-3d (learned)"]
         [t:t + n, l:l + n]),
        ("original", crops["original"][t:t + n, l:l + n]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.5))
    for ax, (title, img) in zip(axes, panels):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def blend_model(path):
    """Linear frame blending as a fixed ConvTranspose3d: each channel on its
    own (groups=3), temporal taps [0.5, 1, 0.5], stride (2,1,1), padding
    (1,0,0), output_padding (1,0,0): output 2m = frame m, output 2m+1 =
    (frame m + frame m+1) / 2 (the last one: frame m / 2)."""
    layer = torch.nn.ConvTranspose3d(3, 3, (3, 1, 1), stride=(2, 1, 1),
                                     padding=(1, 0, 0),
                                     output_padding=(1, 0, 0), groups=3,
                                     bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, 1.0, 0.5]).view(1, 1, 3, 1, 1))
    export_layer(layer, path)


def measure_fps(gst, tmp):
    """PSNR rows of frame-rate doubling."""
    frames = common.read_video(os.path.join(common.VIDEO_DIR,
                                            common.HELD_OUT_VIDEO))
    h, w = frames.shape[1:3]
    src = os.path.join(tmp, "half.rgb")
    common.halve_rate(frames).tofile(src)
    blend = os.path.join(tmp, "blend.safetensors")
    blend_model(blend)
    methods = [
        ("repetition: `videorate`", "videorate", ",framerate=24000/1001"),
        ("blending: `convtranspose3d` with fixed taps [0.5, 1, 0.5]",
         f"convtranspose3d model={blend}", ""),
        ("`convtranspose3d` video-fps2x (learned)",
         f"convtranspose3d model={MODELS}/video-fps2x.safetensors", ""),
    ]
    rows, pipelines = [], []
    for name, element, caps in methods:
        out, wall, pipeline = run_video(
            gst, tmp, raw_source(src, w, h, "12000/1001"), element, caps, w, h)
        n = min(len(out), len(frames))
        rows.append([name, f"{common.psnr_db(frames[:n], out[:n]):.2f}",
                     f"{common.psnr_db(frames[1:n:2], out[1:n:2]):.2f}",
                     f"{len(out)}", f"{len(out) / wall:.0f}"])
        pipelines.append(pipeline)
    return rows, pipelines, len(frames)


def table(header, rows):
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def best(rows, column):
    """The name (first cell) of the row with the highest number in `column`."""
    scored = [r for r in rows if r[column] != "—"]
    return max(scored, key=lambda r: float(r[column]))[0]


def write_doc(audio, sr, fps):
    results, audio_pipes, _ = audio
    sr_rows, sr_pipes, _ = sr
    fps_rows, fps_pipes, n_frames = fps
    audio_rows = []
    notes = []
    for name, by_clip in results.items():
        audio_rows.append([name] + [f"{by_clip[c][0]:.2f}"
                                    for c in ("music", "speech")])
        for clip, (_, lag) in by_clip.items():
            if lag:
                notes.append(f"{name} on {clip} would score higher shifted by "
                             f"{lag} samples.")
    lines = [
        "# Quality: learned models against GStreamer's classic elements",
        "",
        "Made by `/usr/bin/python3 tools/train/measure_quality.py` (after "
        "`tools/run.sh build`): every number below comes from real "
        "`gst-launch-1.0` pipelines run on held-out files that no model saw "
        "in training (see [tools/train/common.py](../tools/train/common.py) "
        "and the model cards in [models/](../models)). Higher is better.",
        "",
        "## Audio: 2x upsampling",
        "",
        f"Held out: the first {common.HELD_OUT_SECONDS} s of "
        f"`{common.HELD_OUT_MUSIC}` (wesnoth-1.16-music, 44.1 kHz stereo) "
        f"and `{common.HELD_OUT_SPEECH}` (alsa-utils, 48 kHz mono, fed as "
        "dual mono so every method gets the same 2 channels). Input: the clip "
        "decimated 2x (127-tap Kaiser-windowed sinc lowpass at a quarter of "
        "the rate, zero phase, then every other sample), as a float WAV. "
        "Score: SNR in dB of the output against the original, leaving out "
        f"{AUDIO_MARGIN} samples at each end.",
        "",
        *table(["method", "music SNR (dB)", "speech SNR (dB)"], audio_rows),
        "",
        f"Best on music: {best(audio_rows, 1)}; on speech: "
        f"{best(audio_rows, 2)}. "
        + (" ".join(notes) or "Every output is best aligned with the "
           "original as it is (no shift within 8 samples scores higher)."),
        "",
        "Pipelines (the music clip):",
        "",
        "```",
        *audio_pipes,
        "```",
        "",
        "![Spectrograms](img/spectrogram-music.png)",
        "",
        f"Spectrograms of {SPECTRUM_SECONDS:.0f} s of the held-out music "
        "(left channel). The decimated input has nothing above 11 kHz, and "
        "no linear upsampler brings that back. audioresample suppresses the "
        "mirror image of the band above 11 kHz more completely; the learned "
        "filter leaves a faint image there (compare its SNR in the table).",
        "",
        "## Video: 2x super-resolution",
        "",
        f"Held out: every frame of `{common.HELD_OUT_VIDEO}` (opencv-doc, "
        "720x528, 270 frames) and the photograph "
        f"`{common.HELD_OUT_PHOTO}` (python3-skimage, 600x400). Input: 2x2 "
        "area downscaling rounded to 8 bits, as raw RGB. Score: PSNR in dB "
        "over every pixel and channel (8-bit RGB); speed: output frames per "
        "second of wall time of the whole pipeline (2 cores, shared).",
        "",
        *table(["method", "video PSNR (dB)", "video frames/s",
                "photo PSNR (dB)"], sr_rows),
        "",
        f"Best on the video: {best(sr_rows, 1)}; on the photo: "
        f"{best(sr_rows, 3)}.",
        "",
        "Pipelines (the video):",
        "",
        "```",
        *sr_pipes,
        "```",
        "",
        "![Crop](img/crop-sr2x.png)",
        "",
        f"A crop of held-out frame {CROP_FRAME}: the input (shown at the "
        "output size), videoscale bilinear, the learned 2d and 3d models, "
        "and the original.",
        "",
        "## Video: frame-rate doubling",
        "",
        f"Held out: every frame of `{common.HELD_OUT_VIDEO}` ({n_frames} "
        "frames, 23.976 fps). Input: every other frame (11.988 fps), as raw "
        "RGB. Output: 23.976 fps, compared frame by frame with the original; "
        "the \"new frames\" column scores only the odd frames, the ones that "
        "were dropped.",
        "",
        "GStreamer's base and good plugins have no frame-blending element "
        "(`videorate` only repeats or drops frames). Blending is therefore "
        "run through `convtranspose3d` itself with a fixed, hand-set layer: "
        "each channel on its own, temporal taps [0.5, 1, 0.5], stride "
        "(2,1,1), padding (1,0,0), output_padding (1,0,0), so even outputs "
        "are the input frames and odd outputs the mean of the two input "
        "frames around them: exactly classic linear blending (written by "
        "`blend_model` in the script).",
        "",
        *table(["method", "all frames PSNR (dB)", "new frames PSNR (dB)",
                "frames out", "frames/s"], fps_rows),
        "",
        f"Best on the new frames: {best(fps_rows, 2)}.",
        *([] if "learned" in best(fps_rows, 2) else [
            "",
            "The learned doubler does not beat plain blending here. It was "
            "fitted on 10 and 15 fps footage (vtest.avi, tree.avi), where "
            "things move further between frames than in this 24 fps clip; "
            "a linear filter cannot follow motion, so the best one for "
            "larger motion blurs more than this clip needs."]),
        "",
        "Pipelines:",
        "",
        "```",
        *fps_pipes,
        "```",
        "",
    ]
    with open(DOC, "w") as f:
        f.write("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(common.ROOT, "build"))
    args = parser.parse_args()
    common.ensure_packages(common.PACKAGES + ["python3-matplotlib"])
    gst = Gst(args.build)
    os.makedirs(IMG, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        audio = measure_audio(gst, tmp)
        spectrogram_png(audio[2], os.path.join(IMG, "spectrogram-music.png"))
        print("audio done", flush=True)
        sr = measure_sr(gst, tmp)
        crop_png(sr[2], os.path.join(IMG, "crop-sr2x.png"))
        print("super-resolution done", flush=True)
        fps = measure_fps(gst, tmp)
        print("frame rate done", flush=True)
    write_doc(audio, sr, fps)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
