"""Helpers shared by the commands of ``webvid.cli``: consoles, options, progress, engine.

The CLI is the only layer that prints. Commands import from here so that every command has the
same ``--recipe``/``--set`` options, the same ``--engine``/``--ray-address`` pair, the same
progress display and the same quiet mode.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from webvid.cli.terminal import PlainProgress, RichProgress
from webvid.errors import ConfigError
from webvid.log import NullProgress, Progress

#: stdout console for results (tables, summaries); stderr console for progress and errors.
console = Console()
err_console = Console(stderr=True)


def recipe_options(
    default_recipe: str | None = None, *, example: str = "filters.min_duration_s=2"
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--recipe FILE`` and repeatable ``--set key=value`` (TOML literal values); ``example``
    is a ``KEY=VALUE`` of this command's recipe, shown in the help (a test loads it)."""

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help=f"Override a recipe value, e.g. --set {example} (repeatable).",
        )(f)
        f = click.option(
            "--recipe",
            type=click.Path(dir_okay=False),
            default=default_recipe,
            show_default=default_recipe is not None,
            help="TOML recipe file.",
        )(f)
        return f

    return deco


def engine_options(
    engine_help: str, address_help: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--engine local|ray`` and ``--ray-address``: where a stage's units of work run.

    The command reads the choice and hands the work to the local engine (the stage's own
    ``run``) or to the Ray driver in :mod:`webvid.scale`; stages never choose it themselves.
    """

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--ray-address", default=None, help=address_help)(f)
        f = click.option(
            "--engine",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help=engine_help,
        )(f)
        return f

    return deco


def check_engine(engine: str | None, ray_address: str | None) -> None:
    """A Ray address only makes sense with ``--engine ray``: a usage error otherwise."""
    if ray_address and engine != "ray":
        raise click.UsageError("--ray-address needs --engine ray")


def check_output_file(path: str, *, flag: str, force: bool) -> None:
    """Before the work: ``path`` is a file name (not a folder) in a folder that exists and can
    be written; an existing file needs ``force``. A usage error names the option."""
    target = Path(path)
    if target.is_dir():
        raise click.BadParameter(f"{path} is a folder; give a file name", param_hint=flag)
    folder = target.parent
    if not folder.is_dir():
        raise click.BadParameter(f"the folder {folder} does not exist", param_hint=flag)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot write in {folder}", param_hint=flag)
    if target.exists() and not force:
        raise click.BadParameter(f"{path} exists; add --force to overwrite it", param_hint=flag)


def model_overrides(items: tuple[str, ...]) -> dict[str, str]:
    """``--model KEY=VALUE`` items as a dict of raw strings (the model library parses them)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--model")
        out[key.strip()] = value
    return out


def is_quiet(ctx: click.Context | None = None) -> bool:
    ctx = ctx or click.get_current_context(silent=True)
    obj = (ctx.find_root().obj if ctx else None) or {}
    return bool(obj.get("quiet"))


#: Seconds between the plain progress lines of a run whose stderr is not a terminal.
PROGRESS_EVERY_ENV = "WEBVID_PROGRESS_EVERY"


def progress_display(ctx: click.Context | None = None) -> Any:
    """A context manager yielding a Progress: rich bars on a terminal; plain lines every
    ``$WEBVID_PROGRESS_EVERY`` seconds (default 30; 0: only the last) when stderr is a log
    file, a pipe or CI; nothing with ``--quiet`` or ``WEBVID_NO_PROGRESS=1`` off a terminal."""
    if is_quiet(ctx):
        return _NullCtx()
    if err_console.is_terminal:
        return RichProgress(err_console)
    if _no_progress_env():
        return _NullCtx()
    return PlainProgress(err_console, interval_s=progress_every())


def progress_every() -> float:
    """``$WEBVID_PROGRESS_EVERY`` in seconds (default 30); a ConfigError when it is not one."""
    raw = os.environ.get(PROGRESS_EVERY_ENV, "").strip()
    if not raw:
        return 30.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ConfigError(f"{PROGRESS_EVERY_ENV}={raw!r}: give seconds, e.g. 30 (0: no lines)")
    return value


def _no_progress_env() -> bool:
    return os.environ.get("WEBVID_NO_PROGRESS", "") not in ("", "0")


class _NullCtx:
    def __enter__(self) -> Progress:
        return NullProgress()

    def __exit__(self, *exc: Any) -> None:
        return None
