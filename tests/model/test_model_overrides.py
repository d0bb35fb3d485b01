"""``--model KEY=VALUE`` parsing: every field type, and clear errors for bad keys and values."""

from __future__ import annotations

import pytest

from webvid.errors import ConfigError
from webvid.model.model import ModelConfig
from webvid.model.overrides import apply_overrides, parse_overrides, split_pairs


def test_values_parse_to_the_field_types() -> None:
    got = parse_overrides(
        [
            "num_heads=3",
            "mlp_ratio=2.5",
            "text_pretrained=no",
            "grad_checkpointing=YES",
            "text_pooling=mean",
            "text_layers=4",
            "text_heads=none",
            "tokenizer=/models/tok",
        ]
    )
    assert got == {
        "num_heads": 3,
        "mlp_ratio": 2.5,
        "text_pretrained": False,
        "grad_checkpointing": True,
        "text_pooling": "mean",
        "text_layers": 4,
        "text_heads": None,
        "tokenizer": "/models/tok",
    }
    assert type(got["num_heads"]) is int and type(got["mlp_ratio"]) is float
    assert parse_overrides({"depth": "6", "temperature": "0.07"}) == {
        "depth": 6,
        "temperature": 0.07,
    }
    assert parse_overrides(None) == {}
    for raw, want in (("1", True), ("0", False), ("true", True), ("False", False)):
        assert parse_overrides([f"text_pretrained={raw}"]) == {"text_pretrained": want}


def test_later_pairs_win_and_values_may_hold_equals() -> None:
    assert split_pairs(["depth=2", "depth=3", "tokenizer=a=b"]) == {
        "depth": "3",
        "tokenizer": "a=b",
    }


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ("num_heads=twelve", "num_heads='twelve': expected int"),
        ("mlp_ratio=wide", "mlp_ratio='wide': expected float"),
        ("text_pretrained=maybe", "text_pretrained='maybe': expected bool"),
        ("text_layers=x", "text_layers='x': expected int or none"),
        ("num_heads=none", "num_heads='none': expected int"),
        ("depth", "expected KEY=VALUE"),
        ("=3", "expected KEY=VALUE"),
    ],
)
def test_bad_values_name_the_key_and_type(item: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_overrides([item])
    assert needle in str(exc.value)


def test_unknown_key_lists_the_valid_keys() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_overrides(["heads=12"])
    msg = str(exc.value)
    assert "--model heads: unknown model setting" in msg
    for key in ("num_heads", "embed_dim", "text_hidden", "projection_dim"):
        assert key in msg


def test_inconsistent_result_is_a_config_error() -> None:
    cfg = ModelConfig.tiny()
    assert apply_overrides(cfg, {"num_heads": 8}).num_heads == 8
    with pytest.raises(ConfigError, match="not divisible by num_heads 5"):
        apply_overrides(cfg, parse_overrides(["num_heads=5"]))
