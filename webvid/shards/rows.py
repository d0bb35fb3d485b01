"""The edge of the shard stage: typed records → the data contract's rows and tables.

Takes :class:`~webvid.shards.records.Verdict` and :class:`~webvid.shards.records.ShardSample`
records; produces what the contract fixes for files on disk:

* :func:`verdict_row`: a row of ``verdicts.parquet`` (``VERDICT_SCHEMA``);
* :func:`tar_sample`: the :class:`~webvid.shards.writer.Sample` the writer puts in a tar, whose
  ``meta`` is ``KEY.json`` and whose ``row`` is the per-shard Parquet row (``SAMPLE_SCHEMA``);
  the writer adds only the positional ``key`` (and ``shard``, ``split`` to the row).

This is the only module that spells out those column names for the shard stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webvid import contract
from webvid.shards.records import MediaFacts, ShardSample, Verdict
from webvid.shards.writer import Sample

#: Probe facts of the input, under the same names in ``verdicts.parquet`` and ``KEY.json``.
_ORIGINAL = ("container", "codec", "rotation", "fps", "duration_s", "bitrate", "has_audio", "bytes")


def _media_columns(m: MediaFacts) -> dict[str, Any]:
    return {
        "container": m.container,
        "codec": m.codec,
        "width": m.width,
        "height": m.height,
        "rotation": m.rotation,
        "fps": m.fps,
        "duration_s": m.duration_s,
        "num_frames": m.num_frames,
        "bitrate": m.bitrate,
        "has_audio": m.has_audio,
        "bytes": m.bytes,
        "sha256": m.sha256,
        "short_side": m.short_side,
        "aspect_ratio": m.aspect_ratio,
    }


def _score_columns(v: Verdict) -> dict[str, Any]:
    """The filter scores, as named in ``verdicts.parquet`` and ``KEY.json``'s ``scores``."""
    return {
        "motion_score": v.scores.motion_score,
        "black_fraction": v.scores.black_fraction,
        "scene_cuts": v.scores.scene_cuts,
        "phash": v.scores.phash,
        "caption_words": v.caption.words,
        "caption_lang": v.caption.lang,
        "caption_lang_score": v.caption.lang_score,
        "caption_count": v.caption.count,
    }


def verdict_row(v: Verdict) -> dict[str, Any]:
    """One ``VERDICT_SCHEMA`` row."""
    it, placed, dup = v.item, v.placement, v.duplicate
    return {
        "clip_id": it.clip_id,
        "crawl_dir": it.crawl_dir,
        "media_path": it.media_path,
        "source_id": it.source_id,
        "media_kind": v.media_kind,
        "kept": v.kept,
        "reason": v.reason,
        "reasons": list(v.reasons),
        "detail": v.detail,
        "key": placed.key if placed else None,
        "shard": placed.shard if placed else None,
        "split": placed.split if placed else None,
        "caption_raw": it.caption_raw,
        "caption": v.caption.text,
        **_media_columns(v.media),
        **_score_columns(v),
        "duplicate_of": dup.of if dup else None,
        "hamming": dup.hamming if dup else None,
        "transform": v.transform,
    }


def _shared(s: ShardSample) -> dict[str, Any]:
    """What ``KEY.json`` and the sample's Parquet row both say, under the same names."""
    v, o, it = s.verdict, s.output, s.verdict.item
    return {
        "clip_id": it.clip_id,
        "caption": v.caption.text,
        "caption_raw": it.caption_raw,
        "source_id": it.source_id,
        "url": it.url,
        "page_url": it.page_url,
        "media_kind": v.media_kind,
        "width": o.width,
        "height": o.height,
        "original_width": v.media.width,
        "original_height": v.media.height,
        "duration_s": o.duration_s,
        "fps": o.fps,
        "num_frames": o.num_frames,
        "frames": len(o.frames),
        "sha256": o.sha256,
        "source_sha256": v.media.sha256,
    }


def sample_meta(s: ShardSample) -> dict[str, Any]:
    """``KEY.json`` without its ``key``: the shared fields, the original's facts, every score."""
    original = _media_columns(s.verdict.media)
    return {
        **_shared(s),
        "transform": s.verdict.transform,
        "original": {k: original[k] for k in _ORIGINAL},
        "scores": _score_columns(s.verdict),
    }


def sample_row(s: ShardSample) -> dict[str, Any]:
    """The ``SAMPLE_SCHEMA`` row without ``key``, ``shard`` and ``split``."""
    return {
        **_shared(s),
        "status": contract.STATUS_SUCCESS,
        "error_message": None,
        "ext": s.output.ext,
        "bytes": s.output.bytes,
        "crawl_dir": s.verdict.item.crawl_dir,
    }


def tar_sample(s: ShardSample) -> Sample:
    """The writer's view of a kept clip: files and texts for the tar, its Parquet row."""
    o = s.output
    return Sample(
        media=o.path,
        ext=o.ext,
        caption=s.verdict.caption.text,
        meta=sample_meta(s),
        row=sample_row(s),
        frames=o.frames,
        media_bytes=o.bytes,
        frame_bytes=tuple(Path(f).stat().st_size for f in o.frames),
    )
