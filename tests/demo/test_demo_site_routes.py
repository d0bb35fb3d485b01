"""The demo site's routes, markup, pagination and Range support, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import re
from html.parser import HTMLParser
from typing import Any

import aiohttp

from webvid.synth.catalog import CLIP_FAULTS, IMAGE_FAULTS


class Markup(HTMLParser):
    """Collects what a crawler would look at: links, JSON-LD, meta properties, video/img tags."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []
        self.ld: list[Any] = []
        self.meta: dict[str, str] = {}
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._in_ld = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag in ("a", "link") and "href" in a:
            self.links.append({"tag": tag, **a})
        if tag == "meta" and "property" in a:
            self.meta[a["property"]] = a.get("content", "")
        if tag == "script" and a.get("type") == "application/ld+json":
            self._in_ld = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_ld = False

    def handle_data(self, data: str) -> None:
        if self._in_ld:
            self.ld.append(json.loads(data))


def parse(html: str) -> Markup:
    m = Markup()
    m.feed(html)
    return m


async def get(
    session: aiohttp.ClientSession, url: str, **kw: Any
) -> tuple[int, dict[str, str], bytes]:
    async with session.get(url, **kw) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def test_robots_and_home(demo_site):
    async with aiohttp.ClientSession() as s:
        status, headers, body = await get(s, demo_site.url + "/robots.txt")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert body.decode().splitlines() == ["User-agent: *", "Disallow: /private/"]
        status, _, body = await get(s, demo_site.url + "/")
        assert status == 200
        assert any(link["href"] == "/videos/page/1" for link in parse(body.decode()).links)
        status, _, _ = await get(s, demo_site.url + "/no/such/route")
        assert status == 404


