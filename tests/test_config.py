"""Recipes: TOML into frozen dataclasses, strict keys and types, --set overrides, round trip."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from webvid.config import dump_toml, load_recipe, parse_override, to_dict
from webvid.errors import ConfigError


@dataclass(frozen=True)
class Stage:
    frames: int = 1
    lr: float = 3e-5


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 30.0
    max_bytes: int | None = None


@dataclass(frozen=True)
class Recipe:
    name: str = "x"
    via: Literal["auto", "direct", "yt-dlp"] = "auto"
    hosts: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    stages: tuple[Stage, ...] = (Stage(),)
    out: Path | None = None
    flags: dict[str, bool] = field(default_factory=dict)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


def test_load_nested_and_overrides(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
name = "demo"
hosts = ["a.example", "b.example"]
[limits]
timeout_s = 5
[[stages]]
frames = 1
[[stages]]
frames = 4
lr = 1e-5
[flags]
x = true
""",
    )
    r = load_recipe(Recipe, p, ["limits.max_bytes=1000", "via=direct", "out=/tmp/o"])
    assert r.name == "demo" and r.hosts == ("a.example", "b.example")
    assert r.limits == Limits(timeout_s=5.0, max_bytes=1000)
    assert r.stages == (Stage(1, 3e-5), Stage(4, 1e-5))
    assert r.via == "direct" and r.out == Path("/tmp/o") and r.flags == {"x": True}
    assert isinstance(r.limits.timeout_s, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.name = "y"  # type: ignore[misc]


def test_defaults_without_file() -> None:
    assert load_recipe(Recipe) == Recipe()


@pytest.mark.parametrize(
    "text, message",
    [
        ("nmae = 'x'", "unknown key 'nmae'"),
        ("[limits]\ntimeout = 3", "unknown key 'limits.timeout'"),
        ("name = 3", "name must be a string"),
        ("via = 'ftp'", "via must be one of"),
        ("[limits]\ntimeout_s = 'fast'", "limits.timeout_s must be a number"),
        ("hosts = 'a'", "hosts must be a list"),
        ("[[stages]]\nframes = 1.5", r"stages\[0\].frames must be an integer"),
        ("name = [", "invalid TOML"),
        ("[limits]\nmax_bytes = true", "limits.max_bytes must be an integer"),
    ],
)
def test_errors_name_the_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as exc:
        load_recipe(Recipe, p)
    assert str(p) in str(exc.value)


def test_missing_file_and_bad_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recipe not found"):
        load_recipe(Recipe, tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="key=value"):
        load_recipe(Recipe, None, ["novalue"])
    with pytest.raises(ConfigError, match="unknown key"):
        load_recipe(Recipe, None, ["limits.nope=1"])
    with pytest.raises(ConfigError, match="not a table"):
        load_recipe(Recipe, None, ["name=a", "name.x=1"])


def test_parse_override_values() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=3e-5") == (["a"], 3e-5)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=yt-dlp") == (["a"], "yt-dlp")
    assert parse_override('a="x=y"') == (["a"], "x=y")


def test_dump_toml_round_trips() -> None:
    r = Recipe(
        name='we"ird\nname',
        hosts=("h",),
        limits=Limits(2.5, 10),
        stages=(Stage(1, 1e-4), Stage(4, 3e-5)),
        flags={"k": False},
    )
    text = dump_toml(to_dict(r))
    back = load_recipe(Recipe, None, base=tomllib.loads(text))
    assert back == r
