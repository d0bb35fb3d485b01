"""``webvid takedown LIST --root DIR``: remove listed clips from every shard set under a root.

Takes an exclude list (clip ids, URLs, page URLs, sha256 values: :mod:`webvid.exclude`), a
data root and a reason; produces the root without those clips and a log of what went:

1. **plan** (reads only): every shard dir under the root (a folder whose ``manifest.json``
   is of kind ``shards``) is searched — the per-shard Parquet by clip id, source id, media
   URL, page URL, both sha256 values and key; ``verdicts.parquet`` by clip id, source id,
   sha256 and key. The sha256 values of what matched are added to the list, so every copy
   of a removed file goes too (an exact duplicate rejected in curation, the same file in
   another shard set). Every embedding index under the root (a Parquet file with
   ``webvid embed``'s metadata, found by content, whatever its name) and each ``indexes``
   path is searched for the removed samples' rows (key and tar path);
2. **journal**: the plan, with its time and id, written atomically to
   ``ROOT/.takedown-journal.json`` before anything changes;
3. **apply**, one step at a time (:mod:`webvid.shards.rewrite`: each step rewrites one file
   from its current state, only when it changes): per shard set, each affected shard (tar,
   Parquet, stats last), then ``verdicts.parquet``, ``index.parquet``, ``manifest.json`` and
   ``report.html``; then each embedding index; then the log rows are appended to
   ``ROOT/takedowns.parquet`` (once per takedown id);
4. the journal is removed.

A run killed at any point leaves a journal; the next run (with any list) finishes that plan
first, step by step, and ends with the same bytes as one uninterrupted run. A run whose list
finds nothing new writes nothing. Identifiers that matched nothing are logged too (once), so
later crawls and shard runs into the root skip them (:func:`webvid.exclude.logs_for`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from webvid import contract
from webvid.errors import InputError
from webvid.exclude import ROW_COLUMNS, Entry, ExcludeSet, read_exclude, read_log
from webvid.io import read_json, remove_stale_temps, write_json, write_parquet
from webvid.log import NullProgress, Progress
from webvid.shards import rewrite

log = logging.getLogger(__name__)
JOURNAL_NAME = ".takedown-journal.json"
SPLITS = ("train", "val")
_SKIP_DIRS = {".venv", ".git", "__pycache__", "node_modules", ".cache"}
_SAMPLE_COLS = ("key", "shard", "split", "clip_id", "source_id", "url", "page_url", "sha256")
_VERDICT_COLS = ("clip_id", "crawl_dir", "source_id", "sha256", "key", "kept")

Step = Callable[[str], None]


@dataclass
class TakedownSummary:
    """What a takedown did (or, with ``dry_run``, would do)."""

    root: Path
    takedown_id: str | None = None
    listed: int = 0  # identifiers in the list
    samples: int = 0  # samples removed from shards
    inputs: int = 0  # rejected inputs removed from verdicts (no sample)
    unmatched: int = 0  # identifiers that matched nothing, newly logged
    shard_sets: list[str] = field(default_factory=list)  # touched, relative to the root
    shards: int = 0  # shards rewritten
    index_files: list[str] = field(default_factory=list)  # embedding indexes touched
    index_rows: int = 0
    resumed: str | None = None  # id of an interrupted takedown finished first
    dry_run: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not (self.samples or self.inputs or self.unmatched or self.index_rows)


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
                "dir": str(d),
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
            plan_indexes.append({"path": str(path), "rows": sorted(rows)})
            for key, _ in rows:
                per_key[key] = per_key.get(key, 0) + 1
    for r in log_rows:
        r["kind"] = _kind_of(r["matched"])
        r["index_rows"] = per_key.get(r.get("key"), 0) if r.get("key") else 0
    log_rows += _unmatched(entries, log_rows, root)
    digest = _file_sha256(Path(list_path))
    return {
        "takedown_id": f"{now:%Y%m%dT%H%M%S}Z-{digest[:8]}",
        "at": now.isoformat(),
        "reason": reason,
        "list": list_path,
        "list_sha256": digest,
        "sets": plan_sets,
        "indexes": plan_indexes,
        "log_rows": sorted(log_rows, key=_log_order),
    }


def _log_order(r: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(r.get(c) or "") for c in ("shard_set", "key", "clip_id", "kind", "identifier"))


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


# -- applying a plan ---------------------------------------------------------------------------


def _apply_set(entry: dict[str, Any], step: Step) -> int:
    """Rewrite one shard set as the plan says; returns the number of shards in the plan."""
    d = Path(entry["dir"])
    for folder in (d, *(d / s for s in SPLITS)):
        remove_stale_temps(folder)
    for name, keys in entry["shards"].items():
        split, shard = name.split("/")
        rewrite.rewrite_shard(d / split, shard, set(keys))
        step(f"shard {d}/{name}")
    drop = {(c, w) for c, w in entry["verdicts"]}
    rewrite.rewrite_verdicts(d / contract.VERDICTS_NAME, drop, set(entry["clip_ids"]))
    step(f"verdicts {d}")
    rewrite.rewrite_index(d)
    step(f"index {d}")
    rewrite.rewrite_manifest(d)
    step(f"manifest {d}")
    if (d / "report.html").is_file():
        _rewrite_report(d)
        step(f"report {d}")
    return len(entry["shards"])


def _rewrite_report(shard_dir: Path) -> None:
    """``report.html`` again, from the dir as it is now (its thumbnails come from the tars)."""
    from webvid.shards.report import write_report
    from webvid.shards.run import ShardSummary

    manifest = read_json(shard_dir / contract.MANIFEST_NAME)
    counts = manifest.get("counts", {})
    summary = ShardSummary(
        out=shard_dir,
        inputs=counts.get("inputs", 0),
        kept=counts.get("kept", 0),
        skipped_records=counts.get("skipped_records", 0),
        funnel=[(r, n) for r, n in manifest.get("funnel", [])],
        samples={s: counts.get(f"samples_{s}", 0) for s in SPLITS},
        shards=counts.get("shards", 0),
    )
    rows = pq.read_table(shard_dir / contract.VERDICTS_NAME).to_pylist()
    try:
        write_report(shard_dir, rows, summary)
    except Exception as exc:  # an old report must not stay: it may show a removed clip
        log.warning("report.html not rewritten (%s): removed", exc)
        (shard_dir / "report.html").unlink(missing_ok=True)


def _append_log(root: Path, p: dict[str, Any]) -> None:
    """Add the plan's rows to ``ROOT/takedowns.parquet``, unless its id is already there."""
    path = root / contract.TAKEDOWNS_NAME
    old = pq.read_table(path).to_pylist() if path.is_file() else []
    if any(r["takedown_id"] == p["takedown_id"] for r in old):
        return
    at = _dt.datetime.fromisoformat(p["at"])
    common = {
        "takedown_id": p["takedown_id"],
        "at": at,
        "reason": p["reason"],
        "list": p["list"],
        "list_sha256": p["list_sha256"],
    }
    rows = old + [{**common, **r} for r in p["log_rows"]]
    write_parquet(path, contract.rows_to_table(rows, contract.TAKEDOWN_SCHEMA))


