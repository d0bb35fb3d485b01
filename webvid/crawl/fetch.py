"""HTTP fetching with every safety net: the request loop, pages, and media downloads.

Takes URLs and the run's session, host slots and robots cache (:mod:`webvid.crawl.net`);
produces an :class:`~webvid.crawl.items.Outcome` per request — for pages with the HTML
text, for media with a verified file committed under ``OUT/media/<xx>/<clip_id>.<ext>``.

One request = attempts (retries with jittered exponential backoff, ``Retry-After`` as a
floor) × hops (redirects followed by hand, at most ``max_redirects``, loops detected). Every
hop is checked before it is sent: scheme, host allow-list, private IP literals, robots.txt
of that hop's host; names are checked on their resolved address by the guarded resolver.
Each attempt runs under one total deadline, so a trickling server cannot hold a worker.

Media bodies stream to ``<clip_id>.part`` with sha256 computed on the way, a byte cap, a
content-type and a magic-byte check; only a complete, verified file is fsynced and renamed
to its final name. A body cut short is resumed with ``Range`` (+ ``If-Range``) when the
server accepts ranges — within a run's retries and across runs (``<clip_id>.partjson``
remembers the validators).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from webvid import contract, io
from webvid.crawl import media, polite
from webvid.crawl.config import CrawlConfig
from webvid.crawl.items import Outcome
from webvid.crawl.net import HostSlots, RobotsCache, describe_exception

log = logging.getLogger(__name__)

Handler = Callable[[aiohttp.ClientResponse, str], Awaitable[Outcome]]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class Fetcher:
    def __init__(self, cfg: CrawlConfig, session: aiohttp.ClientSession, slots: HostSlots, robots: RobotsCache, out: Path) -> None:
        self.cfg = cfg
        self.session = session
        self.slots = slots
        self.robots = robots
        self.out = Path(out)
        self.in_flight = 0

    # -- policy of one hop ---------------------------------------------------------------

    def check_url(self, url: str, hosts: frozenset[str] | None = None) -> Outcome | None:
        """A policy failure for ``url`` (bad scheme, off-host, private literal), else None."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            _ = parts.port
        except ValueError as exc:
            return Outcome("invalid_url", f"invalid URL: {exc}")
        if parts.scheme not in ("http", "https") or not host:
            return Outcome("invalid_url", f"not an http(s) URL: {url[:200]}")
        if hosts is not None and host not in hosts:
            return Outcome("off_host", f"{host} is not an allowed host")
        if not self.cfg.polite.allow_private:
            with contextlib.suppress(ValueError):
                ipaddress.ip_address(host.strip("[]"))
                if polite.is_forbidden_address(host.strip("[]"), self.cfg.polite.private_allowlist):
                    return Outcome("private_address", f"{host} is a private/loopback address (use --allow-private)")
        return None

    async def resolves_private(self, url: str) -> Outcome | None:
        """For hand-offs to yt-dlp, which connects on its own: refuse a host name that
        resolves to a forbidden address (checked once here, not per yt-dlp request)."""
        if self.cfg.polite.allow_private:
            return None
        host = urlsplit(url).hostname or ""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            return Outcome("connection_error", f"cannot resolve {host}: {exc}")
        addrs = {info[4][0] for info in infos}
        allow = self.cfg.polite.private_allowlist
        if any(polite.is_forbidden_address(a, allow) for a in addrs):
            return Outcome("private_address", f"{host} resolves to a private/loopback address")
        return None

    async def robots_check(self, url: str) -> Outcome | None:
        rules = await self.robots.rules(url)
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if rules.allowed(path):
            return None
        why = "robots.txt unreachable" if rules.disallow_all else "robots.txt disallows"
        return Outcome("robots_disallowed", f"{why} {path[:200]} for {self.cfg.polite.robots_token}")

    # -- the request loop ----------------------------------------------------------------

    async def request(self, url: str, handler: Handler, *, headers: Callable[[], dict[str, str]] | None = None,
                      hosts: frozenset[str] | None = None) -> Outcome:
        """Attempts with backoff; returns the last outcome (success or the final failure)."""
        net = self.cfg.net
        attempt = 0
        while True:
            attempt += 1
            try:
                self.in_flight += 1
                out = await self._attempt(url, handler, headers() if headers else {}, hosts)
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
                out.message = f"{out.message} (Retry-After {out.retry_after_s:.0f}s is over the limit)"
                return out
            delay = polite.backoff_delay(attempt, base_s=net.backoff_base_s, max_s=net.backoff_max_s,
                                         retry_after_s=out.retry_after_s)
            log.debug("retry %d of %s in %.2fs (%s)", attempt, url, delay, out.reason)
            await asyncio.sleep(delay)

    async def _attempt(self, url: str, handler: Handler, headers: dict[str, str], hosts: frozenset[str] | None) -> Outcome:
        seen: set[str] = set()
        current = url
        async with asyncio.timeout(self.cfg.net.total_timeout_s):
            for _hop in range(self.cfg.net.max_redirects + 1):
                refused = self.check_url(current, hosts) or await self.robots_check(current)
                if refused:
                    return refused
                seen.add(current)
                slot = self.slots.get(current)
                async with slot.use(), self.session.get(current, allow_redirects=False, headers=headers) as resp:
                    retry_after = polite.parse_retry_after(resp.headers.get("Retry-After"))
                    slot.on_response(resp.status, retry_after)
                    if resp.status in _REDIRECTS and resp.headers.get("Location"):
                        nxt = urljoin(current, resp.headers["Location"])
                        if nxt in seen:
                            return Outcome("redirect_loop", f"redirect loop back to {nxt[:200]}", http_status=resp.status)
                        current = nxt
                        continue
                    reason = polite.reason_of_http(resp.status)
                    if reason:
                        return Outcome(reason, f"HTTP {resp.status} {resp.reason or ''}".strip(),
                                       http_status=resp.status, retry_after_s=retry_after)
                    return await handler(resp, current)
        return Outcome("redirect_loop", f"more than {self.cfg.net.max_redirects} redirects")

    def opt_out(self, resp: aiohttp.ClientResponse) -> Outcome | None:
        if not self.cfg.polite.obey_x_robots_tag:
            return None
        directive = polite.x_robots_opt_out(resp.headers.getall("X-Robots-Tag", []), self.cfg.polite.robots_token)
        if directive:
            return Outcome("x_robots_tag", f"X-Robots-Tag: {directive}", http_status=resp.status,
                           content_type=resp.headers.get("Content-Type"))
        return None

    # -- pages ---------------------------------------------------------------------------

    async def get_page(self, url: str, hosts: frozenset[str] | None = None) -> tuple[Outcome, str | None, str]:
        """``(outcome, html text or None, final url)`` of an HTML page. A page opted out by
        ``X-Robots-Tag`` comes back with reason ``x_robots_tag`` *and* its text: its links
        may still be followed, its content is not used."""
        holder: dict[str, Any] = {}

        async def handler(resp: aiohttp.ClientResponse, final: str) -> Outcome:
            holder["url"] = final
            refused = self.opt_out(resp)  # the page's content is off limits; its links are not
            ctype = resp.headers.get("Content-Type")
            if media.content_type_class(ctype) not in ("html", "missing"):
                return Outcome("bad_content_type", f"expected an HTML page, got {media.mime_of(ctype)}",
                               http_status=resp.status, content_type=ctype)
            body = await resp.content.read(self.cfg.discover.page_max_bytes + 1)
            if len(body) > self.cfg.discover.page_max_bytes:
                return Outcome("too_large", "page over discover.page_max_bytes", http_status=resp.status)
            holder["text"] = body.decode(resp.charset or "utf-8", "replace")
            return refused or Outcome(None, http_status=resp.status, content_type=ctype, bytes=len(body))

        out = await self.request(url, handler, hosts=hosts)
        text = holder.get("text") if out.reason in (None, "x_robots_tag") else None
        return out, text, holder.get("url", url)

    # -- media ---------------------------------------------------------------------------

    async def download(self, url: str, cid: str) -> Outcome:
        sink = MediaSink(self, cid, url)
        try:
            out = await self.request(url, sink.handle, headers=sink.range_headers)
        except BaseException:
            sink.discard(keep_partial=True)
            raise
        if out.reason is not None:
            sink.discard(keep_partial=contract.is_retryable(out.reason))
        out.via = "direct"
        return out


