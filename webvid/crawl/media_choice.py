"""Which ``<video>`` on a page holds the clip (pure: lxml elements in, a choice out).

Takes every ``<video>`` element of a page, a function making a reference absolute (the page's
``Doc.abs``) and the media URLs the page's JSON-LD/OpenGraph name; produces one
:class:`VideoCandidate` per usable ``<video>`` (its best source) and a count of the ones skipped
by reason, then :func:`pick` chooses among the usable ones by evidence and says why.

A source is usable when it resolves to an ``http(s)`` URL with a host: ``blob:`` (a player's
MediaSource placeholder), ``data:``, ``javascript:``, ``about:`` and host-less placeholders
(``//:0``) are not. ``<source>`` children are read as well as ``src`` (and a lazy loader's
``data-src``); a ``<source>`` whose ``type`` is not video is ignored. A ``<video>`` is skipped
as ``ad`` when it or one of its six nearest ancestors has an ``id``, ``class``, ``title`` or
``aria-label`` word naming an advert or promotion (``ad``, ``ads``, ``advert``,
``advertisement``, ``sponsored``, ``promo``, ``preroll``, ...), and as ``hidden`` when its
``width`` or ``height`` attribute is 0 or 1.

Evidence, strongest first: the source is the page's JSON-LD/OpenGraph media URL
(``agrees``); it is MP4 (by ``type`` or extension; then WebM); the element has a ``poster``;
its declared area (``width`` x ``height``) is larger; it comes first on the page.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

import lxml.html

from webvid.crawl import media
from webvid.crawl.items import to_int

#: words (of id/class/title/aria-label, split at non-letters and camelCase) marking an advert
AD_WORDS = frozenset(
    {
        "ad",
        "ads",
        "adv",
        "advert",
        "adverts",
        "advertisement",
        "advertising",
        "adunit",
        "adslot",
        "sponsor",
        "sponsored",
        "promo",
        "promoted",
        "promotion",
        "preroll",
        "midroll",
        "outstream",
        "commercial",
    }
)
_AD_ATTRS = ("id", "class", "title", "aria-label")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD = re.compile(r"[a-z0-9]+")
_ANCESTORS = 6


@dataclasses.dataclass(frozen=True)
class VideoCandidate:
    url: str
    mime: str  # "video/mp4", "video/webm", "" when neither type nor extension tells
    index: int  # the element's position among the page's <video> elements (0-based)
    element: lxml.html.HtmlElement = dataclasses.field(compare=False, repr=False)
    poster: str | None = None
    width: int | None = None
    height: int | None = None


def usable_url(resolved: str | None) -> str | None:
    """``resolved`` when it is an http(s) URL with a host, else None."""
    if not resolved:
        return None
    try:
        parts = urlsplit(resolved)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return None
    return resolved if ok else None


def _words(value: str) -> set[str]:
    return set(_WORD.findall(_CAMEL.sub(r"\1 \2", value).lower()))


def in_ad(el: lxml.html.HtmlElement) -> bool:
    """True when ``el`` or a near ancestor is marked as an advert or promotion."""
    node: lxml.html.HtmlElement | None = el
    for _ in range(_ANCESTORS + 1):
        if node is None or not isinstance(node.tag, str):
            return False
        for name in _AD_ATTRS:
            value = node.get(name)
            if value and _words(value) & AD_WORDS:
                return True
        node = node.getparent()
    return False


def _mime(type_attr: str, url: str) -> str:
    declared = media.mime_of(type_attr)
    if declared:
        return declared
    ext = media.url_ext(url)
    return {"mp4": "video/mp4", "m4v": "video/mp4", "mov": "video/mp4", "webm": "video/webm"}.get(
        ext, ""
    )


def _sources(
    video: lxml.html.HtmlElement, resolve: Callable[[str], str | None]
) -> list[tuple[str, str]]:
    """``(url, mime)`` of the element's usable sources, in document order."""
    found: list[tuple[str, str]] = []
    for name in ("src", "data-src"):
        url = usable_url(resolve(video.get(name) or ""))
        if url:
            found.append((url, _mime(video.get("type") or "", url)))
            break
    for source in video.iter("source"):
        type_attr = source.get("type") or ""
        if type_attr and not media.mime_of(type_attr).startswith(("video/", "application/")):
            continue  # an audio or image <source>
        url = usable_url(resolve(source.get("src") or source.get("data-src") or ""))
        if url:
            found.append((url, _mime(type_attr, url)))
    return found


def _rank_mime(mime: str) -> int:
    return {"video/mp4": 0, "video/webm": 1}.get(mime, 2)


def candidates(
    videos: list[lxml.html.HtmlElement], resolve: Callable[[str], str | None]
) -> tuple[list[VideoCandidate], Counter[str]]:
    """One candidate per usable ``<video>`` (its best source) and the skipped ones by reason:
    ``ad``, ``hidden``, ``blob`` / ``data`` (only such sources), ``no-source``."""
    found: list[VideoCandidate] = []
    skipped: Counter[str] = Counter()
    for index, video in enumerate(videos):
        width, height = to_int(video.get("width")), to_int(video.get("height"))
        if in_ad(video):
            skipped["ad"] += 1
            continue
        if (width is not None and width <= 1) or (height is not None and height <= 1):
            skipped["hidden"] += 1
            continue
        sources = _sources(video, resolve)
        if not sources:
            raw = [video.get("src") or ""] + [s.get("src") or "" for s in video.iter("source")]
            schemes = {r.strip().split(":", 1)[0].lower() for r in raw if ":" in r}
            skipped[
                "blob" if "blob" in schemes else "data" if "data" in schemes else "no-source"
            ] += 1
            continue
        url, mime = min(sources, key=lambda s: _rank_mime(s[1]))
        poster = usable_url(resolve(video.get("poster") or ""))
        found.append(VideoCandidate(url, mime, index, video, poster, width, height))
    return found, skipped


def pick(
    found: list[VideoCandidate], named: Collection[str] = ()
) -> tuple[VideoCandidate | None, list[str]]:
    """The best candidate and the evidence for it (``agrees``, ``mp4``, ``poster``, ...)."""
    if not found:
        return None, []
    named_paths = {urlsplit(u)._replace(query="", fragment="").geturl() for u in named}

    def agrees(c: VideoCandidate) -> bool:
        return (
            c.url in named
            or urlsplit(c.url)._replace(query="", fragment="").geturl() in named_paths
        )

    def key(c: VideoCandidate) -> tuple[int, int, int, int, int]:
        area = (c.width or 0) * (c.height or 0)
        return (not agrees(c), _rank_mime(c.mime), c.poster is None, -area, c.index)

    best = min(found, key=key)
    why = [f"<video> {best.index + 1} on the page, {len(found)} usable"]
    if agrees(best):
        why.append("agrees with json-ld/opengraph")
    if best.mime:
        why.append(best.mime)
    if best.poster:
        why.append("poster")
    return best, why
