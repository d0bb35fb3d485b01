"""What a run produces besides checkpoints: its :class:`TrainSummary`, and in the run dir
``config.toml``, ``metrics.jsonl`` (and its TensorBoard mirror), ``curves.png`` and
``manifest.json``.

Takes the run dir, the recipe, the plan and the records the trainer logs; produces those files
(and the run's note on its global and per-process batch sizes, :func:`batch_note`). A
:class:`LogWindow` gathers the steps between two logged ones, so each logged step writes one
line per source trained in the window with that source's mean loss (the sources alternate:
logging only the step's own batch would log one source forever). Only the
main process calls these (:class:`webvid.train.trainer.Trainer` checks); checkpoints are
:mod:`webvid.train.state`'s.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webvid.config import dump_toml, to_dict
from webvid.errors import ConfigError
from webvid.io import disk_full_error, write_manifest, write_text
from webvid.train import state as S
from webvid.train.recipe import TrainRecipe
from webvid.train.schedule import Plan

log = logging.getLogger(__name__)


@dataclass
class TrainSummary:
    run_dir: Path
    steps: int
    resumed_from: int
    last_loss: float
    broken: dict[str, int]
    seen: int
    evals: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: processes that trained (torchrun's world size)
    world_size: int = 1
    #: ``{stage: {source: {"global": G, "per_process": G / world_size}}}``
    batch_sizes: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


class LogWindow:
    """The batches since the last logged step: per source the losses, gradient norms and
    batches, and in all the clips trained and the time spent waiting for data."""

    def __init__(self) -> None:
        self.reset(time.monotonic())

    def reset(self, now: float) -> None:
        self.t = now
        self.clips = 0
        self.wait = 0.0
        self.losses: dict[int, list[float]] = {}
        self.grad_norms: dict[int, list[float]] = {}

    def add(self, src: int, loss: float, grad_norm: float | None, clips: int) -> None:
        self.losses.setdefault(src, []).append(loss)
        if grad_norm is not None:
            self.grad_norms.setdefault(src, []).append(grad_norm)
        self.clips += clips

    def __bool__(self) -> bool:
        return bool(self.losses)

    def records(self, now: float) -> list[dict[str, Any]]:
        """One partial record per source seen, in source order: ``source`` (its index; the
        trainer names it), ``loss`` (the mean over the window's batches of that source),
        ``batches``, ``grad_norm`` (mean, when clipping), and the window's ``clips_per_s`` and
        ``data_wait_share``, the same on every source's line."""
        dt = max(1e-9, now - self.t)
        out = []
        for src in sorted(self.losses):
            losses = self.losses[src]
            rec: dict[str, Any] = {
                "source": src,
                "loss": sum(losses) / len(losses),
                "batches": len(losses),
                "clips_per_s": self.clips / dt,
                "data_wait_share": min(1.0, self.wait / dt),
            }
            if self.grad_norms.get(src):
                rec["grad_norm"] = sum(self.grad_norms[src]) / len(self.grad_norms[src])
            out.append(rec)
        return out


def prepare_run_dir(run_dir: Path, recipe: TrainRecipe, resumed_from: int) -> None:
    """Create the run dir, write ``config.toml`` and cut ``metrics.jsonl`` back to the resume
    step."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    write_text(run_dir / "config.toml", dump_toml(to_dict(recipe)))
    metrics = run_dir / "metrics.jsonl"
    if metrics.exists():  # a resumed run rewrites what came after its checkpoint
        # (and drops a torn last line, so appends start on a line of their own)
        keep = S.metrics_to_keep(metrics, resumed_from)
        write_text(metrics, "".join(k + "\n" for k in keep))


def open_tensorboard(run_dir: Path) -> Any:
    """A ``SummaryWriter`` on ``run_dir/tensorboard``; tensorboard is an optional package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "train.tensorboard = true needs the tensorboard package "
            "(pip install tensorboard); metrics.jsonl has the same figures"
        ) from None
    return SummaryWriter(str(run_dir / "tensorboard"))


def append_record(run_dir: Path, record: dict[str, Any], tb: Any | None) -> None:
    """One line of ``metrics.jsonl`` (and its numbers as TensorBoard scalars when ``tb``)."""
    path = run_dir / "metrics.jsonl"
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
    except OSError as exc:  # a full disk: one line naming the file, not a traceback
        raise disk_full_error(exc, path) or exc from None
    if tb is not None:
        prefix = record.get("source", record.get("event", ""))
        for k, v in record.items():
            if isinstance(v, (int, float)) and k != "step":
                tb.add_scalar(f"{prefix}/{k}" if "/" not in k else k, v, record["step"])


def batch_note(plan: Plan, names: list[str]) -> str:
    """One line for the run's notes: each stage's global batch per source and, under
    ``torchrun``, what each process loads of it."""
    n = plan.world_size
    parts = []
    for i, st in enumerate(plan.stages):
        sizes = ", ".join(
            f"{name} {plan.global_batch(i, k)}" + (f" = {n} x {st.batch_sizes[k]}" if n > 1 else "")
            for k, name in enumerate(names)
        )
        parts.append(f"{st.name}: {sizes}")
    who = f"over {n} processes (global = processes x per process)" if n > 1 else "1 process"
    return f"global batch sizes, {who}: " + "; ".join(parts)


def finish_run(summary: TrainSummary, recipe: TrainRecipe) -> None:
    """``curves.png`` then ``manifest.json``: written last, so a manifest means a finished run."""
    from webvid.train.plots import plot_curves

    run_dir = summary.run_dir
    try:
        plot_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
    except Exception as exc:  # a plot is a convenience, never a failed run
        log.warning("could not draw curves.png: %s", exc)
    write_manifest(
        run_dir,
        "run",
        config=to_dict(recipe),
        counts={
            "steps": summary.steps,
            "seen": summary.seen,
            "broken": sum(summary.broken.values()),
        },
        broken=summary.broken,
        best=summary.best,
        last_loss=summary.last_loss,
        world_size=summary.world_size,
        batch_sizes=summary.batch_sizes,
    )
