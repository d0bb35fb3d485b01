"""The ``webvid train``, ``webvid eval``, ``webvid embed`` and ``webvid search`` commands.

Takes command-line arguments and produces rich output (progress on stderr, tables/JSON on
stdout: ``eval --json -`` prints only the JSON there, its table going to stderr); output paths
are checked before any work starts. All work happens in :mod:`webvid.train.run`, :mod:`webvid.retrieval.evaluate` and
:mod:`webvid.retrieval.search`, which print nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from webvid.benchmarks.items import BENCHMARKS
from webvid.cli.util import (
    check_output_file,
    console,
    err_console,
    is_quiet,
    model_overrides,
    progress_display,
    recipe_options,
)
from webvid.errors import ConfigError, InputError
from webvid.io import write_json


@click.command()
@recipe_options(example="train.log_every_steps=50")
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(file_okay=False),
    required=True,
    help="Run dir (resumed if it holds a latest.pt).",
)
@click.option(
    "--init",
    "init",
    type=click.Path(exists=True),
    default=None,
    help="Start from this checkpoint (ours or official); e.g. a 1-frame run's latest.pt.",
)
@click.option(
    "--stop-after", type=int, default=None, help="End after this global step (resumable)."
)
def train(
    recipe: str | None,
    overrides: tuple[str, ...],
    out: str,
    init: str | None,
    stop_after: int | None,
) -> None:
    """Train the Frozen-in-Time dual encoder from WebDataset shards (torchrun for several GPUs/CPUs).

    \b
    webvid train --recipe train/demo.toml -o runs/demo
    torchrun --nproc-per-node 4 -m webvid.cli train --recipe train/frozen-webvid2m-cc3m.toml -o runs/x
    """
    from webvid.train.recipe import load
    from webvid.train.run import run

    if recipe is None:
        raise ConfigError("--recipe is required (see train/README.md)")
    r = load(recipe, overrides)
    main = int(os.environ.get("RANK", "0")) == 0
    with progress_display() as progress:
        summary = run(
            r,
            None,
            Path(out),
            base=Path(recipe).resolve().parent,
            init=Path(init) if init else None,
            progress=progress,
            stop_after=stop_after,
        )
    if main and not is_quiet():
        for note in summary.notes:
            console.print(f"[dim]{note}[/]")
        broken = sum(summary.broken.values())
        console.print(
            f"[bold green]trained[/] {summary.steps} steps (from {summary.resumed_from}) in "
            f"{summary.wall_s:.0f} s → {summary.run_dir}   last loss {summary.last_loss:.4f}   "
            f"broken {broken}/{summary.seen}"
        )
        if summary.best:
            console.print(
                f"best {summary.best['metric']} = {summary.best['value']:.2f} at step {summary.best['step']}"
            )


METRIC_COLUMNS = ("R1", "R5", "R10", "R50", "MedR", "MeanR")


def _metrics_table(
    title: str, results: dict[str, float], directions: tuple[str, ...] = ("t2v", "v2t")
) -> Table:
    table = Table(title=title)
    table.add_column("direction")
    for col in METRIC_COLUMNS:
        table.add_column(col, justify="right")
    for d in directions:
        table.add_row(d, *(f"{results[f'{d}_{c}']:.1f}" for c in METRIC_COLUMNS))
    return table


def _benchmark_report(bench: Any, results: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The ``--json`` object of a benchmark run: counts, then each reported direction's metrics."""
    broken = int(results["broken"])
    if broken or results["videos"] != len(bench.items):
        raise InputError(
            f"{bench.name}: {broken} of {len(bench.items)} videos could not be decoded; the "
            "protocol needs every one (see the log for which, and re-download or transcode them)"
        )
    report: dict[str, Any] = {
        "benchmark": bench.name,
        "queries": int(results["captions"]),
        "videos": int(results["videos"]),
    }
    for d in ("t2v", "v2t"):
        report[d] = (
            {c: float(results[f"{d}_{c}"]) for c in METRIC_COLUMNS}
            if d in bench.directions
            else None
        )
    report.update(
        dataset=bench.dataset,
        split=bench.split,
        layout=bench.layout,
        directions=list(bench.directions),
        sources=[str(p) for p in bench.sources],
        **extra,
    )
    return report


