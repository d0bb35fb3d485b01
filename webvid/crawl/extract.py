"""HTML → links and clip records (pure: text in, data out).

Takes a page's HTML text and URL; parses it with lxml (libxml2's HTML parser) into a
:class:`Doc`, and produces: CSS selection (:func:`select`: CSS 3 selectors, compiled to XPath
by cssselect), the page's links and ``rel=next`` links, its ``<meta name>`` values (robots and
TDMRep opt-outs), and a :class:`Clip` from, in order of trust: schema.org
``VideoObject``/``ImageObject`` JSON-LD, OpenGraph ``og:video*``, then ``<video>/<source>``
with the poster image's ``alt``/``title`` — the alt-text caption. Recipe selectors (``"css"`` for text, ``"css@attr"`` for an attribute)
override any field. Parsing and selector matching are the libraries'; the rules are ours.

libxml2 builds the tree in time and memory linear in the page, and stops at 256 levels of
nesting (a page nested deeper keeps what came before): HTML5 tree builders (Lexbor) are
quadratic on deep nesting and can be made to create millions of elements from a few KB.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urldefrag, urljoin

import lxml.html
from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

from webvid.crawl import polite
from webvid.crawl.items import parse_duration, to_int

_local = threading.local()  # one parser per thread: no parser is shared between threads


def _parser() -> lxml.html.HTMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = lxml.html.HTMLParser(encoding="utf-8", no_network=True)
    return parser


@dataclasses.dataclass
class Doc:
    root: lxml.html.HtmlElement
    url: str  # base for relative links (<base href> applied)
    resolved: dict[str, str | None] = dataclasses.field(default_factory=dict, repr=False)

    def abs(self, href: str | None) -> str | None:
        """``href`` made absolute without its fragment; None for empty, ``javascript:``,
        ``mailto:`` and ``data:`` links. Memoised per page: pages repeat their links."""
        if not href:
            return None
        if href not in self.resolved:
            ref = href.strip()
            skip = not ref or ref.lower().startswith(("javascript:", "mailto:", "data:"))
            self.resolved[href] = None if skip else urldefrag(urljoin(self.url, ref))[0]
        return self.resolved[href]


@dataclasses.dataclass(frozen=True)
class Element:
    """One element a selector found: what recipes read of it."""

    node: lxml.html.HtmlElement

    @property
    def tag(self) -> str:
        return str(self.node.tag)

    @property
    def attrs(self) -> Mapping[str, str]:
        return self.node.attrib

    def text(self) -> str:
        return str(self.node.text_content())


def _css(selector: str) -> CSSSelector:
    return CSSSelector(selector, translator="html")


_BASE = _css("base[href]")
_LINKS = _css("a[href], area[href], link[href]")
_NAMED_META = _css("meta[name]")
_META = _css("meta")
_SCRIPTS = _css("script[type]")
_VIDEOS = _css("video")
_SOURCES = _css("source[src]")
_IMAGES = _css("img[src]")


def parse_html(text: str, url: str) -> Doc:
    """The tree of ``text``; relative links resolve against ``url`` and ``<base href>``."""
    data = text.encode("utf-8", "replace")  # as bytes: an XML declaration may name a charset
    try:
        root = etree.fromstring(data, _parser()) if data.strip() else None
    except etree.LxmlError:
        root = None
    if root is None:  # nothing but blanks, or nothing libxml2 could read
        root = lxml.html.Element("html")
    base = next((h for el in _BASE(root) if (h := attr(el, "href"))), None)
    return Doc(root, urljoin(url, base) if base else url)


def attr(el: lxml.html.HtmlElement, name: str) -> str:
    """An attribute's value; ``""`` when it is absent."""
    return el.get(name) or ""


@functools.lru_cache(maxsize=256)
def _compiled(selector: str) -> CSSSelector:
    try:
        return _css(selector)
    except SelectorError as exc:
        raise ValueError(f"unsupported CSS selector: {selector!r} ({exc})") from None


