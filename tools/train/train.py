#!/usr/bin/python3
"""Train one of the shipped models on real data and write it to models/.

    /usr/bin/python3 tools/train/train.py NAME [--seed S] [--steps N]

NAME is one of the RECIPES below.  Writes models/NAME.safetensors (through
the export tool) and its model card models/NAME.md: data, command, seed,
final training loss and metrics on the held-out files (tools/train/common.py
says which files and how the inputs are degraded), measured by running the
written file with the built `convtranspose apply` (build first:
tools/run.sh build).

Each model is a single ConvTranspose layer, so training is a small linear
least-squares problem, solved by L-BFGS on a training set of crops drawn
once: a few CPU minutes, one thread, and reproducible from the seed
(torch.manual_seed for the initial weights, a numpy Generator with the same
seed for the crops).
"""

import argparse
import inspect
import os
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
from ctexport.safetensors_io import load_file  # noqa: E402

F = torch.nn.functional

# Audio samples (at the high rate) left out of the loss and the SNR at each
# end of a segment, where the 128-tap kernel lacks context.
AUDIO_MARGIN = 256
# Pixels left out of the loss at each border of a training crop.
PIXEL_MARGIN = 8


def frames_by_taps(layer, x):
    """The output frames of the 3d `layer` on x [N, C, T, H, W], one at a
    time ([N, Cout, H', W']), each a sum of 2d transposed convolutions, one
    per temporal tap (dilation 1 along T).  The same numbers as layer(x),
    but fast on the CPU (torch's 3d transposed convolution is a slow path)
    and light on memory for long clips."""
    k_t, s_t, p_t = layer.kernel_size[0], layer.stride[0], layer.padding[0]
    t_in = x.shape[2]
    t_out = (t_in - 1) * s_t - 2 * p_t + k_t + layer.output_padding[0]

    def tap_frame(i, tap):
        return F.conv_transpose2d(x[:, :, i], layer.weight[:, :, tap],
                                  stride=layer.stride[1:],
                                  padding=layer.padding[1:],
                                  output_padding=layer.output_padding[1:],
                                  groups=layer.groups)

    zero = torch.zeros_like(tap_frame(0, 0))  # where no input reaches
    for j in range(t_out):
        frame = zero
        for tap in range(k_t):
            i, rest = divmod(j + p_t - tap, s_t)
            if rest == 0 and 0 <= i < t_in:
                frame = frame + tap_frame(i, tap)
        if layer.bias is not None:
            frame = frame + layer.bias.view(1, -1, 1, 1)
        yield frame


def crop_loss(out, y, margin):
    """MSE over everything but `margin` positions at each end of each axis."""
    index = (Ellipsis,) + tuple(slice(m, -m if m else None) for m in margin)
    return F.mse_loss(out[index], y[index])


class Recipe:
    """What every recipe has: the loss leaves `margin` positions out at each
    end of each spatial axis (a tuple, one per axis)."""

    init_text = "PyTorch's default initialisation from the seed"

    def initialise(self, layer):
        """Set the starting point of training (default: keep torch's)."""

    def forward(self, layer, x):
        return layer(x)

    def loss(self, out, y):
        return crop_loss(out, y, self.margin)

    def shipped(self, layer):
        """The layer to ship for the trained `layer`."""
        return layer


