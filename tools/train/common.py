"""Data and degradations shared by the training and measuring scripts.

Every source is real material from a Debian package, installed here with
apt-get when missing (root), never downloaded from elsewhere:

  * music: Ogg Vorbis tracks of wesnoth-1.16-music (44.1 kHz stereo);
  * speech: the recorded voice prompts of alsa-utils (48 kHz mono);
  * photographs: python3-skimage's skimage/data;
  * video: the clips of opencv-doc (decoded with python3-opencv).

The held-out files (HELD_OUT_*) never enter training; docs/quality.md and
the model cards measure on them only.

Degradations (what each model learns to undo, and what the baselines get):

  * audio, decimate2: a 127-tap Kaiser-windowed sinc lowpass (beta 8,
    cutoff a quarter of the sample rate, i.e. the Nyquist frequency of the
    halved rate, unit DC gain, centred so it adds no delay, zeros past the
    ends), then every other sample is kept, starting with the first.
  * video, downscale2: each 2x2 block of 8-bit pixels is averaged and
    rounded to 8 bits (area downscaling; block (i, j) covers pixels
    (2i..2i+1, 2j..2j+1), so its centre sits between them).
  * frame rate, halve_rate: every other frame is kept, starting with the
    first.
"""

import os
import struct
import subprocess
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MUSIC_DIR = "/usr/share/games/wesnoth/1.16/data/core/music"
SPEECH_DIR = "/usr/share/sounds/alsa"
VIDEO_DIR = "/usr/share/doc/opencv-doc/examples/data"
PHOTO_DIR = "/usr/lib/python3/dist-packages/skimage/data"

TRAIN_MUSIC = ["battle-epic.ogg", "breaking_the_chains.ogg", "elf-land.ogg",
               "frantic.ogg", "heroes_rite.ogg", "knolls.ogg",
               "love_theme.ogg", "northerners.ogg", "sad.ogg", "wanderer.ogg"]
TRAIN_SPEECH = ["Front_Left.wav", "Front_Right.wav", "Rear_Center.wav",
                "Rear_Left.wav", "Rear_Right.wav", "Side_Left.wav",
                "Side_Right.wav"]
TRAIN_PHOTOS = ["astronaut.png", "chelsea.png", "rocket.jpg",
                "motorcycle_left.png"]
# tree.avi holds 68 frames (its index claims 444).  Megamind_bugy.avi is a
# damaged copy of the held-out Megamind.avi: never used.
TRAIN_VIDEOS = ["vtest.avi", "tree.avi"]

HELD_OUT_MUSIC = "traveling_minstrels.ogg"
HELD_OUT_SPEECH = "Front_Center.wav"
HELD_OUT_VIDEO = "Megamind.avi"
HELD_OUT_PHOTO = "coffee.png"

# Seconds of each training track used, and of the held-out track (from
# their starts).
MUSIC_SECONDS = 60
HELD_OUT_SECONDS = 30

PACKAGES = ["wesnoth-1.16-music", "alsa-utils", "python3-skimage",
            "opencv-doc", "python3-opencv"]


def ensure_packages(packages=PACKAGES):
    """apt-get install the Debian packages in `packages` that are missing."""
    missing = [p for p in packages if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
        text=True).stdout != "install ok installed"]
    if missing:
        print("installing", " ".join(missing), flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq",
                        "--no-install-recommends", *missing], check=True,
                       env=env, stdout=subprocess.DEVNULL)


# ---- audio ----

def read_wav(path):
    """(rate, float32 [channels, samples]) of a 16-bit PCM or float WAV."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if tag == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif tag == b"data":
            code, channels, rate, _, _, bits = fmt
            if (code, bits) == (1, 16):
                x = np.frombuffer(body, "<i2").astype(np.float32) / 32768
            elif (code, bits) == (3, 32):
                x = np.frombuffer(body, "<f4").astype(np.float32)
            else:
                raise ValueError(f"{path}: WAV format {code}/{bits} bits")
            return rate, x[:len(x) // channels * channels].reshape(-1, channels).T.copy()
        pos += 8 + size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


def write_wav(path, rate, x):
    """Write float32 [channels, samples] as a 32-bit float WAV."""
    x = np.ascontiguousarray(np.asarray(x, np.float32).T)
    channels = x.shape[1]
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels,
                      4 * channels, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + x.nbytes)
                + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
                + b"data" + struct.pack("<I", x.nbytes))
        f.write(x.astype("<f4").tobytes())


def decode_audio(path, seconds=None):
    """(rate, float32 [channels, samples]) of any audio file GStreamer reads."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "a.wav")
        subprocess.run(["gst-launch-1.0", "-q", "filesrc", f"location={path}",
                        "!", "decodebin", "!", "audioconvert", "!",
                        "audio/x-raw,format=F32LE", "!", "wavenc", "!",
                        "filesink", f"location={out}"], check=True)
        rate, x = read_wav(out)
    return rate, (x if seconds is None else x[:, :int(seconds * rate)])