def select(doc: Doc, selector: str) -> list[Element]:
    """Elements matching a CSS selector, in document order; ValueError if it does not parse."""
    if not selector.strip():
        return []
    return [Element(node) for node in _compiled(selector.strip())(doc.root)]


def select_values(doc: Doc, spec: str) -> list[str]:
    """``"css"`` → texts, ``"css@attr"`` → attribute values (non-empty, stripped)."""
    css, _, name = spec.partition("@")
    values = [(attr(el.node, name) if name else el.text()) for el in select(doc, css)]
    return [" ".join(v.split()) for v in values if v and v.strip()]


# --------------------------------------------------------------------------------------------
# Links, robots meta
# --------------------------------------------------------------------------------------------


def links(doc: Doc) -> list[tuple[str, bool]]:
    """``(absolute url, is_rel_next)`` of every ``<a href>`` and ``<link rel=next>``."""
    out: list[tuple[str, bool]] = []
    for el in _LINKS(doc.root):
        rel = attr(el, "rel").lower().split()
        if el.tag == "link" and "next" not in rel:
            continue
        url = doc.abs(attr(el, "href"))
        if url and url.lower().startswith(("http://", "https://")):
            out.append((url, "next" in rel))
    return out


def meta_values(doc: Doc, name: str) -> list[str]:
    """The ``content`` of every ``<meta name="NAME">`` (name compared case-insensitively):
    ``robots``, ``tdm-reservation``, ``tdm-policy``, ... in document order."""
    name = name.lower()
    return [
        attr(el, "content")
        for el in _NAMED_META(doc.root)
        if attr(el, "name").strip().lower() == name
    ]


def meta_robots_opt_out(doc: Doc, token: str) -> str | None:
    """An opt-out in ``<meta name="robots"|"<token>" content="noai">``, else None."""
    names = ("robots", token.lower())
    values = [
        attr(el, "content") for el in _NAMED_META(doc.root) if attr(el, "name").lower() in names
    ]
    return polite.x_robots_opt_out(values, token)


# --------------------------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Clip:
    media_url: str | None = None
    caption: str | None = None
    description: str | None = None
    keywords: list[str] | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    thumbnail_url: str | None = None
    kind: str = "video"
    found_by: list[str] = dataclasses.field(default_factory=list)
    captions: dict[str, str] = dataclasses.field(default_factory=dict)  # every candidate


def _types(obj: dict[str, Any]) -> set[str]:
    t = obj.get("@type", [])
    return {
        str(x).rsplit("/", 1)[-1].rsplit(":", 1)[-1] for x in (t if isinstance(t, list) else [t])
    }


def _walk_ld(obj: Any) -> Any:
    if isinstance(obj, list):
        for x in obj:
            yield from _walk_ld(x)
    elif isinstance(obj, dict):
        yield obj
        for key in ("@graph", "video", "mainEntity", "associatedMedia", "image"):
            if key in obj:
                yield from _walk_ld(obj[key])


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return _first(value[0]) if value else None
    if isinstance(value, dict):
        return value.get("url") or value.get("contentUrl") or value.get("value")
    return value


def _text(value: Any) -> str | None:
    value = _first(value)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def json_ld_objects(doc: Doc) -> list[dict[str, Any]]:
    found = []
    for el in _SCRIPTS(doc.root):
        if attr(el, "type").lower().strip() == "application/ld+json":
            try:
                data = json.loads(el.text_content())
            except ValueError:
                continue
            found.extend(_walk_ld(data))
    return found


def _from_json_ld(doc: Doc, clip: Clip) -> None:
    objs = json_ld_objects(doc)
    obj = next((o for o in objs if "VideoObject" in _types(o)), None)
    kind = "video"
    if obj is None:
        obj = next((o for o in objs if "ImageObject" in _types(o) and o.get("contentUrl")), None)
        kind = "image"
    if obj is None:
        return
    clip.found_by.append("json-ld")
    clip.kind = kind
    clip.media_url = doc.abs(_text(obj.get("contentUrl")) or _text(obj.get("embedUrl")))
    if _text(obj.get("name")):
        clip.captions["json-ld"] = _text(obj.get("name"))  # type: ignore[assignment]
    clip.description = _text(obj.get("description"))
    clip.duration_s = parse_duration(_text(obj.get("duration")))
    clip.width, clip.height = to_int(_first(obj.get("width"))), to_int(_first(obj.get("height")))
    clip.thumbnail_url = doc.abs(_text(obj.get("thumbnailUrl")))
    kw = obj.get("keywords")
    if isinstance(kw, str):
        clip.keywords = [k.strip() for k in kw.split(",") if k.strip()]
    elif isinstance(kw, list):
        clip.keywords = [str(k).strip() for k in kw if str(k).strip()]


