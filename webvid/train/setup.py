"""Building a run's parts: the compiled model, the optimiser, the input normaliser, the
training streams, what a ``latest.pt`` restores, and the temporal-table inflation a stage
change or ``--init`` needs.

Takes the recipe, the plan and the model; produces ready objects for
:class:`webvid.train.trainer.Trainer`. Nothing here keeps state between calls: the trainer owns
the step, the stream positions and the RNG, and passes them in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from webvid.clips.sample import ClipOptions, Tokenize
from webvid.clips.stream import expand_shards
from webvid.config import to_dict
from webvid.errors import ConfigError, InputError
from webvid.model.checkpoint import inflate_temporal_embed
from webvid.model.model import FrozenInTime
from webvid.train import state as S
from webvid.train.data import TrainStream, make_train_loader
from webvid.train.dist import DistInfo
from webvid.train.recipe import OptimSection, TrainRecipe
from webvid.train.schedule import Plan

log = logging.getLogger(__name__)


def compile_video_model(model: FrozenInTime, backend: str, device: torch.device) -> None:
    """``torch.compile`` the space-time ViT in place: its ``state_dict`` keys stay official.

    The text model stays eager (its sequence lengths vary from batch to batch). With torch
    2.11's inductor on CUDA, the coalescing-tiling analysis asserted on this graph; it is
    switched off for the run (measured on an H200: the compiled step is still 1.41x eager).
    """
    if backend == "inductor" and device.type == "cuda":
        import torch._inductor.config as inductor_config

        if getattr(inductor_config.triton, "coalesce_tiling_analysis", False):
            inductor_config.triton.coalesce_tiling_analysis = False
            log.info("torch.compile: inductor's coalescing-tiling analysis off (torch 2.11 bug)")
    try:
        model.video_model.compile(backend=backend, dynamic=False)
    except Exception as exc:  # an unknown backend name, a torch without dynamo support
        raise ConfigError(f"train.compile_backend={backend!r}: {exc}") from exc
    log.info("video model compiled with torch.compile(backend=%r)", backend)


def normalizer(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 clips (B, F, 3, S, S) → normalised floats on ``device`` (workers ship uint8: 4x
    less to copy)."""
    m = torch.tensor(mean, device=device).view(1, 1, 3, 1, 1) * 255.0
    s = torch.tensor(std, device=device).view(1, 1, 3, 1, 1) * 255.0

    def apply(video_u8: torch.Tensor) -> torch.Tensor:
        return (video_u8.to(device, non_blocking=True).float() - m) / s

    return apply


def inflate_in_place(model: torch.nn.Module, trained_frames: int, mode: str) -> None:
    """Rebuild the temporal table from its first ``trained_frames`` rows (curriculum step)."""
    table = getattr(model, "module", model).video_model.temporal_embed  # DDP wraps the model
    with torch.no_grad():
        table.copy_(
            inflate_temporal_embed(table[:, :trained_frames].detach(), table.shape[1], mode)
        )


