"""DuckDB over a data root: one view per kind of metadata file, in a read-only sandbox.

Takes a data root (any folder holding crawl dirs, shard dirs and run dirs, at any depth).
Produces an in-process DuckDB connection with views over every Parquet file found:

=============  ==================================================  ==========================
view           files                                               schema
=============  ==================================================  ==========================
``crawl``      ``**/records/part-*.parquet``                       ``CRAWL_RECORD_SCHEMA``
``samples``    ``**/NNNNN.parquet`` (shard sample tables)          ``SAMPLE_SCHEMA``
``shards``     any file with the shard index's columns             ``SHARD_INDEX_SCHEMA``
``verdicts``   ``**/verdicts.parquet``                             ``VERDICT_SCHEMA``
``embeddings`` any file with ``webvid.index`` schema metadata       ``key, caption, source,
               (embedding indexes of ``webvid embed``)              embedding``
other          any other ``*.parquet``, one view per file stem     as written
=============  ==================================================  ==========================

Views are chosen by a file's schema and location, never by its name alone: an embedding
index is often called ``index.parquet`` too, and must not join the shard indexes (nor a
shard index named otherwise be missed).

Every view has a ``filename`` column naming the file each row came from. A contract view
with no file behind it is still created, empty and typed, so queries do not fail on a
partial root. :func:`stream` executes one read-only statement and streams its result.

The sandbox (:func:`open_readonly`, also used by anything else that runs user SQL):

1. DuckDB itself reaches **no file at all**. The views are Arrow datasets over the root's
   Parquet files, registered with the connection: pyarrow opens those files, read-only, and
   DuckDB only sees record batches. The connection has its local file system disabled,
   ``enable_external_access = false`` and nothing in ``allowed_paths``/``allowed_directories``,
   so ``COPY … TO``, ``read_csv``/``read_text``/``read_blob``/``glob``, ``ATTACH``,
   ``INSTALL``/``LOAD``, secrets, profiling and log files all fail with a permission error,
   whatever statement wraps them (``EXPLAIN ANALYZE``, ``query()`` …). Extension auto-install/auto-load, community
   extensions, persistent secrets, spilling to a temp directory and Python replacement scans
   (``FROM some_python_variable``) are off, and ``lock_configuration`` is set before the
   connection is handed out, so no statement can change any of this back.
2. :func:`check_read_only` (second line): exactly one statement, of type SELECT, or EXPLAIN
   whose inner statement is a SELECT.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from webvid import contract
from webvid.errors import InputError, QueryError

#: Statement types a query may run; everything else (INSERT, COPY, CREATE, ATTACH, SET …) is refused.
_READ_ONLY_TYPES = {"SELECT", "EXPLAIN"}
#: DuckDB settings of every query connection, given at connect time (see the module docstring).
SANDBOX_CONFIG: dict[str, str | bool] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "allow_extension_repositories": "forbidden",
    "python_enable_replacements": False,
    "temp_directory": "",
}
#: Then, in this order, once the database runs: DuckDB refuses some of them at connect time,
#: and ``enable_external_access = false`` given at connect time would allow-list files
#: named ``:memory:*`` in the working directory; it comes before the file system is disabled
#: (with a database attached, DuckDB checks its path then). The lock comes last.
SANDBOX_LOCKDOWN = (
    # DuckDB's progress bar draws on stdout: inside a CSV streamed there, or a server's log
    "SET enable_progress_bar = false",
    "SET enable_external_access = false",
    "SET disabled_filesystems = 'LocalFileSystem'",
    "SET lock_configuration = true",
)
#: Name prefix of the registered Arrow datasets behind the views (not listed by describe).
_SOURCE_PREFIX = "_files_"
_SKIP_DIRS = {".venv", ".git", "__pycache__", "node_modules", ".cache"}
_VIEW_NAME = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class RootFiles:
    """Parquet files of a data root, grouped by view name (sorted paths)."""

    groups: dict[str, list[Path]]

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.groups.values())


#: The view of embedding indexes (files with :data:`contract.EMBEDDING_INDEX_META_KEY`).
EMBEDDINGS_VIEW = "embeddings"
#: Columns that make a file a shard index, whatever its name: the schema's required ones.
_SHARD_INDEX_COLUMNS = frozenset(f.name for f in contract.SHARD_INDEX_SCHEMA if not f.nullable)


def classify(path: Path, schema: pa.Schema | None = None) -> str:
    """The view a Parquet file belongs to, from its folder, name and schema.

    ``schema`` is the file's Arrow schema (read from its footer when not given). A file with
    embedding-index metadata is ``embeddings`` and a file with every required shard-index
    column is ``shards``, whatever their names; crawl parts, verdicts and sample tables go by
    the contract's layout; anything else gets a view named after its stem.
    """
    name = path.name
    if path.parent.name == "records" and name.startswith("part-"):
        return "crawl"
    if schema is None:
        schema = pq.read_schema(path)
    if contract.EMBEDDING_INDEX_META_KEY in (schema.metadata or {}):
        return EMBEDDINGS_VIEW
    if set(schema.names) >= _SHARD_INDEX_COLUMNS:
        return "shards"
    if name == contract.VERDICTS_NAME:
        return "verdicts"
    if contract.SAMPLE_PARQUET_RE.match(name):
        return "samples"
    view = _VIEW_NAME.sub("_", path.stem.lower()).strip("_") or "data"
    return view if not view[0].isdigit() else f"t_{view}"


def scan_root(root: str | os.PathLike[str]) -> RootFiles:
    """Find every Parquet file under ``root`` (temp files and tool folders skipped)."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"data root not found: {root}")
    if not root.is_dir():
        raise InputError(f"data root is not a folder: {root}")
    groups: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for fn in filenames:
            if fn.endswith(".parquet") and not fn.startswith("."):
                p = Path(dirpath) / fn
                groups.setdefault(classify(p, _read_schema(p)), []).append(p)
    return RootFiles({k: sorted(v) for k, v in sorted(groups.items())})


