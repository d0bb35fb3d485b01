"""``webvid crawl SOURCE -o OUT``: the click command (the only place the crawl prints).

Takes a SOURCE (a URL table → list mode; an http(s) start URL or a ``crawl/*.toml`` recipe →
discovery mode), options and ``--set`` overrides; chooses the engine (``--engine local``:
:func:`webvid.crawl.run.run`; ``--engine ray``: :func:`webvid.scale.crawl_engine.run_crawl`),
runs it under a rich progress display and prints a summary table. Errors in the input (missing
file, unknown format, no URL column, a start URL the policy refuses) come out as one line from
the top-level CLI, before any folder is created; a run that could attempt nothing (no item
found, every item refused by the crawl's own policy) ends with one line saying why, exit 2.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
from typing import Any

import click

from webvid.cli.util import (
    check_engine,
    console,
    engine_options,
    is_quiet,
    progress_display,
    recipe_options,
)
from webvid.errors import ConfigError, InputError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "kib": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 2**30,
    "t": 10**12,
    "tb": 10**12,
    "tib": 2**40,
}


def parse_size(text: str, flag: str = "--max-bytes") -> int:
    """``"200MB"`` → 200000000, ``"64MiB"`` → 67108864, ``"5000"`` → 5000."""
    m = _SIZE.match(text)
    unit = (m.group(2) or "").lower() if m else None
    if not m or unit not in _UNITS:
        raise ConfigError(f"{flag}: not a size: {text!r} (e.g. 500MB, 64MiB, 1000000)")
    return int(float(m.group(1)) * _UNITS[unit])


@click.command(context_settings={"show_default": True})
@click.argument("source", required=False)
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(file_okay=False),
    required=True,
    help="Crawl dir to write (resumed if it exists).",
)
@click.option(
    "--url-col", help="Table column holding the media URL (default: url, contentUrl, ...)."
)
@click.option(
    "--caption-col", help="Table column holding the caption (default: caption, name, ...)."
)
@click.option("--id-col", help="Table column holding a stable id (default: videoid, id, ...).")
@click.option(
    "--url-id",
    type=click.Choice(["url", "path"]),
    default=None,
    help="Without an id column, hash the whole URL (default) or only its path and query, "
    "so a table served from a host that moves keeps its clip ids.",
)
@click.option(
    "--via",
    type=click.Choice(["auto", "direct", "yt-dlp"]),
    default=None,
    help="Downloader [default: auto].",
)
@click.option("--limit", type=int, default=None, help="Only the first N items of the source.")
@click.option("--dry-run", is_flag=True, help="Discover and record items; download nothing.")
@click.option(
    "--retry-failed", is_flag=True, help="Also retry earlier failures with a retryable reason."
)
@click.option("--max-bytes", default=None, help="Per-item byte cap, e.g. 200MB [default: 512MiB].")
@click.option(
    "--max-table-bytes",
    default=None,
    help="Byte cap on a table given as a URL, e.g. 4GiB [default: 8GiB].",
)
@click.option("--concurrency", type=int, default=None, help="Items in flight in all [default: 64].")
@click.option(
    "--processes",
    type=int,
    default=None,
    help="List mode: worker processes, one event loop each [default: 1].",
)
@click.option(
    "--per-host-concurrency", type=int, default=None, help="Connections per host [default: 4]."
)
@click.option(
    "--per-host-rps", type=float, default=None, help="Requests per second per host [default: 4]."
)
@click.option("--user-agent", default=None, help="User-Agent header (keep a contact URL in it).")
@click.option(
    "--purpose",
    type=click.Choice(["train-ai", "train-genai", "search"]),
    default=None,
    help="What the data is collected for; opt-out signals are read for it "
    "(docs/ethics.md) [default: train-ai].",
)
@click.option(
    "--exclude",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="List of clip ids / URLs / sha256 (or a takedowns.parquet) never to fetch (repeatable).",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Allow loopback/private/link-local addresses (tests, the demo).",
)
@engine_options(
    "Run here (asyncio, processes) or as Ray tasks with cluster-wide politeness.",
    "Ray cluster for --engine ray [default: start a local Ray].",
)
@recipe_options(example="polite.per_host_rps=2")
@click.pass_context
def crawl(
    ctx: click.Context,
    source: str | None,
    out: str,
    recipe: str | None,
    overrides: tuple[str, ...],
    **opts: Any,
) -> None:
    """Collect clips and captions from a stock site or a URL table.

    \b
    SOURCE decides the mode:
      table.csv / .tsv / .parquet / .jsonl (.gz too)   list mode
      https://site/ or crawl/site.toml                 discovery mode
    A start URL as SOURCE replaces the --recipe's discover.start_urls
    (the recipe still gives the patterns and limits).
    \b
    Examples:
      webvid crawl results_2M_val.csv -o crawl/webvid --recipe crawl/webvid-csv.toml
      webvid crawl Train_GCC-training.tsv -o crawl/cc3m --limit 1000
      webvid crawl crawl/demo-site.toml -o crawl/demo --allow-private
      webvid crawl http://127.0.0.1:9000/ --recipe crawl/demo-site.toml -o crawl/demo --allow-private
    """
    # Start-up is a fixed cost of every run (a third of a 2,000-item crawl's CPU): numpy,
    # which pyarrow loads but the crawl never computes with, would start idle BLAS threads,
    # and the collector would walk the freshly imported modules again and again.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    gc.disable()
    try:
        from webvid.crawl.recipe import load
        from webvid.crawl.run import run
    finally:
        gc.enable()

    if source and source.lower().endswith(".toml"):
        if recipe:
            raise ConfigError("give the recipe either as SOURCE or with --recipe, not both")
        recipe, source = source, None
    sets = list(overrides)
    table_opts = {
        "url_col": "table.url_col",
        "caption_col": "table.caption_col",
        "id_col": "table.id_col",
        "url_id": "table.url_id",
        "via": "via",
        "limit": "limit",
        "concurrency": "concurrency",
        "processes": "processes",
        "per_host_concurrency": "polite.per_host_concurrency",
        "per_host_rps": "polite.per_host_rps",
        "user_agent": "polite.user_agent",
        "purpose": "polite.purpose",
    }
    for name, key in table_opts.items():
        if opts.get(name) is not None:
            sets.append(f"{key}={json.dumps(opts[name])}")
    for flag, key in (
        ("dry_run", "dry_run"),
        ("retry_failed", "retry_failed"),
        ("allow_private", "polite.allow_private"),
    ):
        if opts.get(flag):
            sets.append(f"{key}=true")
    if opts.get("max_bytes"):
        sets.append(f"max_bytes={parse_size(opts['max_bytes'])}")
    if opts.get("max_table_bytes"):
        sets.append(f"max_table_bytes={parse_size(opts['max_table_bytes'], '--max-table-bytes')}")
    cfg = load(recipe, sets)
    if opts.get("exclude"):
        cfg = dataclasses.replace(cfg, exclude=(*cfg.exclude, *opts["exclude"]))
    check_engine(opts.get("engine"), opts.get("ray_address"))
    with progress_display(ctx) as progress:
        if opts.get("engine") == "ray":
            from webvid.scale.crawl_engine import run_crawl

            summary = run_crawl(
                cfg, source or None, out, progress=progress, address=opts.get("ray_address")
            )
        else:
            summary = run(cfg, source or None, out, progress=progress)
    if not is_quiet(ctx) and (summary.attempted or summary.skipped_done):
        print_summary(summary)
    if summary.nothing_done:
        raise InputError(f"nothing crawled from {summary.source}: {summary.nothing_done}")


def print_summary(summary: Any) -> None:
    from rich.table import Table  # only when printing: not on the start-up path of -q runs

    title = f"crawl {'(dry run) ' if summary.dry_run else ''}of {summary.source} → {summary.out}"
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("status / reason")
    table.add_column("this run", justify="right")
    table.add_column("all records", justify="right")
    from webvid.crawl.polite import status_of

    totals = summary.totals
    reasons = sorted(set(summary.by_reason) | set(totals["by_reason"]))
    for status in sorted(set(summary.by_status) | set(totals["by_status"])):
        style = (
            "green" if status == "success" else "yellow" if status.startswith("skipped") else "red"
        )
        table.add_row(
            f"[{style}]{status}[/]",
            str(summary.by_status.get(status, 0)),
            str(totals["by_status"].get(status, 0)),
        )
        for reason in (r for r in reasons if status_of(r) == status):
            table.add_row(
                f"  [dim]{reason}[/]",
                str(summary.by_reason.get(reason, 0)),
                str(totals["by_reason"].get(reason, 0)),
            )
    table.add_row("[bold]items", str(summary.attempted), str(totals["records"]))
    console.print(table)
    console.print(
        f"{summary.attempted} items in {summary.elapsed_s:.1f}s ({summary.items_per_s:.1f} items/s, "
        f"{summary.mb_per_s:.2f} MB/s); {summary.skipped_done} of the source's items already "
        f"done (not fetched again), {summary.duplicates} duplicate ids skipped"
    )
