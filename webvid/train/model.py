"""Moved to :mod:`webvid.model.model`; this alias keeps old imports working."""

from webvid.model.model import (
    FrozenInTime,
    ModelConfig,
    load_tokenizer,
    norm_softmax_loss,
    similarity,
    tokenize,
)

__all__ = [
    "FrozenInTime",
    "ModelConfig",
    "load_tokenizer",
    "norm_softmax_loss",
    "similarity",
    "tokenize",
]
