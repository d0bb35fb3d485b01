"""The crawl recipe: the frozen dataclasses a ``crawl/*.toml`` file is read into.

Takes a recipe file and ``--set`` overrides (:func:`load`, through
:func:`webvid.config.load_recipe`); produces a :class:`CrawlRecipe`. Sections: ``[table]``
(list mode), ``[discover]`` (discovery mode), ``[polite]`` (robots, opt-outs, per-host limits),
``[net]`` (timeouts, retries, redirects) and ``[output]`` (record flushing). Every name carries
its unit. ``CrawlConfig`` is the old name of :class:`CrawlRecipe`, kept as an alias.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from webvid import __version__
from webvid.config import load_recipe

TOKEN = "webvid"
DEFAULT_USER_AGENT = (
    f"{TOKEN}/{__version__} (+https://github.com/webvid/webvid; dataset research crawler)"
)


@dataclasses.dataclass(frozen=True)
class TableConfig:
    """How to read a URL table (list mode)."""

    format: Literal["auto", "csv", "tsv", "parquet", "jsonl"] = "auto"
    url_col: str | None = None  # default: url, contentUrl, URL, ... (first present)
    caption_col: str | None = None  # default: caption, name, TEXT, text, title, ...
    id_col: str | None = None  # default: videoid, id, key, ...; none → id from the URL
    #: without an id column, what of the URL the id hashes: "url" (all of it) or "path"
    #: (path and query, not scheme/host/port: a table whose host moves keeps its ids)
    url_id: Literal["url", "path"] = "url"
    batch_rows: int = 8192  # Parquet rows converted at a time (fewer for wide rows)
    #: a row (all its lines) over this is recorded as reason bad_row and skipped
    max_row_bytes: int = 1024 * 1024
    max_header_bytes: int = 64 * 1024  # a longer first line is an input error
    max_columns: int = 1000  # more columns is an input error


@dataclasses.dataclass(frozen=True)
class DiscoverConfig:
    """How to walk a stock site (discovery mode)."""

    start_urls: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()  # extra hosts pages may be followed to
    follow_patterns: tuple[str, ...] = ()  # regexes: listing pages worth following
    item_patterns: tuple[str, ...] = ()  # regexes: clip pages (one record each)
    id_pattern: str | None = None  # regex with one group applied to the clip page URL
    max_pages: int = 100_000  # pages fetched in all (listings + clip pages)
    page_max_bytes: int = 5 * 1024 * 1024
    page_concurrency: int = 8
    #: CSS overrides, "selector" (text) or "selector@attr", keys: caption, media_url,
    #: description, thumbnail_url, keywords, next, item_links
    select: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("follow_patterns", "item_patterns", "id_pattern"):
            value = getattr(self, key)
            for pattern in (value,) if isinstance(value, str) else value or ():
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{key}: bad regular expression {pattern!r}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class PoliteConfig:
    """Being a good citizen: on by default, every knob explicit."""

    user_agent: str = DEFAULT_USER_AGENT
    robots_token: str = TOKEN  # the token robots.txt groups and X-Robots-Tag scopes name
    obey_robots: bool = True
    obey_x_robots_tag: bool = True
    #: what the crawl collects for: the opt-out signals are read for it (docs/ethics.md)
    purpose: Literal["train-ai", "train-genai", "search"] = "train-ai"
    allow_private: bool = False  # loopback/private/link-local targets (tests, the demo)
    private_allowlist: tuple[str, ...] = ()  # CIDR networks allowed anyway (an intranet mirror)
    per_host_concurrency: int = 4
    per_host_rps: float = 4.0  # token bucket rate per host (robots Crawl-delay can lower it)
    per_host_burst: int = 4
    max_crawl_delay_s: float = 30.0  # a larger Crawl-delay is capped here (and logged)
    host_429_pause_s: float = 5.0  # first pause of a host answering 429 (doubles each time)

    def __post_init__(self) -> None:
        for network in self.private_allowlist:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"private_allowlist: {exc}") from None


@dataclasses.dataclass(frozen=True)
class NetConfig:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0  # between two reads of a body
    total_timeout_s: float = 300.0  # whole request, redirects and body included
    retries: int = 4  # extra attempts for retryable failures
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 120.0  # a longer Retry-After ends the item as http_429/5xx
    max_redirects: int = 5
    dns_cache_ttl_s: int = 300
    chunk_bytes: int = 64 * 1024


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    dir: str = ""  # the crawl dir (-o OUT)
    flush_every: int = 2000  # records per Parquet part
    flush_interval_s: float = 30.0  # ... or this long since the last part
    fsync_media: bool = True  # sync the file system before each records part is committed
    buffer_bytes: int = 512 * 1024  # bodies up to this size are written in one go; larger
    # ones stream to media/.partial/<id>.part (resumable with Range)


@dataclasses.dataclass(frozen=True)
class CrawlRecipe:
    source: str = ""  # table path, http(s) start URL; empty → discover.start_urls
    mode: Literal["auto", "list", "discover"] = "auto"
    via: Literal["auto", "direct", "yt-dlp"] = "auto"
    limit: int | None = None  # first N items of the source (reruns continue within them)
    dry_run: bool = False
    retry_failed: bool = False
    max_bytes: int = 512 * 1024 * 1024
    max_table_bytes: int = 8 * 1024**3  # a table given as a URL (WebVid 10M's CSV is 2.7 GB)
    table_timeout_s: float = (
        6 * 3600.0
    )  # the whole download of such a table (reads: read_timeout_s)
    concurrency: int = 64  # items in flight in all
    processes: int = 1  # list mode: worker processes (items split by clip id; limits split too)
    ytdlp_threads: int = 4
    ytdlp_format: str = "best[ext=mp4]/best"
    table: TableConfig = dataclasses.field(default_factory=TableConfig)
    discover: DiscoverConfig = dataclasses.field(default_factory=DiscoverConfig)
    polite: PoliteConfig = dataclasses.field(default_factory=PoliteConfig)
    net: NetConfig = dataclasses.field(default_factory=NetConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    #: exclude lists (clip ids, URLs, sha256) and takedown logs: their items are recorded as
    #: skipped (reason taken_down) and never fetched; OUT's takedowns.parquet and those of the
    #: folders above it are read as well (docs/ethics.md, "Takedowns")
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        checks = {
            "concurrency": self.concurrency >= 1,
            "processes": 1 <= self.processes <= 64,
            "max_bytes": self.max_bytes >= 1,
            "max_table_bytes": self.max_table_bytes >= 1,
            "table_timeout_s": self.table_timeout_s > 0,
            "table.max_row_bytes": self.table.max_row_bytes >= 1,
            "table.max_header_bytes": self.table.max_header_bytes >= 1,
            "table.max_columns": self.table.max_columns >= 1,
            "polite.per_host_concurrency": self.polite.per_host_concurrency >= 1,
            "polite.per_host_rps": self.polite.per_host_rps > 0,
            "net.retries": self.net.retries >= 0,
            "net.total_timeout_s": self.net.total_timeout_s > 0,
            "output.flush_every": self.output.flush_every >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"out of range: {', '.join(bad)}")
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must be >= 0")


#: The old name of :class:`CrawlRecipe` (an alias, for scripts written before the rename).
CrawlConfig = CrawlRecipe


def load(path: str | Path | None = None, overrides: Sequence[str] = ()) -> CrawlRecipe:
    """Read a crawl recipe (defaults when ``path`` is None) with ``--set`` overrides."""
    return load_recipe(CrawlRecipe, path, list(overrides))
