"""Probe one media file: ffprobe facts plus a few cheap checks on the bytes.

Takes a path; produces a :class:`ProbeInfo` (container, codec, display width/height after
rotation, rotation, fps, duration, frame count, bitrate, audio present, image or video,
``moov`` placement) or raises :class:`MediaError` whose ``reason`` is one of
``contract.VERDICT_REASONS`` (``empty_file``, ``not_media``, ``truncated``, ``undecodable``).
Decoding frames to prove a clip decodes happens in :mod:`webvid.shards.transform`, in the same
ffmpeg pass that computes the scores, so every clip is decoded exactly once.

ffprobe is called directly with a timeout (ffmpeg-python's ``probe`` has none) and the same
``-show_format -show_streams -of json`` arguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

#: ffprobe format names of single still images (never video, whatever the file is called).
IMAGE_FORMATS = (
    "image2",
    "jpeg_pipe",
    "png_pipe",
    "webp_pipe",
    "bmp_pipe",
    "tiff_pipe",
    "gif_pipe",
    "pgm_pipe",
    "ppm_pipe",
    "pam_pipe",
    "qoi_pipe",
)
#: codecs that hold one still picture (an mp4 with one mjpeg frame is still an image).
IMAGE_CODECS = ("mjpeg", "png", "webp", "bmp", "tiff", "gif", "pgm", "ppm", "pam", "qoi")


class MediaError(Exception):
    """A per-file failure with a verdict reason; the run goes on."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ProbeInfo:
    container: str
    codec: str | None  # video codec, None for audio-only files
    pix_fmt: str | None
    width: int | None  # display size: after applying the rotation
    height: int | None
    rotation: int  # degrees, as the container's display matrix says
    fps: float | None
    duration_s: float | None
    num_frames: int | None  # as the container declares it (or duration x fps)
    bitrate: int | None
    has_audio: bool
    has_video: bool
    is_image: bool  # a still picture (jpeg/png/webp/...)
    bytes: int
    moov_first: bool | None  # mp4/mov: moov before mdat (+faststart); None otherwise

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


_MAGIC = (
    b"\xff\xd8\xff",
    b"\x89PNG",
    b"GIF8",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x1aE\xdf\xa3",
    b"FLV",
    b"\x00\x00\x01\xba",
    b"\x00\x00\x01\xb3",
    b"OggS",
    b"qoif",
)


def looks_like_media(head: bytes) -> bool:
    """Whether the first bytes are those of an image or video container we know."""
    if _looks_isobmff(head) or head.startswith(_MAGIC):
        return True
    return head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI ")


def _looks_isobmff(head: bytes) -> bool:
    return len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")


def moov_first(path: str | os.PathLike[str]) -> bool | None:
    """Walk the top-level ISO-BMFF boxes: True when ``moov`` comes before ``mdat``."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        pos = 0
        while pos + 8 <= size:
            fh.seek(pos)
            head = fh.read(16)
            box_len = int.from_bytes(head[:4], "big")
            kind = head[4:8]
            if box_len == 1 and len(head) >= 16:
                box_len = int.from_bytes(head[8:16], "big")
            elif box_len == 0:
                box_len = size - pos
            if kind == b"moov":
                return True
            if kind == b"mdat":
                return False
            if box_len < 8:
                return None
            pos += box_len
    return None


def _ratio(text: str | None) -> float | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _num(value: Any, cast: type = float) -> Any:
    try:
        out = cast(float(value)) if cast is int else cast(value)
    except (TypeError, ValueError):
        return None
    return out


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    return int(tag) % 360 if tag and str(tag).lstrip("-").isdigit() else 0


def run_ffprobe(path: str | os.PathLike[str], timeout_s: float = 30.0) -> dict[str, Any]:
    """ffprobe's JSON for ``path`` or MediaError (reason chosen from the bytes and stderr)."""
    cmd = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise MediaError("undecodable", f"ffprobe timed out after {timeout_s:g}s") from None
    err = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        with open(path, "rb") as fh:
            head = fh.read(16)
        if "moov atom not found" in err and _looks_isobmff(head):
            raise MediaError("truncated", "moov atom not found (file cut off)")
        if "Invalid data found" in err or "moov atom not found" in err:
            raise MediaError("not_media", _last_line(err))
        raise MediaError("undecodable", _last_line(err))
    try:
        return json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError as exc:
        raise MediaError("undecodable", f"ffprobe output: {exc}") from None


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message"


def probe(path: str | os.PathLike[str], timeout_s: float = 30.0) -> ProbeInfo:
    """Probe ``path``; raise MediaError for empty, non-media or unreadable files."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise MediaError("missing_media", str(path)) from None
    if size == 0:
        raise MediaError("empty_file")
    data = run_ffprobe(path, timeout_s)
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    audio = any(s.get("codec_type") == "audio" for s in streams)
    container = str(fmt.get("format_name") or "unknown")
    if video is None and not audio:
        if any(c in container for c in ("mp4", "matroska", "avi", "flv", "mpegts")):
            # a real container that holds nothing: what a 0-second encode leaves behind
            raise MediaError("duration_too_short", f"no frames at all ({container})")
        raise MediaError("not_media", f"no video or audio stream ({container})")
    duration = _num(fmt.get("duration")) or (_num(video.get("duration")) if video else None)
    is_image = video is not None and (
        container in IMAGE_FORMATS
        or (video.get("codec_name") in IMAGE_CODECS and (duration or 0) <= 0.1)
    )
    width = height = fps = frames = None
    rotation = 0
    if video is not None:
        width, height = _num(video.get("width"), int), _num(video.get("height"), int)
        if not width or not height:  # ffprobe guessed a format from the name alone
            with open(path, "rb") as fh:
                head = fh.read(16)
            raise MediaError(
                "undecodable" if looks_like_media(head) else "not_media",
                f"no picture size ({container})",
            )
        rotation = _rotation(video)
        if rotation in (90, 270) and width and height:
            width, height = height, width
        fps = (
            None
            if is_image
            else (_ratio(video.get("avg_frame_rate")) or _ratio(video.get("r_frame_rate")))
        )
        frames = _num(video.get("nb_frames"), int)
        if frames is None and fps and duration:
            frames = int(round(fps * duration))
    bitrate = _num(fmt.get("bit_rate"), int)
    return ProbeInfo(
        container=container,
        codec=video.get("codec_name") if video else None,
        pix_fmt=video.get("pix_fmt") if video else None,
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        duration_s=None if is_image else duration,
        num_frames=1 if is_image else frames,
        bitrate=bitrate,
        has_audio=audio,
        has_video=video is not None,
        is_image=is_image,
        bytes=size,
        moov_first=moov_first(path) if "mp4" in container else None,
    )
