"""The browser's HTTP server: static pages and read-only JSON/media endpoints (aiohttp).

Takes an opened :class:`~webvid.browse.catalog.Root`; produces an :class:`aiohttp.web.Application`
with GET routes only — there is no endpoint that writes anything. Media is served by sample id
(``/media/{src}/{id}``), looked up in the metadata, straight from the shard tar by offset with
HTTP ``Range`` support; no route takes a path from the client. DuckDB work runs in a worker
thread, one request at a time (one connection); a SQL query from the SQL page is row-capped
and interrupted after :data:`SQL_SECONDS`. On loopback, requests whose ``Host`` is not a
loopback name are refused (a DNS-rebinding page cannot read the data).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import json
import math
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from webvid import query as q
from webvid.browse import detail, overview, tarindex
from webvid.browse import items as it
from webvid.browse.catalog import Root
from webvid.browse.textsearch import TextSearch
from webvid.errors import WebvidError

SQL_ROWS = 500
SQL_SECONDS = 10.0
CHUNK = 1 << 20
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'"
)
ROOT_KEY = web.AppKey("root", Root)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _static_files() -> dict[str, bytes]:
    folder = resources.files("webvid.browse") / "static"
    return {
        f.name: f.read_bytes()
        for f in folder.iterdir()
        if f.is_file() and Path(f.name).suffix in STATIC_TYPES
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, bytes):
        return o.hex()
    return str(o)


def _clean(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


def _json(data: Any, status: int = 200) -> web.Response:
    text = json.dumps(_clean(data), default=_json_default, allow_nan=False)
    return web.Response(text=text, status=status, content_type="application/json")


class Browser:
    """The request handlers over one root."""

    def __init__(self, root: Root, *, loopback_only: bool = True) -> None:
        self.root = root
        self.loopback_only = loopback_only
        self.static = _static_files()
        self.search = TextSearch(root)
        self.lock = asyncio.Lock()

    async def db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in a worker thread, one at a time (the connection is not shared)."""
        async with self.lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.loopback_only and host_name(request.host) not in LOOPBACK_NAMES:
            return web.Response(status=403, text="webvid browse: not a loopback Host")
        try:
            resp = await handler(request)
        except WebvidError as exc:
            return _json({"error": str(exc)}, status=400)
        except ValueError as exc:
            return _json({"error": f"bad parameter: {exc}"}, status=400)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        return resp

    async def page(self, request: web.Request) -> web.Response:
        return self._static("index.html")

    async def static_file(self, request: web.Request) -> web.Response:
        return self._static(request.match_info["name"])

    def _static(self, name: str) -> web.Response:
        body = self.static.get(name)
        if body is None:
            raise web.HTTPNotFound()
        resp = web.Response(body=body, content_type=STATIC_TYPES[Path(name).suffix])
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    async def facets(self, request: web.Request) -> web.Response:
        out = await self.db(it.facets, self.root)
        out["thresholds"] = await self.db(detail.thresholds, self.root)
        out["indexes"] = [overview._rel(self.root, p) for p in self.root.indexes]
        return _json(out)

    async def overview(self, request: web.Request) -> web.Response:
        return _json(await self.db(overview.overview, self.root))

    async def run(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if not 0 <= n < len(self.root.runs):
            raise web.HTTPNotFound()
        return _json(await self.db(overview.run_curves, self.root.runs[n]))

    async def plot(self, request: web.Request) -> web.Response:
        n, j = int(request.match_info["n"]), int(request.match_info["j"])
        if not 0 <= n < len(self.root.reports):
            raise web.HTTPNotFound()
        plots = await self.db(overview.report_plots, self.root.reports[n])
        if not 0 <= j < len(plots):
            raise web.HTTPNotFound()
        return web.Response(body=plots[j][1], content_type="image/png")

    async def samples(self, request: web.Request) -> web.Response:
        f = filters_from(request.query)
        page, size = int(request.query.get("page", 0)), int(request.query.get("size", 24))
        return _json(await self.db(it.grid, self.root, f, page=page, size=size))

    async def sample(self, request: web.Request) -> web.Response:
        out = await self.db(
            detail.sample, self.root, int(request.match_info["src"]), request.match_info["id"]
        )
        if out is None:
            raise web.HTTPNotFound()
        return _json(out)

    async def thresholds(self, request: web.Request) -> web.Response:
        return _json(await self.db(detail.thresholds, self.root))

    async def threshold(self, request: web.Request) -> web.Response:
        qs = request.query
        value = float(qs["value"])
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        out = await self.db(
            detail.threshold,
            self.root,
            int(qs.get("src", 0)),
            qs.get("name", ""),
            value,
            page=int(qs.get("page", 0)),
            size=int(qs.get("size", 24)),
        )
        if out is None:
            raise web.HTTPNotFound()
        return _json(out)

    async def text_search(self, request: web.Request) -> web.Response:
        qs = request.query
        out = await self.db(
            self.search.search,
            qs.get("q", ""),
            k=int(qs.get("k", 12)),
            index=int(qs.get("index", 0)),
        )
        return _json(out)

    async def sql(self, request: web.Request) -> web.Response:
        return _json(await self.db(run_sql, self.root, request.query.get("q", "")))

    async def media(self, request: web.Request) -> web.StreamResponse:
        item = await self.db(
            it.locate, self.root, int(request.match_info["src"]), request.match_info["id"]
        )
        where = await self.db(it.media_location, self.root, item) if item else None
        if where is None:
            raise web.HTTPNotFound()
        path, offset, size, ctype = where
        return await send_range(request, path, offset, size, ctype)


def host_name(host: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8765`` → ``[::1]``, ``a:1`` → ``a``)."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.split(":", 1)[0]


def filters_from(qs: Any) -> it.Filters:
    """The Samples filters from a query string (``range=col:lo:hi``, repeatable)."""
    ranges = []
    for spec in qs.getall("range", []):
        col, _, rest = spec.partition(":")
        lo, _, hi = rest.partition(":")
        ranges.append((col, float(lo) if lo else None, float(hi) if hi else None))
    src = qs.get("src")
    return it.Filters(
        src=int(src) if src not in (None, "") else None,
        split=qs.get("split") or None,
        status=qs.get("status") or None,
        reason=qs.get("reason") or None,
        text=qs.get("q") or None,
        ranges=ranges,
    )


def run_sql(root: Root, sql: str) -> dict[str, Any]:
    """One read-only statement through the sandbox: at most :data:`SQL_ROWS` rows, interrupted
    after :data:`SQL_SECONDS`."""
    timer = threading.Timer(SQL_SECONDS, root.con.interrupt)
    timer.start()
    try:
        reader = q.stream(root.con, sql, rows_per_batch=SQL_ROWS)
        rows: list[dict[str, Any]] = []
        for batch in reader:
            rows += batch.to_pylist()[: SQL_ROWS + 1 - len(rows)]
            if len(rows) > SQL_ROWS:
                break
    except q.QueryError as exc:
        if not timer.is_alive():
            raise q.QueryError(f"query stopped after {SQL_SECONDS:g} s") from None
        raise exc
    finally:
        timer.cancel()
    return {
        "columns": reader.schema.names,
        "rows": rows[:SQL_ROWS],
        "truncated": len(rows) > SQL_ROWS,
        "limit": SQL_ROWS,
    }


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte of a single ``bytes=`` range, clipped to ``size``; None when the
    header is absent; ValueError when it cannot be satisfied or is malformed."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise ValueError("only one bytes range is supported")
    first, _, last = spec.strip().partition("-")
    if first == "":
        n = int(last)
        if n <= 0:
            raise ValueError("empty suffix range")
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start < 0 or start >= size or end < start:
        raise ValueError("range not satisfiable")
    return start, end


async def send_range(
    request: web.Request, path: Path, offset: int, size: int, ctype: str
) -> web.StreamResponse:
    """Bytes ``[offset, offset + size)`` of ``path`` as a response, honouring ``Range``."""
    try:
        rng = parse_range(request.headers.get("Range"), size)
    except ValueError:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    first, last = rng if rng else (0, size - 1)
    resp = web.StreamResponse(status=206 if rng else 200)
    resp.content_type = ctype
    resp.content_length = max(0, last - first + 1)
    resp.headers["Accept-Ranges"] = "bytes"
    resp.headers["Cache-Control"] = "private, max-age=3600"
    if rng:
        resp.headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    await resp.prepare(request)
    if request.method == "HEAD":
        return resp
    loop = asyncio.get_running_loop()
    pos = first
    while pos <= last:
        n = min(CHUNK, last - pos + 1)
        data = await loop.run_in_executor(None, tarindex.read_range, path, offset + pos, n)
        if not data:
            break
        await resp.write(data)
        pos += len(data)
    await resp.write_eof()
    return resp


def make_app(root: Root, *, loopback_only: bool = True) -> web.Application:
    """The browser's application over ``root`` (GET routes only)."""
    b = Browser(root, loopback_only=loopback_only)
    app = web.Application(middlewares=[b.guard])
    app[ROOT_KEY] = root
    app.add_routes(
        [
            web.get("/", b.page),
            web.get("/static/{name}", b.static_file),
            web.get("/api/facets", b.facets),
            web.get("/api/overview", b.overview),
            web.get("/api/run/{n:\\d+}", b.run),
            web.get("/api/plot/{n:\\d+}/{j:\\d+}", b.plot),
            web.get("/api/samples", b.samples),
            web.get("/api/sample/{src:\\d+}/{id}", b.sample),
            web.get("/api/thresholds", b.thresholds),
            web.get("/api/threshold", b.threshold),
            web.get("/api/search", b.text_search),
            web.get("/api/sql", b.sql),
            web.get("/media/{src:\\d+}/{id}", b.media),
        ]
    )
    return app


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address to bind) is a loopback interface."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@contextlib.asynccontextmanager
async def serve(root: Root, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the browser over ``root`` while the block runs; yields its base URL."""
    app = make_app(root, loopback_only=is_loopback(host))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    shown = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{shown}:{bound}"
    finally:
        await runner.cleanup()