class AudioUp2x(Recipe):
    """1d 2x audio upsampler: one 128-tap filter, trained on mono signals and
    shipped for stereo as groups=2 (the same filter on each channel)."""

    name = "audio-up2x"
    steps, batch, length = 300, 64, 8192
    item = "segments of 8192 input samples"
    values = "samples in [-1, 1]"
    data_text = (
        f"Training: the first {common.MUSIC_SECONDS} s of "
        f"{len(common.TRAIN_MUSIC)} tracks of wesnoth-1.16-music "
        f"({', '.join(common.TRAIN_MUSIC)}; 44.1 kHz stereo, each channel a "
        f"signal) and {len(common.TRAIN_SPEECH)} speech prompts of alsa-utils "
        f"({', '.join(common.TRAIN_SPEECH)}; 48 kHz mono).  Input: the "
        "signal decimated 2x (`decimate2` in tools/train/common.py: 127-tap "
        "Kaiser-windowed sinc lowpass at a quarter of the rate, zero phase, "
        "then every other sample); target: the signal itself.  Held out: "
        f"the first {common.HELD_OUT_SECONDS} s of {common.HELD_OUT_MUSIC} "
        f"(music, stereo) and {common.HELD_OUT_SPEECH} (speech, mono).")
    margin = (AUDIO_MARGIN,)

    def make_layer(self):
        return torch.nn.ConvTranspose1d(1, 1, 128, stride=2, padding=63,
                                        bias=False)

    def load(self):
        self.high = common.training_audio()
        self.low = [common.decimate2(x[None])[0] for x in self.high]
        sizes = np.array([len(x) for x in self.low], np.float64)
        self.weights = sizes / sizes.sum()

    def sample(self, rng):
        xs, ys = [], []
        for _ in range(self.batch):
            k = rng.choice(len(self.low), p=self.weights)
            i = int(rng.integers(0, len(self.low[k]) - self.length))
            xs.append(self.low[k][i:i + self.length])
            ys.append(self.high[k][2 * i:2 * i + 2 * self.length])
        return (torch.from_numpy(np.stack(xs))[:, None],
                torch.from_numpy(np.stack(ys))[:, None])

    def evaluate(self, apply):
        rows = []
        for label, rate, x in common.held_out_audio():
            # The shipped layer is stereo: a mono clip goes in as dual mono.
            low = common.decimate2(np.repeat(x, 2 // x.shape[0], axis=0))
            y = apply(low)[:x.shape[0], :x.shape[1]]
            rows.append((f"SNR, held-out {label} ({rate} Hz, "
                         f"{x.shape[0]} ch, {x.shape[1] / rate:.1f} s)",
                         f"{common.snr_db(x, y, AUDIO_MARGIN):.2f} dB"))
        return rows

    def shipped(self, layer):
        stereo = torch.nn.ConvTranspose1d(2, 2, 128, stride=2, padding=63,
                                          groups=2, bias=False)
        with torch.no_grad():
            stereo.weight.copy_(layer.weight.repeat(2, 1, 1))
        return stereo


class VideoRecipe(Recipe):
    """Shared by the video recipes: the held-out clip, and running a model
    file on frames."""

    held_out_text = (f"every frame of {common.HELD_OUT_VIDEO} (opencv-doc, "
                     "720x528, 23.976 fps, 270 frames)")

    def held_out(self):
        return common.even(common.read_video(
            os.path.join(common.VIDEO_DIR, common.HELD_OUT_VIDEO)))

    @staticmethod
    def run_frames(apply, frames):
        """uint8 output frames of a 2d layer on uint8 frames [T, H, W, 3]."""
        return common.to_uint8(apply(common.to_tensor(frames).numpy()))

    @staticmethod
    def run_clip(apply, frames):
        """uint8 output frames of a 3d layer on uint8 frames [T, H, W, 3]."""
        x = common.to_tensor(frames).transpose(0, 1).numpy()
        return common.to_uint8(np.moveaxis(apply(x), 0, 1))


class Video3dRecipe(VideoRecipe):
    """Shared by the 3d recipes: training runs the layer by frames_by_taps."""

    def forward(self, layer, x):
        """layer(x), computed by frames_by_taps."""
        return torch.stack(list(frames_by_taps(layer, x)), dim=2)


class VideoSR2x(VideoRecipe):
    """2d RGB 2x super-resolution, 12x12 kernel (6x6 input pixels reach each
    output pixel, as many as Lanczos-3) mixing the colours."""

    name = "video-sr2x"
    steps, batch, crop = 150, 192, 48
    init_text = ("bilinear interpolation: each channel to itself, taps "
                 "[0.25, 0.75, 0.75, 0.25] along each axis at the centre")
    item = "crops of 48x48 input pixels"
    values = "pixel values in [0, 1]"
    margin = (PIXEL_MARGIN, PIXEL_MARGIN)
    data_text = (
        "Training: the photographs "
        f"{', '.join(common.TRAIN_PHOTOS)} of python3-skimage, every 20th "
        "frame of vtest.avi and every 4th of tree.avi (opencv-doc).  "
        "Input: 2x2 area downscaling rounded to 8 bits (`downscale2` in "
        "tools/train/common.py); target: the original.  Held out: "
        f"{VideoRecipe.held_out_text} and the photograph "
        f"{common.HELD_OUT_PHOTO}.")

    def make_layer(self):
        return torch.nn.ConvTranspose2d(3, 3, 12, stride=2, padding=5)

    def initialise(self, layer):
        taps = torch.zeros(12)
        taps[4:8] = torch.tensor([0.25, 0.75, 0.75, 0.25])
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.zero_()
            for c in range(3):
                layer.weight[c, c] = torch.outer(taps, taps)

    def load(self):
        images = [common.read_photo(n) for n in common.TRAIN_PHOTOS]
        for name, step in (("vtest.avi", 20), ("tree.avi", 4)):
            images += list(common.read_video(
                os.path.join(common.VIDEO_DIR, name), step=step))
        self.high = [common.even(im) for im in images]
        self.low = [common.downscale2(im) for im in self.high]

    def sample(self, rng):
        c = self.crop
        xs, ys = [], []
        for _ in range(self.batch):
            k = int(rng.integers(len(self.low)))
            i = int(rng.integers(self.low[k].shape[0] - c + 1))
            j = int(rng.integers(self.low[k].shape[1] - c + 1))
            xs.append(self.low[k][i:i + c, j:j + c])
            ys.append(self.high[k][2 * i:2 * i + 2 * c, 2 * j:2 * j + 2 * c])
        return common.to_tensor(np.stack(xs)), common.to_tensor(np.stack(ys))

    def evaluate(self, apply):
        frames = self.held_out()
        photo = common.even(common.read_photo(common.HELD_OUT_PHOTO))
        rows = []
        for label, ref in ((f"{common.HELD_OUT_VIDEO}, {len(frames)} frames",
                            frames), (common.HELD_OUT_PHOTO, photo[None])):
            out = self.run_frames(apply, common.downscale2(ref))
            rows.append((f"PSNR, held-out {label}",
                         f"{common.psnr_db(ref, out):.2f} dB"))
        return rows


class VideoSR2x3d(Video3dRecipe):
    """3d RGB 2x spatial super-resolution using the previous and next frame."""

    name = "video-sr2x-3d"
    steps, batch, frames, crop = 100, 96, 3, 32
    init_text = ("the 2d model models/video-sr2x.safetensors as the middle "
                 "temporal tap, zero elsewhere (train video-sr2x first)")
    item = "clips of 3 frames of 32x32 input pixels"
    values = "pixel values in [0, 1]"
    margin = (1, PIXEL_MARGIN, PIXEL_MARGIN)
    data_text = (
        "Training: every frame of vtest.avi and tree.avi (opencv-doc), clips "
        "of 3 frames.  Input: each frame downscaled 2x (2x2 area, rounded to "
        "8 bits: `downscale2` in tools/train/common.py); target: the "
        "original middle frame.  Held out: "
        f"{VideoRecipe.held_out_text}.")

    def make_layer(self):
        return torch.nn.ConvTranspose3d(3, 3, (3, 12, 12), stride=(1, 2, 2),
                                        padding=(1, 5, 5))

    def initialise(self, layer):
        tensors, _ = load_file(os.path.join(common.ROOT, "models",
                                            "video-sr2x.safetensors"))
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[:, :, 1] = torch.from_numpy(tensors["weight"].copy())
            layer.bias.copy_(torch.from_numpy(tensors["bias"].copy()))

    def load(self):
        self.high = [common.even(common.read_video(
            os.path.join(common.VIDEO_DIR, n))) for n in common.TRAIN_VIDEOS]
        self.low = [common.downscale2(v) for v in self.high]

    def sample(self, rng):
        c, n = self.crop, self.frames
        xs, ys = [], []
        for _ in range(self.batch):
            k = int(rng.integers(len(self.low)))
            t = int(rng.integers(self.low[k].shape[0] - n + 1))
            i = int(rng.integers(self.low[k].shape[1] - c + 1))
            j = int(rng.integers(self.low[k].shape[2] - c + 1))
            xs.append(self.low[k][t:t + n, i:i + c, j:j + c])
            ys.append(self.high[k][t:t + n, 2 * i:2 * i + 2 * c,
                                   2 * j:2 * j + 2 * c])
        # [N, T, 3, H, W] -> [N, 3, T, H, W]
        return (common.to_tensor(np.stack(xs)).transpose(1, 2),
                common.to_tensor(np.stack(ys)).transpose(1, 2))

    def evaluate(self, apply):
        frames = self.held_out()
        out = self.run_clip(apply, common.downscale2(frames))
        return [(f"PSNR, held-out {common.HELD_OUT_VIDEO}, {len(frames)} "
                 "frames", f"{common.psnr_db(frames, out):.2f} dB")]


class VideoFps2x(Video3dRecipe):
    """3d frame-rate doubler: even outputs from one input frame, odd ones
    from the two around them (kernel 3 along time, output_padding 1), a
    5x5 spatial neighbourhood, each colour channel on its own (groups=3)."""

    name = "video-fps2x"
    steps, batch, frames, crop = 150, 128, 4, 24
    item = "clips of 4 input frames (8 target frames) of 24x24 pixels"
    init_text = ("linear frame blending: temporal taps [0.5, 1, 0.5] at the "
                 "spatial centre, zero elsewhere")
    values = "pixel values in [0, 1]"
    data_text = (
        "Training: every frame of vtest.avi (10 fps) and tree.avi (15 fps) "
        "of opencv-doc, clips of 8 frames cropped at full resolution.  "
        "Input: every other frame (`halve_rate` in tools/train/common.py); "
        "target: every frame (the loss skips the last, which has no next "
        "input frame).  Held "
        f"out: {VideoRecipe.held_out_text}, 23.976 -> 11.988 -> 23.976 fps.")

    def make_layer(self):
        return torch.nn.ConvTranspose3d(3, 3, (3, 5, 5), stride=(2, 1, 1),
                                        padding=(1, 2, 2),
                                        output_padding=(1, 0, 0), groups=3)

    def initialise(self, layer):
        with torch.no_grad():
            layer.weight.zero_()
            layer.bias.zero_()
            layer.weight[:, 0, :, 2, 2] = torch.tensor([0.5, 1.0, 0.5])

    def load(self):
        self.high = [common.read_video(os.path.join(common.VIDEO_DIR, n))
                     for n in common.TRAIN_VIDEOS]

    def sample(self, rng):
        c, n = self.crop, 2 * self.frames
        ys = []
        for _ in range(self.batch):
            k = int(rng.integers(len(self.high)))
            t = int(rng.integers(self.high[k].shape[0] - n + 1))
            i = int(rng.integers(self.high[k].shape[1] - c + 1))
            j = int(rng.integers(self.high[k].shape[2] - c + 1))
            ys.append(self.high[k][t:t + n, i:i + c, j:j + c])
        y = common.to_tensor(np.stack(ys)).transpose(1, 2)
        return y[:, :, 0::2], y

    def loss(self, out, y):
        m = 2  # the spatial kernel's reach
        return F.mse_loss(out[:, :, :-1, m:-m, m:-m], y[:, :, :-1, m:-m, m:-m])

    def evaluate(self, apply):
        frames = self.held_out()
        out = self.run_clip(apply, common.halve_rate(frames))
        n = min(len(out), len(frames))
        return [(f"PSNR, held-out {common.HELD_OUT_VIDEO}, all {n} frames",
                 f"{common.psnr_db(frames[:n], out[:n]):.2f} dB"),
                (f"PSNR, held-out {common.HELD_OUT_VIDEO}, the {n // 2} new "
                 "(odd) frames",
                 f"{common.psnr_db(frames[1:n:2], out[1:n:2]):.2f} dB")]


RECIPES = {r.name: r for r in (AudioUp2x, VideoSR2x, VideoSR2x3d, VideoFps2x)}


def train(recipe, seed, steps):
    """Fit a fresh layer to a training set drawn once from the seed: L-BFGS
    (strong Wolfe line search) on the MSE, which converges on these
    ill-conditioned linear problems (real signals have most of their energy
    at low frequencies) where SGD-like methods crawl.  Returns (layer,
    final loss on the training set)."""
    torch.manual_seed(seed)
    layer = recipe.make_layer()
    recipe.initialise(layer)
    x, y = recipe.sample(np.random.default_rng(seed))
    opt = torch.optim.LBFGS(layer.parameters(), lr=1, max_iter=steps,
                            history_size=50, line_search_fn="strong_wolfe",
                            tolerance_grad=0, tolerance_change=0)
    evaluations = 0

    def closure():
        nonlocal evaluations
        opt.zero_grad()
        loss = recipe.loss(recipe.forward(layer, x), y)
        loss.backward()
        if evaluations % 50 == 0:
            print(f"evaluation {evaluations:4d}  loss {loss.item():.4e}",
                  flush=True)
        evaluations += 1
        return loss

    opt.step(closure)
    with torch.no_grad():
        return layer, recipe.loss(recipe.forward(layer, x), y).item()


def write_card(recipe, layer, base, command, seed, steps, loss, rows, seconds):
    """Write the model card base.md for the model file base.safetensors."""
    size = os.path.getsize(base + ".safetensors")
    hyper = ", ".join(f"{k} {tuple(getattr(layer, k))}" for k in
                      ("kernel_size", "stride", "padding", "output_padding"))
    lines = [
        f"# {recipe.name}",
        "",
        inspect.cleandoc(recipe.__doc__),
        "",
        f"- Layer: `{type(layer).__name__}({layer.in_channels}, "
        f"{layer.out_channels})`, {hyper}, groups {layer.groups}, "
        f"bias {'yes' if layer.bias is not None else 'no'}; "
        f"{sum(p.numel() for p in layer.parameters())} parameters, "
        f"file {size} bytes.",
        f"- Data: {recipe.data_text}",
        f"- Command: `{command}`",
        f"- Start: {recipe.init_text}.",
        f"- Seed: {seed}; training set: {recipe.batch} {recipe.item} drawn "
        f"with the seed; {steps} iterations of L-BFGS (strong Wolfe line "
        f"search, history 50); one CPU thread, {seconds:.0f} CPU seconds "
        "including decoding the data.",
        f"- Final training loss (MSE of {recipe.values}, over the training "
        f"set): {loss:.4e}",
        "",
        "Held-out metrics (this model file run by the project's "
        "`convtranspose apply` on the held-out files; "
        "[docs/quality.md](../docs/quality.md) measures it through "
        "GStreamer against GStreamer's own elements):",
        "",
        "| metric | value |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
    ]
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines))


