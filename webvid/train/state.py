"""Training state on disk: atomic ``latest.pt``, periodic and best checkpoints, RNG and stream state.

Takes the live objects of a run (model, optimiser, step, per-rank data-stream positions,
counters) and produces checkpoint files in :func:`webvid.model.checkpoint.save_checkpoint`'s
format — so ``webvid eval`` and ``--init`` read them like any other of our checkpoints — with the
training extras stored as plain data (tensors, numbers, containers), which the restricted
unpickler admits. :func:`restore` puts everything back.

Files in a run dir: ``latest.pt`` (rewritten atomically at every checkpoint), ``checkpoints/
step-000500.pt`` (periodic, the newest ``keep`` kept), ``best.pt`` (best validation figure;
never chosen on a test set — the recipe's eval sets are validation sets).

Resume checks (pure functions, tested as tables): :func:`resume_setting_changes` compares the
recipe saved in the checkpoint with the new one and names every changed setting — a few may
change (:data:`FREE_ON_RESUME`), the data-stream ones only with ``data.resume_data = "reseed"``
(:data:`STREAM_ON_RESUME`), the rest never. :func:`metrics_to_keep` reads ``metrics.jsonl``
for a resume, dropping a torn last line (power loss, full disk) and refusing damage elsewhere.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from webvid.errors import InputError
from webvid.model.checkpoint import read_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

#: Settings (dotted keys; ``*`` matches a list index) a resumed run may change freely: how the
#: run is logged, checkpointed, evaluated and placed, and what applies step by step anyway.
FREE_ON_RESUME = (
    "train.*",
    "evals",
    "evals[*].*",
    "data.resume_data",
    "data.caption_sample",
    "data.max_broken_fraction",
    "data.broken_check_after",
    "model.init",
    "model.vit_weights",
    "model.vit_weights_expect",
    "model.vit_weights_check",
    "model.init_temporal_fix",
    "optim.grad_clip_norm",
    "optim.schedule",
    "optim.min_lr_ratio",
)
#: Settings of the sample stream: an exact resume replays the same stream (every worker's
#: position is saved), so these change only with ``data.resume_data = "reseed"`` (a fresh
#: stream from the plan's position; not equivalent to the uninterrupted run).
STREAM_ON_RESUME = ("seed", "data.num_workers", "data.shuffle_buffer", "sources[*].shards")


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
        raise InputError(
            f"{path} is a model checkpoint, not a training state (no {', '.join(missing)})"
        )
    return meta


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Plain recipe data as ``{"data.num_workers": 2, "stages[0].steps": 5, …}``."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        out = {f"{prefix}#": len(value)}  # the count of tables, named "<key>" in messages
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: json.loads(json.dumps(value, default=str))}  # tuples == lists


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    key = key.removesuffix("#")
    for pat in patterns:
        rx = re.escape(pat).replace(r"\[\*\]", r"\[\d+\]").replace(r"\.\*", r"\..+")
        if re.fullmatch(rx, key):
            return True
    return False


def _show(v: Any) -> str:
    return "(unset)" if v is None else json.dumps(v)


def resume_setting_changes(
    saved: Mapping[str, Any], new: Mapping[str, Any], *, reseed: bool
) -> tuple[list[str], list[str]]:
    """Compare a checkpoint's recipe with the new one: ``(allowed, refused)`` change lines.

    Each line is ``"key: old -> new"``. Allowed: :data:`FREE_ON_RESUME`, and
    :data:`STREAM_ON_RESUME` when ``reseed``; everything else is refused.
    """
    a, b = _flatten(saved), _flatten(new)
    allowed, refused = [], []
    for key in sorted(set(a) | set(b)):
        old, cur = a.get(key), b.get(key)
        if old == cur:
            continue
        name = key.removesuffix("#")
        line = (
            f"{name}: {old or 0} -> {cur or 0} entries"
            if key.endswith("#")
            else f"{name}: {_show(old)} -> {_show(cur)}"
        )
        ok = _matches(key, FREE_ON_RESUME) or (reseed and _matches(key, STREAM_ON_RESUME))
        (allowed if ok else refused).append(line)
    return allowed, refused


def check_resume_settings(
    saved: Mapping[str, Any] | None, new: Mapping[str, Any], latest: Path
) -> list[str]:
    """Refuse (InputError) a resume whose recipe changed a setting it must keep; return the
    allowed changes (for the run's notes). ``saved`` None (an old checkpoint): nothing to check.
    """
    if not saved:
        return []
    reseed = (new.get("data") or {}).get("resume_data") == "reseed"
    allowed, refused = resume_setting_changes(saved, new, reseed=reseed)
    if refused:
        stream_only = all(_matches(ln.split(":")[0], STREAM_ON_RESUME) for ln in refused)
        hint = (
            'or set data.resume_data = "reseed" (a fresh sample stream from here, not '
            "equivalent to the uninterrupted run)"
            if stream_only
            else "or train into a new run dir"
        )
        raise InputError(
            f"cannot resume {latest}: the recipe changed {len(refused)} setting(s) the run "
            f"depends on: {'; '.join(refused)}. Use the saved values (config.toml in the run "
            f"dir) {hint}"
        )
    return allowed


def metrics_to_keep(path: Path, resumed_from: int) -> list[str]:
    """Lines of ``metrics.jsonl`` a run resumed at step ``resumed_from`` keeps.

    A torn last line (half-written at power loss or on a full disk) is dropped with a
    warning; an unreadable line before the last is damage a torn write cannot cause: InputError.
    Records after the checkpoint's step are dropped (the resumed run writes them again), and
    so are stage events at or after it.
    """
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    keep: list[str] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            if n == len(lines):
                log.warning("%s: dropped a torn last line (%d bytes)", path, len(line))
                break
            raise InputError(
                f"{path}: line {n} of {len(lines)} is not a JSON record; only the last line "
                "can be torn by a crash, so the file is damaged: move it away to resume"
            ) from None
        step = rec.get("step", 0)
        if not isinstance(step, (int, float)):
            step = 0
        if step <= resumed_from and not (rec.get("event") == "stage" and step >= resumed_from):
            keep.append(line)
    return keep


def prune(folder: Path, keep: int) -> None:
    files = sorted(folder.glob("step-*.pt"))
    for old in files[: max(0, len(files) - keep)]:
        old.unlink(missing_ok=True)
