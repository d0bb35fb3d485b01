"""The ``webvid score`` and ``webvid refilter`` commands: model scores of a shard set, and a
finished shard set re-curated with them.

Takes command-line arguments and produces rich output (progress on stderr, a summary on
stdout); the work happens in :mod:`webvid.curate.score` and :mod:`webvid.curate.refilter`.
"""

from __future__ import annotations

import json

import click

from webvid.cli.util import console, is_quiet, model_overrides, progress_display, recipe_options


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.argument("shards")
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Scores table to write (.parquet; name it scores.parquet for a `scores` query view).",
)
@click.option("--device", default="cpu", show_default=True, help="Where to embed (cuda, cpu).")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Processes that decode shards (each a whole shard at a time; 0: the main process). "
    "The table is the same whatever the number.",
)
@click.option("--frames", type=int, default=4, show_default=True, help="Frames per clip (uniform).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option(
    "--text-model", help="Text model dir for official checkpoints (ours carry their config)."
)
@click.option(
    "--model",
    "model_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a ModelConfig field of the checkpoint's model (repeatable).",
)
@click.option(
    "--threshold",
    type=float,
    default=0.95,
    show_default=True,
    help="Cosine at or above which two clips are semantic near-duplicates.",
)
@click.option(
    "--neighbors", type=int, default=5, show_default=True, help="Nearest other clips kept per clip."
)
@click.option(
    "--bucket-size",
    type=int,
    default=2048,
    show_default=True,
    help="Target clips per k-means bucket of the near-duplicate search.",
)
@click.option(
    "--probes",
    type=int,
    default=2,
    show_default=True,
    help="K-means buckets each clip is compared in (3: higher recall, 1.5x the work).",
)
@click.option(
    "--rank-pool",
    type=int,
    default=65_536,
    show_default=True,
    help="Ranks are exact up to this many samples, else counted in a sample this big.",
)
def score(
    checkpoint: str,
    shards: str,
    out: str,
    device: str,
    batch_size: int,
    workers: int,
    frames: int,
    precision: str,
    text_model: str | None,
    model_items: tuple[str, ...],
    threshold: float,
    neighbors: int,
    bucket_size: int,
    probes: int,
    rank_pool: int,
) -> None:
    """Embed every sample of SHARDS with CHECKPOINT and write its scores to --out.

    SHARDS is a shard dir (its tars at any depth) or glob / brace patterns. Per sample:
    caption–clip cosine and mutual rank (caption_agreement), the nearest other clips and the
    semantic near-duplicate group. A killed run resumes from the shards it finished
    (hidden .OUT.parts folder beside --out).
    """
    from webvid.curate.parts import EmbedOptions
    from webvid.curate.score import ScoreOptions
    from webvid.curate.score import score as run_score
    from webvid.curate.semdedup import DedupParams

    try:
        dedup = DedupParams(
            threshold=threshold,
            neighbors=neighbors,
            bucket_size=bucket_size,
            probes=probes,
            device=device,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    opts = ScoreOptions(
        embed=EmbedOptions(
            frames=frames,
            batch_size=batch_size,
            device=device,
            precision=precision,
            text_model=text_model,
            overrides=model_overrides(model_items),
        ),
        dedup=dedup,
        rank_pool=rank_pool,
    )
    with progress_display() as progress:
        res = run_score(checkpoint, shards, out, opts, progress, workers=workers)
    if not is_quiet():
        console.print(
            f"[bold green]scored[/] {res['samples']} samples of {res['shards']} shards "
            f"({res['embedded_now']} embedded now) → {res['path']}   broken: {res['broken']}   "
            f"semantic duplicates: {res['semantic_duplicates']}"
        )


@click.command()
@click.argument("shard_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--scores",
    "scores",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="Scores table of this shard set (webvid score).",
)
@recipe_options()
@click.option("--dry-run", is_flag=True, help="Only report what the filters would remove.")
def refilter(
    shard_dir: str, scores: str, recipe: str | None, overrides: tuple[str, ...], dry_run: bool
) -> None:
    """Re-curate the finished SHARD_DIR with the score filters of the recipe's [filters].

    min_caption_agreement, min_caption_cosine and max_per_semantic_cluster reject samples;
    every verdict row gets its scores, rejected or not. Only the shards that lose samples are
    rewritten (the others stay byte-identical, keys are kept); verdicts, index and manifest
    are recomputed. Rerunning after a kill finishes the job.
    """
    from webvid.curate.refilter import refilter as run_refilter
    from webvid.shards import recipe as shard_recipe

    config = shard_recipe.load(recipe, [*overrides, f"scores={json.dumps(scores)}"])
    res = run_refilter(shard_dir, scores, config.filters, dry_run=dry_run)
    if not is_quiet():
        console.print_json(json.dumps(res))
