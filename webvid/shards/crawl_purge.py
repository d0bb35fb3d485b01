"""Taken-down items out of finished crawl dirs: their records and their downloaded files.

Takes a crawl dir (``manifest.json`` of kind ``crawl``; ``records/part-*.parquet``,
``media/``) and the identifiers a takedown removes; produces the same dir without those
items. The shard stage reads crawl dirs (:mod:`webvid.shards.inputs`), so it knows their
layout from the data contract alone.

* :func:`match_records`: the record rows on the list (clip id, source id, media URL, page
  URL, the body's sha256), with their media paths;
* :func:`purge`: the media files deleted, every records part that holds a listed item
  rewritten without its rows (atomically, only when it changes), then the manifest's counts
  (``records``, the per-status counts, ``stats.by_reason`` and ``stats.bytes``) recomputed
  from the parts. Each step reads the dir as it is now, so running it twice, or after a kill,
  ends in the same bytes.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from webvid import contract
from webvid.errors import WebvidError
from webvid.exclude import ExcludeSet
from webvid.io import read_json, remove_stale_temps, safe_join, write_json, write_parquet

_COLUMNS = ("clip_id", "source_id", "media_url", "page_url", "sha256", "media_path")
#: a record column → the name the takedown log gives it (a sample's)
_AS_LOGGED = {"media_url": "url", "sha256": "source_sha256"}


def is_crawl_dir(d: Path) -> bool:
    """A finished crawl dir: its manifest says so."""
    try:
        return read_json(d / contract.MANIFEST_NAME).get("kind") == "crawl"
    except (OSError, ValueError):
        return False


def parts(crawl_dir: Path) -> list[Path]:
    return sorted(crawl_dir.glob(contract.CRAWL_RECORDS_GLOB))


def match_records(crawl_dir: Path, *excl: ExcludeSet) -> list[dict[str, Any]]:
    """Record rows of ``crawl_dir`` on a list (the first set that matches names the
    identifier), as ``{clip_id, source_id, url, page_url, source_sha256, media_path,
    matched, identifier}``."""
    found: dict[str, dict[str, Any]] = {}
    for path in parts(crawl_dir):
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=[c for c in _COLUMNS if c in names])
        for row in table.to_pylist():
            hit = next((h for e in excl if (h := e.match_row(row)) is not None), None)
            if hit is None:
                continue
            found[row["clip_id"]] = {  # a later part's row is the item's current state
                "clip_id": row["clip_id"],
                "source_id": row.get("source_id"),
                "url": row.get("media_url"),
                "page_url": row.get("page_url"),
                "source_sha256": row.get("sha256"),
                "media_path": row.get("media_path"),
                "matched": _AS_LOGGED.get(hit[0], hit[0]),
                "identifier": hit[1],
            }
    return list(found.values())


def _delete_media(crawl_dir: Path, media_paths: Collection[str]) -> None:
    for rel in media_paths:
        try:
            path = safe_join(crawl_dir, rel)
        except WebvidError:
            continue  # a hostile path in someone else's records: never followed
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _rewrite_parts(crawl_dir: Path, clip_ids: Collection[str]) -> None:
    ids = pa.array(sorted(clip_ids), pa.string())
    for path in parts(crawl_dir):
        table = pq.read_table(path)
        keep = pc.fill_null(pc.invert(pc.is_in(table.column("clip_id"), ids)), True)
        kept = table.filter(keep)
        if kept.num_rows < table.num_rows:  # an emptied part stays: the numbering has no gaps
            write_parquet(path, kept)


def _rewrite_manifest(crawl_dir: Path) -> None:
    path = crawl_dir / contract.MANIFEST_NAME
    old = read_json(path)
    by_status: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    total_bytes = 0
    for p in parts(crawl_dir):
        names = pq.read_schema(p).names
        t = pq.read_table(p, columns=[c for c in ("status", "reason", "bytes") if c in names])
        by_status.update(t.column("status").to_pylist())
        if "reason" in names:
            by_reason.update(r for r in t.column("reason").to_pylist() if r)
        if "bytes" in names:
            total_bytes += sum(b for b in t.column("bytes").to_pylist() if b)
    counts = dict(old.get("counts", {}))
    for status in set(counts) & set(contract.STATUSES):
        counts[status] = by_status.get(status, 0)
    counts["records"] = sum(by_status.values())
    new = {**old, "counts": counts}
    if isinstance(old.get("stats"), dict):
        new["stats"] = {
            **old["stats"],
            "by_reason": dict(by_reason.most_common()),
            "bytes": total_bytes,
        }
    if new != old:
        write_json(path, new)


def purge(crawl_dir: Path, clip_ids: Collection[str], media_paths: Collection[str]) -> None:
    """Remove the items ``clip_ids`` from ``crawl_dir``: media, records, manifest counts."""
    for folder in (crawl_dir, crawl_dir / "records"):
        remove_stale_temps(folder)
    _delete_media(crawl_dir, media_paths)
    _rewrite_parts(crawl_dir, clip_ids)
    _rewrite_manifest(crawl_dir)
