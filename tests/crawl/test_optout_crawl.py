"""End to end: a stock site on 127.0.0.1 that uses every opt-out signal — one clip per signal
and per yes/no — crawled once per purpose. Exactly the clips the signals allow are kept, and
every record names the signal that decided it (also when it was kept) with its raw value."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiohttp import web

from webvid import query
from webvid.contract import CRAWL_RECORD_SCHEMA, PURPOSES
from webvid.crawl.config import PoliteConfig
from webvid.crawl.run import run

TRAIN, GENAI, SEARCH = PURPOSES
ALL = frozenset(PURPOSES)

# clip id → (media response headers, clip page headers, clip page <head> extras)
CLIPS: dict[str, tuple[dict[str, str], dict[str, str], str]] = {
    "plain": ({}, {}, ""),
    "cu-header-n": ({"Content-Usage": "train-ai=n"}, {}, ""),
    "cu-header-y": ({"Content-Usage": "train-ai=y"}, {}, ""),
    "cu-genai-n": ({"Content-Usage": "train-genai=n"}, {}, ""),
    "cu-bots-n-search-y": ({"Content-Usage": "bots=n, search=y"}, {}, ""),
    "cu-malformed": ({"Content-Usage": "train-ai=no"}, {}, ""),
    "cu-page-n": ({}, {"Content-Usage": "train-ai=n"}, ""),
    "cu-robots-n": ({}, {}, ""),
    "cu-robots-y": ({}, {}, ""),
    "cs-train-no": ({}, {}, ""),
    "cs-train-yes": ({}, {}, ""),
    "cs-search-no": ({}, {}, ""),
    "tdm-header-1": ({"tdm-reservation": "1", "tdm-policy": "https://p.example/tdm.json"}, {}, ""),
    "tdm-header-0": ({"tdm-reservation": "0"}, {}, ""),
    "tdm-file-1": ({}, {}, ""),
    "tdm-file-0": ({}, {}, ""),
    "tdm-file-1-header-0": ({"tdm-reservation": "0"}, {}, ""),
    "tdm-meta-1": ({}, {}, '<meta name="tdm-reservation" content="1">'),
    "tdm-page-1-meta-0": (
        {},
        {"tdm-reservation": "1"},
        '<meta name="tdm-reservation" content="0">',
    ),
    "xrt-noai": ({"X-Robots-Tag": "noai"}, {}, ""),
    "xrt-noindex": ({"X-Robots-Tag": "noindex"}, {}, ""),
    "xrt-other": ({"X-Robots-Tag": "otherbot: noindex"}, {}, ""),
    "meta-noai": ({}, {}, '<meta name="robots" content="noai, noimageai">'),
    "meta-noindex": ({}, {}, '<meta name="robots" content="noindex">'),
    "aibot": ({}, {}, ""),
}

ROBOTS = """User-agent: *
Disallow: /private/
Content-Usage: /cdn/cu-robots-n.mp4 train-ai=n
Content-Usage: /cdn/cu-robots-y.mp4 train-ai=y
Content-Signal: /cdn/cs-train-no.mp4 ai-train=no, search=yes
Content-Signal: /cdn/cs-train-yes.mp4 ai-train=yes, search=yes
Content-Signal: /cdn/cs-search-no.mp4 search=no

