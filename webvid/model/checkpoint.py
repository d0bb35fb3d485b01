"""Load official Frozen-in-Time, our own and ImageNet ViT weights into a :class:`FrozenInTime`.

Takes a model and a path — a file (``.pth``/``.pth.tar``/``.pt``/``.bin`` via the restricted
unpickler of :mod:`webvid.model.safe_pickle`, or ``.safetensors``) or a directory holding
``model.safetensors`` / ``pytorch_model.bin`` — and fills the model's weights, returning a
:class:`LoadReport`. Formats, detected from the keys:

* ``frozen-in-time``: a full model ``state_dict`` (official checkpoints: a dict with
  ``state_dict`` whose keys may carry ``module.``, plus a pickled ``parse_config.ConfigParser``
  that is read as data, never imported). Loaded strictly after the official fix-ups: the
  temporal table is inflated/truncated to the model's ``num_frames`` (``temporal_fix``), an
  ``embeddings.position_ids`` key is dropped, a BERT pooler the model does not have is dropped;
  a different spatial grid is an error (as in the official code). Our own checkpoints
  (:func:`save_checkpoint`) are the same layout plus ``format`` and ``config`` entries.
* ``timm-vit`` (``vit_base_patch16_224`` keys) and ``hf-vit`` (``transformers`` ``ViTModel`` /
  ``ViTForImageClassification``, 4.x and 5.x key names): mapped into the space attention, norms
  and MLPs of ``video_model``; the time attention, ``norm3`` and ``temporal_embed`` keep their
  initialisation and heads/poolers are dropped. Anything else missing or mis-shaped is an error.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from webvid.errors import InputError
from webvid.io import atomic_path
from webvid.model.safe_pickle import OfficialConfigStub, safe_torch_load

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "webvid.frozen-in-time/1"
TEMPORAL_FIXES = ("zeros", "interp", "bilinear")
_DIR_FILES = ("model.safetensors", "pytorch_model.bin", "checkpoint.pt", "latest.pt")


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did."""

    path: str
    source_format: str  # frozen-in-time | webvid | timm-vit | hf-vit
    temporal: str | None = None  # e.g. "1->4 zeros" when the table was resized
    dropped: list[str] = field(default_factory=list)  # checkpoint keys not used
    kept_init: list[str] = field(default_factory=list)  # model keys left at initialisation
    meta: dict[str, Any] = field(default_factory=dict)  # epoch, arch, config, ... (not weights)


