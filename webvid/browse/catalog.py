"""What lies under a data root, for the browser: the sandboxed views plus ``items``.

Takes a data root; produces a :class:`Root`: the read-only DuckDB connection of
:func:`webvid.query.open_readonly` (same views, same sandbox; DuckDB's ``memory_limit`` and
``threads`` set) with two more relations, views over tables of a DuckDB database file that
:mod:`webvid.browse.cache` writes once per state of the files into a cache folder outside the
root, sorted in display order and attached read-only (DuckDB reads its blocks as queries need
them, within :data:`cache.MEMORY_LIMIT`: memory does not grow with the number of clips);
views straight over the files when ``cache=False`` or the cache folder cannot be written:

* ``items`` — one row per clip the browser can show: every curation input of every shard set
  (``verdicts``, all its columns; status ``kept`` or ``rejected``), every crawl record that
  never reached curation (status = the crawl status, not ``success``), and the samples of
  shard sets without verdicts (``webvid prepare``, synthetic shards). Added columns: ``ord``
  (display order), ``src`` (the file the row came from), ``id`` (its clip id), ``status``,
  ``search_text`` (both captions, lower-cased, for the caption filter);
* ``crawl_rows`` — the crawl records' columns the detail page shows (:data:`CRAWL_COLUMNS`).

The browser names a row by the position of its ``src`` in :attr:`Root.sources` and its
``id``, never by a path. The root also lists the files DuckDB does not read: shard-set
manifests, ``report.html`` files, runs' ``metrics.jsonl`` and embedding indexes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from webvid import contract
from webvid import query as q
from webvid.browse import cache as dbcache
from webvid.errors import DiskFullError
from webvid.io import read_json

#: Numeric verdict columns shown as scores (filterable, sortable), in display order.
SCORES = (
    "motion_score",
    "black_fraction",
    "scene_cuts",
    "duration_s",
    "fps",
    "width",
    "height",
    "short_side",
    "aspect_ratio",
    "caption_words",
    "caption_lang_score",
    "caption_count",
    "hamming",
    "bytes",
    "bitrate",
)
_TEXT = ("reason", "split", "media_kind", "caption", "caption_raw", "key", "shard")
_SKIP_DIRS = {".venv", ".git", "__pycache__", "node_modules", ".cache"}
MAX_WALK_FILES = 200_000
#: DuckDB threads of the browser's connections (build and serve) unless ``threads`` is given.
THREADS = max(1, min(4, os.cpu_count() or 1))
#: Name of the attached cache database inside the connection.
CACHE_DB = "browse"
#: Crawl-record columns the browser shows (the ``crawl_rows`` table).
CRAWL_COLUMNS = (
    "clip_id",
    "status",
    "reason",
    "page_url",
    "media_url",
    "http_status",
    "content_type",
    "optout_source",
    "optout_value",
    "optout_signals",
    "via",
    "attempts",
    "started_at",
    "elapsed_s",
    "bytes",
    "error_message",
    "filename",
)


@dataclass
class Root:
    """A data root opened for browsing (see the module docstring)."""

    path: Path
    con: duckdb.DuckDBPyConnection
    sources: list[str]
    scores: tuple[str, ...]
    shard_sets: list[Path] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    indexes: list[Path] = field(default_factory=list)
    sample_rows: int = 0
    cache: Path | None = None  # the attached database file (None: views over the files)
    _src_ids: dict[str, int] = field(default_factory=dict)

    def src_id(self, filename: str) -> int:
        return self._src_ids[filename]

    def src(self, n: int) -> str | None:
        return self.sources[n] if 0 <= n < len(self.sources) else None

    def inside(self, path: Path) -> Path | None:
        """``path`` resolved, when it is a regular file under the root (no symlink leaves it)."""
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return real if real.is_relative_to(self.path) and real.is_file() else None

    def filters(self, shard_set: Path) -> dict[str, Any]:
        """The ``filters`` section a shard set was curated with (its manifest), or ``{}``."""
        try:
            cfg = read_json(shard_set / contract.MANIFEST_NAME).get("config", {})
        except (OSError, ValueError, AttributeError):
            return {}
        out = cfg.get("filters", {}) if isinstance(cfg, dict) else {}
        return out if isinstance(out, dict) else {}


def open_root(
    root: str | os.PathLike[str], *, threads: int | None = None, cache: bool = True
) -> Root:
    """Open ``root`` read-only for browsing (InputError: no root / no Parquet file in it).

    With ``cache`` (the default), ``items`` and ``crawl_rows`` come from the cache database
    (built first when the files changed); without, or when it cannot be written, they are
    views straight over the files (same rows, slower pages)."""
    path = Path(root).resolve()
    threads = int(threads or THREADS)
    groups = q.scan_root(path).groups
    verdicts = groups.get("verdicts", [])
    with_verdicts = {p.parent for p in verdicts}
    samples = [p for p in groups.get("samples", []) if p.parent.parent not in with_verdicts]
    crawl = groups.get("crawl", [])
    inputs = [*verdicts, *samples, *crawl]
    scores = tuple(s for s in SCORES if s in _columns(verdicts)) if verdicts else ()
    shown = [c for c in dict.fromkeys((*_columns(crawl), "filename")) if c in CRAWL_COLUMNS]
    crawl_sql = f"SELECT {', '.join(shown)} FROM crawl"
    if not crawl:  # no crawl file: no crawl view to read in the build either
        nulls = ", ".join(f"NULL::VARCHAR AS {c}" for c in CRAWL_COLUMNS)
        crawl_sql = f"SELECT {nulls} WHERE false"
    tables = {
        "items": dbcache.Table(
            f"SELECT *, {SEARCH_TEXT} AS search_text"
            f" FROM ({_items_sql(bool(verdicts), samples, bool(crawl))})",
            "src, key NULLS LAST, id",
            numbered=True,
            plain=("search_text",),
        ),
        "crawl_rows": dbcache.Table(crawl_sql, "clip_id"),
    }
    files = {"verdicts": verdicts, "samples": samples, "crawl": crawl}
    db = _cached(path, {k: v for k, v in files.items() if v}, tables, threads) if cache else None
    con = q.open_readonly(
        path,
        threads=threads,
        memory_limit=dbcache.MEMORY_LIMIT,
        attach={CACHE_DB: db} if db else None,
    )
    for name, table in tables.items():
        body = table.cached_sql(f"{CACHE_DB}.{name}") if db else table.view_sql()
        con.execute(f"CREATE TEMP VIEW {name} AS {body}")
    sources = [str(p) for p in inputs]
    out = Root(path, con, sources, scores, _src_ids={s: i for i, s in enumerate(sources)})
    out.cache = db
    out.shard_sets = sorted(p.parent for p in verdicts)
    out.indexes = list(groups.get(q.EMBEDDINGS_VIEW, []))
    out.sample_rows = sum(pq.read_metadata(p).num_rows for p in groups.get("samples", []))
    _walk_files(out)
    return out


#: The caption filter's column: both captions, lower-cased.
SEARCH_TEXT = "lower(concat_ws(chr(10), caption, caption_raw))"


def _cached(
    path: Path, files: dict[str, list[Path]], tables: dict[str, dbcache.Table], threads: int
) -> Path | None:
    """The cache database of the root in its current state, built when missing (None when
    there is no input file or the cache folder cannot be written)."""
    inputs = [p for paths in files.values() for p in paths]
    if not inputs:
        return None
    try:
        db = dbcache.entry_path(dbcache.cache_home(), path, inputs, list(tables.values()))
        return db if db.exists() else dbcache.build(db, files, tables, threads=threads)
    except (OSError, DiskFullError, duckdb.IOException, duckdb.OutOfMemoryException):
        return None  # no room for it: views over the files, as with cache=False


def _columns(paths: list[Path]) -> list[str]:
    """Column names of ``paths``' Parquet schemas, in order of first appearance."""
    names: dict[str, None] = {}
    for p in paths:
        names.update(dict.fromkeys(pq.read_schema(p).names))
    return list(names)


