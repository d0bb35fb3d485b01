"""Where the shard stage's per-clip and per-shard work runs: an executor, a process pool, or here.

Takes the recipe (its worker count), how many clips there are to process and, optionally, a
:data:`ShardRunner` (an executor factory: the seam :mod:`webvid.scale.shard_engine` uses to put
the work on Ray);
produces the executor, its workers already set up by :func:`webvid.shards.worker.init_worker`
(or None: the work runs in this process). :func:`map_in_order` applies a function to every
item there and returns the results in input order, whatever order they finish in.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from webvid.shards.recipe import ShardRecipe
from webvid.shards.worker import init_worker, ping

T = TypeVar("T")
R = TypeVar("R")

#: Where the shard stage's work runs: ``runner(recipe)`` gives an Executor whose workers ran
#: :func:`~webvid.shards.worker.init_worker` (e.g. :class:`webvid.scale.executor.RayExecutor`).
ShardRunner = Callable[[ShardRecipe], Executor]


def worker_count(recipe: ShardRecipe) -> int:
    """The recipe's ``workers``; 0 means one per CPU core."""
    return recipe.workers if recipe.workers > 0 else max(1, os.cpu_count() or 1)


def start_pool(
    recipe: ShardRecipe, clips: int, runner: ShardRunner | None = None
) -> Executor | None:
    """``runner(recipe)``, a spawned process pool, or None for a single worker.

    Never more processes than clips. The workers are started now: they import while the
    parent cleans the captions.
    """
    workers = min(worker_count(recipe), max(1, clips))
    pool: Executor | None = None
    if runner is not None:
        pool = runner(recipe)
    elif workers > 1:
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=init_worker, initargs=(recipe,)
        )
    if pool is None:
        init_worker(recipe)
    else:
        for _ in range(workers):
            pool.submit(ping)
    return pool


def map_in_order(
    fn: Callable[[T], R],
    items: Sequence[T],
    pool: Executor | None,
    on_done: Callable[[R], None],
    meanwhile: Callable[[], None] = lambda: None,
) -> list[R]:
    """Apply ``fn`` to every item (in the pool when given); results in input order.

    ``meanwhile`` runs in the parent after the work is handed out, while the pool computes.
    """
    if pool is None:
        meanwhile()
        out = []
        for it in items:
            out.append(fn(it))
            on_done(out[-1])
        return out
    futures = {pool.submit(fn, it): i for i, it in enumerate(items)}
    meanwhile()
    results: list[Any] = [None] * len(items)
    for fut in as_completed(futures):
        results[futures[fut]] = fut.result()
        on_done(results[futures[fut]])
    return results
