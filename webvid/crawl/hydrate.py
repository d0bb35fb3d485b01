"""Hydration data → a media URL and its title (a small, bounded JSON walk; pure).

Takes the texts of a page's state blobs — ``<script id="__NEXT_DATA__">``, any
``<script type="application/json">`` (React/Next/Nuxt/TikTok-style state), as
:func:`webvid.crawl.extract` finds them — and produces the first media URL found in them with
the nearest title-like string (:class:`Hydrated`), or None.

A media URL is an ``http(s)`` string under a key that names video media (``playAddr``,
``videoUrl``, ``contentUrl``, ``video_url``, ``downloadAddr``, ...), or under a generic key
(``url``, ``src``, ``file``, ...) when its path ends in a video or manifest extension; image
extensions never count. Its title is the first ``title``/``name``/``headline``/``caption``/
``desc``/``description`` string in the same object or up to three objects above it.

Everything read is hostile: a blob over :data:`MAX_BLOB_BYTES` is not parsed, the page's blobs
together are read up to :data:`MAX_PAGE_BYTES`, the walk visits at most :data:`MAX_NODES`
values (children past that budget are never queued) and does not descend below
:data:`MAX_DEPTH` levels (it is iterative: no recursion), and JSON nested deeper than the
parser's own limit is skipped as unreadable.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from webvid.crawl import media

#: ``<script id>``s read as state whatever their ``type`` (``application/json`` ones always are)
STATE_IDS = frozenset(
    {"__NEXT_DATA__", "__NUXT_DATA__", "__UNIVERSAL_DATA_FOR_REHYDRATION__", "__APOLLO_STATE__"}
)
MAX_BLOB_BYTES = 4 * 1024 * 1024
MAX_PAGE_BYTES = 8 * 1024 * 1024
MAX_NODES = 200_000
MAX_DEPTH = 48

#: keys whose http(s) value is taken as video media without looking at its extension
STRONG_KEYS = frozenset(
    {
        "playaddr",
        "downloadaddr",
        "videourl",
        "video_url",
        "videosrc",
        "video_src",
        "contenturl",
        "playurl",
        "play_url",
        "playbackurl",
        "playback_url",
        "mp4",
        "mp4url",
        "mp4_url",
        "streamurl",
        "stream_url",
        "hlsurl",
        "hls_url",
        "progressiveurl",
    }
)
#: keys whose value counts only when its path ends in a video or manifest extension
WEAK_KEYS = frozenset({"url", "src", "file", "source", "href", "link", "uri", "contenturl"})
TITLE_KEYS = ("title", "name", "headline", "caption", "desc", "description")
_IMAGE_EXTS = frozenset({"jpg", "jpeg", "png", "gif", "webp", "avif", "bmp", "svg", "ico"})


@dataclasses.dataclass(frozen=True)
class Hydrated:
    media_url: str
    title: str | None
    path: str  # where it was found, e.g. "$.__DEFAULT_SCOPE__.webapp.video-detail....playAddr"


def _is_http(value: str) -> bool:
    if not value.startswith(("http://", "https://")) or len(value) > 8192:
        return False
    try:
        return bool(urlsplit(value).hostname)
    except ValueError:
        return False


def media_value(key: str, value: Any) -> str | None:
    """``value`` when it is a media URL under ``key`` (rules in the module docstring)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not _is_http(value):
        return None
    k = key.lower()
    ext = media.url_ext(value)
    if ext in _IMAGE_EXTS:
        return None
    if k in STRONG_KEYS:
        return value
    if k in WEAK_KEYS and (ext in media.MEDIA_EXTS or ext in media.MANIFEST_EXTS):
        return value
    return None


def _title_of(obj: dict[str, Any]) -> str | None:
    for key in TITLE_KEYS:
        value = obj.get(key)
        if isinstance(value, str):
            text = " ".join(value.split())
            if 2 <= len(text) <= 1000 and not _is_http(text):
                return text
    return None


def walk(data: Any, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Hydrated | None:
    """The first media URL in ``data`` (document order) and its nearest title."""
    # stack entries: (value, depth, path, ancestors: the enclosing dicts, innermost last)
    stack: list[tuple[Any, int, str, tuple[dict[str, Any], ...]]] = [(data, 0, "$", ())]
    seen = 0
    while stack:
        value, depth, path, above = stack.pop()
        seen += 1
        if seen > max_nodes:
            return None
        if isinstance(value, dict):
            chain = (*above, value)
            for key, item in value.items():
                found = media_value(str(key), item)
                if found:
                    title = next((t for obj in reversed(chain[-4:]) if (t := _title_of(obj))), None)
                    return Hydrated(found, title, f"{path}.{key}")
            if depth < max_depth:  # never more children queued than values left to visit
                items = itertools.islice(value.items(), max(0, max_nodes - seen - len(stack)))
                children = [(v, depth + 1, f"{path}.{k}", chain) for k, v in items]
                stack.extend(reversed(children))
        elif isinstance(value, list) and depth < max_depth:
            items = itertools.islice(enumerate(value), max(0, max_nodes - seen - len(stack)))
            children = [(v, depth + 1, f"{path}[{i}]", above) for i, v in items]
            stack.extend(reversed(children))
    return None


def find_media(
    blobs: Iterable[str],
    *,
    max_blob_bytes: int = MAX_BLOB_BYTES,
    max_page_bytes: int = MAX_PAGE_BYTES,
) -> Hydrated | None:
    """The first media URL in the first blob that has one; unreadable blobs are skipped."""
    budget = max_page_bytes
    for text in blobs:
        size = len(text)
        if size > max_blob_bytes or size > budget:
            continue
        budget -= size
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            continue
        found = walk(data)
        if found is not None:
            return found
    return None
