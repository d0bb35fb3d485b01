"""Helpers shared by the stage CLIs (``webvid/<stage>/cli.py``): console, options, progress.

The CLI is the only layer that prints. Stage commands import from here so that every command
has the same ``--recipe``/``--set`` options, the same progress display and the same quiet mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from webvid.log import NullProgress, Progress, RichProgress

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
