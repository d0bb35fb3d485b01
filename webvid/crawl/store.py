"""Crawl records on disk: a journal per part, atomic Parquet parts, resume state.

Takes record dicts (:func:`webvid.crawl.items.make_record`) as items finish; produces
``OUT/records/part-NNNNN.parquet`` (``CRAWL_RECORD_SCHEMA``), written atomically every
``flush_every`` records or ``flush_interval_s`` seconds.

Why a journal: between two parts, every finished record is also appended as one JSON line
to ``records/journal-NNNNN.jsonl`` (the journal of the part that will hold it). A ``kill -9``
loses no record: on the next start :meth:`RecordStore.recover` folds a journal whose part
does not exist into that part, deletes a journal whose part does (the part was committed
just before the kill), drops torn last lines, and compacts superseded rows — a clip that was
retried (``--retry-failed``, or ``discovered`` by a dry run) keeps only its newest row, so
every clip has exactly one row.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from webvid import contract, io
from webvid.crawl.items import epoch_to_datetime
from webvid.errors import WebvidError

log = logging.getLogger(__name__)

#: One encoder for every journal line (``json.dumps(..., ensure_ascii=False)`` builds a new
#: encoder per call: measurable at a thousand records a second).
_JOURNAL_ENCODER = json.JSONEncoder(ensure_ascii=False)

_PART_RE = re.compile(r"^part-(\d{5,})\.parquet$")
_JOURNAL_RE = re.compile(r"^journal-(\d{5,})\.jsonl$")


def part_name(n: int) -> str:
    return f"part-{n:05d}.parquet"


def journal_name(n: int) -> str:
    return f"journal-{n:05d}.jsonl"


def sync_filesystem(folder: Path) -> None:
    """Flush every dirty page of the file system that holds ``folder`` to disk.

    Linux ``syncfs`` limits the wait to that one file system (``sync()`` also waits for
    every other disk of the machine, and for other programs' writes); elsewhere, or if the
    call fails, ``os.sync()``."""
    try:
        fd = os.open(folder if folder.is_dir() else folder.parent, os.O_RDONLY)
    except OSError:
        os.sync()
        return
    try:
        syncfs = _syncfs()
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


@functools.cache
def _syncfs() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).syncfs  # releases the GIL while it waits
    except (OSError, AttributeError):
        return None


def read_columns(path: Path, columns: list[str]) -> pa.Table:
    """Some columns of one part. ``ParquetFile`` reads it directly, without the dataset layer
    (and the ``pyarrow.dataset``/``pyarrow.compute`` imports) that ``pq.read_table`` pulls in."""
    with pq.ParquetFile(path) as pf:
        return pf.read(columns=columns)


def to_table(records: list[dict[str, Any]]) -> pa.Table:
    """Records → a table of exactly ``CRAWL_RECORD_SCHEMA``, built column by column.

    The same checks as ``contract.rows_to_table`` (unknown keys, nulls in non-nullable
    columns, types: ``pa.table`` with the schema raises on a wrong one), without its final
    ``cast``, which is a no-op here but costs the ``pyarrow.compute`` import (~40 ms at
    start-up of every crawl process)."""
    schema = contract.CRAWL_RECORD_SCHEMA
    unknown = {k for r in records for k in r} - set(schema.names)
    if unknown:
        raise ValueError(f"unknown columns for schema: {sorted(unknown)}")
    columns = {f.name: [r.get(f.name) for r in records] for f in schema}
    columns["started_at"] = [epoch_to_datetime(v) for v in columns["started_at"]]
    table = pa.table(columns, schema=schema)
    for field in schema:
        if not field.nullable and table.column(field.name).null_count:
            raise ValueError(f"column {field.name!r} must not contain nulls")
    return table


def write_part(path: Path, table: pa.Table) -> None:
    """A records part, atomically; ``table`` comes from :func:`to_table` (schema exact)."""
    if table.schema != contract.CRAWL_RECORD_SCHEMA:
        table = contract.validate_table(table, contract.CRAWL_RECORD_SCHEMA)
    io.write_parquet(path, table)


class RecordStore:
    """Appends records; commits them as Parquet parts; knows what earlier runs finished."""

    def __init__(
        self, out: str | os.PathLike[str], *, flush_every: int, flush_interval_s: float
    ) -> None:
        self.dir = Path(out) / "records"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self._buffer: list[dict[str, Any]] = []
        self._journal = JournalWriter(self.dir)
        self._last_flush = time.monotonic()
        self._next = 0
        self._step = 1  # > 1 when several processes share the folder (each its own numbers)
        self.written = 0
        self._lock = threading.Lock()

    # -- files ---------------------------------------------------------------------------

    def parts(self) -> list[Path]:
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := _PART_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def _journals(self) -> list[tuple[int, Path]]:
        found = [
            (int(m.group(1)), p) for p in self.dir.iterdir() if (m := _JOURNAL_RE.match(p.name))
        ]
        return sorted(found)

    # -- start-up ------------------------------------------------------------------------

    def recover(self) -> dict[str, int]:
        """Make the records folder consistent after any interruption. Returns what it did."""
        did = {
            "stale_temps": io.remove_stale_temps(self.dir),
            "journals_folded": 0,
            "rows_superseded": 0,
        }
        existing = {p.name for p in self.parts()}
        for n, path in self._journals():
            if part_name(n) in existing:
                path.unlink()  # its part was committed just before the interruption
                continue
            records = [r for r in _read_journal(path) if self._media_intact(r)]
            if records:
                write_part(self.dir / part_name(n), to_table(records))
                did["journals_folded"] += 1
            path.unlink()
            io.fsync_dir(self.dir)
        did["rows_superseded"] = self.compact()
        parts = self.parts()
        self._next = (int(_PART_RE.match(parts[-1].name).group(1)) + 1) if parts else 0
        return did

    def _media_intact(self, record: dict[str, Any]) -> bool:
        """A journaled success whose file is missing or differs (power loss between rename
        and sync) is dropped: the item is simply crawled again."""
        rel = record.get("media_path")
        if record.get("status") != contract.STATUS_SUCCESS or not rel:
            return True
        try:
            path = io.safe_join(self.dir.parent, rel)
            if path.stat().st_size != record.get("bytes"):
                return False
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
        except (OSError, WebvidError):
            return False
        ok = digest.hexdigest() == record.get("sha256")
        if not ok:
            log.warning(
                "%s: media of %s does not match its journaled record: crawling it again",
                self.dir,
                record.get("clip_id"),
            )
        return ok

    def compact(self) -> int:
        """Keep only the newest row of each clip id (newest part wins). Returns rows dropped."""
        seen: set[str] = set()
        dropped = 0
        for path in reversed(self.parts()):
            ids = read_columns(path, ["clip_id"]).column("clip_id").to_pylist()
            keep = [cid not in seen for cid in ids]
            seen.update(ids)
            n_drop = len(keep) - sum(keep)
            if not n_drop:
                continue
            dropped += n_drop
            with pq.ParquetFile(path) as pf:
                table = pf.read().filter(pa.array(keep, pa.bool_()))
            table = contract.with_new_columns(table, contract.CRAWL_RECORD_SCHEMA)  # older parts
            if table.num_rows:
                io.write_parquet(path, table, contract.CRAWL_RECORD_SCHEMA)
            else:
                path.unlink()
                io.fsync_dir(self.dir)
        return dropped

    def final_states(self) -> Iterator[tuple[str, str, str | None]]:
        """``(clip_id, status, reason)`` of every committed row (after :meth:`recover`)."""
        for path in self.parts():
            t = read_columns(path, ["clip_id", "status", "reason"])
            yield from zip(
                *(t.column(c).to_pylist() for c in ("clip_id", "status", "reason")), strict=True
            )

    # -- writing -------------------------------------------------------------------------

    def add(self, record: dict[str, Any]) -> None:
        self._journal.append(self._next, _JOURNAL_ENCODER.encode(record) + "\n")
        self._buffer.append(record)

    def due(self) -> bool:
        """Time for a part: ``flush_every`` records buffered, or ``flush_interval_s`` passed."""
        return bool(self._buffer) and (
            len(self._buffer) >= self.flush_every
            or time.monotonic() - self._last_flush >= self.flush_interval_s
        )

    def take_batch(self) -> tuple[int, list[dict[str, Any]]] | None:
        """Hand the buffered records over as part ``n`` (new records go to part n + 1)."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return None
        batch, self._buffer = self._buffer, []
        n, self._next = self._next, self._next + self._step
        return n, batch

    def write_batch(self, n: int, batch: list[dict[str, Any]], *, sync_media: bool) -> None:
        """Commit part ``n`` (may run on a worker thread). With ``sync_media`` the file system
        is synced first, so a committed part never names a media file the disk lacks."""
        if sync_media:
            sync_filesystem(self.dir.parent / "media")
        write_part(self.dir / part_name(n), to_table(batch))
        self._journal.retire(n)  # its records are in part n now
        with self._lock:
            self.written += len(batch)

    def flush(self, *, sync_media: bool = False) -> None:
        taken = self.take_batch()
        if taken:
            self.write_batch(*taken, sync_media=sync_media)

    @property
    def next_part(self) -> int:
        return self._next

    def number_parts(self, first: int, step: int) -> None:
        """Write parts ``first, first + step, ...`` (worker ``w`` of ``step`` processes)."""
        self._next, self._step = first, step

    def close(self, *, compact: bool = True) -> None:
        self.flush()
        self._journal.close()
        if compact:
            self.compact()


class JournalWriter:
    """Appends journal lines from a background thread, in batches every few milliseconds.

    The event loop only appends to a list (no system call, no thread wake-up per record);
    the thread wakes every ``interval_s`` and writes whatever piled up in one call. A line
    is in the OS (safe from ``kill -9``) at most that long after its record was added;
    :meth:`retire` drops a journal once its part is committed.
    """

    def __init__(self, folder: Path, interval_s: float = 0.01) -> None:
        self.folder = folder
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._io = threading.Lock()
        self._pending: list[tuple[int, str]] = []
        self._files: dict[int, IO[str]] = {}
        self._retired: set[int] = set()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webvid-journal", daemon=True)
        self._thread.start()

    def append(self, n: int, line: str) -> None:
        with self._lock:
            self._pending.append((n, line))

    def _run(self) -> None:
        while True:
            closed = self._closed.wait(self.interval_s)
            with self._lock:
                batch, self._pending = self._pending, []
            if batch:
                with self._io:
                    self._write(batch)
            if closed:
                return

    def _write(self, batch: list[tuple[int, str]]) -> None:
        groups: dict[int, list[str]] = {}
        for n, line in batch:
            if n not in self._retired:
                groups.setdefault(n, []).append(line)
        for n, lines in groups.items():
            fh = self._files.get(n)
            if fh is None:
                fh = self._files[n] = open(self.folder / journal_name(n), "a", encoding="utf-8")  # noqa: SIM115
            fh.write("".join(lines))
            fh.flush()

    def retire(self, n: int) -> None:
        with self._io:
            self._retired.add(n)
            fh = self._files.pop(n, None)
            if fh is not None:
                fh.close()
            with contextlib.suppress(FileNotFoundError):
                (self.folder / journal_name(n)).unlink()

    def close(self) -> None:
        self._closed.set()
        self._thread.join()
        for fh in self._files.values():
            fh.close()
        self._files.clear()


def _read_journal(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.endswith("\n"):
                log.warning("%s: dropping a torn last line", path.name)
                return
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s: dropping an unreadable line", path.name)


def summarise(store: RecordStore) -> dict[str, Any]:
    """Counts by status and by reason, bytes and items over all committed parts."""
    by_status: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    total_bytes = 0
    for path in store.parts():
        t = read_columns(path, ["status", "reason", "bytes"])
        by_status.update(t.column("status").to_pylist())
        by_reason.update(r for r in t.column("reason").to_pylist() if r)
        total_bytes += sum(b for b in t.column("bytes").to_pylist() if b)
    return {
        "records": sum(by_status.values()),
        "by_status": dict(by_status.most_common()),
        "by_reason": dict(by_reason.most_common()),
        "bytes": total_bytes,
    }
