"""Table files → dict-shaped events, one row at a time, memory bounded by the row limits.

Takes an open binary stream of a CSV, TSV or JSON-lines table (:func:`open_binary` opens a
path, ``.gz`` or not), or a Parquet path, and a :class:`~webvid.crawl.recipe.TableConfig`;
produces ``(position, event)`` pairs (:data:`Event`): the column names once, before the first
row, then each row as a ``dict`` of column → cell, or a :class:`BadRow` saying why a row
cannot be used. :mod:`webvid.crawl.sources` turns these events into Items.

CSV, TSV and JSON lines are read as bytes, one physical line at a time, so memory is bounded
by ``table.max_row_bytes``, not by the file; Parquet by row batches sized to a memory budget.
A row that is not UTF-8 text or is over ``table.max_row_bytes`` is a BadRow (and the rows
after it are read as usual). A header over ``table.max_header_bytes`` or with more than
``table.max_columns`` columns, an empty table, and a file that cannot be read on (a damaged
``.gz``) are one clear InputError. Rows whose field count differs from the header's, and JSON
lines that are not JSON objects, are skipped and counted (``stats["invalid_rows"]``).

A headerless CC3M (``caption<TAB>url``) or CC12M (``url<TAB>caption``) file is recognised by
a URL in its first line and given the column names ``url`` and ``caption``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gzip
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from webvid.crawl.recipe import TableConfig
from webvid.errors import InputError

#: Parquet rows are converted to Python in batches of about this many bytes
_PARQUET_BATCH_BYTES = 64 * 1024 * 1024
_PY_CELL_BYTES = 64  # what one converted cell costs in Python objects, roughly


@dataclasses.dataclass(frozen=True)
class BadRow:
    """A row a reader could not use, and why."""

    message: str


#: ``(position, event)``: the column names once, before the first row; then each row as a
#: dict, or a BadRow. Position: the row's first line (CSV, TSV, JSON lines, 1-based) or its
#: row number (Parquet, 0-based).
Event = tuple[int, "list[str] | dict[str, Any] | BadRow"]


class _TooLong(Exception):
    """The record being read is over the limit (raised through csv.reader)."""


class _Lines:
    """The physical lines of a binary stream as text, every record bounded in bytes.

    Call :meth:`begin` before each record (one line, or several for a quoted CSV field with
    line breaks); then ``start`` is its first line and ``bad_byte`` the first byte that is
    not UTF-8 (None when all are). Such a line is still handed on, decoded with
    ``surrogateescape``, so csv.reader stays in step; the caller reports the record instead
    of using it. A record over ``limit`` bytes raises :class:`_TooLong` after skipping to
    the end of its line: at most ``limit`` bytes are ever held.
    """

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self.readline = raw.readline
        self.limit = limit
        self.lineno = 0  # physical lines read so far
        self.start = 1
        self.size = 0  # bytes of the current record
        self.bad_byte: tuple[int, int] | None = None  # (offset in the record, byte value)

    def begin(self) -> None:
        self.start, self.size, self.bad_byte = self.lineno + 1, 0, None

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.readline(self.limit + 1 - self.size)
        if not line:
            raise StopIteration
        self.lineno += 1
        self.size += len(line)
        if self.size > self.limit:
            while line and not line.endswith(b"\n"):  # skip the rest, holding 64 KiB at most
                line = self.readline(1 << 16)
            raise _TooLong
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.bad_byte is None:
                self.bad_byte = (self.size - len(line) + exc.start, line[exc.start])
            return line.decode("utf-8", "surrogateescape")

    def not_utf8(self) -> str:
        offset, byte = self.bad_byte or (0, 0)
        return f"not UTF-8 text (byte 0x{byte:02x} at offset {offset} of the row)"

    def too_long(self) -> str:
        end = f", through line {self.lineno}" if self.lineno > self.start else ""
        return f"row over table.max_row_bytes ({self.limit} bytes{end})"


#: what reading a damaged or truncated ``.gz`` raises: nothing after it can be known
_READ_ERRORS = (OSError, EOFError, zlib.error)


def _unreadable(where: str, lines: _Lines, exc: BaseException) -> InputError:
    return InputError(f"{where}: cannot read past line {lines.lineno}: {exc}")


def open_binary(path: Path, gz: bool) -> BinaryIO:
    """A table file as a binary stream, inflated on the fly when ``gz``."""
    if gz:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb", buffering=1 << 20)


def _is_url(text: str) -> bool:
    return text.strip().lower().startswith(("http://", "https://"))


def _allow_fields_up_to(n_bytes: int) -> None:
    """csv.reader refuses fields over 128 Ki characters by default; our own per-row byte
    limit bounds memory, so its limit is raised to ours (process-wide; never lowered)."""
    if csv.field_size_limit() < n_bytes:
        csv.field_size_limit(n_bytes)


def _header(
    reader: Any, lines: _Lines, cfg: TableConfig, where: str
) -> tuple[list[str], list[str] | None]:
    """``(column names, first data row or None)``: the first record is the header, or — for
    headerless CC3M / CC12M, recognised by a URL in it — the first row."""
    lines.begin()
    try:
        fields = next(reader, None)
    except _TooLong:
        raise InputError(
            f"{where}: the first line is over table.max_header_bytes ({cfg.max_header_bytes} "
            "bytes): not a table header"
        ) from None
    except csv.Error as exc:
        raise InputError(f"{where}: cannot read the header: {exc}") from None
    except _READ_ERRORS as exc:
        raise _unreadable(where, lines, exc) from None
    if fields:
        fields[0] = fields[0].removeprefix("\ufeff")  # a UTF-8 byte order mark
    if not fields or not "".join(fields).strip():
        raise InputError(f"{where}: empty table")
    if lines.bad_byte is not None:
        raise InputError(f"{where}: line 1: {lines.not_utf8()}")
    if len(fields) > cfg.max_columns:
        raise InputError(
            f"{where}: {len(fields)} columns, more than table.max_columns ({cfg.max_columns})"
        )
    names = [f.strip() for f in fields]
    if not any(_is_url(f) for f in names):
        return names, None
    if len(names) == 2:
        return (["url", "caption"] if _is_url(names[0]) else ["caption", "url"]), fields
    cols = [f"col{i}" for i in range(len(names))]
    cols[next(i for i, f in enumerate(names) if _is_url(f))] = "url"
    return cols, fields


def iter_delimited(
    raw: BinaryIO, fmt: str, cfg: TableConfig, stats: dict[str, int], where: str
) -> Iterator[Event]:
    """CSV (quotes with ``""`` escapes, line breaks inside quotes) or TSV (no quoting)."""
    lines = _Lines(raw, cfg.max_header_bytes)
    if fmt == "tsv":
        reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    else:
        reader = csv.reader(lines, delimiter=",", quotechar='"', doublequote=True)
    _allow_fields_up_to(max(cfg.max_row_bytes, cfg.max_header_bytes))
    names, first = _header(reader, lines, cfg, where)
    yield 1, names
    if first is not None:
        yield 1, dict(zip(names, first, strict=True))
    lines.limit = cfg.max_row_bytes
    while True:
        lines.begin()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except _TooLong:
            yield lines.start, BadRow(lines.too_long())
            continue
        except csv.Error as exc:  # csv.reader starts afresh with the next line
            yield lines.start, BadRow(f"cannot parse: {exc}")
            continue
        except _READ_ERRORS as exc:
            raise _unreadable(where, lines, exc) from None
        if lines.bad_byte is not None:
            yield lines.start, BadRow(lines.not_utf8())
        elif len(fields) == len(names):
            yield lines.start, dict(zip(names, fields, strict=True))
        elif fields:  # an empty line is no row
            stats["invalid_rows"] = stats.get("invalid_rows", 0) + 1


def _json_surrogates(line: str, row: dict[str, Any]) -> bool:
    """Whether a parsed JSON line holds a lone surrogate (``"\\ud800"``): valid JSON, but
    not text any Parquet writer accepts."""
    if "\\u" not in line and "\\U" not in line:
        return False
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def iter_jsonl(
    raw: BinaryIO, cfg: TableConfig, stats: dict[str, int], where: str
) -> Iterator[Event]:
    """One JSON object per line; the first object's keys are the columns."""
    lines = _Lines(raw, cfg.max_row_bytes)
    names: list[str] | None = None
    while True:
        lines.begin()
        try:
            line = next(lines)
        except StopIteration:
            return
        except _TooLong:
            yield lines.start, BadRow(lines.too_long())
            continue
        except _READ_ERRORS as exc:
            raise _unreadable(where, lines, exc) from None
        if lines.bad_byte is not None:
            yield lines.start, BadRow(lines.not_utf8())
            continue
        if lines.start == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:  # incl. over-long integers, deep nesting
            if lines.start == 1:
                msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                raise InputError(f"{where}: line 1 is not JSON ({msg})") from None
            stats["invalid_rows"] = stats.get("invalid_rows", 0) + 1
            continue
        if not isinstance(row, dict):
            stats["invalid_rows"] = stats.get("invalid_rows", 0) + 1
            continue
        if _json_surrogates(line, row):
            yield lines.start, BadRow("a lone surrogate escape (\\ud800-\\udfff) is not text")
            continue
        if names is None:
            if len(row) > cfg.max_columns:
                raise InputError(
                    f"{where}: line {lines.start} has {len(row)} keys, more than "
                    f"table.max_columns ({cfg.max_columns})"
                )
            names = list(row)
            yield lines.start, names
        yield lines.start, row


