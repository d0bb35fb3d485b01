"""Purpose-built loopback servers for the crawl tests (real aiohttp, real sockets).

``site`` serves one route per behaviour the crawler must handle — plain media, 503 bursts,
429 with Retry-After, redirects and loops, X-Robots-Tag, wrong types, truncation, Range
resume, slow bodies, robots.txt — and logs every request so tests can check what was (and
was not) asked for. It runs on its own thread and loop, so a test can call the synchronous
``webvid.crawl.run.run`` against it.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from aiohttp import web

from webvid.crawl.config import CrawlConfig, NetConfig, OutputConfig, PoliteConfig


def fake_mp4(name: str, size: int = 4000) -> bytes:
    """A structurally valid MP4 of ``size`` bytes (at least 32): an ``ftyp`` box, then one
    ``mdat`` box covering the rest, holding a payload unique to name."""
    ftyp = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    mdat_size = max(8, size - len(ftyp))
    seed = hashlib.sha256(name.encode()).digest()
    payload = (seed * (mdat_size // len(seed) + 1))[: mdat_size - 8]
    return ftyp + mdat_size.to_bytes(4, "big") + b"mdat" + payload


def fake_jpg(name: str, size: int = 1500) -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + fake_mp4(name, size)[24:]


@dataclass
class SiteState:
    robots: str = "User-agent: *\nDisallow: /private/\n"
    hits: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    big_size: int = 300_000


def make_app(state: SiteState) -> web.Application:
    async def on_request(request: web.Request, handler):
        state.hits[request.path] += 1
        state.log.append((request.path_qs, dict(request.headers)))
        return await handler(request)

    app = web.Application(middlewares=[web.middleware(on_request)])
    r = app.router

    async def robots(_: web.Request) -> web.Response:
        if state.robots.startswith("REDIRECT "):
            raise web.HTTPFound(state.robots.split(" ", 1)[1])
        return web.Response(text=state.robots)

    async def video(req: web.Request) -> web.Response:
        return web.Response(body=fake_mp4(req.match_info["name"]), content_type="video/mp4")

    async def image(req: web.Request) -> web.Response:
        return web.Response(body=fake_jpg(req.match_info["name"]), content_type="image/jpeg")

    async def flaky(req: web.Request) -> web.Response:
        name = req.match_info["name"]
        fails = int(req.query.get("fail", "2"))
        if state.hits[req.path] <= fails:
            return web.Response(status=503, text="busy: " * 50, headers={"Retry-After": "0"})
        return web.Response(body=fake_mp4(name), content_type="video/mp4")

    async def ratelimit(req: web.Request) -> web.Response:
        if state.hits[req.path] <= 1:
            return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
        return web.Response(body=fake_mp4(req.match_info["name"]), content_type="video/mp4")

    async def always(req: web.Request) -> web.Response:
        code = int(req.match_info["code"])
        return web.Response(status=code, text=f"status {code}")

    async def redirect(req: web.Request) -> web.Response:
        raise web.HTTPFound(req.query["to"])

    async def loop_a(_: web.Request) -> web.Response:
        raise web.HTTPFound("/loop/b")

    async def loop_b(_: web.Request) -> web.Response:
        raise web.HTTPFound("/loop/a")

    async def optout(req: web.Request) -> web.Response:
        tag = req.query.get("tag", "noai")
        return web.Response(
            body=fake_mp4(req.match_info["name"]),
            content_type="video/mp4",
            headers={"X-Robots-Tag": tag},
        )

    async def as_html(req: web.Request) -> web.Response:
        return web.Response(body=fake_mp4(req.match_info["name"]), content_type="text/html")

    async def typed(req: web.Request) -> web.Response:
        kind = req.match_info["kind"]
        bodies = {
            "text": (b"just some text", "text/plain"),
            "garbage": (b"\x13\x37" * 500, "application/octet-stream"),
            "empty": (b"", "video/mp4"),
        }
        body, ctype = bodies[kind]
        return web.Response(body=body, content_type=ctype)

    async def big(req: web.Request) -> web.StreamResponse:
        data = fake_mp4("big", state.big_size)
        if req.query.get("nolen"):
            resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
            resp.enable_chunked_encoding()
            await resp.prepare(req)
            for i in range(0, len(data), 8192):
                await resp.write(data[i : i + 8192])
            await resp.write_eof()
            return resp
        return web.Response(body=data, content_type="video/mp4")

    async def truncated(req: web.Request) -> web.StreamResponse:
        data = fake_mp4(req.match_info["name"], 20_000)
        resp = web.StreamResponse(
            headers={"Content-Type": "video/mp4", "Content-Length": str(len(data) * 2)}
        )
        await resp.prepare(req)
        await resp.write(data)
        req.transport.close() if req.transport else None
        return resp

    async def resumable(req: web.Request) -> web.StreamResponse:
        """Range support; the first full request dies halfway through the body."""
        data = fake_mp4(req.match_info["name"], 200_000)
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        rng = req.headers.get("Range")
        if rng and req.headers.get("If-Range", etag) == etag:
            start = int(rng.split("=")[1].split("-")[0])
            part = data[start:]
            return web.Response(
                status=206,
                body=part,
                headers={
                    "Content-Type": "video/mp4",
                    "Accept-Ranges": "bytes",
                    "ETag": etag,
                    "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}",
                },
            )
        resp = web.StreamResponse(
            headers={
                "Content-Type": "video/mp4",
                "Accept-Ranges": "bytes",
                "ETag": etag,
                "Content-Length": str(len(data)),
            }
        )
        await resp.prepare(req)
        if state.hits[req.path] <= 1:
            await resp.write(data[: len(data) // 2])
            await asyncio.sleep(0.05)
            if req.transport:
                req.transport.abort()
            return resp
        await resp.write(data)
        await resp.write_eof()
        return resp

    async def slow(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": "100000"})
        await resp.prepare(req)
        data = fake_mp4("slow", 100_000)
        for i in range(0, len(data), 100):
            await resp.write(data[i : i + 100])
            await asyncio.sleep(0.2)
        return resp

    r.add_get("/robots.txt", robots)
    r.add_get("/v/{name}.mp4", video)
    r.add_get("/private/v/{name}.mp4", video)
    r.add_get("/img/{name}.jpg", image)
    r.add_get("/flaky/{name}.mp4", flaky)
    r.add_get("/ratelimit/{name}.mp4", ratelimit)
    r.add_get("/status/{code}", always)
    r.add_get("/redirect", redirect)
    r.add_get("/loop/a", loop_a)
    r.add_get("/loop/b", loop_b)
    r.add_get("/optout/{name}.mp4", optout)
    r.add_get("/html/{name}.mp4", as_html)
    r.add_get("/typed/{kind}", typed)
    r.add_get("/big.mp4", big)
    r.add_get("/trunc/{name}.mp4", truncated)
    r.add_get("/resume/{name}.mp4", resumable)
    r.add_get("/slow.mp4", slow)
    return app


class ThreadServer:
    """An aiohttp app on 127.0.0.1 (or another loopback address) in a background thread."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1") -> None:
        self.app, self.host = app, host
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.url = ""

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self.host, 0)
        self.loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{self.host}:{port}"
        self.runner = runner
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class Site:
    url: str
    state: SiteState

    def requests_to(self, prefix: str) -> list[str]:
        return [p for p, _ in self.state.log if p.startswith(prefix)]


