"""Discovery mode against a purpose-built stock site: listings, pagination, the three clip
markups, robots-disallowed and opted-out clip pages, off-host links, resume, --limit."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiohttp import web

from webvid.crawl.config import DiscoverConfig
from webvid.crawl.run import run

CLIPS = {  # id → markup
    "ld-1": "ld",
    "og-2": "og",
    "vt-3": "vt",
    "ld-4": "ld",
    "og-5": "og",
    "vt-6": "vt",
    "all-7": "all",
    "noai": "ld",
    "optheader": "ld",
    "nomedia": "none",
}
PAGES = [
    ["ld-1", "og-2", "vt-3"],
    ["ld-4", "og-5", "vt-6", "missing"],
    ["all-7", "noai", "optheader", "nomedia"],
]


def caption(cid: str) -> str:
    return f"Stock footage of clip {cid} moving left"


def clip_page(base: str, cid: str, kind: str) -> str:
    media = f"{base}/cdn/{cid}.mp4"
    ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "VideoObject",
            "name": caption(cid),
            "contentUrl": media,
            "duration": "PT0H0M4S",
            "width": 320,
            "height": 240,
            "thumbnailUrl": f"/thumb/{cid}.jpg",
            "keywords": "red, ball",
            "description": "desc",
        }
    )
    parts = ["<html><head>"]
    if cid == "noai":
        parts.append('<meta name="robots" content="noai, noimageai">')
    if kind in ("ld", "all"):
        parts.append(f'<script type="application/ld+json">{ld}</script>')
    if kind in ("og", "all"):
        parts.append(
            f'<meta property="og:video" content="/cdn/{cid}.mp4"><meta property="og:video:width" content="320">'
            f'<meta property="og:title" content="{caption(cid)}">'
        )
    parts.append('</head><body><a href="/videos/page/1">back</a>')
    if kind in ("vt", "all"):
        parts.append(
            f'<video poster="/thumb/{cid}.jpg"><source src="/cdn/{cid}.mp4" type="video/mp4"></video>'
            f'<img src="/thumb/{cid}.jpg" alt="{caption(cid)}">'
        )
    parts.append("</body></html>")
    return "".join(parts)


def make_site(kit) -> tuple[web.Application, object]:
    state = kit.SiteState(robots="User-agent: *\nDisallow: /private/\n")
    app = kit.make_app(state)

    async def home(req: web.Request) -> web.Response:
        return web.Response(
            text='<a href="/videos/page/1">videos</a> <a href="http://other.example/x">x</a>'
            '<a href="/style.css">css</a>',
            content_type="text/html",
        )

    async def listing(req: web.Request) -> web.Response:
        n = int(req.match_info["n"])
        links = "".join(f'<a class="clip-link" href="/clip/{c}">{c}</a>' for c in PAGES[n - 1])
        if n == 2:
            links += '<a class="clip-link" href="/private/clip/secret">secret</a>'
        nxt = f'<link rel="next" href="/videos/page/{n + 1}">' if n < len(PAGES) else ""
        return web.Response(
            text=f"<html><head>{nxt}</head><body>{links}</body></html>", content_type="text/html"
        )

    async def clip(req: web.Request) -> web.Response:
        cid = req.match_info["cid"]
        if cid not in CLIPS:
            raise web.HTTPNotFound()
        headers = {"X-Robots-Tag": "noai"} if cid == "optheader" else {}
        base = f"{req.scheme}://{req.host}"
        return web.Response(
            text=clip_page(base, cid, CLIPS[cid]), content_type="text/html", headers=headers
        )

    async def cdn(req: web.Request) -> web.Response:
        return web.Response(body=kit.fake_mp4(req.match_info["cid"]), content_type="video/mp4")

    app.router.add_get("/", home)
    app.router.add_get("/videos/page/{n}", listing)
    app.router.add_get("/clip/{cid}", clip)
    app.router.add_get("/private/clip/{cid}", clip)
    app.router.add_get("/cdn/{cid}.mp4", cdn)
    return app, state


def records(out: Path) -> dict[str, dict]:
    rows = [
        r
        for p in sorted((out / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]
    got = {r["clip_id"]: r for r in rows}
    assert len(got) == len(rows)
    return got


GOOD = ["ld-1", "og-2", "vt-3", "ld-4", "og-5", "vt-6", "all-7"]


def test_discover_start_url_without_recipe(tmp_path: Path, kit, crawl_config) -> None:
    app, state = make_site(kit)
    with kit.ThreadServer(app) as server:
        out = tmp_path / "out"
        run(crawl_config(source=server.url + "/"), out=out)
    rows = records(out)
    assert sorted(r for r, v in rows.items() if v["status"] == "success") == sorted(GOOD)
    assert (
        rows["noai"]["status"] == "skipped_opt_out"
        and rows["optheader"]["reason"] == "x_robots_tag"
    )
    assert (
        "nomedia" not in rows and "missing" not in rows
    )  # not recognisable as clips without patterns
    for cid in GOOD:
        assert rows[cid]["caption"] == caption(cid), (cid, rows[cid])
        assert rows[cid]["page_url"].endswith(f"/clip/{cid}")
    assert rows["ld-1"]["duration_s"] == 4.0 and rows["ld-1"]["keywords"] == ["red", "ball"]
    assert rows["og-2"]["width"] == 320 and rows["vt-3"]["thumbnail_url"].endswith(
        "/thumb/vt-3.jpg"
    )
    assert json.loads(rows["vt-3"]["extra_json"])["found_by"] == ["video-tag"]
    paths = [p for p, _ in state.log]
    assert not any(p.startswith("/private/") for p in paths)
    assert "/style.css" not in paths and not any("other.example" in p for p in paths)


def demo_like_discover(limit_pages: int = 100) -> DiscoverConfig:
    return DiscoverConfig(
        follow_patterns=(r"/videos/page/\d+$",),
        item_patterns=(r"/clip/[^/]+$",),
        max_pages=limit_pages,
    )


def test_discover_with_patterns_records_every_clip_page(tmp_path: Path, kit, crawl_config) -> None:
    app, state = make_site(kit)
    with kit.ThreadServer(app) as server:
        out = tmp_path / "out"
        cfg = crawl_config(source=server.url + "/", discover=demo_like_discover())
        summary = run(cfg, out=out)
        rows = records(out)
        expect = {
            "missing": ("failed_to_download", "http_404"),
            "secret": ("skipped_robots", "robots_disallowed"),
            "nomedia": ("failed_to_download", "no_media_found"),
            "noai": ("skipped_opt_out", "x_robots_tag"),
        }
        for cid, (status, reason) in expect.items():
            assert (rows[cid]["status"], rows[cid]["reason"]) == (status, reason), cid
        assert sorted(r for r, v in rows.items() if v["status"] == "success") == sorted(GOOD)
        assert summary.mode == "discover"
        # rerun: finished clip pages are not fetched again
        before = sum(1 for p, _ in state.log if p.startswith("/clip/"))
        again = run(cfg, out=out)
        assert again.attempted == 0
        assert sum(1 for p, _ in state.log if p.startswith("/clip/")) == before
        assert len(records(out)) == len(rows)


def test_discover_dry_run_and_limit(tmp_path: Path, kit, crawl_config) -> None:
    app, state = make_site(kit)
    with kit.ThreadServer(app) as server:
        out = tmp_path / "out"
        run(
            crawl_config(
                source=server.url + "/", dry_run=True, limit=3, discover=demo_like_discover()
            ),
            out=out,
        )
    rows = records(out)
    assert len(rows) == 3
    assert not any(p.startswith("/cdn/") for p, _ in state.log)
    assert {r["status"] for r in rows.values()} <= {
        "discovered",
        "failed_to_download",
        "skipped_robots",
        "skipped_opt_out",
    }
    assert all(r["media_path"] is None for r in rows.values())


def test_css_selector_overrides(tmp_path: Path, kit, crawl_config) -> None:
    state = kit.SiteState(robots="")
    app = kit.make_app(state)

    async def page(req: web.Request) -> web.Response:
        html = (
            '<div class="clip"><h1 class="t"> A <b>blue</b> cube </h1><p id="d">words</p>'
            '<span data-src="/cdn/x.mp4" class="player">p</span></div>'
        )
        return web.Response(text=html, content_type="text/html")

    async def cdn(req: web.Request) -> web.Response:
        return web.Response(body=kit.fake_mp4("x"), content_type="video/mp4")

    app.router.add_get("/item/x", page)
    app.router.add_get("/cdn/x.mp4", cdn)
    with kit.ThreadServer(app) as server:
        disc = DiscoverConfig(
            item_patterns=("/item/",),
            select={
                "caption": "div.clip > h1.t",
                "media_url": "span.player[data-src]@data-src",
                "description": "#d",
            },
        )
        out = tmp_path / "out"
        run(crawl_config(source=server.url + "/item/x", discover=disc), out=out)
    (row,) = records(out).values()
    assert (row["status"], row["caption"], row["description"]) == (
        "success",
        "A blue cube",
        "words",
    )


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("a", ["1", "2", "3"]),
        ("div a", ["1", "2"]),
        ("div > a", ["1"]),
        ("#x a", ["2"]),
        (".k", ["1", "3"]),
        ("a[rel=next]", ["3"]),
        ("a[href^='/c']", ["1", "2"]),
        ("a[href$=z]", ["3"]),
        ("p a, div > a", ["1", "2"]),
        ("section .k", []),
    ],
)
def test_css_subset(selector: str, expected: list[str]) -> None:
    from webvid.crawl.extract import parse_html, select

    doc = parse_html(
        '<div><a class="k" href="/c1">1</a><p id="x"><a href="/c2">2</a></p></div>'
        '<a class="k j" rel="next" href="/z">3</a>',
        "http://h/",
    )
    assert [e.text() for e in select(doc, selector)] == expected
