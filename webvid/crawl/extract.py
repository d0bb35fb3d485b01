"""HTML → links and clip records (pure: text in, data out).

Takes a page's HTML text and URL; parses it with lxml (libxml2's HTML parser) into a
:class:`Doc`, and produces: CSS selection (:func:`select`: CSS 3 selectors, compiled to XPath
by cssselect), the page's links and ``rel=next`` links, its ``<meta name>`` values (robots and
TDMRep opt-outs), and a :class:`Clip` (:func:`extract_clip`): the media URL from, in order,
schema.org ``VideoObject`` JSON-LD ``contentUrl``, a typed OpenGraph ``og:video*``, the best
usable ``<video>``/``<source>`` (:mod:`~webvid.crawl.media_choice`), hydration data
(:mod:`~webvid.crawl.hydrate`), then player pages for yt-dlp (``embedUrl``, an HTML
``og:video``) and an ``ImageObject``; the caption by the ranked rule of
:mod:`~webvid.crawl.captions` over every candidate (JSON-LD, OpenGraph, Twitter card,
``<title>``, the poster image's ``alt`` — the alt-text caption —, ``<h1>``, hydration), each
kept under its ``found_by`` label. Recipe selectors (``"css"`` for text, ``"css@attr"`` for an
attribute) override any field. Parsing and selector matching are the libraries'; the rules are
ours.

libxml2 builds the tree in time and memory linear in the page, and stops at 256 levels of
nesting (a page nested deeper keeps what came before): HTML5 tree builders (Lexbor) are
quadratic on deep nesting and can be made to create millions of elements from a few KB.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urldefrag, urljoin

import lxml.html
from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

from webvid.crawl import captions, hydrate, media_choice, page_meta, polite

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
_VIDEOS = _css("video")
_IMAGES = _css("img[src]")
_TITLES = _css("title")
_H1 = _css("h1")
_ALL_SCRIPTS = _css("script")


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


Clip = page_meta.Clip  # the record of a clip page (webvid.crawl.page_meta)


def json_ld_objects(doc: Doc) -> list[dict[str, Any]]:
    """Every JSON-LD object of the page (unreadable blocks skipped)."""
    return page_meta.json_ld_objects(doc.root)


def _hidden(el: lxml.html.HtmlElement) -> bool:
    node: lxml.html.HtmlElement | None = el
    while node is not None and isinstance(node.tag, str):
        style = attr(node, "style").replace(" ", "").lower()
        if (
            node.tag in ("noscript", "template", "svg", "dialog")
            or node.get("hidden") is not None
            or attr(node, "aria-hidden").lower() == "true"
            or "display:none" in style
            or "visibility:hidden" in style
        ):
            return True
        node = node.getparent()
    return False


def _page_texts(doc: Doc, clip: Clip) -> None:
    """``<title>`` and the first visible, non-boilerplate ``<h1>`` as caption candidates."""
    for el in _TITLES(doc.root):
        if not any(a.tag == "svg" for a in el.iterancestors()):
            text = " ".join(el.text_content().split())
            if text:
                clip.captions["title"] = text
            break
    for el in itertools.islice(_H1(doc.root), 50):  # the first 50 <h1>s are looked at
        text = " ".join(el.text_content().split())
        if text and len(text) <= 500 and not _hidden(el) and not captions.is_boilerplate(text):
            clip.captions["h1"] = text
            break


def _alt_text(doc: Doc, video: lxml.html.HtmlElement, poster: str | None) -> str:
    """The poster image's alt (or title) text, else the video's own alt/title/aria-label."""
    if poster:
        for el in _IMAGES(doc.root):
            if doc.abs(attr(el, "src")) == poster and (attr(el, "alt") or attr(el, "title")):
                return attr(el, "alt") or attr(el, "title")
    return attr(video, "alt") or attr(video, "title") or attr(video, "aria-label")


def _state_blobs(doc: Doc) -> list[str]:
    out = []
    for el in _ALL_SCRIPTS(doc.root):
        kind = attr(el, "type").lower().strip()
        if attr(el, "id") in hydrate.STATE_IDS or kind in ("application/json", "text/json"):
            out.append(el.text_content())
    return out


def _choose_media(doc: Doc, clip: Clip, offers: page_meta.Offers) -> None:
    """The clip's media URL by evidence (direct media before player pages), and why."""
    videos = _VIDEOS(doc.root)
    found, skipped = media_choice.candidates(videos, doc.abs)
    clip.usable_videos = len(found)
    clip.media_skipped = dict(sorted(skipped.items()))
    named = [u for u in (offers.ld_content, offers.og_video) if u]
    best, why = media_choice.pick(found, named)
    if best is not None:
        clip.found_by.append("video-tag")
        alt = _alt_text(doc, best.element, best.poster)
        if alt and alt.strip():
            clip.captions["alt"] = " ".join(alt.split())
    og_direct = offers.og_video if offers.og_video and not offers.og_player else None
    hydrated = None
    if not (offers.ld_content or og_direct or best):  # parsed only when nothing direct is named
        hydrated = hydrate.find_media(_state_blobs(doc))
    if hydrated is not None:
        clip.found_by.append("hydration")
        if hydrated.title:
            clip.captions["hydration"] = hydrated.title
    choices: list[tuple[str | None, str]] = [
        (offers.ld_content, "json-ld contentUrl"),
        (og_direct, f"opengraph og:video ({offers.og_type or 'untyped'})"),
        (best.url if best else None, "video-tag: " + ", ".join(why)),
        (
            hydrated.media_url if hydrated else None,
            f"hydration {hydrated.path if hydrated else ''}",
        ),
        (offers.ld_embed, "json-ld embedUrl (player page)"),
        (
            offers.og_video if offers.og_player else None,
            f"opengraph og:video ({offers.og_type or 'html'} player page)",
        ),
        (offers.ld_image, "json-ld ImageObject contentUrl"),
    ]
    for url, reason in choices:
        if url:
            clip.media_url, clip.media_by = url, reason
            break
    if clip.media_url and clip.media_url == offers.ld_image:
        clip.kind = "image"
    if best is not None and clip.media_url == best.url:
        clip.thumbnail_url = clip.thumbnail_url or best.poster