async def test_listings_paginate_to_the_end_and_list_every_clip(demo_site):
    seen: list[str] = []
    url: str | None = demo_site.url + "/videos/page/1"
    pages = 0
    async with aiohttp.ClientSession() as s:
        while url:
            status, _, body = await get(s, url)
            assert status == 200
            m = parse(body.decode())
            pages += 1
            seen += [demo_site.url + a["href"] for a in m.links if a.get("class") == "clip-link"]
            nexts = [a["href"] for a in m.links if a.get("rel") == "next"]
            # both <link rel=next> and <a rel=next>, or neither on the last page
            assert [a["tag"] for a in m.links if a.get("rel") == "next"] in (["link", "a"], [])
            url = demo_site.url + nexts[0] if nexts else None
        status, _, _ = await get(s, f"{demo_site.url}/videos/page/{pages + 1}")
        assert status == 404
    videos = demo_site.items("video")
    assert pages == -(-len(videos) // demo_site.config.page_size) == 3
    assert seen == [t["page_url"] for t in videos]
    private = [u for u in seen if "/private/clip/" in u]
    assert private and all(t["fault"] == "robots" for t in videos if t["page_url"] in private)


async def test_clip_pages_carry_the_designed_markup(demo_site):
    videos = demo_site.items("video")
    assert {t["markup"] for t in videos} == {"full", "jsonld", "og", "video"}
    async with aiohttp.ClientSession() as s:
        for t in videos:
            status, headers, body = await get(s, t["page_url"])
            assert status == 200 and headers["Content-Type"].startswith("text/html")
            m = parse(body.decode())
            has_ld, has_og = bool(m.ld), "og:video" in m.meta
            has_video = any(tag == "video" for tag, _ in m.tags)
            markup = t["markup"]
            assert has_ld == (markup in ("full", "jsonld"))
            assert has_og == (markup in ("full", "og"))
            assert has_video == (markup in ("full", "video"))
            if has_ld:
                (ld,) = m.ld
                assert ld["@context"] == "https://schema.org" and ld["@type"] == "VideoObject"
                assert ld["name"] == t["caption"] and ld["contentUrl"] == t["media_url"]
                assert ld["thumbnailUrl"] == t["thumbnail_url"]
                assert re.fullmatch(r"PT0H0M[0-9.]+S", ld["duration"])
                assert (ld["width"], ld["height"]) == (
                    demo_site.config.width,
                    demo_site.config.height,
                )
                assert t["colour"] in ld["keywords"] and t["shape"] in ld["keywords"]
            if has_og:
                assert m.meta["og:video"] == t["media_url"] and m.meta["og:title"] == t["caption"]
                assert m.meta["og:video:type"] == "video/mp4"
                assert m.meta["og:video:width"] == str(demo_site.config.width)
                assert m.meta["og:image"] == t["thumbnail_url"]
            if has_video:
                video = next(a for tag, a in m.tags if tag == "video")
                source = next(a for tag, a in m.tags if tag == "source")
                img = next(a for tag, a in m.tags if tag == "img")
                assert video["poster"] == f"/thumb/{t['clip_id']}.jpg"
                assert demo_site.url + source["src"] == t["media_url"]
                assert source["type"] == "video/mp4"
                assert img["alt"] == t["caption"]
        status, _, _ = await get(s, demo_site.url + "/clip/0000000")
        assert status == 404


async def test_truth_json_matches_fixture_and_lists_every_fault(demo_site):
    async with aiohttp.ClientSession() as s:
        status, _, body = await get(s, demo_site.url + "/_truth.json")
    doc = json.loads(body)
    assert status == 200 and doc["items"] == demo_site.truth
    assert {t["fault"] for t in demo_site.items("video")} - {None} == set(CLIP_FAULTS)
    assert {t["fault"] for t in demo_site.items("image")} - {None} == set(IMAGE_FAULTS)
    for t in demo_site.truth:
        expected = (CLIP_FAULTS if t["kind"] == "video" else IMAGE_FAULTS).get(t["fault"])
        if expected is not None:
            assert (t["expected_status"], t["expected_reason"]) == (
                expected.status,
                expected.reason,
            )
        else:
            assert (t["expected_status"], t["expected_reason"], t["expected_verdict"]) == (
                "success",
                None,
                None,
            )


async def test_range_requests_return_the_right_bytes(demo_site):
    clean = next(t for t in demo_site.items("video") if t["fault"] is None)
    data = demo_site.state.media.clips[clean["clip_id"]].read_bytes()
    size = len(data)
    async with aiohttp.ClientSession() as s:
        status, headers, body = await get(s, clean["media_url"])
        assert status == 200 and body == data
        assert headers["Content-Type"] == "video/mp4" and headers["Accept-Ranges"] == "bytes"
        assert body[4:8] == b"ftyp"
        status, headers, body = await get(s, clean["media_url"], headers={"Range": "bytes=10-99"})
        assert status == 206 and body == data[10:100]
        assert headers["Content-Range"] == f"bytes 10-99/{size}"
        status, headers, body = await get(s, clean["media_url"], headers={"Range": "bytes=1000-"})
        assert status == 206 and body == data[1000:]
        status, headers, body = await get(s, clean["media_url"], headers={"Range": "bytes=-50"})
        assert status == 206 and body == data[-50:]
        status, headers, _ = await get(s, clean["media_url"], headers={"Range": f"bytes={size}-"})
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
        async with s.head(clean["media_url"]) as r:
            assert r.status == 200 and r.content_length == size and await r.read() == b""


async def test_thumbnails_images_and_cc3m_table(demo_site):
    async with aiohttp.ClientSession() as s:
        status, headers, body = await get(s, demo_site.url + "/cc3m.tsv")
        assert status == 200
        rows = [line.split("\t") for line in body.decode().splitlines()]
        images = demo_site.items("image")
        assert rows == [[t["caption"], t["media_url"]] for t in images]
        clean = [t for t in images if t["fault"] is None]
        for t in clean[:3]:
            status, headers, body = await get(s, t["media_url"])
            assert status == 200 and headers["Content-Type"] == "image/jpeg"
            assert body[:3] == b"\xff\xd8\xff"
        video = demo_site.items("video")[0]
        status, headers, body = await get(s, video["thumbnail_url"])
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
        status, _, _ = await get(s, demo_site.url + f"/img/{video['clip_id']}.jpg")
        assert status == 404  # a clip id is not an image id


async def test_fifty_concurrent_connections(demo_site):
    clean = [t for t in demo_site.items("video") if t["fault"] is None]
    urls = [clean[i % len(clean)]["media_url"] for i in range(60)]
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as s:
        results = await asyncio.gather(*(get(s, u) for u in urls))
    for url, (status, _, body) in zip(urls, results, strict=True):
        cid = url.rsplit("/", 1)[1].removesuffix(".mp4")
        assert status == 200 and body == demo_site.state.media.clips[cid].read_bytes()


async def test_same_config_serves_the_same_site(demo_site, demo_site_fresh):
    a, b = demo_site, demo_site_fresh
    assert a.url != b.url
    paths = ["/videos/page/1", "/videos/page/3", "/cc3m.tsv", "/_truth.json"]
    paths += [t["page_url"].removeprefix(a.url) for t in a.items("video")[:4]]
    async with aiohttp.ClientSession() as s:
        for path in paths:
            _, _, body_a = await get(s, a.url + path)
            _, _, body_b = await get(s, b.url + path)
            assert body_a.replace(a.url.encode(), b"") == body_b.replace(b.url.encode(), b"")
        for t in [t for t in a.items("video") if t["fault"] is None][:4]:
            _, _, media_a = await get(s, t["media_url"])
            _, _, media_b = await get(s, t["media_url"].replace(a.url, b.url))
            assert media_a == media_b
