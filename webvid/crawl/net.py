"""The network plumbing of one crawl: session, guarded DNS, per-host slots, robots cache.

Takes a :class:`~webvid.crawl.recipe.CrawlRecipe`; produces

* :func:`make_session` — one ``aiohttp.ClientSession`` per run: pooled connector with a
  global and a per-host connection limit, an in-process DNS cache, every ``ClientTimeout``
  field set, our honest User-Agent, and (unless ``allow_private``) the egress policy of
  :mod:`webvid.crawl.egress` twice: a resolver that drops private, loopback and link-local
  addresses, and a socket factory that refuses to open a socket to one (IP literals never
  meet the resolver) — so the check is on the address actually connected to, after every
  redirect, and DNS rebinding cannot slip past it;
* the politeness seam, as protocols: :class:`PoliteSlots` (per host: ``get(url).use()`` holds
  a turn — acquire on entry, release on exit —, ``on_response`` reports a status,
  ``backing_off()`` counts paused hosts) and :class:`RobotsSource` (``rules(url)``); a
  :data:`Politeness` hook builds both for one unit's session. This module holds the local
  implementation; :mod:`webvid.scale.limiter` holds the cluster-wide one (Ray);
* :class:`HostSlots` — per host: a concurrency semaphore, a token bucket (lowered by
  robots ``Crawl-delay``), and a pause that 429/503 answers extend (adaptive back-off);
* :class:`RobotsCache` — robots.txt fetched once per host, shared by all waiters, and with it
  the host's TDMRep file ``/.well-known/tdmrep.json`` (byte-capped, under the same egress
  checks per hop, and through the host's polite slot): the rules carry both.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable
from urllib.parse import SplitResult, urljoin

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from webvid.crawl import optout_tdm, polite
from webvid.crawl.egress import EgressPolicy, PrivateAddressError, canonical_host
from webvid.crawl.media import split_url
from webvid.crawl.recipe import CrawlRecipe

log = logging.getLogger(__name__)

__all__ = ["GuardedResolver", "PrivateAddressError"]


@runtime_checkable
class PoliteSlot(Protocol):
    """One host's politeness, as a request sees it."""

    def use(self) -> AbstractAsyncContextManager[None]:
        """``async with slot.use():`` one request's turn (a connection of the host's quota, a
        token of its rate, no start while the host is paused), given back on exit."""
        ...

    def on_response(self, status: int, retry_after_s: float | None) -> None:
        """Report an answer's status (429/503 pause the host and may lower its rate)."""
        ...


@runtime_checkable
class PoliteSlots(Protocol):
    """The per-host slots of a crawl: :class:`HostSlots` here, ``RaySlots`` on a cluster."""

    def get(self, url: str) -> PoliteSlot:
        """The slot of ``url``'s host (:func:`host_key`)."""
        ...

    def backing_off(self) -> int:
        """How many hosts are paused by a 429/503 right now."""
        ...


@runtime_checkable
class RobotsSource(Protocol):
    """robots.txt rules per host: :class:`RobotsCache` here, ``RayRobots`` on a cluster."""

    async def rules(self, url: str) -> polite.RobotsRules:
        """The rules for ``url``'s host; raises when its robots.txt cannot be reached."""
        ...


#: builds one unit's slots and robots source from its config and session
Politeness = Callable[[CrawlRecipe, aiohttp.ClientSession], tuple[PoliteSlots, RobotsSource]]


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver, then drops the addresses the egress
    policy forbids (the connector connects to what is left, resolved once)."""

    def __init__(self, allowlist: tuple[str, ...] = (), policy: EgressPolicy | None = None) -> None:
        self._inner = DefaultResolver()
        self._policy = policy or EgressPolicy(False, allowlist)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = set(self._policy.allowed_addresses(host, [r["host"] for r in results]))
        return [r for r in results if r["host"] in allowed]

    async def close(self) -> None:
        await self._inner.close()


def host_key(url: str) -> str:
    """``scheme://host:port`` — the unit of politeness."""
    parts = split_url(url)
    return _host_key(parts.scheme, parts.netloc)


@functools.lru_cache(maxsize=4096)
def _host_key(scheme: str, netloc: str) -> str:
    """Per (scheme, netloc), not per URL: a table's URLs are all different, its hosts few.
    The host is the canonical one the connection goes to (``１２７。０。０。１`` and
    ``127.0.0.1`` share one slot and one robots.txt)."""
    try:
        parsed = yarl.URL.build(scheme=scheme, authority=netloc)
        host = canonical_host(parsed.raw_host or "")
        port = parsed.port or (443 if scheme == "https" else 80)
    except (ValueError, TypeError):
        parts = SplitResult(scheme, netloc, "", "", "")
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


