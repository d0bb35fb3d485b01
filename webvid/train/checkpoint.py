"""Moved to :mod:`webvid.model.checkpoint`; this alias keeps old imports working."""

from webvid.model.checkpoint import (
    CHECKPOINT_FORMAT,
    TEMPORAL_FIXES,
    LoadReport,
    config_from_checkpoint,
    detect_format,
    hf_vit_to_timm,
    inflate_temporal_embed,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "LoadReport",
    "TEMPORAL_FIXES",
    "config_from_checkpoint",
    "detect_format",
    "hf_vit_to_timm",
    "inflate_temporal_embed",
    "load_checkpoint",
    "read_checkpoint",
    "save_checkpoint",
]
