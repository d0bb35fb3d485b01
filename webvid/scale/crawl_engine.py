"""``webvid crawl --engine ray``: the crawl's work units as Ray tasks, politeness cluster-wide.

Takes what :func:`webvid.crawl.run.run` takes (a :class:`~webvid.crawl.recipe.CrawlRecipe`, the
source, the output folder) and a Ray address;
produces the same crawl dir as the local engine: ``OUT/media/…``, ``OUT/records/part-*.parquet``
and, last, ``OUT/manifest.json``. The driver is the crawl stage's own
:func:`webvid.crawl.run.run`; this module only hands it :class:`RayRunner`, which runs the
stage's units (:class:`webvid.crawl.unit.CrawlUnit`, those of the local multi-process mode) as
Ray tasks: in list mode, task ``w`` of ``n`` streams the table and crawls the items whose clip
id hashes to ``w`` (a slice of the table; ``limit`` and duplicate ids mean the same as
locally); a discovery crawl is one unit (the site). Every task's fetcher takes its
host slots and robots.txt from one :class:`~webvid.scale.limiter.PoliteLimiter` actor (or one of
several, each owning a share of the hosts), so the per-host concurrency, rate and 429
back-off hold for the cluster, not per worker, and robots.txt is fetched once per host.

Files and resume are the local ones: the driver recovers the records folder first (journals
folded, superseded rows compacted), the tasks write parts numbered ``first + w + k·n`` (never
the same file twice), and the driver recovers again at the end, sums the tasks' counts and
writes the manifest. A task whose worker dies is run again by Ray: it starts numbering above
every part and journal its dead attempt left, skips the items those parts hold, and the final
recovery folds the dead attempt's journal and keeps each clip's newest row: no duplicate rows.
A driver killed mid-run leaves what a killed local run leaves; the next run resumes from it.
OUT must be on a file system every worker sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from webvid.crawl.loop import run_unit
from webvid.crawl.recipe import CrawlRecipe
from webvid.crawl.run import CrawlSummary, output_dir, resolve_mode, run, with_io
from webvid.crawl.unit import CrawlPlan, CrawlUnit, UnitCounts
from webvid.errors import WebvidError
from webvid.log import Progress
from webvid.scale.cluster import cluster_cpus, ray_session
from webvid.scale.limiter import PoliteLimiter, politeness_for

log = logging.getLogger(__name__)
_NUMBERED = re.compile(r"^(?:part|journal)-(\d{5,})\.(?:parquet|jsonl)$")


def start_part(records: Path, first: int, w: int, n: int) -> int:
    """The first part number for task ``w`` of ``n``: ``first + w``, or, when an earlier attempt
    of the same task left parts or journals (numbers ``≡ first + w (mod n)``), the next one
    above them. Only task ``w`` writes that residue class, so this needs no coordination."""
    used = [int(m.group(1)) for p in records.iterdir() if (m := _NUMBERED.match(p.name))]
    mine = [k for k in used if k >= first and (k - first) % n == w]
    return max(mine) + n if mine else first + w


class ActorProgress:
    """A task's Progress: tells the limiter actor how many items it has handled (≤ 3 times/s)."""

    def __init__(self, actor: Any, w: int) -> None:
        self.actor, self.w = actor, w
        self.done = 0
        self._sent = 0.0

    def update(
        self, task: str, *, advance: float = 0, total: float | None = None, **fields: Any
    ) -> None:
        if advance:
            self.done += int(advance)
            if time.monotonic() - self._sent > 0.3:
                self.flush()

    def message(self, text: str) -> None:
        log.info("%s", text)

    def flush(self, wait: bool = False) -> None:
        self._sent = time.monotonic()
        ref = self.actor.advance.remote(self.w, self.done)
        if wait:  # the last count is in before the task reports done
            import ray

            ray.get(ref)


def crawl_unit(unit: CrawlUnit, actors: list[Any]) -> UnitCounts:
    """One Ray task: one unit, its politeness from the limiter actors (its process title is
    ``ray::crawl_unit``)."""
    start = start_part(unit.out / "records", unit.first_part, unit.index, unit.count)
    progress = ActorProgress(actors[0], unit.index)
    counts = run_unit(
        dataclasses.replace(unit, first_part=start - unit.index),
        progress,
        politeness=politeness_for(actors),
    )
    progress.flush(wait=True)
    return counts


