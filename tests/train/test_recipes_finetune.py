"""The shipped fine-tuning recipes (train/finetune-*.toml): one per benchmark dataset, each loads
and plans, and each keeps the official MSR-VTT config's settings (frozen-in-time.md §3.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from webvid.benchmarks import DATASETS
from webvid.errors import ConfigError
from webvid.train.recipe import load
from webvid.train.schedule import plan_from_recipe

TRAIN = Path(__file__).resolve().parents[2] / "train"
RECIPES = sorted(TRAIN.glob("finetune-*.toml"))


def test_one_fine_tune_recipe_per_dataset() -> None:
    assert sorted(p.stem.removeprefix("finetune-") for p in RECIPES) == sorted(DATASETS)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_fine_tune_recipe_loads_with_the_official_settings(path: Path) -> None:
    r = load(path)
    dataset = path.stem.removeprefix("finetune-")
    assert [s.name for s in r.sources] == [dataset]
    assert r.sources[0].shards == (f"/data/{dataset}-shards/train/*.tar",)  # webvid prepare's
    assert [(s.frames, s.lr) for s in r.stages] == [(4, 3e-5)]
    assert r.sources[0].batch_size == 16  # global, as configs/msrvtt_4f_i21k.json
    assert r.data.caption_sample == "rand" and r.optim.schedule == "constant"
    assert r.optim.weight_decay == 0.0 and r.model.init is not None
    # the global 16 divides over 1, 2, 4, 8 or 16 processes; 3 is an error, not a rounding
    plan = plan_from_recipe(r)
    assert plan.total_steps > 0
    assert [s.batch_sizes for s in plan_from_recipe(r, 8).stages] == [(2,)]
    with pytest.raises(ConfigError):
        plan_from_recipe(r, 3)


def test_msrvtt_epoch_is_the_official_9000_samples() -> None:
    r = load(TRAIN / "finetune-msrvtt.toml")
    assert r.data.samples_per_epoch == 9000
    assert plan_from_recipe(r).total_steps == 50 * 9000 // 16  # 28,125 steps of 16 clips
