"""``OUT/report.html``: a self-contained page about one shard run (no external files).

Takes the verdict rows and the run summary (and reads a few samples back from the first
shard); produces one HTML file with the curation funnel (inputs → removed by each filter →
kept), histograms of duration, resolution, caption length and the scores (kept beside rejected,
never stacked; few distinct values get one bar pair per value, and a log count axis only when
the counts span two decades, so a group that sits in one bin stays visible), and thumbnails of the first samples with their captions. Plots are drawn with matplotlib's
Agg backend and embedded as base64 PNG, thumbnails as base64 JPEG.
"""

from __future__ import annotations

import base64
import html
import io
import math
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webvid.io import write_text

HISTOGRAMS = (  # column, title
    ("duration_s", "duration (s)"),
    ("short_side", "short side (px)"),
    ("caption_words", "caption length (words)"),
    ("motion_score", "motion score"),
    ("black_fraction", "black/blank frame fraction"),
    ("scene_cuts", "scene cuts"),
    ("caption_lang_score", "language probability"),
    ("aspect_ratio", "aspect ratio (w/h)"),
)
#: at most this many distinct values: one bar pair per value instead of bins
DISTINCT_BARS = 12
BINS = 20
#: a log count axis only when the largest count is this many times the smallest
LOG_RATIO = 100
COLORS = {"kept": "#55a868", "rejected": "#c44e52"}


@dataclass(frozen=True)
class Bars:
    """What one histogram panel draws: bar positions and labels, each group's counts."""

    positions: list[float]
    width: float  # of a group's bar; the two groups sit side by side
    labels: list[str] | None  # tick labels when each position is one value
    kept: list[int]
    rejected: list[int]
    log: bool


def histogram_bars(kept: Sequence[float], rejected: Sequence[float]) -> Bars:
    """Counts of both groups on shared bins: one per distinct value when there are at most
    :data:`DISTINCT_BARS` (a score that is 0 for nearly every clip is one bar pair, not a bin
    of width 1 around it), else :data:`BINS` equal bins over the range."""
    import numpy as np

    values = sorted({*kept, *rejected})
    if len(values) <= DISTINCT_BARS:
        k = [sum(1 for v in kept if v == x) for x in values]
        r = [sum(1 for v in rejected if v == x) for x in values]
        labels = [f"{x:g}" for x in values]
        positions, width = [float(i) for i in range(len(values))], 0.4
    else:
        edges = np.linspace(values[0], values[-1], BINS + 1)
        k = [int(c) for c in np.histogram(kept, edges)[0]]
        r = [int(c) for c in np.histogram(rejected, edges)[0]]
        labels = None
        step = float(edges[1] - edges[0])
        positions, width = [float(e) + step / 2 for e in edges[:-1]], step * 0.45
    counts = [c for c in (*k, *r) if c > 0]
    log = bool(counts) and max(counts) >= LOG_RATIO * min(counts)
    return Bars(positions, width, labels, k, r, log)


def draw_histogram(ax: Any, kept: Sequence[float], rejected: Sequence[float]) -> None:
    """Kept and rejected side by side on ``ax``; on a log axis the bars start below 1, so a
    bin holding a single clip still shows."""
    bars = histogram_bars(kept, rejected)
    offset = bars.width / 2
    for sign, name, counts in ((-1, "kept", bars.kept), (1, "rejected", bars.rejected)):
        ax.bar(
            [p + sign * offset for p in bars.positions],
            counts,
            width=bars.width,
            color=COLORS[name],
            label=name,
        )
    if bars.log:
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5)
    if bars.labels is not None:
        ax.set_xticks(bars.positions, bars.labels, fontsize=8)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return base64.b64encode(buf.getvalue()).decode()


def _funnel_png(summary: Any) -> str:
    import matplotlib.pyplot as plt

    labels = ["inputs"] + [r for r, _ in summary.funnel] + ["kept"]
    values = [summary.inputs] + [-n for _, n in summary.funnel] + [summary.kept]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) + 1))
    fig.subplots_adjust(left=0.3, right=0.9)
    colors = ["#4c72b0"] + ["#c44e52"] * len(summary.funnel) + ["#55a868"]
    ax.barh(labels[::-1], [abs(v) for v in values][::-1], color=colors[::-1])
    for i, v in enumerate(values[::-1]):
        ax.text(abs(v), i, f" {v:+d}" if 0 < i < len(values) - 1 else f" {v}", va="center")
    ax.set_xlabel("clips")
    ax.set_title("curation funnel")
    out = _png(fig)
    plt.close(fig)
    return out


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _histograms_png(rows: Sequence[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(14, 6))
    for ax, (col, title) in zip(axes.flat, HISTOGRAMS, strict=True):
        kept = [v for r in rows if r["kept"] and math.isfinite(v := _number(r.get(col)))]
        rejected = [v for r in rows if not r["kept"] and math.isfinite(v := _number(r.get(col)))]
        if kept or rejected:
            draw_histogram(ax, kept, rejected)
        ax.set_title(title)
    # one legend, on the first panel that has bars (an image run has no duration histogram)
    labelled = next((ax for ax in axes.flat if ax.get_legend_handles_labels()[0]), None)
    if labelled is not None:
        labelled.legend()
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.06, top=0.94, wspace=0.25, hspace=0.35)
    out = _png(fig)
    plt.close(fig)
    return out