@click.command("eval")
@click.argument("checkpoint", type=click.Path(exists=True))
@click.argument("data")
@click.option(
    "--benchmark",
    type=click.Choice(BENCHMARKS),
    help="DATA is that dataset's root: evaluate with this protocol (docs/benchmarks-data.md).",
)
@click.option(
    "--videos",
    type=click.Path(exists=True, file_okay=False),
    help="--benchmark: the videos folder (default: ROOT/videos/all, ROOT/videos, ROOT).",
)
@click.option("--frames", type=int, default=4, show_default=True, help="Frames per clip (uniform).")
@click.option("--kind", type=click.Choice(["video", "image"]), default="video", show_default=True)
@click.option(
    "--split",
    type=click.Path(exists=True, dir_okay=False),
    help="Folder data: video id list (for the paper's protocols use --benchmark).",
)
@click.option(
    "--captions", type=click.Path(exists=True, dir_okay=False), help="Folder data: captions JSON."
)
@click.option(
    "--all-captions",
    is_flag=True,
    help="Folder data: every caption is a query (default: each video's first).",
)
@click.option(
    "--window-stride",
    type=int,
    default=0,
    help="Average sliding windows at this frame stride (0: off).",
)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--workers", type=int, default=0, show_default=True)
@click.option(
    "--text-model", help="DistilBERT dir for official checkpoints (ours carry their config)."
)
@click.option(
    "--model",
    "model_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a ModelConfig field of the checkpoint's model (repeatable), e.g. num_heads=12.",
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the results as JSON to this file; '-' prints only the JSON on stdout "
    "(the table goes to stderr).",
)
def eval_cmd(
    checkpoint: str,
    data: str,
    benchmark: str | None,
    videos: str | None,
    frames: int,
    kind: str,
    split: str | None,
    captions: str | None,
    all_captions: bool,
    window_stride: int,
    batch_size: int,
    workers: int,
    text_model: str | None,
    model_items: tuple[str, ...],
    device: str,
    precision: str,
    json_out: str | None,
) -> None:
    """Text↔video retrieval metrics of CHECKPOINT on DATA.

    DATA is a shard set, an MSR-VTT-style folder, or with --benchmark a dataset root read with
    that benchmark's protocol (msrvtt-1ka, msrvtt-1kb, msrvtt-full, msvd, didemo, lsmdc).
    """
    import torch

    from webvid.benchmarks import load_benchmark
    from webvid.clips.sample import ClipOptions
    from webvid.clips.stream import EvalStream
    from webvid.model.build import data_stats, load_for_inference
    from webvid.retrieval.evaluate import evaluate_model, make_stream

    if benchmark is None and videos is not None:
        raise click.UsageError("--videos goes with --benchmark")
    if benchmark is not None and (split or captions or all_captions or kind != "video"):
        raise click.UsageError(
            "--split, --captions, --all-captions and --kind are for shard sets and plain folders; "
            "a --benchmark reads its own lists and captions"
        )
    if json_out and json_out != "-":
        check_output_file(json_out, flag="--json", force=True)
    bench = load_benchmark(benchmark, data, videos=videos) if benchmark else None
    overrides = model_overrides(model_items)
    model = load_for_inference(checkpoint, text_model, overrides=overrides or None)
    model = model.to(torch.device(device))
    stats = data_stats(checkpoint)  # the normalisation the model was trained with
    opts = ClipOptions(size=model.config.img_size, train=False, short_side=stats["short_side"])
    max_text_len = stats["max_text_len"]
    if bench is not None:
        # The official test.py neither cuts captions at 350 characters (that is its WebVid
        # loader) nor truncates tokens (model_max_length 1e6): only the text model's positions
        # bound a query, which matters for DiDeMo's paragraphs.
        opts = dataclasses.replace(opts, caption_max_chars=0)
        max_text_len = int(getattr(model.text_model.config, "max_position_embeddings", 512))
        stream = EvalStream(
            None, "video", frames, opts, items=bench.eval_items(), window_stride=window_stride
        )
    else:
        stream = make_stream(
            data,
            kind,
            frames,
            opts,
            split=split,
            captions=captions,
            all_captions=all_captions,
            window_stride=window_stride,
        )
    with progress_display() as progress:
        results = evaluate_model(
            model,
            stream,
            mean=stats["mean"],
            std=stats["std"],
            max_text_len=max_text_len,
            batch_size=batch_size,
            num_workers=workers,
            precision=precision,
            progress=progress,
        )
    extra = dict(
        checkpoint=str(checkpoint), data=str(data), frames=frames, window_stride=window_stride
    )
    if bench is not None:
        report = _benchmark_report(bench, results, **extra)
        title = (
            f"{bench.name} ({bench.layout}): {report['videos']} videos, {report['queries']} queries"
        )
        table = _metrics_table(title, results, bench.directions)
    else:
        results.update(extra)
        report = results
        table = _metrics_table(
            f"{data}: {results['videos']} videos, {results['captions']} captions, "
            f"{results['broken']} broken",
            results,
        )
    _show_results(table, report, json_out)


