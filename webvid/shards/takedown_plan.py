"""What a takedown removes under a data root: the plan (reads only, JSON-ready).

Takes the identifiers of a list (:class:`webvid.exclude.Entry`), a data root and the extra
embedding indexes; produces the plan :mod:`webvid.shards.takedown` journals and applies:

* every finished shard dir under the root (``manifest.json`` of kind ``shards``): the samples
  on the list, searched in the per-shard Parquet by clip id, source id, media URL, page URL,
  both sha256 values and key; the ``verdicts.parquet`` rows by clip id, source id, sha256 and
  key. The sha256 values of what matched join the search ("copies"), so every copy of a
  removed file goes too (an exact duplicate rejected in curation, the same file elsewhere);
* every finished crawl dir under the root (kind ``crawl``): the records of the listed items,
  of their copies and of every matched sample (by its clip id), with their media files;
* every embedding index (a Parquet file with ``webvid embed``'s metadata, whatever its
  name, and each extra one): the rows of the removed samples (key and tar path);
* the log rows: one per removed sample, per rejected input dropped from the verdicts, per
  crawl record, and per listed identifier that matched nothing and no earlier takedown of the
  root logged.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from webvid import contract
from webvid.exclude import ROW_COLUMNS, Entry, ExcludeSet, read_log
from webvid.io import read_json
from webvid.shards import crawl_purge, rewrite

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
_SKIP_DIRS = {".venv", ".git", "__pycache__", "node_modules", ".cache"}
_SAMPLE_COLS = ("key", "shard", "split", "clip_id", "source_id", "url", "page_url", "sha256")
_VERDICT_COLS = ("clip_id", "crawl_dir", "source_id", "sha256", "key", "kept")


def _walk(root: Path) -> list[Path]:
    """Every folder under ``root`` (itself first), hidden and tool folders skipped."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        found.append(Path(dirpath))
    return found


def find_shard_sets(root: Path) -> list[Path]:
    """Finished shard dirs under ``root``; unfinished ones (shards, no manifest) are logged."""
    sets = []
    for d in _walk(root):
        manifest = d / contract.MANIFEST_NAME
        if manifest.is_file():
            try:
                kind = read_json(manifest).get("kind")
            except (OSError, ValueError):
                kind = None
            if kind == "shards":
                sets.append(d)
        elif any((d / s).is_dir() and any((d / s).glob("*_stats.json")) for s in SPLITS):
            log.warning("%s: an unfinished shard run (no manifest.json); finish it first", d)
    return sets


def find_embedding_indexes(root: Path) -> list[Path]:
    """Parquet files under ``root`` written by ``webvid embed`` (known by their metadata)."""
    skip = {contract.VERDICTS_NAME, contract.TAKEDOWNS_NAME}
    return [
        p
        for d in _walk(root)
        for p in sorted(d.glob("*.parquet"))
        if p.name not in skip
        and not contract.SAMPLE_PARQUET_RE.match(p.name)
        and d.name != "records"
        and rewrite.is_embedding_index(p)
    ]


def _kind_of(column: str) -> str:
    return ROW_COLUMNS[column]


def _match(row: dict[str, Any], *sets: ExcludeSet) -> tuple[str, str] | None:
    """The first set's match, else the next's: an identifier as listed wins over a copy's."""
    for excl in sets:
        hit = excl.match_row(row)
        if hit is not None:
            return hit
    return None


def _match_samples(shard_dir: Path, *excl: ExcludeSet) -> list[dict[str, Any]]:
    """Sample rows (with ``matched``/``identifier``) of ``shard_dir`` that are on the list."""
    found = []
    for split in SPLITS:
        for path in sorted((shard_dir / split).glob("*.parquet")):
            if not contract.SAMPLE_PARQUET_RE.match(path.name):
                continue
            cols = [*_SAMPLE_COLS, "source_sha256"]
            for row in pq.read_table(path, columns=cols).to_pylist():
                hit = _match(row, *excl)
                if hit is not None:
                    found.append({**row, "matched": hit[0], "identifier": hit[1]})
    return found


def _match_verdicts(
    shard_dir: Path, keys: set[str], *excl: ExcludeSet
) -> tuple[list[tuple[str, str | None]], list[dict[str, Any]]]:
    """The verdict rows to drop (``(clip_id, crawl_dir)``) and the log rows of the rejected
    inputs among them (kept ones are logged as samples)."""
    path = shard_dir / contract.VERDICTS_NAME
    if not path.is_file():
        return [], []
    drop, rejected = [], []
    for row in pq.read_table(path, columns=list(_VERDICT_COLS)).to_pylist():
        # a verdict's sha256 is the input file's: the samples' source_sha256
        hit = _match({**row, "sha256": None, "source_sha256": row["sha256"]}, *excl)
        if row["key"] in keys or hit is not None:
            drop.append((row["clip_id"], row["crawl_dir"]))
            if row["key"] not in keys and hit is not None:
                rejected.append(
                    {
                        "clip_id": row["clip_id"],
                        "source_id": row["source_id"],
                        "source_sha256": row["sha256"],
                        "matched": hit[0],
                        "identifier": hit[1],
                    }
                )
    return drop, rejected


