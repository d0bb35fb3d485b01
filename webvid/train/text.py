"""Moved to :mod:`webvid.model.text`; this alias keeps old imports working."""

from webvid.model.text import (
    DEFAULT_TEXT_MODEL,
    build_text_model,
    load_tokenizer,
    pool,
    text_config,
    text_forward,
    tokenize,
)

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "build_text_model",
    "load_tokenizer",
    "pool",
    "text_config",
    "text_forward",
    "tokenize",
]
