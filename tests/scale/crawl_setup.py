"""The crawl recipe the Ray crawl tests run with (imported by the tests and by ``ray_child.py``,
which runs the failure paths in a child process): loopback allowed, per-host limits raised
unless a test lowers them, quick retries, small record parts."""

from __future__ import annotations

from pathlib import Path

from webvid.crawl.config import CrawlConfig, NetConfig, OutputConfig, PoliteConfig


def config(
    src: Path, out: Path, *, rps: float = 1000.0, burst: int = 100, conc: int = 16, **kw: object
) -> CrawlConfig:
    polite = PoliteConfig(
        allow_private=True,
        per_host_rps=rps,
        per_host_burst=burst,
        per_host_concurrency=conc,
        host_429_pause_s=0.2,
    )
    net = NetConfig(
        retries=1, backoff_base_s=0.05, backoff_max_s=1.0, total_timeout_s=20.0, read_timeout_s=5.0
    )
    output = OutputConfig(dir=str(out), fsync_media=False, flush_every=5, flush_interval_s=0.5)
    return CrawlConfig(source=str(src), polite=polite, net=net, output=output, concurrency=8, **kw)  # type: ignore[arg-type]
