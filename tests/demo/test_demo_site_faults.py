"""Every planted fault of the demo site behaves as designed, seen by a real aiohttp client."""

from __future__ import annotations

import time

import aiohttp
import pytest

from webvid.demo.site import SiteConfig, serve
from webvid.synth.catalog import build_catalog


def one(site, fault: str, kind: str = "video") -> dict:
    items = site.items(kind, fault)
    assert items, f"no {kind} with fault {fault}"
    return items[0]


def media_bytes(site, item: dict) -> bytes:
    store = site.state.media
    return (store.clips if item["kind"] == "video" else store.images)[item["clip_id"]].read_bytes()


async def test_429_with_retry_after_then_200(demo_site_fresh):
    item = one(demo_site_fresh, "http_429")
    async with aiohttp.ClientSession() as s:
        async with s.get(item["media_url"]) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "1"
        async with s.get(item["media_url"]) as r:
            assert r.status == 200 and await r.read() == media_bytes(demo_site_fresh, item)
        demo_site_fresh.reset()  # the fault fires again after a reset
        async with s.get(item["media_url"]) as r:
            assert r.status == 429


async def test_503_burst_then_200(demo_site_fresh):
    item = one(demo_site_fresh, "http_503")
    async with aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(3):
            async with s.get(item["media_url"]) as r:
                statuses.append(r.status)
                if r.status == 200:
                    assert await r.read() == media_bytes(demo_site_fresh, item)
        assert statuses == [503] * demo_site_fresh.config.burst_503 + [200]


async def test_redirect_loop(demo_site):
    item = one(demo_site, "redirect_loop")
    chain = [item["media_url"]]
    async with aiohttp.ClientSession() as s:
        for _ in range(4):
            async with s.get(chain[-1], allow_redirects=False) as r:
                assert r.status == 302
                chain.append(demo_site.url + r.headers["Location"])
        assert chain[1:] == [
            demo_site.url + p for p in ("/loop/a", "/loop/b", "/loop/a", "/loop/b")
        ]
        with pytest.raises(aiohttp.TooManyRedirects):
            async with s.get(item["media_url"], max_redirects=10):
                pass


async def test_truncated_body_even_with_range(demo_site):
    item = one(demo_site, "truncated")
    full = len(media_bytes(demo_site, item))
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Range": f"bytes={full // 2}-"}):
            async with s.get(item["media_url"], headers=headers) as r:
                assert r.status == 200 and r.content_length == full
                assert "Accept-Ranges" not in r.headers
                got = b""
                with pytest.raises(aiohttp.ClientPayloadError):
                    async for chunk in r.content.iter_any():
                        got += chunk
                assert 0 < len(got) < full


async def test_connection_reset_once_then_whole_body(demo_site_fresh):
    item = one(demo_site_fresh, "reset_once")
    async with aiohttp.ClientSession() as s:
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
            async with s.get(item["media_url"]) as r:
                await r.read()
        async with s.get(item["media_url"]) as r:
            assert r.status == 200 and await r.read() == media_bytes(demo_site_fresh, item)


async def test_connection_reset_always(demo_site):
    item = one(demo_site, "reset_always")
    async with aiohttp.ClientSession() as s:
        for _ in range(2):
            with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
                async with s.get(item["media_url"]) as r:
                    await r.read()


async def test_wrong_content_type_serves_mp4_bytes_as_html(demo_site):
    item = one(demo_site, "bad_content_type")
    async with aiohttp.ClientSession() as s, s.get(item["media_url"]) as r:
        body = await r.read()
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
        assert body == media_bytes(demo_site, item) and body[4:8] == b"ftyp"


async def test_noai_header_on_page_and_media(demo_site):
    item = one(demo_site, "noai")
    async with aiohttp.ClientSession() as s:
        for url in (item["page_url"], item["media_url"]):
            async with s.get(url) as r:
                assert r.status == 200 and r.headers["X-Robots-Tag"] == "noai"
        clean = next(t for t in demo_site.items("video") if t["fault"] is None)
        async with s.get(clean["media_url"]) as r:
            assert "X-Robots-Tag" not in r.headers


async def test_slow_body_arrives_complete_but_slowly(demo_site):
    item = one(demo_site, "slow_body")
    async with aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        async with s.get(item["media_url"]) as r:
            body = await r.read()
        elapsed = time.monotonic() - t0
    assert body == media_bytes(demo_site, item)
    assert elapsed >= 0.8 * demo_site.config.slow_body_s  # the delays are sleeps, not load


async def test_robots_clip_is_listed_under_private(demo_site):
    item = one(demo_site, "robots")
    assert item["page_url"] == f"{demo_site.url}/private/clip/{item['clip_id']}"
    async with aiohttp.ClientSession() as s, s.get(item["page_url"]) as r:
        assert r.status == 200  # served: only robots.txt says no


async def test_image_row_faults(demo_site_fresh):
    site = demo_site_fresh
    async with aiohttp.ClientSession() as s:
        async with s.get(one(site, "http_404", "image")["media_url"]) as r:
            assert r.status == 404
        async with s.get(one(site, "noai", "image")["media_url"]) as r:
            assert r.status == 200 and r.headers["X-Robots-Tag"] == "noimageai"
        async with s.get(one(site, "bad_content_type", "image")["media_url"]) as r:
            assert r.headers["Content-Type"].startswith("text/html")
            assert (await r.read())[:3] == b"\xff\xd8\xff"
        url = one(site, "http_429", "image")["media_url"]
        async with s.get(url) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "1"
        async with s.get(url) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"


async def test_faults_off_serves_every_item_cleanly(tmp_path):
    config = SiteConfig(seed=3, n_clips=8, n_images=4, faults=False, cache_dir=str(tmp_path))
    catalog = build_catalog(config.seed, config.n_clips, config.n_images, faults=False)
    assert all(it.fault is None for it in (*catalog.clips, *catalog.images))
    async with serve(config) as url, aiohttp.ClientSession() as s:
        for it in (*catalog.clips, *catalog.images):
            async with s.get(url + it.media_path) as r:
                assert r.status == 200 and "X-Robots-Tag" not in r.headers
        async with s.get(url + "/videos/page/1") as r:
            assert "/private/" not in await r.text()


async def test_crawl_delay_in_robots(tmp_path):
    config = SiteConfig(seed=3, n_clips=2, n_images=0, crawl_delay_s=0.5, cache_dir=str(tmp_path))
    async with serve(config) as url, aiohttp.ClientSession() as s, s.get(url + "/robots.txt") as r:
        lines = (await r.text()).splitlines()
    assert lines == ["User-agent: *", "Disallow: /private/", "Crawl-delay: 0.5"]
