"""Cluster-wide politeness for crawls on Ray: one limiter actor, thin clients in the workers.

Takes the run's :class:`~webvid.crawl.recipe.CrawlRecipe`; produces

* :class:`PoliteLimiter` — the state every worker shares, kept in one async Ray actor: per
  host a concurrency limit (leases), the token bucket, the 429/503 pause and the rate halving
  of :class:`webvid.crawl.net.HostSlot` (the same class, so the rules are the local ones), and
  robots.txt fetched once per host for the whole cluster (the local
  :class:`webvid.crawl.net.RobotsCache` run inside the actor, whose ``Crawl-delay`` lowers the
  shared bucket). It also sums the workers' progress for the driver;
* :class:`RaySlots` and :class:`RayRobots` — what a worker's fetcher uses in place of the local
  ``HostSlots`` and ``RobotsCache``: both pairs satisfy the crawl's politeness seam
  (:class:`webvid.crawl.net.PoliteSlots`, :class:`webvid.crawl.net.RobotsSource`).
  ``use()`` asks the actor for a lease and a token and returns the lease when the request is
  over, ``on_response`` reports statuses, so a host that answers 429 to one worker slows down
  for all of them; :func:`politeness_for` is the unit's ``politeness`` hook.

Each request still takes one lease and one token, but a worker asks for those of all its
requests waiting for a host in one call and hands finished ones back together (small batches;
see :class:`RaySlot`). A large cluster can run several limiter actors: each host belongs to
exactly one (:func:`limiter_for`, a stable hash of the host), so every rule still holds per
host for the whole cluster while the load is spread. A lease carries a ticket: a request
cancelled while waiting has its ticket refused (or freed, if already granted); if a worker
dies holding one, the lease expires after the request's total timeout (plus a margin).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from webvid.crawl import polite
from webvid.crawl.net import (
    HostSlots,
    Politeness,
    RobotsCache,
    describe_exception,
    host_key,
    make_session,
)
from webvid.crawl.recipe import CrawlRecipe

LEASE_MARGIN_S = 30.0


class PoliteLimiter:
    """The shared politeness state (an async Ray actor: every method runs on its one loop)."""

    def __init__(self, cfg: CrawlRecipe) -> None:
        self.cfg = cfg
        self.slots = HostSlots(cfg)
        self.leases: dict[str, dict[str, float]] = {}  # host → ticket → expiry (monotonic)
        self.conds: dict[str, asyncio.Condition] = {}
        self.cancelled: OrderedDict[str, None] = OrderedDict()  # tickets released before granted
        self.lease_s = cfg.net.total_timeout_s + LEASE_MARGIN_S
        self.granted = 0
        self.progress: dict[int, int] = {}
        self._robots: RobotsCache | None = None
        self._robots_lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()

    # -- leases and tokens --------------------------------------------------------------

    async def acquire_many(
        self, key: str, tickets: list[str]
    ) -> tuple[list[tuple[str, float]], int]:
        """Grant leases of ``key``'s host to as many of ``tickets`` as there are free slots now
        (waiting for the first one), each with a token: ``[(ticket, seconds to wait before
        sending)]`` (the token's time, or the end of a 429 pause), and the number of hosts
        backing off. A ticket not granted is asked for again by its worker."""
        slot = self.slots.get(key)
        leases = self.leases.setdefault(key, {})
        cond = self.conds.setdefault(key, asyncio.Condition())
        limit = self.cfg.polite.per_host_concurrency
        granted: list[str] = []
        async with cond:
            while True:
                now = time.monotonic()
                for t in [t for t, exp in leases.items() if exp <= now]:
                    del leases[t]  # its holder died or hung: the slot comes back
                if len(leases) < limit:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(cond.wait(), max(0.01, min(leases.values()) - now))
            for t in tickets:
                if len(leases) >= limit:
                    break
                if self.cancelled.pop(t, False) is None:  # given up before its turn
                    continue
                leases[t] = now + self.lease_s
                granted.append(t)
        now = time.monotonic()
        out = [(t, max(slot.bucket.reserve(now), slot.pause_until - now, 0.0)) for t in granted]
        self.granted += len(out)
        return out, self.slots.backing_off()

    async def acquire(self, key: str, ticket: str) -> int:
        """One ticket, waited for here (what a worker's slot does, without batching)."""
        granted, backing = await self.acquire_many(key, [ticket])
        if granted:  # else it was released before its turn: nothing to wait for
            await asyncio.sleep(granted[0][1])
        return backing

    async def release_many(self, key: str, tickets: list[str]) -> None:
        leases = self.leases.get(key, {})
        freed = 0
        for t in tickets:
            if leases.pop(t, None) is None:  # not granted yet: refuse it when its turn comes
                self.cancelled[t] = None
            else:
                freed += 1
        while len(self.cancelled) > 100_000:
            self.cancelled.popitem(last=False)
        if freed:
            cond = self.conds[key]
            async with cond:
                cond.notify(freed)

    async def release(self, key: str, ticket: str) -> None:
        await self.release_many(key, [ticket])

    def on_response(self, key: str, status: int, retry_after_s: float | None) -> None:
        self.slots.get(key).on_response(status, retry_after_s)

    # -- robots.txt, once per host for the cluster -----------------------------------------

    async def robots(self, url: str) -> tuple[str, Any, str]:
        """``("ok", rules, "")`` or ``("error", reason, detail)`` (exceptions do not cross
        processes well; the worker turns the reason back into one)."""
        async with self._robots_lock:  # the first callers must not each open a session
            if self._robots is None:
                session = await self._stack.enter_async_context(make_session(self.cfg))
                self._robots = RobotsCache(self.cfg, session, self.slots)
        try:
            return "ok", await self._robots.rules(url), ""
        except Exception as exc:
            reason, detail = describe_exception(exc)
            return "error", reason, detail

    # -- progress and introspection -----------------------------------------------------

    def advance(self, worker: int, done: int) -> None:
        """Worker ``worker`` has handled ``done`` items so far (a retried task starts over)."""
        self.progress[worker] = done

    def state(self) -> dict[str, Any]:
        return {
            "done": sum(self.progress.values()),
            "granted": self.granted,
            "robots_fetches": dict(self._robots.fetches if self._robots else {}),
            "backing_off": self.slots.backing_off(),
            "leases": {k: len(v) for k, v in self.leases.items() if v},
        }

    async def close(self) -> None:
        await self._stack.aclose()


# -- the worker side -----------------------------------------------------------------------

_TICKETS = itertools.count()


class RaySlot:
    """A worker's view of one host: the same ``use()``/``on_response`` as ``HostSlot``.

    Requests of this worker waiting for the host are asked for together (one ``acquire_many``
    in flight per host), and finished ones are handed back together once per loop turn: the
    tokens travel in small batches, each still one request's lease and token."""

    BATCH = 64

    def __init__(self, owner: RaySlots, key: str) -> None:
        self.owner, self.key = owner, key
        self.actor = limiter_for(owner.actors, key)
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._asked: set[str] = set()  # sent to the actor, not yet handed back
        self._asking = False
        self._done: list[str] = []

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[None]:
        ticket = f"{self.owner.prefix}-{next(_TICKETS)}"
        fut = self._waiting[ticket] = asyncio.get_running_loop().create_future()
        if not self._asking:
            self._asking = True
            asyncio.get_running_loop().create_task(self._ask())
        try:
            delay = await fut
            if delay > 0:
                await asyncio.sleep(delay)
            yield
        finally:  # also when cancelled while waiting: the actor refuses or frees the ticket
            self._waiting.pop(ticket, None)
            self._hand_back(ticket)

    async def _ask(self) -> None:
        try:
            while batch := [t for t in self._waiting if t not in self._asked][: self.BATCH]:
                self._asked.update(batch)
                try:
                    granted, self.owner.backing = await self.actor.acquire_many.remote(
                        self.key, batch
                    )
                except Exception as exc:  # the actor is gone: these requests fail, others retry
                    for t in batch:
                        self._asked.discard(t)
                        fut = self._waiting.pop(t, None)
                        if fut is not None and not fut.done():
                            fut.set_exception(exc)
                    continue
                got = dict(granted)
                for t in batch:
                    fut = self._waiting.get(t)
                    if t not in got:
                        self._asked.discard(t)  # no free slot this time: asked again
                    elif fut is not None and not fut.done():
                        fut.set_result(got[t])
                    else:
                        self._hand_back(t)  # its request gave up meanwhile
        finally:
            self._asking = False

    def _hand_back(self, ticket: str) -> None:
        if ticket not in self._asked:
            return  # never sent: nothing to free
        self._asked.discard(ticket)
        if not self._done:
            asyncio.get_running_loop().call_soon(self._flush)
        self._done.append(ticket)

    def _flush(self) -> None:
        done, self._done = self._done, []
        if done:
            self.actor.release_many.remote(self.key, done)

    def on_response(self, status: int, retry_after_s: float | None) -> None:
        trouble = status in (429, 503)
        if trouble or (status < 400 and self.owner.saw_trouble):  # a success ends a 429 streak
            self.owner.saw_trouble = trouble
            self.actor.on_response.remote(self.key, status, retry_after_s)


class RaySlots:
    """Stands in for :class:`webvid.crawl.net.HostSlots` in a worker (a
    :class:`~webvid.crawl.net.PoliteSlots`)."""

    def __init__(self, actors: list[Any]) -> None:
        self.actors = actors
        self.prefix = f"{os.getpid()}-{time.monotonic_ns()}"
        self.slots: dict[str, RaySlot] = {}
        self.backing = 0
        self.saw_trouble = False

    def get(self, url: str) -> RaySlot:
        key = host_key(url)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = RaySlot(self, key)
        return slot

    def backing_off(self) -> int:
        return self.backing


class RobotsUnreachable(OSError):
    """robots.txt of a host could not be fetched (reported by the limiter actor)."""


class RayRobots:
    """Stands in for :class:`webvid.crawl.net.RobotsCache` (a
    :class:`~webvid.crawl.net.RobotsSource`): asks the actor, caches the answer."""

    def __init__(self, cfg: CrawlRecipe, actors: list[Any]) -> None:
        self.cfg, self.actors = cfg, actors
        self._rules: dict[str, tuple[str, Any, str]] = {}

    async def rules(self, url: str) -> polite.RobotsRules:
        if not self.cfg.polite.obey_robots:
            return polite.ALLOW_ALL
        key = host_key(url)
        answer = self._rules.get(key)
        if answer is None:
            answer = self._rules[key] = await limiter_for(self.actors, key).robots.remote(url)
        kind, value, detail = answer
        if kind == "ok":
            return value
        if value == "timeout":
            raise TimeoutError(detail)
        raise RobotsUnreachable(detail)


def limiter_for(actors: list[Any], key: str) -> Any:
    """The limiter that owns host ``key`` (the same on every worker)."""
    return actors[zlib.crc32(key.encode()) % len(actors)]


def politeness_for(actors: list[Any]) -> Politeness:
    """The unit's ``politeness`` hook (:func:`webvid.crawl.unit.run_unit`):
    ``(cfg, session) → (slots, robots)``, both backed by the limiter actors."""

    def make(cfg: CrawlRecipe, _session: Any) -> tuple[RaySlots, RayRobots]:
        return RaySlots(actors), RayRobots(cfg, actors)

    return make
