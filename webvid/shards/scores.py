"""Scores from the low-resolution analysis frames of one clip (pure numpy, no I/O).

Takes a ``(n, size, size)`` uint8 array of grey frames sampled at a fixed rate (the analysis
branch of the one ffmpeg pass per clip); produces

* ``motion_score``: mean absolute difference between consecutive frames, over 255;
* ``black_fraction``: share of frames that are dark (mean luma under ``black_luma``) or flat
  (luma standard deviation under ``blank_std``);
* ``scene_scores``/``scene_cuts``: an ffmpeg-``scene``-style score per consecutive pair
  (``min(mafd, |mafd - previous mafd|) / 100``: a jump that motion alone does not explain),
  and the number of pairs over the threshold;
* ``phash``: a DCT perceptual hash, 64 bits per frame over ``k`` evenly spaced frames, as hex;
* ``colour``: the mean chroma (U, V) per cell of an 8x8 grid of those same frames (a
  whole-frame mean misses a small shape's colour): the grey hash is blind to colour, so
  the duplicate check also compares this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameScores:
    frames: int
    motion_score: float | None
    black_fraction: float
    scene_cuts: int
    max_scene_score: float | None
    phash: str


def motion_score(frames: np.ndarray) -> float | None:
    if len(frames) < 2:
        return None
    f = frames.astype(np.int16)
    return float(np.abs(np.diff(f, axis=0)).mean() / 255.0)


def black_fraction(frames: np.ndarray, black_luma: float, blank_std: float) -> float:
    if len(frames) == 0:
        return 1.0
    flat = frames.reshape(len(frames), -1).astype(np.float32)
    dark = flat.mean(axis=1) < black_luma
    blank = flat.std(axis=1) < blank_std
    return float(np.mean(dark | blank))


def scene_scores(frames: np.ndarray) -> np.ndarray:
    """One score in [0, 1] per consecutive pair of frames (length ``n - 1``)."""
    if len(frames) < 2:
        return np.zeros(0, dtype=np.float64)
    f = frames.astype(np.int16)
    mafd = np.abs(np.diff(f, axis=0)).reshape(len(f) - 1, -1).mean(axis=1)
    # the first pair has no predecessor: compare it with its successor instead, so that the
    # opening motion is not mistaken for a cut (a cut at the very start still stands out)
    prev = np.concatenate([[mafd[1] if len(mafd) > 1 else 0.0], mafd[:-1]])
    return np.clip(np.minimum(mafd, np.abs(mafd - prev)) / 100.0, 0.0, 1.0)


_DCT_CACHE: dict[int, np.ndarray] = {}


def _dct_matrix(n: int) -> np.ndarray:
    if n not in _DCT_CACHE:
        k = np.arange(n)[:, None]
        i = np.arange(n)[None, :]
        m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
        m[0] /= np.sqrt(2.0)
        _DCT_CACHE[n] = m
    return _DCT_CACHE[n]


def _resize_mean(frame: np.ndarray, n: int) -> np.ndarray:
    """Box-downsample a square frame to ``n x n`` (sizes that are multiples of ``n``)."""
    h, w = frame.shape
    if h % n or w % n:
        rows = np.linspace(0, h - 1, n).round().astype(int)
        cols = np.linspace(0, w - 1, n).round().astype(int)
        return frame[np.ix_(rows, cols)].astype(np.float64)
    return frame.reshape(n, h // n, n, w // n).mean(axis=(1, 3))


def phash_frame(frame: np.ndarray) -> int:
    """64-bit pHash of one grey frame: 32x32 → 2-D DCT → 8x8 low frequencies > their median."""
    small = _resize_mean(frame, 32)
    d = _dct_matrix(32)
    coeffs = (d @ small @ d.T)[:8, :8].flatten()
    median = np.median(coeffs[1:])
    bits = 0
    for c in coeffs:
        bits = (bits << 1) | int(c > median)
    return bits


def pick_frames(n: int, k: int) -> list[int]:
    """``k`` evenly spaced indices (segment midpoints) of ``n`` frames; fewer if n < k."""
    if n <= 0:
        return []
    k = min(k, n)
    return [min(n - 1, int((i + 0.5) * n / k)) for i in range(k)]


def phash(frames: np.ndarray, k: int) -> str:
    """Concatenated 64-bit hashes of ``k`` evenly spaced frames, as hex (16 digits per frame)."""
    return "".join(f"{phash_frame(frames[i]):016x}" for i in pick_frames(len(frames), k))


#: The colour signature is the mean chroma of each cell of a COLOUR_GRID x COLOUR_GRID layout.
COLOUR_GRID = 8


def chroma_grid(uv: np.ndarray, grid: int = COLOUR_GRID) -> np.ndarray:
    """Mean U and V per cell of a ``grid x grid`` layout of each frame.

    ``uv``: ``(n, 2, H, W)`` chroma planes; returns ``(n, grid * grid * 2)`` floats, cells
    row-major, ``u, v`` per cell. A whole-frame mean cannot tell a small white shape on black
    from a purple one (the background dominates); a cell the shape covers can.
    """
    n, _, h, w = uv.shape
    grid = max(1, min(grid, h, w))
    rows = np.linspace(0, h, grid + 1).round().astype(int)
    cols = np.linspace(0, w, grid + 1).round().astype(int)
    out = np.empty((n, grid, grid, 2), np.float64)
    for i in range(grid):
        for j in range(grid):
            cell = uv[:, :, rows[i] : rows[i + 1], cols[j] : cols[j + 1]]
            out[:, i, j] = cell.mean(axis=(2, 3))
    return out.reshape(n, grid * grid * 2)


def colour_signature(chroma: np.ndarray, k: int) -> list[list[float]]:
    """The chroma grid (see :func:`chroma_grid`) of the ``k`` frames the hash uses, to 0.1."""
    return [[round(float(x), 1) for x in chroma[i]] for i in pick_frames(len(chroma), k)]


def frame_scores(
    frames: np.ndarray,
    *,
    hash_frames: int,
    black_luma: float,
    blank_std: float,
    scene_threshold: float,
) -> FrameScores:
    scenes = scene_scores(frames)
    return FrameScores(
        frames=len(frames),
        motion_score=motion_score(frames),
        black_fraction=black_fraction(frames, black_luma, blank_std),
        scene_cuts=int((scenes > scene_threshold).sum()),
        max_scene_score=float(scenes.max()) if len(scenes) else None,
        phash=phash(frames, hash_frames),
    )
