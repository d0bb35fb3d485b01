"""The training fast path for JPEG frames: decode straight into one array, resize all at once.

Takes a sample's pre-extracted JPEG frames (or decoded PIL frames) and a crop box, and produces
the training clip ``uint8 (F, S, S, 3)`` — the same clip as :func:`frames.decode_jpegs` +
:func:`frames.crop_frames` up to resampling rounding, several times cheaper:

* :func:`decode_jpegs_array` — the same frame choice (same random draws) as
  :func:`frames.decode_jpegs`; each chosen JPEG is decoded by ``simplejpeg`` (libjpeg-turbo,
  default accurate DCT and fancy upsampling: bit-identical to Pillow's decode) straight into
  one reused ``(F, H, W, 3)`` buffer — no PIL image, no 4-byte-per-pixel intermediate, no
  ``tobytes`` copy. Frames that Pillow would decode differently (draft scaling of large
  frames, CMYK, non-JPEG members, JPEGs with recoverable errors) go through
  :func:`frames.open_image` instead, so the pixels are the same either way.
* :func:`crop_frames_fast` — the crop box as a view of that array and one
  ``torch.nn.functional.interpolate`` (bilinear, antialias, uint8 channels-last: torch's SIMD
  path) for all F frames, then the flip.

The arrays live in a per-thread scratch buffer that the next call overwrites; the crop's result
is a fresh array. Used by :func:`webvid.clips.sample.decode_clip` for training clips; evaluation
and mp4 frames keep the PIL crop.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import simplejpeg
import torch
import torch.nn.functional as F
from PIL import Image

from webvid.clips.frames import Box, BrokenSample, frame_members, open_image, sample_indices

_scratch = threading.local()


def _buffer(shape: tuple[int, ...]) -> np.ndarray:
    """A ``uint8`` array of ``shape`` in this thread's reused scratch memory.

    Reusing it spares a fresh multi-MB allocation per clip, whose page faults cost about as
    much as filling it.
    """
    n = math.prod(shape)
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.size < n:
        buf = _scratch.buf = np.empty(n, np.uint8)
    return buf[:n].reshape(shape)


def direct_jpeg_size(data: bytes, short_side: int) -> tuple[int, int] | None:
    """(w, h) when ``simplejpeg`` decodes ``data`` to exactly the pixels of
    :func:`frames.open_image` (a YCbCr or grey JPEG that Pillow would not draft-scale), else None.
    """
    if data[:2] != b"\xff\xd8":
        return None
    try:
        h, w, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if colorspace not in ("YCbCr", "Gray") or w < 1 or h < 1:
        return None
    if short_side > 0 and min(w, h) > short_side:  # frames.open_image's draft rule
        f = short_side / min(w, h)
        if min(w // math.ceil(w * f), h // math.ceil(h * f)) >= 2:
            return None
    return w, h


def _decode_into(out: np.ndarray, data: bytes, short_side: int) -> bool:
    """Decode ``data`` into ``out`` (H, W, 3) when the direct path applies and sizes match."""
    size = direct_jpeg_size(data, short_side)
    if size != (out.shape[1], out.shape[0]):
        return False
    try:
        simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out)
    except ValueError:  # recoverable libjpeg warnings: let Pillow decide, as before
        return False
    return True


def _rgb_array(data: bytes, short_side: int) -> np.ndarray:
    img = open_image(data, short_side)
    return np.frombuffer(img.tobytes(), np.uint8).reshape(img.height, img.width, 3)


def decode_jpegs_array(
    sample: Mapping[str, Any],
    n: int,
    mode: str,
    rng: random.Random | None,
    short_side: int,
    offset: int = 0,
) -> np.ndarray:
    """:func:`frames.decode_jpegs` as one ``uint8 (n, H, W, 3)`` array (scratch memory)."""
    members = frame_members(sample)
    if not members:
        raise BrokenSample("no_frames")
    idx = sample_indices(n, len(members), mode, rng, offset)
    data0 = sample[members[idx[0]]]
    size = direct_jpeg_size(data0, short_side) if data0 else None
    first = None if size else _rgb_array(data0, short_side)
    w, h = size or (first.shape[1], first.shape[0])  # type: ignore[union-attr]
    out = _buffer((n, h, w, 3))
    done: dict[int, int] = {}
    for i, k in enumerate(idx):
        if k in done:  # a short clip repeats frames: decode once
            out[i] = out[done[k]]
            continue
        done[k] = i
        data = sample[members[k]]
        if i == 0 and first is not None:
            out[0] = first
        elif not _decode_into(out[i], data, short_side):
            arr = _rgb_array(data, short_side)
            if arr.shape != out.shape[1:]:
                raise BrokenSample("frame_size_mismatch", f"{arr.shape[:2]} vs {(h, w)}")
            out[i] = arr
    return out


def frames_array(frames: Sequence[Image.Image]) -> np.ndarray:
    """Decoded RGB PIL frames → one ``uint8 (F, H, W, 3)`` array (scratch memory)."""
    w, h = frames[0].size
    out = _buffer((len(frames), h, w, 3))
    first: dict[int, int] = {}
    for i, img in enumerate(frames):
        if img.size != (w, h):
            raise BrokenSample("frame_size_mismatch", f"{img.size} vs {(w, h)}")
        if img.mode != "RGB":
            raise ValueError(f"frames must be RGB, got {img.mode}")
        j = first.setdefault(id(img), i)
        out[i] = out[j] if j != i else np.frombuffer(img.tobytes(), np.uint8).reshape(h, w, 3)
    return out


def crop_frames_fast(
    frames: np.ndarray | Sequence[Image.Image], box: Box, size: int, flip: bool
) -> np.ndarray:
    """:func:`frames.crop_frames` for an integer box, all frames in one vectorised resize.

    ``frames``: ``uint8 (F, H, W, 3)`` or RGB PIL frames. The result equals a PIL
    ``crop(box).resize((size, size), BILINEAR)`` of every frame within resampling rounding
    (≤ 2 levels); against :func:`frames.crop_frames` (PIL ``resize(box=...)``, whose filter
    also reads pixels just outside the box) the outer pixel or two may differ more. Returns a
    fresh ``uint8 (F, S, S, 3)`` array (a mirrored view of one when ``flip``).
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    if (x0, y0, x1, y1) != tuple(box):
        raise ValueError(f"crop_frames_fast needs an integer box, got {box}")
    arr = frames if isinstance(frames, np.ndarray) else frames_array(frames)
    h, w = arr.shape[1:3]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"box {box} outside the {w}x{h} frame")
    crop = torch.from_numpy(arr).permute(0, 3, 1, 2)[:, :, y0:y1, x0:x1]  # view, channels-last
    out = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True)
    clip = out.permute(0, 2, 3, 1).numpy()  # a view: the output is channels-last
    return clip[:, :, ::-1] if flip else clip  # mirrored view: the batch copy does the flip
