"""Probe one media file: ffprobe facts plus a few cheap checks on the bytes.

Takes a path; produces a :class:`ProbeInfo` (container, codec, display width/height after
rotation, rotation, fps, duration, frame count, bitrate, audio present, image or video,
``moov`` placement) or raises :class:`MediaError` whose ``reason`` is one of
``contract.VERDICT_REASONS`` (``missing_media``, ``empty_file``, ``archive``, ``not_media``,
``truncated``, ``undecodable``, ``media_timeout``, ``memory_limit``).
Decoding frames to prove a clip decodes happens in :mod:`webvid.shards.transform`, in the same
ffmpeg pass that computes the scores, so every clip is decoded exactly once.

The file is untrusted: its first bytes are sniffed before any tool opens it (compressed files
and archives are refused there: ffprobe's ``libgme`` demuxer inflates gzip without bound), and
ffprobe runs through :func:`webvid.shards.tools.run_tool`, with an address-space ceiling and a
wall-clock limit, as ``ffprobe -v error -show_format -show_streams -of json FILE`` (the argument
list is written out here, like the ffmpeg ones in :mod:`webvid.shards.transform`: see
docs/architecture.md for why no wrapper library builds them).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from webvid import sniff as sniffing
from webvid.shards.tools import (
    DEFAULT_MAX_MEMORY_BYTES,
    DEFAULT_PROBE_TIMEOUT_S,
    memory_detail,
    run_tool,
)

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


def read_head(path: str | os.PathLike[str], n: int = sniffing.HEAD_BYTES) -> bytes:
    """The first ``n`` bytes of a file (fewer when it is shorter)."""
    with open(path, "rb") as fh:
        return fh.read(n)


#: Top-level boxes :func:`moov_first` looks at before giving up (real files have a handful).
MAX_TOP_BOXES = 4096


def moov_first(path: str | os.PathLike[str]) -> bool | None:
    """Walk the top-level ISO-BMFF boxes: True when ``moov`` comes before ``mdat``."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        pos = 0
        for _ in range(MAX_TOP_BOXES):
            if pos + 8 > size:
                break
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


def run_ffprobe(
    path: str | os.PathLike[str],
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    max_memory_bytes: int | None = DEFAULT_MAX_MEMORY_BYTES,
) -> dict[str, Any]:
    """ffprobe's JSON for ``path`` or MediaError (reason chosen from the bytes and stderr).

    ffprobe runs with its address space capped at ``max_memory_bytes`` and is killed after
    ``timeout_s`` (``media_timeout``); an allocation failure under the cap is ``memory_limit``.
    """
    cmd = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    run = run_tool(cmd, timeout_s=timeout_s, max_memory_bytes=max_memory_bytes)
    if run.timed_out:
        raise MediaError("media_timeout", f"ffprobe killed after {timeout_s:g}s")
    if run.out_of_memory:
        raise MediaError("memory_limit", memory_detail("ffprobe", max_memory_bytes))
    err = run.stderr.strip()
    if run.returncode != 0:
        head = read_head(path)
        if "moov atom not found" in err and sniffing.looks_like_isobmff(head):
            raise MediaError("truncated", "moov atom not found (file cut off)")
        if "Invalid data found" in err or "moov atom not found" in err:
            raise MediaError("not_media", _last_line(err))
        raise MediaError("undecodable", _last_line(err) if err else f"ffprobe rc {run.returncode}")
    try:
        return json.loads(run.stdout.decode("utf-8", "replace") or "{}")
    except json.JSONDecodeError as exc:
        raise MediaError("undecodable", f"ffprobe output: {exc}") from None


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message"


def check_file(path: Path) -> int:
    """The size of a regular, non-empty file that is not an archive, or MediaError.

    Runs before any tool opens the file: a FIFO or a device would block or never end, and a
    compressed file or an archive is refused from its first bytes, unprobed.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MediaError("missing_media", str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise MediaError("not_media", "not a regular file")
    if st.st_size == 0:
        raise MediaError("empty_file")
    kind = sniffing.archive_kind(read_head(path))
    if kind:
        raise MediaError("archive", f"{kind} data: compressed files and archives are never probed")
    return st.st_size


def probe(
    path: str | os.PathLike[str],
    timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
    max_memory_bytes: int | None = DEFAULT_MAX_MEMORY_BYTES,
) -> ProbeInfo:
    """Probe ``path``; raise MediaError for empty, non-media, archived or unreadable files."""
    path = Path(path)
    size = check_file(path)
    data = run_ffprobe(path, timeout_s, max_memory_bytes)
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
            raise MediaError(
                "undecodable" if sniffing.looks_like_media(read_head(path), size) else "not_media",
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
