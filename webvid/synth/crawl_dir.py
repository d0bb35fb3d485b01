"""Synthetic crawl dirs for tests, benchmarks and docs: generated clips, images and records.

Takes a folder and a list of :class:`Entry` (what each clip should look like and its caption);
produces a crawl dir as ``webvid crawl`` writes it: ``media/<xx>/<clip_id>.<ext>``,
``records/part-00000.parquet`` (``contract.CRAWL_RECORD_SCHEMA``) and ``manifest.json``.
Clips come from ffmpeg's lavfi sources: seeded moving gradients (distinct per seed), a still
frame, black, a hard scene cut; images are seeded gradient frames. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from webvid import contract
from webvid.io import write_manifest, write_parquet

ENCODE = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "10"]


def ffmpeg(args: Sequence[str]) -> None:
    """Run ffmpeg quietly with ``args`` (overwriting outputs); raise on failure."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True
    )


def _gradients(seed: int, size: str, fps: int, duration: float, speed: float = 0.3) -> str:
    return f"gradients=s={size}:r={fps}:d={duration:g}:seed={seed}:speed={speed:g}:n=3"


def _moving(seed: int, size: str, fps: int, duration: float) -> list[str]:
    """A seeded gradient with a hue-shifted test pattern sliding across it (no wrap, no cut)."""
    w, h = (int(v) for v in size.split("x"))
    bw, bh = max(2, w // 2 // 2 * 2), max(2, h // 2 // 2 * 2)
    room = w - bw
    x0, y = (seed * 5) % max(1, room // 2), (seed * 13) % max(1, h - bh)
    graph = (
        f"{_gradients(seed, size, fps, duration)}[bg];"
        f"testsrc2=s={bw}x{bh}:r={fps}:d={duration:g},hue=h={seed * 47 % 360}[fg];"
        f"[bg][fg]overlay=x='{x0}+t*{room / (2 * duration):.4f}':y={y}:eval=frame,format=yuv420p[v]"
    )
    return ["-filter_complex", graph, "-map", "[v]"]


def make_video(
    path: Path,
    kind: str = "moving",
    *,
    seed: int = 1,
    size: str = "64x48",
    fps: int = 10,
    duration: float = 2.0,
    extra: Sequence[str] = (),
    audio: bool = False,
) -> Path:
    """Write a small clip: ``moving``, ``still``, ``black`` or ``cut`` (two scenes); ``audio``
    adds an AAC sine track (``moving`` only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "moving":
        sound = (
            ["-f", "lavfi", "-i", f"sine=frequency={200 + seed % 800}:duration={duration:g}"]
            if audio
            else []
        )
        tail = ["-map", "0:a", "-c:a", "aac", "-shortest"] if audio else []
        ffmpeg([*sound, *_moving(seed, size, fps, duration), *ENCODE, *tail, *extra, str(path)])
    elif kind == "still":
        ffmpeg(
            [
                "-f",
                "lavfi",
                "-i",
                _gradients(seed, size, fps, duration, speed=0.00001),
                *ENCODE,
                *extra,
                str(path),
            ]
        )
    elif kind == "black":
        ffmpeg(
            [
                "-f",
                "lavfi",
                "-i",
                f"color=c=black:s={size}:r={fps}:d={duration:g}",
                *ENCODE,
                *extra,
                str(path),
            ]
        )
    elif kind == "cut":  # a moving gradient, then a hard cut to a high-contrast test pattern
        half = duration / 2
        a = _moving(seed, size, fps, half)[1]
        graph = (
            a.replace("[v]", "[v1]")
            + f";testsrc=s={size}:r={fps}:d={half:g},format=yuv420p[v2]"
            + ";[v1][v2]concat=n=2:v=1[v]"
        )
        ffmpeg(["-filter_complex", graph, "-map", "[v]", *ENCODE, *extra, str(path)])
    else:
        raise ValueError(f"unknown clip kind {kind!r}")
    return path


def make_reencode(src: Path, out: Path, size: str = "128:96", crf: int = 28) -> Path:
    """``src`` at another resolution and bitrate: the same picture, a near-duplicate."""
    ffmpeg(
        ["-i", str(src), "-vf", f"scale={size}", "-c:v", "libx264", "-crf", str(crf)]
        + ["-pix_fmt", "yuv420p", str(out)]
    )
    return out


def make_image(
    path: Path, *, seed: int = 1, size: str = "96x64", extra: Sequence[str] = ()
) -> Path:
    """Write a still image (format from the suffix: .jpg, .png, .webp) of a seeded gradient."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(["-f", "lavfi", "-i", _gradients(seed, size, 1, 1), "-frames:v", "1", *extra, str(path)])
    return path


def make_picture(
    path: Path,
    *,
    seed: int = 1,
    size: tuple[int, int] = (96, 64),
    quality: int = 90,
    exif_orientation: int | None = None,
) -> Path:
    """Write a textured still with Pillow: a seeded 8x6 grid of colours, smoothly upscaled."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    grid = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(grid, "RGB").resize(size, Image.Resampling.BILINEAR)
    kw: dict[str, object] = {"quality": quality} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif
    img.save(path, **kw)
    return path


@dataclass(frozen=True)
class Entry:
    clip_id: str
    caption: str | None
    file: Path | None = None  # an existing media file to copy in (None: a record without media)
    ext: str = "mp4"
    source_id: str | None = None
    media_kind: str = "video"
    status: str = contract.STATUS_SUCCESS


def write_crawl_dir(folder: Path, entries: Sequence[Entry], *, source: str = "synthetic") -> Path:
    """A crawl dir holding ``entries``: media copied under ``media/``, one records part, a manifest."""
    rows = []
    for i, e in enumerate(entries):
        rel = None
        digest = size = None
        if e.file is not None and e.status == contract.STATUS_SUCCESS:
            rel = contract.media_relpath(e.clip_id, e.ext)
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(e.file, dest)
            data = dest.read_bytes()
            digest, size = hashlib.sha256(data).hexdigest(), len(data)
        rows.append(
            {
                "clip_id": e.clip_id,
                "source": source,
                "source_index": i,
                "source_id": e.source_id if e.source_id is not None else e.clip_id,
                "page_url": f"http://127.0.0.1/clip/{e.clip_id}",
                "media_url": f"http://127.0.0.1/m/{e.clip_id}.{e.ext}",
                "caption": e.caption,
                "media_kind": e.media_kind,
                "status": e.status,
                "reason": None if e.status == contract.STATUS_SUCCESS else "http_404",
                "bytes": size,
                "sha256": digest,
                "media_path": rel,
                "via": "direct",
                "attempts": 1,
            }
        )
    write_parquet(
        folder / "records" / "part-00000.parquet",
        contract.rows_to_table(rows, contract.CRAWL_RECORD_SCHEMA),
    )
    write_manifest(folder, "crawl", config={"source": source}, counts={"records": len(rows)})
    return folder
