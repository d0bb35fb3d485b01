"""A :class:`ModelConfig` read from a full model's tensors and the official stored config.

Takes the weights of a Frozen-in-Time ``state_dict`` (official format, or ours without a saved
config), the official pickled config as data (``meta["config"]``: the JSON tree of the official
``parse_config.ConfigParser``) and a local text model reference, and produces the sizes the
model must be built with:

* video: ``patch_size`` and ``embed_dim`` from ``patch_embed.proj.weight`` (``(dim, 3, p, p)``),
  the grid from the ``pos_embed`` length (``1 + g²``) so ``img_size = g·p``, ``depth`` from the
  ``blocks.N`` count, ``num_frames`` from the ``temporal_embed`` rows, ``mlp_ratio`` from
  ``fc1`` out / dim, ``projection_dim`` from ``vid_proj``/``txt_proj``;
* text: hidden width (word embeddings), layer count, FFN width and vocabulary, checked against
  the text model directory's ``config.json`` (which also gives the tokenizer): a disagreement is
  an :class:`~webvid.errors.InputError` naming both sizes;
* attention heads are in no tensor: ``num_heads`` comes from the stored ``arch_config`` name
  (``base_patch16_224`` → 12) when its width matches, else one head per 64 channels; the text
  heads from the directory's config when its width matches, else also 64 per head.

``--model KEY=VALUE`` overrides (already parsed) take precedence over everything read here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from webvid.errors import InputError
from webvid.model.model import ModelConfig
from webvid.model.text import text_config

HEAD_WIDTH = 64  # default channels per attention head (ViT-B and DistilBERT both use 64)
#: timm ViT names the official configs use (``arch_config``) → (width, heads).
ARCH_HEADS = {
    "tiny": (192, 3),
    "small": (384, 6),
    "base": (768, 12),
    "large": (1024, 16),
    "huge": (1280, 16),
}
_ARCH = re.compile(r"^(tiny|small|base|large|huge)_patch(\d+)_(\d+)")
_TEXT_LAYER = re.compile(r"^text_model\.(transformer\.layer|encoder\.layer|layers?)\.(\d+)\.")
_VIDEO_BLOCK = re.compile(r"^video_model\.blocks\.(\d+)\.")


@dataclass(frozen=True)
class TextShape:
    """The text encoder's sizes as its tensors show them."""

    family: str  # "distilbert" (transformer.layer.N) or "bert" (encoder.layer.N)
    hidden: int
    layers: int
    ffn: int | None
    vocab: int


def _need(state: Mapping[str, Tensor], key: str, where: str) -> Tensor:
    if key not in state:
        raise InputError(f"{where}: no {key!r}; not a full Frozen-in-Time model checkpoint")
    return state[key]


