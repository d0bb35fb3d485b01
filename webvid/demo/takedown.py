"""The demo's last step: a takedown of two clips, and the proof that they are gone.

Takes the demo folder after its example searches (shards, ``run/index.parquet``, the final
checkpoint) and produces a takedown as a publisher would ask for it: ``OUT/takedown-request.txt``
naming the best hit of the first two example searches (one by its clip page URL, one by its
media URL), ``webvid takedown`` run on the whole folder (:func:`webvid.shards.takedown.run`),
and a dict for ``summary.json`` and the report: the clips, what the takedown removed, and for
each clip where it can still be found — samples in the shard Parquet, members in the tars,
rows in the embedding index, and its rank when the index is searched for its own caption
(over every clip of the index), before and after.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from webvid import io as wio
from webvid.log import Progress

REASON = "demo: the publisher asked for these two clips to be removed"


def _samples(shards: Path) -> dict[str, dict[str, Any]]:
    """key → sample row, over every per-shard Parquet of the video shard set."""
    rows = [r for p in sorted(shards.glob("*/0*.parquet")) for r in pq.read_table(p).to_pylist()]
    return {r["key"]: r for r in rows}


def _in_tars(shards: Path, key: str) -> int:
    n = 0
    for tar_path in sorted(shards.glob("*/*.tar")):
        with tarfile.open(tar_path) as tar:
            n += sum(1 for name in tar.getnames() if name.split(".", 1)[0] == key)
    return n


def _rank(index: Path, ckpt: Path, caption: str, key: str) -> int | None:
    """The rank of ``key`` when the whole index is searched for ``caption`` (None: absent)."""
    from webvid.retrieval.search import search

    n = pq.read_metadata(index).num_rows
    hits = search(index, [caption], k=max(1, n), checkpoint=ckpt)[0]
    return next((i for i, h in enumerate(hits, 1) if h.key == key), None)


def _where(out: Path, ckpt: Path, clip: dict[str, Any]) -> dict[str, Any]:
    shards, index = out / "shards" / "videos", out / "run" / "index.parquet"
    keys = pq.read_table(index, columns=["key"]).column("key").to_pylist()
    return {
        "samples": sum(1 for r in _samples(shards).values() if r["clip_id"] == clip["clip_id"]),
        "tar_members": _in_tars(shards, clip["key"]),
        "index_rows": keys.count(clip["key"]),
        "search_rank": _rank(index, ckpt, clip["caption"], clip["key"]),
        "index_size": len(keys),
    }


def takedown_two(out: Path, searches: list[dict[str, Any]], progress: Progress) -> dict[str, Any]:
    """Take down the best hit of the first two searches; say where they can be found after."""
    from webvid.shards.takedown import run as takedown

    ckpt = out / "run" / "latest.pt"
    samples = _samples(out / "shards" / "videos")
    keys: list[str] = []
    for entry in searches:
        key = next((h["key"] for h in entry["hits"] if h["key"] in samples), None)
        if key is not None and key not in keys:
            keys.append(key)
    keys += [k for k in samples if k not in keys]  # fewer than two searches: any clips
    picked = [samples[k] for k in keys[:2]]
    clips = [{k: s[k] for k in ("key", "clip_id", "caption", "url", "page_url")} for s in picked]
    before = [_where(out, ckpt, c) for c in clips]
    request = out / "takedown-request.txt"
    lines = ["# a publisher asks for these clips to be removed", clips[0]["page_url"]]
    lines += [c["url"] for c in clips[1:]]
    wio.write_text(request, "\n".join(lines) + "\n")
    progress.message(f"takedown of {len(clips)} clips: {', '.join(c['key'] for c in clips)}")
    done = takedown(request, out, reason=REASON, progress=progress)
    after = [_where(out, ckpt, c) for c in clips]
    return {
        "request": str(request),
        "reason": REASON,
        "takedown_id": done.takedown_id,
        "clips": [
            {**c, "before": b, "after": a} for c, b, a in zip(clips, before, after, strict=True)
        ],
        "removed": {
            "samples": done.samples,
            "rejected_inputs": done.inputs,
            "crawl_records": done.records,
            "index_rows": done.index_rows,
            "shards_rewritten": done.shards,
        },
        "after": _after_counts(out),
    }


def _after_counts(out: Path) -> dict[str, Any]:
    """The shard and crawl manifests' counts after the takedown (summary.json keeps the runs')."""
    result: dict[str, Any] = {}
    for name in ("videos", "images"):
        shard = wio.read_json(out / "shards" / name / "manifest.json")
        crawl = wio.read_json(out / "crawl" / name / "manifest.json")
        result[name] = {
            "kept": shard["counts"].get("kept"),
            "funnel": shard.get("funnel", []),
            "crawl_by_status": {k: v for k, v in crawl["counts"].items() if k != "records" and v},
        }
    return result