@contextlib.asynccontextmanager
async def make_session(cfg: CrawlRecipe) -> AsyncIterator[aiohttp.ClientSession]:
    net = cfg.net
    policy = EgressPolicy.from_config(cfg.polite)
    guarded = not cfg.polite.allow_private
    connector = aiohttp.TCPConnector(
        limit=cfg.concurrency + cfg.discover.page_concurrency + 8,
        limit_per_host=cfg.polite.per_host_concurrency + 2,  # +2: robots.txt never starves
        use_dns_cache=True,
        ttl_dns_cache=net.dns_cache_ttl_s,
        resolver=GuardedResolver(policy=policy) if guarded else None,
        socket_factory=policy.socket_factory() if guarded else None,
        keepalive_timeout=30,
    )
    timeout = aiohttp.ClientTimeout(
        total=net.total_timeout_s,
        connect=net.connect_timeout_s,
        sock_connect=net.connect_timeout_s,
        sock_read=net.read_timeout_s,
        ceil_threshold=5,
    )
    headers = {"User-Agent": cfg.polite.user_agent, "Accept-Encoding": "identity"}
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers=headers,
        auto_decompress=False,
        max_line_size=16384,
        max_field_size=16384,
    ) as session:
        yield session


class HostSlot:
    def __init__(self, cfg: CrawlRecipe) -> None:
        p = cfg.polite
        self.sem = asyncio.Semaphore(p.per_host_concurrency)
        self.bucket = polite.TokenBucket(p.per_host_rps, p.per_host_burst)
        self.pause_until = 0.0
        self.consecutive_429 = 0
        self.base_pause_s = p.host_429_pause_s
        self.max_pause_s = cfg.net.backoff_max_s

    def use(self) -> _SlotUse:
        """``async with slot.use():`` one request's turn: a connection of the host's quota,
        a token of its rate, and no start while the host is paused."""
        return _SlotUse(self)

    async def _acquire(self) -> None:
        await self.sem.acquire()
        try:
            wait = self.bucket.reserve(time.monotonic())
            while True:
                wait = max(wait, self.pause_until - time.monotonic())
                if wait <= 0:
                    return
                await asyncio.sleep(wait)
                wait = 0.0
        except BaseException:
            self.sem.release()
            raise

    def on_response(self, status: int, retry_after_s: float | None) -> None:
        if status == 429:
            self.consecutive_429 += 1
            pause = self.base_pause_s * 2 ** (self.consecutive_429 - 1)
            pause = min(self.max_pause_s, max(pause, retry_after_s or 0.0))
            self.pause_until = max(self.pause_until, time.monotonic() + pause)
            if self.consecutive_429 >= 3:  # keeps answering 429: halve our rate too
                self.bucket.set_rate(self.bucket.rate / 2)
        elif status == 503 and retry_after_s:
            self.pause_until = max(
                self.pause_until, time.monotonic() + min(retry_after_s, self.max_pause_s)
            )
        elif status < 400:
            self.consecutive_429 = 0

    @property
    def backing_off(self) -> bool:
        return self.pause_until > time.monotonic()


class _SlotUse:
    """The context manager of :meth:`HostSlot.use` (a class: once per request, cheaper than
    a generator-based one)."""

    __slots__ = ("slot",)

    def __init__(self, slot: HostSlot) -> None:
        self.slot = slot

    async def __aenter__(self) -> None:
        await self.slot._acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.slot.sem.release()


class HostSlots:
    def __init__(self, cfg: CrawlRecipe) -> None:
        self.cfg = cfg
        self.slots: dict[str, HostSlot] = {}

    def get(self, url: str) -> HostSlot:
        key = host_key(url)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = HostSlot(self.cfg)
        return slot

    def backing_off(self) -> int:
        return sum(1 for s in self.slots.values() if s.backing_off)


