"""The caption of a clip page: a ranked rule over every candidate (pure: strings in and out).

Takes the page's caption candidates, each under its ``found_by`` label (:data:`RANK` lists
them), and the names the site goes by (:func:`site_names`: ``og:site_name``,
``application-name``, the host's name); produces a :class:`Choice` — the caption, the label it
came from, and why the others above it were passed over.

Each candidate is first cleaned (:func:`clean`): whitespace collapsed; a separator-delimited
segment naming the site dropped from either end (``"Blowup Tuesday - Twitch"`` →
``"Blowup Tuesday"``, ``"The Office No GIF - Find & Share on GIPHY"`` → ``"The Office No GIF"``);
a social wrapper unwrapped (``'The Verge on X: "Is it bad…"'`` → ``"Is it bad…"``); enclosing
quotes and trailing bare URLs removed. Then it is demoted (:func:`demotion`) when it is

* ``site-name``: only the site's name (``og:title`` = ``"Twitch"``);
* ``author-only``: only who posted it (``"IlloJuan on TikTok"``, ``"Stephen King (@sk)"``);
* ``boilerplate``: text every page of the site carries (``"Watch … on …"``, ``"Discover &
  share this … GIF"``, ``"123K likes, 45 comments - …"``, ``"JavaScript is not available."``,
  a cookie banner, ``"Embedded video"``);
* ``empty``: nothing left after cleaning.

The caption is the first candidate in :data:`RANK` order that is not demoted — except that when
the page's own title (``opengraph`` or ``twitter:title``) names only an author, the description
candidates move up to its place (a social post's text is its description). A chosen caption
``"X - Y"`` becomes ``"X"`` when ``X`` alone is another candidate (``"Comin in for a landing! -
Animals"`` beside the ``<h1>`` ``"Comin in for a landing!"``). No caption when every candidate
is demoted: the record keeps them all (``extra_json.captions``) for a query to pick from.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

#: candidate labels, best first. ``css``: a recipe selector; ``json-ld``: the VideoObject's
#: ``name``; ``opengraph``: ``og:title``; ``alt``: the poster image's alt/title text (WebVid's
#: caption); ``title``: the document ``<title>``; ``json-ld:headline``: another CreativeWork's
#: ``headline``/``name`` (a post, an article); ``hydration``: the title beside the media URL in
#: the page's state JSON; ``h1``: the first visible ``<h1>`` that is not boilerplate.
RANK = (
    "css",
    "json-ld",
    "opengraph",
    "twitter:title",
    "alt",
    "title",
    "json-ld:headline",
    "hydration",
    "h1",
    "json-ld:description",
    "og:description",
    "twitter:description",
)
DESCRIPTIONS = ("json-ld:description", "og:description", "twitter:description")
#: candidates are cut to this many characters before they are cleaned (and stored): a caption
#: is never longer, and the cleaning's regular expressions stay linear-time in practice
MAX_CHARS = 2000
PAGE_TITLES = ("opengraph", "twitter:title")

_SEPARATORS = re.compile(r"\s+(?:[-|–—·•/:]|::)\s+")
_WORDS = re.compile(r"[^\W_]+")
_LEADING_QUOTES = "\"'“”‘’«»„"
_TRAILING_URL = re.compile(r"(?:\s+https?://\S+)+$")
_ON = r"(?:on|en|auf|sur|em|su|op|på|no|na|di)"
_SOCIAL = re.compile(
    rf"^(?P<who>[^:]{{1,80}}?)\s+{_ON}\s+(?P<site>[^:]{{1,40}}?)\s*:\s*(?P<text>.+)$", re.S
)
_AUTHOR_ON = re.compile(rf"^(?P<who>[^:]{{1,80}}?)\s+{_ON}\s+(?P<site>[^:\"“”]{{1,40}})$", re.S)
_HANDLE = re.compile(r"^[^:]{0,80}\(@[\w.\-]+\)$")
_BOILERPLATE = re.compile(
    r"^watch\b.*\bon\b"
    r"|^discover (?:&|and) share\b"
    r"|^explore this post\b"
    r"|^[\d.,]+\s*[kmb]?\s+(?:likes?|views?|points?|comments?|plays?)\b"
    r"|\bjavascript\b.*\b(?:not available|required|disabled|enable)\b"
    r"|\bcookie (?:policy|consent|settings|preferences)\b|\bwe use cookies\b"
    r"|^(?:embedded\s+)?video(?:\s+player)?$"
    r"|^(?:advertisement|loading\.*|untitled|home ?page)$",
    re.I,
)


@dataclasses.dataclass(frozen=True)
class Choice:
    caption: str | None
    by: str | None  # the label it came from
    demoted: dict[str, str]  # label → reason, for every demoted candidate


def _key(text: str) -> tuple[str, ...]:
    return tuple(w.casefold() for w in _WORDS.findall(text))


def site_names(names: Iterable[str], page_url: str) -> set[tuple[str, ...]]:
    """The site's names as word tuples: each given name, its parts around separators and
    before a parenthesis (``"X (formerly Twitter)"`` → ``x``, ``formerly twitter``), and
    the host's registrable name (``clips.twitch.tv`` → ``twitch``)."""
    out: set[tuple[str, ...]] = set()
    for name in names:
        for part in [name, *_SEPARATORS.split(name), *re.split(r"[()]", name)]:
            key = _key(part)
            if key and len(key) <= 4:
                out.add(key)
    try:
        host = (urlsplit(page_url).hostname or "").lower()
    except ValueError:
        host = ""
    labels = [x for x in host.split(".") if x and x != "www"]
    if len(labels) >= 3 and labels[-2] in ("co", "com", "org", "net", "ac", "gov", "ne", "or"):
        labels = labels[:-1]
    if len(labels) >= 2 and not labels[-1].isdigit():  # not an IPv4 address
        out.add(_key(labels[-2]))
    return {k for k in out if k}


