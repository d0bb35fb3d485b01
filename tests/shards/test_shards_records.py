"""The shard stage's typed records: the staging cache round trip, the edge to the contract's
schemas, and the decisions over them (no media, no processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webvid import contract
from webvid.shards import decide, rows
from webvid.shards.inputs import InputItem
from webvid.shards.modelscores import scores_for
from webvid.shards.recipe import load
from webvid.shards.records import (
    ClipResult,
    MediaFacts,
    Scores,
    ShardSample,
    StagedOutput,
)


def _item(cid: str, **kw: object) -> InputItem:
    values: dict = {
        "uid": f"{cid}.0",
        "clip_id": cid,
        "dir_index": 0,
        "crawl_dir": "/crawl",
        "media_path": f"media/{cid}.mp4",
        "src": f"/crawl/media/{cid}.mp4",
        "caption_raw": f"A caption long enough for {cid}",
        "source_id": cid,
        "url": f"http://x/{cid}.mp4",
        "page_url": f"http://x/{cid}",
        "media_kind": "video",
        "crawl_sha256": None,
        "source_index": 0,
    }
    values.update(kw)
    return InputItem(**values)


def _result(tmp: Path, cid: str, sha: str, phash: str = "0f" * 8) -> ClipResult:
    media = tmp / f"{cid}.mp4"
    media.write_bytes(b"m" * 10)
    frame = tmp / f"{cid}.frame00.jpg"
    frame.write_bytes(b"f" * 3)
    return ClipResult(
        uid=f"{cid}.0",
        want_output=True,
        media=MediaFacts("mov,mp4", "h264", 64, 48, 0, 10.0, 2.0, 20, 1000, False, 99, sha),
        scores=Scores(0.05, 0.0, 0, phash, ((1.0, 2.5),)),
        transform="copy",
        output=StagedOutput(str(media), "mp4", 10, sha, 64, 48, 10.0, 2.0, 20, (str(frame),)),
        out_files=(str(frame),),
    )


def test_clip_result_survives_the_staging_cache(tmp_path: Path) -> None:
    res = _result(tmp_path, "a", "s1")
    cached = json.loads(json.dumps(res.to_cache()))
    assert ClipResult.from_cache(cached) == res
    assert cached["short_side"] == 48 and cached["aspect_ratio"] == round(64 / 48, 6)
    assert cached["out"]["frames"] == list(res.output.frames)


def test_clip_result_reads_a_sparse_cache_entry() -> None:
    """Keys a failed clip never had are unknown values, as in the caches older runs wrote."""
    res = ClipResult.from_cache(
        {"uid": "b.0", "reasons": ["not_media"], "detail": None, "out_files": [], "bytes": 5}
    )
    assert res.reasons == ("not_media",) and res.media.bytes == 5 and res.output is None
    assert res.media.short_side is None and res.scores == Scores()


def test_edge_rows_match_the_contract(tmp_path: Path) -> None:
    recipe = load(None, ["filters.languages=[]"])
    items = [_item("a")]
    captions = decide.caption_facts(items, recipe)
    results = {"a.0": _result(tmp_path, "a", "s1")}
    verdicts = decide.decide(items, captions, results, recipe)
    verdicts, plans = decide.place(items, verdicts, results, recipe)
    v = verdicts["a.0"]
    row = rows.verdict_row(v)
    # the model-score columns come from a scores table (webvid shard --scores), as run.py joins them
    assert set(row) | set(scores_for(None, "a").columns()) == set(contract.VERDICT_SCHEMA.names)
    assert (row["kept"], row["key"], row["shard"], row["split"]) == (
        True,
        "000000000",
        "00000",
        "train",
    )
    contract.rows_to_table([row], contract.VERDICT_SCHEMA)
    sample = ShardSample(v, results["a.0"].output)
    placed = {"key", "shard", "split"}
    assert set(rows.sample_row(sample)) | placed == set(contract.SAMPLE_SCHEMA.names)
    meta = rows.sample_meta(sample)
    assert meta["original"]["container"] == "mov,mp4" and meta["scores"]["caption_count"] == 1
    assert meta["frames"] == 1 and meta["source_sha256"] == "s1"
    tar = plans[0].samples[0]
    assert tar.meta == meta and tar.frame_bytes == (3,) and tar.media_bytes == 10


def test_decide_merges_duplicates_and_unprocessed_inputs(tmp_path: Path) -> None:
    recipe = load(None, ["filters.languages=[]"])
    gone = _item("c", src=None, reject="unsafe_media_path", reject_detail="leaves the dir")
    items = [_item("b"), _item("a"), gone]
    results = {"a.0": _result(tmp_path, "a", "same"), "b.0": _result(tmp_path, "b", "same")}
    verdicts = decide.decide(items, decide.caption_facts(items, recipe), results, recipe)
    assert verdicts["a.0"].kept and verdicts["a.0"].transform == "copy"
    b = verdicts["b.0"]
    assert b.reason == "duplicate_exact" and b.duplicate.of == "a" and b.transform is None
    c = verdicts["c.0"]
    assert (c.reasons, c.detail, c.media) == (
        ("unsafe_media_path",),
        "leaves the dir",
        MediaFacts(),
    )
    assert decide.funnel(verdicts.values()) == [("unsafe_media_path", 1), ("duplicate_exact", 1)]


def test_a_kept_clip_without_staged_output_is_a_bug(tmp_path: Path) -> None:
    recipe = load(None, ["filters.languages=[]"])
    items = [_item("a")]
    results = {"a.0": ClipResult("a.0", want_output=True)}
    with pytest.raises(RuntimeError, match="no staged output"):
        decide.decide(items, decide.caption_facts(items, recipe), results, recipe)
