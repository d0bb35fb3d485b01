"""`webvid demo --loop`: the planted noise, the filters' precision/recall, the loop's tables."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from webvid import contract
from webvid.demo.loop import LoopConfig, filter_quality, finite, run_loop, summarize
from webvid.demo.report import loop_tables, write_loop_report
from webvid.demo.siteconfig import SiteConfig, site_catalog
from webvid.synth.catalog import build_catalog
from webvid.synth.media import MediaParams, shape_positions, spec_key
from webvid.synth.noise import RERENDER, SWAP, NoiseConfig, noise_truth


def _noisy(seed: int = 3, n: int = 64) -> SiteConfig:
    return SiteConfig(seed=seed, n_clips=n, n_images=8, appearances=8, noise=NoiseConfig())


def test_planting_is_deterministic_recorded_and_only_in_train() -> None:
    cfg = _noisy()
    a, b = site_catalog(cfg), site_catalog(cfg)
    assert a.clips == b.clips and noise_truth(a) == noise_truth(b)
    clean = {c.clip_id: c for c in site_catalog(replace(cfg, noise=None)).clips}
    truth = noise_truth(a)
    assert len(truth["swapped"]) >= 4 and len(truth["rerenders"]) >= 2
    by_id = {c.clip_id: c for c in a.clips}
    for cid, partner in truth["swapped"].items():
        item = by_id[cid]
        assert item.fault == SWAP and truth["swapped"][partner] == cid  # pairs trade captions
        assert item.caption == clean[partner].caption != clean[cid].caption
        assert (item.colour, item.shape, item.background) != (
            clean[partner].colour,
            clean[partner].shape,
            clean[partner].background,
        )  # the mismatch is visible in one frame
        assert item.render == clean[cid].render  # the clip itself is unchanged
    for cid, original in truth["rerenders"].items():
        item, orig = by_id[cid], clean[original]
        assert cid not in clean and item.fault == RERENDER and orig.fault is None
        assert (item.colour, item.shape, item.background, item.direction) == (
            orig.colour,
            orig.shape,
            orig.background,
            orig.direction,
        )
        assert item.render.texture == orig.render.texture and item.render != orig.render
        assert spec_key(item.render) != spec_key(orig.render)
    noisy = {*truth["swapped"], *truth["rerenders"], *truth["rerenders"].values()}
    assert all(contract.split_of(c, 0.25) == "train" for c in noisy)  # held-out stays clean
    # the catalogue's own clips keep their order; the re-renders come after them
    assert [c.clip_id for c in a.clips[: len(clean)]] == list(clean)


def test_without_noise_the_site_is_the_demos() -> None:
    cfg = SiteConfig(seed=0, n_clips=40, n_images=8, appearances=4)
    assert site_catalog(cfg) == build_catalog(0, 40, 8, faults=True, appearances=4)
    # ordinary clips keep their media cache keys (the new render fields are left out)
    spec = site_catalog(cfg).clips[0].render
    fields = asdict(spec)
    for name in ("reencode", "start", "speed", "tint"):
        del fields[name]
    import hashlib

    old = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]
    assert spec_key(spec) == old


def test_a_rerender_starts_further_along_and_moves_slower() -> None:
    item = next(c for c in site_catalog(_noisy()).clips if c.fault == RERENDER)
    params = MediaParams()
    n = params.frames(item.render)
    moved = shape_positions(item.render, params, n)
    plain = shape_positions(replace(item.render, start=0.0, speed=1.0), params, n)
    axis = 0 if item.direction in ("left", "right") else 1
    assert moved[0][axis] != plain[0][axis]
    assert abs(moved[-1][axis] - moved[0][axis]) < abs(plain[-1][axis] - plain[0][axis])


def _row(cid: str, kept: bool, reason: str | None = None, dup: str | None = None) -> dict:
    return {
        "clip_id": cid,
        "kept": kept,
        "reason": reason,
        "duplicate_of": dup,
        "split": "train" if kept else None,
    }


def test_filter_quality_hand_checked() -> None:
    truth = {
        "swapped": {"s1": "s2", "s2": "s1", "s3": "s4", "s4": "s3"},
        "rerenders": {"r1": "o1", "r2": "o1", "r3": "o3"},
    }
    ids = ["s1", "s2", "s3", "s4", "o1", "r1", "r2", "o3", "r3", "c1", "c2", "c3"]
    before = [_row(c, True) for c in ids] + [_row("s9", False, "still")]
    before[3] = _row("s4", False, "duplicate_near")  # rule-based curation took s4 already
    after = [dict(r) for r in before]
    drop = {
        "s1": ("caption_mismatch", None),  # right
        "s2": ("caption_mismatch", None),  # right
        "c1": ("caption_mismatch", None),  # wrong: a clean clip
        "r1": ("duplicate_semantic", "o1"),  # right
        "o1": ("duplicate_semantic", "r2"),  # right: one of the family kept (r2)
        "c2": ("duplicate_semantic", "o3"),  # wrong: not of o3's family
    }
    for r in after:
        if r["clip_id"] in drop:
            r.update(kept=False, reason=drop[r["clip_id"]][0], duplicate_of=drop[r["clip_id"]][1])
    q = filter_quality(before, after, truth)
    m, s = q["caption_mismatch"], q["semantic_duplicates"]
    assert q["train_clips"] == 11 and q["removed"] == 6
    # swapped and seen by the filter: s1, s2, s3 (s4 was gone); flagged s1, s2, c1
    assert (m["planted"], m["flagged"], m["right"]) == (3, 3, 2)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["chance_precision"] == pytest.approx(3 / 11)
    # families {o1, r1, r2}: 2 to drop, {o3, r3}: 1 to drop; dropped r1, o1 (right), c2 (wrong)
    assert (s["families"], s["to_drop"], s["dropped"], s["right"]) == (2, 3, 3, 2)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["named_right"] == 2  # r1 → o1 and o1 → r2 name their own family
    assert s["families_one_kept"] == 1  # o1's family keeps only r2; o3's keeps both
    # a dedup that drops family members for the wrong reason (named another group's clip)
    # still removed the excess copy: right, not named right
    for r in after:
        if r["clip_id"] == "r3":
            r.update(kept=False, reason="duplicate_semantic", duplicate_of="c3")
    s = filter_quality(before, after, truth)["semantic_duplicates"]
    assert (s["dropped"], s["right"], s["named_right"]) == (4, 3, 2)
    assert s["recall"] == 1.0 and s["families_one_kept"] == 2


def _fake_loop(n_seeds: int = 3) -> dict:
    seeds = []
    for i in range(n_seeds):
        q = {
            "caption_mismatch": {"precision": 0.5 + 0.1 * i, "recall": 0.8, "right": 4,
                                 "flagged": 8 - i, "chance_precision": 0.1},
            "semantic_duplicates": {"precision": 1.0, "recall": 0.5, "right": 2, "dropped": 2,
                                    "chance_precision": 0.05},
        }  # fmt: skip
        seeds.append(
            {
                "seed": i,
                "baseline": {"t2v_R1": 10.0 + i, "t2v_R5": 40.0, "t2v_R10": 70.0,
                             "direction_acc": 25.0},
                "filtered": {"t2v_R1": 12.0 + 2 * i, "t2v_R5": 41.0, "t2v_R10": 71.0,
                             "direction_acc": float("nan")},
                "val_videos": 30.0,
                "filter": q,
            }
        )  # fmt: skip
    return {
        "config": {"steps": [60, 60], "min_caption_agreement": 0.8, "dedup_threshold": 0.95,
                   "max_per_semantic_cluster": 1},
        "noise": {"swapped": 10, "rerenders": 6},
        "rule_based": {"swapped": {"kept": 10}, "rerenders": {"kept": 6}},
        "seeds": seeds,
        "summary": summarize(seeds),
        "chance": {"t2v_R1": 100 / 30, "t2v_R5": 500 / 30, "t2v_R10": 1000 / 30,
                   "direction_acc": 25.0},
        "timings_s": {"total": 1.0},
    }  # fmt: skip


def test_summary_spread_and_report_tables(tmp_path: Path) -> None:
    loop = finite(_fake_loop())
    summ = loop["summary"]
    assert summ["baseline"]["t2v_R1"] == {"mean": 11.0, "min": 10.0, "max": 12.0, "std": 1.0}
    assert summ["delta"]["t2v_R1"]["mean"] == pytest.approx(3.0)  # 2, 3, 4
    assert summ["filtered"]["direction_acc"]["mean"] is None  # NaN everywhere: nothing to show
    tabs = loop_tables(loop)
    r1 = tabs["retrieval"][0]
    assert r1 == ["t2v R@1 %", "11.0 (10.0–12.0)", "14.0 (12.0–16.0)", "+3.0 (±1.0)", "3.3"]
    assert tabs["retrieval"][3][2] == "–"
    mismatch = tabs["quality"][0]
    assert mismatch[1] == "0.60 (0.50–0.70)" and mismatch[3] == "4/8 / 4/7 / 4/6"
    page = write_loop_report(tmp_path, loop).read_text()
    assert "Curation with the model in the loop" in page and "0.60 (0.50–0.70)" in page
    json.dumps(loop, allow_nan=False)  # loop.json is strict JSON


def test_tiny_loop_end_to_end(tmp_path: Path) -> None:
    """Crawl, shard, train 2 + 2 steps, score, refilter, retrain, report — on 24 clips.
    An untrained model's agreement is near random, so a low threshold keeps training data."""
    cfg = LoopConfig(
        out=tmp_path / "loop",
        clips=24,
        seeds=(0,),
        steps=(2, 2),
        min_caption_agreement=0.2,
        noise=NoiseConfig(swapped=0.3, rerendered=0.2),
    )
    res = run_loop(cfg)
    out = tmp_path / "loop"
    truth = json.loads((out / "noise-truth.json").read_text())
    assert truth["swapped"] and truth["rerenders"]
    written = json.loads((out / "loop.json").read_text())
    (seed,) = written["seeds"]
    assert seed["train_videos"]["filtered"] <= seed["train_videos"]["baseline"]
    assert seed["filter"]["caption_mismatch"]["planted"] >= 1
    assert set(seed["baseline"]) == {"t2v_R1", "t2v_R5", "t2v_R10", "direction_acc"}
    assert (out / "seeds/0/scores.parquet").is_file()
    assert (out / "seeds/0/filtered/latest.pt").is_file()
    assert "Held-out retrieval" in (out / "report.html").read_text()
    assert res["report"] == str(out / "report.html")


