"""yt-dlp behind the egress policy: a "public" host (127.0.0.1, allow-listed) serves player
pages and manifests that point at a secret server on 127.0.0.2 (forbidden) — it must log
zero requests — and media that never ends or trickles: each yt-dlp job stops at
``--max-bytes`` and at the request deadline. Every streaming route caps itself, so a
broken guard costs a bounded amount of disk and time."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest
from aiohttp import web

from tests.loopback_polite import strict
from webvid.crawl.config import NetConfig
from webvid.crawl.run import run


def _load_crawl_kit() -> ModuleType:
    path = Path(__file__).parents[1] / "crawl" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_webvid_crawl_kit", path)
    assert spec and spec.loader
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


kit = _load_crawl_kit()

ENDLESS_CAP_BYTES = 48 * 1024 * 1024  # what the endless route sends at most, whatever happens
TRICKLE_CAP_S = 25.0


def rows_of(out: Path) -> dict[str, dict]:
    return {
        r["clip_id"]: r
        for p in sorted((out / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    }


def public_app(secret_base: str, sent: dict[str, int]) -> web.Application:
    """Pages and manifests aiming at the secret, plus endless and trickling media."""
    app = web.Application()

    async def robots(_: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nAllow: /\n")

    async def player(req: web.Request) -> web.Response:
        src = req.query.get("src") or f"{secret_base}/v/secret.mp4"
        return web.Response(
            text="<html><head><title>Player</title></head><body>"
            f'<video controls><source src="{src}" type="video/mp4"></video></body></html>',
            content_type="text/html",
        )

    async def manifest(_: web.Request) -> web.Response:
        return web.Response(
            text="#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f"#EXTINF:1.0,\n{secret_base}/v/seg0.ts\n#EXTINF:1.0,\n{secret_base}/v/seg1.ts\n"
            "#EXT-X-ENDLIST\n",
            content_type="application/vnd.apple.mpegurl",
        )

    async def endless(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        block = kit.fake_mp4("endless", 64 * 1024)
        try:
            while sent["endless"] < ENDLESS_CAP_BYTES:
                await resp.write(block)
                sent["endless"] += len(block)
        except (ConnectionError, RuntimeError):
            return resp
        return resp

    async def trickle(req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        block = kit.fake_mp4("trickle", 512)
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < TRICKLE_CAP_S:
                await resp.write(block)
                sent["trickle"] += len(block)
                await asyncio.sleep(0.1)
        except (ConnectionError, RuntimeError):
            return resp
        return resp

    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/watch/player", player)
    app.router.add_get("/live/stream.m3u8", manifest)
    app.router.add_get("/endless.mp4", endless)
    app.router.add_get("/trickle.mp4", trickle)
    return app


@pytest.mark.timeout(120)
def test_pages_and_manifests_cannot_send_ytdlp_to_a_private_address(tmp_path: Path) -> None:
    secret = kit.SiteState(robots="User-agent: *\nAllow: /\n")
    sent = {"endless": 0, "trickle": 0}
    with kit.ThreadServer(kit.make_app(secret), host="127.0.0.2") as inner:
        port = int(inner.url.rsplit(":", 1)[1])
        fullwidth = "\uff11\uff12\uff17.\uff10.\uff10.\uff12"
        with kit.ThreadServer(public_app(inner.url, sent)) as outer:
            table = tmp_path / "t.csv"
            table.write_text(
                "id,url\n"
                f"player,{outer.url}/watch/player\n"
                f"playerfw,{outer.url}/watch/player?src=http://{fullwidth}:{port}/v/s.mp4\n"
                f"hls,{outer.url}/live/stream.m3u8\n"
            )
            out = tmp_path / "out"
            run(kit.fast_config(source=str(table), polite=strict()), out=out)
    assert secret.log == [], secret.log  # yt-dlp asked nothing of the secret server
    rows = rows_of(out)
    for cid in ("player", "playerfw", "hls"):
        assert (rows[cid]["status"], rows[cid]["reason"]) == (
            "skipped_policy",
            "private_address",
        ), (
            cid,
            rows[cid]["error_message"],
        )
        assert rows[cid]["via"] == "yt-dlp"


@pytest.mark.timeout(120)
def test_ytdlp_job_stops_at_max_bytes_and_at_the_deadline(tmp_path: Path) -> None:
    sent = {"endless": 0, "trickle": 0}
    max_bytes = 1024 * 1024
    with kit.ThreadServer(public_app("http://127.0.0.2:9", sent)) as outer:
        table = tmp_path / "t.csv"
        table.write_text(f"id,url\nendless,{outer.url}/endless.mp4\n")
        net = NetConfig(retries=1, backoff_base_s=0.05, total_timeout_s=20.0, read_timeout_s=5.0)
        out = tmp_path / "big"
        t0 = time.monotonic()
        run(
            kit.fast_config(
                source=str(table), polite=strict(), via="yt-dlp", max_bytes=max_bytes, net=net
            ),
            out=out,
        )
        assert time.monotonic() - t0 < 20.0
        (row,) = rows_of(out).values()
        assert (row["via"], row["reason"]) == ("yt-dlp", "too_large"), row["error_message"]
        # the proxy's budget is --max-bytes plus one page (and socket buffers hold a few
        # MB more between the server and the proxy): far below what the server offers
        assert sent["endless"] < 32 * 1024 * 1024, sent
        assert not [p for p in out.rglob("*") if p.is_file() and p.stat().st_size > max_bytes]

        table.write_text(f"id,url\ntrickle,{outer.url}/trickle.mp4\n")
        net = NetConfig(retries=1, backoff_base_s=0.05, total_timeout_s=3.0, read_timeout_s=5.0)
        out = tmp_path / "slow"
        t0 = time.monotonic()
        run(kit.fast_config(source=str(table), polite=strict(), via="yt-dlp", net=net), out=out)
        elapsed = time.monotonic() - t0
    (row,) = rows_of(out).values()
    assert (row["via"], row["reason"]) == ("yt-dlp", "timeout"), row["error_message"]
    assert elapsed < 12.0, elapsed  # the deadline (3 s) held, not the server's 25 s
    assert row["elapsed_s"] < 6.0


async def _ask(proxy_url: str, request: bytes) -> bytes:
    host, port = proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(1 << 20), 10)
    finally:
        writer.close()


@pytest.mark.timeout(60)
def test_proxy_judges_every_request_and_forwards_one_per_connection() -> None:
    from webvid.crawl.egress import EgressPolicy
    from webvid.crawl.proxy import EgressProxy

    secret = kit.SiteState()
    public = kit.SiteState()
    with (
        kit.ThreadServer(kit.make_app(secret), host="127.0.0.2") as inner,
        kit.ThreadServer(kit.make_app(public)) as outer,
    ):
        secret_hostport = inner.url.removeprefix("http://")
        fullwidth = secret_hostport.replace("127.0.0.2", "\uff11\uff12\uff17.\uff10.\uff10.\uff12")

        async def main() -> None:
            policy = EgressPolicy(allowlist=("127.0.0.1/32",))
            proxy = EgressProxy(policy, connect_timeout_s=5.0, read_timeout_s=5.0)
            (lane,) = await proxy.start(1)
            try:
                # no job: nothing is forwarded
                answer = await _ask(lane.url, f"GET {outer.url}/v/a.mp4 HTTP/1.1\r\n\r\n".encode())
                assert answer.startswith(b"HTTP/1.1 403")
                job = proxy.begin(lane, budget_bytes=1 << 20, timeout_s=30)
                for request in (
                    f"CONNECT {secret_hostport} HTTP/1.1\r\nHost: {secret_hostport}\r\n\r\n",
                    f"CONNECT {fullwidth} HTTP/1.1\r\n\r\n",
                    f"GET {inner.url}/v/a.mp4 HTTP/1.1\r\nHost: x\r\n\r\n",
                    f"GET http://{fullwidth}/v/a.mp4 HTTP/1.1\r\n\r\n",
                    f"GET http://2130706434:{inner.url.rsplit(':', 1)[1]}/ HTTP/1.1\r\n\r\n",
                ):
                    answer = await _ask(lane.url, request.encode("utf-8"))
                    assert answer.startswith(b"HTTP/1.1 403"), (request, answer[:200])
                assert job.refused is not None and job.refused[0] == "private_address"
                # an allowed request is forwarded with Connection: close; a second request
                # pipelined on the same connection never reaches the upstream
                two = (
                    f"GET {outer.url}/v/a.mp4 HTTP/1.1\r\nHost: x\r\n\r\n"
                    f"GET {inner.url}/v/b.mp4 HTTP/1.1\r\nHost: x\r\n\r\n"
                )
                answer = await _ask(lane.url, two.encode())
                assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer
                assert answer.count(b"HTTP/1.1") == 1
                # past the deadline: refused, and the job says why
                job = proxy.begin(lane, budget_bytes=1 << 20, timeout_s=0.0)
                answer = await _ask(lane.url, f"GET {outer.url}/v/c.mp4 HTTP/1.1\r\n\r\n".encode())
                assert answer.startswith(b"HTTP/1.1 504") and job.over == "timeout"
            finally:
                proxy.close()

        asyncio.run(main())
    assert secret.log == []
    assert [p for p, _ in public.log if p.startswith("/v/")] == ["/v/a.mp4"]


@pytest.fixture(scope="module")
def aes_hls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AES-128 HLS stream whose key URI is the placeholder KEYHOST (yt-dlp hands such
    streams to ffmpeg when pycryptodomex is missing: the fallback must be guarded too)."""
    d = tmp_path_factory.mktemp("aes-hls")
    (d / "enc.key").write_bytes(bytes(range(16)))
    (d / "keyinfo").write_text(f"http://KEYHOST/enc.key\n{d / 'enc.key'}\n{'ab' * 16}\n")
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "1",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "5", "-f", "hls", "-hls_time", "0.5",
            "-hls_list_size", "0", "-hls_key_info_file", str(d / "keyinfo"),
            str(d / "stream.m3u8"),
        ],
        check=True,
    )  # fmt: skip
    return d


