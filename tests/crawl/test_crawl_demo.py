"""The crawl against the demo stock site (webvid.demo), with the shipped recipes: discovery of
the clips and list mode over its CC3M-style TSV. Every planted fault must end as the status and
reason the site's ground truth expects, and the run must complete."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq

from webvid import io
from webvid.config import load_recipe
from webvid.crawl.config import CrawlConfig
from webvid.crawl.run import run

RECIPES = Path(__file__).resolve().parents[2] / "crawl"
FAST = [
    "polite.allow_private=true",
    "output.fsync_media=false",
    "net.backoff_base_s=0.05",
    "polite.host_429_pause_s=0.2",
]


def records(out: Path) -> list[dict]:
    return [
        r
        for p in sorted((out / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]


def check_media(out: Path, row: dict) -> None:
    data = io.safe_join(out, row["media_path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == row["sha256"] and len(data) == row["bytes"]


def test_demo_site_discovery_every_fault(tmp_path: Path, demo_site_fresh) -> None:
    demo = demo_site_fresh
    cfg = load_recipe(CrawlConfig, RECIPES / "demo-site.toml", [f'source="{demo.url}/"', *FAST])
    out = tmp_path / "demo"
    summary = run(cfg, out=out)
    rows = {r["clip_id"]: r for r in records(out)}
    clips = demo.items(kind="video")
    assert len(rows) == len(records(out)) == len(clips)  # every clip page, once
    for t in clips:
        r = rows[t["clip_id"]]
        assert (r["status"], r["reason"]) == (t["expected_status"], t["expected_reason"]), (
            t["fault"],
            r["error_message"],
        )
        if r["status"] == "success":
            assert r["caption"] == t["caption"], t["markup"]
            assert r["page_url"] == t["page_url"] and r["media_kind"] == "video"
            check_media(out, r)
    faults = {t["fault"] for t in clips}
    assert {
        "robots",
        "noai",
        "http_429",
        "http_503",
        "redirect_loop",
        "truncated",
        "bad_content_type",
        "reset_once",
        "reset_always",
        "slow_body",
    } <= faults
    retried = [
        rows[t["clip_id"]]["attempts"]
        for t in clips
        if t["fault"] in ("http_429", "http_503", "reset_once")
    ]
    assert min(retried) >= 2
    # the duplicate clip is the same bytes under two ids: both stored, same sha256 (curation dedups)
    for t in demo.items(kind="video", fault="duplicate"):
        assert rows[t["clip_id"]]["sha256"] == rows[t["duplicate_of"]]["sha256"]
    assert summary.totals["records"] == len(clips)
    manifest = io.read_manifest(out)
    assert manifest["kind"] == "crawl" and manifest["config"]["discover"]["item_patterns"]


def test_demo_site_cc3m_table_list_mode(tmp_path: Path, demo_site_fresh) -> None:
    demo = demo_site_fresh
    cfg = load_recipe(
        CrawlConfig, RECIPES / "cc3m-tsv.toml", [f'source="{demo.url}/cc3m.tsv"', *FAST]
    )
    out = tmp_path / "cc3m"
    summary = run(cfg, out=out)
    assert summary.mode == "list"
    rows = {r["media_url"]: r for r in records(out)}
    images = demo.items(kind="image")
    assert len(rows) == len(images)
    for t in images:
        r = rows[t["media_url"]]
        assert (r["status"], r["reason"]) == (t["expected_status"], t["expected_reason"]), t[
            "fault"
        ]
        assert r["caption"] == t["caption"] and r["source"] == f"{demo.url}/cc3m.tsv"
        if r["status"] == "success":
            assert r["media_kind"] == "image" and r["media_path"].endswith(".jpg")
            check_media(out, r)
    assert (out / "sources" / "cc3m.tsv").is_file()
    assert json.loads(json.dumps(io.read_manifest(out)["counts"]))["records"] == len(images)
