"""Paged, filtered queries over the ``items`` view: the grid, one clip's detail, its media.

Takes a :class:`~webvid.browse.catalog.Root` and request parameters (already parsed: strings
and numbers, never SQL); produces JSON-ready dicts. Every value reaches DuckDB as a bound
parameter; column names only ever come from :data:`catalog.SCORES`. A grid page is at most
three queries: the page's range of ``ord`` (``LIMIT``/``OFFSET`` over ``ord`` alone; none when
nothing is filtered), its rows, and the filtered count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webvid import contract
from webvid.browse import tarindex
from webvid.browse.catalog import Root

MAX_PAGE = 200
GRID_COLUMNS = (
    "src",
    "id",
    "status",
    "reason",
    "split",
    "media_kind",
    "caption",
    "caption_raw",
    "key",
    "media_path",  # a rejected clip's file in its crawl dir: its suffix says image or video
)
_SPLIT = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SHARD = re.compile(r"\d{5,}")
_KEY = re.compile(r"\d{9,}")
MEDIA_TYPES = {
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "ogv": "video/ogg",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
}


@dataclass
class Filters:
    """What the Samples page filters on (all optional)."""

    src: int | None = None
    split: str | None = None
    status: str | None = None
    reason: str | None = None
    text: str | None = None
    ranges: list[tuple[str, float | None, float | None]] = field(default_factory=list)


def where(root: Root, f: Filters) -> tuple[str, list[Any]]:
    """The WHERE clause and its parameters for ``f`` (unknown score names are ignored)."""
    conds: list[str] = []
    params: list[Any] = []
    if f.src is not None:
        conds.append("src = ?")
        params.append(root.src(f.src) or "")
    for col, value in (("split", f.split), ("status", f.status), ("reason", f.reason)):
        if value:
            conds.append(f"{col} = ?")
            params.append(value)
    if f.text:
        conds.append("contains(search_text, ?)")  # a plain substring: no LIKE wildcards
        params.append(f.text.lower())
    for col, lo, hi in f.ranges:
        if col not in root.scores:
            continue
        if lo is not None:
            conds.append(f"{col} >= ?")
            params.append(lo)
        if hi is not None:
            conds.append(f"{col} <= ?")
            params.append(hi)
    return (" WHERE " + " AND ".join(conds)) if conds else "", params


def rows(root: Root, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = root.con.execute(sql, params)
    names = [d[0] for d in cur.description]
    out = []
    for r in cur.fetchall():
        row = dict(zip(names, r, strict=True))
        if "src" in row and row["src"] is not None:
            row["src"] = root.src_id(row["src"])
        for k, v in row.items():
            if isinstance(v, float) and not math.isfinite(v):
                row[k] = None
        out.append(row)
    return out


def grid(root: Root, f: Filters, *, page: int = 0, size: int = 24) -> dict[str, Any]:
    """One page of the grid and the filtered total."""
    size = max(1, min(int(size), MAX_PAGE))
    page = max(0, int(page))
    clause, params = where(root, f)
    cols = ", ".join([*GRID_COLUMNS, *root.scores])
    first = page * size
    # The page is the range of ord between its first and last row: found on ord alone (an
    # unfiltered page from ord = 1..n directly), then only its rows are read in full.
    lo, hi = (first + 1, first + size)
    if clause:
        lo, hi = root.con.execute(
            f"SELECT min(ord), max(ord) FROM (SELECT ord FROM items{clause}"
            " ORDER BY ord LIMIT ? OFFSET ?)",
            [*params, size, first],
        ).fetchone()
    within = f"{clause} AND" if clause else " WHERE"
    sql = f"SELECT {cols} FROM items{within} ord BETWEEN ? AND ? ORDER BY ord"
    items = rows(root, sql, [*params, lo, hi]) if lo is not None else []
    ((total,),) = root.con.execute(f"SELECT count(*) FROM items{clause}", params).fetchall()
    return {"total": int(total), "page": page, "size": size, "items": items}


def facets(root: Root) -> dict[str, Any]:
    """Values the filters offer: splits, statuses, reasons (with counts), sources, scores."""
    out: dict[str, Any] = {"scores": list(root.scores)}
    for col in ("split", "status", "reason"):
        out[col] = [
            {"value": v, "count": int(n)}
            for v, n in root.con.execute(
                f"SELECT {col}, count(*) FROM items WHERE {col} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        ]
    out["sources"] = [_source_label(root, s) for s in root.sources]
    return out


def _source_label(root: Root, src: str) -> str:
    try:
        return Path(src).relative_to(root.path).as_posix()
    except ValueError:
        return Path(src).name


def locate(root: Root, src: int, cid: str) -> dict[str, Any] | None:
    """The ``items`` row of clip ``cid`` from source ``src`` (None when there is none)."""
    filename = root.src(src)
    if filename is None or not contract.is_clip_id(cid):
        return None
    cur = root.con.execute(
        "SELECT src, id, status, reason, split, media_kind, key, shard, crawl_dir, media_path"
        " FROM items WHERE src = ? AND id = ? LIMIT 1",
        [filename, cid],
    )
    found = cur.fetchall()  # fetched to the end: a pending result would block the SQL page
    if not found:
        return None
    return dict(zip([d[0] for d in cur.description], found[0], strict=True))


def media_location(root: Root, item: dict[str, Any]) -> tuple[Path, int, int, str] | None:
    """Where a clip's media bytes lie: ``(file, offset, size, content type)``, or None.

    A kept sample is read from its shard tar (the member's offset from the tar headers); a
    rejected one from its crawl dir, when the recorded path stays under the root. Every path
    is built from the metadata and checked to lie under the root.
    """
    src = Path(item["src"])
    key, shard, split = item.get("key"), item.get("shard"), item.get("split")
    if key and shard and split and _KEY.fullmatch(key) and _SHARD.fullmatch(shard):
        if src.name == contract.VERDICTS_NAME and _SPLIT.fullmatch(split):
            tar = src.parent / split / f"{shard}.tar"
        else:
            tar = src.with_suffix(".tar")
        real = root.inside(tar)
        if real is not None:
            member = tarindex.media_member(tarindex.member_offsets(real), key)
            if member is not None:
                ext, offset, size = member
                return real, offset, size, MEDIA_TYPES.get(ext, "application/octet-stream")
    crawl_dir, rel = item.get("crawl_dir"), item.get("media_path")
    if crawl_dir and rel:
        base = Path(crawl_dir)
        base = base if base.is_absolute() else root.path / base
        real = root.inside(base / rel)
        if real is not None:
            ext = real.suffix.lstrip(".").lower()
            return real, 0, real.stat().st_size, MEDIA_TYPES.get(ext, "application/octet-stream")
    return None
