"""Training state on disk: atomic ``latest.pt``, periodic and best checkpoints, RNG and stream state.

Takes the live objects of a run (model, optimiser, step, per-rank data-stream positions,
counters) and produces checkpoint files in :func:`webvid.train.checkpoint.save_checkpoint`'s
format — so ``webvid eval`` and ``--init`` read them like any other of our checkpoints — with the
training extras stored as plain data (tensors, numbers, containers), which the restricted
unpickler admits. :func:`restore` puts everything back.

Files in a run dir: ``latest.pt`` (rewritten atomically at every checkpoint), ``checkpoints/
step-000500.pt`` (periodic, the newest ``keep`` kept), ``best.pt`` (best validation figure;
never chosen on a test set — the recipe's eval sets are validation sets).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from webvid.train.checkpoint import read_checkpoint, save_checkpoint


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(_listify(random.getstate())),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _listify(x: Any) -> Any:
    return [_listify(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_tuplify(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    step: int,
    stage: int,
    frames: int,
    data_state: list[dict[str, Any]],
    counters: dict[str, Any],
    best: dict[str, Any],
    recipe: dict[str, Any],
) -> None:
    """One training checkpoint, atomically (also a plain model checkpoint for eval/--init)."""
    save_checkpoint(
        path,
        model,
        step=step,
        stage=stage,
        frames=frames,
        epoch=step,
        optim_state=optimizer.state_dict(),
        rng=rng_state(),
        data_state=data_state,
        counters=counters,
        best=best,
        recipe=recipe,
    )


def load(path: Path) -> dict[str, Any]:
    """The training extras of a checkpoint (weights are loaded by the caller)."""
    _, meta = read_checkpoint(path)
    missing = [k for k in ("step", "optim_state", "rng", "data_state") if k not in meta]
    if missing:
        from webvid.errors import InputError

        raise InputError(
            f"{path} is a model checkpoint, not a training state (no {', '.join(missing)})"
        )
    return meta


def prune(folder: Path, keep: int) -> None:
    files = sorted(folder.glob("step-*.pt"))
    for old in files[: max(0, len(files) - keep)]:
        old.unlink(missing_ok=True)
