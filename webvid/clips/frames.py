"""Frames of one sample: which to take, decoding them, and the crop/flip transforms.

Takes the raw bytes of a video (mp4/webm/…), of pre-extracted JPEG frames, or of an image,
and produces ``uint8`` arrays ``(F, H, W, 3)`` cropped and resized to the model's input size.
Everything here works on one sample and is called inside data-loader workers.

* :func:`sample_indices` — the official ``sample_frames`` policy (``rand``: one random frame
  inside each of F equal segments; ``uniform``: segment midpoints; ``fix_start``: a fixed
  offset into each segment for sliding windows), without its faults: the last frame of a
  segment can be drawn, a 1-frame segment is fine, and a clip shorter than F repeats frames
  instead of padding with black ones.
* :func:`decode_video` — one ``ffprobe`` (skipped when the sample's JSON carries
  ``num_frames``) and one ``ffmpeg`` with a ``select`` filter: only the chosen frames leave the
  decoder, already scaled so the short side is ``short_side``.
* :func:`decode_jpegs` — the same choice over a shard's pre-extracted frames
  (``KEY.f00.jpg``, ``KEY.f01.jpg``, … or ``KEY.frame00.jpg`` …: segment midpoints in order,
  ``"frames": K`` in KEY.json), decoded by PIL with JPEG draft scaling. They are used when there
  are at least as many as the clip needs (or there is no video member).
* :func:`random_resized_crop_box` / :func:`center_box` — one draw per clip, so all frames of
  a clip get the same crop and flip; :func:`crop_frames` applies it frame by frame with PIL,
  :mod:`webvid.clips.fastframes` has the training path for JPEG frames (decoded straight
  into one array, all frames resized at once).

Errors raise :class:`BrokenSample` with a short reason; the pipeline skips and counts them.
"""

from __future__ import annotations

import io
import math
import os
import random
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

#: Pre-extracted frame members: ``KEY.frame00.jpg`` (the shard stage's, per the data contract)
#: or the short form ``KEY.f00.jpg``.
FRAME_MEMBER_RE = re.compile(r"^(?:frame|f)(\d+)\.(jpg|jpeg|png|webp)$")
VIDEO_EXTS = ("mp4", "webm", "mkv", "mov", "avi", "m4v")
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp")