def _show_results(table: Table, report: dict[str, Any], json_out: str | None) -> None:
    """The table on stdout; with ``--json FILE`` the report written there, with ``--json -``
    the report alone on stdout (the table on stderr, so a pipe gets JSON only)."""
    if json_out == "-":
        if not is_quiet():
            err_console.print(table)
        click.echo(json.dumps(report, indent=2))
        return
    if json_out:
        write_json(json_out, report)
    if not is_quiet():
        console.print(table)


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.argument("data")
@click.option(
    "--index", "out", type=click.Path(dir_okay=False), required=True, help="Parquet file to write."
)
@click.option("--frames", type=int, default=4, show_default=True)
@click.option("--kind", type=click.Choice(["video", "image"]), default="video", show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--workers", type=int, default=0, show_default=True)
@click.option("--text-model", help="DistilBERT dir for official checkpoints.")
@click.option(
    "--model",
    "model_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a ModelConfig field of the checkpoint's model (repeatable), e.g. num_heads=12; "
    "recorded in the index, so search embeds queries the same way.",
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing --index file.")
def embed(
    checkpoint: str,
    data: str,
    out: str,
    frames: int,
    kind: str,
    batch_size: int,
    workers: int,
    text_model: str | None,
    model_items: tuple[str, ...],
    device: str,
    force: bool,
) -> None:
    """Embed every clip of DATA with CHECKPOINT into a Parquet index (key, caption, embedding).

    The --index path is checked before anything is embedded: its folder must exist and be
    writable, and an existing file is kept unless --force. The index records the size and
    sha256 of every shard it read, so search can tell when a refilter, takedown or re-shard
    has rewritten them since.
    """
    from webvid.retrieval.search import build_index

    check_output_file(out, flag="--index", force=force)
    overrides = model_overrides(model_items)

    with progress_display() as progress:
        res = build_index(
            checkpoint,
            data,
            out,
            frames=frames,
            kind=kind,
            batch_size=batch_size,
            num_workers=workers,
            text_model=text_model,
            overrides=overrides,
            device=device,
            progress=progress,
        )
    if not is_quiet():
        console.print(
            f"[bold green]indexed[/] {res['clips']} clips ({res['dim']}-d) → {res['path']}"
            + (f"   broken: {res['broken']}" if res["broken"] else "")
        )


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--index", type=click.Path(exists=True, dir_okay=False), required=True)
@click.option(
    "-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Clips to show."
)
@click.option(
    "--checkpoint",
    type=click.Path(exists=True),
    help="Model to embed the query (default: the index's).",
)
@click.option(
    "--model",
    "model_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="A ModelConfig field for the query's model (repeatable; default: the overrides the "
    "index was built with, which it may repeat but not change).",
)
@click.option(
    "--allow-stale",
    is_flag=True,
    help="Search an index whose shards changed since webvid embed (a warning; such hits are "
    "marked stale).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def search(
    query: tuple[str, ...],
    index: str,
    k: int,
    checkpoint: str | None,
    model_items: tuple[str, ...],
    allow_stale: bool,
    as_json: bool,
) -> None:
    """The top-k clips of an index for a text QUERY.

    An index whose source shards were rewritten or removed since it was built (webvid
    refilter, takedown, a re-shard) is refused with the webvid embed command that rebuilds it,
    unless --allow-stale.
    """
    from webvid.retrieval.search import search as do_search

    text = " ".join(query).strip()
    if not text:
        raise click.UsageError("QUERY is empty: give the words to search for")
    overrides = model_overrides(model_items)
    hits = do_search(
        index,
        [text],
        k=k,
        checkpoint=checkpoint,
        overrides=overrides,
        allow_stale=allow_stale,
    )[0]
    if as_json:
        console.print_json(json.dumps([h.__dict__ for h in hits]))
        return
    table = Table(title=f"“{text}”")
    for col in ("#", "key", "score", "caption", "source"):
        table.add_column(col, justify="right" if col in ("#", "score") else "left")
    for i, h in enumerate(hits, 1):
        source = f"{h.source} (stale)" if h.stale else h.source
        table.add_row(str(i), h.key, f"{h.score:.3f}", h.caption, source)
    console.print(table)
