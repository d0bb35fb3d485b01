"""The curriculum / lr policy as tables, and recipe validation."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from webvid.config import dump_toml, to_dict
from webvid.errors import ConfigError
from webvid.train.recipe import load_train_recipe
from webvid.train.schedule import (
    Plan,
    StagePlan,
    make_cycle,
    per_process_batch,
    plan_from_recipe,
    stage_steps,
)


@pytest.mark.parametrize(
    "weights,cycle", [((1,), (0,)), ((1, 1), (0, 1)), ((2, 1), (0, 1, 0)), ((1, 3), (1, 0, 1, 1))]
)
def test_cycle_interleaves_by_weight(weights, cycle):
    assert make_cycle(weights) == cycle


def _plan(**kw) -> Plan:
    stages = [StagePlan("1f", 1, 6, 1e-3, 2, (8, 16)), StagePlan("4f", 4, 4, 5e-4, 0, (2, 16))]
    return Plan(stages, ["video", "image"], [1, 1], **kw)


def test_steps_map_to_stage_source_frames_and_batch():
    plan = _plan()
    assert plan.total_steps == 10
    assert [plan.stage_at(s) for s in range(10)] == [0] * 6 + [1] * 4
    assert [plan.source_at(s) for s in range(4)] == [0, 1, 0, 1]
    # video batches: j-th batch is used at step 2j
    specs = [plan.batch_spec(0, j) for j in range(6)]
    assert [(s.step, s.frames, s.batch_size) for s in specs] == [
        (0, 1, 8),
        (2, 1, 8),
        (4, 1, 8),
        (6, 4, 2),
        (8, 4, 2),
        (10, 4, 2),
    ]
    # images stay 1 frame in the 4-frame stage
    assert [plan.batch_spec(1, j).frames for j in range(5)] == [1, 1, 1, 1, 1]
    assert [plan.batches_before(0, s) for s in (0, 1, 2, 7, 10)] == [0, 1, 1, 4, 5]
    for j in range(20):
        assert plan.batches_before(0, plan.step_of_batch(0, j)) == j


def test_lr_warmup_then_constant_or_cosine_per_stage():
    const = _plan()
    assert [const.lr_at(s) for s in range(7)] == [5e-4, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 5e-4]
    cos = _plan(schedule="cosine", min_lr_ratio=0.1)
    assert cos.lr_at(2) == pytest.approx(1e-3)
    assert cos.lr_at(4) == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cos.lr_at(6) == pytest.approx(5e-4) and cos.lr_at(9) < cos.lr_at(8) < cos.lr_at(7)


def test_epochs_become_whole_cycles():
    assert stage_steps(1.0, 100, 8, (0, 1)) == 26  # ceil(100/8)=13 cycles of 2 steps
    assert stage_steps(0.5, 100, 10, (0, 1, 0)) == 9  # 50 samples / (10*2 per cycle) → 3 cycles


RECIPE = """
seed = 3
[model]
preset = "tiny"
num_frames = 4
[[sources]]
name = "vid"
kind = "video"
shards = ["s/{00000..00003}.tar"]
batch_size = 4
[[sources]]
name = "img"
kind = "image"
shards = ["i/*.tar"]
batch_size = 8
[[stages]]
name = "1f"
frames = 1
steps = 10
lr = 1e-4
[[stages]]
name = "4f"
frames = 4
epochs = 0.5
batch_sizes = { vid = 2 }
temporal_fix = "interp"
[data]
samples_per_epoch = 40
"""


def test_recipe_round_trip_and_plan(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE)
    r = load_train_recipe(path, ["optim.schedule=cosine", "stages=[]"][:1])
    assert (
        r.seed == 3
        and r.optim.schedule == "cosine"
        and r.batch_size(1, 0) == 2
        and r.batch_size(1, 1) == 8
    )
    plan = plan_from_recipe(r)
    assert [s.steps for s in plan.stages] == [10, 20] and plan.stages[1].temporal_fix == "interp"
    # the resolved copy reads back to the same recipe
    again = tmp_path / "resolved.toml"
    again.write_text(dump_toml(to_dict(r)))
    assert load_train_recipe(again) == r


def test_global_batch_sizes_divide_over_the_processes(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE)
    r = load_train_recipe(path)
    one, two = plan_from_recipe(r), plan_from_recipe(r, 2)
    # each process loads global / world; the global batch (and so the step count) is the same
    assert [s.batch_sizes for s in one.stages] == [(4, 8), (2, 8)]
    assert [s.batch_sizes for s in two.stages] == [(2, 4), (1, 4)]
    assert [s.steps for s in two.stages] == [s.steps for s in one.stages] == [10, 20]
    assert two.world_size == 2 and two.global_batch(1, 0) == 2 and two.global_batch(0, 1) == 8
    assert two.batch_table(["vid", "img"])["4f"] == {
        "vid": {"global": 2, "per_process": 1},
        "img": {"global": 8, "per_process": 4},
    }
    assert per_process_batch(96, 4, source="s", stage="t") == 24
    # never rounded: the first source/stage that does not divide is named with both numbers
    with pytest.raises(ConfigError, match=r"source 'vid', stage '1f'.* 4 .* over 3 processes"):
        plan_from_recipe(r, 3)
    with pytest.raises(ConfigError, match=r"source 'vid', stage '4f'.* 2 .* over 4 processes"):
        plan_from_recipe(r, 4)
    with pytest.raises(ConfigError, match="over 8 processes"):  # fewer clips than processes
        per_process_batch(4, 8, source="s", stage="t")


@pytest.mark.parametrize(
    "edit,msg",
    [
        ("[optim]\nlr_typo = 1", "unknown key"),
        ("[[stages]]\nname='x'\nframes=8\nsteps=1", "more frames than model.num_frames"),
        ("[[stages]]\nname='x'\nframes=1\nsteps=1\nbatch_sizes={nope=2}", "unknown source"),
        ("[[stages]]\nname='x'\nframes=1", "exactly one of steps or epochs"),
    ],
)
def test_bad_recipes_fail_with_the_key(tmp_path, edit, msg):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE + edit)
    with pytest.raises(ConfigError, match=msg):
        load_train_recipe(path)


@pytest.mark.parametrize("name", ["demo", "frozen-webvid2m-cc3m", "msrvtt-finetune"])
def test_shipped_recipes_load(name):
    root = Path(__file__).resolve().parents[2] / "train"
    r = load_train_recipe(root / f"{name}.toml")
    plan = plan_from_recipe(r)
    assert plan.total_steps > 0 and all(s.lr > 0 for s in plan.stages)
    # the paper's global batch sizes (frozen-in-time.md §2.2/§3.4; official MSR-VTT config: 16)
    paper = {"frozen-webvid2m-cc3m": [(96, 96), (24, 24)], "msrvtt-finetune": [(16,)]}
    if name in paper:
        assert [s.batch_sizes for s in plan.stages] == paper[name]
        per_gpu = [tuple(b // 8 for b in s) for s in paper[name]]
        assert [s.batch_sizes for s in plan_from_recipe(r, 8).stages] == per_gpu
    if name != "msrvtt-finetune":
        assert [s.frames for s in r.stages] == [1, 4] and {s.kind for s in r.sources} == {
            "video",
            "image",
        }
