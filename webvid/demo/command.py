"""``webvid demo``: the click command around :func:`webvid.demo.pipeline.run`.

Takes the demo options; prints rich progress for every stage and, at the end, the planted
problems the pipeline caught, the retrieval figures of both curriculum stages and where to
look next.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from webvid.cliutil import console, progress_display
from webvid.demo.pipeline import DemoConfig, DemoSummary, crawl_counts, run

#: Planted problems and where their outcome shows: (label, stage, status-or-reason).
CAUGHT = (
    ("refused by robots.txt", "crawl", "skipped_robots"),
    ("refused by X-Robots-Tag opt-out", "crawl", "skipped_opt_out"),
    ("redirect loop", "crawl", "redirect_loop"),
    ("truncated body", "crawl", "truncated"),
    ("wrong content type", "crawl", "bad_content_type"),
    ("connection reset for good", "crawl", "connection_error"),
    ("rejected: undecodable / corrupt", "shard", "undecodable"),
    ("rejected: truncated media", "shard", "truncated"),
    ("rejected: too short", "shard", "duration_too_short"),
    ("rejected: still (no motion)", "shard", "still"),
    ("rejected: exact duplicate", "shard", "duplicate_exact"),
    ("rejected: near duplicate", "shard", "duplicate_near"),
    ("rejected: not English", "shard", "caption_language"),
    ("rejected: scene cut", "shard", "scene_cut"),
)


@click.command("demo")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    default="demo-run",
    show_default=True,
    help="Output folder.",
)
@click.option(
    "--clips",
    type=click.IntRange(min=16),
    default=None,
    help="Clips on the demo site [default: 256, --quick: 96].",
)
@click.option(
    "--images",
    type=click.IntRange(min=0),
    default=None,
    help="Images in its CC3M-style table [default: as many as clips].",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the site and the training run."
)
@click.option("--quick", is_flag=True, help="A smaller, shorter run (about 3 minutes on 2 cores).")
@click.option(
    "--steps",
    type=(int, int),
    default=None,
    help="Training steps of the 1-frame and the 4-frame stage.",
)
@click.option(
    "--train-recipe",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Training recipe with two stages [default: train/demo.toml].",
)
def demo(
    out: str,
    clips: int | None,
    images: int | None,
    seed: int,
    quick: bool,
    steps: tuple[int, int] | None,
    train_recipe: str | None,
) -> None:
    """The whole pipeline on the built-in demo stock site, on this machine's CPU.

    \b
    Starts the demo site on 127.0.0.1, crawls it (discovery) and its image table (list mode),
    curates and shards both, trains the dual encoder jointly on video and image shards through
    the 1 → 4 frame curriculum, evaluates on held-out clips and runs a few text searches.
    Everything lands in OUT; open OUT/report.html afterwards.
    """
    cfg = DemoConfig(
        out=Path(out),
        clips=clips,
        images=images,
        seed=seed,
        quick=quick,
        steps=steps,
        train_recipe=Path(train_recipe) if train_recipe else None,
    )
    with progress_display() as progress:
        summary = run(cfg, progress)
    print_summary(summary)


def caught_counts(s: DemoSummary) -> list[tuple[str, int]]:
    reasons_crawl: dict[str, int] = {}
    for c in s.crawl.values():
        counts = crawl_counts(c)
        for k, v in {**counts["by_status"], **counts["by_reason"]}.items():
            reasons_crawl[k] = reasons_crawl.get(k, 0) + v
    reasons_shard: dict[str, int] = {}
    for sh in s.shards.values():
        for r, n in sh.funnel:
            reasons_shard[r] = reasons_shard.get(r, 0) + n
    rows = []
    for label, stage, key in CAUGHT:
        n = (reasons_crawl if stage == "crawl" else reasons_shard).get(key, 0)
        if n:
            rows.append((label, n))
    return rows


def print_summary(s: DemoSummary) -> None:
    t = Table(title="planted problems handled", title_justify="left", header_style="bold")
    t.add_column("problem")
    t.add_column("items", justify="right")
    for label, n in caught_counts(s):
        t.add_row(label, str(n))
    console.print(t)

    r = Table(
        title="retrieval on held-out demo clips (text → video, %)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("model", "R@1", "R@5", "R@10", "MedR", "direction acc."):
        r.add_column(col, justify="left" if col == "model" else "right")
    for name, m in s.evals.items():
        r.add_row(
            name,
            *(
                f"{m.get(k, float('nan')):.1f}"
                for k in ("t2v_R1", "t2v_R5", "t2v_R10", "t2v_MedR", "direction_acc")
            ),
        )
    console.print(r)
    console.print(
        f"chance: R@1 = {s.chance_r1:.1f}%, direction = 25%   ·   total {s.timings_s.get('total', 0):.0f} s"
    )
    console.print("\n[bold]Where to look next[/]")
    console.print(f"  report      {s.report}")
    console.print(
        f'  metadata    webvid query --root {s.out} "SELECT status, reason, count(*) FROM crawl GROUP BY ALL"'
    )
    console.print(
        f'  curation    webvid query --root {s.out} "SELECT reason, count(*) FROM verdicts WHERE NOT kept GROUP BY 1"'
    )
    console.print(
        f'  search      webvid search "a red circle moving left" --index {s.out}/run/index.parquet'
    )
    console.print("  recipes     crawl/demo-site.toml, shards/demo.toml, train/demo.toml")
