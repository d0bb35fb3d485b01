"""The shard progress bar ends on the funnel's figures: ``passing`` is the kept count once the
duplicates and languages are decided, ``rejected`` every other input (caption failures counted
as soon as their clip is analysed, inputs without media at once), and ``taken_down`` the
listed inputs that never reach the bar."""

from __future__ import annotations

from pathlib import Path

from webvid.log import RecordingProgress
from webvid.shards.run import run


def test_the_bar_ends_on_the_funnel(tmp_path: Path, standard_crawl: Path, shards_recipe) -> None:
    progress = RecordingProgress()
    summary = run(shards_recipe(), [standard_crawl], tmp_path / "out", progress=progress)
    removed = dict(summary.funnel)
    # the fixture's funnel: an exact and a near duplicate and a French caption are decided
    # after every clip passed its own checks; they used to be counted as "passing"
    assert sum(n for r, n in removed.items() if r.startswith("duplicate")) >= 2, removed
    assert removed["caption_language"] == 1
    fields = progress.fields["curate"]
    assert progress.completed["curate"] == progress.totals["curate"] == summary.inputs
    assert fields["passing"] == summary.kept
    assert fields["rejected"] == summary.inputs - summary.kept == sum(removed.values())
    assert "taken_down" not in fields


def test_listed_inputs_are_shown_apart(tmp_path: Path, standard_crawl: Path, shards_recipe) -> None:
    listed = tmp_path / "takedown.txt"
    listed.write_text("clip1\nclip2\n")
    progress = RecordingProgress()
    summary = run(
        shards_recipe(f'exclude=["{listed}"]'),
        [standard_crawl],
        tmp_path / "out",
        progress=progress,
    )
    fields = progress.fields["curate"]
    assert fields["taken_down"] == 2 == dict(summary.funnel)["taken_down"]
    assert fields["passing"] == summary.kept
    assert fields["passing"] + fields["rejected"] + fields["taken_down"] == summary.inputs