def make_optimizer(model: torch.nn.Module, o: OptimSection, lr: float) -> torch.optim.Optimizer:
    """AdamW with no weight decay on biases, norms, embeddings and tokens (as the official
    trainer); the group order is part of the checkpoint's optimiser state."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embed" in name or "token" in name else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": o.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(o.betas), eps=o.eps)


def first_batch_j(plan: Plan, source: int, worker: int, workers: int, step: int) -> int:
    """The per-worker batch number ``worker`` owes next at ``step`` (batches go round-robin)."""
    b = plan.batches_before(source, step)
    workers = max(1, workers)
    return (b - worker + workers - 1) // workers


def make_loaders(
    recipe: TrainRecipe,
    plan: Plan,
    model: FrozenInTime,
    info: DistInfo,
    *,
    base: Path | None,
    step: int,
    data_state: dict[int, dict[int, tuple[int, int]]],
) -> list[Iterator[dict[str, Any]]]:
    """One batch iterator per source, positioned at ``step``: from each worker's saved stream
    position (``data_state``), or, with ``data.resume_data = "reseed"``, from a fresh shuffle
    whose batch numbering continues where the plan is."""
    r = recipe
    nw = r.data.num_workers
    tok = Tokenize(model.config.tokenizer_ref, r.data.max_text_len)
    opts = ClipOptions(
        size=model.config.img_size,
        train=True,
        scale=r.data.crop_scale,
        ratio=r.data.crop_ratio,
        hflip=r.data.hflip,
        short_side=r.data.decode_short_side,
        caption_max_chars=r.data.caption_max_chars,
        caption_sample=r.data.caption_sample,
    )
    iters = []
    reseed = step if (step and r.data.resume_data == "reseed") else 0
    for i, src in enumerate(r.sources):
        shards = expand_shards(src.shards, base)
        resume = {} if reseed else data_state[i]
        stream = TrainStream(
            shards,
            src.kind,
            i,
            plan,
            opts,
            tok,
            seed=r.seed,
            rank=info.rank,
            world_size=info.world_size,
            shuffle_buffer=r.data.shuffle_buffer,
            resume=resume,
            num_workers=nw,
            reseed=reseed,
            worker_offset=plan.batches_before(i, step) % max(1, nw),
        )
        if reseed:  # a fresh stream: its batch numbering restarts where the plan is now
            stream.resume = {w: (first_batch_j(plan, i, w, nw, step), 0) for w in range(max(1, nw))}
        iters.append(iter(make_train_loader(stream, nw)))
    return iters


@dataclass
class ResumePoint:
    """What a ``latest.pt`` restores besides the weights and the optimiser state (those are
    loaded in place): this rank's stream positions and RNG states, and the run's counters."""

    step: int
    counters: dict[str, Any] | None
    best: dict[str, Any]
    trained_frames: int
    data_state: dict[int, dict[int, tuple[int, int]]]
    rng: dict[str, Any]
    changed: list[str]


def resume_from(
    latest: Path,
    recipe: TrainRecipe,
    model: FrozenInTime,
    optimizer: torch.optim.Optimizer,
    info: DistInfo,
) -> ResumePoint:
    """Load ``latest`` into ``model`` and ``optimizer`` and return the rest of its state.

    Refuses a recipe that changed a setting the run depends on, and a different number of
    processes (each rank resumes its own workers' stream positions)."""
    from webvid.model.checkpoint import load_checkpoint

    meta = S.load(latest)
    # before the weights: a changed model would otherwise fail as a shape mismatch
    changed = S.check_resume_settings(meta.get("recipe"), to_dict(recipe), latest)
    load_checkpoint(model, latest)
    optimizer.load_state_dict(meta["optim_state"])
    step = int(meta["step"])
    counters = meta.get("counters")
    best = meta.get("best") or {}
    trained_frames = int(meta.get("frames", 1))
    ranks = meta["data_state"]
    if len(ranks) != info.world_size:
        raise InputError(
            f"{latest} was written by {len(ranks)} processes; resume with the same "
            f"number (got {info.world_size}) or set data.resume_data=reseed"
        )
    mine = ranks[info.rank]
    data_state = {
        int(s): {int(w): (int(v[0]), int(v[1])) for w, v in ws.items()}
        for s, ws in mine["streams"].items()
    }
    return ResumePoint(step, counters, best, trained_frames, data_state, mine["rng"], changed)


def inflate_init_table(
    model: FrozenInTime, recipe: TrainRecipe, plan: Plan, base: Path | None, init: Path | None
) -> tuple[int, str | None]:
    """``--init`` from a run trained on fewer frames: inflate its trained rows per the fix.

    Returns the frames trained so far and a note for the run when the table was inflated."""
    from webvid.model.build import resolve
    from webvid.model.checkpoint import read_checkpoint

    path = init or resolve(recipe.model.init, base)
    _, meta = read_checkpoint(path)
    frames = int(meta.get("frames") or 0)
    first = plan.stages[0].frames
    note = None
    if 0 < frames < first:
        inflate_in_place(model, frames, recipe.model.init_temporal_fix)
        note = f"temporal table {frames}->{first} ({recipe.model.init_temporal_fix})"
    return max(frames, 1), note