def _with_copies(excl: ExcludeSet, samples: Sequence[dict[str, Any]]) -> ExcludeSet:
    """``excl`` plus the sha256 values of the matched samples (every copy of their files)."""
    shas = {s[c].lower() for s in samples for c in ("sha256", "source_sha256") if s.get(c)}
    if shas <= excl.sha256s:
        return excl
    return ExcludeSet(excl.clip_ids, excl.urls, excl.sha256s | shas, excl.keys)


def plan(
    entries: Sequence[Entry],
    root: Path,
    *,
    list_path: str,
    reason: str | None,
    now: _dt.datetime,
    indexes: Sequence[Path] = (),
) -> dict[str, Any]:
    """What a takedown of ``entries`` removes under ``root`` (reads only; JSON-ready)."""
    listed = ExcludeSet.of(entries)
    sets = find_shard_sets(root)
    matched = [s for d in sets for s in _match_samples(d, listed)]
    copies = _with_copies(listed, matched)
    plan_sets, log_rows, removed_tars = [], [], []
    for d in sets:
        samples = _match_samples(d, listed, copies)
        keys = {s["key"] for s in samples}
        drop, rejected = _match_verdicts(d, keys, listed, copies)
        if not samples and not drop:
            continue
        rel = os.path.relpath(d, root)
        shards: dict[str, list[str]] = {}
        for s in samples:
            shards.setdefault(f"{s['split']}/{s['shard']}", []).append(s["key"])
            removed_tars.append((s["key"], d / s["split"] / f"{s['shard']}.tar"))
        plan_sets.append(
            {
                "dir": os.path.relpath(d, root),  # the journal holds paths under the root
                "shards": {k: sorted(v) for k, v in sorted(shards.items())},
                "verdicts": sorted(drop, key=lambda t: (t[0], t[1] or "")),
                "clip_ids": sorted({c for c, _ in drop} | {s["clip_id"] for s in samples}),
            }
        )
        log_rows += [{"shard_set": rel, **r} for r in [*samples, *rejected]]
    plan_indexes, per_key = [], {}
    for path in dict.fromkeys([*find_embedding_indexes(root), *indexes]):
        rows = rewrite.index_rows_to_remove(path, removed_tars)
        if rows:
            under = path.is_relative_to(root)  # else absolute (an --index outside the root)
            rel = os.path.relpath(path, root) if under else str(path)
            plan_indexes.append({"path": rel, "rows": sorted(rows)})
            for key, _ in rows:
                per_key[key] = per_key.get(key, 0) + 1
    for r in log_rows:
        r["kind"] = _kind_of(r["matched"])
        r["index_rows"] = per_key.get(r.get("key"), 0) if r.get("key") else 0
    mates = ExcludeSet(clip_ids=frozenset(r["clip_id"] for r in log_rows))
    plan_crawls, crawl_rows = _plan_crawls(root, listed, copies, mates)
    log_rows += crawl_rows
    log_rows += _unmatched(entries, log_rows, root)
    digest = _file_sha256(Path(list_path))
    return {
        "takedown_id": f"{now:%Y%m%dT%H%M%S}Z-{digest[:8]}",
        "at": now.isoformat(),
        "reason": reason,
        "list": list_path,
        "list_sha256": digest,
        "sets": plan_sets,
        "crawls": plan_crawls,
        "indexes": plan_indexes,
        "log_rows": sorted(log_rows, key=_log_order),
    }


def _plan_crawls(
    root: Path, *excl: ExcludeSet
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The finished crawl dirs under ``root`` holding listed items: what to purge, and a
    log row per record."""
    plans, rows = [], []
    for d in _walk(root):
        if not crawl_purge.is_crawl_dir(d):
            if crawl_purge.parts(d) and not (d / contract.MANIFEST_NAME).is_file():
                log.warning("%s: an unfinished crawl (no manifest.json); finish it first", d)
            continue
        found = crawl_purge.match_records(d, *excl)
        if not found:
            continue
        plans.append(
            {
                "dir": os.path.relpath(d, root),
                "clip_ids": sorted(r["clip_id"] for r in found),
                "media": sorted(r["media_path"] for r in found if r["media_path"]),
            }
        )
        rel = os.path.relpath(d, root)
        for r in found:
            r.pop("media_path")
            rows.append({"crawl_dir": rel, **r, "kind": _kind_of(r["matched"]), "index_rows": 0})
    return plans, rows


def _log_order(r: dict[str, Any]) -> tuple[str, ...]:
    cols = ("shard_set", "crawl_dir", "key", "clip_id", "kind", "identifier")
    return tuple(str(r.get(c) or "") for c in cols)


def _unmatched(entries: Sequence[Entry], rows: Sequence[dict[str, Any]], root: Path) -> list[dict]:
    """Log rows for the identifiers that matched nothing and no earlier takedown logged."""
    log_path = root / contract.TAKEDOWNS_NAME
    known = ExcludeSet.of([*read_log(log_path)] if log_path.is_file() else [])
    hit = {(r["kind"], r["identifier"]) for r in rows}
    out, seen = [], set()
    for e in entries:
        if (e.kind, e.value) in hit or (e.kind, e.value) in seen:
            continue
        seen.add((e.kind, e.value))
        probe = ExcludeSet.of([e])
        if known.clip_ids & probe.clip_ids or known.urls & probe.urls:
            continue
        if known.sha256s & probe.sha256s or known.keys & probe.keys:
            continue
        out.append({"kind": e.kind, "identifier": e.value, "matched": None, "index_rows": 0})
    return out


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
