"""``webvid demo`` and ``webvid demo-site``: the built-in demo, whole or just its stock site.

``demo`` wraps :func:`webvid.demo.pipeline.run`: takes the demo options; prints rich progress
for every stage and, at the end, the planted problems the pipeline caught, the retrieval
figures of both curriculum stages and where to look next.

``demo-site`` serves :mod:`webvid.demo.site` on loopback until Ctrl-C: takes a port, a clip
count, a seed and the faults switch; produces nothing on disk except the cached media
(``~/.cache/webvid/demo`` or ``--cache-dir``); prints the site's URL and serves it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
from aiohttp import web
from rich.table import Table

from webvid.cli.util import console, progress_display
from webvid.demo.counts import crawl_counts
from webvid.demo.pipeline import DemoConfig, DemoSummary, run
from webvid.demo.site import make_app, start_runner
from webvid.demo.siteconfig import SiteConfig
from webvid.errors import WebvidError

#: Planted problems and where their outcome shows: (label, stage, key); a crawl key is a
#: status, a reason or an opt-out label (``<optout_source>:kept|skipped``, webvid.demo.counts).
CAUGHT = (
    ("refused by robots.txt", "crawl", "robots:skipped"),
    ("refused by X-Robots-Tag opt-out", "crawl", "x-robots-tag:skipped"),
    ("refused by robots meta opt-out", "crawl", "robots-meta:skipped"),
    ("refused by robots.txt group of an AI crawler", "crawl", "robots-ai:skipped"),
    ("refused by Content-Usage (IETF AI prefs)", "crawl", "content-usage:skipped"),
    ("kept, Content-Usage allows", "crawl", "content-usage:kept"),
    ("refused by Content-Signal", "crawl", "content-signal:skipped"),
    ("kept, Content-Signal allows", "crawl", "content-signal:kept"),
    ("refused by TDMRep tdmrep.json", "crawl", "tdmrep-file:skipped"),
    ("kept, TDMRep tdmrep.json allows", "crawl", "tdmrep-file:kept"),
    ("refused by TDMRep header", "crawl", "tdmrep-header:skipped"),
    ("kept, TDMRep header allows", "crawl", "tdmrep-header:kept"),
    ("refused by TDMRep meta", "crawl", "tdmrep-meta:skipped"),
    ("kept, TDMRep meta allows", "crawl", "tdmrep-meta:kept"),
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
@click.option(
    "--loop",
    is_flag=True,
    help="Instead: curation with the model in the loop on a site with planted noise "
    "(swapped captions, re-renders): train → webvid score → refilter → retrain, per seed "
    "[default --clips 128, --steps 60 60].",
)
@click.option(
    "--loop-seeds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="With --loop: training seeds SEED, SEED+1, ...",
)
def demo(
    out: str,
    clips: int | None,
    images: int | None,
    seed: int,
    quick: bool,
    steps: tuple[int, int] | None,
    train_recipe: str | None,
    loop: bool,
    loop_seeds: int,
) -> None:
    """The whole pipeline on the built-in demo stock site, on this machine's CPU.

    \b
    Starts the demo site on 127.0.0.1, crawls it (discovery) and its image table (list mode),
    curates and shards both, trains the dual encoder jointly on video and image shards through
    the 1 → 4 frame curriculum, evaluates on held-out clips and runs a few text searches.
    Everything lands in OUT; open OUT/report.html afterwards.

    With --loop it measures curation with the model in the loop instead (docs/curation.md):
    the site gets a planted share of swapped captions and re-rendered clips
    (OUT/noise-truth.json); per seed the demo's recipe is trained, the train split scored
    (webvid score), filtered with min_caption_agreement (webvid refilter; semantic dedup with
    max_per_semantic_cluster is judged on a dry run) and trained on again from the same start.
    OUT/loop.json and OUT/report.html hold the filters' precision and recall and held-out
    retrieval with and without the filter, over the seeds.
    """
    if loop:
        if quick or train_recipe or images is not None:
            raise click.UsageError("--loop takes --clips, --seed, --steps and --loop-seeds only")
        _run_loop(out, clips, seed, steps, loop_seeds)
        return
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


def _run_loop(
    out: str, clips: int | None, seed: int, steps: tuple[int, int] | None, n_seeds: int
) -> None:
    from webvid.demo.loop import LoopConfig, run_loop

    cfg = LoopConfig(
        out=Path(out),
        clips=clips if clips is not None else LoopConfig.clips,
        seeds=tuple(range(seed, seed + n_seeds)),
        steps=steps if steps is not None else LoopConfig.steps,
        site_seed=seed,
    )
    with progress_display() as progress:
        result = run_loop(cfg, progress)
    print_loop(result)


def print_loop(result: dict[str, Any]) -> None:
    """The loop's two tables (filters against the planted truth; held-out retrieval)."""
    from webvid.demo.report import loop_tables

    tabs = loop_tables(result)
    q = Table(
        title=f"filters against the planted truth (mean (min–max) over {len(result['seeds'])} seeds)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("filter", "precision", "recall", "right / removed", "chance prec."):
        q.add_column(col, justify="left" if col == "filter" else "right")
    for row in tabs["quality"]:
        q.add_row(*row)
    console.print(q)
    r = Table(title="held-out retrieval, without and with the filter", title_justify="left",
              header_style="bold")  # fmt: skip
    for col in ("metric", "baseline", "filtered", "Δ (±std)", "chance"):
        r.add_column(col, justify="left" if col == "metric" else "right")
    for row in tabs["retrieval"]:
        r.add_row(*row)
    console.print(r)
    console.print(
        f"rule-based curation already: {result['rule_based']}   ·   total "
        f"{result['timings_s'].get('total', 0):.0f} s"
    )
    console.print(f"  report      {result['report']}")
    console.print(f"  figures     {Path(result['report']).parent / 'loop.json'}")


def caught_counts(s: DemoSummary) -> list[tuple[str, int]]:
    reasons_crawl: dict[str, int] = {}
    for c in s.crawl.values():
        counts = crawl_counts(c)
        for k, v in {**counts["by_status"], **counts["by_reason"], **counts["by_optout"]}.items():
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
    from webvid.demo.evaluate import expectation_note
    from webvid.demo.report import search_note

    final = list(s.evals.values())[-1] if s.evals else {}
    console.print(expectation_note(int(final.get("videos", 0)), s.quick), highlight=False)
    note = search_note(s.searches)
    if note:
        console.print(f"search: {note}", highlight=False)
    console.print(f"total {s.timings_s.get('total', 0):.0f} s")
    if s.takedown:
        td, gone = s.takedown, []
        for c in s.takedown["clips"]:
            a = c["after"]
            where = a["samples"] + a["tar_members"] + a["index_rows"] + bool(a["search_rank"])
            gone.append(f"{c['key']} {'gone' if not where else 'STILL FOUND'}")
        console.print(
            f"takedown of 2 clips ({', '.join(gone)} from the shards, the index and search): "
            f"{td['removed']['samples']} samples, {td['removed']['crawl_records']} crawl records, "
            f"{td['removed']['index_rows']} index rows removed"
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
    console.print(
        f'  takedowns   webvid query --root {s.out} "SELECT kind, identifier, key, clip_id FROM takedowns"'
    )
    console.print("  recipes     crawl/demo-site.toml, shards/demo.toml, train/demo.toml")
    console.print(f"  browse      webvid browse {s.out}")


@click.command("demo-site")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="TCP port (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--clips",
    "n_clips",
    type=click.IntRange(0),
    default=48,
    show_default=True,
    help="Number of clips.",
)
@click.option(
    "--images",
    "n_images",
    type=click.IntRange(0),
    default=None,
    help="Rows of the CC3M-style image table [default: as many as clips].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the catalogue.")
@click.option(
    "--faults/--no-faults",
    default=True,
    show_default=True,
    help="Plant the realistic faults (429s, resets, opt-outs, broken clips, ...).",
)
@click.option(
    "--signals/--no-signals",
    default=False,
    show_default=True,
    help="With faults: one extra clip per opt-out signal and answer (Content-Usage, "
    "Content-Signal, TDMRep, robots meta, an AI-crawler group), as in `webvid demo`.",
)
@click.option(
    "--page-size",
    type=click.IntRange(1),
    default=12,
    show_default=True,
    help="Clips per listing page.",
)
@click.option(
    "--crawl-delay",
    "crawl_delay_s",
    type=float,
    default=None,
    help="Crawl-delay (seconds) announced in robots.txt.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where generated media are cached [default: ~/.cache/webvid/demo].",
)
def demo_site(
    port: int,
    host: str,
    n_clips: int,
    n_images: int | None,
    seed: int,
    faults: bool,
    signals: bool,
    page_size: int,
    crawl_delay_s: float | None,
    cache_dir: str | None,
) -> None:
    """Serve the built-in demo stock-footage site until Ctrl-C.

    \b
    Routes: /videos/page/1 (listings), /clip/ID, /cdn/ID.mp4, /cc3m.tsv, /robots.txt,
    /_truth.json (every item's planted fault and expected crawl outcome).
    """
    config = SiteConfig(
        seed=seed,
        n_clips=n_clips,
        n_images=n_clips if n_images is None else n_images,
        page_size=page_size,
        faults=faults,
        signals=signals,
        crawl_delay_s=crawl_delay_s,
        cache_dir=cache_dir,
    )
    with progress_display() as progress:
        app = make_app(config, progress=progress)
    try:
        asyncio.run(_serve_forever(app, host, port, config))
    except KeyboardInterrupt:
        console.print("stopped")


async def _serve_forever(app: web.Application, host: str, port: int, config: SiteConfig) -> None:
    try:
        runner, url = await start_runner(app, host, port)
    except OSError as exc:
        raise WebvidError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (pick another --port, or 0)"
        ) from exc
    try:
        console.print(
            f"demo stock site: [bold]{url}/[/]  ({config.n_clips} clips, "
            f"{config.n_images} images, faults {'on' if config.faults else 'off'}, "
            f"seed {config.seed})"
        )
        console.print(f"listings {url}/videos/page/1", soft_wrap=True)
        console.print(f"images   {url}/cc3m.tsv", soft_wrap=True)
        console.print(f"truth    {url}/_truth.json", soft_wrap=True)
        console.print("press Ctrl-C to stop")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
