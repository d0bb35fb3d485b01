"""Synthetic captioned clips and shards: moving shapes whose captions say colour, shape, direction.

Drawn in the colours of :mod:`webvid.synth.palette` (the demo site's).

Takes a count and a seed and produces WebDataset shards in the shard stage's layout
(``00000.tar`` with ``KEY.mp4`` + ``KEY.txt`` + ``KEY.json``, optionally pre-extracted
``KEY.frame00.jpg`` …; or ``KEY.jpg`` images). Used by the tests, the loader benchmark, the
learning benchmark and the GPU check — never by training itself.

Colour and shape are visible in any single frame; the direction of motion needs two or more,
which is what makes the 1 → 4 frame curriculum measurable at laptop scale.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image

from webvid.contract import sample_key, shard_name
from webvid.synth.palette import BACKGROUNDS, COLOURS, DIRECTIONS

#: The default vocabulary of :func:`random_specs`: every colour of the palette, the two shapes
#: :func:`render` draws, three dark-to-mid backgrounds on which every colour stands out.
SHAPES: Final[tuple[str, ...]] = ("square", "circle")
SPEC_BACKGROUNDS: Final[tuple[str, ...]] = ("black", "grey", "green")
#: Unit steps of each direction of the palette, in image coordinates (y grows downwards).
STEPS: Final[dict[str, tuple[int, int]]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
}


@dataclass(frozen=True)
class ClipSpec:
    colour: str
    shape: str
    direction: str
    background: str

    @property
    def caption(self) -> str:
        return f"a {self.colour} {self.shape} moving {self.direction} on a {self.background} background"

    @property
    def image_caption(self) -> str:
        return f"a {self.colour} {self.shape} on a {self.background} background"


def random_specs(
    n: int,
    seed: int,
    colours: Sequence[str] = tuple(COLOURS),
    backgrounds: Sequence[str] = SPEC_BACKGROUNDS,
    shapes: Sequence[str] = SHAPES,
) -> list[ClipSpec]:
    """``n`` random specs; a smaller vocabulary makes same-look, other-direction negatives common."""
    rng = random.Random(seed)
    return [
        ClipSpec(
            rng.choice(list(colours)),
            rng.choice(list(shapes)),
            rng.choice(list(DIRECTIONS)),
            rng.choice(list(backgrounds)),
        )
        for _ in range(n)
    ]


def render(
    spec: ClipSpec,
    width: int = 64,
    height: int = 48,
    frames: int = 16,
    seed: int = 0,
    moving: bool = True,
) -> np.ndarray:
    """uint8 (frames, H, W, 3): the shape crossing the frame in its direction."""
    rng = random.Random(seed)
    r = max(3, min(width, height) // 5)
    dx, dy = STEPS[spec.direction] if moving else (0, 0)
    # start so the whole path stays inside the frame
    span_x, span_y = width - 2 * r, height - 2 * r
    x0 = r + (0 if dx > 0 else span_x if dx < 0 else rng.randint(0, span_x))
    y0 = r + (0 if dy > 0 else span_y if dy < 0 else rng.randint(0, span_y))
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.empty((frames, height, width, 3), np.uint8)
    bg = np.array(BACKGROUNDS[spec.background], np.uint8)
    fg = np.array(COLOURS[spec.colour], np.uint8)
    for t in range(frames):
        f = t / max(1, frames - 1)
        cx, cy = x0 + dx * f * span_x, y0 + dy * f * span_y
        if spec.shape == "square":
            mask = (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
        else:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        out[t] = bg
        out[t][mask] = fg
    return out


def encode_mp4(frames: np.ndarray, fps: int = 8) -> bytes:
    """H.264 mp4 bytes of uint8 (T, H, W, 3) frames (even sizes), via ffmpeg."""
    t, h, w, _ = frames.shape
    out_path = Path(_tmpdir()) / f"synth-{random.getrandbits(64):x}.mp4"
    try:
        proc = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                f"{w}x{h}",
                "-r",
                str(fps),
                "-i",
                "pipe:0",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-g",
                str(fps),
                "-movflags",
                "+faststart",
                str(out_path),
            ],
            input=frames.tobytes(),
            capture_output=True,
            timeout=60,
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.decode(errors="replace"))
        return out_path.read_bytes()
    finally:
        out_path.unlink(missing_ok=True)


def _tmpdir() -> str:
    import tempfile

    return tempfile.gettempdir()


def jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def midpoints(vlen: int, k: int) -> list[int]:
    """Segment midpoints, as the pre-extracted frames of a shard are chosen."""
    bounds = np.linspace(0, vlen, k + 1).astype(int).tolist()
    return [(s + e - 1) // 2 for s, e in zip(bounds[:-1], bounds[1:], strict=True)]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def write_video_shards(
    out_dir: str | Path,
    specs: Sequence[ClipSpec],
    *,
    per_shard: int = 8,
    width: int = 64,
    height: int = 48,
    frames: int = 16,
    fps: int = 8,
    pre_extract: int = 0,
    mp4: bool = True,
    seed: int = 0,
) -> list[Path]:
    """Write clips of ``specs`` into ``00000.tar`` … under ``out_dir``; return the tar paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for si in range(0, len(specs), per_shard):
        shard = si // per_shard
        path = out / f"{shard_name(shard)}.tar"
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i, spec in enumerate(specs[si : si + per_shard]):
                key = sample_key(shard, i)
                arr = render(spec, width, height, frames, seed=seed * 1_000_003 + si + i)
                meta: dict[str, object] = {
                    "key": key,
                    "caption": spec.caption,
                    "width": width,
                    "height": height,
                    "num_frames": frames,
                    "fps": fps,
                }
                if mp4:
                    _add(tar, f"{key}.mp4", encode_mp4(arr, fps))
                if pre_extract:
                    meta["frames"] = pre_extract
                    for k, t in enumerate(midpoints(frames, pre_extract)):
                        _add(tar, f"{key}.frame{k:02d}.jpg", jpeg(arr[t]))
                _add(tar, f"{key}.txt", spec.caption.encode())
                _add(tar, f"{key}.json", json.dumps(meta).encode())
        paths.append(path)
    return paths


def write_image_shards(
    out_dir: str | Path,
    specs: Sequence[ClipSpec],
    *,
    per_shard: int = 8,
    width: int = 64,
    height: int = 48,
    seed: int = 0,
) -> list[Path]:
    """Still images (a frame of a non-moving clip) captioned without a direction."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for si in range(0, len(specs), per_shard):
        shard = si // per_shard
        path = out / f"{shard_name(shard)}.tar"
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i, spec in enumerate(specs[si : si + per_shard]):
                key = sample_key(shard, i)
                arr = render(spec, width, height, 1, seed=seed * 1_000_003 + si + i, moving=False)
                _add(tar, f"{key}.jpg", jpeg(arr[0]))
                _add(tar, f"{key}.txt", spec.image_caption.encode())
                _add(
                    tar,
                    f"{key}.json",
                    json.dumps({"key": key, "width": width, "height": height}).encode(),
                )
        paths.append(path)
    return paths
