"""Moved to :mod:`webvid.retrieval.search`; this alias keeps old imports working."""

from webvid.retrieval.search import (
    INDEX_META_KEY,
    Hit,
    build_index,
    encode_queries,
    index_meta,
    search,
)

__all__ = [
    "Hit",
    "INDEX_META_KEY",
    "build_index",
    "encode_queries",
    "index_meta",
    "search",
]
