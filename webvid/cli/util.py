"""Helpers shared by the commands of ``webvid.cli``: consoles, options, progress, engine.

The CLI is the only layer that prints. Commands import from here so that every command has the
same ``--recipe``/``--set`` options, the same ``--engine``/``--ray-address`` pair, the same
progress display and the same quiet mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from webvid.cli.terminal import RichProgress
from webvid.log import NullProgress, Progress

#: stdout console for results (tables, summaries); stderr console for progress and errors.
console = Console()
err_console = Console(stderr=True)


def recipe_options(
    default_recipe: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--recipe FILE`` and repeatable ``--set key=value`` (TOML literal values)."""

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override a recipe value, e.g. --set filters.min_duration_s=2 (repeatable).",
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


def is_quiet(ctx: click.Context | None = None) -> bool:
    ctx = ctx or click.get_current_context(silent=True)
    obj = (ctx.find_root().obj if ctx else None) or {}
    return bool(obj.get("quiet"))


def progress_display(ctx: click.Context | None = None) -> Any:
    """A context manager yielding a Progress: rich bars normally, nothing with ``--quiet``."""
    if is_quiet(ctx) or not err_console.is_terminal and _no_progress_env():
        return _NullCtx()
    return RichProgress(err_console)


def _no_progress_env() -> bool:
    import os

    return os.environ.get("WEBVID_NO_PROGRESS", "") not in ("", "0")


class _NullCtx:
    def __enter__(self) -> Progress:
        return NullProgress()

    def __exit__(self, *exc: Any) -> None:
        return None
