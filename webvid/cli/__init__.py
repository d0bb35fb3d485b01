"""The ``webvid`` command line: one group, stage commands loaded lazily.

Global options: ``--version``, ``-v/--verbose`` (repeatable), ``--quiet``, ``--debug``.
Library errors (:class:`webvid.errors.WebvidError`) are shown as one line, exit code 2;
anything unexpected as one line plus a hint to rerun with ``--debug`` (which shows the
traceback), exit code 1.

This package is the only one that imports click and rich and builds commands; the stage
packages are libraries it calls. One module per command family, each imported only when its
command is called, so ``webvid --help`` and ``webvid query`` stay fast and need no torch import:

* :mod:`webvid.cli.crawl` — ``crawl`` (picks the engine: local, or Ray through ``webvid.scale``);
* :mod:`webvid.cli.shard` — ``shard`` (the same ``--engine`` choice);
* :mod:`webvid.cli.takedown` — ``takedown`` (removes listed clips from finished shard sets);
* :mod:`webvid.cli.prepare` — ``prepare`` (a benchmark's train split → shards);
* :mod:`webvid.cli.train` — ``train``, ``eval``, ``embed``, ``search``;
* :mod:`webvid.cli.score` — ``score`` and ``refilter`` (curation with the model in the loop);
* :mod:`webvid.cli.demo` — ``demo`` and ``demo-site``;
* :mod:`webvid.cli.query` — ``query``; :mod:`webvid.cli.browse` — ``browse``;
  :mod:`webvid.cli.doctor` — ``doctor``;
* :mod:`webvid.cli.util` — consoles, shared options, the progress display;
  :mod:`webvid.cli.terminal` — rich progress bars and the log handler;
  :mod:`webvid.cli.doc` — ``docs/cli.md`` generated from the commands.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import sys
from typing import Any

import click
from rich.markup import escape

from webvid import __version__
from webvid.cli.util import console, err_console
from webvid.errors import WebvidError

#: command name → "module:attribute" of its click command, and a one-line help.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "crawl": (
        "webvid.cli.crawl:crawl",
        "Collect clips and captions from a stock site or a URL table.",
    ),
    "shard": (
        "webvid.cli.shard:shard",
        "Curate crawl dirs into WebDataset shards with Parquet metadata.",
    ),
    "prepare": (
        "webvid.cli.prepare:prepare_cmd",
        "Turn a benchmark's train split into fine-tuning shards, all captions kept.",
    ),
    "takedown": (
        "webvid.cli.takedown:takedown",
        "Remove listed clips from every shard set and embedding index under a root.",
    ),
    "score": (
        "webvid.cli.score:score",
        "Score a shard set with a checkpoint: caption agreement, semantic near-duplicates.",
    ),
    "refilter": (
        "webvid.cli.score:refilter",
        "Apply score filters to a finished shard set, rewriting only the shards that change.",
    ),
    "train": ("webvid.cli.train:train", "Train the Frozen-in-Time dual encoder on shards."),
    "eval": ("webvid.cli.train:eval_cmd", "Text-video retrieval metrics of a checkpoint."),
    "embed": ("webvid.cli.train:embed", "Embed a shard set into a Parquet index."),
    "search": ("webvid.cli.train:search", "Text search over an embedding index."),
    "demo": ("webvid.cli.demo:demo", "The whole pipeline on the built-in demo stock site."),
    "demo-site": ("webvid.cli.demo:demo_site", "Serve the built-in demo stock site on loopback."),
    "query": ("webvid.cli.query:query", "DuckDB SQL over all metadata under a data root."),
    "browse": ("webvid.cli.browse:browse", "See a data root in a web browser (read-only)."),
    "doctor": ("webvid.cli.doctor:doctor", "Check that everything webvid needs is installed."),
}


def _available(name: str) -> bool:
    module = LAZY_COMMANDS[name][0].split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {n for n in LAZY_COMMANDS if _available(n)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in LAZY_COMMANDS:
            return cmd
        target = LAZY_COMMANDS[name][0]
        if not _available(name):
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so `webvid --help` imports no stage.
        rows = [(n, LAZY_COMMANDS[n][1]) for n in self.list_commands(ctx) if n in LAZY_COMMANDS]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="webvid")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for library debug logs).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bars.")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """webvid: build WebVid-scale video-text datasets and train Frozen-in-Time on them.

    \b
    Stages, joined by files on disk:
      webvid crawl  SOURCE -o crawl/     stock site or URL table → clips + captions
      webvid shard  crawl/ -o shards/    curation → WebDataset shards + Parquet
      webvid train  --recipe train/demo.toml -o runs/x
      webvid query  "SELECT status, count(*) FROM crawl GROUP BY 1"
    """
    from webvid.cli.terminal import setup_logging

    ctx.ensure_object(dict)
    ctx.obj.update(verbose=verbose, quiet=quiet, debug=debug)
    setup_logging(verbose, quiet=quiet, console=err_console)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: run the group and turn errors into one clear line."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        return cli.main(args=args, prog_name="webvid", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted: committed work is kept; rerun the same command to resume")
        sys.exit(130)
    except WebvidError as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last line of defence
        if debug:
            raise
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # a write outside webvid.io's atomic helpers: still one line, naming the path
            from webvid.io import disk_full_error

            full = disk_full_error(exc, exc.filename) if exc.filename else None
            text = str(full) if full else f"{exc.strerror or exc} (the file is not known)"
            err_console.print(
                f"[bold red]error:[/] {escape(text)}; free space and rerun: committed work is kept",
                highlight=False,
            )
            sys.exit(2)
        err_console.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))} (rerun with --debug for the traceback)",
            highlight=False,
        )
        sys.exit(1)


__all__ = ["cli", "main", "console", "err_console"]
