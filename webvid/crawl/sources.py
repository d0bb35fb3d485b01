"""URL tables → a stream of :class:`~webvid.crawl.items.Item` (list mode), in row batches.

Takes a ``.csv``, ``.tsv``, ``.parquet`` or ``.jsonl`` file, each optionally ``.gz``;
produces Items one at a time while holding at most one batch of rows (``batch_rows``) in
memory, so a 10M-row WebVid CSV costs what 8k rows cost.

Recognised layouts, by column name: WebVid (``videoid,contentUrl,duration,page_dir,name``
and ``videoid,name,page_idx,page_dir,duration,contentUrl``), generic ``url``/``caption``
(img2dataset), LAION-style ``URL``/``TEXT``, and headerless CC3M (``caption<TAB>url``) or
CC12M (``url<TAB>caption``) — a headerless file is recognised by a URL in its first line.
``--url-col/--caption-col/--id-col`` override; every other column is kept in ``extra``.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from webvid.contract import clip_id
from webvid.crawl.config import TableConfig
from webvid.crawl.items import Item, parse_duration, to_int
from webvid.errors import InputError

FORMATS = ("csv", "tsv", "parquet", "jsonl")
URL_COLS = ("url", "contenturl", "content_url", "media_url", "video_url", "image_url", "link")
CAPTION_COLS = ("caption", "name", "text", "title", "alt", "alt_text", "description")
ID_COLS = ("videoid", "video_id", "id", "clip_id", "key", "source_id")
_KNOWN_META = {"duration": "duration", "width": "width", "height": "height"}


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


def _open_text(path: Path, gz: bool) -> io.TextIOBase:
    if gz:
        return io.TextIOWrapper(
            gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline=""
        )
    return open(path, encoding="utf-8", errors="replace", newline="")


def _is_url(text: str) -> bool:
    return text.strip().lower().startswith(("http://", "https://"))


def url_path(url: str) -> str:
    """The part of a URL ``table.url_id = "path"`` hashes: its path and query, without scheme,
    host, port and fragment (``https://cdn.example:8443/a/b.jpg?x=1#t`` → ``/a/b.jpg?x=1``)."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


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
        url = row.get(self.url)
        url = str(url).strip() if url is not None else None
        sid = row.get(self.id) if self.id else None
        sid = str(sid).strip() if sid is not None and str(sid).strip() else None
        if sid:
            cid = clip_id(source_id=sid)
        elif url and self.url_id == "path":
            cid = clip_id(url=url_path(url))
        else:
            cid = clip_id(url=url or f"row-{index}")
        caption = row.get(self.caption) if self.caption else None
        extra = {n: row.get(n) for n in self.extra if row.get(n) not in (None, "")}
        if "duration" in self.meta and row.get(self.meta["duration"]) not in (None, ""):
            extra.setdefault("duration", row.get(self.meta["duration"]))
        return Item(
            clip_id=cid,
            source=source,
            source_index=index,
            media_url=url or None,
            source_id=sid,
            caption=None if caption is None else str(caption),
            duration_s=parse_duration(row.get(self.meta["duration"]))
            if "duration" in self.meta
            else None,
            width=to_int(row.get(self.meta["width"])) if "width" in self.meta else None,
            height=to_int(row.get(self.meta["height"])) if "height" in self.meta else None,
            extra=extra or None,
        )


def _csv_header(path: Path, gz: bool, delimiter: str) -> tuple[list[str], bool]:
    """Column names and whether the first line is a header (False for headerless CC3M)."""
    with _open_text(path, gz) as fh:
        first = fh.readline()
    if not first.strip():
        raise InputError(f"{path}: empty table")
    fields = next(csv.reader([first], delimiter=delimiter), [])
    fields = [f.strip() for f in fields]
    if any(_is_url(f) for f in fields):
        if len(fields) == 2:
            names = ["url", "caption"] if _is_url(fields[0]) else ["caption", "url"]
        else:
            names = [f"col{i}" for i in range(len(fields))]
            names[next(i for i, f in enumerate(fields) if _is_url(f))] = "url"
        return names, False
    return fields, True


def _iter_csv(
    path: Path, gz: bool, fmt: str, cfg: TableConfig, stats: dict[str, int]
) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    delimiter = "\t" if fmt == "tsv" else ","
    names, has_header = _csv_header(path, gz, delimiter)

    def on_invalid(row: Any) -> str:
        stats["invalid_rows"] = stats.get("invalid_rows", 0) + 1
        return "skip"

    read = pacsv.ReadOptions(
        column_names=names, skip_rows=1 if has_header else 0, block_size=1 << 20
    )
    parse = pacsv.ParseOptions(
        delimiter=delimiter,
        quote_char=False if fmt == "tsv" else '"',
        newlines_in_values=fmt == "csv",
        invalid_row_handler=on_invalid,
    )
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=False
    )
    stream = pa.input_stream(str(path), compression="gzip" if gz else None)
    try:
        reader = pacsv.open_csv(
            stream, read_options=read, parse_options=parse, convert_options=convert
        )
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: cannot read as {fmt.upper()}: {exc}") from None
    with contextlib.closing(stream):
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise InputError(f"{path}: bad {fmt.upper()} data: {exc}") from None
            yield names, batch.to_pylist()


def _iter_parquet(
    path: Path, gz: bool, cfg: TableConfig
) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    tmp: str | None = None
    try:
        if gz:  # Parquet needs seeking: inflate to a temp file, never into memory
            fd, tmp = tempfile.mkstemp(suffix=".parquet", prefix=".webvid-src-")
            with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        try:
            pf = pq.ParquetFile(tmp or path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path}: not a Parquet file: {exc}") from None
        names = pf.schema_arrow.names
        for batch in pf.iter_batches(batch_size=cfg.batch_rows):
            yield names, batch.to_pylist()
    finally:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _iter_jsonl(
    path: Path, gz: bool, cfg: TableConfig, stats: dict[str, int]
) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    names: list[str] = []
    rows: list[dict[str, Any]] = []
    with _open_text(path, gz) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                if lineno == 1:
                    raise InputError(f"{path}: line 1 is not JSON ({exc.msg})") from None
                stats["invalid_rows"] = stats.get("invalid_rows", 0) + 1
                continue
            if not isinstance(row, dict):
                stats["invalid_rows"] = stats.get("invalid_rows", 0) + 1
                continue
            if not names:
                names = list(row)
            rows.append(row)
            if len(rows) >= cfg.batch_rows:
                yield names, rows
                rows = []
    if rows:
        yield names, rows


def iter_items(
    path: str | Path, cfg: TableConfig, stats: dict[str, int] | None = None
) -> Iterator[Item]:
    """Stream the Items of a URL table; raises InputError for a missing or unreadable table."""
    path = Path(path)
    stats = stats if stats is not None else {}
    fmt, gz = table_format(path, cfg.format)
    if not path.is_file():
        raise InputError(f"table not found: {path}")
    if fmt in ("csv", "tsv"):
        batches = _iter_csv(path, gz, fmt, cfg, stats)
    elif fmt == "parquet":
        batches = _iter_parquet(path, gz, cfg)
    else:
        batches = _iter_jsonl(path, gz, cfg, stats)
    columns: ColumnMap | None = None
    index = 0
    source = str(path)
    for names, rows in batches:
        if columns is None:
            columns = ColumnMap(names, cfg, str(path))
        for row in rows:
            yield columns.item(row, index, source)
            index += 1
    if columns is None:
        raise InputError(f"{path}: empty table")
