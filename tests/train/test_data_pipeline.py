"""The streaming pipelines on real tar shards read back by webdataset, with real workers."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch

from webvid.clips.sample import ClipOptions
from webvid.clips.stream import EvalStream, expand_shards
from webvid.errors import ConfigError, InputError
from webvid.synth import shards as synth
from webvid.train.data import TrainStream, make_train_loader
from webvid.train.schedule import Plan, StagePlan


def _count_tokens(caps):
    return {"input_ids": torch.tensor([[len(c)] for c in caps])}


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    specs = synth.random_specs(24, seed=5)
    synth.write_video_shards(root / "vid", specs, per_shard=6)
    synth.write_video_shards(root / "pre", specs, per_shard=6, pre_extract=8, mp4=False)
    synth.write_image_shards(root / "img", specs[:12], per_shard=6)
    return root


def _plan(sizes=((3, 2), (2, 2)), steps=(4, 4)) -> Plan:
    return Plan(
        [
            StagePlan("1f", 1, steps[0], 1e-3, 0, sizes[0]),
            StagePlan("4f", 4, steps[1], 1e-3, 0, sizes[1]),
        ],
        ["video", "image"],
        [1, 1],
    )


def _stream(shards, sub="vid", kind="video", source=0, workers=2, **kw):
    return TrainStream(
        expand_shards(str(shards / sub / "*.tar")),
        kind,
        source,
        _plan(),
        ClipOptions(size=32),
        _count_tokens,
        seed=0,
        shuffle_buffer=8,
        num_workers=workers,
        **kw,
    )


def test_expand_shards_braces_globs_and_errors(shards):
    got = expand_shards(
        [str(shards / "vid" / "{00000..00001}.tar"), str(shards / "vid" / "0000[1-3].tar")]
    )
    assert [Path(p).name for p in got] == ["00000.tar", "00001.tar", "00002.tar", "00003.tar"]
    with pytest.raises(ConfigError, match="no shards"):
        expand_shards(str(shards / "nope" / "*.tar"))


@pytest.mark.parametrize("sub", ["vid", "pre"])
def test_frame_count_changes_at_the_stage_boundary_inside_the_workers(shards, sub):
    loader = make_train_loader(_stream(shards, sub), 2)
    batches = [b for _, b in zip(range(6), loader, strict=False)]
    # video batches 0,1 feed steps 0,2 (stage 1f); batches 2.. feed steps 4,6,... (stage 4f)
    assert [b["frames"] for b in batches] == [1, 1, 4, 4, 4, 4]
    assert [tuple(b["video"].shape[:2]) for b in batches] == [
        (3, 1),
        (3, 1),
        (2, 4),
        (2, 4),
        (2, 4),
        (2, 4),
    ]
    assert [b["worker"] for b in batches] == [0, 1, 0, 1, 0, 1]  # built by the workers
    assert [b["batch_index"] for b in batches] == list(range(6))
    v = batches[2]["video"]
    assert v.dtype == torch.uint8 and v.shape[2:] == (3, 32, 32) and v.float().std() > 0


def test_images_are_one_frame_clips_in_every_stage(shards):
    loader = make_train_loader(_stream(shards, "img", kind="image", source=1, workers=0), 0)
    batches = [b for _, b in zip(range(4), loader, strict=False)]
    assert [tuple(b["video"].shape[:2]) for b in batches] == [(2, 1)] * 4
    assert all("moving" not in c for b in batches for c in b["captions"])


def test_stream_is_deterministic_and_resumes_exactly(shards):
    def take(stream, n, workers):
        return [b for _, b in zip(range(n), make_train_loader(stream, workers), strict=False)]

    full = take(_stream(shards, "pre"), 7, 2)
    again = take(_stream(shards, "pre"), 7, 2)
    assert all(
        torch.equal(a["video"], b["video"]) and a["keys"] == b["keys"]
        for a, b in zip(full, again, strict=True)
    )
    # state after 4 batches consumed: per worker (next j, raw position)
    state = {}
    for b in full[:4]:
        state[b["worker"]] = (b["j"] + 1, b["pos"])
    resumed = take(_stream(shards, "pre", resume=state), 3, 2)
    for a, b in zip(full[4:], resumed, strict=True):
        assert a["batch_index"] == b["batch_index"] and a["keys"] == b["keys"]
        assert torch.equal(a["video"], b["video"])


def test_worker_count_mismatch_is_refused(shards):
    stream = _stream(shards, workers=2)
    with pytest.raises(RuntimeError, match="built for 2 workers"):
        next(iter(stream))


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_broken_samples_are_skipped_and_counted(tmp_path):
    spec = synth.ClipSpec("red", "square", "left", "grey")
    good = synth.encode_mp4(synth.render(spec, 64, 48, 8))
    path = tmp_path / "00000.tar"
    with tarfile.open(path, "w") as tar:
        for i in range(4):
            _add(tar, f"good{i}.mp4", good)
            _add(tar, f"good{i}.txt", spec.caption.encode())
        _add(tar, "junk.mp4", b"\x00\x01 not a video" * 40)
        _add(tar, "junk.txt", b"a caption that must not reach training")
        _add(tar, "cut.mp4", good[: len(good) // 3])
        _add(tar, "cut.json", json.dumps({"num_frames": 8, "width": 64, "height": 48}).encode())
        _add(tar, "cut.txt", b"cut clip")
        _add(tar, "nocap.mp4", good)
        _add(tar, "empty.mp4", b"")
        _add(tar, "empty.txt", b"empty")
        _add(tar, "blank.mp4", good)
        _add(tar, "blank.txt", b"   ")
    plan = Plan([StagePlan("s", 4, 100, 1e-3, 0, (4,))], ["video"], [1])
    stream = TrainStream(
        [str(path)],
        "video",
        0,
        plan,
        ClipOptions(size=16),
        _count_tokens,
        seed=0,
        shuffle_buffer=0,
        num_workers=0,
    )
    it = iter(make_train_loader(stream, 0))
    batches = [next(it) for _ in range(3)]
    broken = Counter()
    for b in batches:
        assert all(k.startswith("good") for k in b["keys"])
        assert all(c == spec.caption for c in b["captions"])
        assert all(clip.float().max() > 100 for clip in b["video"])  # never a black clip
        broken.update(b["broken"])
    passes = sum(b["seen"] for b in batches) / 9
    n = round(passes)
    assert broken["undecodable"] + broken["truncated"] == 2 * n  # junk bytes and the cut clip
    assert {k: broken[k] for k in ("no_caption", "empty_media", "empty_caption")} == dict.fromkeys(
        ("no_caption", "empty_media", "empty_caption"), n
    )


def test_eval_stream_is_one_exact_pass_split_over_workers(shards):
    urls = expand_shards(str(shards / "vid" / "*.tar"))
    stream = EvalStream(urls[:3], "video", 4, ClipOptions(size=32, train=False))
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2)
    items = list(loader)
    keys = [it["key"] for it in items]
    assert len(keys) == 18 and len(set(keys)) == 18
    assert items[0]["clips"].shape == (1, 4, 3, 32, 32)
    # centre crop, uniform frames: the same clip twice
    again = {
        it["key"]: it["clips"]
        for it in EvalStream(urls[:1], "video", 4, ClipOptions(size=32, train=False))
    }
    for it in items:
        if it["key"] in again:
            assert torch.equal(it["clips"], again[it["key"]])


def test_eval_sliding_windows_give_several_clips(shards):
    urls = expand_shards(str(shards / "pre" / "*.tar"))
    items = list(
        EvalStream(urls[:1], "video", 4, ClipOptions(size=32, train=False), window_stride=1)
    )
    # 8 pre-extracted frames, 4 per clip → segments of 2 → offsets 0, 1
    assert all(it["clips"].shape[0] == 2 for it in items)


def test_a_stream_with_nothing_usable_fails_instead_of_spinning(tmp_path):
    with tarfile.open(tmp_path / "00000.tar", "w") as tar:
        for i in range(3):
            _add(tar, f"k{i}.mp4", b"")  # broken without even starting ffmpeg: a quick test
            _add(tar, f"k{i}.txt", b"caption")
    empty = tmp_path / "00001.tar"
    with tarfile.open(empty, "w"):
        pass
    plan = Plan([StagePlan("s", 1, 10, 1e-3, 0, (2,))], ["video"], [1])
    for shards, msg in (
        ([str(tmp_path / "00000.tar")], "broken samples in a row"),
        ([str(empty)], "no readable samples"),
    ):
        stream = TrainStream(
            shards,
            "video",
            0,
            plan,
            ClipOptions(size=16),
            _count_tokens,
            seed=0,
            shuffle_buffer=0,
            num_workers=0,
        )
        with pytest.raises(InputError, match=msg):
            next(iter(stream))
