"""HTTP fetching with every safety net: the request loop, pages, and media downloads.

Takes URLs and the run's session, host slots and robots cache (:mod:`webvid.crawl.net`);
produces an :class:`~webvid.crawl.items.Outcome` per request — for pages with the HTML
text, for media with a verified file committed under ``OUT/media/<xx>/<clip_id>.<ext>``.

One request = attempts (retries with jittered exponential backoff, ``Retry-After`` as a
floor) × hops (redirects followed by hand, at most ``max_redirects``, loops detected). Every
hop is checked by the egress policy (:mod:`webvid.crawl.egress`) before it is sent —
scheme, host allow-list, IP literals in any spelling, on the canonical host the HTTP library
connects to — and then requested as that canonical URL; robots.txt of that hop's host is
obeyed; names are checked on their resolved address by the guarded resolver. Each attempt
runs under one total deadline, so a trickling server cannot hold a worker.

Opt-outs (:mod:`webvid.crawl.optout`): before a hop is requested, robots.txt Disallow for our
token — and, when crawling for training, for a known AI-training crawler — refuses it; when a
page or media response arrives, every signal on it
(:func:`webvid.crawl.optout_collect.response_signals`) is gathered onto the Outcome and
decided for the crawl's purpose before any body is read.

Media bodies go to :class:`webvid.crawl.sink.MediaSink` (sha256 on the way, byte cap,
content-type and magic checks, verified commit, Range resume).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urljoin

import aiohttp

from webvid import contract
from webvid.crawl import media, optout, optout_collect, polite
from webvid.crawl.egress import EgressPolicy, PrivateAddressError, Verdict
from webvid.crawl.items import Outcome
from webvid.crawl.net import HostSlots, RobotsCache, describe_exception, host_key
from webvid.crawl.recipe import CrawlRecipe
from webvid.crawl.sink import Disk, MediaSink

log = logging.getLogger(__name__)

Handler = Callable[[aiohttp.ClientResponse, str], Awaitable[Outcome]]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Fetcher:
    def __init__(
        self,
        cfg: CrawlRecipe,
        session: aiohttp.ClientSession,
        slots: HostSlots,
        robots: RobotsCache,
        disk: Disk,
    ) -> None:
        self.cfg = cfg
        self.disk = disk
        self.session = session
        self.slots = slots
        self.robots = robots
        self.policy = EgressPolicy.from_config(cfg.polite)
        self.purpose = cfg.polite.purpose
        #: robots rules of each host asked so far (host_key → rules), for the responses' checks
        self.host_rules: dict[str, polite.RobotsRules] = {}
        # (scheme, netloc, hosts) of ASCII URLs that passed: the verdict depends on nothing
        # else, and a full parse per item costs more than the rest of the check
        self._passed: set[tuple[str, str, frozenset[str] | None]] = set()
        self.in_flight = 0

    # -- policy of one hop ---------------------------------------------------------------

    def check_url(self, url: str, hosts: frozenset[str] | None = None) -> Outcome | None:
        """A policy failure for ``url`` (bad scheme or host, off-host, private literal in
        any spelling), else None. The request itself is checked again, in full, per hop."""
        try:
            parts = media.split_url(url)
        except ValueError as exc:
            return Outcome("invalid_url", f"invalid URL: {exc}")
        key = (parts.scheme, parts.netloc, hosts)
        if key in self._passed:
            return None
        refused = _refusal(self.policy.check(url, hosts))
        if refused is None and url.isascii():
            if len(self._passed) > 4096:
                self._passed.clear()
            self._passed.add(key)
        return refused

    async def resolves_private(self, url: str) -> Outcome | None:
        """For hand-offs to yt-dlp: refuse a host name that resolves to a forbidden
        address (a fail-fast; yt-dlp's own requests pass the policy in its proxy)."""
        if self.cfg.polite.allow_private:
            return None
        verdict = self.policy.check(url)
        if verdict.url is None:
            return _refusal(verdict)
        try:
            await self.policy.resolve(verdict.host, verdict.url.port or 0)
        except PrivateAddressError as exc:
            return Outcome("private_address", str(exc))
        except OSError as exc:
            return Outcome("connection_error", f"cannot resolve {verdict.host}: {exc}")
        return None

    async def robots_check(self, url: str, on: str = "media") -> Outcome | None:
        """A refusal by robots.txt: Disallow for our token, or (crawling for training) for a
        group naming a known AI-training crawler; None when the URL may be fetched."""
        rules = await self.robots.rules(url)
        self.host_rules[host_key(url)] = rules
        path = _path_of(url)
        token = self.cfg.polite.robots_token
        if not rules.allowed(path):
            why = "robots.txt unreachable" if rules.disallow_all else "robots.txt disallows"
            value = f"{why} {path[:200]} for {token}"
            signal = optout.Signal("robots", on, value, optout.same_for_all(optout.DENY))
            return Outcome("robots_disallowed", value, signals=[signal])
        if rules.signals is not None and self.purpose != "search":
            signal = rules.signals.ai_denial(path, on)
            if signal is not None:
                return Outcome(
                    "robots_disallowed",
                    f"robots.txt {signal.value} (an AI-training crawler: we crawl for "
                    f"{self.purpose}, so its group applies to us)",
                    signals=[signal],
                )
        return None

    def screen(self, resp: aiohttp.ClientResponse, on: str) -> tuple[Outcome | None, list[Any]]:
        """``(refusal or None, signals)``: every opt-out signal on a response, decided for
        the crawl's purpose. The host's rules were fetched by :meth:`robots_check` of the hop."""
        url = str(resp.url)
        rules = self.host_rules.get(host_key(url), polite.ALLOW_ALL)
        signals = optout_collect.response_signals(
            resp.headers,
            rules,
            _path_of(url),
            on,
            token=self.cfg.polite.robots_token,
            x_robots_tag=self.cfg.polite.obey_x_robots_tag,
        )
        decision = optout.decide(signals, self.purpose)
        if not decision.deny:
            return None, signals
        return Outcome(
            decision.reason,
            decision.message,
            http_status=resp.status,
            content_type=resp.headers.get("Content-Type"),
            signals=signals,
        ), signals

    # -- the request loop ----------------------------------------------------------------

    async def request(
        self,
        url: str,
        handler: Handler,
        *,
        headers: Callable[[], dict[str, str]] | None = None,
        hosts: frozenset[str] | None = None,
        deadline_s: float | None = None,
        on: str = "media",
    ) -> Outcome:
        """Attempts with backoff; returns the last outcome (success or the final failure).

        Each attempt runs under ``deadline_s`` (default ``net.total_timeout_s``); the reads
        stay under ``net.read_timeout_s`` whatever the deadline."""
        net = self.cfg.net
        attempt = 0
        while True:
            attempt += 1
            try:
                self.in_flight += 1
                out = await self._attempt(
                    url, handler, headers() if headers else {}, hosts, deadline_s, on
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason, detail = describe_exception(exc)
                out = Outcome(reason, detail)
            finally:
                self.in_flight -= 1
            out.attempts = attempt
            if out.reason is None or not contract.is_retryable(out.reason) or attempt > net.retries:
                return out
            if out.retry_after_s is not None and out.retry_after_s > net.max_retry_after_s:
                out.message = (
                    f"{out.message} (Retry-After {out.retry_after_s:.0f}s is over the limit)"
                )
                return out
            delay = polite.backoff_delay(
                attempt,
                base_s=net.backoff_base_s,
                max_s=net.backoff_max_s,
                retry_after_s=out.retry_after_s,
            )
            log.debug("retry %d of %s in %.2fs (%s)", attempt, url, delay, out.reason)
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        url: str,
        handler: Handler,
        headers: dict[str, str],
        hosts: frozenset[str] | None,
        deadline_s: float | None = None,
        on: str = "media",
    ) -> Outcome:
        seen: set[str] = set()
        current = url
        net = self.cfg.net
        # a longer deadline than the session's needs the session's total lifted for this request
        # (passing timeout=None would drop every timeout: give the keyword only when needed)
        extra: dict[str, Any] = {}
        if deadline_s is not None:
            extra["timeout"] = aiohttp.ClientTimeout(
                total=None,
                connect=net.connect_timeout_s,
                sock_connect=net.connect_timeout_s,
                sock_read=net.read_timeout_s,
            )
        async with asyncio.timeout(deadline_s or net.total_timeout_s):
            for _hop in range(self.cfg.net.max_redirects + 1):
                verdict = self.policy.check(current, hosts)
                if verdict.url is None:
                    return _refusal(verdict)  # type: ignore[return-value]
                current = str(verdict.url)  # what is connected to, joined against, logged
                refused = await self.robots_check(current, on)
                if refused:
                    return refused
                seen.add(current)
                slot = self.slots.get(current)
                async with (
                    slot.use(),
                    self.session.get(
                        verdict.url, allow_redirects=False, headers=headers, **extra
                    ) as resp,
                ):
                    retry_after = polite.parse_retry_after(resp.headers.get("Retry-After"))
                    slot.on_response(resp.status, retry_after)
                    if resp.status in _REDIRECTS and resp.headers.get("Location"):
                        nxt = urljoin(current, resp.headers["Location"])
                        if nxt in seen:
                            return Outcome(
                                "redirect_loop",
                                f"redirect loop back to {nxt[:200]}",
                                http_status=resp.status,
                            )
                        current = nxt
                        continue
                    reason = polite.reason_of_http(resp.status)
                    if reason:
                        return Outcome(
                            reason,
                            f"HTTP {resp.status} {resp.reason or ''}".strip(),
                            http_status=resp.status,
                            retry_after_s=retry_after,
                        )
                    return await handler(resp, current)
        return Outcome("redirect_loop", f"more than {self.cfg.net.max_redirects} redirects")

    # -- pages ---------------------------------------------------------------------------

    async def get_page(
        self, url: str, hosts: frozenset[str] | None = None
    ) -> tuple[Outcome, str | None, str]:
        """``(outcome, html text or None, final url)`` of an HTML page, the response's opt-out
        signals on the outcome. A page a signal opts out (reason ``x_robots_tag`` or
        ``opt_out``) comes back with its text too: its links may still be followed, its
        content is not used."""
        holder: dict[str, Any] = {}

        async def handler(resp: aiohttp.ClientResponse, final: str) -> Outcome:
            holder["url"] = final
            # the page's content may be off limits; its links are not
            refused, signals = self.screen(resp, "page")
            ctype = resp.headers.get("Content-Type")
            if media.content_type_class(ctype) not in ("html", "missing"):
                return Outcome(
                    "bad_content_type",
                    f"expected an HTML page, got {media.mime_of(ctype)}",
                    http_status=resp.status,
                    content_type=ctype,
                )
            body = bytearray()  # read(n) returns what has arrived: read to the end or limit
            while len(body) <= self.cfg.discover.page_max_bytes:
                chunk = await resp.content.read(self.cfg.discover.page_max_bytes + 1 - len(body))
                if not chunk:
                    break
                body += chunk
            if len(body) > self.cfg.discover.page_max_bytes:
                return Outcome(
                    "too_large", "page over discover.page_max_bytes", http_status=resp.status
                )
            holder["text"] = body.decode(resp.charset or "utf-8", "replace")
            return refused or Outcome(
                None, http_status=resp.status, content_type=ctype, bytes=len(body), signals=signals
            )

        out = await self.request(url, handler, hosts=hosts, on="page")
        text = holder.get("text") if out.reason in (None, "x_robots_tag", "opt_out") else None
        return out, text, holder.get("url", url)

    # -- media ---------------------------------------------------------------------------

    async def download(self, url: str, cid: str) -> Outcome:
        """Fetch ``url`` as the media of clip ``cid`` (see :mod:`webvid.crawl.sink`)."""
        seen: list[Any] = []

        def opt_out(resp: aiohttp.ClientResponse) -> Outcome | None:
            refused, seen[:] = self.screen(resp, "media")
            return refused

        sink = MediaSink(self.cfg, self.disk, opt_out, cid, url)
        try:
            out = await self.request(url, sink.handle, headers=sink.range_headers)
        except BaseException:
            await sink.discard(keep_partial=True)
            raise
        if not out.signals:
            out.signals = list(seen)  # allowed: the signals seen on the last response
        if out.reason is not None:
            await sink.discard(keep_partial=contract.is_retryable(out.reason))
        out.via = "direct"
        return out


def _path_of(url: str) -> str:
    """Path and query of ``url``, as robots.txt rules and TDMRep locations are matched."""
    parts = media.split_url(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _refusal(verdict: Verdict) -> Outcome | None:
    """The Outcome of a policy refusal, None when ``verdict`` allows."""
    if verdict.reason is None:
        return None
    return Outcome(verdict.reason, verdict.message)