def _thumbnail(data: bytes, ext: str, work: Path) -> str | None:
    """A small JPEG of an image, or of the middle frame of a clip, as base64."""
    from PIL import Image

    if ext == "mp4":
        src = work / "thumb.mp4"
        src.write_bytes(data)
        proc = subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-threads",
                "1",
                "-ss",
                "0.5",
                "-i",
                str(src),
                "-vf",
                "scale=-2:96",
                "-frames:v",
                "1",
                "-f",
                "image2pipe",
                "-c:v",
                "mjpeg",
                "pipe:1",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        return (
            base64.b64encode(proc.stdout).decode() if proc.returncode == 0 and proc.stdout else None
        )
    img = Image.open(io.BytesIO(data)).convert("RGB")
    img.thumbnail((160, 96))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    return base64.b64encode(buf.getvalue()).decode()


def _samples(out: Path, n: int) -> list[tuple[str, str, str | None]]:
    """(key, caption, thumbnail) for the first ``n`` samples of the first train (or val) shard."""
    tar_path = next(
        (p for split in ("train", "val") for p in sorted((out / split).glob("*.tar"))), None
    )
    if tar_path is None:
        return []
    found: list[tuple[str, str, str | None]] = []
    with tarfile.open(tar_path) as tf, tempfile.TemporaryDirectory(dir=out) as tmp:
        members = {m.name: m for m in tf.getmembers()}
        keys = sorted({name.split(".", 1)[0] for name in members})[:n]
        for key in keys:
            media = next(
                (members[f"{key}.{e}"] for e in ("mp4", "jpg") if f"{key}.{e}" in members), None
            )
            txt = members.get(f"{key}.txt")
            caption = tf.extractfile(txt).read().decode("utf-8") if txt else ""
            thumb = None
            if media is not None:
                thumb = _thumbnail(
                    tf.extractfile(media).read(), media.name.rsplit(".", 1)[1], Path(tmp)
                )
            found.append((key, caption, thumb))
    return found


def render(
    rows: Sequence[dict[str, Any]], summary: Any, samples: Sequence[tuple[str, str, str | None]]
) -> str:
    """The report page as a string."""
    left = summary.inputs
    funnel_rows = [f"<tr><td>inputs</td><td></td><td>{left}</td></tr>"]
    for reason, n in summary.funnel:
        left -= n
        funnel_rows.append(f"<tr><td>{html.escape(reason)}</td><td>-{n}</td><td>{left}</td></tr>")
    funnel_rows.append(f"<tr><th>kept</th><td></td><th>{summary.kept}</th></tr>")
    cards = "".join(
        f'<figure><img alt="{html.escape(k)}" src="data:image/jpeg;base64,{t}">'
        f"<figcaption><code>{html.escape(k)}</code> {html.escape(c)}</figcaption></figure>"
        if t
        else f"<figure><figcaption><code>{html.escape(k)}</code> {html.escape(c)}</figcaption></figure>"
        for k, c, t in samples
    )
    splits = ", ".join(f"{n} {s}" for s, n in summary.samples.items() if n) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>webvid shard report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}}td:first-child{{text-align:left}}
figure{{display:inline-block;width:170px;margin:6px;vertical-align:top;font-size:12px}}</style></head>
<body><h1>webvid shard report</h1>
<p>{summary.inputs} inputs, {summary.kept} kept ({splits}) in {summary.shards} shard(s);
{summary.skipped_records} unsuccessful crawl records were not inputs.</p>
<h2>Funnel</h2><table><tr><th>step</th><th>removed</th><th>left</th></tr>{"".join(funnel_rows)}</table>
<img alt="funnel" src="data:image/png;base64,{_funnel_png(summary)}">
<h2>Distributions (kept vs rejected)</h2>
<img alt="histograms" src="data:image/png;base64,{_histograms_png(rows)}">
<h2>Samples</h2>{cards or "<p>no samples</p>"}
<p>Every input with its reason and scores: <code>verdicts.parquet</code>; re-filter with SQL, see docs/shard.md.</p>
</body></html>
"""


def write_report(
    out: Path, rows: Sequence[dict[str, Any]], summary: Any, n_samples: int = 6
) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=True)
    path = out / "report.html"
    write_text(path, render(rows, summary, _samples(out, n_samples)))
    return path
