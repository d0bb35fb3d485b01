"""What a run logs: both sources' losses, averaged over the logging window, and a progress
display that names the stage and each source's frames (a tiny model, real steps, on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webvid.log import RecordingProgress
from webvid.synth import shards as synth
from webvid.train import trainer
from webvid.train.plots import read_series

from .test_train_loop import recipe


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("logging")
    specs = synth.random_specs(16, seed=21)
    synth.write_video_shards(root / "vid", specs, per_shard=8, frames=12, pre_extract=8)
    synth.write_image_shards(root / "img", specs[:8], per_shard=8)
    return root


def _losses(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r]


def test_every_source_is_logged_with_its_window_mean(shards: Path, tmp_path: Path) -> None:
    # 1f: 4 steps, 4f: 4 steps; the sources alternate vid, img, vid, img ...
    each = trainer.run(recipe(shards, train={"log_every_steps": 1}), tmp_path / "each")
    progress = RecordingProgress()
    windowed = trainer.run(
        recipe(shards, train={"log_every_steps": 4}), tmp_path / "window", progress=progress
    )
    assert each.steps == windowed.steps == 8
    per_step = _losses(tmp_path / "each")
    logged = _losses(tmp_path / "window")
    # before the fix, a 4-step window logged only its last batch: always the image source
    assert [(r["step"], r["source"], r["batches"]) for r in logged] == [
        (4, "vid", 2),
        (4, "img", 2),
        (8, "vid", 2),
        (8, "img", 2),
    ]
    assert [r["frames"] for r in logged] == [1, 1, 4, 1]
    assert [r["stage"] for r in logged] == ["1f", "1f", "4f", "4f"]
    for rec in logged:  # the same training (same seed): the mean of the window's step losses
        mine = [
            p["loss"]
            for p in per_step
            if p["source"] == rec["source"] and rec["step"] - 4 < p["step"] <= rec["step"]
        ]
        assert len(mine) == 2
        assert rec["loss"] == pytest.approx(sum(mine) / 2, rel=1e-4)
        assert rec["grad_norm"] > 0 and rec["clips_per_s"] > 0
    steps, _, _ = read_series(tmp_path / "window" / "metrics.jsonl")  # curves.png's lines
    assert sorted(steps) == ["img", "vid"] and all(len(v) == 2 for v in steps.values())
    # the display: the step count, the stage and both sources' frames (not the batch's)
    assert progress.completed["train"] == 8 and progress.totals["train"] == 8
    fields = progress.fields["train"]
    assert fields["stage"] == "4f" and fields["frames"] == "vid 4, img 1"
    assert fields["loss"].startswith("vid ") and ", img " in fields["loss"]


def test_a_window_does_not_straddle_a_stage_change(shards: Path, tmp_path: Path) -> None:
    # logging every 3 steps: steps 1-3 are logged at 3, step 4 (the 1f stage's last) at the
    # stage change, then 5-6 at 6 and 7-8 at the end
    trainer.run(recipe(shards, train={"log_every_steps": 3}), tmp_path / "run")
    logged = [(r["step"], r["stage"], r["source"], r["batches"]) for r in _losses(tmp_path / "run")]
    assert logged == [
        (3, "1f", "vid", 2),
        (3, "1f", "img", 1),
        (4, "1f", "img", 1),
        (6, "4f", "vid", 1),
        (6, "4f", "img", 1),
        (8, "4f", "vid", 1),
        (8, "4f", "img", 1),
    ]