class MediaSink:
    """Streams one media body to ``<clip_id>.part``; commits it only when verified."""

    def __init__(self, fetcher: Fetcher, cid: str, url: str) -> None:
        self.f = fetcher
        self.cfg = fetcher.cfg
        self.cid = cid
        self.url = url
        self.part = fetcher.out / contract.media_relpath(cid, "part")
        self.meta = fetcher.out / contract.media_relpath(cid, "partjson")

    def _saved_meta(self) -> dict[str, Any] | None:
        try:
            meta = json.loads(self.meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if meta.get("url") == self.url and self.part.is_file() else None

    def range_headers(self) -> dict[str, str]:
        meta = self._saved_meta()
        size = self.part.stat().st_size if meta else 0
        if not meta or size <= 0:
            return {}
        headers = {"Range": f"bytes={size}-"}
        validator = meta.get("etag") or meta.get("last_modified")
        if validator:
            headers["If-Range"] = validator
        return headers

    async def handle(self, resp: aiohttp.ClientResponse, final_url: str) -> Outcome:
        ctype = resp.headers.get("Content-Type")
        base = {"http_status": resp.status, "content_type": ctype}
        refused = self.f.opt_out(resp)
        if refused:
            return refused
        cls = media.content_type_class(ctype)
        if cls in ("html", "manifest", "other"):
            handoff = cls in ("html", "manifest") and media.url_ext(self.url) not in media.MEDIA_EXTS
            return Outcome("bad_content_type", f"not media: Content-Type {media.mime_of(ctype)}",
                           handoff=handoff, **base)
        offset = self._resume_offset(resp)
        total = self._expected_total(resp, offset)
        if total is not None and total > self.cfg.max_bytes:
            return Outcome("too_large", f"{total} bytes is over --max-bytes {self.cfg.max_bytes}", **base)
        if offset == 0:
            self._start_fresh(resp, total)
        hasher = hashlib.sha256()
        head = self._hash_existing(hasher) if offset else b""
        size = offset
        with open(self.part, "ab" if offset else "wb") as fh:
            async for chunk in resp.content.iter_chunked(self.cfg.net.chunk_bytes):
                size += len(chunk)
                if size > self.cfg.max_bytes:
                    return Outcome("too_large", f"body over --max-bytes {self.cfg.max_bytes}", bytes=size, **base)
                if len(head) < media.SNIFF_BYTES:
                    head += chunk[: media.SNIFF_BYTES - len(head)]
                    if len(head) >= media.SNIFF_BYTES and media.sniff(head) is None:
                        return Outcome("bad_magic", f"not a known media container (starts {head[:8]!r})", **base)
                hasher.update(chunk)
                fh.write(chunk)
        if total is not None and size < total:
            return Outcome("truncated", f"got {size} of {total} bytes", bytes=size, **base)
        if size == 0:
            return Outcome("empty_body", "empty body", bytes=0, **base)
        kind_ext = media.sniff(head)
        if kind_ext is None:
            return Outcome("bad_magic", f"not a known media container (starts {head[:8]!r})", **base)
        kind, ext = kind_ext
        rel = contract.media_relpath(self.cid, ext)
        await asyncio.to_thread(self._commit, io.safe_join(self.f.out, rel))
        return Outcome(None, bytes=size, sha256=hasher.hexdigest(), media_path=rel, media_kind=kind, **base)

    def _resume_offset(self, resp: aiohttp.ClientResponse) -> int:
        if resp.status != 206:
            return 0
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        have = self.part.stat().st_size if self.part.is_file() else 0
        if not m or int(m.group(1)) != have or have == 0:
            self.discard(keep_partial=False)  # start over on the next attempt
            raise aiohttp.ClientPayloadError("206 answer does not continue the partial file")
        return have

    def _expected_total(self, resp: aiohttp.ClientResponse, offset: int) -> int | None:
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m and m.group(3) != "*":
                return int(m.group(3))
        length = resp.headers.get("Content-Length")
        return offset + int(length) if length and length.isdigit() else None

    def _start_fresh(self, resp: aiohttp.ClientResponse, total: int | None) -> None:
        self.part.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.meta.unlink()
        if resp.headers.get("Accept-Ranges", "").lower() == "bytes" and total:
            meta = {"url": self.url, "etag": resp.headers.get("ETag"),
                    "last_modified": resp.headers.get("Last-Modified"), "total": total}
            self.meta.write_text(json.dumps(meta), encoding="utf-8")

    def _hash_existing(self, hasher: Any) -> bytes:
        head = b""
        with open(self.part, "rb") as fh:
            while chunk := fh.read(1 << 20):
                if len(head) < media.SNIFF_BYTES:
                    head += chunk[: media.SNIFF_BYTES - len(head)]
                hasher.update(chunk)
        return head

    def _commit(self, final: Path) -> None:
        if self.cfg.output.fsync_media:
            fd = os.open(self.part, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(self.part, final)
        if self.cfg.output.fsync_media:
            io.fsync_dir(final.parent)
        with contextlib.suppress(FileNotFoundError):
            self.meta.unlink()

    def discard(self, *, keep_partial: bool) -> None:
        """Drop a failed body, unless it may be resumed later with a Range request."""
        if keep_partial and self._saved_meta() is not None:
            return
        for path in (self.part, self.meta):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