@pytest.mark.timeout(120)
def test_encrypted_hls_key_and_segments_pass_the_policy(tmp_path: Path, aes_hls: Path) -> None:
    secret = kit.SiteState(robots="User-agent: *\nAllow: /\n")
    secret_app = kit.make_app(secret)
    secret_app.router.add_static("/hls/", aes_hls)
    with kit.ThreadServer(secret_app, host="127.0.0.2") as inner:
        app = web.Application()
        manifest = (aes_hls / "stream.m3u8").read_text()

        async def playlist(req: web.Request) -> web.Response:
            keyhost = req.query["keyhost"]
            return web.Response(
                text=manifest.replace("http://KEYHOST", keyhost),
                content_type="application/vnd.apple.mpegurl",
            )

        async def robots(_: web.Request) -> web.Response:
            return web.Response(text="User-agent: *\nAllow: /\n")

        app.router.add_get("/robots.txt", robots)
        app.router.add_get("/p/{name}.m3u8", playlist)
        app.router.add_static("/p/", aes_hls)
        with kit.ThreadServer(app) as outer:
            table = tmp_path / "t.csv"
            table.write_text(
                "id,url\n"
                f"ok,{outer.url}/p/ok.m3u8?keyhost={outer.url}/p\n"
                f"secretkey,{outer.url}/p/bad.m3u8?keyhost={inner.url}/hls\n"
            )
            out = tmp_path / "out"
            run(kit.fast_config(source=str(table), polite=strict()), out=out)
    assert secret.log == [], secret.log
    rows = rows_of(out)
    assert rows["ok"]["status"] == "success", rows["ok"]["error_message"]
    assert rows["secretkey"]["reason"] == "private_address", rows["secretkey"]["error_message"]