class RayRunner:
    """A :class:`~webvid.crawl.unit.CrawlRunner` whose units are Ray tasks: ``tasks`` units
    (default: one per cluster CPU in list mode, one for discovery) and ``limiters`` politeness
    actors, hosts spread over them (default: one per 16 tasks). Ray must be initialised."""

    def __init__(
        self,
        ray: ModuleType,
        *,
        tasks: int | None = None,
        limiters: int | None = None,
        max_retries: int = 3,
    ) -> None:
        self.ray, self.tasks, self.limiters, self.max_retries = ray, tasks, limiters, max_retries

    def run(self, plan: CrawlPlan, progress: Progress) -> list[UnitCounts]:
        ray, cfg = self.ray, plan.cfg
        n = self.tasks or (cluster_cpus(ray) if plan.mode == "list" else 1)
        # items in flight are split over the tasks; per-host limits live in the actor, whole
        child = dataclasses.replace(cfg, concurrency=max(1, cfg.concurrency // n), processes=1)
        # restarted (empty) if its process dies; calls in flight are retried on the new one
        limiter = ray.remote(PoliteLimiter).options(
            max_concurrency=10_000, num_cpus=0, max_restarts=3, max_task_retries=3
        )
        actors = [limiter.remote(cfg) for _ in range(self.limiters or max(1, n // 16))]
        task = ray.remote(crawl_unit).options(max_retries=self.max_retries, retry_exceptions=False)
        refs = [task.remote(plan.unit(w, n, cfg=child), actors) for w in range(n)]
        try:
            counts = _wait(ray, refs, actors[0], cfg, progress)
            for state in ray.get([a.state.remote() for a in actors]):
                log.info(
                    "limiter: %d leases granted; robots.txt fetches per host: %s",
                    state["granted"],
                    state["robots_fetches"],
                )
        finally:
            stop_tasks(ray, refs)
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.get(actor.close.remote(), timeout=10)
                ray.kill(actor)
        return counts


def stop_tasks(ray: Any, refs: list[Any], grace_s: float = 10.0) -> None:
    """Cancel the tasks of ``refs`` that have not finished: a polite cancel first (Ray raises
    KeyboardInterrupt in the task), then, after ``grace_s``, a forced one for those still
    running. Finished tasks are never cancelled: force-cancelling a task whose reply is on its
    way can abort the driver process itself (Ray 2.60's core worker fails a check, "Tried to
    complete task that was not pending", seen 1 run in 8 when one task failed and the others
    were force-cancelled at once)."""
    _, running = ray.wait(refs, num_returns=len(refs), timeout=0)
    for ref in running:
        ray.cancel(ref, force=False)
    if running:
        _, running = ray.wait(running, num_returns=len(running), timeout=grace_s)
    for ref in running:
        ray.cancel(ref, force=True)


def run_crawl(
    recipe: CrawlRecipe,
    inputs: str | Path | None = None,
    out: str | Path | None = None,
    *,
    progress: Progress | None = None,
    address: str | None = None,
    tasks: int | None = None,
    limiters: int | None = None,
    max_retries: int = 3,
) -> CrawlSummary:
    """Crawl ``inputs`` (default ``recipe.source``) into ``out`` (default
    ``recipe.output.dir``) with Ray tasks: the crawl stage's own :func:`~webvid.crawl.run.run`
    with a :class:`RayRunner` (see there)."""
    cfg = with_io(recipe, inputs, out)
    output_dir(cfg)  # input errors come before Ray starts
    resolve_mode(cfg)
    with ray_session(address) as ray:
        runner = RayRunner(ray, tasks=tasks, limiters=limiters, max_retries=max_retries)
        return run(cfg, progress=progress, runner=runner)


def task_error(what: str, exc: BaseException) -> WebvidError:
    """One line for a failed Ray task: our own error keeps its class (an input error is still
    one), anything else is named; Ray's remote traceback goes to the log, not the message."""
    cause = getattr(exc, "cause", None) or exc
    log.debug("%s failed", what, exc_info=exc)
    if isinstance(cause, WebvidError):
        return type(cause)(f"{what} failed: {cause}")
    lines = str(cause).strip().splitlines()
    return WebvidError(f"{what} failed: {type(cause).__name__}: {lines[-1] if lines else ''}")


def _wait(
    ray: Any, refs: list[Any], actor: Any, cfg: CrawlRecipe, progress: Progress
) -> list[UnitCounts]:
    """Wait for every task, moving the driver's progress bar from the actor's count; the first
    task that fails (after Ray's retries) stops the run at once (the caller cancels the rest)."""
    pending = list(refs)
    seen = 0
    started = time.monotonic()
    results: dict[Any, UnitCounts] = {}
    while pending:
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.3)
        for ref in ready:
            try:
                results[ref] = ray.get(ref)
            except Exception as exc:
                raise task_error(f"crawl task {refs.index(ref)}", exc) from exc
        try:
            done = ray.get(actor.state.remote(), timeout=10)["done"]
        except Exception:  # the count is cosmetic; the tasks' results are what matter
            done = seen
        if done > seen:
            elapsed = max(1e-6, time.monotonic() - started)
            progress.update(
                "crawl",
                advance=done - seen,
                total=cfg.limit,
                items_s=round(done / elapsed, 1),
                tasks_left=len(pending),
            )
            seen = done
    return [results[ref] for ref in refs]
