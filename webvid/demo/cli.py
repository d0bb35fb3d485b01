"""``webvid demo-site``: serve the built-in demo stock site on loopback until Ctrl-C.

Takes a port, a clip count, a seed and the faults switch. Produces nothing on disk except the
cached media (``~/.cache/webvid/demo`` or ``--cache-dir``); prints the site's URL and serves it.
(The full pipeline command, ``webvid demo``, lives elsewhere.)
"""

from __future__ import annotations

import asyncio

import click
from aiohttp import web

from webvid.cliutil import console, progress_display
from webvid.demo.site import SiteConfig, make_app, start_runner
from webvid.errors import WebvidError


@click.command("demo-site")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="TCP port (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--clips",
    "n_clips",
    type=click.IntRange(0),
    default=48,
    show_default=True,
    help="Number of clips.",
)
@click.option(
    "--images",
    "n_images",
    type=click.IntRange(0),
    default=None,
    help="Rows of the CC3M-style image table [default: as many as clips].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the catalogue.")
@click.option(
    "--faults/--no-faults",
    default=True,
    show_default=True,
    help="Plant the realistic faults (429s, resets, opt-outs, broken clips, ...).",
)
@click.option(
    "--page-size",
    type=click.IntRange(1),
    default=12,
    show_default=True,
    help="Clips per listing page.",
)
@click.option(
    "--crawl-delay",
    "crawl_delay_s",
    type=float,
    default=None,
    help="Crawl-delay (seconds) announced in robots.txt.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where generated media are cached [default: ~/.cache/webvid/demo].",
)
def demo_site(
    port: int,
    host: str,
    n_clips: int,
    n_images: int | None,
    seed: int,
    faults: bool,
    page_size: int,
    crawl_delay_s: float | None,
    cache_dir: str | None,
) -> None:
    """Serve the built-in demo stock-footage site until Ctrl-C.

    \b
    Routes: /videos/page/1 (listings), /clip/ID, /cdn/ID.mp4, /cc3m.tsv, /robots.txt,
    /_truth.json (every item's planted fault and expected crawl outcome).
    """
    config = SiteConfig(
        seed=seed,
        n_clips=n_clips,
        n_images=n_clips if n_images is None else n_images,
        page_size=page_size,
        faults=faults,
        crawl_delay_s=crawl_delay_s,
        cache_dir=cache_dir,
    )
    with progress_display() as progress:
        app = make_app(config, progress=progress)
    try:
        asyncio.run(_serve_forever(app, host, port, config))
    except KeyboardInterrupt:
        console.print("stopped")


async def _serve_forever(app: web.Application, host: str, port: int, config: SiteConfig) -> None:
    try:
        runner, url = await start_runner(app, host, port)
    except OSError as exc:
        raise WebvidError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (pick another --port, or 0)"
        ) from exc
    try:
        console.print(
            f"demo stock site: [bold]{url}/[/]  ({config.n_clips} clips, "
            f"{config.n_images} images, faults {'on' if config.faults else 'off'}, "
            f"seed {config.seed})"
        )
        console.print(f"listings {url}/videos/page/1", soft_wrap=True)
        console.print(f"images   {url}/cc3m.tsv", soft_wrap=True)
        console.print(f"truth    {url}/_truth.json", soft_wrap=True)
        console.print("press Ctrl-C to stop")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
