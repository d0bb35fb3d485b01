"""Safety nets end to end: private addresses (literal, after a redirect, by name),
traversal-shaped ids, robots Crawl-delay, host-wide back-off after 429."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow.parquet as pq
from aiohttp import web

from tests.loopback_polite import strict
from webvid import io
from webvid.crawl.config import PoliteConfig
from webvid.crawl.run import run


def rows_of(out: Path) -> dict[str, dict]:
    rows = [
        r
        for p in sorted((out / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]
    return {r["clip_id"]: r for r in rows}


def test_redirect_to_private_address_refused(tmp_path: Path, kit, crawl_config) -> None:
    inner_state = kit.SiteState()
    with (
        kit.ThreadServer(kit.make_app(inner_state), host="127.0.0.2") as inner,
        kit.ThreadServer(kit.make_app(kit.SiteState())) as outer,
    ):
        target = f"{inner.url}/v/secret.mp4"
        table = tmp_path / "t.csv"
        table.write_text(
            "id,url\n"
            f"viaredirect,{outer.url}/redirect?to={target}\n"
            f"direct,{target}\n"
            f"public,{outer.url}/v/public.mp4\n"
        )
        out = tmp_path / "out"
        run(crawl_config(source=str(table), polite=strict()), out=out)
        rows = rows_of(out)
        assert inner_state.log == []  # not one byte asked of the private address
        for cid in ("viaredirect", "direct"):
            assert (rows[cid]["status"], rows[cid]["reason"]) == (
                "skipped_policy",
                "private_address",
            )
        assert rows["public"]["status"] == "success"
        # the same table with --allow-private reaches it
        out2 = tmp_path / "out2"
        run(crawl_config(source=str(table)), out=out2)
        assert rows_of(out2)["viaredirect"]["status"] == "success"


def test_private_name_refused_on_resolved_address(tmp_path: Path, site, crawl_config) -> None:
    port = site.url.rsplit(":", 1)[1]
    table = tmp_path / "t.jsonl"
    table.write_text(json.dumps({"url": f"http://localhost:{port}/v/a.mp4", "caption": "c"}) + "\n")
    out = tmp_path / "out"
    run(crawl_config(source=str(table), polite=strict(private_allowlist=())), out=out)
    (row,) = rows_of(out).values()
    assert row["reason"] == "private_address", row["error_message"]
    assert "localhost" in row["error_message"]
    assert site.state.log == []


def test_traversal_ids_stay_inside_out(tmp_path: Path, site, crawl_config) -> None:
    ids = [
        "../../escape",
        "/etc/passwd",
        "a/../../b",
        "..",
        "x\u0000y",
        "ok.mp4",
        "C:\\win",
        "é" * 300,
    ]
    table = tmp_path / "t.jsonl"
    table.write_text(
        "".join(
            json.dumps({"id": i, "url": f"{site.url}/v/n{n}.mp4"}) + "\n" for n, i in enumerate(ids)
        )
    )
    out = tmp_path / "out"
    run(crawl_config(source=str(table)), out=out)
    rows = rows_of(out)
    assert len(rows) == len(ids) and {r["status"] for r in rows.values()} == {"success"}
    assert sorted(r["source_id"] for r in rows.values()) == sorted(ids)
    root = out.resolve()
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".mp4"]
    assert len(files) == len(ids)
    for f in files:
        assert root / "media" in f.resolve().parents
    for r in rows.values():
        assert io.safe_join(out, r["media_path"]).is_file()


def test_crawl_delay_spaces_requests(tmp_path: Path, kit, crawl_config) -> None:
    state = kit.SiteState(robots="User-agent: webvid\nCrawl-delay: 0.4\n")
    stamps: list[float] = []
    app = kit.make_app(state)

    async def timed(req: web.Request) -> web.Response:
        stamps.append(time.monotonic())
        return web.Response(body=kit.fake_mp4(req.match_info["n"]), content_type="video/mp4")

    app.router.add_get("/t/{n}.mp4", timed)
    with kit.ThreadServer(app) as server:
        table = tmp_path / "t.csv"
        table.write_text("url\n" + "".join(f"{server.url}/t/{i}.mp4\n" for i in range(4)))
        run(crawl_config(source=str(table)), out=tmp_path / "out")
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert len(stamps) == 4 and min(gaps) >= 0.35, gaps


def test_429_pauses_the_whole_host(tmp_path: Path, kit, crawl_config) -> None:
    state = kit.SiteState()
    events: list[tuple[float, int]] = []
    app = kit.make_app(state)

    async def first_429(req: web.Request) -> web.Response:
        if not events:
            events.append((time.monotonic(), 429))
            return web.Response(status=429, headers={"Retry-After": "1"})
        events.append((time.monotonic(), 200))
        return web.Response(body=kit.fake_mp4(req.match_info["n"]), content_type="video/mp4")

    app.router.add_get("/r/{n}.mp4", first_429)
    polite = PoliteConfig(
        allow_private=True,
        per_host_rps=1000.0,
        per_host_burst=100,
        per_host_concurrency=1,
        host_429_pause_s=0.1,
    )
    with kit.ThreadServer(app) as server:
        table = tmp_path / "t.csv"
        table.write_text("url\n" + "".join(f"{server.url}/r/{i}.mp4\n" for i in range(3)))
        run(crawl_config(source=str(table), polite=polite), out=tmp_path / "out")
    assert [s for _, s in events] == [429, 200, 200, 200]
    assert events[1][0] - events[0][0] >= 0.9  # nobody, not only the item retried, came sooner
    assert all(r["status"] == "success" for r in rows_of(tmp_path / "out").values())


def test_robots_redirect_to_private_address_is_not_followed(
    tmp_path: Path, kit, crawl_config
) -> None:
    inner_state = kit.SiteState()
    with kit.ThreadServer(kit.make_app(inner_state), host="127.0.0.2") as inner:
        state = kit.SiteState(robots=f"REDIRECT {inner.url}/robots.txt")
        with kit.ThreadServer(kit.make_app(state)) as outer:
            table = tmp_path / "t.csv"
            table.write_text(f"id,url\nv,{outer.url}/v/a.mp4\n")
            run(crawl_config(source=str(table), polite=strict()), out=tmp_path / "out")
    assert inner_state.log == []
    (row,) = rows_of(tmp_path / "out").values()
    assert (row["status"], row["reason"]) == ("skipped_robots", "robots_disallowed")


def test_per_host_concurrency_and_rate(tmp_path: Path, kit, crawl_config) -> None:
    state = kit.SiteState()
    app = kit.make_app(state)
    live = {"now": 0, "max": 0}
    stamps: list[float] = []

    async def held(req: web.Request) -> web.Response:
        import asyncio

        live["now"] += 1
        live["max"] = max(live["max"], live["now"])
        stamps.append(time.monotonic())
        await asyncio.sleep(0.2)  # long enough that two requests surely overlap
        live["now"] -= 1
        return web.Response(body=kit.fake_mp4(req.match_info["n"]), content_type="video/mp4")

    app.router.add_get("/h/{n}.mp4", held)
    with kit.ThreadServer(app) as server:
        table = tmp_path / "t.csv"
        table.write_text("url\n" + "".join(f"{server.url}/h/{i}.mp4\n" for i in range(12)))
        polite = PoliteConfig(
            allow_private=True, per_host_concurrency=2, per_host_rps=1000.0, per_host_burst=100
        )
        run(crawl_config(source=str(table), polite=polite, concurrency=8), out=tmp_path / "a")
        assert live["max"] == 2  # 8 workers, 2 connections to the host at a time
        stamps.clear()
        polite = PoliteConfig(
            allow_private=True, per_host_concurrency=8, per_host_rps=10.0, per_host_burst=2
        )
        run(crawl_config(source=str(table), polite=polite, concurrency=8), out=tmp_path / "b")
    assert len(stamps) == 12
    assert stamps[-1] - stamps[0] >= (12 - 2) / 10 * 0.9  # burst of 2, then 10 per second
