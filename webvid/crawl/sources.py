"""URL tables → a stream of :class:`~webvid.crawl.items.Item` (list mode), row by row.

Takes a ``.csv``, ``.tsv``, ``.parquet`` or ``.jsonl`` file, each optionally ``.gz``;
produces Items one at a time (:func:`iter_items`). The bytes are read by the per-format
readers in :mod:`webvid.crawl.tables` (header, rows, ``BadRow`` events, memory bounded by the
row-size limit, not by the file); this module maps their columns and cells to Items. A
10M-row WebVid CSV costs what one row costs.

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
import decimal
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webvid.contract import clip_id
from webvid.crawl import tables
from webvid.crawl.items import Item, Outcome, parse_duration, to_int
from webvid.crawl.recipe import TableConfig
from webvid.errors import InputError

FORMATS = ("csv", "tsv", "parquet", "jsonl")
URL_COLS = ("url", "contenturl", "content_url", "media_url", "video_url", "image_url", "link")
CAPTION_COLS = ("caption", "name", "text", "title", "alt", "alt_text", "description")
ID_COLS = ("videoid", "video_id", "id", "clip_id", "key", "source_id")
_KNOWN_META = {"duration": "duration", "width": "width", "height": "height"}
BAD_ROW = "bad_row"


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
            events = tables.iter_parquet(path, gz, cfg, where)
        else:
            raw = stack.enter_context(tables.open_binary(path, gz))
            if fmt == "jsonl":
                events = tables.iter_jsonl(raw, cfg, stats, where)
            else:
                events = tables.iter_delimited(raw, fmt, cfg, stats, where)
        stack.callback(events.close)
        columns: ColumnMap | None = None
        index = 0
        for n, event in events:
            if isinstance(event, list):
                columns = ColumnMap(event, cfg, where)
                continue
            if isinstance(event, tables.BadRow):
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


def check_table(path: str | Path, cfg: TableConfig) -> None:
    """Read a local table's header and first row: the InputError of a missing, empty or
    unreadable table or one without a URL column comes now, before the crawl starts."""
    items = iter_items(path, cfg)
    try:
        next(items, None)
    finally:
        items.close()
