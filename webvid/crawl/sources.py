"""URL tables → a stream of :class:`~webvid.crawl.items.Item` (list mode), row by row.

Takes a ``.csv``, ``.tsv``, ``.parquet`` or ``.jsonl`` file, each optionally ``.gz``;
produces Items one at a time. CSV, TSV and JSON lines are read as bytes, one physical line
at a time, so memory is bounded by the row-size limit, not by the file; Parquet by row
batches sized to a memory budget. A 10M-row WebVid CSV costs what one row costs.

A table is untrusted input, and one bad row must not stop a crawl: a row that is not UTF-8
text or is over ``table.max_row_bytes`` becomes an Item that has already failed with reason
``bad_row`` (its line — or Parquet row — number in the message, a clip id made from that
position so a rerun records it once), and the rows after it are read as usual. A header over
``table.max_header_bytes`` or with more than ``table.max_columns`` columns is one clear
InputError before memory grows. Rows whose field count differs from the header's, and JSON
lines that are not JSON objects, are skipped and counted (``stats["invalid_rows"]``).

Recognised layouts, by column name: WebVid (``videoid,contentUrl,duration,page_dir,name``
and ``videoid,name,page_idx,page_dir,duration,contentUrl``), generic ``url``/``caption``
(img2dataset), LAION-style ``URL``/``TEXT``, and headerless CC3M (``caption<TAB>url``) or
CC12M (``url<TAB>caption``) — a headerless file is recognised by a URL in its first line.
``--url-col/--caption-col/--id-col`` override; every other column is kept in ``extra``.

Cell rules for the id, URL and caption (:func:`cell_text`): None, NaN and ±inf are missing
(an item without an id takes one from its URL); an integer-valued float is that integer
(``1.0`` → ``"1"``); bytes are decoded as UTF-8 (not UTF-8 → ``bad_row``), never ``repr``'d;
text is taken as written. In ``extra``, bytes that are not UTF-8 (thumbnails, embeddings)
and NaN/inf values are left out.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import decimal
import gzip
import json
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from webvid.contract import clip_id
from webvid.crawl.items import Item, Outcome, parse_duration, to_int
from webvid.crawl.recipe import TableConfig
from webvid.errors import InputError

FORMATS = ("csv", "tsv", "parquet", "jsonl")
URL_COLS = ("url", "contenturl", "content_url", "media_url", "video_url", "image_url", "link")
CAPTION_COLS = ("caption", "name", "text", "title", "alt", "alt_text", "description")
ID_COLS = ("videoid", "video_id", "id", "clip_id", "key", "source_id")
_KNOWN_META = {"duration": "duration", "width": "width", "height": "height"}
BAD_ROW = "bad_row"
#: Parquet rows are converted to Python in batches of about this many bytes
_PARQUET_BATCH_BYTES = 64 * 1024 * 1024
_PY_CELL_BYTES = 64  # what one converted cell costs in Python objects, roughly


def table_format(path: str | Path, configured: str = "auto") -> tuple[str, bool]:
    """``(format, gzipped)`` of a table path; unknown suffixes are an InputError."""
    name = Path(path).name.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    if configured != "auto":
        return configured, gz
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    if ext in ("json", "ndjson"):
        ext = "jsonl"
    if ext not in FORMATS:
        raise InputError(
            f"{path}: unknown table format {'.' + ext if ext else '(no extension)'}; expected "
            ".csv, .tsv, .parquet or .jsonl (each optionally .gz), or set table.format"
        )
    return ext, gz


def looks_like_table(source: str) -> bool:
    name = source.lower().removesuffix(".gz")
    return name.rsplit(".", 1)[-1] in (*FORMATS, "json", "ndjson") if "." in name else False


def _is_url(text: str) -> bool:
    return text.strip().lower().startswith(("http://", "https://"))


def url_path(url: str) -> str:
    """The part of a URL ``table.url_id = "path"`` hashes: its path and query, without scheme,
    host, port and fragment (``https://cdn.example:8443/a/b.jpg?x=1#t`` → ``/a/b.jpg?x=1``)."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


# -- cells -------------------------------------------------------------------------------


def cell_text(value: Any) -> str | None:
    """A cell as text by the table id rules: None, NaN and ±inf → None; an integer-valued
    float or decimal → its integer (``1.0`` → ``"1"``); bytes → UTF-8 text (raises
    UnicodeDecodeError when they are not UTF-8); anything else → ``str(value)``."""
    if type(value) is str:  # CSV, TSV and most JSON cells: the common case first
        return value
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8")
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
        return str(int(value)) if value == value.to_integral_value() else str(value)
    return str(value)


def _stripped(text: str | None) -> str | None:
    text = text.strip() if text is not None else None
    return text or None


def _extra_value(value: Any) -> Any:
    """A cell kept in ``extra``: bytes as UTF-8 text, else left out (None), as are NaN and
    ±inf (not JSON); everything else as it is."""
    if type(value) is str:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def bad_row_item(position: str, message: str, index: int, source: str) -> Item:
    """The Item of a row that cannot be used: failed with reason ``bad_row`` before any
    request. Its clip id comes from its ``position`` (``"line 7"``, ``"row 6"``), so a rerun
    over the same table finds it done; ``bad_row_line_7-<hash>`` never equals a clean id."""
    return Item(
        clip_id=clip_id(source_id=f"{BAD_ROW}:{position}"),
        source=source,
        source_index=index,
        failed=Outcome(BAD_ROW, f"{position}: {message}"),
    )


class ColumnMap:
    """Which input columns are the URL, caption and id; everything else is ``extra``."""

    def __init__(self, names: list[str], cfg: TableConfig, where: str) -> None:
        self.names = names
        lower = {n.lower(): n for n in names}

        def pick(override: str | None, candidates: tuple[str, ...], what: str) -> str | None:
            if override:
                if override not in names:
                    raise InputError(
                        f"{where}: no column {override!r} for the {what} "
                        f"(found columns: {', '.join(names)})"
                    )
                return override
            return next((lower[c] for c in candidates if c in lower), None)

        self.url_id = cfg.url_id
        self.url = pick(cfg.url_col, URL_COLS, "URL")
        if self.url is None:
            raise InputError(
                f"{where}: no URL column (found columns: {', '.join(names) or 'none'}); "
                "name it with --url-col"
            )
        self.caption = pick(cfg.caption_col, CAPTION_COLS, "caption")
        self.id = pick(cfg.id_col, ID_COLS, "id")
        used = {self.url, self.caption, self.id}
        self.meta = {k: lower[k] for k in _KNOWN_META if k in lower and lower[k] not in used}
        used |= set(self.meta.values())
        self.extra = [n for n in names if n not in used]

    def item(self, row: dict[str, Any], index: int, source: str) -> Item:
        """The Item of one row; raises UnicodeDecodeError when its URL, id or caption cell
        holds bytes that are not UTF-8 (the caller records a ``bad_row``)."""
        url = _stripped(cell_text(row.get(self.url)))
        sid = _stripped(cell_text(row.get(self.id))) if self.id else None
        if sid:
            cid = clip_id(source_id=sid)
        elif url and self.url_id == "path":
            cid = clip_id(url=url_path(url))
        else:
            cid = clip_id(url=url or f"row-{index}")
        caption = cell_text(row.get(self.caption)) if self.caption else None
        extra = {n: v for n in self.extra if (v := _extra_value(row.get(n))) not in (None, "")}
        meta = {k: _extra_value(row.get(col)) for k, col in self.meta.items()}
        if meta.get("duration") not in (None, ""):
            extra.setdefault("duration", meta["duration"])
        return Item(
            clip_id=cid,
            source=source,
            source_index=index,
            media_url=url,
            source_id=sid,
            caption=caption,
            duration_s=parse_duration(meta["duration"]) if "duration" in meta else None,
            width=to_int(meta["width"]) if "width" in meta else None,
            height=to_int(meta["height"]) if "height" in meta else None,
            extra=extra or None,
        )


# -- what the readers yield ----------------------------------------------------------------


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


def _open_binary(path: Path, gz: bool) -> BinaryIO:
    if gz:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb", buffering=1 << 20)


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


def _iter_delimited(
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


def _iter_jsonl(
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
    checked) by :func:`cell_text`, so one non-UTF-8 cell cannot fail the whole batch."""
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


def _iter_parquet(path: Path, gz: bool, cfg: TableConfig, where: str) -> Iterator[Event]:
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


# -- the stream of Items -------------------------------------------------------------------


def iter_items(
    path: str | Path, cfg: TableConfig, stats: dict[str, int] | None = None
) -> Iterator[Item]:
    """Stream the Items of a URL table, bad rows as ``bad_row`` Items; raises InputError for
    a missing, empty or unreadable table or a header over the limits."""
    path = Path(path)
    stats = stats if stats is not None else {}
    fmt, gz = table_format(path, cfg.format)
    if not path.is_file():
        raise InputError(f"table not found: {path}")
    where = str(path)
    unit = "row" if fmt == "parquet" else "line"
    with contextlib.ExitStack() as stack:
        if fmt == "parquet":
            events = _iter_parquet(path, gz, cfg, where)
        else:
            raw = stack.enter_context(_open_binary(path, gz))
            if fmt == "jsonl":
                events = _iter_jsonl(raw, cfg, stats, where)
            else:
                events = _iter_delimited(raw, fmt, cfg, stats, where)
        stack.callback(events.close)
        columns: ColumnMap | None = None
        index = 0
        for n, event in events:
            if isinstance(event, list):
                columns = ColumnMap(event, cfg, where)
                continue
            if isinstance(event, BadRow):
                item = bad_row_item(f"{unit} {n}", event.message, index, where)
            else:
                assert columns is not None  # every reader names the columns before a row
                try:
                    item = columns.item(event, index, where)
                except UnicodeDecodeError as exc:
                    item = bad_row_item(
                        f"{unit} {n}",
                        f"a URL, id or caption is not UTF-8 text ({exc.reason})",
                        index,
                        where,
                    )
            if item.failed is not None:
                stats["bad_rows"] = stats.get("bad_rows", 0) + 1
            yield item
            index += 1
        if index == 0:
            raise InputError(f"{path}: empty table")
