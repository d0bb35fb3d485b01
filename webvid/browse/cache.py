"""The browser's relations on disk: a DuckDB database file in a cache folder, never in the root.

Takes a data root's Parquet files by view (``verdicts``, ``samples``, ``crawl``) and the
browser's relations over them (:class:`Table`: a SELECT and its order); produces a DuckDB
database file holding each relation as a table stored in that order, which the browser
attaches read-only: DuckDB then reads its blocks as queries need them, through its buffer
pool, within the connection's ``memory_limit`` (:data:`MEMORY_LIMIT`), so the browser's
memory does not grow with the number of clips.

The file lies under :func:`cache_home` (``$WEBVID_BROWSE_CACHE``, else
``$XDG_CACHE_HOME/webvid/browse``, else ``~/.cache/webvid/browse``), named by a digest of the
root, the relations' SQL and every input file's path, size and mtime: it is built once per
state of the files and reused by later opens; a changed file gives a new name, and building
it deletes the root's older files. The build (:func:`build`) is a private DuckDB connection
with the same memory limit that reads the Parquet files with DuckDB's own reader and sorts
each relation (spilling into its temporary folder), in a temporary folder next to the
result, which is then renamed into place (atomic: a reader sees the whole file or none); what
a killed build left (its spill folder, its temp file) is deleted by a later build once a day
old. Nothing is ever written under the root.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from webvid.io import TMP_PREFIX, atomic_path, user_cache_dir

#: DuckDB memory limit of the browser's connections (build and serve).
MEMORY_LIMIT = "256MB"
FORMAT = 1
SUFFIX = ".duckdb"
BUILD_PREFIX = ".build-"
#: a build's spill folder or temp file older than this was left by a killed build (a live
#: build of another browser sharing the cache folder is younger: 1.94 M clips take 15 s)
STALE_BUILD_S = 24 * 3600


def cache_home() -> Path:
    """Where the browser's database files go (see the module docstring)."""
    return user_cache_dir("browse", "WEBVID_BROWSE_CACHE")


def entry_path(home: Path, root: Path, inputs: list[Path], tables: list[Table]) -> Path:
    """The database file for ``root`` in the state of its ``inputs`` (paths, sizes, mtimes)."""
    h = hashlib.sha256(f"{FORMAT}\n{root}\n".encode())
    for t in tables:
        h.update(f"{t}".encode() + b"\0")
    for p in sorted(inputs):
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return home / f"{_root_tag(root)}-{h.hexdigest()[:24]}{SUFFIX}"


def _root_tag(root: Path) -> str:
    return hashlib.sha256(str(root).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Table:
    """A relation of the browser: its rows (a SELECT) in ``order``; ``numbered`` ones have an
    ``ord`` column (1, 2, … in that order) to page by; ``plain`` columns are stored without
    compression (a substring filter over a compressed text column decompresses every string
    each time: 75 ms instead of 14 ms for 100,000 captions)."""

    select: str
    order: str
    numbered: bool = False
    plain: tuple[str, ...] = ()

    def view_sql(self) -> str:
        """The relation as one query (the same rows as the cached table, computed each time)."""
        if not self.numbered:
            return f"{self.select} ORDER BY {self.order}"
        return (
            f"SELECT row_number() OVER (ORDER BY {self.order}) AS ord, *"
            f" FROM ({self.select}) ORDER BY ord"
        )

    def cached_sql(self, table: str) -> str:
        """The relation over its cached ``table``, stored in order: ``ord`` is the row's
        position (DuckDB's ``rowid``, 0-based, in insertion order)."""
        return f"SELECT {'rowid + 1 AS ord, ' if self.numbered else ''}* FROM {table}"


def build(
    path: Path, files: dict[str, list[Path]], tables: dict[str, Table], *, threads: int
) -> Path:
    """Write ``path``: each of ``tables``, over views named as in ``files``.

    ``files`` gives each view's Parquet files (read by DuckDB's own reader, row group by row
    group, with a ``filename`` column as :func:`webvid.query.open_readonly` adds). Each table
    is written sorted (DuckDB's sort spills into the temporary folder past the memory limit;
    a numbering window over all rows would not: at 2 M rows it ran out of 256 MB) and keeps
    that order on disk. Written under a temporary name beside ``path`` and renamed onto it
    (:func:`webvid.io.atomic_path`); the root's other database files (same name prefix) are
    deleted afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(path.parent)
    work = Path(tempfile.mkdtemp(prefix=BUILD_PREFIX, dir=path.parent))  # the sort's spill
    config = {
        "memory_limit": MEMORY_LIMIT,
        "threads": str(threads),
        "temp_directory": str(work),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "python_enable_replacements": False,
    }
    try:
        with atomic_path(path) as out, duckdb.connect(":memory:", config=config) as con:
            out.unlink()  # DuckDB creates its database file itself
            con.execute("SET enable_progress_bar = false")
            con.execute("SET preserve_insertion_order = true")  # the rows stay sorted
            for view, paths in files.items():
                con.execute(f"CREATE VIEW {view} AS {_read_parquet(paths)}")
            con.execute(f"ATTACH {_quote(out)} AS out")
            for name, t in tables.items():
                columns = con.execute(f"DESCRIBE {t.select}").fetchall()
                ddl = ", ".join(
                    f'"{c}" {kind}' + (" USING COMPRESSION uncompressed" if c in t.plain else "")
                    for c, kind, *_ in columns
                )
                con.execute(f"CREATE TABLE out.{name} ({ddl})")
                con.execute(f"INSERT INTO out.{name} {t.select} ORDER BY {t.order}")
            con.execute("DETACH out")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    prefix = path.name.split("-", 1)[0]
    for old in path.parent.glob(f"{prefix}-*{SUFFIX}"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def sweep_leftovers(folder: Path, now: float | None = None) -> int:
    """Delete what killed builds left in ``folder`` (spill folders, temp database files) once
    older than :data:`STALE_BUILD_S`; returns how many. Younger ones may be a live build."""
    cutoff = (time.time() if now is None else now) - STALE_BUILD_S
    n = 0
    for p in folder.iterdir():
        if not p.name.startswith((BUILD_PREFIX, TMP_PREFIX)):
            continue
        with contextlib.suppress(FileNotFoundError):
            if p.lstat().st_mtime >= cutoff:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()
            n += 1
    return n


def _read_parquet(paths: list[Path]) -> str:
    names = {n for p in paths for n in pq.read_schema(p).names}
    listed = ", ".join(_quote(p) for p in paths)
    # a file with its own filename column keeps it (as in webvid.query's views)
    with_name = "false" if "filename" in names else "true"
    return f"SELECT * FROM read_parquet([{listed}], union_by_name = true, filename = {with_name})"


def _quote(p: Path) -> str:
    return "'" + str(p).replace("'", "''") + "'"
