"""``webvid doctor``: the checks of :mod:`webvid.doctor` as a table, exit 1 if one required fails.

Takes a data root (for the free-disk figure); prints one row per check (found, status, fix) and
a closing line naming the fixes of what is missing.
"""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from webvid.cli.util import console
from webvid.doctor import check_all


@click.command("doctor")
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Data root to check for free disk.",
)
def doctor(root: str) -> None:
    """Check ffmpeg, Python packages, torch and disk; exit 1 if something required is missing.

    The disk check fails below 1 GiB or 2 % free on the --root disk, and says "low" below
    5 GiB or 5 %.
    """
    checks = check_all(root)
    table = Table("check", "found", "status", "fix", header_style="bold")
    for c in checks:
        if c.ok:
            status = "[yellow]low[/]" if c.warn else "[green]ok[/]"
        else:
            status = f"[red]{c.fail_label}[/]" if c.required else "[yellow]optional[/]"
        table.add_row(escape(c.name), escape(c.found), status, escape(c.fix))
    console.print(table)
    missing = [c for c in checks if c.required and not c.ok]
    if missing:
        console.print(
            f"[red]{len(missing)} required check(s) failed.[/] Fix: "
            + "; ".join(sorted({c.fix for c in missing}))
        )
        raise SystemExit(1)
    console.print("[green]everything webvid needs is here[/]")
