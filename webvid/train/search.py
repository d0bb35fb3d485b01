"""Moved to :mod:`webvid.retrieval.search`; this alias keeps old imports working."""

from webvid.retrieval.search import (
    INDEX_META_KEY,
    OVERRIDES_KEY,
    STALE_NAMED,
    Hit,
    build_index,
    check_sources,
    encode_queries,
    index_meta,
    query_overrides,
    rebuild_command,
    search,
    top_k,
)

__all__ = [
    "Hit",
    "INDEX_META_KEY",
    "OVERRIDES_KEY",
    "STALE_NAMED",
    "build_index",
    "check_sources",
    "encode_queries",
    "index_meta",
    "query_overrides",
    "rebuild_command",
    "search",
    "top_k",
]
