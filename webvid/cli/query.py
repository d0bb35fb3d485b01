"""``webvid query``: SQL over a data root, printed as a table or streamed to CSV/JSON/Parquet.

Takes a SQL statement (read-only) and a data root; produces a rich table on stdout (first
``--limit`` rows, with a note of how many were cut; rows too wide for the terminal are shown one
record per block, with a hint to use ``--format csv``), or a file/stream in CSV, JSON Lines or
Parquet written batch by batch (a million-row result is never held in memory; files are
written under a temp name and renamed when complete).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

import click
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.table import Table
from rich.text import Text

from webvid import io as wio
from webvid import query as q
from webvid.cli.util import console, err_console, is_quiet
from webvid.errors import QueryError

MAX_CELL_CHARS = 60
#: the narrowest a table column may get before the rows are shown one record per block
MIN_COLUMN_CHARS = 8


@click.command("query")
@click.argument("sql", required=False)
@click.option(
    "--root",
    type=click.Path(),
    default=".",
    show_default=True,
    help="Data root to scan for Parquet files.",
)
@click.option(
    "--schema", "show_schema", is_flag=True, help="List the views and their columns, then exit."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="Output format; json is JSON Lines (one object per row).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to FILE instead of stdout.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Rows shown in table output.",
)
def query(
    sql: str | None, root: str, show_schema: bool, fmt: str, output: str | None, limit: int
) -> None:
    """Run read-only SQL over every Parquet file under --root.

    \b
    Views: crawl (crawl records), samples (per-shard sample tables), shards (shard index),
    verdicts (curation decisions), plus one view per other Parquet file stem.
    Example:  webvid query "SELECT status, reason, count(*) FROM crawl GROUP BY ALL"

    \b
    Reachable: the views (the Parquet files found under --root when the command starts,
    read through Arrow) and DuckDB's own functions and catalog (range(), duckdb_settings() …).
    Not reachable, whatever the statement (EXPLAIN ANALYZE, table functions, query()): any
    file by path, inside --root or not (read_csv, read_text, read_parquet('…'), glob, COPY,
    EXPORT, ATTACH), the network, extensions (INSTALL/LOAD, auto-install), secrets,
    settings (SET/RESET/PRAGMA: the configuration is locked), Python variables.
    Only SELECT (WITH, FROM-first, DESCRIBE, SUMMARIZE …) and EXPLAIN SELECT are accepted,
    one statement per call. Output files (-o) are written by webvid, not by the SQL.
    """
    con = q.connect(root)
    if show_schema:
        _print_schema(con)
        return
    if not sql:
        raise QueryError("give a SQL statement, or --schema to list the views")
    if fmt == "table" and output:
        fmt = _format_from_suffix(output)
    if fmt == "parquet" and not output:
        raise QueryError("--format parquet needs -o FILE")
    batches = q.stream(con, sql)
    if fmt == "table":
        _print_table(batches, limit)
        return
    if output:
        with wio.atomic_path(output) as tmp:
            n = _write_stream(batches, fmt, tmp)
        if not is_quiet():
            err_console.print(f"wrote {n:,} rows to {output}", highlight=False)
    else:
        _write_stream(batches, fmt, None)


def _format_from_suffix(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}.get(
        suffix, "csv"
    )


def _write_stream(batches: Any, fmt: str, path: Path | None) -> int:
    """Write batches as ``fmt`` to ``path`` (or stdout). Returns the row count."""
    n = 0
    out: IO[bytes] = open(path, "wb") if path else sys.stdout.buffer  # noqa: SIM115
    writer: Any = None
    try:
        for batch in batches:
            n += batch.num_rows
            if fmt == "csv":
                batch = _flatten_for_csv(batch)
                if writer is None:
                    writer = pacsv.CSVWriter(out, batch.schema)
                writer.write_batch(batch)
            elif fmt == "json":
                for row in batch.to_pylist():
                    out.write(json.dumps(row, default=str, ensure_ascii=False).encode() + b"\n")
            else:
                if writer is None:
                    writer = pq.ParquetWriter(out, batch.schema, compression="zstd")
                writer.write_batch(batch)
        if writer is not None:
            writer.close()
        out.flush()
    finally:
        if path:
            out.close()
    return n


def _flatten_for_csv(batch: pa.RecordBatch) -> pa.RecordBatch:
    """CSV has no nested types: list/struct/map columns become JSON text."""
    cols, names = [], []
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        t = col.type
        if pa.types.is_nested(t):
            col = pa.array(
                [
                    None if v is None else json.dumps(v, default=str, ensure_ascii=False)
                    for v in col.to_pylist()
                ],
                pa.string(),
            )
        cols.append(col)
        names.append(name)
    return pa.RecordBatch.from_arrays(cols, names=names)


def _cell(v: Any) -> str:
    if v is None:
        return "∅"
    s = str(v)
    return s if len(s) <= MAX_CELL_CHARS else s[: MAX_CELL_CHARS - 1] + "…"


def _print_table(batches: Any, limit: int) -> None:
    names = list(batches.schema.names)
    rows: list[list[str]] = []
    total = 0
    for batch in batches:
        total += batch.num_rows
        if len(rows) < limit:
            for row in batch.slice(0, limit - len(rows)).to_pylist():
                rows.append([_cell(v) for v in row.values()])
    shown = len(rows)
    if fits(names, rows, console.width):
        table = Table(*names, header_style="bold", show_lines=False)
        for cells in rows:
            table.add_row(*(Text(c) for c in cells))
        console.print(table)
    else:
        _print_records(names, rows, console.width)
        console.print(
            f"[dim]{len(names)} columns do not fit in {console.width} columns: one record per "
            "block, long values cut; --format csv (or json) -o FILE has them whole[/]"
        )
    if total > shown:
        console.print(
            f"[dim]{total - shown:,} more rows not shown ({total:,} in all); use --limit N or --format csv -o FILE[/]"
        )
    else:
        console.print(f"[dim]{total:,} row{'s' if total != 1 else ''}[/]")


def fits(names: list[str], rows: list[list[str]], width: int) -> bool:
    """Whether a grid of these columns fits ``width``: each column as wide as its header and
    widest cell, but at most :data:`MIN_COLUMN_CHARS` (rich wraps longer cells), plus 3
    characters of border and padding each."""
    need = 1
    for i, name in enumerate(names):
        widest = max([len(name), *(len(r[i]) for r in rows)])
        need += min(widest, MIN_COLUMN_CHARS) + 3
    return need <= width


def _print_records(names: list[str], rows: list[list[str]], width: int) -> None:
    """One block per record: ``name  value`` lines, values cut to the terminal's width."""
    label = min(max(len(n) for n in names), max(8, width // 3))
    room = max(8, width - label - 2)
    for i, cells in enumerate(rows, 1):
        console.print(Text(f"── {i} " + "─" * max(0, width - len(str(i)) - 4), style="dim"))
        for name, value in zip(names, cells, strict=True):
            key = name if len(name) <= label else name[: label - 1] + "…"
            text = value if len(value) <= room else value[: room - 1] + "…"
            line = Text(f"{key:>{label}}  ", style="bold")
            line.append(text)
            console.print(line, no_wrap=True, overflow="ellipsis")


def _print_schema(con: Any) -> None:
    for view, cols in q.describe(con):
        table = Table(title=view, title_justify="left", show_header=True, header_style="bold")
        table.add_column("column")
        table.add_column("type")
        for name, typ in cols:
            table.add_row(name, typ)
        console.print(table)
