"""The demo stock-footage site: an aiohttp app serving a generated catalogue on loopback.

Takes a :class:`SiteConfig` (seed, sizes, faults switch). Produces a web site with the layout
agreed with the crawler (``docs/demo-site.md``): home, paginated listings, clip pages with JSON-LD
/ OpenGraph / ``<video>`` markup, a CDN route with Range support, thumbnails and images, a
CC3M-style TSV, robots.txt, and ``/_truth.json`` with every item's planted fault and expected
crawl outcome. Faults (429, 503 bursts, resets, slow and truncated bodies, wrong content types,
a redirect loop, opt-out headers) are decided by :mod:`webvid.synth.catalog` and acted out here;
with ``signals`` on, so are the opt-out signals of :mod:`webvid.synth.signals` (robots.txt
``Content-Usage`` / ``Content-Signal`` rules and an AI-crawler group, ``/.well-known/tdmrep.json``,
``Content-Usage`` and TDMRep headers, TDMRep and robots meta), one clip per signal and answer.

Entry points: :func:`make_app` (builds catalogue and media, blocking), the async context manager
:func:`serve` (yields the base URL) and :func:`run_in_thread` for synchronous callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from html import escape
from typing import Any

from aiohttp import web

from webvid.demo.faults import FAULT_RESPONSES, too_many
from webvid.demo.siteconfig import SiteConfig, site_catalog
from webvid.log import Progress
from webvid.synth.catalog import Catalog, Item
from webvid.synth.media import MediaStore, build_media
from webvid.synth.signals import media_headers, page_meta, plant_signals, robots_lines, tdmrep_rules

TRUTH_VERSION = 1


@dataclass
class SiteState:
    config: SiteConfig
    catalog: Catalog
    media: MediaStore
    hits: Counter[tuple[str, str]]

    def reset(self) -> None:
        """Forget request counts: every "first request" fault fires again."""
        self.hits.clear()


STATE = web.AppKey("demo_state", SiteState)


def make_app(
    config: SiteConfig, *, progress: Progress | None = None, media: MediaStore | None = None
) -> web.Application:
    """The site as an aiohttp application (renders missing media first: blocking)."""
    catalog = site_catalog(config)
    if config.faults and config.signals:
        catalog = plant_signals(catalog)
    if media is None:
        media = build_media(catalog, config.media_params(), config.cache_dir, progress=progress)
    for probe in catalog.probes:  # a probe serves the media of the clip it was made from
        assert probe.duplicate_of is not None
        media.clips[probe.clip_id] = media.clips[probe.duplicate_of]
        media.thumbs[probe.clip_id] = media.thumbs[probe.duplicate_of]
    app = web.Application()
    app[STATE] = SiteState(config, catalog, media, Counter())
    r = app.router
    r.add_get("/robots.txt", robots)
    r.add_get("/.well-known/tdmrep.json", tdmrep)
    r.add_get("/", home)
    r.add_get("/videos/page/{n:\\d+}", listing)
    r.add_get("/clip/{id}", clip_page)
    r.add_get("/private/clip/{id}", clip_page)
    r.add_get("/cdn/{id}.mp4", cdn)
    r.add_get("/thumb/{id}.jpg", thumb)
    r.add_get("/img/{id}.jpg", image)
    r.add_get("/cc3m.tsv", cc3m_tsv)
    r.add_get("/_truth.json", truth)
    r.add_post("/_reset", reset)
    r.add_get("/loop/{step:[ab]}", loop)
    return app


def _state(request: web.Request) -> SiteState:
    return request.app[STATE]


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _html(title: str, head: str, body: str, headers: dict[str, str] | None = None) -> web.Response:
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>{head}</head>\n<body>{body}</body></html>\n"
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers=headers)


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


async def robots(request: web.Request) -> web.Response:
    cfg = _state(request).config
    lines = ["User-agent: *", "Disallow: /private/"]
    if cfg.crawl_delay_s is not None:
        lines.append(f"Crawl-delay: {cfg.crawl_delay_s:g}")
    lines += robots_lines(_state(request).catalog)
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def tdmrep(request: web.Request) -> web.Response:
    """The TDMRep file of the site, when a clip's signal lives there (else 404)."""
    rules = tdmrep_rules(_state(request).catalog)
    if rules is None:
        raise web.HTTPNotFound(text="no TDMRep file")
    return web.json_response(rules)


