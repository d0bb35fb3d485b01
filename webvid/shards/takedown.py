"""``webvid takedown LIST --root DIR``: remove listed clips from every shard set under a root.

Takes an exclude list (clip ids, URLs, page URLs, sha256 values: :mod:`webvid.exclude`), a
data root and a reason; produces the root without those clips and a log of what went:

1. **plan** (reads only, :mod:`webvid.shards.takedown_plan`): the samples, verdict rows,
   crawl records and embedding-index rows under the root that the list names, with every
   copy of a removed file, and the log rows;
2. **journal**: the plan, with its time and id, written atomically to
   ``ROOT/.takedown-journal.json`` before anything changes;
3. **apply**, one step at a time, each step rewriting one file from its current state, only
   when it changes: each crawl dir (:mod:`webvid.shards.crawl_purge`: files deleted, records
   parts and manifest rewritten); then per shard set (:mod:`webvid.shards.rewrite`) each
   affected shard (tar, Parquet, stats last), ``verdicts.parquet``, ``index.parquet``,
   ``manifest.json`` (its fingerprint taken over the purged crawl dirs) and ``report.html``;
   then each embedding index; then the log rows are appended to ``ROOT/takedowns.parquet``
   (once per takedown id);
4. the journal is removed.

A run killed at any point leaves a journal; the next run (with any list) finishes that plan
first, step by step, and ends with the same bytes as one uninterrupted run. A run whose list
finds nothing new writes nothing. Identifiers that matched nothing are logged too (once), so
later crawls and shard runs into the root skip them (:func:`webvid.exclude.logs_for`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from webvid import contract
from webvid.errors import InputError
from webvid.exclude import read_exclude
from webvid.io import read_json, remove_stale_temps, write_json, write_parquet
from webvid.log import NullProgress, Progress
from webvid.shards import crawl_purge, rewrite
from webvid.shards.takedown_plan import SPLITS, plan

log = logging.getLogger(__name__)
JOURNAL_NAME = ".takedown-journal.json"

Step = Callable[[str], None]


@dataclass
class TakedownSummary:
    """What a takedown did (or, with ``dry_run``, would do)."""

    root: Path
    takedown_id: str | None = None
    listed: int = 0  # identifiers in the list
    samples: int = 0  # samples removed from shards
    inputs: int = 0  # rejected inputs removed from verdicts (no sample)
    records: int = 0  # crawl records removed (with their downloaded files)
    unmatched: int = 0  # identifiers that matched nothing, newly logged
    shard_sets: list[str] = field(default_factory=list)  # touched, relative to the root
    shards: int = 0  # shards rewritten
    index_files: list[str] = field(default_factory=list)  # embedding indexes touched
    index_rows: int = 0
    resumed: str | None = None  # id of an interrupted takedown finished first
    dry_run: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not (
            self.samples or self.inputs or self.records or self.unmatched or self.index_rows
        )


# -- applying a plan ---------------------------------------------------------------------------


def _apply_set(root: Path, entry: dict[str, Any], step: Step) -> int:
    """Rewrite one shard set as the plan says; returns the number of shards in the plan."""
    d = root / entry["dir"]
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
    from webvid.shards.run import summary_from_manifest

    manifest = read_json(shard_dir / contract.MANIFEST_NAME)
    summary = summary_from_manifest(shard_dir, manifest, already_done=False)
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
    for entry in p["crawls"]:  # first: a shard set's manifest then fingerprints what is left
        crawl_purge.purge(root / entry["dir"], entry["clip_ids"], entry["media"])
        step(f"crawl {entry['dir']}")
    shards = sum(_apply_set(root, entry, step) for entry in p["sets"])
    for entry in p["indexes"]:
        path = root / entry["path"]  # relative to the root, or absolute
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
        inputs=sum(1 for r in rows if r.get("shard_set") and not r.get("key")),
        records=sum(1 for r in rows if r.get("crawl_dir")),
        unmatched=sum(1 for r in rows if not r["matched"]),
        shard_sets=[e["dir"] for e in p["sets"]],
        index_files=[e["path"] for e in p["indexes"]],
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
