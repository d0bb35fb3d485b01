"""The limiter actor's rules, run in-process (it is a plain class that Ray makes an actor):
global concurrency per host, leases of dead holders expire, a request given up while waiting
frees its lease, a 429 pauses the host, the worker-side clients keep the local interfaces."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from types import SimpleNamespace

import pytest

from webvid.crawl.config import CrawlConfig, NetConfig, PoliteConfig
from webvid.scale import limiter
from webvid.scale.crawl_engine import start_part
from webvid.scale.limiter import PoliteLimiter

HOST = "http://127.0.0.1:8000"


def cfg(
    conc: int = 2, rps: float = 1000.0, burst: int = 100, total_timeout_s: float = 60.0
) -> CrawlConfig:
    return CrawlConfig(
        polite=PoliteConfig(
            allow_private=True,
            per_host_concurrency=conc,
            per_host_rps=rps,
            per_host_burst=burst,
            host_429_pause_s=0.3,
        ),
        net=NetConfig(total_timeout_s=total_timeout_s, backoff_max_s=5.0),
    )


async def test_concurrency_is_per_host_and_released() -> None:
    lim = PoliteLimiter(cfg(conc=2))
    await lim.acquire(HOST, "a")
    await lim.acquire(HOST, "b")
    await lim.acquire("http://other:80", "c")  # another host has its own slots
    third = asyncio.create_task(lim.acquire(HOST, "d"))
    await asyncio.sleep(0.05)
    assert not third.done()  # the host's two slots are taken, cluster-wide
    await lim.release(HOST, "a")
    await asyncio.wait_for(third, 1.0)
    assert lim.state()["leases"] == {HOST: 2, "http://other:80": 1}


async def test_a_dead_holders_lease_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limiter, "LEASE_MARGIN_S", 0.0)
    lim = PoliteLimiter(cfg(conc=1, total_timeout_s=0.2))
    await lim.acquire(HOST, "dead")  # never released: its worker was killed
    t = time.monotonic()
    await asyncio.wait_for(lim.acquire(HOST, "next"), 2.0)
    assert time.monotonic() - t >= 0.15


async def test_a_ticket_given_up_while_waiting_is_freed_when_granted() -> None:
    lim = PoliteLimiter(cfg(conc=1))
    await lim.acquire(HOST, "a")
    waiting = asyncio.create_task(lim.acquire(HOST, "b"))
    await asyncio.sleep(0.02)
    await lim.release(HOST, "b")  # the worker was cancelled: release arrives before the grant
    await lim.release(HOST, "a")
    await asyncio.wait_for(waiting, 1.0)
    assert lim.state()["leases"] == {}  # "b" was handed back at once
    await asyncio.wait_for(lim.acquire(HOST, "c"), 1.0)


async def test_a_429_pauses_the_host_and_rate_is_shared() -> None:
    lim = PoliteLimiter(cfg(conc=10, rps=20.0, burst=1))
    t = time.monotonic()
    for i in range(5):  # one bucket for every caller: 1 + 4 tokens at 20/s
        await lim.acquire(HOST, f"r{i}")
        await lim.release(HOST, f"r{i}")
    assert time.monotonic() - t >= 4 / 20 - 0.02
    lim.on_response(HOST, 429, 0.5)
    t = time.monotonic()
    await lim.acquire(HOST, "after")
    assert time.monotonic() - t >= 0.45
    assert lim.state()["backing_off"] == 0


def test_retried_task_numbers_parts_above_its_dead_attempt(tmp_path) -> None:
    rec = tmp_path / "records"
    rec.mkdir()
    assert start_part(rec, 10, 1, 3) == 11
    for name in (
        "part-00004.parquet",
        "part-00011.parquet",
        "journal-00014.jsonl",
        "part-00012.parquet",
    ):
        (rec / name).write_text("")
    # task 1 of 3 owns 11, 14, 17...; 4 is an earlier run's, 12 is task 2's
    assert start_part(rec, 10, 1, 3) == 17
    assert start_part(rec, 10, 2, 3) == 15
    assert start_part(rec, 10, 0, 3) == 10


async def test_acquire_many_grants_free_slots_with_spaced_tokens() -> None:
    lim = PoliteLimiter(cfg(conc=3, rps=10.0, burst=1))
    granted, _ = await lim.acquire_many(HOST, ["a", "b", "c", "d", "e"])
    assert [t for t, _ in granted] == ["a", "b", "c"]  # three slots; d and e ask again later
    assert [round(d, 1) for _, d in granted] == [0.0, 0.1, 0.2]  # one bucket: 10/s


class _Handle:
    """Ray's call syntax (``actor.method.remote(...)`` → awaitable) around an in-process
    limiter, so the worker-side slot runs against the real actor class without a cluster."""

    def __init__(self, target: PoliteLimiter) -> None:
        self.target = target
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> SimpleNamespace:
        def remote(*args: object) -> asyncio.Future:
            self.calls[name] += 1
            result = getattr(self.target, name)(*args)
            return asyncio.ensure_future(result) if asyncio.iscoroutine(result) else _done(result)

        return SimpleNamespace(remote=remote)


def _done(value: object) -> asyncio.Future:
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


async def test_worker_slots_batch_requests_and_hand_every_lease_back() -> None:
    lim = PoliteLimiter(cfg(conc=4))
    handle = _Handle(lim)
    slots = limiter.RaySlots([handle])
    inside = peak = 0

    async def request() -> None:
        nonlocal inside, peak
        async with slots.get(HOST + "/v/x.mp4").use():
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(request() for _ in range(20)))
    await asyncio.sleep(0.01)  # the last hand-back goes out on the next loop turn
    assert peak == 4
    assert lim.state()["leases"] == {} and lim.granted == 20
    assert handle.calls["acquire_many"] < 20 and handle.calls["release_many"] < 20  # batched


async def test_a_cancelled_worker_request_frees_its_slot() -> None:
    lim = PoliteLimiter(cfg(conc=1))
    slots = limiter.RaySlots([_Handle(lim)])
    slot = slots.get(HOST + "/a")
    entered = asyncio.Event()

    async def hold() -> None:
        async with slot.use():
            entered.set()
            await asyncio.sleep(0.1)

    holder = asyncio.create_task(hold())
    await entered.wait()
    waiter = asyncio.create_task(hold())  # waits for the only slot...
    await asyncio.sleep(0.02)
    waiter.cancel()  # ...and gives up (a timeout)
    await asyncio.gather(holder, waiter, return_exceptions=True)
    await asyncio.sleep(0.01)
    assert lim.state()["leases"] == {}
    async with slot.use():  # the host is usable again
        pass


async def test_robots_is_fetched_once_for_concurrent_askers() -> None:
    from aiohttp import web

    hits = []

    async def robots(_: web.Request) -> web.Response:
        hits.append(1)
        await asyncio.sleep(0.05)
        return web.Response(text="User-agent: *\nDisallow: /private/\nCrawl-delay: 0.5\n")

    app = web.Application()
    app.router.add_get("/robots.txt", robots)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    lim = PoliteLimiter(cfg(rps=10.0))
    try:
        answers = await asyncio.gather(*(lim.robots(f"{base}/v/{i}.mp4") for i in range(8)))
    finally:
        await lim.close()
        await runner.cleanup()
    assert len(hits) == 1 and all(kind == "ok" for kind, _, _ in answers)
    rules = answers[0][1]
    assert rules.allowed("/v/1.mp4") and not rules.allowed("/private/x")
    assert lim.slots.get(base).bucket.rate == 2.0  # the Crawl-delay lowers the shared bucket
