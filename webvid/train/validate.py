"""The recipe's validation sets during training: rank 0 evaluates, every rank gets the figures.

Takes the model being trained, the training recipe (its ``[[evals]]`` shard sets and ``[data]``
settings), the recipe's folder, the run's :class:`~webvid.train.dist.DistInfo` and the current
stage's frame count, and produces ``{"<set>/<metric>": value}`` with the figures of
:func:`webvid.retrieval.evaluate.evaluate_model`. The trainer calls it every
``train.eval_every_steps``; the dependency points train → retrieval → model, never back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from webvid.clips.sample import ClipOptions
from webvid.retrieval.evaluate import evaluate_model, make_stream
from webvid.train import dist as D


def evaluate_sets(
    model: Any, recipe: Any, base: Path | None, info: D.DistInfo, frames: int
) -> dict[str, Any]:
    """The recipe's validation sets during training (rank 0 evaluates; all ranks get the figures)."""
    results: dict[str, Any] = {}
    if info.is_main:
        d = recipe.data
        for ev in recipe.evals:
            opts = ClipOptions(
                size=model.config.img_size,
                train=False,
                short_side=d.decode_short_side,
                caption_max_chars=d.caption_max_chars,
            )
            stream = make_stream(
                ev.shards, ev.kind, ev.frames or frames, opts, max_samples=ev.max_samples, base=base
            )
            figs = evaluate_model(
                model,
                stream,
                mean=d.mean,
                std=d.std,
                max_text_len=d.max_text_len,
                batch_size=ev.batch_size,
                num_workers=min(d.num_workers, len(stream.shards) or 1),
                precision=recipe.train.precision,
            )
            results.update({f"{ev.name}/{k}": v for k, v in figs.items()})
    return D.broadcast_object(results, info)
