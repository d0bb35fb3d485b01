"""``webvid refilter``: a finished shard set re-curated with model scores, only what changes rewritten.

Takes a shard dir written by ``webvid shard`` (``manifest.json`` of kind ``shards``), a scores
table of it (``webvid score``) and the recipe's :class:`~webvid.shards.recipe.FilterConfig`;
produces the same dir without the samples the model-score filters reject:

1. decisions, pure: each kept verdict row's ``caption_mismatch`` (``min_caption_agreement``,
   ``min_caption_cosine``), then among the rows still kept ``duplicate_semantic`` past
   ``max_per_semantic_cluster`` — the same functions ``webvid shard --scores`` uses
   (:func:`webvid.shards.filters.model_reasons`, :func:`webvid.shards.modelscores.semantic_excess`);
2. each shard that loses samples rewritten by :func:`webvid.shards.rewrite.rewrite_shard` (the
   takedown's: kept members byte-identical, keys kept); the other shards are not opened;
3. ``verdicts.parquet``: every row gets its model scores, kept or not; a newly rejected row its
   reasons, ``detail`` (the threshold, the key it had) and no placement;
4. ``index.parquet`` and ``manifest.json`` recomputed from the files (``rewrite_index``,
   ``rewrite_manifest``); the manifest's config records the thresholds and the scores table.

Each step reads the files as they are and writes only what differs, so a run killed anywhere
finishes on the rerun (the verdicts are written after the shards: until then the same samples
are found again), and a second run changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from webvid import contract
from webvid.errors import InputError
from webvid.io import read_json, write_json, write_parquet
from webvid.shards import filters
from webvid.shards.modelscores import read_scores, scores_for, semantic_excess
from webvid.shards.recipe import FilterConfig
from webvid.shards.rewrite import rewrite_index, rewrite_manifest, rewrite_shard


def _detail(row: dict[str, Any], reason: str, cfg: FilterConfig) -> str:
    was = f"was {row['key']} in {row['split']}/{row['shard']}"
    if reason == "duplicate_semantic":
        return f"{was}; over max_per_semantic_cluster={cfg.max_per_semantic_cluster}"
    return (
        f"{was}; caption_agreement {row['caption_agreement']} (min {cfg.min_caption_agreement}), "
        f"caption_cosine {row['caption_cosine']} (min {cfg.min_caption_cosine})"
    )


def decide_rows(
    rows: list[dict[str, Any]], scores_path: str | Path, cfg: FilterConfig
) -> list[dict[str, Any]]:
    """The verdict rows after the model-score filters (new dicts; the input is not changed)."""
    scores = read_scores(scores_path)
    out = []
    for row in rows:
        new = {**row, **scores_for(scores, row["clip_id"]).columns()}
        if new["kept"]:
            extra = filters.model_reasons(
                caption_agreement=new["caption_agreement"],
                caption_cosine=new["caption_cosine"],
                cfg=cfg,
            )
            if extra:
                new.update(kept=False, reasons=extra, reason=extra[0])
        out.append(new)
    kept = [(r["clip_id"], scores_for(scores, r["clip_id"])) for r in out if r["kept"]]
    over = semantic_excess(kept, cfg.max_per_semantic_cluster)
    for r in out:
        if r["kept"] and r["clip_id"] in over:
            r.update(kept=False, reasons=["duplicate_semantic"], reason="duplicate_semantic")
            r["duplicate_of"], r["hamming"] = over[r["clip_id"]], None
    for r, old in zip(out, rows, strict=True):
        if old["kept"] and not r["kept"]:
            r["detail"] = _detail(r, r["reason"], cfg)
            r["key"] = r["shard"] = r["split"] = None
            r["transform"] = None
    return out


def refilter(
    shard_dir: str | Path, scores: str | Path, cfg: FilterConfig, *, dry_run: bool = False
) -> dict[str, Any]:
    """Apply the model-score filters of ``cfg`` to the finished ``shard_dir`` (see module doc)."""
    root = Path(shard_dir)
    manifest_path = root / contract.MANIFEST_NAME
    if not manifest_path.is_file() or read_json(manifest_path).get("kind") != "shards":
        raise InputError(f"{root}: not a finished shard dir (no manifest.json of kind shards)")
    if not cfg.uses_scores:
        raise InputError(
            "no model-score filter set: give min_caption_agreement, min_caption_cosine or "
            "max_per_semantic_cluster (--set filters.KEY=VALUE or the recipe's [filters])"
        )
    verdict_path = root / contract.VERDICTS_NAME
    rows = pq.read_table(verdict_path).to_pylist()
    new = decide_rows(rows, scores, cfg)
    remove: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r, old in zip(new, rows, strict=True):
        if old["kept"] and not r["kept"]:
            remove[(old["split"], old["shard"])].append(old["key"])
    funnel: dict[str, int] = defaultdict(int)
    for r, old in zip(new, rows, strict=True):
        if old["kept"] and not r["kept"]:
            funnel[r["reason"]] += 1
    result: dict[str, Any] = {
        "shard_dir": str(root),
        "removed": sum(len(k) for k in remove.values()),
        "by_reason": dict(sorted(funnel.items())),
        "shards_rewritten": len(remove),
        "kept": sum(1 for r in new if r["kept"]),
        "dry_run": dry_run,
    }
    if dry_run:
        return result
    for (split, shard), keys in sorted(remove.items()):
        rewrite_shard(root / split, shard, set(keys))
    if new != rows:
        write_parquet(verdict_path, contract.rows_to_table(new, contract.VERDICT_SCHEMA))
    rewrite_index(root)
    _record_config(manifest_path, scores, cfg)
    rewrite_manifest(root)
    return result


def _record_config(path: Path, scores: str | Path, cfg: FilterConfig) -> None:
    """The manifest's recipe with these filters and the scores table (written if it differs)."""
    manifest = read_json(path)
    config = dict(manifest.get("config") or {})
    filt = dict(config.get("filters") or {})
    for key in ("min_caption_agreement", "min_caption_cosine", "max_per_semantic_cluster"):
        filt[key] = asdict(cfg)[key]
    new = {**manifest, "config": {**config, "filters": filt, "scores": str(scores)}}
    if new != manifest:
        write_json(path, new)
