"""``webvid crawl --engine ray``: the crawl's work units as Ray tasks, politeness cluster-wide.

Takes a :class:`~webvid.crawl.config.CrawlConfig` (list or discovery mode) and a Ray address;
produces the same crawl dir as the local engine: ``OUT/media/…``, ``OUT/records/part-*.parquet``
and, last, ``OUT/manifest.json``. The units are those of the local multi-process mode
(:mod:`webvid.crawl.multi`): in list mode, task ``w`` of ``n`` streams the table and crawls
the items whose clip id hashes to ``w`` (a slice of the table; ``limit`` and duplicate ids mean
the same as locally); a discovery crawl is one unit (the site). Every task's fetcher takes its
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
from typing import Any

from webvid import contract
from webvid.crawl.config import CrawlConfig
from webvid.crawl.run import Summary, resolve_mode
from webvid.crawl.sink import Disk
from webvid.crawl.store import RecordStore
from webvid.errors import InputError, WebvidError
from webvid.log import NullProgress, Progress
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


def crawl_unit(
    cfg: CrawlConfig,
    out: str,
    mode: str,
    source: str,
    w: int,
    n: int,
    first: int,
    actors: list[Any],
) -> dict[str, Any]:
    """One Ray task: unit ``w`` of ``n`` (its process title is ``ray::crawl_unit``)."""
    import asyncio

    from webvid.crawl.run import _Crawl, _loop_factory

    folder = Path(out)
    start = start_part(folder / "records", first, w, n)
    progress = ActorProgress(actors[0], w)
    crawl = _Crawl(
        cfg,
        folder,
        mode,
        source,
        progress,
        shard=(w, n, start - w),  # type: ignore[arg-type]
        politeness=politeness_for(actors),
    )
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        counts = runner.run(crawl.main())
    progress.flush(wait=True)
    return counts  # type: ignore[return-value]  # with shard set, main() returns the counts


def run_crawl(
    cfg: CrawlConfig,
    progress: Progress | None = None,
    *,
    out: str | Path | None = None,
    address: str | None = None,
    tasks: int | None = None,
    limiters: int | None = None,
    max_retries: int = 3,
) -> Summary:
    """Crawl ``cfg.source`` into ``out`` (default ``cfg.output.dir``) with Ray tasks: ``tasks``
    units (default: one per cluster CPU in list mode, one for discovery) and ``limiters``
    politeness actors, hosts spread over them (default: one per 16 tasks)."""
    from webvid.crawl.run import _Crawl

    progress = progress or NullProgress()
    target = Path(out if out is not None else cfg.output.dir)
    if not str(target):
        raise InputError("no output folder: pass -o OUT")
    mode, source = resolve_mode(cfg)
    with ray_session(address) as ray:
        n = tasks or (cluster_cpus(ray) if mode == "list" else 1)
        t0 = time.monotonic()
        target.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (target / contract.MANIFEST_NAME).unlink()
        store = RecordStore(
            target, flush_every=cfg.output.flush_every, flush_interval_s=cfg.output.flush_interval_s
        )
        recovered = store.recover()
        first = store.next_part
        store.close(compact=False)
        Disk(target, cfg).close()  # a killed run's temps are cleaned once, here
        # items in flight are split over the tasks; per-host limits live in the actor, whole
        child = dataclasses.replace(cfg, concurrency=max(1, cfg.concurrency // n), processes=1)
        # restarted (empty) if its process dies; calls in flight are retried on the new one
        limiter = ray.remote(PoliteLimiter).options(
            max_concurrency=10_000, num_cpus=0, max_restarts=3, max_task_retries=3
        )
        actors = [limiter.remote(cfg) for _ in range(limiters or max(1, n // 16))]
        unit = ray.remote(crawl_unit).options(max_retries=max_retries, retry_exceptions=False)
        refs = [
            unit.remote(child, str(target), mode, source, w, n, first, actors) for w in range(n)
        ]
        try:
            counts = _wait(ray, refs, actors[0], cfg, progress)
            for state in ray.get([a.state.remote() for a in actors]):
                log.info(
                    "limiter: %d leases granted; robots.txt fetches per host: %s",
                    state["granted"],
                    state["robots_fetches"],
                )
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)
            for actor in actors:
                with contextlib.suppress(Exception):
                    ray.get(actor.close.remote(), timeout=10)
                ray.kill(actor)
    parent = _Crawl(cfg, target, mode, source, progress)
    for c in counts:
        parent.add_counts(c)
    store = RecordStore(
        target, flush_every=cfg.output.flush_every, flush_interval_s=cfg.output.flush_interval_s
    )
    again = store.recover()  # folds the journal of any task attempt that died; compacts
    store.close(compact=False)
    Disk(target, cfg).close()
    recovered = {k: recovered.get(k, 0) + again.get(k, 0) for k in set(recovered) | set(again)}
    return parent._finish(store, time.monotonic() - t0, recovered)


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
    ray: Any, refs: list[Any], actor: Any, cfg: CrawlConfig, progress: Progress
) -> list[dict[str, Any]]:
    """Wait for every task, moving the driver's progress bar from the actor's count; the first
    task that fails (after Ray's retries) stops the run at once (the caller cancels the rest)."""
    pending = list(refs)
    seen = 0
    started = time.monotonic()
    results: dict[Any, dict[str, Any]] = {}
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
