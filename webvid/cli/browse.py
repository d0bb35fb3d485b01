"""``webvid browse``: serve the read-only browser (:mod:`webvid.browse`) over a data root.

Takes a data root, a host (loopback by default; another one is warned about) and a port;
produces nothing on disk; prints the URL and serves until Ctrl-C.
"""

from __future__ import annotations

import asyncio

import click

from webvid.browse.catalog import Root, open_root
from webvid.browse.server import is_loopback, serve
from webvid.cli.util import console, err_console


@click.command("browse")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; anything but loopback exposes the data to the network.",
)
def browse(root: str, port: int, host: str) -> None:
    """See ROOT in a web browser: clips, captions, scores, verdicts, search, SQL (read-only).

    \b
    Pages: Overview (funnel, counts, report plots, shard sizes, training curves),
    Samples (clips playing in place, filters), Threshold (what a new value would drop,
    with its --set override), Sample detail, Search (an embedding index from webvid
    embed), SQL (the sandbox of webvid query). Nothing is written under ROOT; a
    sorted copy of its clip table is kept in ~/.cache/webvid/browse
    ($WEBVID_BROWSE_CACHE), so memory stays bounded and later opens are instant.
    """
    if not is_loopback(host):
        err_console.print(
            f"[yellow]warning:[/] binding {host}: anyone who can reach this address can read "
            "every clip and record under the root (there is no authentication)"
        )
    with console.status("opening the data root"):
        data = open_root(root)
    asyncio.run(_serve(data, host, port))


async def _serve(data: Root, host: str, port: int) -> None:
    async with serve(data, host, port) as url:
        console.print(f"webvid browse: {url}  (Ctrl-C to stop)")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