def _names_site(segment: str, sites: set[tuple[str, ...]]) -> bool:
    words = _key(segment)
    for site in sites:
        n = len(site)
        if any(words[i : i + n] == site for i in range(len(words) - n + 1)):
            return True
    return False


def _strip_site(text: str, sites: set[tuple[str, ...]]) -> str:
    parts = _SEPARATORS.split(text)
    seps = _SEPARATORS.findall(text)
    while len(parts) > 1 and _names_site(parts[-1], sites):
        parts.pop()
        seps.pop()
    if len(parts) > 1 and _names_site(parts[0], sites) and len(_key(parts[0])) <= 3:
        parts.pop(0)
        seps.pop(0)
    out = parts[0]
    for sep, part in zip(seps, parts[1:], strict=True):
        out += sep + part
    return out


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] in _LEADING_QUOTES and text[-1] in _LEADING_QUOTES + ".":
        inner = text[1:-1] if text[-1] != "." else text[1:-1].rstrip(_LEADING_QUOTES)
        if not any(q in inner for q in '"“”'):
            return inner.strip()
    return text


def clean(text: str, sites: set[tuple[str, ...]]) -> str:
    """``text`` as a caption: whitespace, site segments, social wrapper, quotes, URLs."""
    text = " ".join(html.unescape(text).split())
    text = _strip_site(text, sites)
    m = _SOCIAL.match(text)
    if m and _names_site(m["site"], sites):
        text = _strip_site(m["text"], sites)
    text = _unquote(text)
    text = _TRAILING_URL.sub("", text).strip()
    return _unquote(text)


def author_only(raw: str, sites: set[tuple[str, ...]]) -> bool:
    """``"<name> on <site>"`` or ``"<name> (@handle)"``, before any cleaning."""
    text = " ".join(raw.split())
    text = _strip_site(text, sites)
    m = _AUTHOR_ON.match(text)
    if m and _names_site(m["site"], sites) and len(_key(m["who"])) <= 6:
        return True
    return bool(_HANDLE.match(text))


def is_boilerplate(text: str) -> bool:
    """Text every page of a site carries ("Watch … on …", a cookie banner, ...)."""
    return bool(_BOILERPLATE.search(" ".join(text.split())))


def demotion(raw: str, text: str, sites: set[tuple[str, ...]]) -> str | None:
    """Why a candidate (``raw``, cleaned to ``text``) is passed over; None when it is not."""
    if not _key(text):
        return "empty"
    if _key(text) in sites:
        return "site-name"
    if author_only(raw, sites):
        return "author-only"
    if _BOILERPLATE.search(text):
        return "boilerplate"
    return None


def _order(demoted: Mapping[str, str]) -> list[str]:
    if not any(demoted.get(label) == "author-only" for label in PAGE_TITLES):
        return list(RANK)
    first = min(RANK.index(label) for label in PAGE_TITLES if demoted.get(label) == "author-only")
    head = [x for x in RANK[:first] if x not in DESCRIPTIONS]
    return head + list(DESCRIPTIONS) + [x for x in RANK[first:] if x not in DESCRIPTIONS]


def choose(candidates: Mapping[str, str], sites: set[tuple[str, ...]]) -> Choice:
    """The caption among ``candidates`` (label → raw text) by the rule above."""
    candidates = {label: raw[:MAX_CHARS] for label, raw in candidates.items()}
    cleaned = {label: clean(raw, sites) for label, raw in candidates.items()}
    demoted = {
        label: reason
        for label, raw in candidates.items()
        if (reason := demotion(raw, cleaned[label], sites))
    }
    for label in _order(demoted):
        if label in cleaned and label not in demoted:
            return Choice(_core(cleaned[label], cleaned, label), label, demoted)
    return Choice(None, None, demoted)


def _core(text: str, cleaned: Mapping[str, str], label: str) -> str:
    """``"X - Y"`` → ``"X"`` when another candidate is exactly ``X``."""
    others = {v for k, v in cleaned.items() if k != label}
    parts = _SEPARATORS.split(text)
    seps = _SEPARATORS.findall(text)
    for n in range(len(parts) - 1, 0, -1):
        head = parts[0] + "".join(s + p for s, p in zip(seps[: n - 1], parts[1:n], strict=True))
        if head in others:
            return head
    return text
