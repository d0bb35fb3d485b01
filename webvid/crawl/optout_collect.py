"""Every opt-out signal of one response or one clip page, gathered (pure: no I/O).

Takes a response's headers (any case-insensitive multi-mapping with ``getall``: aiohttp's
``CIMultiDictProxy``), the host's robots rules (:class:`~webvid.crawl.polite.RobotsRules`:
robots.txt usage rules, AI-crawler groups and the host's tdmrep.json, all fetched once per
host by the robots cache) and the requested path; or a parsed clip page. Produces
:class:`~webvid.crawl.optout.Signal` lists, in the families' order:

* :func:`response_signals` (page or media response) — ``content-usage`` / ``content-signal``
  rules of robots.txt for the path, the ``Content-Usage`` header, ``tdmrep-file`` for the
  path, the ``tdm-reservation`` / ``tdm-policy`` headers, ``X-Robots-Tag``;
* :func:`page_signals` (a clip page's HTML) — ``<meta name="tdm-reservation">`` /
  ``tdm-policy`` and ``<meta name="robots" | "<token>">``.

``X-Robots-Tag`` and robots meta directives per purpose: ``noai``, ``noimageai``,
``noindex``, ``noimageindex`` and ``none`` deny the training purposes (img2dataset's set);
only ``noindex``, ``noimageindex`` and ``none`` deny ``search``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from webvid.crawl import extract, polite
from webvid.crawl.optout import DENY, Signal, clip
from webvid.crawl.optout_aipref import usage_signal
from webvid.crawl.optout_tdm import header_signal, meta_signal

SEARCH_OPT_OUT_DIRECTIVES = frozenset({"noindex", "noimageindex", "none"})


class Headers(Protocol):
    def getall(self, key: str, default: Any = ...) -> list[str]: ...


def robots_directive_signal(
    source: str, values: Sequence[str], token: str, on: str
) -> Signal | None:
    """An ``x-robots-tag`` or ``robots-meta`` signal (None when there are no values)."""
    values = [v for v in values if v.strip()]
    if not values:
        return None
    train = polite.x_robots_opt_out(values, token)
    search = polite.x_robots_opt_out(values, token, SEARCH_OPT_OUT_DIRECTIVES)
    prefs = (DENY if train else None, DENY if train else None, DENY if search else None)
    return Signal(source, on, clip(", ".join(v.strip() for v in values)), prefs)


def response_signals(
    headers: Headers,
    rules: polite.RobotsRules,
    path: str,
    on: str,
    *,
    token: str,
    x_robots_tag: bool = True,
) -> list[Signal]:
    """The signals of one response to ``path`` (path + query as requested)."""
    out: list[Signal] = []
    if rules.signals is not None:
        out += rules.signals.usage_signals(path, on)
    usage = [v for v in headers.getall("Content-Usage", []) if v.strip()]
    if usage:
        out.append(usage_signal(", ".join(usage), on))
    if rules.tdm is not None and (s := rules.tdm.signal(path, on)) is not None:
        out.append(s)
    s = header_signal(headers.getall("tdm-reservation", []), headers.getall("tdm-policy", []), on)
    if s is not None:
        out.append(s)
    if x_robots_tag:
        s = robots_directive_signal("x-robots-tag", headers.getall("X-Robots-Tag", []), token, on)
        if s is not None:
            out.append(s)
    return out


def page_signals(doc: extract.Doc, *, token: str, robots_meta: bool = True) -> list[Signal]:
    """The signals in a clip page's ``<meta>`` elements."""
    out: list[Signal] = []
    s = meta_signal(
        extract.meta_values(doc, "tdm-reservation"), extract.meta_values(doc, "tdm-policy")
    )
    if s is not None:
        out.append(s)
    if robots_meta:
        values = extract.meta_values(doc, "robots") + extract.meta_values(doc, token.lower())
        s = robots_directive_signal("robots-meta", values, token, "page")
        if s is not None:
            out.append(s)
    return out
