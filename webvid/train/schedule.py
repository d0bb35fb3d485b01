"""The curriculum and learning-rate policy: pure functions of the step, no I/O, no torch.

Takes the recipe's sources (kind, global batch size, weight), stages (frames, steps, lr,
warm-up) and the number of processes, and answers, for any global optimiser step:

* which source feeds it (sources alternate whole batches in a fixed cycle built from their
  weights: weights 1:1 → ``[video, image, video, image, …]`` as the official trainer);
* which stage it belongs to, hence the frame count and the batch size (recipes give global
  batch sizes; each process loads global / world size, :func:`per_process_batch`, and a size
  that does not divide is a ConfigError before any data is read);
* its learning rate (per stage: linear warm-up, then constant or cosine to a floor).

It also answers the question the data workers ask — "my source's j-th batch: how many frames,
how many clips?" — so every worker derives the frame count of each batch it builds from the
same plan the trainer follows. A stage change thus reaches the workers without a loader
rebuild and without a race against prefetched batches, and a resumed run rebuilds exactly the
batches an uninterrupted one would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from webvid.errors import ConfigError


@dataclass(frozen=True)
class StagePlan:
    name: str
    frames: int
    steps: int
    lr: float
    warmup_steps: int
    #: per-process batch size per source index (the global one / the plan's world size)
    batch_sizes: tuple[int, ...]
    temporal_fix: str = "zeros"


@dataclass(frozen=True)
class BatchSpec:
    step: int
    stage: int
    frames: int
    batch_size: int


def make_cycle(weights: Sequence[int]) -> tuple[int, ...]:
    """Interleave sources by weight, as evenly as possible: (2, 1) → (0, 1, 0); (1, 1) → (0, 1)."""
    if not weights or min(weights) < 1:
        raise ValueError("weights must be positive")
    total = sum(weights)
    credit = [0.0] * len(weights)
    out: list[int] = []
    for _ in range(total):
        for i, w in enumerate(weights):
            credit[i] += w / total
        best = max(range(len(weights)), key=lambda i: (credit[i], -i))
        credit[best] -= 1.0
        out.append(best)
    return tuple(out)


def per_process_batch(global_batch: int, world_size: int, *, source: str, stage: str) -> int:
    """The clips each of ``world_size`` processes loads for a global batch of ``global_batch``.

    A global batch that the world size does not divide is a ConfigError naming the source, the
    stage and both numbers (never rounded: the loss would see another batch than the recipe's).
    """
    if world_size < 1:
        raise ValueError(f"world size must be >= 1, got {world_size}")
    per, rest = divmod(global_batch, world_size)
    if rest or per < 1:
        raise ConfigError(
            f"source {source!r}, stage {stage!r}: the global batch size {global_batch} does "
            f"not divide over {world_size} processes; make it a multiple of {world_size} "
            "(recipe batch sizes are global: the clips of one step over all processes)"
        )
    return per


def stage_steps(
    epochs: float, samples_per_epoch: int, batch_size: int, cycle: Sequence[int]
) -> int:
    """Optimiser steps for a stage given in epochs of the first source (ceil to full cycles)."""
    per_cycle = sum(1 for s in cycle if s == 0)
    cycles = math.ceil(epochs * samples_per_epoch / (batch_size * per_cycle))
    return max(1, cycles * len(cycle))


class Plan:
    """The whole run: stages laid end to end over a global step counter."""

    def __init__(
        self,
        stages: Sequence[StagePlan],
        kinds: Sequence[str],
        weights: Sequence[int],
        *,
        schedule: str = "constant",
        min_lr_ratio: float = 0.0,
        world_size: int = 1,
    ) -> None:
        if not stages:
            raise ValueError("no stages")
        self.stages = tuple(stages)
        #: processes the stages' (per-process) batch sizes were divided over
        self.world_size = world_size
        self.kinds = tuple(kinds)
        self.cycle = make_cycle(weights)
        self.schedule = schedule
        self.min_lr_ratio = min_lr_ratio
        self.starts: list[int] = []
        t = 0
        for st in self.stages:
            self.starts.append(t)
            t += st.steps
        self.total_steps = t
        # positions inside one cycle where each source is used
        self._positions = [
            [p for p, s in enumerate(self.cycle) if s == i] for i in range(len(kinds))
        ]

    # ---- step → stage / source / lr -------------------------------------------------------
    def stage_at(self, step: int) -> int:
        """Index of the stage that optimiser step ``step`` (0-based) belongs to."""
        for i in range(len(self.stages) - 1, -1, -1):
            if step >= self.starts[i]:
                return i
        return 0

    def source_at(self, step: int) -> int:
        return self.cycle[step % len(self.cycle)]

    def frames_for(self, stage: int, source: int) -> int:
        """Images are 1-frame clips whatever the stage."""
        return 1 if self.kinds[source] == "image" else self.stages[stage].frames

    def lr_at(self, step: int) -> float:
        i = self.stage_at(step)
        st = self.stages[i]
        k = step - self.starts[i]
        if st.warmup_steps and k < st.warmup_steps:
            return st.lr * (k + 1) / st.warmup_steps
        if self.schedule == "constant":
            return st.lr
        span = max(1, st.steps - st.warmup_steps)
        progress = min(1.0, (k - st.warmup_steps) / span)
        floor = st.lr * self.min_lr_ratio
        return floor + (st.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    # ---- what the data workers ask -----------------------------------------------------------
    def step_of_batch(self, source: int, j: int) -> int:
        """The global step at which ``source``'s j-th batch (0-based) is consumed."""
        pos = self._positions[source]
        if not pos:
            raise ValueError(f"source {source} never appears in the cycle")
        return (j // len(pos)) * len(self.cycle) + pos[j % len(pos)]

    def batches_before(self, source: int, step: int) -> int:
        """How many of ``source``'s batches steps 0..step-1 consume."""
        pos = self._positions[source]
        full, rest = divmod(step, len(self.cycle))
        return full * len(pos) + sum(1 for p in pos if p < rest)

    def batch_spec(self, source: int, j: int) -> BatchSpec:
        """Frames and batch size of ``source``'s j-th batch. Past the end: the last stage's."""
        step = self.step_of_batch(source, j)
        stage = self.stage_at(min(step, self.total_steps - 1))
        return BatchSpec(
            step, stage, self.frames_for(stage, source), self.stages[stage].batch_sizes[source]
        )

    def global_batch(self, stage: int, source: int) -> int:
        """The clips of ``source`` one step of ``stage`` trains on, over all processes."""
        return self.stages[stage].batch_sizes[source] * self.world_size

    def batch_table(self, names: Sequence[str]) -> dict[str, dict[str, dict[str, int]]]:
        """``{stage: {source name: {"global": G, "per_process": G / world}}}`` (for the
        run's summary and manifest)."""
        return {
            st.name: {
                names[k]: {"global": self.global_batch(i, k), "per_process": per}
                for k, per in enumerate(st.batch_sizes)
            }
            for i, st in enumerate(self.stages)
        }


def plan_from_recipe(recipe: object, world_size: int = 1) -> Plan:
    """Build the :class:`Plan` of a :class:`webvid.train.recipe.TrainRecipe` run by
    ``world_size`` processes: the recipe's global batch sizes divided over them
    (:func:`per_process_batch`; ConfigError when one does not divide). Stages given in epochs
    count steps of the global batch."""
    sources = recipe.sources  # type: ignore[attr-defined]
    weights = [s.weight for s in sources]
    cycle = make_cycle(weights)
    stages = []
    for i, st in enumerate(recipe.stages):  # type: ignore[attr-defined]
        sizes = tuple(recipe.batch_size(i, k) for k in range(len(sources)))  # type: ignore[attr-defined]
        per = tuple(
            per_process_batch(g, world_size, source=src.name, stage=st.name)
            for g, src in zip(sizes, sources, strict=True)
        )
        steps = (
            st.steps
            if st.steps is not None
            else stage_steps(
                st.epochs,
                recipe.data.samples_per_epoch,  # type: ignore[attr-defined]
                sizes[0],
                cycle,
            )
        )
        stages.append(
            StagePlan(st.name, st.frames, steps, st.lr, st.warmup_steps, per, st.temporal_fix)
        )
    optim = recipe.optim  # type: ignore[attr-defined]
    return Plan(
        stages,
        [s.kind for s in sources],
        weights,
        schedule=optim.schedule,
        min_lr_ratio=optim.min_lr_ratio,
        world_size=world_size,
    )
