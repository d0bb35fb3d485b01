"""The shipped recipes load, and shards/webvid.toml is exactly the built-in defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from webvid.errors import ConfigError
from webvid.shards.recipe import ShardRecipe, load

RECIPES = Path(__file__).resolve().parents[2] / "shards"


@pytest.mark.parametrize("name", ["webvid.toml", "cc3m.toml", "demo.toml"])
def test_recipe_loads(name: str) -> None:
    assert isinstance(load(RECIPES / name), ShardRecipe)


def test_webvid_recipe_is_the_default() -> None:
    assert load(RECIPES / "webvid.toml") == ShardRecipe()


def test_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        load(None, ["filters.min_motoin=0.1"])
    with pytest.raises(ConfigError, match="val_fraction"):
        load(None, ["output.val_fraction=1.5"])
    with pytest.raises(ConfigError, match="scene_cut"):
        load(None, ["filters.scene_cut=maybe"])


def test_fingerprint_ignores_workers_only() -> None:
    assert load(None, ["workers=1"]).fingerprint() == load(None, ["workers=2"]).fingerprint()
    assert load(None, ["transform.crf=30"]).fingerprint() != ShardRecipe().fingerprint()