def test_cli_loop_usage_and_printed_tables(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from webvid.cli import cli
    from webvid.cli.demo import print_loop
    from webvid.cli.util import console

    res = CliRunner().invoke(cli, ["demo", "--loop", "--quick", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--loop takes" in res.output
    loop = finite(_fake_loop())
    loop["report"] = str(tmp_path / "report.html")
    with console.capture() as cap:
        print_loop(loop)
    text = cap.get()  # cells may wrap in a narrow terminal: look for their pieces
    assert "filters against the planted truth" in text and "held-out retrieval" in text
    assert "0.60" in text and "(0.50–0.70)" in text and "+3.0" in text and "(±1.0)" in text


def test_expectation_and_search_notes_state_chance() -> None:
    from webvid.demo.evaluate import EXPECTED, chance, expectation_note
    from webvid.demo.report import search_note

    assert chance(40) == {
        "t2v_R1": 2.5,
        "t2v_R5": 12.5,
        "t2v_R10": 25.0,
        "direction_acc": 25.0,
    }
    note = expectation_note(30, quick=True)
    assert "R@1 3.3 %" in note and "R@10 33.3 %" in note and "direction 25 %" in note
    assert "9–41 %" in note  # 25 % ± two binomial standard deviations of 30 guesses
    lo, hi = EXPECTED["quick"]["t2v_R1"]
    assert f"R@1 {lo:g}–{hi:g} %" in note
    assert "150 + 1,050" in expectation_note(62, quick=False)
    hit = {"appearance_match": True, "direction_match": False}
    searches = [
        {"hits": [hit, {**hit, "direction_match": True}], "appearance_chance": 0.25},
        {"hits": [{"appearance_match": False, "direction_match": True}], "appearance_chance": 0.15},
    ]
    text = search_note(searches)
    assert text.startswith("2 of 3 top-3 hits") and "(a random held-out clip: 20 %)" in text
    assert "1 also move" in text
    assert search_note([{"query": "q", "hits": [{"key": "k"}]}]) == ""  # no truth: no note