def apply(root: Path, p: dict[str, Any], step: Step) -> TakedownSummary:
    """Carry out a plan (journalled by the caller), step by step; each step is idempotent."""
    remove_stale_temps(root)
    shards = sum(_apply_set(entry, step) for entry in p["sets"])
    for entry in p["indexes"]:
        path = Path(entry["path"])
        remove_stale_temps(path.parent)
        rewrite.filter_embedding_index(path, {(k, s) for k, s in entry["rows"]})
        step(f"embedding index {path}")
    _append_log(root, p)
    step("log")
    return summary_of(root, p, shards=shards)


def summary_of(root: Path, p: dict[str, Any], **extra: Any) -> TakedownSummary:
    rows = p["log_rows"]
    return TakedownSummary(
        root=root,
        takedown_id=p["takedown_id"],
        samples=sum(1 for r in rows if r.get("key")),
        inputs=sum(1 for r in rows if r["matched"] and not r.get("key")),
        unmatched=sum(1 for r in rows if not r["matched"]),
        shard_sets=[os.path.relpath(e["dir"], root) for e in p["sets"]],
        index_files=[os.path.relpath(e["path"], root) for e in p["indexes"]],
        index_rows=sum(len(e["rows"]) for e in p["indexes"]),
        **extra,
    )


def _finish_journal(root: Path, step: Step, progress: Progress) -> TakedownSummary | None:
    """Finish an interrupted takedown whose journal is in ``root``; returns what it did."""
    journal = root / JOURNAL_NAME
    if not journal.is_file():
        return None
    try:
        p = read_json(journal)
    except (OSError, ValueError) as exc:
        raise InputError(f"{journal}: unreadable takedown journal ({exc})") from None
    progress.message(f"finishing the interrupted takedown {p['takedown_id']}")
    done = apply(root, p, step)
    journal.unlink()
    step("done")
    done.resumed = str(p["takedown_id"])
    return done


def run(
    list_path: str | os.PathLike[str],
    root: str | os.PathLike[str],
    *,
    reason: str | None = None,
    indexes: Sequence[str | os.PathLike[str]] = (),
    dry_run: bool = False,
    progress: Progress | None = None,
    now: _dt.datetime | None = None,
    on_step: Step | None = None,
) -> TakedownSummary:
    """Take the clips of ``list_path`` down from every shard set and embedding index under
    ``root`` (and the ``indexes`` given); log them in ``root/takedowns.parquet``.

    ``now`` fixes the time recorded (default: the current UTC time); ``on_step(name)`` is
    called after each step is committed (tests use it to kill the process there)."""
    progress = progress or NullProgress()
    step = on_step or (lambda _name: None)
    root_p = Path(root).absolute()
    if not root_p.is_dir():
        raise InputError(f"takedown root not found or not a folder: {root_p}")
    entries = read_exclude(list_path)
    if not entries:
        raise InputError(f"{list_path}: no identifiers in the list")
    resumed = None if dry_run else _finish_journal(root_p, step, progress)
    when = (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC).replace(microsecond=0)
    extra = [Path(i).absolute() for i in indexes]
    for i in extra:
        if not rewrite.is_embedding_index(i):
            raise InputError(f"{i}: not an embedding index written by webvid embed")
    p = plan(entries, root_p, list_path=str(list_path), reason=reason, now=when, indexes=extra)
    summary = summary_of(root_p, p, listed=len(entries), dry_run=dry_run)
    summary.resumed = resumed.resumed if resumed is not None else None
    if summary.nothing_to_do and resumed is not None:
        resumed.listed = len(entries)
        return resumed  # the list was the interrupted run's: its work is what this run did
    if dry_run or summary.nothing_to_do:
        return summary
    journal = root_p / JOURNAL_NAME
    write_json(journal, p)
    step("journal")
    summary.shards = apply(root_p, p, step).shards
    journal.unlink()
    step("done")
    return summary
