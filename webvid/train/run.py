"""``webvid train`` as a library call: ``run(recipe, inputs, out, *, progress, runner)``.

The stage shape shared with :func:`webvid.crawl.run.run` and :func:`webvid.shards.run.run`.
Takes a :class:`~webvid.train.recipe.TrainRecipe`, the shard sources (``inputs``: a sequence
of :class:`~webvid.train.recipe.Source`, each a named set of shard globs with its kind and
batch size; None: the recipe's ``[[sources]]``) and a run dir (``out``); returns a
:class:`TrainSummary` and produces the run dir described in :mod:`webvid.train.trainer`
(``config.toml``, ``metrics.jsonl``, checkpoints, ``manifest.json`` last).

``runner`` is part of the shape only: training scales out with ``torchrun``, which starts one
process per device and each calls this same function (:mod:`webvid.train.dist`), so there is
no in-process runner to hand down. The loop itself is :class:`webvid.train.trainer.Trainer`;
``webvid.train.trainer.run(recipe, run_dir, ...)`` is the older entry point this one calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from webvid.errors import ConfigError
from webvid.log import Progress
from webvid.train import trainer
from webvid.train.outputs import TrainSummary
from webvid.train.recipe import Source, TrainRecipe

__all__ = ["TrainSummary", "run", "with_sources"]


def with_sources(recipe: TrainRecipe, inputs: Sequence[Source] | None) -> TrainRecipe:
    """``recipe`` training on ``inputs`` instead of its ``[[sources]]`` (None: unchanged).
    The recipe's checks run again (stage batch sizes must still name a source)."""
    if inputs is None:
        return recipe
    try:
        return dataclasses.replace(recipe, sources=tuple(inputs))
    except ValueError as exc:
        raise ConfigError(f"sources: {exc}") from None


def run(
    recipe: TrainRecipe,
    inputs: Sequence[Source] | None,
    out: str | Path,
    *,
    progress: Progress | None = None,
    runner: None = None,
    base: Path | None = None,
    init: Path | None = None,
    stop_after: int | None = None,
) -> TrainSummary:
    """Train (or resume) ``recipe`` on ``inputs`` (None: the recipe's sources) into the run dir
    ``out``. ``base`` is the folder relative shard globs are read from (the recipe's folder on
    the command line), ``init`` a checkpoint to start from, ``stop_after`` a step to end at with
    a resumable ``latest.pt``. ``runner`` must be None (torchrun is the scale-out)."""
    if runner is not None:
        raise TypeError("train has no runner: scale out with torchrun")
    return trainer.run(
        with_sources(recipe, inputs),
        out,
        base=base,
        init=init,
        progress=progress,
        stop_after=stop_after,
    )
