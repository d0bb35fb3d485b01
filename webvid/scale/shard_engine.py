"""``webvid shard --engine ray``: the shard stage with its per-clip work on a Ray cluster.

Takes the same recipe, crawl dirs and output folder as :func:`webvid.shards.run.run` plus a Ray
address; produces the same shard dir, byte for byte. The stage's own driver runs unchanged on
this machine: it reads the inputs, cleans and counts captions, then hands each clip's analysis
and transcode (:func:`webvid.shards.worker.process`) and each shard's writing
(:func:`webvid.shards.writer.write_shard`) to :class:`~webvid.scale.executor.RayExecutor` (its
``runner``) instead of a process pool. Every decision that spans clips (exact, source-id and near
duplicates, templated-caption counts, the split, the shard plan) is made by the driver over
the whole dataset after every clip's result is in, so a duplicate pair split across workers,
crawl dirs or nodes is still caught.

Fault tolerance comes from three places: Ray runs a task again when its worker dies; a clip's
result is cached in the staging folder only after its outputs exist (a rerun redoes only
unfinished clips); a shard is written under a temporary name and its stats file is the commit
marker, so a killed writer leaves no partial shard and a restarted driver skips committed ones.
The output folder (and its ``.work`` staging) must be on a file system every worker sees.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from webvid.log import Progress
from webvid.scale.cluster import ray_session
from webvid.scale.executor import RayExecutor
from webvid.shards.recipe import ShardRecipe
from webvid.shards.run import ShardSummary
from webvid.shards.run import run as shard_run
from webvid.shards.worker import init_worker


def run_shard(
    recipe: ShardRecipe,
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    address: str | None = None,
    max_retries: int = 3,
) -> ShardSummary:
    """Run the shard stage with Ray tasks in place of the local pool (see the module doc)."""
    with ray_session(address):
        return shard_run(
            recipe,
            inputs,
            out,
            progress=progress,
            runner=lambda cfg: RayExecutor(init_worker, (cfg,), max_retries=max_retries),
        )
