"""``webvid takedown LIST --root DIR``: the click command over :mod:`webvid.shards.takedown`.

Takes a list of clip ids, URLs, page URLs or sha256 values, a data root, a reason, extra
embedding indexes and ``--dry-run``; runs the takedown under a progress display and prints
what was removed (counts per kind, the shard sets, shards and indexes rewritten) and the
query that shows the log.
"""

from __future__ import annotations

import click

from webvid.cli.util import console, is_quiet, progress_display
from webvid.shards.takedown import run


@click.command("takedown")
@click.argument("list_file", metavar="LIST", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--root",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Data root: every shard dir and embedding index under it is searched.",
)
@click.option("--reason", default=None, help="Why (recorded in takedowns.parquet).")
@click.option(
    "--index",
    "indexes",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="An embedding index outside the root to clean too (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; change nothing.")
def takedown(
    list_file: str, root: str, reason: str | None, indexes: tuple[str, ...], dry_run: bool
) -> None:
    """Remove the clips named in LIST from every shard set under --root.

    \b
    LIST: one clip id, media URL, page URL or sha256 per line (# comments; or a CSV
    with a clip_id / url / page_url / sha256 header). Matching samples leave the tars,
    the per-shard Parquet, verdicts.parquet, every `webvid embed` index and every
    finished crawl dir (records and downloaded files) under the root; stats,
    index.parquet and manifest.json are updated; only affected shards are rewritten,
    under the same names. ROOT/takedowns.parquet logs what went, when and why, and
    later `webvid crawl` / `webvid shard` runs into ROOT skip those clips.
    An interrupted takedown is finished by the next run.
    """
    with progress_display() as progress:
        summary = run(
            list_file, root, reason=reason, indexes=indexes, dry_run=dry_run, progress=progress
        )
    if is_quiet():
        return
    if summary.resumed:
        console.print(f"finished the interrupted takedown {summary.resumed}")
    if summary.nothing_to_do:
        console.print(
            f"nothing to take down: the {summary.listed} identifier(s) of {list_file} match no "
            "sample under the root, and the log already lists them"
        )
        return
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{verb} {summary.samples} sample(s) from {summary.shards or 'their'} shard(s) in "
        f"{len(summary.shard_sets)} shard set(s) ({', '.join(summary.shard_sets) or '-'}), "
        f"{summary.inputs} rejected input(s) from verdicts, {summary.records} crawl record(s) "
        f"and their files, {summary.index_rows} row(s) from "
        f"{len(summary.index_files)} embedding index(es); {summary.unmatched} identifier(s) "
        "matched nothing (logged, so later crawls skip them)"
    )
    if not dry_run:
        console.print(
            f"log: {summary.root}/takedowns.parquet (takedown {summary.takedown_id}); check with "
            f'webvid query --root {root} "SELECT * FROM takedowns"'
        )