class BrokenSample(Exception):
    """A sample that cannot become a clip; ``reason`` is a short slug for the counters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def sample_indices(
    n: int, vlen: int, mode: str, rng: random.Random | None = None, offset: int = 0
) -> list[int]:
    """Pick ``n`` frame indices out of ``vlen`` frames.

    ``rand``: one uniform draw inside each of ``n`` equal segments (``[start, next_start)``);
    ``uniform``: each segment's midpoint (the official test sampling); ``fix_start``: segment
    start + ``offset`` (clamped into the segment). For ``vlen < n`` every frame is used and
    frames repeat in order (``vlen=2, n=4`` → ``0, 0, 1, 1``).
    """
    if n < 1 or vlen < 1:
        raise BrokenSample("no_frames", f"asked {n} of {vlen}")
    if vlen < n:
        return [i * vlen // n for i in range(n)]
    step = vlen / n  # = np.linspace(0, vlen, n + 1).astype(int), bit for bit, ~10x cheaper
    bounds = [int(i * step) for i in range(n)] + [vlen]
    out = []
    for s, e in zip(bounds[:-1], bounds[1:], strict=True):
        if mode == "rand":
            out.append((rng or random).randrange(s, e))
        elif mode == "uniform":
            out.append((s + e - 1) // 2)
        elif mode == "fix_start":
            out.append(min(s + offset, e - 1))
        else:
            raise ValueError(f"unknown sampling mode {mode!r}")
    return out


def scaled_size(w: int, h: int, short_side: int) -> tuple[int, int]:
    """(w, h) scaled down so the short side is ``short_side`` (never up), even numbers kept."""
    s = min(w, h)
    if short_side <= 0 or s <= short_side:
        return w, h
    f = short_side / s
    return max(1, round(w * f)), max(1, round(h * f))


def probe_video(path: str) -> tuple[int, int, int]:
    """(frames, width, height) of the first video stream; counts packets if the header lacks it."""

    def run(extra: list[str], entries: str) -> list[str]:
        out = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-select_streams",
                "v:0",
                *extra,
                "-show_entries",
                f"stream={entries}",
                "-of",
                "csv=p=0",
                path,
            ],
            capture_output=True,
            timeout=60,
        )
        if out.returncode != 0:
            raise BrokenSample("undecodable", out.stderr.decode(errors="replace").strip()[-200:])
        return out.stdout.decode().strip().split(",")

    fields = run([], "width,height,nb_frames")
    if len(fields) < 3 or not fields[0].isdigit():
        raise BrokenSample("no_video_stream")
    w, h = int(fields[0]), int(fields[1])
    if fields[2].isdigit() and int(fields[2]) > 0:
        return int(fields[2]), w, h
    counted = run(["-count_packets"], "nb_read_packets")
    if not counted or not counted[0].isdigit() or int(counted[0]) == 0:
        raise BrokenSample("no_frames")
    return int(counted[0]), w, h


def _tmp_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def decode_video(
    data: bytes,
    n: int,
    mode: str,
    rng: random.Random | None,
    short_side: int,
    meta: Mapping[str, Any] | None = None,
    offset: int = 0,
    threads: int = 1,
) -> np.ndarray:
    """``n`` frames of the video in ``data`` as ``uint8 (n, H, W, 3)`` at short side ``short_side``."""
    if not data:
        raise BrokenSample("empty_media")
    with tempfile.NamedTemporaryFile(suffix=".vid", dir=_tmp_dir()) as fh:
        fh.write(data)
        fh.flush()
        vlen = int((meta or {}).get("num_frames") or 0)
        w = int((meta or {}).get("width") or 0)
        h = int((meta or {}).get("height") or 0)
        if vlen <= 0 or w <= 0 or h <= 0:
            vlen, w, h = probe_video(fh.name)
        idx = sample_indices(n, vlen, mode, rng, offset)
        return read_video_frames(fh.name, idx, w, h, short_side, threads=threads)


def read_video_frames(
    path: str, idx: Sequence[int], w: int, h: int, short_side: int, threads: int = 1
) -> np.ndarray:
    """Decode frames ``idx`` (any order, repeats allowed) of ``path`` with one ffmpeg call."""
    uniq = sorted(set(idx))
    ow, oh = scaled_size(w, h, short_side)
    expr = "+".join(f"eq(n\\,{i})" for i in uniq)
    vf = f"select='{expr}'" + (f",scale={ow}:{oh}:flags=bilinear" if (ow, oh) != (w, h) else "")
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-nostdin",
        "-threads",
        str(threads),
        "-i",
        path,
        "-an",
        "-sn",
        "-vf",
        vf,
        "-fps_mode",
        "passthrough",
        "-frames:v",
        str(len(uniq)),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]
    out = subprocess.run(cmd, capture_output=True, timeout=120)
    size = ow * oh * 3
    got = len(out.stdout) // size
    if out.returncode != 0 and got < len(uniq):
        raise BrokenSample("undecodable", out.stderr.decode(errors="replace").strip()[-200:])
    if got < len(uniq):
        raise BrokenSample("truncated", f"{got} of {len(uniq)} frames decoded")
    frames = np.frombuffer(out.stdout[: size * len(uniq)], np.uint8).reshape(len(uniq), oh, ow, 3)
    pos = {v: k for k, v in enumerate(uniq)}
    return frames[[pos[i] for i in idx]]


def frame_members(sample: Mapping[str, Any]) -> list[str]:
    """Names of the pre-extracted frame members of a sample, in frame order."""
    found = []
    for k in sample:
        m = FRAME_MEMBER_RE.match(k) if isinstance(k, str) else None
        if m:
            found.append((int(m.group(1)), k))
    return [k for _, k in sorted(found)]


def open_image(data: bytes, short_side: int) -> Image.Image:
    """Decode an image as RGB, letting JPEG decode at a reduced scale when it is large."""
    if not data:
        raise BrokenSample("empty_media")
    try:
        img = Image.open(io.BytesIO(data))
        if img.format == "JPEG" and short_side > 0:
            w, h = img.size
            f = short_side / min(w, h)
            if f < 1:
                img.draft("RGB", (math.ceil(w * f), math.ceil(h * f)))
        img.load()
        if img.mode != "RGB":  # convert() of an RGB image would only copy it
            img = img.convert("RGB")
    except Exception as exc:  # PIL raises many types for bad data
        raise BrokenSample("undecodable", f"{type(exc).__name__}: {exc}") from None
    # no resize here: the crop's single resize to the model size does it (one pass, not two);
    # only images far larger than needed are shrunk first (a decompression-size guard)
    return _shrink(img, short_side) if min(img.size) > 4 * short_side > 0 else img


def _shrink(img: Image.Image, short_side: int) -> Image.Image:
    ow, oh = scaled_size(img.width, img.height, short_side)
    return img if (ow, oh) == img.size else img.resize((ow, oh), Image.BILINEAR)


def decode_jpegs(
    sample: Mapping[str, Any],
    n: int,
    mode: str,
    rng: random.Random | None,
    short_side: int,
    offset: int = 0,
) -> list[Image.Image]:
    members = frame_members(sample)
    if not members:
        raise BrokenSample("no_frames")
    idx = sample_indices(n, len(members), mode, rng, offset)
    cache: dict[int, Image.Image] = {}
    for i in set(idx):
        cache[i] = open_image(sample[members[i]], short_side)
    return [cache[i] for i in idx]


# ---- crops -------------------------------------------------------------------------------

Box = tuple[float, float, float, float]


def random_resized_crop_box(
    w: int, h: int, scale: Sequence[float], ratio: Sequence[float], rng: random.Random
) -> Box:
    """torchvision's RandomResizedCrop box rule (10 tries, then the central crop)."""
    area = w * h
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        ar = math.exp(rng.uniform(*log_r))
        cw = int(round(math.sqrt(target * ar)))
        ch = int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            x = rng.randint(0, w - cw)
            y = rng.randint(0, h - ch)
            return (x, y, x + cw, y + ch)
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    x, y = (w - cw) // 2, (h - ch) // 2
    return (x, y, x + cw, y + ch)


