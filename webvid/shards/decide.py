"""Global decisions: merge per-clip results into verdicts, find duplicates, build the samples.

Takes the inputs, their caption facts (parent) and per-clip results (pool); produces one
verdict row per input (``contract.VERDICT_SCHEMA``: kept or the reasons it was not, and every
score), and for kept clips the :class:`~webvid.shards.writer.Sample` that goes into a tar.
Pure apart from reading file sizes of staged outputs; the order of everything is fixed by
clip id, so the result does not depend on which worker finished first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webvid import contract
from webvid.shards import dedup, filters
from webvid.shards.inputs import InputItem
from webvid.shards.recipe import ShardRecipe
from webvid.shards.writer import Sample

_RESULT_COLUMNS = (
    "container",
    "codec",
    "width",
    "height",
    "rotation",
    "fps",
    "duration_s",
    "num_frames",
    "bitrate",
    "has_audio",
    "bytes",
    "sha256",
    "short_side",
    "aspect_ratio",
    "motion_score",
    "black_fraction",
    "scene_cuts",
    "phash",
    "transform",
)
_CAPTION_COLUMNS = (
    "caption",
    "caption_words",
    "caption_lang",
    "caption_lang_score",
    "caption_count",
)


def decide(
    items: list[InputItem],
    facts: dict[str, dict[str, Any]],
    results: dict[str, dict[str, Any]],
    recipe: ShardRecipe,
) -> dict[str, dict[str, Any]]:
    """uid → verdict row (without key/shard/split, which the shard plan fills in)."""
    rows: dict[str, dict[str, Any]] = {}
    for it in items:
        res = results.get(it.uid) or {  # never processed: rejected while reading, or no file
            "reasons": [it.reject or "missing_media"],
            "detail": it.reject_detail or it.media_path,
        }
        row: dict[str, Any] = {
            "clip_id": it.clip_id,
            "crawl_dir": it.crawl_dir,
            "media_path": it.media_path,
            "source_id": it.source_id,
            "media_kind": recipe.media_kind,
            "caption_raw": it.caption_raw,
            "detail": res.get("detail"),
        }
        row.update({k: res.get(k) for k in _RESULT_COLUMNS})
        row.update({k: facts[it.uid][k] for k in _CAPTION_COLUMNS})
        row["reasons"] = filters.ordered(
            [*res.get("reasons", []), *facts[it.uid]["caption_reasons"]]
        )
        rows[it.uid] = row
    order = sorted(items, key=lambda i: (bool(rows[i.uid]["reasons"]), i.clip_id, i.uid))
    dups = dedup.find_duplicates(
        (
            dedup.DedupItem(
                i.uid,
                i.clip_id,
                rows[i.uid]["sha256"],
                i.source_id or i.clip_id,
                rows[i.uid]["phash"],
                _colour(results[i.uid].get("colour")),
            )
            for i in order
            if i.uid in results
        ),
        recipe.dedup,
    )
    for uid, d in dups.items():
        row = rows[uid]
        row["reasons"] = filters.ordered([*row["reasons"], d.reason])
        row.update(duplicate_of=d.of, hamming=d.hamming)
    for uid, row in rows.items():
        row["kept"] = not row["reasons"]
        row["reason"] = row["reasons"][0] if row["reasons"] else None
        if row["kept"] and not (results.get(uid) or {}).get("out"):
            raise RuntimeError(
                f"kept clip {row['clip_id']} has no staged output"
            )  # a bug, not bad data
        if not row["kept"]:
            row["transform"] = None
    return rows


def _colour(value: Any) -> tuple[tuple[float, ...], ...] | None:
    return tuple(tuple(float(x) for x in frame) for frame in value) if value else None


def sample_for(it: InputItem, verdict: dict[str, Any], result: dict[str, Any]) -> Sample:
    """The tar sample of a kept clip: media, caption, JSON metadata and Parquet row."""
    o = result["out"]
    frames = tuple(o.get("frames") or ())
    meta = {
        "clip_id": it.clip_id,
        "caption": verdict["caption"],
        "caption_raw": it.caption_raw,
        "source_id": it.source_id,
        "url": it.url,
        "page_url": it.page_url,
        "media_kind": verdict["media_kind"],
        "width": o["width"],
        "height": o["height"],
        "original_width": verdict["width"],
        "original_height": verdict["height"],
        "duration_s": o["duration_s"],
        "fps": o["fps"],
        "num_frames": o["num_frames"],
        "frames": len(frames),
        "sha256": o["sha256"],
        "source_sha256": verdict["sha256"],
        "transform": verdict["transform"],
        "original": {
            k: verdict[k]
            for k in (
                "container",
                "codec",
                "rotation",
                "fps",
                "duration_s",
                "bitrate",
                "has_audio",
                "bytes",
            )
        },
        "scores": {
            k: verdict[k]
            for k in (
                "motion_score",
                "black_fraction",
                "scene_cuts",
                "phash",
                "caption_words",
                "caption_lang",
                "caption_lang_score",
                "caption_count",
            )
        },
    }
    row = {
        "url": it.url,
        "caption": verdict["caption"],
        "status": contract.STATUS_SUCCESS,
        "error_message": None,
        "width": o["width"],
        "height": o["height"],
        "original_width": verdict["width"],
        "original_height": verdict["height"],
        "sha256": o["sha256"],
        "clip_id": it.clip_id,
        "media_kind": verdict["media_kind"],
        "ext": o["ext"],
        "caption_raw": it.caption_raw,
        "duration_s": o["duration_s"],
        "fps": o["fps"],
        "num_frames": o["num_frames"],
        "frames": len(frames),
        "bytes": o["bytes"],
        "source_sha256": verdict["sha256"],
        "source_id": it.source_id,
        "page_url": it.page_url,
        "crawl_dir": it.crawl_dir,
    }
    return Sample(
        media=o["path"],
        ext=o["ext"],
        caption=verdict["caption"],
        meta=meta,
        row=row,
        frames=frames,
        media_bytes=o["bytes"],
        frame_bytes=tuple(Path(f).stat().st_size for f in frames),
    )
