"""The per-clip unit of work that runs in the process pool: probe, decode once, score, transform.

Takes a :class:`ClipTask` (a file path and what to do with it; only paths cross the process
boundary) and the recipe (set once per worker process by :func:`init_worker`); produces a
plain dict of facts, scores, local rejection reasons and, for clips still in the running,
the staged output (``STAGING/<uid>.mp4`` or ``.jpg`` plus frames) ready to be put in a tar.

Every expected per-file failure becomes a reason in the result; nothing here raises for a bad
file. Every ffprobe / ffmpeg runs under the recipe's memory ceiling and time limits
(``transform.max_tool_memory_bytes``, ``transform.probe_timeout_s``). Results are cached as ``STAGING/<uid>.json`` (written after the outputs), so a rerun
after a crash redoes only the clips that had not finished.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from webvid.io import atomic_write
from webvid.shards import filters, scores
from webvid.shards.images import process_image
from webvid.shards.probe import MediaError, ProbeInfo, probe, sha256_file
from webvid.shards.recipe import ShardRecipe
from webvid.shards.transform import (
    DecodeResult,
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


def _probe_fields(p: ProbeInfo) -> dict[str, Any]:
    return {
        "container": p.container,
        "codec": p.codec,
        "width": p.width,
        "height": p.height,
        "rotation": p.rotation,
        "fps": p.fps,
        "duration_s": p.duration_s,
        "num_frames": p.num_frames,
        "bitrate": p.bitrate,
        "has_audio": p.has_audio,
    }


def _score_fields(
    frames: np.ndarray, chroma: np.ndarray, recipe: ShardRecipe, media_kind: str
) -> dict[str, Any]:
    f = recipe.filters
    s = scores.frame_scores(
        frames,
        hash_frames=recipe.analysis.hash_frames,
        black_luma=f.black_luma,
        blank_std=f.blank_std,
        scene_threshold=f.scene_threshold,
    )
    video = media_kind == "video"
    return {
        "motion_score": s.motion_score if video else None,
        "black_fraction": s.black_fraction,
        "scene_cuts": s.scene_cuts if video else None,
        "phash": s.phash or None,
        "colour": scores.colour_signature(chroma, recipe.analysis.hash_frames),
    }


def process(task: ClipTask) -> dict[str, Any]:
    """Analyse (and transform) one clip; cached by uid in the staging folder."""
    assert _RECIPE is not None, "init_worker was not called"
    staging = Path(task.staging)
    cache = staging / f"{task.uid}.json"
    if cache.is_file():
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("want_output") == task.want_output and all(
            Path(p).is_file() for p in cached.get("out_files", [])
        ):
            return cached
    result = _process(task, _RECIPE, staging)
    result["want_output"] = task.want_output
    # atomic but not fsynced: a cache entry lost to a power cut is recomputed, never half-read
    with atomic_write(cache, "w", durable=False, encoding="utf-8") as fh:
        json.dump(result, fh)
    return result


def _process(task: ClipTask, recipe: ShardRecipe, staging: Path) -> dict[str, Any]:
    res: dict[str, Any] = {"uid": task.uid, "reasons": [], "detail": None, "out_files": []}
    src = Path(task.src)
    if recipe.media_kind == "image":  # Pillow first: an ffprobe process per image costs more
        return _image(task, recipe, staging, res)
    try:
        p = _probe(src, recipe)
    except MediaError as exc:
        res.update(reasons=[exc.reason], detail=exc.detail or None)
        if src.is_file():
            res.update(bytes=src.stat().st_size, sha256=sha256_file(src))
        return res
    res.update(_probe_fields(p), bytes=p.bytes, sha256=sha256_file(src))
    return _video(task, recipe, staging, p, res)


def _probe(src: Path, recipe: ShardRecipe) -> ProbeInfo:
    t = recipe.transform
    return probe(src, timeout_s=t.probe_timeout_s, max_memory_bytes=t.max_tool_memory_bytes)


def _decode_failure(dec: DecodeResult) -> str | None:
    """``media_timeout`` / ``memory_limit`` when ffmpeg was stopped by a limit, else None."""
    if dec.timed_out:
        return "media_timeout"
    return "memory_limit" if dec.out_of_memory else None


def _media_reasons(
    recipe: ShardRecipe, p: ProbeInfo, width: int | None, height: int | None
) -> list[str]:
    return filters.media_reasons(
        media_kind=recipe.media_kind,
        has_video=p.has_video,
        is_image=p.is_image,
        width=width,
        height=height,
        fps=p.fps,
        duration_s=p.duration_s,
        cfg=recipe.filters,
    )


def _geometry(res: dict[str, Any], width: int | None, height: int | None) -> None:
    if width and height:
        res.update(short_side=min(width, height), aspect_ratio=round(width / height, 6))


def _video(
    task: ClipTask, recipe: ShardRecipe, staging: Path, p: ProbeInfo, res: dict[str, Any]
) -> dict[str, Any]:
    reasons = _media_reasons(recipe, p, p.width, p.height)
    _geometry(res, p.width, p.height)
    if set(reasons) & filters.HARD_REASONS:
        res["reasons"] = reasons
        return res
    plan = plan_video(p, recipe.transform)
    want = task.want_output and not reasons
    out = staging / f"{task.uid}.mp4" if want else None
    dec = decode_video(
        src := Path(task.src), p, plan if want else None, out, recipe.transform, recipe.analysis
    )
    bad = _decode_failure(dec) or filters.decode_reason(
        returncode=dec.returncode,
        frames=len(dec.frames),
        expected_frames=expected_analysis_frames(p, recipe.transform, recipe.analysis),
        stderr=dec.stderr,
    )
    if bad:
        res.update(reasons=filters.ordered([*reasons, bad]), detail=_last(dec.stderr))
        if dec.output:
            dec.output.unlink(missing_ok=True)
        return res
    res.update(_score_fields(dec.frames, dec.chroma, recipe, "video"))
    reasons += filters.score_reasons(
        motion_score=res["motion_score"],
        black_fraction=res["black_fraction"],
        scene_cuts=res["scene_cuts"],
        cfg=recipe.filters,
    )
    res["reasons"] = filters.ordered(reasons)
    if not want or reasons:
        if dec.output:
            dec.output.unlink(missing_ok=True)
        return res
    media = src if plan.kind == "copy" else dec.output
    if media is None:
        res.update(reasons=["transcode_failed"], detail=_last(dec.stderr))
        return res
    duration = min(p.duration_s or 0.0, recipe.transform.max_duration_s)
    fps = plan.fps or p.fps
    res["transform"] = plan.kind
    res["out"] = {
        "path": str(media),
        "bytes": media.stat().st_size,
        "sha256": sha256_file(media),
        "width": plan.width,
        "height": plan.height,
        "fps": fps,
        "duration_s": duration,
        "num_frames": int(round(duration * fps)) if fps else p.num_frames,
        "ext": "mp4",
        "frames": [],
    }
    if plan.kind != "copy":
        res["out_files"].append(str(media))
    if recipe.transform.frames:
        made = extract_frames(
            media,
            duration,
            recipe.transform.frames,
            recipe.transform.frame_quality,
            staging / task.uid,
            recipe.transform.max_tool_memory_bytes,
        )
        res["out"]["frames"] = [str(f) for f in made]
        res["out_files"] += [str(f) for f in made]
    return res


def _image(
    task: ClipTask, recipe: ShardRecipe, staging: Path, res: dict[str, Any]
) -> dict[str, Any]:
    src = Path(task.src)
    if not src.is_file():
        res["reasons"] = ["missing_media"]
        return res
    res.update(bytes=src.stat().st_size, sha256=sha256_file(src))
    if res["bytes"] == 0:
        res["reasons"] = ["empty_file"]
        return res
    out = staging / f"{task.uid}.jpg" if task.want_output else None
    try:
        img = process_image(
            src, recipe.images, recipe.filters.max_frame_area, recipe.analysis.size, out
        )
    except MediaError as exc:
        if exc.reason == "undecodable":
            return _not_an_image(src, recipe, res, exc)
        res.update(reasons=[exc.reason], detail=exc.detail or None)
        return res
    res.update(
        container=img.format,
        codec=img.format,
        width=img.width,
        height=img.height,
        rotation=img.rotation,
        num_frames=1,
        has_audio=False,
    )
    _geometry(res, img.width, img.height)
    res.update(_score_fields(img.frames, img.chroma, recipe, "image"))
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
    reasons += filters.score_reasons(
        motion_score=None, black_fraction=res["black_fraction"], scene_cuts=None, cfg=recipe.filters
    )
    res["reasons"] = filters.ordered(reasons)
    if reasons or not task.want_output:
        if img.output:
            img.output.unlink(missing_ok=True)
        return res
    media = src if img.transform == "copy" else img.output
    assert media is not None
    res["transform"] = img.transform
    res["out"] = {
        "path": str(media),
        "bytes": media.stat().st_size,
        "sha256": sha256_file(media),
        "width": img.out_width,
        "height": img.out_height,
        "fps": None,
        "duration_s": None,
        "num_frames": 1,
        "ext": "jpg",
        "frames": [],
    }
    if img.output:
        res["out_files"].append(str(img.output))
    return res


def _not_an_image(
    src: Path, recipe: ShardRecipe, res: dict[str, Any], exc: MediaError
) -> dict[str, Any]:
    """Pillow cannot read it: ask ffprobe what it is (a video, text, a broken image)."""
    try:
        p = _probe(src, recipe)
    except MediaError as err:
        res.update(reasons=[err.reason], detail=err.detail or None)
        return res
    res.update(_probe_fields(p))
    _geometry(res, p.width, p.height)
    reasons = _media_reasons(recipe, p, p.width, p.height)
    hard = [r for r in reasons if r in filters.HARD_REASONS]
    res.update(reasons=hard or ["undecodable"], detail=None if hard else exc.detail or None)
    return res


def _last(stderr: str) -> str | None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else None
