"""Moved to :mod:`webvid.model.vit`; this alias keeps old imports working."""

from webvid.model.vit import (
    AttendFn,
    DropPath,
    Kernel,
    Mlp,
    Pattern,
    SpaceTimeBlock,
    SpaceTimeTransformer,
    VarAttention,
    VideoPatchEmbed,
    divided_attention,
    explicit_attention,
)

__all__ = [
    "AttendFn",
    "DropPath",
    "Kernel",
    "Mlp",
    "Pattern",
    "SpaceTimeBlock",
    "SpaceTimeTransformer",
    "VarAttention",
    "VideoPatchEmbed",
    "divided_attention",
    "explicit_attention",
]
