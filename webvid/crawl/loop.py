"""One crawl unit in one event loop: ``run_unit(unit, progress) -> UnitCounts``.

Takes a :class:`~webvid.crawl.unit.CrawlUnit` (the driver has recovered the crawl dir), a
Progress and, optionally, a politeness hook (cluster-wide slots and robots.txt on Ray);
produces records parts in ``OUT/records/`` numbered ``first_part + index + k·count``, media in
``OUT/media/``, and the unit's :class:`~webvid.crawl.unit.UnitCounts`.

Pipeline (one asyncio loop, one ``ClientSession``)::

    source (table rows in batches | site discovery)  → Item
      → this unit's slice (clip id hash), done items skipped  → Item
      → bounded queue (2 × concurrency: memory stays flat)  → Item
      → N workers: policy checks, direct download or yt-dlp  → Outcome
      → record dict, with the opt-out signals of page and media decided for the crawl's
        purpose (optout.record_columns) → journal line + Parquet part (RecordStore)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from webvid import contract, io
from webvid.crawl import media, optout, sources
from webvid.crawl.diagnose import PageWatch, nothing_found
from webvid.crawl.idset import IdSet
from webvid.crawl.items import Item, Outcome, make_record
from webvid.crawl.net import (
    HostSlots,
    Politeness,
    PoliteSlots,
    RobotsCache,
    RobotsSource,
    make_session,
)
from webvid.crawl.sink import Disk
from webvid.crawl.store import RecordStore
from webvid.crawl.tasks import WorkerWatch
from webvid.crawl.unit import CrawlUnit, UnitCounts, is_done
from webvid.errors import InputError
from webvid.exclude import ExcludeSet, logs_for
from webvid.log import Progress

T = TypeVar("T")


def run_unit(
    unit: CrawlUnit, progress: Progress, *, politeness: Politeness | None = None
) -> UnitCounts:
    """Crawl one unit in a new event loop. ``politeness`` builds the host slots and robots
    cache from ``(cfg, session)`` (default: this process's own; on Ray: cluster-wide)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(_UnitCrawl(unit, progress, politeness).main())


@contextlib.contextmanager
def lean_gc(young_threshold: int = 20_000) -> Iterator[None]:
    """Cheaper garbage collection for the duration of a crawl, restored afterwards.

    After start-up the process holds a few hundred thousand long-lived objects (pyarrow,
    aiohttp, numpy modules) that every full collection would walk again; the per-request
    objects (responses, futures, tasks) trigger collections thousands of times a run.
    ``gc.freeze()`` moves what exists now out of the collector's sight, and a larger
    young-generation threshold lets fewer, larger collections free the reference cycles
    of finished requests (memory stays bounded: at most ``young_threshold`` pending objects).
    """
    old = gc.get_threshold()
    gc.freeze()  # no collect() first: a full pass costs more than the garbage it would free
    gc.set_threshold(young_threshold, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def loop_factory() -> Any:
    """uvloop when installed (a C event loop: cheaper socket I/O per request), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def queue_put(queue: asyncio.Queue[T], item: T, watch: WorkerWatch) -> None:
    """Put on the bounded queue; if a worker dies meanwhile, raise its error instead of
    waiting forever for room."""
    if not queue.full():
        queue.put_nowait(item)
        return
    await watch.wait_for(queue.put(item))


class _UnitCrawl:
    """One unit in one event loop: the queue, the workers, their counters."""

    def __init__(self, unit: CrawlUnit, progress: Progress, politeness: Politeness | None) -> None:
        self.unit, self.cfg, self.out = unit, unit.cfg, unit.out
        self.mode, self.source, self.progress = unit.mode, unit.source, progress
        self.politeness = politeness
        self.by_status: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()
        self.bytes = 0
        self.attempted = 0
        self.skipped_done = 0
        self.duplicates = 0
        self.nothing_found: str | None = None  # discovery without any item: why
        self.source_stats: dict[str, int] = {}
        self.ytdlp: Any = None
        self._flushes: set[asyncio.Future[None]] = set()
        self.flush_error: BaseException | None = None
        self._unreported = 0  # finished items not yet passed to the Progress
        self._reported_at = 0.0

    async def main(self) -> UnitCounts:
        unit = self.unit
        store = RecordStore(
            self.out,
            flush_every=self.cfg.output.flush_every,
            flush_interval_s=self.cfg.output.flush_interval_s,
        )
        self.store = store
        store.number_parts(unit.first_part + unit.index, unit.count)
        self.disk = Disk(self.out, self.cfg, owner=False)  # the driver cleans the folder
        done = IdSet(
            cid for cid, status, reason in store.final_states() if is_done(status, reason, self.cfg)
        )
        if done:
            self.progress.message(
                f"resuming: {self.out} holds {len(done)} finished clips; they are not fetched again"
            )
        # exclude lists and the takedown logs of OUT and the folders above it
        self.exclude = ExcludeSet.load([*self.cfg.exclude, *logs_for(self.out)])
        self.taken: dict[str, str] = {}  # clip id → the listed identifier (optout_value)
        queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=2 * self.cfg.concurrency)
        try:
            async with make_session(self.cfg) as session:
                robots: RobotsSource
                if self.politeness is None:
                    local = HostSlots(self.cfg)
                    self.slots: PoliteSlots = local
                    robots = RobotsCache(self.cfg, session, local)
                else:
                    self.slots, robots = self.politeness(self.cfg, session)
                self.fetcher = PageWatch(self.cfg, session, self.slots, robots, self.disk)
                workers = [
                    asyncio.create_task(self._worker(queue)) for _ in range(self.cfg.concurrency)
                ]
                ticker = asyncio.create_task(self._tick())
                watch = WorkerWatch(workers)
                try:
                    async for item in self._items(done):
                        await queue_put(queue, item, watch)
                    for _ in workers:
                        await queue_put(queue, None, watch)
                    await asyncio.gather(*workers)
                finally:
                    ticker.cancel()
                    for w in workers:
                        w.cancel()
                    await asyncio.gather(*workers, ticker, return_exceptions=True)
        finally:
            self._report()  # the last counts, so the bar ends as the summary does:
            self.progress.update("crawl", **status_fields(self.by_status, dry_run=self.cfg.dry_run))
            if self._flushes:
                await asyncio.gather(*self._flushes, return_exceptions=True)
            store.flush(sync_media=self.cfg.output.fsync_media)
            if self.ytdlp is not None:
                await self.ytdlp.aclose()
            self.disk.close()
        if self.flush_error is not None:
            raise self.flush_error
        store.close(compact=unit.compact)
        return UnitCounts(
            by_status=dict(self.by_status),
            by_reason=dict(self.by_reason),
            bytes=self.bytes,
            attempted=self.attempted,
            skipped_done=self.skipped_done,
            duplicates=self.duplicates,
            invalid_rows=self.source_stats.get("invalid_rows", 0),
            nothing_found=self.nothing_found,
        )

    # -- sources -------------------------------------------------------------------------

    async def _items(self, done: IdSet) -> AsyncIterator[Item]:
        seen = IdSet()  # every row of a 10 M-row table passes here: ~8 bytes per id
        limit = self.cfg.limit
        index, count = self.unit.index, self.unit.count
        discoverer: Any = None
        if self.mode == "list":
            path = (
                await self._remote_table()
                if self.source.lower().startswith(("http://", "https://"))
                else self.source
            )
            items = sources.iter_items(path, self.cfg.table, self.source_stats)
            stream: Any = _aiter(_renamed(items, self.source))
        else:
            from webvid.crawl.discover import Discoverer

            listed = self._listed_page if len(self.exclude) else None
            discoverer = Discoverer(self.cfg, self.fetcher, self.source, done, listed)
            stream = discoverer.items()
        n = 0
        async for item in stream:
            if limit is not None and n >= limit:
                break
            if not seen.add(item.clip_id):  # a repeated row
                self.duplicates += 1
                continue
            n += 1
            if count > 1 and zlib.crc32(item.clip_id.encode()) % count != index:
                continue  # another unit's item
            if item.clip_id in done:
                self.skipped_done += 1
                self._advance()
                continue
            if len(self.exclude) and item.clip_id not in self.taken:
                urls = (item.media_url, item.page_url)
                hit = self.exclude.match(clip_id=item.clip_id, source_id=item.source_id, urls=urls)
                if hit is not None:
                    item.failed = self._taken_down(item.clip_id, hit)
            yield item
        if hasattr(stream, "aclose"):
            await stream.aclose()
        if discoverer is not None:  # clip pages done earlier: skipped before their fetch
            self.skipped_done += discoverer.stats["skipped_done"]
            if n == 0 and not self.skipped_done and limit != 0:
                self.nothing_found = nothing_found(self.cfg, discoverer.starts, self.fetcher)

    async def _remote_table(self) -> Path:
        """Fetch a table URL (robots, address checks, retries as for media) to OUT/sources/,
        at most ``max_table_bytes`` of it: a declared or counted size over the cap stops
        the download, removes the partial file and is an InputError."""
        name = Path(urlsplit(self.source).path).name
        final = self.out / "sources" / (name if name not in ("", ".", "..") else "table")
        cap = self.cfg.max_table_bytes

        async def handler(resp: Any, _final_url: str) -> Outcome:
            declared = resp.content_length
            if declared is not None and declared > cap:
                return Outcome("too_large", f"Content-Length {declared}", http_status=resp.status)
            try:
                size = await _stream_capped(resp, final, cap)
            except _OverCap as over:
                return Outcome("too_large", f"{over} bytes and more", http_status=resp.status)
            return Outcome(None, http_status=resp.status, bytes=size)

        # a table is one big body (WebVid 10M's CSV: 2.7 GB), not a clip: its own deadline
        out = await self.fetcher.request(
            self.source,
            handler,
            deadline_s=max(self.cfg.table_timeout_s, self.cfg.net.total_timeout_s),
        )
        if out.reason == "too_large":
            raise InputError(
                f"table at {self.source} exceeds --max-table-bytes {cap} ({out.message})"
            )
        if out.reason is not None:
            raise InputError(f"cannot fetch the table {self.source}: {out.reason} ({out.message})")
        return final

    # -- workers -------------------------------------------------------------------------

    async def _worker(self, queue: asyncio.Queue[Item | None]) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            if self.flush_error is not None:
                raise self.flush_error  # a records part could not be written: stop, keep the rest
            started = time.time()
            t0 = time.monotonic()
            outcome = await self._process(item)
            if outcome.sha256 and outcome.reason is None and outcome.sha256 in self.exclude.sha256s:
                outcome = self._drop_listed_body(item, outcome)
            record = make_record(item, outcome, started, time.monotonic() - t0)
            if record["media_kind"] is None:  # no body kept: what the URL or response tells
                record["media_kind"] = media.kind_hint(
                    item.media_url, outcome.content_type, has_duration=item.duration_s is not None
                )
            signals = [*item.signals, *outcome.signals]  # the clip page's, then the media's
            record.update(optout.record_columns(signals, self.cfg.polite.purpose))
            if outcome.reason == "taken_down":
                record.update(optout_source="takedown", optout_value=self.taken.pop(item.clip_id))
            self.store.add(record)
            if self.store.due():
                self._flush_soon()
            self.attempted += 1
            self.by_status[record["status"]] += 1
            if outcome.reason:
                self.by_reason[outcome.reason] += 1
            else:
                self.bytes += outcome.bytes or 0
            self._advance()

    def _advance(self) -> None:
        """Count one finished (or skipped) item; the Progress hears of them in batches at
        most every 0.1 s (a rich display update per item costs more than a small body)."""
        self._unreported += 1
        if time.monotonic() - self._reported_at >= 0.1:
            self._report()

    def _report(self) -> None:
        if self._unreported:
            self.progress.update("crawl", advance=self._unreported, total=self.cfg.limit)
            self._unreported = 0
        self._reported_at = time.monotonic()

    async def _process(self, item: Item) -> Outcome:
        if item.failed is not None:
            return item.failed
        url = item.media_url
        if not url:
            return Outcome(
                "invalid_url" if self.mode == "list" else "no_media_found", "no media URL"
            )
        refused = self.fetcher.check_url(url)
        if refused:
            return refused
        if self.cfg.dry_run:
            return Outcome(dry_run=True)
        route = media.route_for_url(url, self.cfg.via)
        if route == "direct":
            out = await self.fetcher.download(url, item.clip_id)
            if not (out.handoff and self.cfg.via == "auto"):
                return out
            tried = out.attempts
        else:
            tried = 0
        refused = await self.fetcher.robots_check(url) or await self.fetcher.resolves_private(url)
        if refused:
            return refused
        if self.ytdlp is None:
            from webvid.crawl.ytdlp import YtdlpPool

            self.ytdlp = YtdlpPool(self.cfg, self.disk)
        async with self.slots.get(url).use():
            out = await self.ytdlp.download(url, item.clip_id)
        out.attempts += tried
        return out

    # -- takedowns (exclude lists, takedowns.parquet) ----------------------------------------

    def _taken_down(self, cid: str, hit: tuple[str, str], **fields: Any) -> Outcome:
        self.taken[cid] = f"{hit[0]}:{hit[1]}"
        return Outcome("taken_down", f"{hit[0]} {hit[1]} is on an exclude list", **fields)

    def _listed_page(self, url: str, cid: str, sid: str | None) -> Outcome | None:
        """Discovery: the outcome of a clip page whose URL or id is listed (never fetched)."""
        hit = self.exclude.match(clip_id=cid, source_id=sid, urls=(url,))
        return None if hit is None else self._taken_down(cid, hit)

    def _drop_listed_body(self, item: Item, out: Outcome) -> Outcome:
        """A body whose sha256 is listed (known only once it is in): deleted at once."""
        if out.media_path:
            (self.out / out.media_path).unlink(missing_ok=True)
        hit = ("sha256", out.sha256 or "")
        return self._taken_down(
            item.clip_id, hit, http_status=out.http_status, attempts=out.attempts
        )

    def _flush_soon(self) -> None:
        """Commit the buffered records as a part on a worker thread (sync + Parquet write)."""
        taken = self.store.take_batch()
        if taken is None:
            return
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(
            None, lambda: self.store.write_batch(*taken, sync_media=self.cfg.output.fsync_media)
        )
        self._flushes.add(fut)
        fut.add_done_callback(self._flush_done)

    def _flush_done(self, fut: asyncio.Future[None]) -> None:
        self._flushes.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            self.flush_error = fut.exception()

    async def _tick(self) -> None:
        t0 = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            self._report()
            if self.store.due():
                self._flush_soon()
            elapsed = max(1e-6, time.monotonic() - t0)
            fails = ",".join(f"{r}:{n}" for r, n in self.by_reason.most_common(3))
            self.progress.update(
                "crawl",
                items_s=round(self.attempted / elapsed, 1),
                MB_s=round(self.bytes / 1e6 / elapsed, 2),
                in_flight=self.fetcher.in_flight,
                **status_fields(self.by_status, dry_run=self.cfg.dry_run),
                reasons=fails or "-",
                backoff_hosts=self.slots.backing_off(),
            )


def status_fields(by_status: Mapping[str, int], *, dry_run: bool = False) -> dict[str, int]:
    """The progress bar's counts, in the summary's categories: ``success`` (``discovered`` in
    a dry run), ``failed`` (``failed_*``) and ``skipped`` (``skipped_*``: robots, opt-outs,
    takedowns, the crawl's own policy), so they add up to the items done."""
    ok = contract.STATUS_DISCOVERED if dry_run else contract.STATUS_SUCCESS
    fields = {ok: by_status.get(ok, 0)}
    fields["failed"] = sum(n for s, n in by_status.items() if s.startswith("failed"))
    fields["skipped"] = sum(n for s, n in by_status.items() if s.startswith("skipped"))
    return fields


class _OverCap(Exception):
    """A streamed body went over its byte cap (the message: the bytes counted)."""


async def _stream_capped(resp: Any, final: Path, cap: int) -> int:
    """Stream a response body into ``final`` (atomically), never writing more than ``cap``
    bytes; over it, raise :class:`_OverCap` and leave no file behind."""
    size = 0
    with io.atomic_path(final) as tmp, open(tmp, "wb") as fh:
        async for chunk in resp.content.iter_chunked(1 << 20):
            size += len(chunk)
            if size > cap:
                raise _OverCap(size)
            fh.write(chunk)
    return size


def _renamed(items: Any, source: str) -> Any:
    for item in items:
        item.source = source
        yield item


async def _aiter(iterator: Any) -> AsyncIterator[Item]:
    """A sync iterator as an async one; yields to the loop between items."""
    for i, item in enumerate(iterator):
        yield item
        if i % 256 == 255:
            await asyncio.sleep(0)
