"""Watching a pool of worker tasks from the coroutine that feeds or drains it (no I/O).

Takes the worker tasks of a pool (the crawl's item workers, discovery's page workers);
produces :class:`WorkerWatch`, whose :meth:`~WorkerWatch.wait_for` awaits a queue operation
unless a worker dies first — then it raises that worker's error instead of waiting forever
for room or for the next item.

Why a class: asking ``asyncio.wait([op, *workers])`` on every put or get adds and removes a
callback on every worker each time — with 512 workers that was most of the feeding
coroutine's CPU. Here each worker gets one done-callback, once, feeding one shared future.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

T = TypeVar("T")


class WorkerWatch:
    def __init__(self, tasks: Iterable[asyncio.Task[object]]) -> None:
        self.failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()
        for task in tasks:
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        if self.failed.done() or task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.failed.set_result(exc)

    def check(self) -> None:
        """Raise the error of a worker that died, if one did."""
        if self.failed.done():
            raise self.failed.result()

    async def wait_for(self, aw: Awaitable[T]) -> T:
        """The result of ``aw``; if a worker dies first (or meanwhile), ``aw`` is cancelled
        and that worker's error raised."""
        fut = asyncio.ensure_future(aw)
        try:
            if not fut.done():
                await asyncio.wait([fut, self.failed], return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            fut.cancel()
            raise
        if self.failed.done():
            fut.cancel()
            raise self.failed.result()
        return fut.result()