def inflate_temporal_embed(embed: Tensor, num_frames: int, mode: str = "zeros") -> Tensor:
    """Resize a ``(1, N, D)`` temporal table to ``(1, num_frames, D)`` as the official code does.

    ``N > num_frames``: keep the first rows (every mode). ``N < num_frames``: ``zeros`` pads
    with zero rows; ``interp`` is nearest-neighbour (4→8 duplicates each row); ``bilinear`` is
    bilinear along the frame axis with ``align_corners=False`` (the embedding axis untouched).
    """
    if mode not in TEMPORAL_FIXES:
        raise ValueError(f"temporal_fix must be one of {TEMPORAL_FIXES}, got {mode!r}")
    if embed.ndim != 3:
        raise ValueError(f"expected a (1, frames, dim) table, got {tuple(embed.shape)}")
    n, dim = embed.shape[1], embed.shape[2]
    if n >= num_frames:
        return embed[:, :num_frames].clone()
    if mode == "zeros":
        out = embed.new_zeros(embed.shape[0], num_frames, dim)
        out[:, :n] = embed
        return out
    resized = F.interpolate(
        embed.float().unsqueeze(0),
        size=(num_frames, dim),
        mode="nearest" if mode == "interp" else "bilinear",
    )
    return resized.squeeze(0).to(embed.dtype)


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The weights (``module.``/``_orig_mod.`` prefixes stripped) and the rest of the file."""
    file = _resolve(Path(path))
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(file))
        except Exception as exc:  # safetensors raises its own error types
            raise InputError(f"{file}: not a readable safetensors file: {exc}") from None
    else:
        obj = safe_torch_load(file)
    if not isinstance(obj, Mapping):
        raise InputError(f"{file}: expected a dict of weights, got {type(obj).__name__}")
    meta: dict[str, Any] = {}
    weights: Any = obj
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), Mapping):
            weights = obj[key]
            meta = {k: v for k, v in obj.items() if k not in (key, "optimizer")}
            break
    state = {}
    for k, v in weights.items():
        if not isinstance(v, Tensor):
            raise InputError(f"{file}: weight {k!r} is a {type(v).__name__}, not a tensor")
        for prefix in ("module.", "_orig_mod."):
            k = k.removeprefix(prefix)
        state[k] = v
    if not state:
        raise InputError(f"{file}: holds no weights")
    if isinstance(meta.get("config"), OfficialConfigStub):  # keep the object, expose its JSON
        meta["config_object"] = meta["config"]
        meta["config"] = meta["config"].config
    return state, meta


def _resolve(path: Path) -> Path:
    if path.is_dir():
        for name in _DIR_FILES:
            if (path / name).is_file():
                return path / name
        raise InputError(f"{path}: no weights file in this directory (looked for {_DIR_FILES})")
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    return path


def detect_format(state: Mapping[str, Tensor]) -> str:
    """``frozen-in-time``, ``timm-vit`` or ``hf-vit`` from the key names."""
    keys = list(state)
    if any(k.startswith(("video_model.", "text_model.", "vid_proj.", "txt_proj.")) for k in keys):
        return "frozen-in-time"
    if "patch_embed.proj.weight" in state and "blocks.0.attn.qkv.weight" in state:
        return "timm-vit"
    if any(k.endswith("embeddings.patch_embeddings.projection.weight") for k in keys):
        return "hf-vit"
    raise InputError(f"unrecognised checkpoint layout (first keys: {keys[:5]})")


_HF_LAYER = re.compile(r"^(?:vit\.)?(?:encoder\.layer|layers)\.(\d+)\.(.+)$")
_HF_LAYER_KEYS = {
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
    "attention.output.dense": "attn.proj",
    "attention.o_proj": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_HF_QKV = {
    "attention.attention.query": 0,
    "attention.attention.key": 1,
    "attention.attention.value": 2,
    "attention.q_proj": 0,
    "attention.k_proj": 1,
    "attention.v_proj": 2,
}


def hf_vit_to_timm(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """``transformers`` ViT keys → timm ViT keys (q, k, v fused into ``qkv``); also dropped keys."""
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[int, str], dict[int, Tensor]] = {}
    dropped: list[str] = []
    top = {
        "embeddings.cls_token": "cls_token",
        "embeddings.position_embeddings": "pos_embed",
        "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
        "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
        "layernorm.weight": "norm.weight",
        "layernorm.bias": "norm.bias",
    }
    for key, value in state.items():
        bare = key.removeprefix("vit.")
        if bare in top:
            out[top[bare]] = value
            continue
        m = _HF_LAYER.match(key)
        if m is None:
            dropped.append(key)  # pooler, classifier, mask token
            continue
        layer, rest = int(m.group(1)), m.group(2)
        stem, _, kind = rest.rpartition(".")
        if stem in _HF_QKV:
            qkv.setdefault((layer, kind), {})[_HF_QKV[stem]] = value
        elif stem in _HF_LAYER_KEYS:
            out[f"blocks.{layer}.{_HF_LAYER_KEYS[stem]}.{kind}"] = value
        else:
            dropped.append(key)
    for (layer, kind), parts in qkv.items():
        if len(parts) != 3:
            raise InputError(f"ViT layer {layer}: query/key/value {kind} incomplete")
        out[f"blocks.{layer}.attn.qkv.{kind}"] = torch.cat([parts[0], parts[1], parts[2]], dim=0)
    return out, dropped


def _video_model(model: nn.Module) -> nn.Module:
    return model.video_model if hasattr(model, "video_model") else model


def _load_vit(model: nn.Module, state: dict[str, Tensor], report: LoadReport) -> None:
    """timm-layout ViT weights into the space attention / norms / MLPs of the video model."""
    video = _video_model(model)
    for key in list(state):
        if key.startswith(("head.", "pre_logits.", "fc_norm.", "head_drop.")):
            report.dropped.append(key)
            del state[key]
    own = video.state_dict()
    pos = state.get("pos_embed")
    if pos is not None and pos.shape != own["pos_embed"].shape:
        raise InputError(
            f"{report.path}: ViT position table {tuple(pos.shape)} does not match the model's "
            f"{tuple(own['pos_embed'].shape)}; a different image/patch size is not supported"
        )
    try:
        result = video.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise InputError(f"{report.path}: ViT weights do not fit the video model: {exc}") from None
    if result.unexpected_keys:
        raise InputError(
            f"{report.path}: ViT keys the video model lacks: {result.unexpected_keys[:5]}"
        )
    allowed = re.compile(r"^(temporal_embed|blocks\.\d+\.(timeattn\..+|norm3\..+))$")
    other = [k for k in result.missing_keys if not allowed.match(k)]
    if other:
        raise InputError(f"{report.path}: ViT weights miss video-model keys: {other[:5]}")
    prefix = "video_model." if video is not model else ""
    report.kept_init = [prefix + k for k in result.missing_keys]


def _load_full(model: nn.Module, state: dict[str, Tensor], report: LoadReport, fix: str) -> None:
    own = model.state_dict()
    for key in list(state):
        if key.endswith("embeddings.position_ids") or (
            key.startswith("text_model.pooler.") and key not in own
        ):
            report.dropped.append(key)
            del state[key]
    key = "video_model.temporal_embed"
    if key in state and key in own and state[key].shape[1] != own[key].shape[1]:
        n, m = state[key].shape[1], own[key].shape[1]
        state[key] = inflate_temporal_embed(state[key], m, fix)
        report.temporal = f"{n}->{m} {'truncate' if n > m else fix}"
        log.info("temporal table %s", report.temporal)
    key = "video_model.pos_embed"
    if key in state and key in own and state[key].shape != own[key].shape:
        raise InputError(
            f"{report.path}: spatial position table {tuple(state[key].shape)} does not match the "
            f"model's {tuple(own[key].shape)}; a different image/patch size is not supported"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{report.path}: checkpoint does not fit this model: {exc}") from None


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], temporal_fix: str = "zeros"
) -> LoadReport:
    """Load ``path`` into ``model`` (a :class:`FrozenInTime`, or a bare video model for ViTs)."""
    if temporal_fix not in TEMPORAL_FIXES:
        raise ValueError(f"temporal_fix must be one of {TEMPORAL_FIXES}, got {temporal_fix!r}")
    model = getattr(model, "_orig_mod", model)
    model = getattr(model, "module", model)
    state, meta = read_checkpoint(path)
    fmt = detect_format(state)
    if fmt == "frozen-in-time" and meta.get("format") == CHECKPOINT_FORMAT:
        fmt = "webvid"
    report = LoadReport(str(path), fmt, meta=meta)
    if fmt == "hf-vit":
        state, report.dropped = hf_vit_to_timm(state)
        _load_vit(model, state, report)
    elif fmt == "timm-vit":
        _load_vit(model, state, report)
    else:
        _load_full(model, state, report, temporal_fix)
    log.info("loaded %s (%s), dropped %d keys", path, fmt, len(report.dropped))
    return report


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, **extra: Any) -> None:
    """Write ``{format, config, state_dict, **extra}`` atomically; ``extra`` must be plain data
    (numbers, strings, containers, tensors) so the file loads through the restricted unpickler."""
    model = getattr(model, "_orig_mod", model)
    model = getattr(model, "module", model)
    config = getattr(model, "config", None)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None,
        "state_dict": model.state_dict(),
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def config_from_checkpoint(path: str | os.PathLike[str]) -> Any:
    """The :class:`~webvid.model.model.ModelConfig` saved in one of our checkpoints."""
    from webvid.model.model import ModelConfig

    _, meta = read_checkpoint(path)
    cfg = meta.get("config")
    if meta.get("format") != CHECKPOINT_FORMAT or not isinstance(cfg, Mapping):
        raise InputError(f"{path}: not a webvid checkpoint with a saved model config")
    return ModelConfig(**cfg)
