"""One benchmark video → the mp4 a training shard stores, or the reason it cannot be stored.

Takes a video file of a benchmark's train split (mp4, avi, mkv, webm, mov, 3gp …, untrusted
like any downloaded file) and the media settings (:class:`MediaSettings`); produces a
:class:`MediaResult`: the file to put in the tar as ``KEY.mp4`` (the original bytes when they are
already an H.264 yuv420p mp4 within the size and rate limits, else a stream-copy remux or an
H.264 transcode staged under the caller's folder) with its exact facts, or a failure reason from
``contract.VERDICT_REASONS`` (``missing_media``, ``empty_file``, ``not_media``, ``undecodable``,
``truncated``, ``media_timeout``, ``memory_limit``, ``not_video``, ``transcode_failed``).

It is the shard stage's media path, reused rather than repeated: :func:`webvid.shards.probe.probe`
(sniffed first, ffprobe under an address-space cap and a time limit), then one ffmpeg pass of
:func:`webvid.shards.transform.decode_video` that decodes the whole clip at a low analysis rate
(the proof that it decodes) while writing the remux or transcode (bit-exact, ``+faststart``,
audio dropped), judged by :func:`webvid.shards.filters.decode_reason`. The stored file is probed
again so ``num_frames``, ``width`` and ``height`` in ``KEY.json`` are the stored stream's own (the
training loader trusts them and skips its own ffprobe).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webvid.errors import InputError
from webvid.shards.filters import decode_reason
from webvid.shards.probe import MediaError, ProbeInfo, probe, sha256_file
from webvid.shards.recipe import AnalysisConfig, TransformConfig
from webvid.shards.transform import decode_video, expected_analysis_frames, plan_video

#: The decode that proves a clip decodes needs only a few tiny frames per second.
PROOF = AnalysisConfig(fps=2.0, size=16, hash_frames=1)


@dataclass(frozen=True)
class MediaSettings:
    """What the stored mp4 may be: short side, frame rate, length, encoder quality."""

    max_short_side: int = 256  # the training loader decodes at 256 px short side by default
    max_fps: float = 30.0
    max_duration_s: float = 600.0  # far above every benchmark clip: nothing is cut by default
    crf: int = 23
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise InputError(f"crf must be within 0..51, got {self.crf}")
        try:
            self.transform()
        except ValueError as exc:
            raise InputError(f"media settings: {exc}") from None

    def transform(self) -> TransformConfig:
        """The shard stage's transform settings these amount to (one ffmpeg thread per worker)."""
        return TransformConfig(
            max_short_side=self.max_short_side,
            max_fps=self.max_fps,
            max_duration_s=self.max_duration_s,
            crf=self.crf,
            preset=self.preset,
            threads=1,
            frames=0,
            allow_copy=True,
            keep_audio=False,
        )


@dataclass(frozen=True)
class MediaResult:
    """A stored clip (``media`` set) or a failure (``reason`` set), with what is known."""

    source_bytes: int | None = None
    media: str | None = None  # the file whose bytes become KEY.mp4
    staged: bool = False  # media was made in the staging folder (remove it after the tar)
    transform: str | None = None  # "copy" | "remux" | "transcode"
    bytes: int | None = None
    sha256: str | None = None
    source_sha256: str | None = None
    width: int | None = None
    height: int | None = None
    original_width: int | None = None
    original_height: int | None = None
    fps: float | None = None
    duration_s: float | None = None
    num_frames: int | None = None
    reason: str | None = None
    detail: str | None = None


def _last_line(text: str) -> str | None:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else None


def store_video(src: Path, staged: Path, settings: MediaSettings) -> MediaResult:
    """Make ``src`` storable as ``KEY.mp4``; a transcode or remux is written to ``staged``.

    Never raises for a bad file: every expected failure is a :class:`MediaResult` with a reason.
    """
    tcfg = settings.transform()
    try:
        p = probe(src, timeout_s=tcfg.probe_timeout_s, max_memory_bytes=tcfg.max_tool_memory_bytes)
    except MediaError as exc:
        size = src.stat().st_size if src.is_file() else None
        return MediaResult(source_bytes=size, reason=exc.reason, detail=exc.detail or None)
    if not p.has_video or p.is_image or not p.width or not p.height:
        return MediaResult(source_bytes=p.bytes, reason="not_video", detail=p.container)
    plan = plan_video(p, tcfg)
    dec = decode_video(src, p, plan, staged, tcfg, PROOF)
    bad = (
        "media_timeout"
        if dec.timed_out
        else "memory_limit"
        if dec.out_of_memory
        else decode_reason(
            returncode=dec.returncode,
            frames=len(dec.frames),
            expected_frames=expected_analysis_frames(p, tcfg, PROOF),
            stderr=dec.stderr,
        )
    )
    if bad is None and plan.kind != "copy" and dec.output is None:
        bad = "transcode_failed"
    if bad is not None:
        if dec.output is not None:
            dec.output.unlink(missing_ok=True)
        return MediaResult(source_bytes=p.bytes, reason=bad, detail=_last_line(dec.stderr))
    media = src if plan.kind == "copy" else staged
    return _stored(src, media, plan.kind, p, tcfg)


def _stored(
    src: Path, media: Path, kind: str, source: ProbeInfo, tcfg: TransformConfig
) -> MediaResult:
    """The facts of the file that will be stored (probed again: its own frame count and size)."""
    try:
        out = source if kind == "copy" else probe(media, timeout_s=tcfg.probe_timeout_s)
    except MediaError as exc:  # ffmpeg wrote something ffprobe cannot read: never store it
        media.unlink(missing_ok=True)
        return MediaResult(source_bytes=source.bytes, reason="transcode_failed", detail=str(exc))
    sha256 = sha256_file(media)
    return MediaResult(
        source_bytes=source.bytes,
        media=str(media),
        staged=kind != "copy",
        transform=kind,
        bytes=media.stat().st_size,
        sha256=sha256,
        source_sha256=sha256 if kind == "copy" else sha256_file(src),
        width=out.width,
        height=out.height,
        original_width=source.width,
        original_height=source.height,
        fps=out.fps,
        duration_s=out.duration_s,
        num_frames=out.num_frames,
    )
