"""Training curves as a PNG: loss per source and validation R@k against the step.

Takes a run's ``metrics.jsonl`` (per logged step, one line per source with its mean loss over
the logging window) and produces ``curves.png`` (matplotlib, Agg backend, no display).
"""

from __future__ import annotations

import json
from pathlib import Path

from webvid.io import atomic_path


def read_series(
    metrics_path: Path,
) -> tuple[
    dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, float]]], list[tuple[int, str]]
]:
    """From ``metrics.jsonl``: each source's (step, mean loss over the logging window), each
    evaluation metric's (step, value), and the stage changes (step, label)."""
    steps: dict[str, list[tuple[int, float]]] = {}
    evals: dict[str, list[tuple[int, float]]] = {}
    stages: list[tuple[int, str]] = []
    for line in Path(metrics_path).read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec.get("event") == "eval":
            for k, v in rec.items():
                if "/" in k and ("_R" in k) and isinstance(v, (int, float)):
                    evals.setdefault(k, []).append((rec["step"], float(v)))
        elif rec.get("event") == "stage":
            stages.append((rec["step"], f"{rec['stage']} ({rec['frames']}f)"))
        elif "loss" in rec:
            steps.setdefault(rec["source"], []).append((rec["step"], rec["loss"]))
    return steps, evals, stages


def plot_curves(metrics_path: Path, out_path: Path) -> None:
    """Draw ``curves.png``: one loss line per source, validation R@k, stage changes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, evals, stages = read_series(metrics_path)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, pts in steps.items():
        axes[0].plot([p[0] for p in pts], [p[1] for p in pts], label=name, lw=1)
    axes[0].set(title="training loss", xlabel="step", ylabel="NormSoftmax loss (window mean)")
    for name, pts in sorted(evals.items()):
        if name.endswith(("R1", "R5", "R10")):
            axes[1].plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    axes[1].set(title="validation retrieval", xlabel="step", ylabel="R@k (%)")
    for ax in axes:
        for s, label in stages:
            ax.axvline(s, color="grey", ls="--", lw=0.8)
            ax.text(s, ax.get_ylim()[1], label, fontsize=7, va="top")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
