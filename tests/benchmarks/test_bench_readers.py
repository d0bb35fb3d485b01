"""The benchmark readers on fixtures of both layouts: which videos, which captions, how many."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from webvid.benchmarks import BENCHMARKS, load_benchmark, load_train_split
from webvid.errors import InputError


@pytest.mark.parametrize("layout", ["ce", "c4c"])
def test_msrvtt_1ka_takes_the_designated_caption(bench_roots, facts, layout):
    root = bench_roots[f"msrvtt-{layout}"]
    videos = root / "MSRVTT_Videos" if layout == "c4c" else None
    b = load_benchmark("msrvtt-1ka", root, videos=videos)
    assert [i.id for i in b.items] == list(facts.MSRVTT_DESIGNATED)
    assert [i.captions for i in b.items] == [
        (facts.msrvtt_caption(v, j),) for v, j in facts.MSRVTT_DESIGNATED.items()
    ]
    assert all(j != 0 for j in facts.MSRVTT_DESIGNATED.values())  # the first would be the old bug
    assert b.layout == ("collaborative-experts" if layout == "ce" else "clip4clip")
    assert b.queries == 4 and b.directions == ("t2v", "v2t") and b.split == "test"
    assert all(i.path.is_file() and i.path.stem == i.id for i in b.items)


@pytest.mark.parametrize("layout", ["ce", "c4c"])
def test_msrvtt_1kb_first_caption_and_full_every_caption(bench_roots, facts, layout):
    root = bench_roots[f"msrvtt-{layout}"]
    videos = root / "MSRVTT_Videos" if layout == "c4c" else None
    kb = load_benchmark("msrvtt-1kb", root, videos=videos)
    assert [(i.id, i.captions) for i in kb.items] == [
        (v, (facts.msrvtt_caption(v, 0),)) for v in facts.MSRVTT_IDS[2:5]
    ]
    full = load_benchmark("msrvtt-full", root, videos=videos)
    assert [i.id for i in full.items] == facts.MSRVTT_IDS
    assert full.items[0].captions == tuple(facts.msrvtt_caption("video7020", j) for j in range(4))
    assert [len(i.captions) for i in full.items] == [4, 4, 4, 4, 4, 3]
    assert full.queries == 23
    train = load_train_split("msrvtt", root, videos=videos)
    assert train.name == "msrvtt-train" and train.split == "train"
    assert [(i.id, len(i.captions)) for i in train.items] == [("video7024", 4), ("video7025", 3)]


def test_msrvtt_ce_reads_raw_captions_when_there_is_no_json(bench_roots, facts, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(bench_roots["msrvtt-ce"], root)
    (root / "annotation" / "MSR_VTT.json").unlink()
    ss = root / "high-quality" / "structured-symlinks"
    table = {v: [facts.msrvtt_caption(v, j).split(" ") for j in range(4)] for v in facts.MSRVTT_IDS}
    (ss / "raw-captions.pkl").write_bytes(pickle.dumps(table))
    b = load_benchmark("msrvtt-1ka", root)
    assert b.items[0].captions == (facts.msrvtt_caption("video7020", 2),)  # tokens joined by spaces
    assert ss / "raw-captions.pkl" in b.sources


@pytest.mark.parametrize("layout", ["ce", "c4c"])
def test_msvd_every_caption_is_a_query(bench_roots, facts, layout):
    b = load_benchmark("msvd", bench_roots[f"msvd-{layout}"])
    assert [i.id for i in b.items] == list(facts.MSVD_TEST)
    assert [len(i.captions) for i in b.items] == list(facts.MSVD_TEST.values())
    assert b.items[2].captions[4] == facts.msvd_caption("f9Won2JpOEU_60_80", 4)
    assert b.queries == 9 and b.directions == ("t2v",)
    assert all(i.path.suffix.lower() == ".avi" for i in b.items)
    train = load_train_split("msvd", bench_roots[f"msvd-{layout}"])
    assert [(i.id, len(i.captions)) for i in train.items] == [("zzit5b_-ukg_5_20", 2)]


@pytest.mark.parametrize("layout", ["ce", "c4c"])
def test_didemo_paragraphs_in_annotation_order(bench_roots, facts, layout):
    b = load_benchmark("didemo", bench_roots[f"didemo-{layout}"])
    entries = list(facts.DIDEMO_TEST)
    assert [i.id for i in b.items] == [e.split(".")[0] for e in entries]
    assert [i.captions for i in b.items] == [
        (" ".join(facts.sentence(e, j) for j in range(n)),) for e, n in facts.DIDEMO_TEST.items()
    ]
    assert b.queries == 3 and b.directions == ("t2v", "v2t")
    # the .mov entry is found by its own name; the bare "." and .3gp ones as <id>.mp4
    assert [i.path.name for i in b.items] == [
        entries[0],
        entries[1].split(".")[0] + ".mp4",
        entries[2].split(".")[0] + ".mp4",
    ]
    train = load_train_split("didemo", bench_roots[f"didemo-{layout}"])
    assert len(train.items) == 1 and len(train.items[0].captions) == 1  # one paragraph


@pytest.mark.parametrize("layout", ["ce", "c4c"])
def test_lsmdc_clips_live_in_movie_folders(bench_roots, facts, layout):
    root = bench_roots[f"lsmdc-{layout}"]
    b = load_benchmark("lsmdc", root)
    assert [i.id for i in b.items] == facts.LSMDC_TEST
    assert [i.path.parent.name for i in b.items] == [
        "1001_Flight",
        "1001_Flight",
        "0005_Some_Like_It_Hot",
    ]
    assert b.queries == 3 and all(len(i.captions) == 1 for i in b.items)
    train = load_train_split("lsmdc", root)
    assert [len(i.captions) for i in train.items] == [2]  # training keeps every sentence


def test_lsmdc_refuses_a_test_clip_with_two_captions(bench_roots, facts, tmp_path):
    root = tmp_path / "l"
    shutil.copytree(bench_roots["lsmdc-ce"], root)
    pkl = root / "structured-symlinks" / "raw-captions.pkl"
    table = {c: [["one"]] for c in facts.LSMDC_TEST}
    table[facts.LSMDC_TEST[1]] = [["one"], ["two"]]
    pkl.write_bytes(pickle.dumps(table))
    with pytest.raises(InputError, match=r"has 2 captions.*exactly one per clip"):
        load_benchmark("lsmdc", root)


def test_a_missing_video_is_counted_and_named(bench_roots, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(bench_roots["msrvtt-ce"], root)
    for v in ("video7021", "video7023"):
        (root / "videos" / "all" / f"{v}.mp4").unlink()
    with pytest.raises(InputError, match=r"2 of 4 videos not found .*video7021, video7023"):
        load_benchmark("msrvtt-1ka", root)


def test_videos_option_and_unknown_names(bench_roots, tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        load_benchmark("msvd", bench_roots["msvd-ce"], videos=tmp_path / "nope")
    with pytest.raises(InputError, match="unknown benchmark 'msrvtt'"):
        load_benchmark("msrvtt", bench_roots["msvd-ce"])
    with pytest.raises(InputError, match="no MSVD annotations found"):
        load_benchmark("msvd", tmp_path)
    assert len(BENCHMARKS) == 6


def test_1ka_index_out_of_range_is_an_error(bench_roots, facts, tmp_path):
    root = tmp_path / "m"
    shutil.copytree(bench_roots["msrvtt-ce"], root)
    ss = root / "high-quality" / "structured-symlinks"
    (ss / "jsfusion_val_caption_idx.pkl").write_bytes(
        pickle.dumps({v: 7 for v in facts.MSRVTT_DESIGNATED})
    )
    with pytest.raises(InputError, match="has 4 captions, index 7 is out of range"):
        load_benchmark("msrvtt-1ka", Path(root))
