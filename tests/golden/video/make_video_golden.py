#!/usr/bin/python3
"""Golden data for the video element tests (tests/elements/test-video.c):
PyTorch's own ConvTranspose2d / ConvTranspose3d output on a 640x360 RGB
stream, quantised the way the elements write 8-bit video.

Per case NAME this writes

    NAME.safetensors      the layer: weight, bias, stride/padding metadata
    NAME.expected.u8.gz   gzip of the expected output frames, uint8, planar
                          [frame][channel R,G,B][y][x], C order

| case     | element         | layer                                       | in           | out           |
| -------- | --------------- | ------------------------------------------- | ------------ | ------------- |
| up2x_2d  | convtranspose2d | 3->3, k 4x4, stride 2, padding 1            | 2 x 640x360  | 2 x 1280x720  |
| up2x_3d  | convtranspose3d | 3->3, k (3,4,4), stride (1,2,2), pad (1,1,1) | 3 x 640x360  | 3 x 1280x720  |
| t2x_3d   | convtranspose3d | 3->3, k (4,1,1), stride (2,1,1), pad (1,0,0) | 3 x 640x360  | 6 x 640x360   |

The input frames are not stored: the C test computes the same bytes,
component c (R, G, B) of pixel (x, y) in input frame t being

    v = (3*x + 5*y + 70*c + 40*t) % 256

read by the element as float32 v / 255 (2d: each frame a [3, H, W] input
of its own; 3d: the frames are the T axis of one [3, T, H, W] input).
The expected bytes are round-half-up(clamp(out, 0, 1) * 255), the elements'
documented mapping; the test allows 1 level of difference.

Weights are uniform, positive on average (each output averages its inputs),
so the output stays inside [0, 1] almost everywhere. Deterministic: fixed
seed, gzip without a timestamp. Run with /usr/bin/python3 (needs torch).
"""
import gzip
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools"))
from ctexport.safetensors_io import save_file  # noqa: E402

WIDTH, HEIGHT, CHANNELS = 640, 360, 3


def input_frames(n_frames):
    """uint8 [T, C, H, W] by the formula of the docstring."""
    t = np.arange(n_frames)[:, None, None, None]
    c = np.arange(CHANNELS)[None, :, None, None]
    y = np.arange(HEIGHT)[None, None, :, None]
    x = np.arange(WIDTH)[None, None, None, :]
    return ((3 * x + 5 * y + 70 * c + 40 * t) % 256).astype(np.uint8)


def quantise(out):
    """float32 -> uint8: clamp to [0, 1], scale by 255, round half up."""
    v = np.clip(out.astype(np.float64), 0.0, 1.0) * 255.0
    return np.floor(v + 0.5).astype(np.uint8)


def make_layer(cls, kernel, stride, padding, taps_per_output):
    layer = cls(CHANNELS, CHANNELS, kernel, stride=stride, padding=padding)
    with torch.no_grad():
        # Mean weight 1 / taps: an output is about the mean of its inputs.
        layer.weight.uniform_(-1.0 / taps_per_output, 3.0 / taps_per_output)
        layer.bias.uniform_(-0.05, 0.05)
    return layer


def metadata_value(v):
    return str(v) if isinstance(v, int) else "[" + ",".join(str(i) for i in v) + "]"


def write_case(name, layer, frames, stride, padding):
    save_file({"weight": layer.weight.detach(), "bias": layer.bias.detach()},
              os.path.join(HERE, name + ".safetensors"),
              {"stride": metadata_value(stride), "padding": metadata_value(padding)})
    x = torch.from_numpy(frames.astype(np.float32) / np.float32(255.0))
    with torch.no_grad():
        if isinstance(layer, torch.nn.ConvTranspose2d):
            y = layer(x)  # frames are the batch: [T, C, H', W']
        else:
            y = layer(x.permute(1, 0, 2, 3)[None])[0].permute(1, 0, 2, 3)  # [T', C, H', W']
    q = quantise(y.contiguous().numpy())
    with open(os.path.join(HERE, name + ".expected.u8.gz"), "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=f, mtime=0) as z:
            z.write(q.tobytes(order="C"))
    clipped = np.mean((q == 0) | (q == 255))
    print(f"{name}: out {list(q.shape)}, {clipped:.2%} of values at 0 or 255")


def main():
    torch.manual_seed(20240611)
    write_case("up2x_2d", make_layer(torch.nn.ConvTranspose2d, 4, 2, 1, 3 * 2 * 2),
               input_frames(2), 2, 1)
    write_case("up2x_3d",
               make_layer(torch.nn.ConvTranspose3d, (3, 4, 4), (1, 2, 2), (1, 1, 1),
                          3 * 3 * 2 * 2),
               input_frames(3), (1, 2, 2), (1, 1, 1))
    write_case("t2x_3d",
               make_layer(torch.nn.ConvTranspose3d, (4, 1, 1), (2, 1, 1), (1, 0, 0), 3 * 2),
               input_frames(3), (2, 1, 1), (1, 0, 0))


if __name__ == "__main__":
    main()