def center_box(w: int, h: int) -> Box:
    """The central square (Resize(short) → CenterCrop(short) → Resize(size) of the official test)."""
    s = min(w, h)
    x, y = (w - s) / 2, (h - s) / 2
    return (x, y, x + s, y + s)


def crop_frames(
    frames: Sequence[Image.Image] | np.ndarray, box: Box, size: int, flip: bool
) -> np.ndarray:
    """Crop ``box`` from every frame, resize to ``size``², optionally mirror → uint8 (F,S,S,3)."""
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, fr in enumerate(frames):
        img = fr if isinstance(fr, Image.Image) else Image.fromarray(fr)
        img = img.resize((size, size), Image.BILINEAR, box=box, reducing_gap=3.0)
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        out[i] = np.asarray(img)
    return out


def frame_size(frames: Sequence[Image.Image] | np.ndarray) -> tuple[int, int]:
    f0 = frames[0]
    if isinstance(f0, Image.Image):
        return f0.size
    return int(f0.shape[1]), int(f0.shape[0])


def media_member(sample: Mapping[str, Any], kind: str) -> str | None:
    """The media member of a sample (``mp4`` …, or ``jpg`` …) or None."""
    for ext in VIDEO_EXTS if kind == "video" else IMAGE_EXTS:
        if ext in sample:
            return ext
    return None
