"""The demo site's opt-out signals (webvid.synth.signals): one clip per signal and answer,
crawled with the shipped demo recipe. Every clip ends as the site's ground truth says, each
signal is on record as the one that decided, and the catalogue's own clips are untouched."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from webvid.config import load_recipe
from webvid.crawl.config import CrawlConfig
from webvid.crawl.run import run
from webvid.demo.counts import optout_counts
from webvid.demo.pytest_plugin import TEST_SITE_CONFIG
from webvid.demo.site import start_in_thread
from webvid.synth.catalog import build_catalog
from webvid.synth.signals import SIGNALS, YES_SIGNALS, plant_signals

RECIPE = Path(__file__).resolve().parents[2] / "crawl" / "demo-site.toml"
CONFIG = TEST_SITE_CONFIG.__class__(**{**TEST_SITE_CONFIG.__dict__, "signals": True, "n_images": 0})


def test_planting_leaves_the_catalogue_as_it_was() -> None:
    plain = build_catalog(CONFIG.seed, CONFIG.n_clips, 8)
    planted = plant_signals(plain)
    assert [(c.clip_id, c.fault, c.expected, c.render) for c in planted.clips] == [
        (c.clip_id, c.fault, c.expected, c.render) for c in plain.clips
    ]
    assert planted.images == plain.images
    yes = [c.signal for c in planted.clips if c.signal]
    assert sorted(yes) == sorted(f"{k}:yes" for k in YES_SIGNALS)
    assert all(c.fault is None for c in planted.clips if c.signal)  # clean clips only
    assert [p.signal for p in planted.probes] == [f"{k}:no" for k in SIGNALS]
    ids = [c.clip_id for c in (*planted.listed, *planted.images)]
    assert len(set(ids)) == len(ids)
    assert plant_signals(build_catalog(CONFIG.seed, CONFIG.n_clips, 8)) == planted  # stable


def test_demo_site_signals_end_as_the_truth_says(tmp_path: Path) -> None:
    site = start_in_thread(CONFIG)
    try:
        truth = [t for t in site.state.catalog.truth(site.url) if t["kind"] == "video"]
        sets = [f'source="{site.url}/"', "polite.allow_private=true", "output.fsync_media=false"]
        sets += ["net.backoff_base_s=0.05", "polite.host_429_pause_s=0.2"]
        run(load_recipe(CrawlConfig, RECIPE, sets), out=tmp_path / "crawl")
    finally:
        site.stop()
    rows = {
        r["clip_id"]: r
        for p in sorted((tmp_path / "crawl" / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    }
    assert len(rows) == len(truth) == CONFIG.n_clips + len(SIGNALS)
    for t in truth:
        r = rows[t["clip_id"]]
        assert (r["status"], r["reason"]) == (t["expected_status"], t["expected_reason"]), t
        if t["signal"]:
            kind, _, answer = t["signal"].partition(":")
            assert r["optout_source"] == SIGNALS[kind][0], (t["signal"], r["optout_signals"])
            assert r["optout_value"], t["signal"]
    n_robots = sum(t["fault"] == "robots" for t in truth)
    n_noai = sum(t["fault"] == "noai" for t in truth)
    expected = Counter({"robots:skipped": n_robots, "x-robots-tag:skipped": n_noai})
    for kind, (source, _) in SIGNALS.items():
        label = "robots-ai" if kind == "ai_crawler_group" else source
        expected[f"{label}:skipped"] += 1
        if kind in YES_SIGNALS:
            expected[f"{source}:kept"] += 1
    assert optout_counts(tmp_path / "crawl") == dict(expected)
