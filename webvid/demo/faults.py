"""The planted faults of the demo site's CDN, acted out on a live aiohttp connection.

Takes a request, the site's config, the clip's file on disk and how many times that URL has been
asked for. Produces the faulty response real sites give — 429 with ``Retry-After``, a burst of
503s, a redirect loop, media served as ``text/html``, a body cut short, a TCP reset mid-body or
before any byte, a slow body — or None when this request should be served normally. Which clip
gets which fault is decided by :mod:`webvid.synth.catalog`; bodies are streamed from disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from webvid.demo.siteconfig import SiteConfig


def too_many(cfg: SiteConfig) -> web.Response:
    return web.Response(
        status=429, text="rate limited", headers={"Retry-After": str(cfg.retry_after_s)}
    )


#: A planted fault: (request, site config, media file, how many times this URL was asked for)
#: → the faulty response, or None to serve the file normally this time.
Fault = Callable[[web.Request, SiteConfig, Path, int], Awaitable[web.StreamResponse | None]]


async def _fault_429(
    request: web.Request, cfg: SiteConfig, path: Path, n: int
) -> web.StreamResponse | None:
    return too_many(cfg) if n == 1 else None


async def _fault_503(
    request: web.Request, cfg: SiteConfig, path: Path, n: int
) -> web.StreamResponse | None:
    if n > cfg.burst_503:
        return None
    headers = {"Retry-After": str(cfg.retry_after_s)} if n == 1 else {}
    return web.Response(status=503, text="service unavailable", headers=headers)


async def _fault_redirect(
    request: web.Request, cfg: SiteConfig, path: Path, n: int
) -> web.StreamResponse:
    raise web.HTTPFound("/loop/a")


async def _fault_content_type(
    request: web.Request, cfg: SiteConfig, path: Path, n: int
) -> web.StreamResponse:
    return web.FileResponse(path, headers={"Content-Type": "text/html"})


async def _fault_truncated(
    request: web.Request, cfg: SiteConfig, path: Path, n: int
) -> web.StreamResponse:
    """Always: the full Content-Length announced, half the body sent, connection closed.

    Range is ignored on purpose (200, no Accept-Ranges), so resuming cannot rescue it."""
    return await _cut_body(request, cfg, path, abort=False)


async def _fault_reset_once(
    request: web.Request, cfg: SiteConfig, path: Path, n: int
) -> web.StreamResponse | None:
    return await _cut_body(request, cfg, path, abort=True) if n == 1 else None


async def _fault_reset_always(
    request: web.Request, cfg: SiteConfig, path: Path, n: int
) -> web.StreamResponse:
    """Every time: TCP reset before any response byte."""
    _abort(request)
    return web.Response(status=500)  # never reaches the client


async def _fault_slow(
    request: web.Request, cfg: SiteConfig, path: Path, n: int
) -> web.StreamResponse:
    """The whole body, in 8 pieces spread over ``slow_body_s``."""
    steps = 8
    size = path.stat().st_size
    resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
    resp.content_length = size
    await resp.prepare(request)
    piece = -(-size // steps)
    with path.open("rb") as fh:
        for _ in range(steps):
            await asyncio.sleep(cfg.slow_body_s / steps)
            await resp.write(fh.read(piece))
    await resp.write_eof()
    return resp


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _cut_body(
    request: web.Request, cfg: SiteConfig, path: Path, *, abort: bool
) -> web.StreamResponse:
    """Announce the whole file, send its first half (streamed from disk), then hang up."""
    size = path.stat().st_size
    chunk = cfg.chunk_bytes
    resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
    resp.content_length = size
    await resp.prepare(request)
    left = size // 2
    with path.open("rb") as fh:
        while left > 0:
            data = fh.read(min(chunk, left))
            await resp.write(data)
            left -= len(data)
    await asyncio.sleep(0.05)  # let the first half reach the client
    if abort:
        _abort(request)
    elif request.transport is not None:
        request.transport.close()
    return resp


#: Fault name (catalogue) → how the CDN route acts it out.
FAULT_RESPONSES: dict[str, Fault] = {
    "http_429": _fault_429,
    "http_503": _fault_503,
    "redirect_loop": _fault_redirect,
    "bad_content_type": _fault_content_type,
    "truncated": _fault_truncated,
    "reset_once": _fault_reset_once,
    "reset_always": _fault_reset_always,
    "slow_body": _fault_slow,
}
