"""List mode on several processes: one event loop per core.

Takes a list-mode CrawlConfig with ``processes = n > 1``; produces the same crawl dir as one
process would. The parent recovers the records folder (journals, compaction), forks ``n``
workers and waits; worker ``w`` streams the whole table (so ``limit`` and duplicate ids mean
the same as with one process) but crawls only the items whose clip id hashes to ``w``, with
``1/n`` of every per-host limit, and numbers its record parts ``first + w + k·n`` so no two
workers write the same file. Workers die with the parent (``PR_SET_PDEATHSIG``): a
``kill -9`` of the command leaves journals and parts that the next run recovers as usual.
The parent then compacts, sums the workers' counts and writes the manifest.
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
import time
from pathlib import Path
from typing import Any

from webvid import contract
from webvid.crawl.config import CrawlConfig
from webvid.crawl.sink import Disk
from webvid.crawl.store import RecordStore
from webvid.errors import WebvidError
from webvid.log import Progress

log = logging.getLogger(__name__)


def split_limits(cfg: CrawlConfig, n: int) -> CrawlConfig:
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


def _worker(
    cfg: CrawlConfig,
    out: Path,
    source: str,
    shard: tuple[int, int, int],
    counters: Any,
    results: Any,
    parent: int,
) -> None:
    _die_with_parent(parent)
    root = logging.getLogger()
    for h in list(root.handlers):  # never touch the parent's terminal UI from a fork
        root.removeHandler(h)
    root.addHandler(logging.StreamHandler(sys.stderr))
    import asyncio

    from webvid.crawl.run import _Crawl, _loop_factory, lean_gc

    crawl = _Crawl(cfg, out, "list", source, _CounterProgress(counters, shard[0]), shard=shard)  # type: ignore[arg-type]
    try:
        with lean_gc(), asyncio.Runner(loop_factory=_loop_factory()) as runner:
            counts = runner.run(crawl.main())
        results.put(("ok", shard[0], counts))
    except BaseException as exc:  # reported to the parent, which stops the run
        results.put(("error", shard[0], f"{type(exc).__name__}: {exc}"))
        sys.stderr.flush()
        os._exit(1)


def run_processes(cfg: CrawlConfig, out: Path, source: str, progress: Progress) -> Any:
    from webvid.crawl.run import _Crawl

    n = cfg.processes
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (out / contract.MANIFEST_NAME).unlink()
    store = RecordStore(
        out, flush_every=cfg.output.flush_every, flush_interval_s=cfg.output.flush_interval_s
    )
    recovered = store.recover()
    first = store.next_part
    store.close(compact=False)  # stops its journal thread before we fork
    Disk(out, cfg).close()  # clean media/.partial of a killed run's temps, once, here
    ctx = multiprocessing.get_context("fork")
    counters = ctx.Array("q", n, lock=False)
    results = ctx.Queue()
    child_cfg = split_limits(cfg, n)
    procs = [
        ctx.Process(
            target=_worker,
            args=(child_cfg, out, source, (w, n, first), counters, results, os.getpid()),
            name=f"webvid-crawl-{w}",
        )
        for w in range(n)
    ]
    for p in procs:
        p.start()
    done: dict[int, Any] = {}
    seen = 0
    try:
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
                progress.update("crawl", advance=total - seen, total=cfg.limit)
                seen = total
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead and len(done) < n and results.empty():
                raise WebvidError(
                    f"crawl worker {dead[0].name} exited with code {dead[0].exitcode}"
                )
    finally:
        for p in procs:
            if p.is_alive() and len(done) < n:
                p.terminate()
            p.join(30)
    parent = _Crawl(cfg, out, "list", source, progress)
    for counts in done.values():
        parent.add_counts(counts)
    store = RecordStore(
        out, flush_every=cfg.output.flush_every, flush_interval_s=cfg.output.flush_interval_s
    )
    again = store.recover()  # compaction; folds nothing unless a worker died
    store.close(compact=False)
    Disk(out, cfg).close()  # removes media/.partial when nothing resumable is left
    recovered = {k: recovered.get(k, 0) + again.get(k, 0) for k in set(recovered) | set(again)}
    return parent._finish(store, time.monotonic() - t0, recovered)