@pytest.fixture
def site() -> Iterator[Site]:
    state = SiteState()
    with ThreadServer(make_app(state)) as server:
        yield Site(server.url, state)


def fast_config(**kw: object) -> CrawlConfig:
    """Loopback-friendly settings: private allowed, quick backoff, no per-host throttling."""
    polite = kw.pop("polite", None) or PoliteConfig(
        allow_private=True,
        per_host_rps=1000.0,
        per_host_burst=100,
        per_host_concurrency=16,
        host_429_pause_s=0.2,
    )
    net = kw.pop("net", None) or NetConfig(
        retries=3, backoff_base_s=0.05, backoff_max_s=2.0, total_timeout_s=20.0, read_timeout_s=5.0
    )
    output = kw.pop("output", None) or OutputConfig(
        fsync_media=False, flush_every=50, buffer_bytes=64 * 1024
    )
    kw.setdefault("concurrency", 8)
    return CrawlConfig(polite=polite, net=net, output=output, **kw)  # type: ignore[arg-type]


@pytest.fixture
def crawl_config():
    return fast_config


@pytest.fixture
def kit() -> SimpleNamespace:
    """The server building blocks, for tests that need their own routes or processes."""
    return SimpleNamespace(
        SiteState=SiteState,
        ThreadServer=ThreadServer,
        make_app=make_app,
        fake_mp4=fake_mp4,
        fake_jpg=fake_jpg,
        Site=Site,
    )
