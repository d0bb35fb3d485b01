"""The progress displays: plain lines for logs / CI / nohup (step count, rate, ETA, fields),
the rich bars' task names never cut in an 80-column terminal, and which display a run gets."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from webvid.cli import util
from webvid.cli.terminal import PlainProgress, RichProgress
from webvid.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _plain(interval_s: float) -> tuple[PlainProgress, io.StringIO, Clock]:
    out = io.StringIO()
    clock = Clock()
    console = Console(file=out, width=80, force_terminal=False)
    return PlainProgress(console, interval_s=interval_s, clock=clock), out, clock


def test_plain_lines_every_interval_with_count_rate_and_eta() -> None:
    progress, out, clock = _plain(30)
    with progress:
        progress.update("train", advance=300, total=700)  # resumed at step 300
        for _ in range(100):  # 100 steps in 50 s: 2 steps/s
            clock.t += 0.5
            progress.update("train", advance=1, stage="4-frame", frames="videos 4, images 1")
        progress.update("train", loss="videos 2.1, images 2.5")
    lines = out.getvalue().splitlines()
    # one line at 30 s (60 steps), the last one at the end; none wrapped at 80 columns
    assert len(lines) == 2, lines
    assert lines[0].startswith("train       360/700  51%  elapsed 0:00:30  2/s  eta 0:02:50")
    assert lines[1].startswith("train       400/700  57%  elapsed 0:00:50  2/s  eta 0:02:30")
    assert lines[1].endswith(
        "stage=4-frame  frames=videos 4, images 1  loss=videos 2.1, images 2.5"
    )


def test_plain_lines_without_a_total_and_with_interval_zero() -> None:
    progress, out, clock = _plain(0)
    with progress:
        for _ in range(5):
            clock.t += 60
            progress.update("crawl", advance=2, failed=1)
        progress.message("a note")
    assert out.getvalue().splitlines() == [
        "a note",
        "crawl       10  elapsed 0:04:00  0.0333/s  failed=1",
    ]


def test_rich_bar_keeps_the_task_name_and_count_in_80_columns() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    with RichProgress(console, min_interval_s=0) as progress:
        progress.update("crawl", advance=41, total=500)
        progress.update(
            "crawl",
            advance=1,
            downloaded=40,
            failed=1,
            skipped=3,
            bytes="1.2 GiB",
            rate="3.4 items/s",
            opted_out=5,
        )
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "crawl " in text and "cra…" not in text
    assert "42/500" in text


def test_display_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(util, "err_console", Console(file=io.StringIO(), force_terminal=False))
    monkeypatch.delenv("WEBVID_NO_PROGRESS", raising=False)
    monkeypatch.setenv("WEBVID_PROGRESS_EVERY", "5")
    display = util.progress_display()
    assert isinstance(display, PlainProgress) and display._interval == 5.0
    monkeypatch.setenv("WEBVID_PROGRESS_EVERY", "soon")
    with pytest.raises(ConfigError, match="WEBVID_PROGRESS_EVERY='soon'"):
        util.progress_display()
    monkeypatch.setenv("WEBVID_NO_PROGRESS", "1")
    with util.progress_display() as progress:
        assert type(progress).__name__ == "NullProgress"
    monkeypatch.setattr(util, "err_console", Console(file=io.StringIO(), force_terminal=True))
    assert isinstance(util.progress_display(), RichProgress)
