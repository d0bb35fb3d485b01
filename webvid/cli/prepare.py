"""``webvid prepare NAME ROOT -o SHARDS``: a benchmark's train split → fine-tuning shards.

Takes a dataset name (msrvtt, msvd, didemo, lsmdc), its root in a community layout (read by
:func:`webvid.benchmarks.load_train_split`) and an output folder; runs
:func:`webvid.benchmarks.prepare.prepare` under the progress display and prints one summary
line (videos written, captions, failures by reason, shards, time) and where the metadata is.
"""

from __future__ import annotations

import click

from webvid.benchmarks import DATASETS, load_train_split
from webvid.benchmarks.prepare import ITEMS_NAME, PrepareOptions, PrepareSummary, prepare
from webvid.benchmarks.prepare_media import MediaSettings
from webvid.cli.util import console, is_quiet, progress_display


def summary_line(s: PrepareSummary) -> str:
    """``written/videos … → shards in OUT (failures by reason; time; reused shards)``."""
    failed = ", ".join(f"{reason} {n}" for reason, n in s.failed.items())
    done = "already complete, nothing to do" if s.already_done else f"{s.elapsed_s:.1f}s"
    return (
        f"{s.written}/{s.videos} videos of {s.benchmark} written with {s.captions} captions "
        f"in {s.shards} shard(s) ({s.tar_bytes / 1e6:.1f} MB) → {s.out}/train "
        f"(failed: {failed or 'none'}; {done}; {s.shards_reused} shard(s) reused)"
    )


@click.command("prepare")
@click.argument("name", type=click.Choice(DATASETS))
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option(
    "-o", "--out", required=True, type=click.Path(file_okay=False), help="Output shard folder."
)
@click.option(
    "--videos",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder holding the videos (default: ROOT/videos/all, ROOT/videos, then ROOT).",
)
@click.option("--shard-size", type=int, default=256, show_default=True, help="Videos per shard.")
@click.option("--workers", type=int, default=0, help="Worker processes (default: one per core).")
@click.option(
    "--max-short-side",
    type=int,
    default=256,
    show_default=True,
    help="Larger videos are scaled down to this short side (H.264).",
)
@click.option(
    "--max-duration",
    "max_duration_s",
    type=float,
    default=600.0,
    show_default=True,
    help="Videos are cut to this many seconds.",
)
@click.option("--crf", type=int, default=23, show_default=True, help="x264 quality of transcodes.")
@click.option(
    "--missing",
    type=click.Choice(["record", "error"]),
    default="record",
    show_default=True,
    help="A listed video not on disk: a missing_media row in items.parquet (the run goes on), "
    "or an error before anything is written. Every video missing is always an error.",
)
def prepare_cmd(
    name: str,
    root: str,
    out: str,
    videos: str | None,
    shard_size: int,
    workers: int,
    max_short_side: int,
    max_duration_s: float,
    crf: int,
    missing: str,
) -> None:
    """Turn dataset NAME's train split under ROOT into WebDataset training shards in OUT.

    The train split: MSR-VTT's 9k train_list_jsfusion.txt (the 1k-A protocol's), MSVD's,
    DiDeMo's and LSMDC's train lists, in the collaborative-experts or CLIP4Clip layout.

    \b
    OUT/train/00000.tar   KEY.mp4, KEY.txt (the first caption), KEY.json
                          ({"id", "dataset", "split", "captions": [ALL captions], ...})
    OUT/train/00000.parquet, 00000_stats.json (the shard's commit marker)
    OUT/items.parquet     every video, written or not, with its status and reason
    OUT/index.parquet, stats.json, manifest.json (written last)
    Clips that are already H.264 mp4s within the limits keep their bytes; others (avi, mkv,
    mov, webm, 3gp …) are transcoded to H.264 mp4. The same inputs give byte-identical tars;
    reruns resume: committed shards are kept.
    """
    options = PrepareOptions(
        shard_size=shard_size,
        workers=workers,
        media=MediaSettings(max_short_side=max_short_side, max_duration_s=max_duration_s, crf=crf),
    )
    bench = load_train_split(name, root, videos=videos, keep_missing=missing == "record")
    with progress_display() as progress:
        summary = prepare(bench, root, out, options=options, progress=progress)
    if is_quiet():
        return
    console.print(summary_line(summary), highlight=False)
    console.print(f"items: {summary.out}/{ITEMS_NAME}", highlight=False)