def cli_runner(cli, model):
    """A function applying `model` with `convtranspose apply` to a float32
    array ([C, S...] or batched [N, C, S...]) and returning the output."""

    def apply(x):
        with tempfile.TemporaryDirectory() as tmp:
            inp, out = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")
            np.save(inp, np.ascontiguousarray(x, np.float32))
            subprocess.run([cli, "apply", model, inp, out], check=True,
                           stdout=subprocess.DEVNULL)
            return np.load(out)

    return apply


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, help="default: the recipe's")
    parser.add_argument("--out", default=os.path.join(common.ROOT, "models"),
                        help="directory for NAME.safetensors and NAME.md")
    parser.add_argument("--cli", default=os.path.join(
        common.ROOT, "build", "tools", "convtranspose"),
        help="the convtranspose tool that measures the held-out metrics")
    args = parser.parse_args()
    torch.set_num_threads(1)
    common.ensure_packages()
    recipe = RECIPES[args.name]()
    steps = args.steps or recipe.steps
    command = ("/usr/bin/python3 tools/train/train.py " + args.name
               + f" --seed {args.seed}"
               + (f" --steps {args.steps}" if args.steps else ""))
    start = time.process_time()
    recipe.load()
    layer, loss = train(recipe, args.seed, steps)
    seconds = time.process_time() - start
    shipped = recipe.shipped(layer)
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, args.name)
    export_layer(shipped, base + ".safetensors")
    rows = recipe.evaluate(cli_runner(args.cli, base + ".safetensors"))
    for k, v in rows:
        print(f"{k}: {v}")
    write_card(recipe, shipped, base, command, args.seed, steps, loss,
               rows, seconds)
    print(f"wrote {base}.safetensors and {base}.md")


if __name__ == "__main__":
    main()
