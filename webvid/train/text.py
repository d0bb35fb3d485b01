"""Moved to :mod:`webvid.model.text`; this alias keeps old imports working."""

from webvid.model.text import (
    DEFAULT_TEXT_MODEL,
    WEIGHTS_DOC,
    build_text_model,
    check_local_folder,
    load_tokenizer,
    pool,
    text_config,
    text_forward,
    tokenize,
)

__all__ = [
    "DEFAULT_TEXT_MODEL",
    "WEIGHTS_DOC",
    "build_text_model",
    "check_local_folder",
    "load_tokenizer",
    "pool",
    "text_config",
    "text_forward",
    "tokenize",
]
