"""The process-pool runner: list mode on several processes, one event loop per core.

Takes a :class:`~webvid.crawl.unit.CrawlPlan` of a list-mode crawl (the driver,
:func:`webvid.crawl.run.run`, has recovered the records folder) and ``processes = n > 1``;
produces the ``n`` units' :class:`~webvid.crawl.unit.UnitCounts`, with the same crawl dir as
one process would leave. It forks ``n`` workers and waits; worker ``w`` runs unit ``w`` of
``n`` (:func:`webvid.crawl.unit.run_unit`): it streams the whole table (so ``limit`` and
duplicate ids mean the same as with one process) but crawls only the items whose clip id
hashes to ``w``, with ``1/n`` of every per-host limit, and numbers its record parts
``first + w + k·n`` so no two workers write the same file. Workers die with the parent
(``PR_SET_PDEATHSIG``): a ``kill -9`` of the command leaves journals and parts that the next
run recovers as usual. The driver then compacts, folds the counts and writes the manifest.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import math
import multiprocessing
import os
import queue
import signal
import sys
from typing import Any

from webvid.crawl.loop import lean_gc, run_unit
from webvid.crawl.recipe import CrawlRecipe
from webvid.crawl.unit import CrawlPlan, CrawlUnit, UnitCounts
from webvid.errors import WebvidError
from webvid.log import Progress

log = logging.getLogger(__name__)


def split_limits(cfg: CrawlRecipe, n: int) -> CrawlRecipe:
    """Each worker gets 1/n of the global and per-host limits (politeness holds in sum)."""
    p = cfg.polite
    polite = dataclasses.replace(
        p,
        per_host_rps=p.per_host_rps / n,
        per_host_burst=max(1, p.per_host_burst // n),
        per_host_concurrency=max(1, math.ceil(p.per_host_concurrency / n)),
    )
    return dataclasses.replace(
        cfg, polite=polite, concurrency=max(1, cfg.concurrency // n), processes=1
    )


class _CounterProgress:
    """A worker's Progress: advances a shared counter the parent reads."""

    def __init__(self, counters: Any, w: int) -> None:
        self.counters, self.w = counters, w

    def update(
        self, task: str, *, advance: float = 0, total: float | None = None, **fields: Any
    ) -> None:
        if advance:
            self.counters[self.w] += int(advance)

    def message(self, text: str) -> None:
        return None


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _worker(unit: CrawlUnit, counters: Any, results: Any, parent: int) -> None:
    _die_with_parent(parent)
    root = logging.getLogger()
    for h in list(root.handlers):  # never touch the parent's terminal UI from a fork
        root.removeHandler(h)
    root.addHandler(logging.StreamHandler(sys.stderr))
    try:
        with lean_gc():
            counts = run_unit(unit, _CounterProgress(counters, unit.index))
        results.put(("ok", unit.index, counts))
    except BaseException as exc:  # reported to the parent, which stops the run
        results.put(("error", unit.index, f"{type(exc).__name__}: {exc}"))
        sys.stderr.flush()
        os._exit(1)


class ProcessRunner:
    """Units ``0..n-1`` in ``n`` forked worker processes (see the module doc)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes

    def run(self, plan: CrawlPlan, progress: Progress) -> list[UnitCounts]:
        n = self.processes
        ctx = multiprocessing.get_context("fork")
        counters = ctx.Array("q", n, lock=False)
        results = ctx.Queue()
        child_cfg = split_limits(plan.cfg, n)
        procs = [
            ctx.Process(
                target=_worker,
                args=(plan.unit(w, n, cfg=child_cfg), counters, results, os.getpid()),
                name=f"webvid-crawl-{w}",
            )
            for w in range(n)
        ]
        for p in procs:
            p.start()
        done: dict[int, UnitCounts] = {}
        try:
            _wait(procs, counters, results, done, plan.cfg.limit, progress)
        finally:
            for p in procs:
                if p.is_alive() and len(done) < n:
                    p.terminate()
                p.join(30)
        return [done[w] for w in range(n)]


def _wait(
    procs: list[Any],
    counters: Any,
    results: Any,
    done: dict[int, UnitCounts],
    limit: int | None,
    progress: Progress,
) -> None:
    """Collect every worker's counts into ``done``, moving the progress bar from the shared
    counters; a worker that reports an error or dies stops the run."""
    n = len(procs)
    seen = 0
    while len(done) < n:
        try:
            kind, w, payload = results.get(timeout=0.2)
        except queue.Empty:
            pass
        else:
            if kind == "error":
                raise WebvidError(f"crawl worker {w} failed: {payload}")
            done[w] = payload
        total = sum(counters[:])
        if total > seen:
            progress.update("crawl", advance=total - seen, total=limit)
            seen = total
        dead = [p for p in procs if p.exitcode not in (None, 0)]
        if dead and len(done) < n and results.empty():
            raise WebvidError(f"crawl worker {dead[0].name} exited with code {dead[0].exitcode}")
