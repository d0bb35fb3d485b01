"""End to end on generated crawl dirs: funnel, round trip through webdataset/tarfile/DuckDB."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from webvid import contract
from webvid.errors import InputError
from webvid.io import read_manifest
from webvid.shards.run import run

EXPECTED = {
    "clip0": None,
    "clip1": None,
    "clip2": None,
    "clip3": None,
    "clip4": None,
    "clip5": None,
    "still0": "still",
    "black0": "black",
    "zdup0": "duplicate_exact",
    "znear0": "duplicate_near",
    "french0": "caption_language",
}


@pytest.fixture(scope="module")
def standard_out(
    tmp_path_factory: pytest.TempPathFactory, shards_media
) -> tuple[Path, object, Path]:
    """One run over the standard crawl, shared by the tests that only read its outputs."""
    from webvid.shards import recipe
    from webvid.synth import crawl_dir as synth

    from .conftest import TEST_OVERRIDES, standard_entries

    base = tmp_path_factory.mktemp("standard")
    crawl = synth.write_crawl_dir(base / "crawl", standard_entries(shards_media))
    summary = run(recipe.load(None, [*TEST_OVERRIDES, "output.report=true"]), [crawl], base / "out")
    return base / "out", summary, crawl


def test_funnel_and_verdicts(standard_out) -> None:
    out, summary, _ = standard_out
    assert summary.inputs == len(EXPECTED) and summary.kept == 6 and summary.skipped_records == 1
    v = pq.read_table(out / contract.VERDICTS_NAME)
    assert v.schema.equals(contract.VERDICT_SCHEMA)
    reasons = {r["clip_id"]: r["reason"] for r in v.to_pylist()}
    assert reasons == EXPECTED
    rows = {r["clip_id"]: r for r in v.to_pylist()}
    assert rows["zdup0"]["duplicate_of"] == "clip0"
    assert rows["znear0"]["duplicate_of"] == "clip0" and rows["znear0"]["hamming"] is not None
    assert rows["french0"]["caption_lang"] == "fr"
    # the boilerplate is gone from the clean caption, the raw one is kept
    assert rows["clip5"]["caption"] == "Children play football in a park."
    assert "stock footage" in rows["clip5"]["caption_raw"]
    # every score is stored whether or not it rejected the clip
    for r in rows.values():
        assert (
            r["motion_score"] is not None and r["phash"] and r["sha256"] and r["width"] in (64, 128)
        )
    assert rows["still0"]["motion_score"] < 0.002 < rows["clip1"]["motion_score"]
    assert dict(summary.funnel) == {
        "caption_language": 1,
        "black": 1,
        "still": 1,
        "duplicate_exact": 1,
        "duplicate_near": 1,
    }


def test_round_trip_webdataset_tarfile_duckdb(standard_out) -> None:
    out, summary, _ = standard_out
    tars = sorted((out / "train").glob("*.tar"))
    assert [t.name for t in tars] == ["00000.tar", "00001.tar"]  # 6 samples, 3 per shard
    # tarfile: sorted members, fixed mtime, every sample complete
    keys = []
    for t in tars:
        with tarfile.open(t) as tf:
            names = tf.getnames()
            assert names == sorted(names)
            assert {m.mtime for m in tf.getmembers()} == {0}
            by_key: dict[str, set[str]] = {}
            for n in names:
                k, ext = n.split(".", 1)
                by_key.setdefault(k, set()).add(ext)
            assert all(exts == {"mp4", "txt", "json"} for exts in by_key.values())
            keys += list(by_key)
    # webdataset reads the same samples
    ds = wds.WebDataset([str(t) for t in tars], shardshuffle=False, empty_check=False).decode()
    samples = list(ds)
    assert [s["__key__"] for s in samples] == keys
    for s in samples:
        assert isinstance(s["json"], dict) and s["json"]["key"] == s["__key__"]
        assert s["txt"] == s["json"]["caption"] and s["mp4"][4:8] == b"ftyp"
    # DuckDB: samples == kept verdicts == index counts
    con = duckdb.connect()
    n_samples = con.execute(
        f"SELECT count(*) FROM read_parquet('{out}/*/[0-9]*.parquet')"
    ).fetchone()[0]
    n_kept = con.execute(f"SELECT count(*) FROM '{out}/verdicts.parquet' WHERE kept").fetchone()[0]
    n_index = con.execute(f"SELECT sum(count) FROM '{out}/index.parquet'").fetchone()[0]
    assert n_samples == n_kept == n_index == len(samples) == 6
    joined = con.execute(
        f"SELECT count(*) FROM read_parquet('{out}/*/[0-9]*.parquet') s "
        f"JOIN '{out}/verdicts.parquet' v ON s.key = v.key AND s.shard = v.shard AND v.kept"
    ).fetchone()[0]
    assert joined == 6
    # index sha256 matches the bytes; stats and manifest agree
    for row in pq.read_table(out / contract.SHARD_INDEX_NAME).to_pylist():
        import hashlib

        data = (out / row["split"] / f"{row['shard']}.tar").read_bytes()
        assert (
            hashlib.sha256(data).hexdigest() == row["tar_sha256"] and len(data) == row["tar_bytes"]
        )
    manifest = read_manifest(out)
    assert manifest["kind"] == "shards" and manifest["counts"]["kept"] == 6
    assert manifest["config"]["filters"]["min_short_side"] == 32
    assert (
        manifest["tools"]["ffmpeg"].startswith("ffmpeg version")
        and "py3langid" in manifest["tools"]
    )
    assert not (out / ".work").exists()


def test_kept_media_plays_and_meets_target(standard_out) -> None:
    out, _, _ = standard_out
    with tarfile.open(out / "train" / "00000.tar") as tf:
        member = next(m for m in tf.getmembers() if m.name.endswith(".mp4"))
        data = tf.extractfile(member).read()
        meta = json.load(tf.extractfile(member.name.replace(".mp4", ".json")))
    path = out / "probe.mp4"
    path.write_bytes(data)
    from webvid.shards.probe import probe

    p = probe(path)
    assert p.codec == "h264" and not p.has_audio and p.moov_first is True
    assert (p.width, p.height) == (meta["width"], meta["height"]) == (64, 48)
    assert meta["transform"] == "remux"  # the generated clips lack +faststart only


def test_rerun_is_a_no_op_and_other_recipe_refused(standard_out, shards_recipe) -> None:
    out, _, standard_crawl = standard_out
    before = {p.name: p.stat().st_mtime_ns for p in (out / "train").iterdir()}
    again = run(shards_recipe("output.report=true"), [standard_crawl], out)
    assert again.already_done and again.kept == 6
    assert {p.name: p.stat().st_mtime_ns for p in (out / "train").iterdir()} == before
    with pytest.raises(InputError, match="other inputs or another recipe"):
        run(shards_recipe("filters.min_motion=0.5"), [standard_crawl], out)


def test_val_split_goes_to_its_own_shard_sequence(
    tmp_path: Path, standard_crawl: Path, shards_recipe
) -> None:
    out = tmp_path / "split"
    summary = run(shards_recipe("output.val_fraction=0.4"), [standard_crawl], out)
    assert summary.samples["val"] > 0 and summary.samples["train"] > 0
    index = pq.read_table(out / contract.SHARD_INDEX_NAME).to_pylist()
    # one numbering for the dir: val continues after train, so keys are unique in the dir
    assert [r["shard"] for r in index] == [f"{i:05d}" for i in range(len(index))]
    assert [r["split"] for r in index] == sorted(r["split"] for r in index)  # train, then val
    assert index[0]["split"] == "train" and index[-1]["split"] == "val"
    assert (out / "val" / f"{index[-1]['shard']}.tar").is_file() and (
        out / "train" / "00000.tar"
    ).is_file()
    v = pq.read_table(out / contract.VERDICTS_NAME).to_pylist()
    kept_keys = [r["key"] for r in v if r["kept"]]
    assert len(kept_keys) == len(set(kept_keys)) == summary.kept
    for r in v:
        if r["kept"]:
            assert r["split"] == contract.split_of(r["clip_id"], 0.4)
            with tarfile.open(out / r["split"] / f"{r['shard']}.tar") as tf:
                assert f"{r['key']}.mp4" in tf.getnames()


def test_missing_crawl_dir_is_an_input_error(tmp_path: Path, shards_recipe) -> None:
    with pytest.raises(InputError, match="crawl dir not found"):
        run(shards_recipe(), [tmp_path / "nope"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="records"):
        run(shards_recipe(), [tmp_path / "empty"], tmp_path / "out")


def test_media_deleted_after_crawl_is_missing_media(
    tmp_path: Path, make_crawl, shards_media, shards_recipe
) -> None:
    from webvid.synth.crawl_dir import Entry

    crawl = make_crawl(
        [
            Entry("a1", "A ball rolls over the floor", shards_media["moving1"]),
            Entry("a2", "A cat walks along the wall", shards_media["moving2"]),
        ]
    )
    next((crawl / "media").rglob("a2.mp4")).unlink()
    s = run(shards_recipe(), [crawl], tmp_path / "o")
    assert s.kept == 1 and dict(s.funnel) == {"missing_media": 1}


def test_scene_cut_templated_and_source_id(
    tmp_path: Path, make_crawl, shards_media, shards_recipe
) -> None:
    from webvid.synth.crawl_dir import Entry

    m = shards_media
    crawl = make_crawl(
        [
            Entry("cut0", "Two different scenes joined by a hard cut", m["cut"]),
            *(Entry(f"tpl{i}", "Abstract colorful background.", m[f"moving{i}"]) for i in range(3)),
            Entry("id-a", "A dog runs along the beach at sunset", m["moving4"], source_id="777"),
            Entry(
                "id-b",
                "A dog runs along the beach at sunset, new caption",
                m["moving5"],
                source_id="777",
            ),
        ]
    )
    out = tmp_path / "out"
    run(shards_recipe("filters.scene_cut=reject", "filters.max_caption_repeats=2"), [crawl], out)
    rows = {r["clip_id"]: r for r in pq.read_table(out / contract.VERDICTS_NAME).to_pylist()}
    assert rows["cut0"]["reason"] == "scene_cut" and rows["cut0"]["scene_cuts"] == 1
    assert all(
        rows[f"tpl{i}"]["reason"] == "caption_templated" and rows[f"tpl{i}"]["caption_count"] == 3
        for i in range(3)
    )
    assert (
        rows["tpl0"]["transform"] is None and rows["tpl0"]["motion_score"] > 0
    )  # scored, not transcoded
    assert rows["id-a"]["kept"] and rows["id-b"]["reason"] == "duplicate_source_id"
    assert rows["id-b"]["duplicate_of"] == "id-a"


def test_pre_extracted_frames(tmp_path: Path, make_crawl, shards_media, shards_recipe) -> None:
    from webvid.synth.crawl_dir import Entry

    crawl = make_crawl(
        [
            Entry("f1", "A card slides over the colours", shards_media["moving1"]),
            Entry("f2", "Another card slides the other way", shards_media["moving2"]),
        ]
    )
    out = tmp_path / "out"
    run(shards_recipe("transform.frames=3", "transform.max_short_side=32"), [crawl], out)
    with tarfile.open(out / "train" / "00000.tar") as tf:
        names = tf.getnames()
    assert names[:6] == [
        "000000000.frame00.jpg",
        "000000000.frame01.jpg",
        "000000000.frame02.jpg",
        "000000000.json",
        "000000000.mp4",
        "000000000.txt",
    ]
    samples = list(
        wds.WebDataset(
            str(out / "train" / "00000.tar"), shardshuffle=False, empty_check=False
        ).decode("pil")
    )
    assert len(samples) == 2 and samples[0]["frame01.jpg"].size == (42, 32)  # 64x48 → short side 32
    assert samples[0]["json"]["frames"] == 3 and samples[0]["json"]["transform"] == "transcode"
    rows = pq.read_table(out / "train" / "00000.parquet").to_pylist()
    assert [r["frames"] for r in rows] == [3, 3] and rows[0]["width"] == 42


def test_report_is_self_contained(standard_out) -> None:
    out, summary, _ = standard_out
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2  # funnel + histograms
    assert page.count("data:image/jpeg;base64,") == 3  # thumbnails of the first shard's samples
    assert "duplicate_near" in page and "A red ball rolls across a wooden table" in page
    assert "http://" not in page and 'src="/' not in page


def test_webvid_query_views_cover_the_shard_dir(standard_out) -> None:
    from webvid.query import connect

    out, summary, _ = standard_out
    con = connect(out.parent)  # the data root holds the crawl dir and the shard dir
    assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == summary.kept
    assert con.execute("SELECT count(*) FROM verdicts").fetchone()[0] == summary.inputs
    assert con.execute("SELECT sum(count) FROM shards").fetchone()[0] == summary.kept
    assert (
        con.execute("SELECT count(*) FROM crawl WHERE status = 'success'").fetchone()[0]
        == summary.inputs
    )
    # re-filter without recomputing: a stricter motion threshold over the stored scores
    stricter = con.execute(
        "SELECT count(*) FROM verdicts WHERE kept AND motion_score >= 0.05"
    ).fetchone()[0]
    assert 0 < stricter <= summary.kept
    # a split is selectable by its folder (the sandbox reads no file by path: filter filename)
    train = f"SELECT count(*) FROM samples WHERE filename LIKE '{out}/train/%'"
    assert con.execute(train).fetchone()[0] == summary.kept


def test_a_crawl_without_successes_gives_an_empty_committed_dir(
    tmp_path: Path, make_crawl, shards_recipe
) -> None:
    from webvid.synth.crawl_dir import Entry

    crawl = make_crawl([Entry("x1", "Never downloaded", None, status="failed_to_download")])
    s = run(shards_recipe(), [crawl], tmp_path / "o")
    assert (s.inputs, s.kept, s.skipped_records, s.shards) == (0, 0, 1, 0)
    assert read_manifest(tmp_path / "o")["counts"]["kept"] == 0
    assert pq.read_table(tmp_path / "o" / contract.VERDICTS_NAME).num_rows == 0
    assert pq.read_table(tmp_path / "o" / contract.SHARD_INDEX_NAME).num_rows == 0


def test_retried_items_take_the_last_parts_row(
    tmp_path: Path, make_crawl, shards_media, shards_recipe
) -> None:
    from webvid.io import write_parquet
    from webvid.synth.crawl_dir import Entry

    crawl = make_crawl(
        [
            Entry("a", "An old caption for clip a", shards_media["moving1"]),
            Entry("b", "Clip b failed the first time", None, status="failed_to_download"),
        ]
    )
    rows = pq.read_table(crawl / "records" / "part-00000.parquet").to_pylist()
    media_b = crawl / contract.media_relpath("b", "mp4")
    media_b.parent.mkdir(parents=True, exist_ok=True)
    media_b.write_bytes(shards_media["moving2"].read_bytes())
    retry = [
        {**rows[0], "caption": "A new caption for clip a, crawled again"},
        {
            **rows[1],
            "status": "success",
            "reason": None,
            "media_path": contract.media_relpath("b", "mp4"),
        },
    ]
    write_parquet(
        crawl / "records" / "part-00001.parquet",
        contract.rows_to_table(retry, contract.CRAWL_RECORD_SCHEMA),
    )
    s = run(shards_recipe(), [crawl], tmp_path / "o")
    v = {
        r["clip_id"]: r for r in pq.read_table(tmp_path / "o" / contract.VERDICTS_NAME).to_pylist()
    }
    assert (s.inputs, s.kept, s.skipped_records) == (2, 2, 0)
    assert v["a"]["caption_raw"] == "A new caption for clip a, crawled again"
