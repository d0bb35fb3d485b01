"""Media of the demo site: clips of coloured shapes in motion, thumbnails and still images.

Takes a :class:`~webvid.synth.catalog.Catalog` and :class:`MediaParams`. Produces, in a cache
folder, one H.264 (yuv420p, ``+faststart``) mp4 per distinct clip, a JPEG thumbnail per clip and
a JPEG per image, and returns a :class:`MediaStore` mapping item ids to those files.

Speed: frames are drawn with numpy and piped raw into *one* ffmpeg process per batch of clips,
whose segment muxer cuts the stream into one mp4 per clip at forced key frames — one process
start-up per batch instead of per clip (about 15 ms per clip on one core, against 135 ms for one
ffmpeg call per clip). Memory stays bounded: one frame at a time goes down the pipe.

Cache: ``<cache_dir>/v<GENERATOR_VERSION>-<hash of MediaParams>/`` holds files named by a hash of
their render spec, so any seed reuses every clip it shares with an earlier build and a rebuild
generates nothing. Files are committed with :func:`webvid.io.atomic_path`, so a file that exists
is complete; concurrent builders at worst both render the same file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Final

import numpy as np

from webvid.errors import WebvidError
from webvid.io import atomic_path, user_cache_dir
from webvid.log import NullProgress, Progress
from webvid.synth.catalog import Catalog, RenderSpec
from webvid.synth.palette import BACKGROUNDS, COLOURS

log = logging.getLogger(__name__)

#: Bump whenever drawing or encoding changes: it is part of the cache key.
GENERATOR_VERSION: Final = 6
_BATCH: Final = 64  # clips per ffmpeg process (at most)
_MAX_WORKERS: Final = 4  # ffmpeg processes at once (never more than the CPU count)


@dataclass(frozen=True)
class MediaParams:
    """How clips and images are rendered (all part of the cache key)."""

    width: int = 160
    height: int = 120
    fps: int = 12
    clip_seconds: float = 3.0
    short_seconds: float = 0.5
    jpeg_quality: int = 90
    qp: int = 23  # constant quantiser: no rate-control state shared between clips

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 32 or self.height < 32:
            raise ValueError("width and height must be even and at least 32 (yuv420p)")
        if self.fps < 1 or self.clip_seconds <= 0 or self.short_seconds <= 0:
            raise ValueError("fps, clip_seconds and short_seconds must be positive")

    def frames(self, spec: RenderSpec) -> int:
        seconds = self.short_seconds if spec.short else self.clip_seconds
        return max(2, round(seconds * self.fps))

    def digest(self) -> str:
        text = json.dumps({"v": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def default_cache_dir() -> Path:
    """``$WEBVID_DEMO_CACHE``, else ``$XDG_CACHE_HOME/webvid/demo``, else ``~/.cache/webvid/demo``."""
    return user_cache_dir("demo", "WEBVID_DEMO_CACHE")


#: RenderSpec fields added later, left out of the cache key at these values, so that the keys
#: (and files) of ordinary clips stay the same.
_LATER_FIELDS: Final[dict[str, object]] = {
    "reencode": False,
    "start": 0.0,
    "speed": 1.0,
    "tint": [0, 0, 0],
}


def spec_key(spec: RenderSpec) -> str:
    fields = asdict(spec)
    fields["tint"] = list(fields["tint"])
    for name, default in _LATER_FIELDS.items():
        if fields[name] == default:
            del fields[name]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]


@dataclass
class MediaStore:
    """Where each item's files are, and how many files this build made or found."""

    root: Path
    clips: dict[str, Path] = field(default_factory=dict)
    thumbs: dict[str, Path] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)
    generated: int = 0
    reused: int = 0


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def shape_mask(shape: str, size: int) -> np.ndarray:
    """A boolean ``size x size`` mask of the shape."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    c = size / 2
    if shape == "circle":
        return (xx - c) ** 2 + (yy - c) ** 2 <= c * c
    if shape == "square":
        return np.ones((size, size), dtype=bool)
    if shape == "triangle":  # apex at the top, base at the bottom
        return np.abs(xx - c) <= yy / 2
    if shape == "diamond":
        return np.abs(xx - c) + np.abs(yy - c) <= c
    raise ValueError(f"unknown shape {shape!r}")


def shape_positions(spec: RenderSpec, params: MediaParams, n_frames: int) -> list[tuple[int, int]]:
    """Top-left (x, y) of the shape in each frame: edge to edge along the direction of motion."""
    w, h = params.width, params.height
    size = shape_size(spec, params)
    margin = max(2, size // 8)
    span_x, span_y = w - size - 2 * margin, h - size - 2 * margin
    if spec.motion == "image":
        return [
            (margin + round(spec.offset_frac * span_x), margin + round(spec.offset2_frac * span_y))
        ]
    out: list[tuple[int, int]] = []
    for i in range(n_frames):
        t = 0.5 if spec.motion == "still" else i / (n_frames - 1)
        if spec.motion == "move":  # a re-render may start further along and move slower
            t = spec.start + (1.0 - spec.start) * spec.speed * t
        if spec.direction in ("left", "right"):
            along = t if spec.direction == "right" else 1 - t
            x, y = margin + along * span_x, margin + spec.offset_frac * span_y
        else:
            along = t if spec.direction == "down" else 1 - t
            x, y = margin + spec.offset_frac * span_x, margin + along * span_y
        out.append((round(x), round(y)))
    return out


def shape_size(spec: RenderSpec, params: MediaParams) -> int:
    return max(6, round(spec.size_frac * params.height))


def background_frame(spec: RenderSpec, params: MediaParams) -> np.ndarray:
    """The background: its colour plus, when ``spec.texture`` is set, a faint smooth texture.

    The texture (four random low-frequency waves of amplitude 6 in every channel: typically
    within +-12, never beyond +-24; static over the clip) makes every clip's background its
    own, as in real footage, so that perceptual hashes of different clips differ: with flat
    backgrounds, 78 of the 7,140 pairs of a 120-clip site fell within a 10 % Hamming distance
    of a 4-frame pHash, with the texture 2.
    """
    h, w = params.height, params.width
    base = np.array(BACKGROUNDS[spec.background], dtype=np.float32) + np.array(
        spec.tint, dtype=np.float32
    )
    frame = np.broadcast_to(base, (h, w, 3)).copy()
    if spec.texture:
        rng = np.random.default_rng(spec.texture)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        field = np.zeros((h, w), dtype=np.float32)
        for _ in range(4):
            fx, fy = rng.uniform(-2.5, 2.5, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            field += np.cos(2 * np.pi * (fx * xx / w + fy * yy / h) + phase)
        frame += (6.0 * field)[:, :, None]
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def render_frames(spec: RenderSpec, params: MediaParams) -> Iterable[np.ndarray]:
    """The RGB frames (``H x W x 3`` uint8) of a clip, or the one frame of an image."""
    size = shape_size(spec, params)
    mask = shape_mask(spec.shape, size)
    colour = np.clip(
        np.array(COLOURS[spec.colour], dtype=np.int32) + np.array(spec.tint, dtype=np.int32), 0, 255
    ).astype(np.uint8)
    background = background_frame(spec, params)
    n = 1 if spec.motion == "image" else params.frames(spec)
    for x, y in shape_positions(spec, params, n):
        frame = background.copy()
        frame[y : y + size, x : x + size][mask] = colour
        yield frame


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _ffmpeg_batch(specs: Sequence[RenderSpec], params: MediaParams, workdir: Path) -> list[Path]:
    """Encode ``specs`` with one ffmpeg process; returns one mp4 path per spec, in order.

    A clip's bytes must not depend on its neighbours in the batch (the cache mixes clips
    encoded in different batches): constant QP (no rate-control state carried over), CAVLC
    (the CABAC coder's last bytes depended on the batch), no B-frames or scene-cut key frames,
    x264's version SEI stripped, and a one-frame spacer segment between clips, so that every
    clip starts with the same IDR picture id (x264 alternates it between consecutive IDRs).
    """
    n_frames = {params.frames(spec) for spec in specs}
    if len(n_frames) != 1:
        raise ValueError("a batch holds clips of one length")
    (length,) = n_frames
    period = length + 1  # a clip and its spacer
    # clip i fills frames [i*period, i*period + length), its spacer the frame after
    bounds = [b for i in range(len(specs) - 1) for b in (i * period + length, (i + 1) * period)]
    # a key frame at the start of every segment (by frame number: times would round); one
    # short expression whatever the batch size (ffmpeg refuses very long ones)
    key_expr = f"expr:eq(mod(n,{period}),0)+eq(mod(n,{period}),{length})"
    # fmt: off
    cmd = [
        "ffmpeg", "-nostdin", "-v", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{params.width}x{params.height}",
        "-r", str(params.fps), "-i", "-",
        "-c:v", "libx264", "-preset", "veryfast", "-qp", str(params.qp), "-bf", "0",
        "-g", "100000", "-sc_threshold", "0", "-threads", "1", "-pix_fmt", "yuv420p",
        "-force_key_frames", key_expr, "-forced-idr", "1", "-x264-params", "cabac=0",
        "-bsf:v", "filter_units=remove_types=6",
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
        "-f", "segment", "-reset_timestamps", "1",
        "-segment_format", "mp4", "-segment_format_options", "movflags=+faststart",
    ]
    # fmt: on
    if bounds:
        cmd += ["-segment_frames", ",".join(str(b) for b in bounds)]
    cmd.append(str(workdir / "seg%05d.mp4"))
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    spacer = np.zeros((params.height, params.width, 3), dtype=np.uint8).tobytes()
    try:
        for i, spec in enumerate(specs):
            if i:
                proc.stdin.write(spacer)
            for frame in render_frames(spec, params):
                proc.stdin.write(frame.tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise WebvidError(f"ffmpeg failed to encode demo clips: {err.strip()[-500:]}")
    paths = [workdir / f"seg{2 * i:05d}.mp4" for i in range(len(specs))]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise WebvidError(f"ffmpeg produced no {', '.join(missing[:3])} (segmenting failed)")
    return paths


def corrupt_bytes(data: bytes, key: str) -> bytes:
    """A valid mp4 header (``ftyp``, ``moov``: probes fine), garbage for every frame after it.

    With ``+faststart`` the ``moov`` box comes first, so ffprobe still reports an h264 stream
    with the right size and frame count. Inside ``mdat`` each NAL unit keeps its 4-byte length
    (nothing looks cut off) but gets an unspecified NAL type and random payload, so the decoder
    skips every unit and yields no frame: plainly undecodable, not truncated.
    """
    rng = random.Random(key)
    out = bytearray(data)
    mdat = data.find(b"mdat")
    if mdat < 4:
        return data[:40] + bytes(rng.getrandbits(8) for _ in range(len(data) - 40))
    end = min(len(data), mdat - 4 + int.from_bytes(data[mdat - 4 : mdat], "big"))
    pos = mdat + 4
    while pos + 5 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        stop = min(pos + 4 + size, end)
        out[pos + 4] = 0x00  # forbidden bit 0, nal_ref_idc 0, type 0 (unspecified)
        out[pos + 5 : stop] = bytes(rng.getrandbits(8) for _ in range(stop - pos - 5))
        pos += 4 + size
    return bytes(out)


def _save_jpeg(frame: np.ndarray, final: Path, quality: int) -> None:
    from PIL import Image

    with atomic_path(final, durable=False) as tmp:
        Image.fromarray(frame).save(tmp, format="JPEG", quality=quality)


def _commit_clip(segment: Path, final: Path, spec: RenderSpec, key: str) -> None:
    with atomic_path(final, durable=False) as tmp:
        if spec.corrupt:
            tmp.write_bytes(corrupt_bytes(segment.read_bytes(), key))
        else:
            os.replace(segment, tmp)


def build_media(
    catalog: Catalog,
    params: MediaParams | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    progress: Progress | None = None,
) -> MediaStore:
    """Render every file the catalogue needs that the cache lacks; map item ids to files."""
    params = params or MediaParams()
    progress = progress or NullProgress()
    if shutil.which("ffmpeg") is None:
        raise WebvidError("the demo site needs ffmpeg on PATH (Debian: apt-get install ffmpeg)")
    root = Path(cache_dir or default_cache_dir()) / f"v{GENERATOR_VERSION}-{params.digest()}"
    _remove_stale_temps(root)
    store = MediaStore(root)
    todo: dict[str, RenderSpec] = {}  # clip files to encode, by key
    for clip in catalog.clips:
        key = spec_key(clip.render)
        store.clips[clip.clip_id] = root / "clips" / f"{key}.mp4"
        store.thumbs[clip.clip_id] = root / "thumbs" / f"{key}.jpg"
        if not _cached(store.clips[clip.clip_id]):
            todo[key] = clip.render
    for image in catalog.images:
        store.images[image.clip_id] = root / "images" / f"{spec_key(image.render)}.jpg"
    total = len(set(store.clips.values()) | set(store.thumbs.values()) | set(store.images.values()))
    progress.update("demo media", total=total)
    # near-duplicates are made from their base clip's file, so the base is encoded first
    reencode = {key: spec for key, spec in todo.items() if spec.reencode}
    served = set(store.clips.values())
    hidden = 0  # bases that no item serves (a re-render's): encoded, not counted as reused
    for key in reencode:
        del todo[key]
        base = replace(reencode[key], reencode=False)
        if not _cached(root / "clips" / f"{spec_key(base)}.mp4"):
            todo[spec_key(base)] = base
            hidden += root / "clips" / f"{spec_key(base)}.mp4" not in served
    if hidden:
        progress.update("demo media", total=total + hidden)
    _encode_clips(todo, params, root, store, progress, extra=len(reencode) - hidden)
    for key, spec in sorted(reencode.items()):
        base_file = root / "clips" / f"{spec_key(replace(spec, reencode=False))}.mp4"
        _reencode_clip(base_file, root / "clips" / f"{key}.mp4")
        store.generated += 1
        progress.update("demo media", advance=1)
    for kind, paths, specs in (
        ("thumb", store.thumbs, {c.clip_id: c.render for c in catalog.clips}),
        ("image", store.images, {i.clip_id: i.render for i in catalog.images}),
    ):
        done: set[Path] = set()
        for item_id, path in paths.items():
            if path in done:
                continue
            done.add(path)
            if _cached(path):
                store.reused += 1
            else:
                spec = specs[item_id]
                first = next(iter(render_frames(spec, params)))
                _save_jpeg(first, path, params.jpeg_quality)
                store.generated += 1
            progress.update("demo media", advance=1)
        log.debug("demo %s files ready under %s", kind, root)
    log.info("demo media: %d generated, %d reused, in %s", store.generated, store.reused, root)
    return store


def _cached(path: Path) -> bool:
    """A committed, non-empty file (the cache skips fsync: an empty file is redone)."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _remove_stale_temps(root: Path, older_than_s: float = 600.0) -> None:
    """Drop temp files and segment folders a killed build left behind (not a running one's)."""
    if not root.is_dir():
        return
    cutoff = time.time() - older_than_s
    for path in [*root.glob(".tmp-*"), *root.glob("*/.tmp-*")]:
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()


def _reencode_clip(base: Path, final: Path) -> None:
    """``base`` at 3/4 of its size and a coarser quantiser: the same picture, other bytes."""
    # fmt: off
    cmd = [
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(base),
        "-vf", "scale=trunc(iw*3/8)*2:trunc(ih*3/8)*2:flags=bicubic",
        "-c:v", "libx264", "-preset", "veryfast", "-qp", "30", "-bf", "0", "-threads", "1",
        "-pix_fmt", "yuv420p", "-x264-params", "cabac=0", "-bsf:v", "filter_units=remove_types=6",
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
        "-movflags", "+faststart", "-f", "mp4",
    ]
    # fmt: on
    with atomic_path(final, durable=False) as tmp:
        proc = subprocess.run([*cmd, str(tmp)], capture_output=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()[-500:]
            raise WebvidError(f"ffmpeg failed to re-encode a demo near-duplicate: {err}")


def _encode_clips(
    todo: dict[str, RenderSpec],
    params: MediaParams,
    root: Path,
    store: MediaStore,
    progress: Progress,
    workers: int | None = None,
    extra: int = 0,
) -> None:
    """Encode the missing clips in batches, one ffmpeg process per batch, ``workers`` at once.

    ``extra``: clip files the caller makes itself afterwards (not counted as reused here).
    """
    n_clip_files = len(set(store.clips.values()))
    reused = n_clip_files - len(todo) - extra
    store.reused += reused
    progress.update("demo media", advance=reused)
    if not todo:
        return
    (root / "clips").mkdir(parents=True, exist_ok=True)
    items = sorted(todo.items())
    workers = max(1, min(workers or os.cpu_count() or 1, _MAX_WORKERS, len(items)))
    n_batches = max(workers, -(-len(items) // _BATCH))
    size = -(-len(items) // n_batches)
    by_length: dict[int, list[tuple[str, RenderSpec]]] = {}
    for key, spec in items:  # one clip length per batch: see _ffmpeg_batch
        by_length.setdefault(params.frames(spec), []).append((key, spec))
    batches = [
        group[i : i + size] for group in by_length.values() for i in range(0, len(group), size)
    ]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="demo-encode") as pool:
        futures = [pool.submit(_encode_batch, batch, params, root) for batch in batches]
        for future in as_completed(futures):
            done = future.result()
            store.generated += done
            progress.update("demo media", advance=done)


def _encode_batch(batch: list[tuple[str, RenderSpec]], params: MediaParams, root: Path) -> int:
    workdir = Path(tempfile.mkdtemp(prefix=".tmp-seg-", dir=root))
    try:
        segments = _ffmpeg_batch([spec for _, spec in batch], params, workdir)
        for (key, spec), segment in zip(batch, segments, strict=True):
            _commit_clip(segment, root / "clips" / f"{key}.mp4", spec, key)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
    return len(batch)
