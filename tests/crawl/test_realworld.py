"""Discovery on real-world markup: 22 clip pages from 13 public sites (tests/crawl/realworld/,
saved by microlinkhq/metascraper for its own tests, MIT), each with the clip and caption a
person would pick (MANIFEST.json). The extractor on every page as saved, then one discovery
crawl over all of them served by a real aiohttp server on 127.0.0.1 with the pages' media hosts
rewritten to it (tiny generated MP4s), read back from the crawl's Parquet records."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest
from aiohttp import web

from webvid.crawl import extract
from webvid.crawl.run import run

HERE = Path(__file__).parent / "realworld"
MANIFEST = json.loads((HERE / "MANIFEST.json").read_text(encoding="utf-8"))
PAGES = {Path(p["file"]).stem: p for p in MANIFEST["pages"]}
#: pages whose <meta name="robots"> opts out of AI training: giphy's "noai", instagram's
#: "noimageindex" (docs/ethics.md)
OPTED_OUT = {"giphy-the-office-no", "instagram-llega-el-final", "instagram-romanceelcid"}


def markup(name: str) -> str:
    return (HERE / PAGES[name]["file"]).read_text(encoding="utf-8", errors="replace")


def extracted(name: str) -> tuple[extract.Clip, int]:
    return extract.extract_clip(extract.parse_html(markup(name), PAGES[name]["page_url"]))


def test_manifest_records_sources_and_sizes() -> None:
    assert len(PAGES) >= 20 and len({p["site"] for p in PAGES.values()}) >= 8
    assert sum(p["heldout"] for p in PAGES.values()) == 5
    for name, page in PAGES.items():
        src = page["source"]
        assert src["repo"] and src["path"] and src["licence"] == "MIT", name
        assert re.fullmatch(r"[0-9a-f]{40}", src["commit"]), name
        size = (HERE / page["file"]).stat().st_size
        assert size == page["bytes"] and size < 300_000, name
        assert page["trimmed"] or size == page["source_bytes"], name
    assert (HERE / "LICENSE-metascraper.md").read_text().startswith("The MIT License")


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_clip_and_caption(name: str) -> None:
    expect = PAGES[name]["expect"]
    clip, n_videos = extracted(name)
    caption = PAGES[name].get("known_miss", {}).get("caption", expect["caption"])
    assert clip.caption == caption, (name, clip.captions, clip.caption_demoted)
    assert clip.caption is None or clip.caption_by in clip.captions
    if expect["clip"] is None:
        assert not extract.is_clip_page(clip, n_videos), (name, clip.media_url)
        return
    assert clip.media_url and re.search(expect["clip"], clip.media_url), (name, clip.media_url)
    assert extract.is_clip_page(clip, n_videos)
    assert clip.media_by and ("player page" in clip.media_by) == (expect["route"] == "player")
    assert not clip.media_url.startswith(("blob:", "data:", "javascript:"))


def test_the_four_patterns_of_issue_19() -> None:
    # 1. a blob: player placeholder and adverts before the real <video>: skipped, and said so
    gag, _ = extracted("9gag-comin-in-for-a-landing")
    assert gag.media_skipped == {"ad": 3, "blob": 1} and "video/mp4" in (gag.media_by or "")
    # 2. og:title is the site's name: demoted, the <title> without its site suffix wins
    twitch, _ = extracted("twitch-blowup-tuesday")
    assert twitch.caption_demoted["opengraph"] == "site-name"
    assert (twitch.caption_by, twitch.caption) == ("title", "Blowup Tuesday")
    # 3. og:title names only the author: the post text in og:description wins
    tweet, _ = extracted("twitter-karmatic")
    assert tweet.caption_demoted["opengraph"] == "author-only"
    assert tweet.caption_by == "og:description" and tweet.caption.startswith("📣 Announcing")
    # 4. every candidate is kept, <title> and og:description included
    assert {"opengraph", "og:description", "title"} <= set(tweet.captions)
    tiktok, _ = extracted("tiktok-illojuan-mystery-king")
    assert "hydration" in tiktok.found_by and tiktok.media_skipped == {"blob": 2}


# --------------------------------------------------------------------------------------------
# one discovery crawl over every page, served on loopback
# --------------------------------------------------------------------------------------------


def media_hosts() -> set[str]:
    """The hosts of every expected clip: rewritten to the test server in the pages."""
    hosts = set()
    for name, page in PAGES.items():
        if page["expect"]["clip"]:
            hosts.add(urlsplit(extracted(name)[0].media_url or "").hostname or "")
    return hosts - {""}


def rewrite(text: str, base: str, hosts: set[str]) -> str:
    """``https://HOST/…`` (also JSON-escaped as ``https:\\/\\/`` or ``https:\\u002F\\u002F``)
    → ``BASE/m/HOST/…`` for each media host."""
    for host in sorted(hosts, key=len, reverse=True):
        for scheme in ("https", "http"):
            for slash in ("/", "\\/", "\\u002F"):
                old = f"{scheme}:{slash}{slash}{host}"
                new = base.replace("/", slash) + f"{slash}m{slash}{host}"
                text = text.replace(old, new)
    return text


PLAYER_HOSTS = {"www.youtube.com", "player.vimeo.com", "twitter.com"}


def make_site(kit, hosts: set[str]) -> web.Application:
    app = kit.make_app(kit.SiteState(robots="User-agent: *\nAllow: /\n"))

    async def home(_: web.Request) -> web.Response:
        links = "".join(f'<a href="/p/{name}">{name}</a>' for name in sorted(PAGES))
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    async def page(req: web.Request) -> web.Response:
        if req.match_info["name"] not in PAGES:  # a page's own relative links
            raise web.HTTPNotFound()
        base = f"{req.scheme}://{req.host}"
        text = rewrite(markup(req.match_info["name"]), base, hosts)
        return web.Response(text=text, content_type="text/html")

    async def cdn(req: web.Request) -> web.Response:
        name = req.match_info["path"]
        if name.split("/", 1)[0] in PLAYER_HOSTS:
            return web.Response(text="<html>a player</html>", content_type="text/html")
        if name.rsplit(".", 1)[-1] in ("jpg", "jpeg", "png", "webp", "gif") and "gifv" not in name:
            return web.Response(body=kit.fake_jpg(name), content_type="image/jpeg")
        return web.Response(body=kit.fake_mp4(name), content_type="video/mp4")

    app.router.add_get("/", home)
    app.router.add_get("/p/{name}", page)
    app.router.add_get("/m/{path:.*}", cdn)
    return app


def test_discovery_crawl_over_the_corpus(tmp_path: Path, kit, crawl_config) -> None:
    hosts = media_hosts()
    with kit.ThreadServer(make_site(kit, hosts)) as server:
        out = tmp_path / "out"
        run(crawl_config(source=server.url + "/", via="direct"), out=out)
        base = server.url
    rows = {
        r["clip_id"]: r
        for p in sorted((out / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    }
    by_page = {r["page_url"].rsplit("/", 1)[-1]: r for r in rows.values()}
    clip_pages = {n for n, p in PAGES.items() if p["expect"]["clip"]}
    assert set(by_page) == clip_pages  # pages without a clip are not clip pages
    for name in sorted(clip_pages):
        row, expect = by_page[name], PAGES[name]["expect"]
        assert row["caption"] == PAGES[name].get("known_miss", {}).get("caption", expect["caption"])
        assert row["media_url"] == rewrite(extracted(name)[0].media_url or "", base, hosts), name
        extra = json.loads(row["extra_json"])
        assert extra["caption_by"] in extra["captions"] and extra["media_by"], name
        if name in OPTED_OUT:
            assert (row["status"], row["reason"], row["optout_source"]) == (
                "skipped_opt_out",
                "x_robots_tag",
                "robots-meta",
            )
        elif expect["route"] == "direct":
            assert row["status"] == "success" and row["bytes"] == 4000, (name, row["reason"])
            assert row["media_path"] and row["sha256"], name
        else:  # a player page: yt-dlp's under --via auto; --via direct refuses its HTML
            assert row["reason"] == "bad_content_type", (name, row["reason"])