def _choose_caption(doc: Doc, clip: Clip, og: dict[str, str]) -> None:
    if "css" in clip.captions:
        clip.caption, clip.caption_by = clip.captions["css"], "css"
        return
    clip.captions = {label: text[: captions.MAX_CHARS] for label, text in clip.captions.items()}
    names = [og.get("og:site_name", ""), og.get("application-name", "")]
    sites = captions.site_names([n for n in names if n], doc.url)
    choice = captions.choose(clip.captions, sites)
    clip.caption, clip.caption_by, clip.caption_demoted = (
        choice.caption,
        choice.by,
        choice.demoted,
    )


def _apply_selectors(doc: Doc, clip: Clip, select_overrides: dict[str, str]) -> None:
    for key, spec in select_overrides.items():
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
            if key == "media_url":
                clip.media_by = f"css:media_url {spec}"
        elif key == "caption":
            clip.captions["css"] = values[0]
        elif key == "description":
            clip.description = values[0]
        else:
            raise ValueError(f"discover.select: unknown field {key!r}")


def extract_clip(doc: Doc, select_overrides: dict[str, str] | None = None) -> tuple[Clip, int]:
    """The clip described by a page and the number of ``<video>`` elements on it.

    Media: JSON-LD ``contentUrl``, a typed OpenGraph video, the best usable ``<video>``
    (:mod:`webvid.crawl.media_choice`), a media URL in hydration data
    (:mod:`webvid.crawl.hydrate`), then player pages (JSON-LD ``embedUrl``, an HTML
    ``og:video``) for yt-dlp, then a JSON-LD ``ImageObject``. Caption: the ranked rule of
    :mod:`webvid.crawl.captions` over every candidate; recipe selectors override both.
    """
    clip, offers = Clip(), page_meta.Offers()
    page_meta.from_json_ld(doc.root, doc.abs, clip, offers)
    og = page_meta.from_opengraph(doc.root, doc.abs, clip, offers)
    _page_texts(doc, clip)
    _choose_media(doc, clip, offers)
    _apply_selectors(doc, clip, select_overrides or {})
    _choose_caption(doc, clip, og)
    return clip, len(_VIDEOS(doc.root))


def is_clip_page(clip: Clip, n_videos: int) -> bool:
    """Without recipe patterns: a page whose media came from JSON-LD, OpenGraph or hydration
    data, or that has exactly one usable ``<video>`` (``n_videos``, the count of all
    ``<video>`` elements, is kept for callers; blob placeholders and adverts do not count)."""
    return bool(clip.media_url) and (
        "json-ld" in clip.found_by
        or "opengraph" in clip.found_by
        or "hydration" in clip.found_by
        or clip.usable_videos == 1
        or any(f.startswith("css:media_url") for f in clip.found_by)
    )
