"""Fetching the site-wide opt-out files: tdmrep.json once per host with robots.txt, through
the egress policy and the host's slot, byte-capped and time-capped; anything but a 200 JSON
answer is no file, and nothing about it fails the crawl. And `--purpose` on the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from webvid.crawl.config import NetConfig, PoliteConfig
from webvid.crawl.net import HostSlots, RobotsCache, make_session
from webvid.crawl.optout_tdm import TDM_FILE_MAX_BYTES


async def rules_of(kit, crawl_config, tdm_handler, *, polite=None, net=None, robots=None):
    """The robots rules a RobotsCache builds for a server whose tdmrep.json is ``tdm_handler``;
    also the server's request counts."""
    state = kit.SiteState(robots=robots or "User-agent: *\nAllow: /\n")
    app = kit.make_app(state)
    if tdm_handler is not None:
        app.router.add_get("/.well-known/tdmrep.json", tdm_handler)
    cfg = crawl_config(**{k: v for k, v in (("polite", polite), ("net", net)) if v})
    with kit.ThreadServer(app) as server:
        async with make_session(cfg) as session:
            cache = RobotsCache(cfg, session, HostSlots(cfg))
            got = await asyncio.gather(*(cache.rules(f"{server.url}/v/{i}.mp4") for i in range(12)))
    assert all(r is got[0] for r in got)
    return got[0], state.hits


async def test_tdmrep_json_is_fetched_once_per_host_beside_robots(kit, crawl_config) -> None:
    async def tdm(_: web.Request) -> web.Response:
        return web.json_response([{"location": "/v/", "tdm-reservation": 1}])

    rules, hits = await rules_of(kit, crawl_config, tdm)
    assert hits["/robots.txt"] == 1 and hits["/.well-known/tdmrep.json"] == 1
    assert rules.tdm is not None and rules.tdm.signal("/v/1.mp4", "media").prefs[0] == "deny"
    assert rules.tdm.signal("/w/1.mp4", "media") is None


def _answer(status: int, body: bytes, ctype: str = "application/json"):
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=ctype)

    return handler


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (None, None),  # 404: the server does not implement TDMRep
        (_answer(500, b'[{"location": "/", "tdm-reservation": 1}]'), None),
        (_answer(200, b"<!doctype html><h1>Page not found</h1>", "text/html"), None),  # soft 404
        (_answer(200, b'[{"location": "/", "tdm-reservation": 0}]'), "allow"),
        (_answer(200, b'[{"location": "/", "tdm-reserv'), "malformed: not valid JSON"),
        (_answer(200, b"[" + b" " * (TDM_FILE_MAX_BYTES + 10) + b"]"), "malformed: over"),
    ],
)
async def test_tdmrep_answers(kit, crawl_config, handler, expected: str | None) -> None:
    rules, _hits = await rules_of(kit, crawl_config, handler)
    signal = rules.tdm.signal("/v/1.mp4", "media") if rules.tdm else None
    if expected is None:
        assert rules.tdm is None
    elif expected == "allow":
        assert signal is not None and signal.prefs == ("allow",) * 3
    else:
        assert (
            signal is not None and signal.value.startswith(expected) and signal.prefs[0] == "deny"
        )


async def test_slow_tdmrep_is_no_file_and_robots_still_hold(kit, crawl_config) -> None:
    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response([{"location": "/", "tdm-reservation": 1}])

    net = NetConfig(retries=0, total_timeout_s=0.5, read_timeout_s=0.5, backoff_base_s=0.01)
    rules, hits = await rules_of(
        kit, crawl_config, slow, net=net, robots="User-agent: *\nDisallow: /p/\n"
    )
    assert rules.tdm is None and not rules.allowed("/p/x") and rules.allowed("/v/x")
    assert hits["/.well-known/tdmrep.json"] == 1


async def test_tdmrep_redirect_to_a_forbidden_address_is_refused(kit, crawl_config) -> None:
    secret = kit.SiteState()
    with kit.ThreadServer(kit.make_app(secret), host="127.0.0.2") as inner:

        async def bounce(_: web.Request) -> web.Response:
            raise web.HTTPFound(f"{inner.url}/.well-known/tdmrep.json")

        polite = PoliteConfig(allow_private=False, private_allowlist=("127.0.0.1/32",))
        rules, hits = await rules_of(kit, crawl_config, bounce, polite=polite)
    assert rules.tdm is None and hits["/.well-known/tdmrep.json"] == 1
    assert secret.log == []  # the redirect's target was never contacted


async def test_no_tdmrep_when_robots_says_disallow_all(kit, crawl_config) -> None:
    state = kit.SiteState()
    app = web.Application()

    async def down(_: web.Request) -> web.Response:
        state.hits["/robots.txt"] += 1
        return web.Response(status=503)

    async def tdm(_: web.Request) -> web.Response:
        state.hits["/.well-known/tdmrep.json"] += 1
        return web.json_response([])

    app.router.add_get("/robots.txt", down)
    app.router.add_get("/.well-known/tdmrep.json", tdm)
    cfg = crawl_config(net=NetConfig(retries=0, backoff_base_s=0.01))
    with kit.ThreadServer(app) as server:
        async with make_session(cfg) as session:
            rules = await RobotsCache(cfg, session, HostSlots(cfg)).rules(server.url + "/v/1.mp4")
    assert rules.disallow_all and rules.tdm is None
    assert state.hits["/.well-known/tdmrep.json"] == 0


@pytest.mark.timeout(60)
def test_purpose_on_the_command_line(tmp_path: Path, kit, run_cli) -> None:
    state = kit.SiteState(robots="User-agent: *\nAllow: /\n")
    app = kit.make_app(state)

    async def media(req: web.Request) -> web.Response:
        return web.Response(
            body=kit.fake_mp4(req.match_info["n"]),
            content_type="video/mp4",
            headers={"X-Robots-Tag": "noai"},
        )

    app.router.add_get("/m/{n}.mp4", media)
    with kit.ThreadServer(app) as server:
        table = tmp_path / "t.csv"
        table.write_text(f"id,url\na,{server.url}/m/a.mp4\n")
        results = {}
        for purpose in (None, "search"):
            out = tmp_path / (purpose or "default")
            args = ["-q", "crawl", str(table), "-o", str(out), "--allow-private"]
            code, _out, err = run_cli(args + (["--purpose", purpose] if purpose else []))
            assert code == 0, err
            manifest = json.loads((out / "manifest.json").read_text())
            results[purpose] = (
                manifest["config"]["polite"]["purpose"],
                manifest["counts"],
            )
        bad, _out, err = run_cli(
            ["-q", "crawl", str(table), "-o", str(tmp_path / "x"), "--purpose", "train"]
        )
    assert results[None][0] == "train-ai" and results[None][1] == {
        "records": 1,
        "skipped_opt_out": 1,
    }
    assert results["search"][0] == "search" and results["search"][1] == {"records": 1, "success": 1}
    assert bad != 0 and "train-genai" in err
