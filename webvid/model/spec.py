"""What a recipe says about the model: a preset plus field overrides, and the input statistics.

Takes nothing; defines the ``[model]`` table of a training recipe (:class:`ModelSection`, a
frozen dataclass read from TOML by :func:`webvid.config.load_recipe`), the temporal-table fixes
a recipe may name (:data:`TemporalFix`) and the ImageNet normalisation statistics. Plain
dataclasses and constants, no torch, so reading a recipe stays cheap;
:func:`webvid.model.build.model_config` turns a section into a :class:`ModelConfig`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

TemporalFix = Literal["zeros", "interp", "bilinear"]

#: ImageNet statistics (the official transforms) and the 0.5/0.5 the ViT weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSection:
    """A preset of the model library plus per-field overrides (None keeps the preset's value)."""

    preset: Literal["tiny", "base"] = "tiny"
    img_size: int | None = None
    patch_size: int | None = None
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    num_frames: int | None = None
    mlp_ratio: float | None = None
    drop_path_rate: float | None = None
    text_model: str | None = None
    text_pretrained: bool | None = None
    text_pooling: Literal["cls", "mean"] | None = None
    text_layers: int | None = None
    text_hidden: int | None = None
    text_heads: int | None = None
    tokenizer: str | None = None
    projection_dim: int | None = None
    temperature: float | None = None
    #: ImageNet ViT weights (timm or transformers layout) loaded into the video encoder: a local
    #: file or folder, ``timm:NAME`` or ``hf:ORG/NAME`` (from the local hub cache only).
    vit_weights: str | None = None
    #: The identity those weights must show (e.g. ``vit_base_patch16_224.orig_in21k_ft_in1k``;
    #: a hub ref implies its own); see :mod:`webvid.model.vit_weights`.
    vit_weights_expect: str | None = None
    #: False: use ``vit_weights`` even when they are not (or cannot be shown to be) the expected.
    vit_weights_check: bool = True
    #: A checkpoint (ours or official) to start from; ``--init`` overrides it.
    init: Path | None = None
    init_temporal_fix: TemporalFix = "zeros"

    def overrides(self) -> dict[str, Any]:
        skip = {
            "preset",
            "vit_weights",
            "vit_weights_expect",
            "vit_weights_check",
            "init",
            "init_temporal_fix",
            "relative_to",
        }
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in skip and getattr(self, f.name) is not None
        }
