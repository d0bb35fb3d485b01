"""The old import path of the crawl recipe: the settings live in :mod:`webvid.crawl.recipe`.

Re-exports every section and ``CrawlConfig`` (an alias of
:class:`~webvid.crawl.recipe.CrawlRecipe`) so scripts written before the rename keep working.
"""

from webvid.crawl.recipe import (
    DEFAULT_USER_AGENT,
    TOKEN,
    CrawlConfig,
    CrawlRecipe,
    DiscoverConfig,
    NetConfig,
    OutputConfig,
    PoliteConfig,
    TableConfig,
    load,
)

__all__ = [
    "DEFAULT_USER_AGENT",
    "TOKEN",
    "CrawlConfig",
    "CrawlRecipe",
    "DiscoverConfig",
    "NetConfig",
    "OutputConfig",
    "PoliteConfig",
    "TableConfig",
    "load",
]