async def home(request: web.Request) -> web.Response:
    st = _state(request)
    body = (
        "<h1>Demo Stock Footage</h1>"
        f"<p>{len(st.catalog.clips)} royalty-free clips of shapes in motion.</p>"
        '<p><a href="/videos/page/1">Browse all videos</a> · '
        '<a href="/cc3m.tsv">Image captions (TSV)</a></p>'
    )
    return _html("Demo Stock Footage", "", body)


def n_pages(config: SiteConfig, n_listed: int | None = None) -> int:
    """Listing pages of ``n_listed`` clips (default: the configured count)."""
    n = config.n_clips if n_listed is None else n_listed
    return max(1, -(-n // config.page_size))


async def listing(request: web.Request) -> web.Response:
    st = _state(request)
    n = int(request.match_info["n"])
    last = n_pages(st.config, len(st.catalog.listed))
    if not 1 <= n <= last:
        raise web.HTTPNotFound(text=f"no page {n}: pages 1..{last}")
    clips = st.catalog.listed[(n - 1) * st.config.page_size : n * st.config.page_size]
    items = "".join(
        f'<li><a class="clip-link" href="{c.page_path}">'
        f'<img src="{c.thumb_path}" alt="{escape(c.caption)}" width="{st.config.width}">'
        f"<span>{escape(c.caption)}</span></a></li>\n"
        for c in clips
    )
    head, nav = "", []
    if n > 1:
        head += f'<link rel="prev" href="/videos/page/{n - 1}">'
        nav.append(f'<a rel="prev" href="/videos/page/{n - 1}">Previous</a>')
    if n < last:
        head += f'<link rel="next" href="/videos/page/{n + 1}">'
        nav.append(f'<a rel="next" href="/videos/page/{n + 1}">Next</a>')
    body = (
        f'<h1>Videos — page {n} of {last}</h1>\n<ul class="clips">\n{items}</ul>\n'
        f'<nav class="pagination">{" ".join(nav)}</nav>'
    )
    return _html(f"Videos — page {n}", head, body)


def _iso_duration(seconds: float) -> str:
    return f"PT0H0M{seconds:g}S"


def _item(request: web.Request, kind: str) -> Item:
    item = _state(request).catalog.by_id.get(request.match_info["id"])
    if item is None or item.kind != kind:
        raise web.HTTPNotFound(text="no such item")
    return item


def clip_markup(item: Item, base: str, cfg: SiteConfig) -> tuple[str, str]:
    """(head, body) HTML of a clip page in the item's markup variant."""
    seconds = cfg.media_params().frames(item.render) / cfg.fps
    media, thumb = base + item.media_path, base + item.thumb_path
    head, body = page_meta(item), f"<h1>{escape(item.caption)}</h1>\n"
    if item.markup in ("full", "jsonld"):
        ld = {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": item.caption,
            "description": f"{item.caption}. Stock clip {item.clip_id}, {seconds:g} s, {cfg.width}x{cfg.height}.",
            "contentUrl": media,
            "thumbnailUrl": thumb,
            "duration": _iso_duration(seconds),
            "width": cfg.width,
            "height": cfg.height,
            "encodingFormat": "video/mp4",
            "uploadDate": "2024-01-01",
            "keywords": [
                item.colour,
                item.shape,
                f"{item.background} background",
                "animation",
                "stock footage",
            ],
        }
        head += (
            '<script type="application/ld+json">'
            + json.dumps(ld).replace("</", "<\\/")
            + "</script>"
        )
    if item.markup in ("full", "og"):
        head += "".join(
            f'<meta property="{p}" content="{escape(str(v))}">'
            for p, v in (
                ("og:type", "video.other"),
                ("og:title", item.caption),
                ("og:video", media),
                ("og:video:type", "video/mp4"),
                ("og:video:width", cfg.width),
                ("og:video:height", cfg.height),
                ("og:image", thumb),
            )
        )
    if item.markup in ("full", "video"):
        body += (
            f'<video controls width="{cfg.width}" height="{cfg.height}" poster="{item.thumb_path}">'
            f'<source src="{item.media_path}" type="video/mp4"></video>\n'
            f'<img class="poster" src="{item.thumb_path}" alt="{escape(item.caption)}">\n'
        )
    body += f'<p class="clip-id">Clip ID {item.clip_id}</p><p><a href="/videos/page/1">All videos</a></p>'
    return head, body


async def clip_page(request: web.Request) -> web.Response:
    st = _state(request)
    item = _item(request, "video")
    head, body = clip_markup(item, _base(request), st.config)
    headers = {"X-Robots-Tag": "noai"} if item.fault == "noai" else None
    return _html(item.caption, head, body, headers)


async def cc3m_tsv(request: web.Request) -> web.Response:
    """Headerless ``caption<TAB>url`` rows, like Conceptual Captions' own TSV."""
    base = _base(request)
    rows = "".join(
        f"{it.caption}\t{base}{it.media_path}\n" for it in _state(request).catalog.images
    )
    return web.Response(text=rows, content_type="text/tab-separated-values")


async def truth(request: web.Request) -> web.Response:
    st = _state(request)
    doc = {
        "version": TRUTH_VERSION,
        "config": asdict(st.config),
        "pages": n_pages(st.config, len(st.catalog.listed)),
        "items": st.catalog.truth(_base(request)),
    }
    return web.json_response(doc)


async def reset(request: web.Request) -> web.Response:
    _state(request).reset()
    return web.json_response({"reset": True})


async def loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop/b" if request.match_info["step"] == "a" else "/loop/a")


# --------------------------------------------------------------------------------------------
# Media, with the planted faults
# --------------------------------------------------------------------------------------------


def _count(request: web.Request, item: Item) -> int:
    hits = _state(request).hits
    hits[(request.path, item.clip_id)] += 1
    return hits[(request.path, item.clip_id)]


async def thumb(request: web.Request) -> web.StreamResponse:
    item = _item(request, "video")
    return web.FileResponse(
        _state(request).media.thumbs[item.clip_id], headers={"Content-Type": "image/jpeg"}
    )


async def image(request: web.Request) -> web.StreamResponse:
    st = _state(request)
    item = _item(request, "image")
    path = st.media.images[item.clip_id]
    n = _count(request, item)
    if item.fault == "http_404":
        raise web.HTTPNotFound(text="image removed")
    if item.fault == "http_429" and n == 1:
        return too_many(st.config)
    if item.fault == "bad_content_type":
        return web.Response(body=path.read_bytes(), content_type="text/html")
    headers = {"Content-Type": "image/jpeg"}
    if item.fault == "noai":
        headers["X-Robots-Tag"] = "noimageai"
    return web.FileResponse(path, headers=headers)


async def cdn(request: web.Request) -> web.StreamResponse:
    st = _state(request)
    item = _item(request, "video")
    path = st.media.clips[item.clip_id]
    n = _count(request, item)
    handler = FAULT_RESPONSES.get(item.fault or "")
    if handler is not None:
        response = await handler(request, st.config, path, n)
        if response is not None:
            return response
    headers = {"Content-Type": "video/mp4", **media_headers(item)}
    if item.fault == "noai":
        headers["X-Robots-Tag"] = "noai"
    return web.FileResponse(path, headers=headers, chunk_size=st.config.chunk_bytes)


# --------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------


@dataclass
class RunningSite:
    """A started site: its base URL, its state (for :meth:`SiteState.reset`) and a stop()."""

    url: str
    state: SiteState
    stop: Callable[[], None]


async def start_runner(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Start serving ``app``; returns its runner (``await runner.cleanup()`` to stop) and URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=512)
    await site.start()
    bound_port = runner.addresses[0][1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return runner, f"http://{shown}:{bound_port}"


@contextlib.asynccontextmanager
async def serve(config: SiteConfig, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the site while the block runs; yields the base URL (``http://127.0.0.1:PORT``)."""
    app = await asyncio.to_thread(make_app, config)
    runner, url = await start_runner(app, host, port)
    try:
        yield url
    finally:
        await runner.cleanup()


def start_in_thread(config: SiteConfig, host: str = "127.0.0.1", port: int = 0) -> RunningSite:
    """Build the site here, serve it from a daemon thread with its own event loop."""
    app = make_app(config)
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            started["runner"], started["url"] = loop.run_until_complete(
                start_runner(app, host, port)
            )
        except BaseException as exc:  # reported to the caller below
            started["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(started["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=main, name="webvid-demo-site", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        raise started["error"]

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    return RunningSite(started["url"], app[STATE], stop)


def run_in_thread(
    config: SiteConfig, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, Callable[[], None]]:
    """``(base_url, stop)``: the site served from a background thread, for synchronous callers."""
    running = start_in_thread(config, host, port)
    return running.url, running.stop
