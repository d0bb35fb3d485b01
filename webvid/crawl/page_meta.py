"""A clip page's structured metadata: schema.org JSON-LD and OpenGraph/Twitter-card ``<meta>``
(pure: an lxml tree in, a :class:`Clip` filled in and the media URLs the page names out).

Takes the page's root element and a function making a reference absolute (``Doc.abs`` of
:mod:`webvid.crawl.extract`); :func:`from_json_ld` reads the ``VideoObject`` (also inside
``@graph``, ``mainEntity``, ``video``, ``associatedMedia``, a top-level array) into the clip —
``name``, ``description``, ``duration``, size, thumbnail, keywords — and a post's or article's
``headline``; :func:`from_opengraph` reads ``og:title``/``og:description``/``twitter:*`` as
caption candidates and ``og:video*`` with its type. The media URLs found are left in an
:class:`Offers` for :func:`webvid.crawl.extract.extract_clip` to choose from.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import lxml.html
from lxml.cssselect import CSSSelector

from webvid.crawl import media
from webvid.crawl.items import parse_duration, to_int

Resolve = Callable[[str | None], str | None]

_META = CSSSelector("meta", translator="html")
_SCRIPTS = CSSSelector("script[type]", translator="html")


def _attr(el: lxml.html.HtmlElement, name: str) -> str:
    return el.get(name) or ""


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
    #: the markup sources that offered media: json-ld, opengraph, video-tag, hydration, css:*
    found_by: list[str] = dataclasses.field(default_factory=list)
    captions: dict[str, str] = dataclasses.field(default_factory=dict)  # every candidate
    caption_by: str | None = None  # the captions label the caption came from
    caption_demoted: dict[str, str] = dataclasses.field(default_factory=dict)  # label → why
    media_by: str | None = None  # where the media URL came from, and the evidence
    media_skipped: dict[str, int] = dataclasses.field(default_factory=dict)  # <video>s passed over
    usable_videos: int = 0  # <video> elements with a usable source, not ads, not hidden

    def extra(self) -> dict[str, Any] | None:
        """The record's ``extra_json`` object: found_by, captions and why (None if empty)."""
        if not (self.found_by or self.captions):
            return None
        out: dict[str, Any] = {"found_by": self.found_by, "captions": self.captions}
        for key in ("caption_by", "caption_demoted", "media_by", "media_skipped"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _types(obj: dict[str, Any]) -> set[str]:
    t = obj.get("@type", [])
    return {
        str(x).rsplit("/", 1)[-1].rsplit(":", 1)[-1] for x in (t if isinstance(t, list) else [t])
    }


def _walk_ld(obj: Any, depth: int = 0) -> Any:
    if depth > 32:
        return
    if isinstance(obj, list):
        for x in obj:
            yield from _walk_ld(x, depth + 1)
    elif isinstance(obj, dict):
        yield obj
        for key in ("@graph", "video", "mainEntity", "associatedMedia", "image"):
            if key in obj:
                yield from _walk_ld(obj[key], depth + 1)


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


def json_ld_objects(root: lxml.html.HtmlElement) -> list[dict[str, Any]]:
    """Every JSON-LD object of the page (unreadable blocks skipped)."""
    found = []
    for el in _SCRIPTS(root):
        if _attr(el, "type").lower().strip() == "application/ld+json":
            try:
                data = json.loads(el.text_content())
            except (ValueError, RecursionError):
                continue
            found.extend(_walk_ld(data))
    return found


#: JSON-LD types whose ``headline``/``name`` is the page's own title (a post, an article)
_POST_TYPES = frozenset(
    {
        "SocialMediaPosting",
        "DiscussionForumPosting",
        "BlogPosting",
        "Article",
        "NewsArticle",
        "Clip",
        "Movie",
        "Episode",
        "CreativeWork",
    }
)


@dataclasses.dataclass
class Offers:
    """Media URLs a page names, by source, before one is chosen."""

    ld_content: str | None = None
    ld_embed: str | None = None
    ld_image: str | None = None
    og_video: str | None = None
    og_player: bool = False
    og_type: str = ""


def from_json_ld(root: lxml.html.HtmlElement, resolve: Resolve, clip: Clip, offers: Offers) -> None:
    """The page's ``VideoObject`` (else a content ``ImageObject``) into ``clip`` and ``offers``."""
    objs = json_ld_objects(root)
    post = next((o for o in objs if _types(o) & _POST_TYPES and _text(o.get("headline"))), None)
    post = post or next((o for o in objs if _types(o) & _POST_TYPES and _text(o.get("name"))), None)
    headline = post and (_text(post.get("headline")) or _text(post.get("name")))
    if headline:
        clip.captions["json-ld:headline"] = headline
    obj = next((o for o in objs if "VideoObject" in _types(o)), None)
    if obj is None:
        # an ImageObject that is another object's `image` (a profile photo, a logo) is a
        # picture of that object, not the page's content
        pictures = {
            id(x)
            for o in objs
            for x in (o["image"] if isinstance(o.get("image"), list) else [o.get("image")])
            if isinstance(x, dict)
        }
        image = next(
            (
                o
                for o in objs
                if "ImageObject" in _types(o) and o.get("contentUrl") and id(o) not in pictures
            ),
            None,
        )
        if image is None:
            return
        clip.found_by.append("json-ld")
        offers.ld_image = resolve(_text(image.get("contentUrl")))
        if _text(image.get("name")):
            clip.captions["json-ld"] = _text(image.get("name"))  # type: ignore[assignment]
        return
    clip.found_by.append("json-ld")
    offers.ld_content = resolve(_text(obj.get("contentUrl")))
    offers.ld_embed = resolve(_text(obj.get("embedUrl")))
    if _text(obj.get("name")):
        clip.captions["json-ld"] = _text(obj.get("name"))  # type: ignore[assignment]
    clip.description = _text(obj.get("description"))
    if clip.description:
        clip.captions["json-ld:description"] = clip.description
    clip.duration_s = parse_duration(_text(obj.get("duration")))
    clip.width, clip.height = to_int(_first(obj.get("width"))), to_int(_first(obj.get("height")))
    clip.thumbnail_url = resolve(_text(obj.get("thumbnailUrl")))
    kw = obj.get("keywords")
    if isinstance(kw, str):
        clip.keywords = [k.strip() for k in kw.split(",") if k.strip()]
    elif isinstance(kw, list):
        clip.keywords = [str(k).strip() for k in kw if str(k).strip()]


_PLAYER_TYPES = ("text/html", "application/xhtml+xml", "application/x-shockwave-flash")


def from_opengraph(
    root: lxml.html.HtmlElement, resolve: Resolve, clip: Clip, offers: Offers
) -> dict[str, str]:
    """OpenGraph/Twitter-card captions and ``og:video`` into ``clip``/``offers``; returns the
    first value of every ``og:*``, ``twitter:*`` and ``application-name`` ``<meta>``."""
    og: dict[str, str] = {}
    for el in _META(root):
        prop = (_attr(el, "property") or _attr(el, "name")).lower().strip()
        wanted = prop.startswith(("og:", "twitter:")) or prop == "application-name"
        if wanted and prop not in og:
            og[prop] = _attr(el, "content").strip()
    for prop, label in (
        ("og:title", "opengraph"),
        ("og:description", "og:description"),
        ("twitter:title", "twitter:title"),
        ("twitter:description", "twitter:description"),
    ):
        if og.get(prop) and " ".join(og[prop].split()):
            clip.captions[label] = " ".join(og[prop].split())
    video = og.get("og:video:secure_url") or og.get("og:video:url") or og.get("og:video")
    if not video:
        return og
    clip.found_by.append("opengraph")
    offers.og_video = resolve(video)
    offers.og_type = media.mime_of(og.get("og:video:type"))
    offers.og_player = offers.og_type in _PLAYER_TYPES
    if offers.og_video and not offers.og_type and media.url_ext(offers.og_video) in ("html", "htm"):
        offers.og_player = True
    clip.width = clip.width or to_int(og.get("og:video:width"))
    clip.height = clip.height or to_int(og.get("og:video:height"))
    clip.thumbnail_url = clip.thumbnail_url or resolve(og.get("og:image"))
    clip.description = clip.description or og.get("og:description") or None
    return og
