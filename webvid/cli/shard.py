"""``webvid shard CRAWL_DIR... -o OUT``: the click command (the only printing layer of the stage).

Takes crawl dirs, an output folder, a recipe and overrides; chooses the engine (``--engine
local``: :func:`webvid.shards.run.run` with its process pool; ``--engine ray``:
:func:`webvid.scale.shard_engine.run_shard`), runs it under a progress display and prints the
curation funnel as a rich table (inputs → removed by each filter → kept) and where the outputs
are. The command is the verb ``shard``; the package, recipes folder and output folder are
``shards``.
"""

from __future__ import annotations

import dataclasses
import json

import click
from rich.table import Table

from webvid.cli.util import (
    check_engine,
    console,
    engine_options,
    is_quiet,
    progress_display,
    recipe_options,
)
from webvid.shards.recipe import load
from webvid.shards.run import ShardSummary, run


def funnel_table(summary: ShardSummary) -> Table:
    """The funnel: one row per filter that removed something, with what is left after it."""
    table = Table(title="curation funnel", show_lines=False)
    table.add_column("step")
    table.add_column("removed", justify="right")
    table.add_column("left", justify="right")
    left = summary.inputs
    table.add_row("inputs (successful crawl records)", "", str(left))
    for reason, n in summary.funnel:
        left -= n
        table.add_row(reason, str(n), str(left))
    table.add_row("[bold]kept[/]", "", f"[bold]{summary.kept}[/]")
    return table


@click.command("shard")
@click.argument("crawl_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "-o", "--out", required=True, type=click.Path(file_okay=False), help="Output shard dir."
)
@recipe_options(None)
@click.option("--workers", type=int, default=None, help="Worker processes (default: one per core).")
@click.option("--val-fraction", type=float, default=None, help="Share of clips in the val split.")
@click.option(
    "--exclude",
    "exclude",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="List of clip ids / URLs / sha256 (or a takedowns.parquet) to skip (repeatable).",
)
@click.option(
    "--scores",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Scores table of webvid score: the model-score filters of [filters] read it.",
)
@engine_options(
    "Where the per-clip work and shard writing run: a local process pool or Ray tasks.",
    "Ray cluster to use with --engine ray (default: start a local Ray).",
)
def shard(
    crawl_dirs: tuple[str, ...],
    out: str,
    recipe: str | None,
    overrides: tuple[str, ...],
    workers: int | None,
    val_fraction: float | None,
    exclude: tuple[str, ...] = (),
    scores: str | None = None,
    engine: str = "local",
    ray_address: str | None = None,
) -> None:
    """Curate CRAWL_DIRs into WebDataset shards with Parquet metadata in OUT.

    \b
    OUT/train/00000.tar   KEY.mp4 (or KEY.jpg), KEY.txt, KEY.json
    OUT/train/00000.parquet, 00000_stats.json; OUT/val/... with --val-fraction
    OUT/verdicts.parquet  every input, kept or rejected, with its reason and scores
    OUT/index.parquet, report.html, manifest.json (written last)
    Reruns resume: committed shards are kept. Without --recipe the built-in defaults
    (the same as shards/webvid.toml) apply. Clips on an --exclude list, or in the
    takedowns.parquet of OUT, of a crawl dir or of a folder above them, are skipped.
    """
    sets = list(overrides)
    if workers is not None:
        sets.append(f"workers={workers}")
    if val_fraction is not None:
        sets.append(f"output.val_fraction={val_fraction}")
    if scores is not None:
        sets.append(f"scores={json.dumps(scores)}")
    config = load(recipe, sets)
    if exclude:
        config = dataclasses.replace(config, exclude=(*config.exclude, *exclude))
    check_engine(engine, ray_address)
    with progress_display() as progress:
        if engine == "ray":
            from webvid.scale.shard_engine import run_shard

            summary = run_shard(
                config, list(crawl_dirs), out, progress=progress, address=ray_address
            )
        else:
            summary = run(config, list(crawl_dirs), out, progress=progress)
    if is_quiet():
        return
    console.print(funnel_table(summary))
    done = (
        "already complete, nothing to do" if summary.already_done else f"{summary.elapsed_s:.1f}s"
    )
    samples = ", ".join(f"{n} {s}" for s, n in summary.samples.items() if n)
    console.print(
        f"{summary.kept}/{summary.inputs} kept ({samples or 'no samples'}) in "
        f"{summary.shards} shard(s) → {summary.out} ({done}; "
        f"{summary.shards_skipped} shard(s) reused)"
    )
    console.print(f"report: {summary.out}/report.html   verdicts: {summary.out}/verdicts.parquet")