def default_heads(width: int, what: str) -> int:
    """One head per :data:`HEAD_WIDTH` channels; an error when that does not divide ``width``."""
    heads = max(1, width // HEAD_WIDTH)
    if width % heads:
        raise InputError(
            f"{what} width {width} is not a multiple of {HEAD_WIDTH}; the head count is in no "
            f"tensor: pass it with --model {'num_heads' if what == 'video' else 'text_heads'}=N"
        )
    return heads


def video_sizes(state: Mapping[str, Tensor], where: str) -> dict[str, Any]:
    """Image/patch size, width, depth, frames, MLP ratio and projection from the tensors."""
    proj = _need(state, "video_model.patch_embed.proj.weight", where)
    if proj.ndim != 4 or proj.shape[2] != proj.shape[3]:
        raise InputError(f"{where}: patch embedding of shape {tuple(proj.shape)} is not square")
    dim, patch = int(proj.shape[0]), int(proj.shape[2])
    tokens = int(_need(state, "video_model.pos_embed", where).shape[1]) - 1
    grid = round(tokens**0.5)
    if grid * grid != tokens:
        raise InputError(f"{where}: position table of {tokens} patches is not a square grid")
    depth = 1 + max(
        (int(m.group(1)) for k in state if (m := _VIDEO_BLOCK.match(k))),
        default=-1,
    )
    if depth == 0:
        raise InputError(f"{where}: no video_model.blocks.N tensors")
    fc1 = _need(state, "video_model.blocks.0.mlp.fc1.weight", where)
    vid = _need(state, "vid_proj.0.weight", where)
    return {
        "img_size": grid * patch,
        "patch_size": patch,
        "embed_dim": dim,
        "depth": depth,
        "num_frames": int(_need(state, "video_model.temporal_embed", where).shape[1]),
        "mlp_ratio": float(fc1.shape[0]) / dim,
        "projection_dim": int(vid.shape[0]),
    }


def text_shape(state: Mapping[str, Tensor], where: str) -> TextShape:
    """The text encoder's width, depth, FFN width and vocabulary from the tensors."""
    words = _need(state, "text_model.embeddings.word_embeddings.weight", where)
    found: dict[str, set[int]] = {}
    for key in state:
        if m := _TEXT_LAYER.match(key):
            found.setdefault(m.group(1), set()).add(int(m.group(2)))
    if not found:
        raise InputError(f"{where}: no text_model layer tensors")
    stem, layers = max(found.items(), key=lambda kv: len(kv[1]))
    family = "distilbert" if stem == "transformer.layer" else "bert"
    ffn_key = {
        "distilbert": "text_model.transformer.layer.0.ffn.lin1.weight",
        "bert": f"text_model.{stem}.0.intermediate.dense.weight",
    }[family]
    ffn = state.get(ffn_key)
    return TextShape(
        family=family,
        hidden=int(words.shape[1]),
        layers=1 + max(layers),
        ffn=int(ffn.shape[0]) if ffn is not None else None,
        vocab=int(words.shape[0]),
    )


def official_hints(stored: Any) -> dict[str, Any]:
    """What the official JSON config says: ``arch_config``, ``num_frames``, the text model name."""
    if not isinstance(stored, Mapping):
        return {}
    args = (stored.get("arch") or {}).get("args") or {}
    video = args.get("video_params") or {}
    text = args.get("text_params") or {}
    out: dict[str, Any] = {}
    if isinstance(video.get("arch_config"), str):
        out["arch_config"] = video["arch_config"]
    if isinstance(video.get("num_frames"), int):
        out["num_frames"] = video["num_frames"]
    if isinstance(text.get("model"), str):
        out["text_model"] = text["model"]
    if isinstance(args.get("projection_dim"), int):
        out["projection_dim"] = args["projection_dim"]
    return out


def video_heads(dim: int, arch_config: str | None) -> int:
    """Heads for a ViT of width ``dim``: the ``arch_config`` name's when its width matches."""
    m = _ARCH.match(arch_config or "")
    if m and ARCH_HEADS[m.group(1)][0] == dim:
        return ARCH_HEADS[m.group(1)][1]
    return default_heads(dim, "video")


def _text_family(cfg: Any) -> str:
    return "distilbert" if getattr(cfg, "model_type", "") == "distilbert" else "bert"


def _ffn_width(cfg: Any) -> int | None:
    for name in ("hidden_dim", "intermediate_size"):
        if isinstance(getattr(cfg, name, None), int):
            return int(getattr(cfg, name))
    return None


def check_text(shape: TextShape, text_model: str, values: Mapping[str, Any], where: str) -> dict:
    """Text sizes for the build; an error naming both sides when the directory disagrees."""
    given = {k: values[k] for k in ("text_layers", "text_hidden", "text_heads") if k in values}
    out: dict[str, Any] = {}
    if (
        "text_hidden" in given
        and "text_heads" not in given
        and text_config(text_model).hidden_size != given["text_hidden"]
    ):
        out["text_heads"] = default_heads(int(given["text_hidden"]), "text")
    sizes = {**given, **out}
    cfg = text_config(
        text_model, sizes.get("text_layers"), sizes.get("text_hidden"), sizes.get("text_heads")
    )
    pairs = [
        ("model type", _text_family(cfg), shape.family),
        ("hidden size", cfg.hidden_size, shape.hidden),
        ("layers", cfg.num_hidden_layers, shape.layers),
        ("vocabulary", cfg.vocab_size, shape.vocab),
    ]
    if shape.ffn is not None:
        pairs.append(("FFN width", _ffn_width(cfg), shape.ffn))
    bad = [f"{name} {mine} vs {theirs}" for name, mine, theirs in pairs if mine != theirs]
    if bad:
        hint = (
            f"pass the --text-model directory the checkpoint was trained with, or rebuild the "
            f"text model at the checkpoint's size with --model text_hidden={shape.hidden} "
            f"--model text_layers={shape.layers}"
        )
        raise InputError(
            f"{where}: the text model {text_model!r} does not match the checkpoint's text "
            f"tensors (directory config vs checkpoint: {'; '.join(bad)}); {hint}"
        )
    return out


def config_from_tensors(
    state: Mapping[str, Tensor],
    stored: Any,
    text_model: str,
    values: Mapping[str, Any],
    where: str,
) -> ModelConfig:
    """The :class:`ModelConfig` these tensors need (``values``: parsed ``--model`` overrides)."""
    sizes = video_sizes(state, where)
    hints = official_hints(stored)
    dim = int(values.get("embed_dim", sizes["embed_dim"]))
    if "num_heads" not in values:
        sizes["num_heads"] = video_heads(dim, hints.get("arch_config"))
    txt = _need(state, "txt_proj.1.weight", where)
    if int(txt.shape[0]) != sizes["projection_dim"]:
        raise InputError(
            f"{where}: text projection {tuple(txt.shape)} and video projection width "
            f"{sizes['projection_dim']} differ"
        )
    extra = check_text(text_shape(state, where), text_model, values, where)
    merged = {
        **sizes,
        **extra,
        "text_model": text_model,
        "text_pretrained": False,
        **values,
    }
    try:
        return ModelConfig(**merged)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: cannot build a model of these sizes: {exc}") from None
