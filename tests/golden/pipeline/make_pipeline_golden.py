#!/usr/bin/python3
"""Golden data for the whole-file pipeline test of convtranspose1d:

    filesrc ! wavparse ! audioconvert ! convtranspose1d ! audioconvert ! wavenc

writes `up2x.safetensors` (a stereo 2x upsampler, k32 s2 p15 groups 2),
`in.wav` (16-bit PCM stereo, 48 kHz) and `expected.wav` (32-bit float,
96 kHz): PyTorch's output for the whole file, the input read as v / 32768
exactly as audioconvert reads S16. Run with /usr/bin/python3 (torch).
"""
import os
import struct
import sys
import wave

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools"))
from ctexport.safetensors_io import save_file  # noqa: E402

RATE, LENGTH = 48000, 6000


def write_float_wav(path, data, rate):
    """data: [frames, channels] float32 -> WAVE_FORMAT_IEEE_FLOAT file."""
    frames, channels = data.shape
    payload = data.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * channels * 4, channels * 4, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(payload)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(payload)) + payload)


def main():
    torch.manual_seed(2024)
    layer = torch.nn.ConvTranspose1d(2, 2, 32, stride=2, padding=15, groups=2)
    save_file({"weight": layer.weight.detach(), "bias": layer.bias.detach()},
              os.path.join(HERE, "up2x.safetensors"),
              {"stride": "2", "padding": "15", "groups": "2"})
    rng = np.random.default_rng(2024)
    t = np.arange(LENGTH) / RATE
    signal = np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1234 * t)])
    signal += 0.05 * rng.standard_normal(signal.shape)
    pcm = np.clip(np.round(signal * 32767), -32768, 32767).astype("<i2")
    with wave.open(os.path.join(HERE, "in.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.T.copy().tobytes())
    x = torch.from_numpy(pcm.astype(np.float32) / 32768.0)[None]
    with torch.no_grad():
        y = layer(x)[0].numpy()
    write_float_wav(os.path.join(HERE, "expected.wav"), y.T, RATE * 2)


if __name__ == "__main__":
    main()
