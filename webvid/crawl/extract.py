"""HTML → links and clip records (pure: text in, data out).

Takes a page's HTML text and URL; produces a small element tree (:func:`parse_html`), CSS
selection over it (:func:`select`, a subset: ``tag``, ``*``, ``#id``, ``.class``,
``[attr]``, ``[attr=v]`` / ``~= ^= $= *=``, descendant and ``>`` combinators, ``,`` groups),
the page's links and ``rel=next`` links, its meta-robots opt-out, and a :class:`Clip` from,
in order of trust: schema.org ``VideoObject``/``ImageObject`` JSON-LD, OpenGraph
``og:video*``, then ``<video>/<source>`` with the poster image's ``alt``/``title`` — the
alt-text caption. Recipe selectors (``"css"`` for text, ``"css@attr"`` for an attribute)
override any field.
"""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin

from webvid.crawl import polite
from webvid.crawl.items import parse_duration, to_int

_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)


@dataclasses.dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None = None
    parts: list[Any] = dataclasses.field(default_factory=list)  # str | Element, in order

    @property
    def children(self) -> list[Element]:
        return [p for p in self.parts if isinstance(p, Element)]

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def iter(self) -> Any:
        for p in self.parts:
            if isinstance(p, Element):
                yield p
                yield from p.iter()


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs}, parent=self.stack[-1])
        self.stack[-1].parts.append(el)
        if tag not in _VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs}, parent=self.stack[-1])
        self.stack[-1].parts.append(el)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


@dataclasses.dataclass
class Doc:
    root: Element
    url: str  # base for relative links (<base href> applied)

    def abs(self, href: str | None) -> str | None:
        if (
            not href
            or not href.strip()
            or href.strip().lower().startswith(("javascript:", "mailto:", "data:"))
        ):
            return None
        return urldefrag(urljoin(self.url, href.strip()))[0]


def parse_html(text: str, url: str) -> Doc:
    b = _Builder()
    try:
        b.feed(text)
        b.close()
    except (AssertionError, ValueError):  # html.parser gives up on some broken markup
        pass
    base = next(
        (e.attrs.get("href") for e in b.root.iter() if e.tag == "base" and e.attrs.get("href")),
        None,
    )
    return Doc(b.root, urljoin(url, base) if base else url)


# --------------------------------------------------------------------------------------------
# CSS subset
# --------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?P<child>>)\s*|(?P<ws>\s+)|(?P<tag>[a-zA-Z][\w-]*|\*)|\#(?P<id>[\w-]+)|\.(?P<cls>[\w-]+)"""
    r"""|\[\s*(?P<attr>[\w:-]+)\s*(?:(?P<op>[~^$*]?=)\s*(?:"(?P<v1>[^"]*)"|'(?P<v2>[^']*)'|(?P<v3>[^\]\s]+))\s*)?\]"""
)


@dataclasses.dataclass
class _Compound:
    tag: str | None = None
    ids: list[str] = dataclasses.field(default_factory=list)
    classes: list[str] = dataclasses.field(default_factory=list)
    attrs: list[tuple[str, str | None, str]] = dataclasses.field(default_factory=list)

    def matches(self, el: Element) -> bool:
        if self.tag not in (None, "*") and el.tag != self.tag:
            return False
        if any(el.attrs.get("id") != i for i in self.ids):
            return False
        have = set(el.attrs.get("class", "").split())
        if any(c not in have for c in self.classes):
            return False
        for name, op, val in self.attrs:
            if name not in el.attrs:
                return False
            got = el.attrs[name]
            ok = {
                None: True,
                "=": got == val,
                "~=": val in got.split(),
                "^=": got.startswith(val),
                "$=": got.endswith(val),
                "*=": val in got,
            }[op]
            if not ok:
                return False
        return True