def _parquet_batch_rows(pf: pq.ParquetFile, cfg: TableConfig) -> int:
    """Rows per converted batch: ``table.batch_rows``, fewer for wide or heavy rows."""
    meta = pf.metadata
    stored = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    per_row = stored // max(1, meta.num_rows) + _PY_CELL_BYTES * max(1, meta.num_columns)
    return max(1, min(cfg.batch_rows, _PARQUET_BATCH_BYTES // max(1, per_row)))


def _as_binary(batch: pa.RecordBatch) -> pa.RecordBatch:
    """String columns viewed as binary: their cells come out as bytes and are decoded (and
    checked) by :func:`webvid.crawl.sources.cell_text`, so one non-UTF-8 cell cannot fail the whole batch."""
    cols = []
    for col in batch.columns:
        if pa.types.is_string(col.type):
            col = col.view(pa.binary())
        elif pa.types.is_large_string(col.type):
            col = col.view(pa.large_binary())
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def _batch_rows(batch: pa.RecordBatch) -> Iterator[dict[str, Any] | BadRow]:
    batch = _as_binary(batch)
    try:
        yield from batch.to_pylist()
        return
    except UnicodeDecodeError:  # in a nested or dictionary column: find the rows one by one
        pass
    for i in range(batch.num_rows):
        try:
            (row,) = batch.slice(i, 1).to_pylist()
        except UnicodeDecodeError:
            yield BadRow("a value is not UTF-8 text")
            continue
        yield row


def _row_bytes(row: dict[str, Any]) -> int:
    return sum(len(v) for v in row.values() if isinstance(v, (str, bytes)))


def iter_parquet(path: Path, gz: bool, cfg: TableConfig, where: str) -> Iterator[Event]:
    """A Parquet file (inflated to a temporary file first when ``gz``), in row batches."""
    tmp: str | None = None
    try:
        if gz:  # Parquet needs seeking: inflate to a temp file, never into memory
            fd, tmp = tempfile.mkstemp(suffix=".parquet", prefix=".webvid-src-")
            with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        try:
            pf = pq.ParquetFile(tmp or path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{where}: not a Parquet file: {exc}") from None
        names = pf.schema_arrow.names
        if len(names) > cfg.max_columns:
            raise InputError(
                f"{where}: {len(names)} columns, more than table.max_columns ({cfg.max_columns})"
            )
        yield 0, list(names)
        n = 0
        batches = pf.iter_batches(batch_size=_parquet_batch_rows(pf, cfg))
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                raise InputError(f"{where}: cannot read row {n} on: {exc}") from None
            for row in _batch_rows(batch):
                if not isinstance(row, BadRow) and _row_bytes(row) > cfg.max_row_bytes:
                    row = BadRow(f"row over table.max_row_bytes ({cfg.max_row_bytes} bytes)")
                yield n, row
                n += 1
    finally:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
