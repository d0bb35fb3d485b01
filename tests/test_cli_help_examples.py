"""Every example in the CLI's help runs: each command line shown by ``webvid --help``, every
command's ``--help`` and ``docs/cli.md`` is parsed by that command (options, types, choices)
and its recipe and ``--set`` overrides are loaded by the stage's own loader; every ``--set``
example of an option's help loads on that command's recipe. Not the work itself: the
examples name crawl tables and run dirs a test does not have.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import click
import pytest

from webvid.cli import cli

ROOT = Path(__file__).resolve().parents[1]
#: the command's recipe loader, and a recipe its ``--set`` example is tried on
LOADERS: dict[str, tuple[str, str | None]] = {
    "crawl": ("webvid.crawl.recipe:load", None),
    "shard": ("webvid.shards.recipe:load", None),
    "refilter": ("webvid.shards.recipe:load", None),  # a shard set's filters, again
    "train": ("webvid.train.recipe:load", "train/demo.toml"),
}


def _loader(name: str) -> Callable[..., object]:
    import importlib

    module, attr = LOADERS[name][0].split(":")
    return getattr(importlib.import_module(module), attr)


def _commands() -> dict[str, click.Command]:
    ctx = click.Context(cli, info_name="webvid")
    return {n: c for n in cli.list_commands(ctx) if (c := cli.get_command(ctx, n)) is not None}


def _example_lines(text: str) -> list[str]:
    """Lines that are a command line: ``webvid SUB ...`` or ``torchrun ... -m webvid.cli SUB``
    (after an optional ``Example:`` label, before a comment set off by 3+ spaces), not usage
    lines (``[OPTIONS]``)."""
    found = []
    for raw in text.splitlines():
        line = re.sub(r"^\s*(Examples?:)?\s*", "", raw).strip()
        line = re.split(r"\s{3,}(?=[^-\s])", line)[0]
        if "[OPTIONS]" in line or not re.match(r"(webvid|torchrun)\s", line):
            continue
        if line.startswith("torchrun") and "-m webvid.cli " not in line:
            continue
        found.append(line)
    return found


def _examples() -> list[str]:
    texts = [cli.help or ""] + [c.help or "" for c in _commands().values()]
    texts.append((ROOT / "docs" / "cli.md").read_text())
    return sorted({line for t in texts for line in _example_lines(t)})


def _argv(line: str) -> list[str]:
    args = shlex.split(line)
    if args[0] == "torchrun":
        args = args[args.index("-m") + 2 :]
    else:
        args = args[1:]
    while args and args[0] in ("-v", "-vv", "-q", "--quiet", "--debug"):
        args = args[1:]
    return args


def test_the_help_has_examples() -> None:  # the checks below must have something to check
    lines = _examples()
    assert sum(line.startswith("webvid crawl") for line in lines) >= 3
    assert any("webvid.cli train --recipe" in line for line in lines)
    assert any(line.startswith("webvid query") for line in lines)


@pytest.mark.parametrize("line", _examples())
def test_help_example_parses_and_loads_its_recipe(
    line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the examples' recipe paths are relative to the checkout
    argv = _argv(line)
    name, rest = argv[0], argv[1:]
    cmd = _commands().get(name)
    assert cmd is not None, f"{line}: no command {name!r}"
    ctx = cmd.make_context(name, list(rest))  # a usage error raises here
    params = ctx.params
    if name not in LOADERS:
        return
    recipe = params.get("recipe")
    source = params.get("source")
    if name == "crawl" and source and str(source).endswith(".toml"):
        recipe = source  # a recipe given as SOURCE (discovery mode)
    if name == "train":
        assert recipe, f"{line}: train needs --recipe"
    _loader(name)(recipe, list(params.get("overrides") or ()))


def _set_examples() -> list[tuple[str, str]]:
    out = []
    for name, cmd in _commands().items():
        for param in cmd.params:
            if param.name == "overrides":
                help_text = getattr(param, "help", "") or ""
                out += [(name, ex) for ex in re.findall(r"--set (\S+=\S+)", help_text)]
    return out


def test_every_recipe_command_shows_a_set_example() -> None:
    assert {name for name, _ in _set_examples()} >= {"crawl", "shard", "train"}


@pytest.mark.parametrize(("name", "example"), _set_examples())
def test_set_example_loads_on_the_commands_recipe(
    name: str, example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert name in LOADERS, f"{name}: add its recipe loader to this test"
    _loader(name)(LOADERS[name][1], [example])  # e.g. `defaults: unknown key 'filters'`