def _from_opengraph(doc: Doc, clip: Clip) -> None:
    og: dict[str, str] = {}
    for el in _META(doc.root):
        prop = (attr(el, "property") or attr(el, "name")).lower()
        if prop.startswith("og:") and prop not in og:
            og[prop] = attr(el, "content").strip()
    video = og.get("og:video:secure_url") or og.get("og:video:url") or og.get("og:video")
    if og.get("og:title"):
        clip.captions["opengraph"] = " ".join(og["og:title"].split())
    if not video:
        return
    clip.found_by.append("opengraph")
    clip.media_url = clip.media_url or doc.abs(video)
    clip.width = clip.width or to_int(og.get("og:video:width"))
    clip.height = clip.height or to_int(og.get("og:video:height"))
    clip.thumbnail_url = clip.thumbnail_url or doc.abs(og.get("og:image"))
    clip.description = clip.description or og.get("og:description") or None


def _from_video_tag(doc: Doc, clip: Clip) -> int:
    videos = _VIDEOS(doc.root)
    if not videos:
        return 0
    video = videos[0]
    sources = [s for s in _SOURCES(video) if attr(s, "src")]
    mp4 = [s for s in sources if "mp4" in attr(s, "type")]
    src = attr(video, "src") or next((attr(s, "src") for s in mp4 or sources), "")
    poster = doc.abs(attr(video, "poster"))
    alt = ""
    if poster:  # the poster image's alt text: WebVid's caption
        for el in _IMAGES(doc.root):
            if doc.abs(attr(el, "src")) == poster:
                alt = attr(el, "alt") or attr(el, "title")
                if alt:
                    break
    alt = alt or attr(video, "title") or attr(video, "aria-label")
    if alt and alt.strip():
        clip.captions["alt"] = " ".join(alt.split())
    if src:
        clip.found_by.append("video-tag")
        clip.media_url = clip.media_url or doc.abs(src)
        clip.thumbnail_url = clip.thumbnail_url or poster
    return len(videos)


def extract_clip(doc: Doc, select_overrides: dict[str, str] | None = None) -> tuple[Clip, int]:
    """The clip described by a page and the number of ``<video>`` elements on it."""
    clip = Clip()
    _from_json_ld(doc, clip)
    _from_opengraph(doc, clip)
    n_videos = _from_video_tag(doc, clip)
    for source in ("json-ld", "opengraph", "alt"):
        if source in clip.captions:
            clip.caption = clip.captions[source]
            break
    for key, spec in (select_overrides or {}).items():
        if key in ("next", "item_links"):
            continue
        values = select_values(doc, spec)
        if not values:
            continue
        clip.found_by.append(f"css:{key}")
        if key == "keywords":
            clip.keywords = [k.strip() for v in values for k in v.split(",") if k.strip()]
        elif key in ("media_url", "thumbnail_url"):
            setattr(clip, key, doc.abs(values[0]))
        elif key in ("caption", "description"):
            setattr(clip, key, values[0])
            if key == "caption":
                clip.captions["css"] = values[0]
        else:
            raise ValueError(f"discover.select: unknown field {key!r}")
    return clip, n_videos


def is_clip_page(clip: Clip, n_videos: int) -> bool:
    """Without recipe patterns: JSON-LD or OpenGraph video, or exactly one ``<video>``."""
    return bool(clip.media_url) and (
        "json-ld" in clip.found_by
        or "opengraph" in clip.found_by
        or n_videos == 1
        or any(f.startswith("css:media_url") for f in clip.found_by)
    )
