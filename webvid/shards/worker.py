"""The per-clip unit of work that runs in the process pool: probe, decode once, score, transform.

Takes a :class:`ClipTask` (a file path and what to do with it; only paths cross the process
boundary) and the recipe (set once per worker process by :func:`init_worker`); produces a
:class:`~webvid.shards.records.ClipResult`: the file's facts, its scores, the local rejection
reasons and, for clips still in the running, the staged output (``STAGING/<uid>.mp4`` or
``.jpg`` plus frames) ready to be put in a tar.

Every expected per-file failure becomes a reason in the result; nothing here raises for a bad
file. Every ffprobe / ffmpeg runs under the recipe's memory ceiling and time limits
(``transform.max_tool_memory_bytes``, ``transform.probe_timeout_s``). Results are cached as
``STAGING/<uid>.json`` (written after the outputs), so a rerun after a crash redoes only the
clips that had not finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from webvid.io import atomic_write
from webvid.shards import filters, scores
from webvid.shards.images import ImageResult, process_image
from webvid.shards.probe import MediaError, ProbeInfo, probe, sha256_file
from webvid.shards.recipe import ShardRecipe
from webvid.shards.records import ClipResult, MediaFacts, Scores, StagedOutput, as_colour
from webvid.shards.transform import (
    DecodeResult,
    VideoPlan,
    decode_video,
    expected_analysis_frames,
    extract_frames,
    plan_video,
)

_RECIPE: ShardRecipe | None = None


@dataclass(frozen=True)
class ClipTask:
    uid: str  # unique within the run, a safe file name
    src: str  # absolute media path
    want_output: bool  # False when the caption already rejects it: score, don't transform
    staging: str


def init_worker(recipe: ShardRecipe) -> None:
    global _RECIPE
    _RECIPE = recipe
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def ping() -> int:
    """A no-op task that makes the pool start its processes early."""
    return os.getpid()


def process(task: ClipTask) -> ClipResult:
    """Analyse (and transform) one clip; cached by uid in the staging folder."""
    assert _RECIPE is not None, "init_worker was not called"
    staging = Path(task.staging)
    cache = staging / f"{task.uid}.json"
    if cache.is_file():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("want_output") == task.want_output and all(
            Path(p).is_file() for p in cached.get("out_files", [])
        ):
            return ClipResult.from_cache(cached)
    result = _process(task, _RECIPE, staging)
    # atomic but not fsynced: a cache entry lost to a power cut is recomputed, never half-read
    with atomic_write(cache, "w", durable=False, encoding="utf-8") as fh:
        json.dump(result.to_cache(), fh)
    return result


def _process(task: ClipTask, recipe: ShardRecipe, staging: Path) -> ClipResult:
    res = ClipResult(task.uid, task.want_output)
    src = Path(task.src)
    if recipe.media_kind == "image":  # Pillow first: an ffprobe process per image costs more
        return _image(task, recipe, staging, res)
    try:
        p = _probe(src, recipe)
    except MediaError as exc:
        res = _failed(res, exc)
        if src.is_file():
            res = replace(res, media=MediaFacts(bytes=src.stat().st_size, sha256=sha256_file(src)))
        return res
    res = replace(res, media=_probe_facts(p, p.bytes, sha256_file(src)))
    return _video(task, recipe, staging, p, res)


def _failed(res: ClipResult, exc: MediaError) -> ClipResult:
    return replace(res, reasons=(exc.reason,), detail=exc.detail or None)


def _probe(src: Path, recipe: ShardRecipe) -> ProbeInfo:
    t = recipe.transform
    return probe(src, timeout_s=t.probe_timeout_s, max_memory_bytes=t.max_tool_memory_bytes)


def _probe_facts(p: ProbeInfo, size: int | None, sha256: str | None) -> MediaFacts:
    return MediaFacts(
        container=p.container,
        codec=p.codec,
        width=p.width,
        height=p.height,
        rotation=p.rotation,
        fps=p.fps,
        duration_s=p.duration_s,
        num_frames=p.num_frames,
        bitrate=p.bitrate,
        has_audio=p.has_audio,
        bytes=size,
        sha256=sha256,
    )


def _scores(frames: np.ndarray, chroma: np.ndarray, recipe: ShardRecipe, media_kind: str) -> Scores:
    f = recipe.filters
    s = scores.frame_scores(
        frames,
        hash_frames=recipe.analysis.hash_frames,
        black_luma=f.black_luma,
        blank_std=f.blank_std,
        scene_threshold=f.scene_threshold,
    )
    video = media_kind == "video"
    return Scores(
        motion_score=s.motion_score if video else None,
        black_fraction=s.black_fraction,
        scene_cuts=s.scene_cuts if video else None,
        phash=s.phash or None,
        colour=as_colour(scores.colour_signature(chroma, recipe.analysis.hash_frames)),
    )


def _score_reasons(s: Scores, recipe: ShardRecipe) -> list[str]:
    return filters.score_reasons(
        motion_score=s.motion_score,
        black_fraction=s.black_fraction,
        scene_cuts=s.scene_cuts,
        cfg=recipe.filters,
    )


def _decode_failure(dec: DecodeResult) -> str | None:
    """``media_timeout`` / ``memory_limit`` when ffmpeg was stopped by a limit, else None."""
    if dec.timed_out:
        return "media_timeout"
    return "memory_limit" if dec.out_of_memory else None


def _media_reasons(recipe: ShardRecipe, p: ProbeInfo) -> list[str]:
    return filters.media_reasons(
        media_kind=recipe.media_kind,
        has_video=p.has_video,
        is_image=p.is_image,
        width=p.width,
        height=p.height,
        fps=p.fps,
        duration_s=p.duration_s,
        cfg=recipe.filters,
    )


def _discard(path: Path | None) -> None:
    if path:
        path.unlink(missing_ok=True)


def _video(
    task: ClipTask, recipe: ShardRecipe, staging: Path, p: ProbeInfo, res: ClipResult
) -> ClipResult:
    """Probe filters, then one decode that analyses (and, when wanted, transforms) the clip."""
    reasons = _media_reasons(recipe, p)
    if set(reasons) & filters.HARD_REASONS:
        return replace(res, reasons=tuple(reasons))
    plan = plan_video(p, recipe.transform)
    want = task.want_output and not reasons
    out = staging / f"{task.uid}.mp4" if want else None
    src = Path(task.src)
    dec = decode_video(src, p, plan if want else None, out, recipe.transform, recipe.analysis)
    bad = _decode_failure(dec) or filters.decode_reason(
        returncode=dec.returncode,
        frames=len(dec.frames),
        expected_frames=expected_analysis_frames(p, recipe.transform, recipe.analysis),
        stderr=dec.stderr,
    )
    if bad:
        _discard(dec.output)
        reasons = filters.ordered([*reasons, bad])
        return replace(res, reasons=tuple(reasons), detail=_last(dec.stderr))
    found = _scores(dec.frames, dec.chroma, recipe, "video")
    reasons += _score_reasons(found, recipe)
    res = replace(res, scores=found, reasons=tuple(filters.ordered(reasons)))
    if not want or reasons:
        _discard(dec.output)
        return res
    media = src if plan.kind == "copy" else dec.output
    if media is None:
        return replace(res, reasons=("transcode_failed",), detail=_last(dec.stderr))
    return _staged_video(task, recipe, staging, p, plan, media, res)


def _staged_video(
    task: ClipTask,
    recipe: ShardRecipe,
    staging: Path,
    p: ProbeInfo,
    plan: VideoPlan,
    media: Path,
    res: ClipResult,
) -> ClipResult:
    """The staged mp4 (the original when copied) and its frames, for a clip that passed."""
    t = recipe.transform
    duration = min(p.duration_s or 0.0, t.max_duration_s)
    fps = plan.fps or p.fps
    size, sha256 = media.stat().st_size, sha256_file(media)
    frames: tuple[str, ...] = ()
    if t.frames:
        made = extract_frames(
            media, duration, t.frames, t.frame_quality, staging / task.uid, t.max_tool_memory_bytes
        )
        frames = tuple(str(f) for f in made)
    output = StagedOutput(
        path=str(media),
        ext="mp4",
        bytes=size,
        sha256=sha256,
        width=plan.width,
        height=plan.height,
        fps=fps,
        duration_s=duration,
        num_frames=int(round(duration * fps)) if fps else p.num_frames,
        frames=frames,
    )
    made_here = (str(media),) if plan.kind != "copy" else ()
    return replace(res, transform=plan.kind, output=output, out_files=made_here + frames)


def _image(task: ClipTask, recipe: ShardRecipe, staging: Path, res: ClipResult) -> ClipResult:
    """Pillow reads (and, when wanted, resizes) the image; ffprobe only when Pillow cannot."""
    src = Path(task.src)
    if not src.is_file():
        return replace(res, reasons=("missing_media",))
    res = replace(res, media=MediaFacts(bytes=src.stat().st_size, sha256=sha256_file(src)))
    if res.media.bytes == 0:
        return replace(res, reasons=("empty_file",))
    out = staging / f"{task.uid}.jpg" if task.want_output else None
    try:
        img = process_image(
            src, recipe.images, recipe.filters.max_frame_area, recipe.analysis.size, out
        )
    except MediaError as exc:
        if exc.reason == "undecodable":
            return _not_an_image(src, recipe, res, exc)
        return _failed(res, exc)
    media = replace(
        res.media,
        container=img.format,
        codec=img.format,
        width=img.width,
        height=img.height,
        rotation=img.rotation,
        num_frames=1,
        has_audio=False,
    )
    found = _scores(img.frames, img.chroma, recipe, "image")
    reasons = filters.media_reasons(
        media_kind="image",
        has_video=True,
        is_image=True,
        width=img.width,
        height=img.height,
        fps=None,
        duration_s=None,
        cfg=recipe.filters,
    )
    reasons += _score_reasons(found, recipe)
    res = replace(res, media=media, scores=found, reasons=tuple(filters.ordered(reasons)))
    if reasons or not task.want_output:
        _discard(img.output)
        return res
    return _staged_image(src, img, res)


def _staged_image(src: Path, img: ImageResult, res: ClipResult) -> ClipResult:
    """The staged jpg (the original when copied), for an image that passed."""
    media = src if img.transform == "copy" else img.output
    assert media is not None
    output = StagedOutput(
        path=str(media),
        ext="jpg",
        bytes=media.stat().st_size,
        sha256=sha256_file(media),
        width=img.out_width,
        height=img.out_height,
        fps=None,
        duration_s=None,
        num_frames=1,
    )
    made_here = (str(img.output),) if img.output else ()
    return replace(res, transform=img.transform, output=output, out_files=made_here)


def _not_an_image(src: Path, recipe: ShardRecipe, res: ClipResult, exc: MediaError) -> ClipResult:
    """Pillow cannot read it: ask ffprobe what it is (a video, text, a broken image)."""
    try:
        p = _probe(src, recipe)
    except MediaError as err:
        return _failed(res, err)
    res = replace(res, media=_probe_facts(p, res.media.bytes, res.media.sha256))
    hard = [r for r in _media_reasons(recipe, p) if r in filters.HARD_REASONS]
    return replace(
        res, reasons=tuple(hard or ["undecodable"]), detail=None if hard else exc.detail or None
    )


def _last(stderr: str) -> str | None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else None