def _parse_selector(selector: str) -> list[tuple[str, _Compound]]:
    steps: list[tuple[str, _Compound]] = []
    comb, cur, pos = " ", None, 0
    selector = selector.strip()
    while pos < len(selector):
        m = _TOKEN.match(selector, pos)
        if not m or m.end() == pos:
            raise ValueError(f"unsupported CSS selector: {selector!r} (at {selector[pos:]!r})")
        pos = m.end()
        if m.group("child") or m.group("ws"):
            if cur is not None:
                steps.append((comb, cur))
                cur = None
            comb = ">" if m.group("child") else " "
            continue
        cur = cur or _Compound()
        if m.group("tag"):
            cur.tag = m.group("tag").lower()
        elif m.group("id"):
            cur.ids.append(m.group("id"))
        elif m.group("cls"):
            cur.classes.append(m.group("cls"))
        else:
            val = next(
                (v for v in (m.group("v1"), m.group("v2"), m.group("v3")) if v is not None), ""
            )
            cur.attrs.append((m.group("attr").lower(), m.group("op"), val))
    if cur is not None:
        steps.append((comb, cur))
    if not steps:
        raise ValueError(f"empty CSS selector: {selector!r}")
    return steps


def _matches(el: Element, steps: list[tuple[str, _Compound]]) -> bool:
    if not steps[-1][1].matches(el):
        return False
    if len(steps) == 1:
        return True
    comb = steps[-1][0]
    parent = el.parent
    if comb == ">":
        return parent is not None and parent.tag != "#root" and _matches(parent, steps[:-1])
    while parent is not None and parent.tag != "#root":
        if _matches(parent, steps[:-1]):
            return True
        parent = parent.parent
    return False


def select(doc: Doc | Element, selector: str) -> list[Element]:
    """Elements matching a CSS selector (the subset above), in document order."""
    root = doc.root if isinstance(doc, Doc) else doc
    groups = [_parse_selector(s) for s in selector.split(",") if s.strip()]
    return [el for el in root.iter() if any(_matches(el, g) for g in groups)]


def select_values(doc: Doc, spec: str) -> list[str]:
    """``"css"`` → texts, ``"css@attr"`` → attribute values (non-empty, stripped)."""
    css, _, attr = spec.partition("@")
    values = [(el.attrs.get(attr, "") if attr else el.text()) for el in select(doc, css)]
    return [" ".join(v.split()) for v in values if v and v.strip()]


# --------------------------------------------------------------------------------------------
# Links, robots meta
# --------------------------------------------------------------------------------------------


def links(doc: Doc) -> list[tuple[str, bool]]:
    """``(absolute url, is_rel_next)`` of every ``<a href>`` and ``<link rel=next>``."""
    out: list[tuple[str, bool]] = []
    for el in doc.root.iter():
        if el.tag not in ("a", "link", "area"):
            continue
        rel = el.attrs.get("rel", "").lower().split()
        if el.tag == "link" and "next" not in rel:
            continue
        url = doc.abs(el.attrs.get("href"))
        if url and url.lower().startswith(("http://", "https://")):
            out.append((url, "next" in rel))
    return out


def meta_robots_opt_out(doc: Doc, token: str) -> str | None:
    """An opt-out in ``<meta name="robots"|"<token>" content="noai">``, else None."""
    values = []
    for el in doc.root.iter():
        if el.tag == "meta":
            name = el.attrs.get("name", "").lower()
            if name in ("robots", token.lower()):
                values.append(el.attrs.get("content", ""))
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
    for el in doc.root.iter():
        if el.tag == "script" and el.attrs.get("type", "").lower().strip() == "application/ld+json":
            try:
                data = json.loads(el.text())
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
    for el in doc.root.iter():
        if el.tag == "meta":
            prop = (el.attrs.get("property") or el.attrs.get("name") or "").lower()
            if prop.startswith("og:") and prop not in og:
                og[prop] = el.attrs.get("content", "").strip()
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
    videos = [el for el in doc.root.iter() if el.tag == "video"]
    if not videos:
        return 0
    video = videos[0]
    sources = [s for s in video.iter() if s.tag == "source" and s.attrs.get("src")]
    mp4 = [s for s in sources if "mp4" in s.attrs.get("type", "")]
    src = video.attrs.get("src") or (mp4 or sources or [Element("source", {})])[0].attrs.get("src")
    poster = doc.abs(video.attrs.get("poster"))
    alt = None
    if poster:  # the poster image's alt text: WebVid's caption
        for el in doc.root.iter():
            if el.tag == "img" and doc.abs(el.attrs.get("src")) == poster:
                alt = el.attrs.get("alt") or el.attrs.get("title")
                if alt:
                    break
    alt = alt or video.attrs.get("title") or video.attrs.get("aria-label")
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
