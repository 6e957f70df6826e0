#!/usr/bin/env python3
"""Makes the quick start's shipped assets (plain Python, no torch):

- models/linear2x.safetensors: a stereo 2x upsampler, ConvTranspose1d(2, 2, 4,
  stride=2, padding=1, groups=2) whose taps [0.25, 0.75, 0.75, 0.25] are
  linear interpolation: a known filter to check a first run against, until
  the trained models ship.
- samples/chirp-16k.wav: 1 s of a stereo 16 kHz chirp, 16-bit PCM.
"""
import math
import os
import struct
import sys
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from ctexport.safetensors_io import save_file  # noqa: E402

import numpy as np  # noqa: E402


def main():
    taps = np.array([0.25, 0.75, 0.75, 0.25], dtype=np.float32)
    weight = np.stack([taps, taps])[:, None, :]  # [Cin=2, Cout/g=1, k=4]
    save_file({"weight": weight}, os.path.join(ROOT, "models", "linear2x.safetensors"),
              {"stride": "2", "padding": "1", "groups": "2"})
    rate, seconds = 16000, 1.0
    n = int(rate * seconds)
    frames = bytearray()
    for i in range(n):
        t = i / rate
        left = 0.5 * math.sin(2 * math.pi * (200 * t + 1800 * t * t))  # 200 Hz -> 3.8 kHz
        right = 0.5 * math.sin(2 * math.pi * 440 * t)
        frames += struct.pack("<hh", round(left * 32767), round(right * 32767))
    with wave.open(os.path.join(ROOT, "samples", "chirp-16k.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


if __name__ == "__main__":
    main()