class RobotsCache:
    """robots.txt per host, fetched once; concurrent askers wait for the same fetch."""

    def __init__(self, cfg: CrawlRecipe, session: aiohttp.ClientSession, slots: HostSlots) -> None:
        self.cfg = cfg
        self.session = session
        self.slots = slots
        self.policy = EgressPolicy.from_config(cfg.polite)
        self._rules: dict[str, asyncio.Future[polite.RobotsRules]] = {}
        #: robots.txt fetches started per host key (1 each, unless a fetch was cancelled)
        self.fetches: dict[str, int] = {}

    async def rules(self, url: str) -> polite.RobotsRules:
        """The rules for ``url``'s host. A host whose robots.txt cannot be reached at all
        (refused, reset, private address) raises that error for every item of the host, so
        they fail fast with a retryable reason; a 5xx robots.txt means "disallow all"."""
        if not self.cfg.polite.obey_robots:
            return polite.ALLOW_ALL
        key = host_key(url)
        fut = self._rules.get(key)
        if fut is None:
            fut = self._rules[key] = asyncio.get_running_loop().create_future()
            self.fetches[key] = self.fetches.get(key, 0) + 1
            try:
                rules = await self._fetch(key)
                if not rules.disallow_all:
                    rules = dataclasses.replace(rules, tdm=await self._fetch_tdm(key))
            except asyncio.CancelledError:
                del self._rules[key]
                fut.cancel()
                raise
            except Exception as exc:
                fut.set_exception(exc)
                fut.exception()  # retrieved here: no "never retrieved" warning
                raise
            fut.set_result(rules)
            self._apply_delay(key, rules)
        if fut.done():
            return fut.result()
        return await asyncio.shield(fut)

    async def _fetch(self, key: str) -> polite.RobotsRules:
        url = key + "/robots.txt"
        token = self.cfg.polite.robots_token
        status = 0
        for attempt in range(3):
            if attempt:
                await asyncio.sleep(self.cfg.net.backoff_base_s * 2**attempt)
            try:
                async with asyncio.timeout(min(60.0, self.cfg.net.total_timeout_s)):
                    status, body = await self._get_following(url)
            except (TimeoutError, aiohttp.ClientError) as exc:
                if attempt == 2 or (
                    isinstance(exc, aiohttp.ClientConnectorError)
                    and isinstance(exc.os_error, PrivateAddressError)
                ):
                    raise
                continue
            if status < 500 and status != 429:
                return polite.robots_for_status(status, body.decode("utf-8", "replace"), token)
        log.warning(
            "robots.txt of %s answers HTTP %d: treating the host as disallowed", key, status
        )
        return polite.DISALLOW_ALL

    async def _fetch_tdm(self, key: str) -> optout_tdm.TdmFile | None:
        """The host's tdmrep.json, None when it has none. Unreachable, refused or not 200
        means no file (TDMRep: the server does not implement the protocol); one attempt,
        under the robots.txt deadline, holding a turn of the host's slot."""
        url = key + optout_tdm.TDM_FILE_PATH
        try:
            async with (
                self.slots.get(url).use(),
                asyncio.timeout(min(60.0, self.cfg.net.total_timeout_s)),
            ):
                status, body = await self._get_following(url, optout_tdm.TDM_FILE_MAX_BYTES + 1)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.info("tdmrep.json of %s unreachable (%s): no TDMRep file", key, exc)
            return None
        return optout_tdm.parse_tdm_file(body) if status == 200 else None

    async def _get_following(self, url: str, max_bytes: int = 512 * 1024) -> tuple[int, bytes]:
        """GET robots.txt (or tdmrep.json), following redirects by hand so every hop's address
        is checked (a robots.txt must not bounce us to 169.254.169.254 or 127.0.0.1)."""
        for _ in range(self.cfg.net.max_redirects + 1):
            verdict = self.policy.check(url)
            if verdict.url is None:
                log.warning(
                    "robots.txt at %s refused (%s): host treated as disallowed",
                    url[:200],
                    verdict.message,
                )
                return 503, b""
            async with self.session.get(verdict.url, allow_redirects=False) as resp:
                if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                    url = urljoin(url, resp.headers["Location"])
                    continue
                return resp.status, await _read_capped(resp, max_bytes)
        return 503, b""  # too many redirects: "unreachable" → disallow all

    def _apply_delay(self, key: str, rules: polite.RobotsRules) -> None:
        if rules.crawl_delay_s:
            delay = min(rules.crawl_delay_s, self.cfg.polite.max_crawl_delay_s)
            slot = self.slots.slots.setdefault(key, HostSlot(self.cfg))
            slot.bucket.set_rate(
                min(slot.bucket.rate, 1.0 / delay if delay > 0 else slot.bucket.rate)
            )
            slot.bucket.burst = 1
            slot.bucket.tokens = min(slot.bucket.tokens, 1.0)


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, up to ``max_bytes`` of it (``read(n)`` alone may stop at what is buffered)."""
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        buf += chunk
        if len(buf) >= max_bytes:
            break
    return bytes(buf[:max_bytes])


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """``(reason, detail)`` of a network exception raised while fetching."""
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return "timeout", "timed out" + (f": {exc}" if str(exc) else "")
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(
        exc.os_error, PrivateAddressError
    ):
        return "private_address", str(exc.os_error)
    if isinstance(exc, PrivateAddressError):
        return "private_address", str(exc)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "truncated", f"body cut short: {_short(exc)}"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid_url", f"invalid URL: {exc}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection_error", "server disconnected"
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return "connection_error", f"{type(exc).__name__}: {_short(exc)}"
    return "connection_error", f"{type(exc).__name__}: {_short(exc)}"


def _short(exc: BaseException, n: int = 200) -> str:
    text: Any = str(exc) or type(exc).__name__
    return text if len(text) <= n else text[: n - 1] + "…"
