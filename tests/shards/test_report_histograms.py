"""The shard report's histograms show both groups: kept beside rejected (not stacked), one bar
pair per value when a score takes few values (black fraction 0, scene cuts 0/1/2), and a log
count axis whose bars start below 1, so neither the many kept clips in one bin nor the few
rejected ones disappear."""

from __future__ import annotations

import base64
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from webvid.shards import report


def _groups(ax) -> dict[str, list[tuple[float, float, float]]]:
    """Each group's drawn bars as (left, right, height)."""
    return {
        c.get_label(): [(b.get_x(), b.get_x() + b.get_width(), b.get_height()) for b in c]
        for c in ax.containers
    }


def test_one_value_for_almost_every_clip_shows_both_groups() -> None:
    kept = [0.0] * 400
    rejected = [0.0] * 3 + [0.9, 0.95]  # rejected for their captions, and for black frames
    bars = report.histogram_bars(kept, rejected)
    assert bars.labels == ["0", "0.9", "0.95"]
    assert (bars.kept, bars.rejected, bars.log) == ([400, 0, 0], [3, 1, 1], True)
    fig, ax = plt.subplots()
    report.draw_histogram(ax, kept, rejected)
    bottom, top = ax.get_ylim()
    groups = _groups(ax)
    assert ax.get_yscale() == "log" and bottom < 1 and top >= 400
    for name, count in (("kept", 400), ("rejected", 3)):
        height = groups[name][0][2]  # the value 0
        assert height == count and bottom < height <= top, name
    kept_right, rejected_left = groups["kept"][0][1], groups["rejected"][0][0]
    assert kept_right <= rejected_left + 1e-9, groups  # side by side, not stacked
    plt.close(fig)


def test_scene_cuts_get_a_bar_pair_per_count_on_a_linear_axis() -> None:
    kept = [0] * 30 + [1] * 10
    rejected = [2] * 4 + [3] * 6
    bars = report.histogram_bars(kept, rejected)
    assert bars.labels == ["0", "1", "2", "3"] and not bars.log
    assert (bars.kept, bars.rejected) == ([30, 10, 0, 0], [0, 0, 4, 6])


def test_many_values_share_equal_bins() -> None:
    kept = [i / 100 for i in range(100)]
    rejected = [0.5 + i / 1000 for i in range(50)]
    bars = report.histogram_bars(kept, rejected)
    assert len(bars.positions) == report.BINS and bars.labels is None
    assert sum(bars.kept) == 100 and sum(bars.rejected) == 50
    assert not bars.log


@pytest.mark.parametrize("value", [None, float("nan")])
def test_report_page_draws_with_missing_scores(value) -> None:
    rows = [
        {"kept": i % 4 > 0, "black_fraction": 0.0 if i % 5 else value, "scene_cuts": i % 3}
        for i in range(40)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = base64.b64decode(report._histograms_png(rows))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