def lowpass_taps():
    """The decimation lowpass: 127-tap Kaiser(8) windowed sinc, cutoff fs/4."""
    n = np.arange(-63, 64)
    h = 0.5 * np.sinc(0.5 * n) * np.kaiser(len(n), 8.0)
    return (h / h.sum()).astype(np.float32)


def decimate2(x):
    """Halve the rate of float32 [channels, samples] (see the module doc)."""
    h = lowpass_taps()
    return np.stack([np.convolve(c, h, mode="same")[::2]
                     for c in np.asarray(x, np.float32)]).astype(np.float32)


def snr_db(ref, out, margin):
    """SNR (dB) of `out` against `ref` ([channels, samples]), leaving out
    `margin` samples at each end, where every method lacks context."""
    r = ref[:, margin:ref.shape[1] - margin]
    e = out[:, margin:ref.shape[1] - margin] - r
    return 10 * np.log10(np.sum(r.astype(np.float64) ** 2)
                         / np.sum(e.astype(np.float64) ** 2))


def training_audio():
    """Training signals: a list of float32 mono arrays (each channel apart)."""
    signals = []
    for name in TRAIN_MUSIC:
        signals += list(decode_audio(os.path.join(MUSIC_DIR, name),
                                     MUSIC_SECONDS)[1])
    for name in TRAIN_SPEECH:
        signals += list(read_wav(os.path.join(SPEECH_DIR, name))[1])
    return signals


def held_out_audio():
    """[(label, rate, float32 [channels, samples])] of the held-out clips."""
    return [("music", *decode_audio(os.path.join(MUSIC_DIR, HELD_OUT_MUSIC),
                                    HELD_OUT_SECONDS)),
            ("speech", *read_wav(os.path.join(SPEECH_DIR, HELD_OUT_SPEECH)))]


# ---- images and video ----

def read_video(path, step=1, limit=None):
    """uint8 RGB frames [T, H, W, 3] of a video: every `step`-th frame, at
    most `limit` of them."""
    import cv2  # python3-opencv; imported late: audio-only users need not

    cap = cv2.VideoCapture(path)
    frames, index = [], 0
    while limit is None or len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame[:, :, ::-1])
        index += 1
    cap.release()
    if not frames:
        raise RuntimeError(f"{path}: no frames decoded")
    return np.ascontiguousarray(np.stack(frames))


def video_fps(path):
    """Frame rate of a video file, as OpenCV reads it."""
    import cv2

    return cv2.VideoCapture(path).get(cv2.CAP_PROP_FPS)


def read_photo(name):
    """uint8 RGB [H, W, 3] of a photograph of skimage/data."""
    import skimage.io

    img = skimage.io.imread(os.path.join(PHOTO_DIR, name))
    return np.ascontiguousarray(img[:, :, :3])


def even(frames):
    """Crop [..., H, W, 3] to even H and W (the last row/column goes)."""
    h, w = frames.shape[-3] // 2 * 2, frames.shape[-2] // 2 * 2
    return frames[..., :h, :w, :]


def downscale2(frames):
    """2x2 area downscaling of uint8 [..., H, W, 3] (H, W even), rounded."""
    f = frames.astype(np.uint16)
    s = (f[..., 0::2, 0::2, :] + f[..., 0::2, 1::2, :]
         + f[..., 1::2, 0::2, :] + f[..., 1::2, 1::2, :])
    return ((s + 2) // 4).astype(np.uint8)


def halve_rate(frames):
    """Every other frame of [T, ...], starting with the first."""
    return frames[0::2]


def psnr_db(ref, out):
    """PSNR (dB) of uint8 `out` against uint8 `ref`, over every value."""
    mse = np.mean((ref.astype(np.float64) - out.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def to_tensor(frames):
    """uint8 [..., H, W, 3] -> float32 [..., 3, H, W] in [0, 1] (v/255)."""
    t = torch.from_numpy(np.ascontiguousarray(frames)).float() / 255
    return t.movedim(-1, -3)


def to_uint8(y):
    """float32 array [..., 3, H, W] of [0, 1] values -> uint8 [..., H, W, 3]:
    clamped, x255 and rounded, as the video elements write their output
    (works in place: `y` is overwritten)."""
    np.clip(y, 0, 1, out=y)
    y *= 255
    np.rint(y, out=y)
    return np.ascontiguousarray(np.moveaxis(y.astype(np.uint8), -3, -1))