def _read_schema(path: Path) -> pa.Schema:
    """The file's schema; an empty one for an unreadable file, which is then classified by
    name and reported when its view is opened (:func:`open_readonly`)."""
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return pa.schema([])


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _empty_view_sql(name: str, schema: pa.Schema) -> str:
    cols = ", ".join(f"CAST(NULL AS {_duck_type(f.type)}) AS {_ident(f.name)}" for f in schema)
    return f"CREATE VIEW {_ident(name)} AS SELECT {cols}, CAST(NULL AS VARCHAR) AS filename WHERE false"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_list(t):
        return _duck_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{_ident(f.name)} {_duck_type(f.type)}" for f in t) + ")"
    raise QueryError(f"no DuckDB type for {t}")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def open_readonly(
    root: str | os.PathLike[str] = ".",
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    attach: dict[str, Path] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per metadata kind under ``root``, sandboxed.

    The connection can read the Parquet files found under ``root`` through its views and
    nothing else: no other file, no network, no extension, no setting change (see the module
    docstring). For notebooks: ``con = webvid.query.open_readonly("data");
    con.sql("SELECT …").fetchall()``. Raises :class:`InputError` for a missing root or one
    without any Parquet file, :class:`QueryError` for files that cannot be read as Parquet.
    ``memory_limit`` (DuckDB's setting, e.g. ``"256MB"``) bounds the connection's memory;
    ``attach`` names DuckDB database files attached read-only before the lockdown.
    """
    files = scan_root(root)
    if files.total == 0:
        raise InputError(
            f"no Parquet files under {Path(root)}: nothing to query (expected crawl, shard or run dirs)"
        )
    config = dict(SANDBOX_CONFIG)
    if threads:
        config["threads"] = str(int(threads))
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(":memory:", config=config)
    for name, path in (attach or {}).items():
        con.execute(f"ATTACH {_sql_str(str(path))} AS {_ident(name)} (READ_ONLY)")
    for view, paths in files.groups.items():
        try:
            dataset = _parquet_dataset(paths)
        except (OSError, pa.ArrowException) as exc:
            raise QueryError(
                f"cannot read the {view!r} files under {root}: {_first_line(exc)}"
            ) from None
        source = _SOURCE_PREFIX + view
        con.register(source, dataset)
        con.execute(f"CREATE VIEW {_ident(view)} AS SELECT * FROM {_ident(source)}")
    for view, schema in contract.SCHEMAS.items():
        if view not in files.groups:
            con.execute(_empty_view_sql(view, schema))
    for statement in SANDBOX_LOCKDOWN:
        con.execute(statement)
    return con


#: The same sandboxed connection under its older name.
connect = open_readonly


def _union_schema(schemas: list[pa.Schema]) -> pa.Schema:
    """Columns by name in order of first appearance, types promoted across files.

    Dictionary columns count as their value type; types that do not promote into one
    (an int in one file, a string in another) become strings, as DuckDB's
    ``union_by_name`` does. Arrow casts each file's column to this type while scanning.
    """
    types: dict[str, list[pa.DataType]] = {}
    for schema in schemas:
        for f in schema:
            t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
            types.setdefault(f.name, []).append(t)
    fields = []
    for name, ts in types.items():
        try:
            merged = pa.unify_schemas(
                [pa.schema([pa.field(name, t)]) for t in ts], promote_options="permissive"
            ).field(name)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            merged = pa.field(name, pa.string())
        fields.append(merged)
    return pa.schema(fields)


def _parquet_dataset(paths: list[Path]) -> pads.Dataset:
    """One Arrow dataset over ``paths``: schemas unified by name, plus a ``filename`` column.

    Each row group is a fragment whose partition expression is ``filename == path``, so Arrow
    fills the column with a constant per file (and prunes files on a filename filter), the
    way hive partitions work. Row-group fragments (and no column-chunk pre-buffering) keep
    the scan's read-ahead to a few row groups rather than a few whole files. A file that has
    its own ``filename`` column keeps it.
    """
    metas = [pq.read_metadata(p) for p in paths]
    schema = _union_schema([m.schema.to_arrow_schema() for m in metas])
    fmt = pads.ParquetFileFormat(
        default_fragment_scan_options=pads.ParquetFragmentScanOptions(pre_buffer=False)
    )
    fs = pafs.LocalFileSystem()
    add_name = schema.get_field_index("filename") < 0
    if add_name:
        schema = schema.append(pa.field("filename", pa.string()))
    fragments = [
        fmt.make_fragment(
            str(p),
            fs,
            partition_expression=pads.field("filename") == str(p) if add_name else None,
            row_groups=[i],
        )
        for p, meta in zip(paths, metas, strict=True)
        for i in range(meta.num_row_groups)
    ]
    return pads.FileSystemDataset(fragments, schema, fmt, fs)


def describe(con: duckdb.DuckDBPyConnection) -> list[tuple[str, list[tuple[str, str]]]]:
    """Views and their columns: ``[(view, [(column, type), …]), …]``."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for view, col, typ in rows:
        if not view.startswith(_SOURCE_PREFIX):
            out.setdefault(view, []).append((col, typ))
    return list(out.items())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """Parse ``sql``: exactly one statement, and a read-only one. Returns it, stripped.

    SELECT (with WITH, VALUES, FROM-first, DESCRIBE, SUMMARIZE, SHOW …) passes; EXPLAIN
    passes only when the statement it explains is itself a SELECT (``EXPLAIN ANALYZE`` runs it).
    """
    kind = _statement_type(con, sql)
    if kind == "EXPLAIN":
        inner = _explained_statement(sql)
        inner_kind = _statement_type(con, inner) if inner is not None else "unknown"
        if inner_kind != "SELECT":
            raise QueryError(
                f"read-only: EXPLAIN of a {inner_kind} statement is not allowed (EXPLAIN SELECT is)"
            )
    elif kind not in _READ_ONLY_TYPES:
        raise QueryError(
            f"read-only: {kind} statements are not allowed (webvid query runs SELECT/WITH/EXPLAIN only)"
        )
    return sql.strip().rstrip(";")


def _statement_type(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The type name of the one statement in ``sql`` (QueryError for none, several, bad SQL)."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"bad SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryError(f"expected exactly one SQL statement, got {len(statements)}")
    st = statements[0]
    return st.type.name if hasattr(st.type, "name") else str(st.type)


_WORD = re.compile(r"[A-Za-z_]+")


def _explained_statement(sql: str) -> str | None:
    """The statement after ``EXPLAIN [ANALYZE|VERBOSE] [(options)]``, comments skipped.

    None when the text does not have that shape (the caller then refuses it).
    """
    try:
        tokens = [(pos, kind) for pos, kind in duckdb.tokenize(sql) if kind.name != "comment"]
    except duckdb.Error:
        return None
    depth = 0
    for i, (pos, kind) in enumerate(tokens):
        word = _WORD.match(sql, pos)
        text = word.group(0).upper() if word else sql[pos]
        if i == 0:
            if text != "EXPLAIN":
                return None
        elif text == "(" and kind.name == "operator":
            depth += 1
        elif text == ")" and kind.name == "operator" and depth:
            depth -= 1
        elif depth == 0 and text not in ("ANALYZE", "ANALYSE", "VERBOSE"):
            return sql[pos:]
    return None


def stream(
    con: duckdb.DuckDBPyConnection, sql: str, rows_per_batch: int = 65_536
) -> pa.RecordBatchReader:
    """Run one read-only statement and stream its result as Arrow record batches.

    Uses a lazy relation (``con.sql``) so DuckDB produces batches as they are read: memory
    stays bounded by the batch size, whatever the result size. Errors become one-line
    :class:`QueryError`s.
    """
    sql = check_read_only(con, sql)
    try:
        reader = con.sql(sql).to_arrow_reader(rows_per_batch)
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {_first_line(exc)}") from None
    return _GuardedReader(reader)


class _GuardedReader:
    """Iterates a RecordBatchReader, turning DuckDB/Arrow errors mid-stream into QueryError."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self.reader = reader
        self.schema = reader.schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self.reader
        except (duckdb.Error, pa.ArrowException) as exc:
            raise QueryError(f"query failed: {_first_line(exc)}") from None
