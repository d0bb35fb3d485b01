"""IETF AI preferences: the ``Content-Usage`` statement → what it says per purpose (pure).

Takes a statement of preference as a string — the ``Content-Usage`` HTTP field value (several
field lines joined with ``", "``, as HTTP combines them) or the preference part of a robots.txt
``Content-Usage`` rule; produces per-purpose preferences (:func:`usage_prefs`) and
:class:`~webvid.crawl.optout.Signal` values (:func:`usage_signal`).

Format: an RFC 9651 Structured Field *Dictionary* (:func:`parse_dictionary`, a strict parser
of §4.2.2: keys are lower case, the last duplicate wins, parameters are ignored); each key a
usage category, each value the Token ``y`` or ``n`` (draft-ietf-aipref-vocab §6).

Vocabulary and hierarchy: draft-ietf-aipref-vocab-03 (September 2025), the version with the
labels the crawler's purposes map to: ``bots`` (automated processing) ⊃ ``train-ai`` ⊃
``train-genai``, and ``bots`` ⊃ ``search`` (``ai-output`` ⊃ ``search`` in -04 is read too). A
category the statement does not name takes its parent's preference (vocab §5, "Applying
Statements of Preference"), so ``train-ai=n`` also denies ``train-genai``. Since -05 the draft
keeps only ``train-ai`` (training of foundation / generative models) and ``search``; reading
those labels the same way, both training purposes stay covered.

Our conservative departures (docs/ethics.md): a value for a category on a purpose's chain
that is not the Token ``y`` or ``n`` (``train-ai=no``, ``train-ai="n"``) denies that purpose
instead of being "unknown", and a field that does not parse at all denies every purpose — a
typo in an opt-out must not become a yes.
"""

from __future__ import annotations

import functools
import re

from webvid.contract import PURPOSES
from webvid.crawl.optout import ALLOW, DENY, Signal, clip, same_for_all

#: per purpose, the categories that speak for it, most specific first
CHAINS: dict[str, tuple[str, ...]] = {
    "train-ai": ("train-ai", "bots"),
    "train-genai": ("train-genai", "train-ai", "bots"),
    "search": ("search", "ai-output", "bots"),
}


class Token(str):
    """An RFC 9651 Token (told apart from a String: ``n`` and ``"n"`` differ)."""


class SFError(ValueError):
    """The text is not a Structured Field Dictionary."""


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,3})?")
_BYTES = re.compile(r":[A-Za-z0-9+/=]*:")
_DATE = re.compile(r"@-?[0-9]{1,15}")


class _Reader:
    def __init__(self, text: str) -> None:
        self.s, self.i = text, 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip(self, chars: str) -> None:
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1

    def match(self, pattern: re.Pattern[str]) -> str:
        m = pattern.match(self.s, self.i)
        if not m:
            raise SFError(f"unexpected {self.peek()!r} at {self.i}")
        self.i = m.end()
        return m.group(0)


def _bare_item(r: _Reader) -> object:
    c = r.peek()
    if c == '"':
        r.i += 1
        out = []
        while True:
            c = r.peek()
            if not c:
                raise SFError("unterminated string")
            r.i += 1
            if c == "\\":
                nxt = r.peek()
                if nxt not in ('"', "\\"):
                    raise SFError("bad escape in string")
                out.append(nxt)
                r.i += 1
            elif c == '"':
                return "".join(out)
            elif not (" " <= c <= "~"):
                raise SFError("bad character in string")
            else:
                out.append(c)
    if c == "-" or c.isdigit():
        text = r.match(_NUMBER)
        return float(text) if "." in text else int(text)
    if c == "?":
        r.i += 1
        v = r.peek()
        if v not in ("0", "1"):
            raise SFError("bad boolean")
        r.i += 1
        return v == "1"
    if c == ":":
        return r.match(_BYTES)
    if c == "@":
        return r.match(_DATE)
    if c == "%":
        raise SFError("display strings are not read here")
    if c.isascii() and (c.isalpha() or c == "*"):
        return Token(r.match(_TOKEN))
    raise SFError(f"unexpected {c!r} at {r.i}")


def _parameters(r: _Reader) -> None:
    while r.peek() == ";":
        r.i += 1
        r.skip(" ")
        r.match(_KEY)
        if r.peek() == "=":
            r.i += 1
            _bare_item(r)


def _member(r: _Reader) -> object:
    if r.peek() == "(":  # an inner list: read and dropped (never a preference)
        r.i += 1
        while True:
            r.skip(" ")
            if r.peek() == ")":
                r.i += 1
                break
            _bare_item(r)
            _parameters(r)
            if r.peek() not in (" ", ")"):
                raise SFError("bad inner list")
        _parameters(r)
        return ()
    value = _bare_item(r)
    _parameters(r)
    return value


def parse_dictionary(text: str) -> dict[str, object]:
    """An RFC 9651 Dictionary: key → value (Token, str, int, float, bool, ``()`` for an inner
    list); a key without a value is ``True``. Raises :class:`SFError` when it does not parse."""
    if not text.isascii():
        raise SFError("not ASCII")
    r = _Reader(text.strip(" \t"))
    out: dict[str, object] = {}
    if not r.s:
        return out
    while True:
        key = r.match(_KEY)
        if r.peek() == "=":
            r.i += 1
            out[key] = _member(r)
        else:
            _parameters(r)
            out[key] = True
        r.skip(" \t")
        if not r.peek():
            return out
        if r.peek() != ",":
            raise SFError(f"expected ',' at {r.i}")
        r.i += 1
        r.skip(" \t")
        if not r.peek():
            raise SFError("trailing comma")


@functools.lru_cache(maxsize=256)  # the same few rule values, response after response
def usage_prefs(text: str) -> tuple[str | None, str | None, str | None]:
    """What a statement of preference says per purpose (``PURPOSES`` order)."""
    try:
        parsed = parse_dictionary(text)
    except SFError:
        return same_for_all(DENY)  # unreadable: conservative, every purpose denied
    out: list[str | None] = []
    for purpose in PURPOSES:
        pref = None
        for label in CHAINS[purpose]:
            if label in parsed:
                value = parsed[label]
                pref = ALLOW if value == Token("y") and isinstance(value, Token) else DENY
                break
        out.append(pref)
    return (out[0], out[1], out[2])


def usage_signal(text: str, on: str) -> Signal:
    """The ``content-usage`` signal of a header value or robots.txt rule."""
    return Signal("content-usage", on, clip(text), usage_prefs(text))