User-agent: GPTBot
Disallow: /cdn/aibot.mp4
"""

TDMREP = [
    {"location": "/cdn/tdm-file-1.mp4", "tdm-reservation": 1},
    {"location": "/cdn/tdm-file-0.mp4", "tdm-reservation": 0},
    {"location": "/cdn/tdm-file-1-header-0.mp4$", "tdm-reservation": 1},
]


def expect(cid: str) -> dict[str, tuple[bool, str | None]]:
    """Per purpose: (kept, the deciding optout_source)."""
    deny_train = {  # denied for both training purposes, allowed for search
        "cu-header-n": "content-usage",
        "cu-malformed": "content-usage",
        "cu-page-n": "content-usage",
        "cu-robots-n": "content-usage",
        "cs-train-no": "content-signal",
        "xrt-noai": "x-robots-tag",
        "meta-noai": "robots-meta",
        "aibot": "robots",
    }
    deny_all = {
        "cu-bots-n-search-y": "content-usage",  # search=y overrides, see below
        "tdm-header-1": "tdmrep-header",
        "tdm-file-1": "tdmrep-file",
        "tdm-meta-1": "tdmrep-meta",
        "xrt-noindex": "x-robots-tag",
        "meta-noindex": "robots-meta",
    }
    allow = {  # kept for every purpose, with the signal that allowed it (None: none spoke)
        "plain": (None, None, None),
        "xrt-other": (None, None, None),
        "cu-header-y": ("content-usage", "content-usage", None),
        "cu-robots-y": ("content-usage", "content-usage", None),
        "cs-train-yes": ("content-signal", "content-signal", "content-signal"),
        "tdm-header-0": ("tdmrep-header",) * 3,
        "tdm-file-0": ("tdmrep-file",) * 3,
        "tdm-file-1-header-0": ("tdmrep-header",) * 3,  # the header supersedes the file
        "tdm-page-1-meta-0": ("tdmrep-meta",) * 3,  # the meta supersedes the page header
    }
    if cid in allow:
        return {p: (True, s) for p, s in zip(PURPOSES, allow[cid], strict=True)}
    if cid == "cu-genai-n":
        return {TRAIN: (True, None), GENAI: (False, "content-usage"), SEARCH: (True, None)}
    if cid == "cs-search-no":
        return {TRAIN: (True, None), GENAI: (True, None), SEARCH: (False, "content-signal")}
    if cid == "cu-bots-n-search-y":
        s = deny_all[cid]
        return {TRAIN: (False, s), GENAI: (False, s), SEARCH: (True, "content-usage")}
    if cid in deny_all:
        return dict.fromkeys(PURPOSES, (False, deny_all[cid]))
    s = deny_train[cid]
    searched = "content-signal" if cid == "cs-train-no" else None  # "search=yes" said so
    return {TRAIN: (False, s), GENAI: (False, s), SEARCH: (True, searched)}


def make_site(kit) -> tuple[web.Application, object]:
    state = kit.SiteState(robots=ROBOTS)
    app = kit.make_app(state)

    async def listing(_: web.Request) -> web.Response:
        links = "".join(f'<a href="/clip/{c}">{c}</a>' for c in CLIPS)
        return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")

    async def clip(req: web.Request) -> web.Response:
        cid = req.match_info["cid"]
        _media, page_headers, head = CLIPS[cid]
        ld = json.dumps(
            {
                "@type": "VideoObject",
                "name": f"clip {cid} moving left",
                "contentUrl": f"/cdn/{cid}.mp4",
            }
        )
        text = (
            f'<html><head>{head}<script type="application/ld+json">{ld}</script></head>'
            '<body><a href="/videos">back</a></body></html>'
        )
        return web.Response(text=text, content_type="text/html", headers=page_headers)

    async def cdn(req: web.Request) -> web.Response:
        cid = req.match_info["cid"]
        return web.Response(body=kit.fake_mp4(cid), content_type="video/mp4", headers=CLIPS[cid][0])

    async def tdmrep(_: web.Request) -> web.Response:
        return web.json_response(TDMREP)

    app.router.add_get("/videos", listing)
    app.router.add_get("/clip/{cid}", clip)
    app.router.add_get("/cdn/{cid}.mp4", cdn)
    app.router.add_get("/.well-known/tdmrep.json", tdmrep)
    return app, state


def records(out: Path) -> dict[str, dict]:
    rows = [
        r
        for p in sorted((out / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]
    return {r["clip_id"]: r for r in rows}


@pytest.mark.timeout(120)
def test_each_purpose_keeps_exactly_what_the_signals_allow(
    tmp_path: Path, kit, crawl_config
) -> None:
    app, state = make_site(kit)
    outs: dict[str, Path] = {}
    with kit.ThreadServer(app) as server:
        for purpose in PURPOSES:
            polite = PoliteConfig(
                allow_private=True,
                per_host_rps=1000.0,
                per_host_burst=100,
                per_host_concurrency=16,
                purpose=purpose,  # type: ignore[arg-type]
            )
            outs[purpose] = tmp_path / purpose
            run(
                crawl_config(source=server.url + "/videos", polite=polite, via="direct"),
                out=outs[purpose],
            )
    # robots.txt and tdmrep.json: once per host per run, never a second network path
    assert state.hits["/robots.txt"] == 3 and state.hits["/.well-known/tdmrep.json"] == 3
    # a URL our purpose's rules (an AI crawler's group) disallow is never even requested
    assert state.hits["/cdn/aibot.mp4"] == 1  # only by the search crawl

    for purpose, out in outs.items():
        rows = records(out)
        assert sorted(rows) == sorted(CLIPS), purpose
        kept = sorted(c for c, r in rows.items() if r["status"] == "success")
        assert kept == sorted(c for c in CLIPS if expect(c)[purpose][0]), purpose
        for cid, row in rows.items():
            keep, source = expect(cid)[purpose]
            assert row["optout_source"] == source, (
                purpose,
                cid,
                row["optout_source"],
                row["optout_signals"],
            )
            if source is not None:
                assert row["optout_value"], (purpose, cid)
                assert row["optout_value"] in {s["value"] for s in row["optout_signals"]}
            if not keep:
                assert row["status"] in ("skipped_opt_out", "skipped_robots"), (purpose, cid)
                assert not list(out.glob(f"media/*/{cid}.*"))
        # the raw values, also of kept items
        assert {s["value"] for s in rows["tdm-file-1-header-0"]["optout_signals"]} == {
            '{"location": "/cdn/tdm-file-1-header-0.mp4$", "tdm-reservation": "1"}',
            "tdm-reservation: 0",
        }
        superseded = {
            s["value"]: s["superseded"] for s in rows["tdm-file-1-header-0"]["optout_signals"]
        }
        assert sorted(superseded.values()) == [False, True]
        assert superseded["tdm-reservation: 0"] is False
        assert rows["plain"]["optout_signals"] is None
        if purpose != SEARCH:
            assert rows["cu-malformed"]["optout_value"] == "train-ai=no"
        assert rows["tdm-header-1"]["optout_value"] == (
            "tdm-reservation: 1; tdm-policy: https://p.example/tdm.json"
        )
        assert rows["aibot"]["status"] == ("success" if purpose == SEARCH else "skipped_robots")
        assert rows["cu-page-n"]["optout_signals"][0]["on"] == "page"
        assert pq.read_schema(next((out / "records").glob("part-*.parquet"))) == CRAWL_RECORD_SCHEMA

    # a stricter policy later is a query over what was recorded, not a re-crawl
    con = query.open_readonly(outs[TRAIN])
    stricter = con.execute(
        "SELECT DISTINCT clip_id FROM crawl, unnest(optout_signals) AS s(sig) "
        "WHERE status = 'success' AND sig.train_genai = 'deny' AND NOT sig.superseded "
        "ORDER BY clip_id"
    ).fetchall()
    assert stricter == [("cu-genai-n",)]


@pytest.mark.timeout(60)
def test_list_mode_reads_the_media_signals(tmp_path: Path, kit, crawl_config) -> None:
    app, _state = make_site(kit)
    with kit.ThreadServer(app) as server:
        table = tmp_path / "t.csv"
        ids = ["plain", "tdm-file-1", "tdm-file-1-header-0", "cs-train-no", "xrt-noai", "aibot"]
        table.write_text("id,url\n" + "".join(f"{c},{server.url}/cdn/{c}.mp4\n" for c in ids))
        run(crawl_config(source=str(table)), out=tmp_path / "out")
    rows = records(tmp_path / "out")
    got = {c: (rows[c]["status"], rows[c]["reason"], rows[c]["optout_source"]) for c in ids}
    assert got == {
        "plain": ("success", None, None),
        "tdm-file-1": ("skipped_opt_out", "opt_out", "tdmrep-file"),
        "tdm-file-1-header-0": ("success", None, "tdmrep-header"),
        "cs-train-no": ("skipped_opt_out", "opt_out", "content-signal"),
        "xrt-noai": ("skipped_opt_out", "x_robots_tag", "x-robots-tag"),
        "aibot": ("skipped_robots", "robots_disallowed", "robots"),
    }
    assert rows["aibot"]["optout_value"] == "GPTBot: Disallow: /cdn/aibot.mp4"