def _items_sql(verdicts: bool, samples: list[Path], crawl: bool) -> str:
    """One row per clip the browser shows (the module docstring), in no particular order."""
    parts = []
    if verdicts:
        parts.append(
            "SELECT filename AS src, clip_id AS id, CASE WHEN kept THEN 'kept' ELSE 'rejected'"
            " END AS status, * EXCLUDE (filename) FROM verdicts"
        )
    if samples:
        names = ", ".join("'" + str(p).replace("'", "''") + "'" for p in samples)
        parts.append(
            "SELECT filename AS src, clip_id AS id, 'kept' AS status, NULL::VARCHAR AS reason,"
            " split, media_kind, caption, caption_raw, key, shard, NULL::VARCHAR AS crawl_dir,"
            f" NULL::VARCHAR AS media_path FROM samples WHERE filename IN ({names})"
        )
    if crawl:
        parts.append(
            "SELECT filename AS src, clip_id AS id, status, reason, NULL::VARCHAR AS split,"
            " media_kind, NULL::VARCHAR AS caption, caption AS caption_raw, NULL::VARCHAR AS key,"
            " NULL::VARCHAR AS shard, NULL::VARCHAR AS crawl_dir, NULL::VARCHAR AS media_path"
            f" FROM crawl WHERE status <> '{contract.STATUS_SUCCESS}'"
        )
    if not parts:
        cols = ", ".join(f"NULL::VARCHAR AS {c}" for c in ("src", "id", "status", *_TEXT))
        parts.append(
            f"SELECT {cols}, NULL::VARCHAR AS crawl_dir, NULL::VARCHAR AS media_path WHERE false"
        )
    return " UNION ALL BY NAME ".join(parts)


def _walk_files(root: Root) -> None:
    """Find reports and runs' metrics under the root (a bounded walk, dot-folders skipped)."""
    seen = 0
    for dirpath, dirnames, filenames in os.walk(root.path):
        crawl_dir = "records" in dirnames  # its media/ fan-out holds no report nor run
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in _SKIP_DIRS and not d.startswith(".") and not (crawl_dir and d == "media")
        )
        seen += len(filenames)
        if seen > MAX_WALK_FILES:
            break
        here = Path(dirpath)
        if "report.html" in filenames:
            root.reports.append(here / "report.html")
        if "metrics.jsonl" in filenames:
            root.runs.append(here)
