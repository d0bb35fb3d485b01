"""End to end on the demo stock site: crawl (webvid.crawl) → shard (shards/demo.toml).

Every clip the crawl got must end with the curation verdict the site's ground truth expects
(corrupt → undecodable, too short, still, duplicate, non-English caption), the rest kept.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from webvid import contract
from webvid.config import load_recipe
from webvid.crawl.config import CrawlConfig
from webvid.crawl.run import run as crawl
from webvid.shards.recipe import load
from webvid.shards.run import run as shard

ROOT = Path(__file__).resolve().parents[2]
FAST = [
    "polite.allow_private=true",
    "output.fsync_media=false",
    "net.backoff_base_s=0.05",
    "polite.host_429_pause_s=0.2",
]


def test_crawl_then_shard_demo_site(tmp_path: Path, demo_site_fresh) -> None:
    demo = demo_site_fresh
    cfg = load_recipe(
        CrawlConfig, ROOT / "crawl" / "demo-site.toml", [f'source="{demo.url}/"', *FAST]
    )
    crawl(cfg, out=tmp_path / "crawl")
    out = tmp_path / "shards"
    summary = shard(
        load(ROOT / "shards" / "demo.toml", ["workers=2", "output.report=false"]),
        [tmp_path / "crawl"],
        out,
    )
    rows = {r["clip_id"]: r for r in pq.read_table(out / contract.VERDICTS_NAME).to_pylist()}
    got = [t for t in demo.items(kind="video") if t["expected_status"] == contract.STATUS_SUCCESS]
    assert set(rows) == {t["clip_id"] for t in got}
    for t in got:
        r = rows[t["clip_id"]]
        assert r["reason"] == t["expected_verdict"], (
            t["fault"],
            t["caption"],
            r["reasons"],
            r["duplicate_of"],
        )
    assert summary.kept == sum(1 for t in got if t["expected_verdict"] is None) > 0
    for t in demo.items(kind="video", fault="boilerplate"):
        r = rows[t["clip_id"]]
        assert r["kept"] and r["caption"] == t["clean_caption"] != r["caption_raw"]
    n_tar = sum(pq.read_table(p).num_rows for p in out.glob("*/[0-9]*.parquet"))
    assert n_tar == summary.kept
