"""The yt-dlp path, in-process, on loopback: an HLS manifest and an HTML player page (handed
over by --via auto after a direct attempt answers with HTML), with real ffmpeg media."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiohttp import web

from webvid import io
from webvid.crawl.run import run
from webvid.crawl.ytdlp import classify


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ytdlp-media")
    common = [
        "ffmpeg",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x48:rate=10",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "5",
    ]
    subprocess.run([*common, str(d / "clip.mp4")], check=True)
    subprocess.run(
        [*common, "-f", "hls", "-hls_time", "0.5", "-hls_list_size", "0", str(d / "stream.m3u8")],
        check=True,
    )
    return d


def test_hls_and_player_page(tmp_path: Path, kit, crawl_config, media_dir: Path) -> None:
    app = web.Application()

    async def page(req: web.Request) -> web.Response:
        return web.Response(
            text="<html><head><title>Player</title></head><body>"
            '<video controls><source src="/static/clip.mp4" type="video/mp4"></video>'
            "</body></html>",
            content_type="text/html",
        )

    app.router.add_get("/watch/player", page)
    app.router.add_static("/static/", media_dir)
    with kit.ThreadServer(app) as server:
        table = tmp_path / "t.csv"
        table.write_text(
            f"id,url\nhls,{server.url}/static/stream.m3u8\nplayer,{server.url}/watch/player\n"
            f"gone,{server.url}/static/missing.m3u8\n"
        )
        out = tmp_path / "out"
        run(crawl_config(source=str(table)), out=out)
    rows = {
        r["clip_id"]: r
        for p in (out / "records").glob("*.parquet")
        for r in pq.read_table(p).to_pylist()
    }
    for cid in ("hls", "player"):
        r = rows[cid]
        assert (r["status"], r["via"], r["media_kind"]) == ("success", "yt-dlp", "video"), r[
            "error_message"
        ]
        data = io.safe_join(out, r["media_path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == r["sha256"]
    assert rows["player"]["attempts"] >= 2  # the direct attempt, then yt-dlp
    assert rows["gone"]["status"] == "failed_to_download" and rows["gone"]["reason"] == "http_404"
    assert not (out / "media" / ".tmp-ytdlp").exists()


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("Unable to download webpage: HTTP Error 404: Not Found", "http_404"),
        ("HTTP Error 429: Too Many Requests", "http_429"),
        ("HTTP Error 503: Service Unavailable", "http_5xx"),
        ("HTTP Error 403: Forbidden", "http_4xx"),
        ("Read timed out.", "timeout"),
        ("Unsupported URL: http://x/", "ytdlp_error"),
    ],
)
def test_classify_ytdlp_errors(message: str, reason: str) -> None:
    assert classify(message) == reason
