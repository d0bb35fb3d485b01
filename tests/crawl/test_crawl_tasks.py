"""WorkerWatch: feeding or draining a worker pool raises a dead worker's error, never hangs."""

from __future__ import annotations

import asyncio

import pytest

from webvid.crawl.loop import queue_put
from webvid.crawl.tasks import WorkerWatch


async def test_put_on_a_full_queue_raises_the_error_of_a_worker_that_dies():
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    queue.put_nowait("first")

    async def dies() -> None:
        await asyncio.sleep(0.01)
        raise OSError("disk full")

    async def idles() -> None:
        await asyncio.sleep(3600)

    workers = [asyncio.create_task(dies()), *(asyncio.create_task(idles()) for _ in range(50))]
    watch = WorkerWatch(workers)
    with pytest.raises(OSError, match="disk full"):
        await asyncio.wait_for(queue_put(queue, "second", watch), 5)
    assert list(queue._queue) == ["first"]  # the pending put was withdrawn
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def test_wait_for_returns_results_and_ignores_cancelled_or_finished_workers():
    queue: asyncio.Queue = asyncio.Queue()

    async def ok() -> None:
        return None

    cancelled = asyncio.create_task(asyncio.sleep(3600))
    finished = asyncio.create_task(ok())
    watch = WorkerWatch([cancelled, finished])
    cancelled.cancel()
    await asyncio.gather(cancelled, finished, return_exceptions=True)
    asyncio.get_running_loop().call_later(0.01, queue.put_nowait, "item")
    assert await watch.wait_for(queue.get()) == "item"
    watch.check()  # nothing died


async def test_check_raises_once_a_worker_died():
    async def dies() -> None:
        raise ValueError("bad page")

    task = asyncio.create_task(dies())
    watch = WorkerWatch([task])
    await asyncio.gather(task, return_exceptions=True)
    with pytest.raises(ValueError, match="bad page"):
        watch.check()
    with pytest.raises(ValueError, match="bad page"):
        await watch.wait_for(asyncio.sleep(3600))
