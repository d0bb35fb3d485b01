"""Opt-out signals as data, and the decision they add up to for a purpose (pure, no I/O).

Takes the :class:`Signal` values the signal readers produce (``optout_aipref``: the IETF
``Content-Usage`` field; ``optout_robots``: robots.txt rules and groups; ``optout_tdm``:
TDMRep file, headers and meta; ``optout_collect``: ``X-Robots-Tag`` and robots meta, and the
gathering per response); produces a :class:`Decision` for the crawl's purpose
(:func:`decide`) and the record columns ``optout_source``, ``optout_value``,
``optout_signals`` (:func:`record_columns`).

How signals add up (docs/ethics.md says why):

* every family is read on its own, in this order, and the first that denies decides:
  ``robots`` → ``content-usage`` → ``content-signal`` → TDMRep → ``x-robots-tag`` →
  ``robots-meta``; with no denial, the first that explicitly allows is recorded as the
  deciding signal, and with none the item is allowed by default (source null);
* within ``content-usage`` and ``content-signal`` every statement counts and a denial wins
  (the AI-preferences vocabulary's "most restrictive preference applies");
* TDMRep keeps its own order per response: ``tdmrep-file`` < ``tdmrep-header`` <
  ``tdmrep-meta`` — a later one supersedes, an absent one does not reset (TDMRep §Processing
  priority); the clip page and the media URL are read separately and either can deny.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from webvid.contract import OPTOUT_SOURCES, PURPOSES

ALLOW = "allow"
DENY = "deny"

#: the order in which signal families are asked (the first denial decides)
FAMILIES: tuple[tuple[str, ...], ...] = (
    ("robots",),
    ("content-usage",),
    ("content-signal",),
    ("tdmrep-file", "tdmrep-header", "tdmrep-meta"),
    ("x-robots-tag",),
    ("robots-meta",),
)
_TDM = FAMILIES[3]

#: the record reason of a denial by each source
_REASON = {
    "robots": "robots_disallowed",
    "x-robots-tag": "x_robots_tag",
    "robots-meta": "x_robots_tag",
}


@dataclasses.dataclass(frozen=True)
class Signal:
    """One opt-out signal seen for an item.

    ``prefs`` holds what it says for each of :data:`~webvid.contract.PURPOSES`, in that order:
    ``"allow"``, ``"deny"`` or None (nothing about that purpose)."""

    source: str  # one of contract.OPTOUT_SOURCES
    on: str  # "page" | "media"
    value: str  # the raw value, as the site wrote it
    prefs: tuple[str | None, str | None, str | None]

    def __post_init__(self) -> None:
        if self.source not in OPTOUT_SOURCES:
            raise ValueError(f"unknown opt-out source {self.source!r}")
        if len(self.prefs) != len(PURPOSES):
            raise ValueError("prefs: one value per purpose")

    def says(self, purpose: str) -> str | None:
        return self.prefs[purpose_index(purpose)]

    def row(self, superseded: bool = False) -> dict[str, Any]:
        """The ``optout_signals`` struct of this signal."""
        return {
            "source": self.source,
            "on": self.on,
            "value": self.value,
            **{p.replace("-", "_"): v for p, v in zip(PURPOSES, self.prefs, strict=True)},
            "superseded": superseded,
        }


def purpose_index(purpose: str) -> int:
    try:
        return PURPOSES.index(purpose)
    except ValueError:
        raise ValueError(f"unknown purpose {purpose!r}: one of {', '.join(PURPOSES)}") from None


def same_for_all(pref: str | None) -> tuple[str | None, str | None, str | None]:
    """``prefs`` saying ``pref`` for every purpose."""
    return (pref, pref, pref)


def clip(value: str, n: int = 500) -> str:
    """A raw value as recorded: at most ``n`` characters (a site may send anything)."""
    return value if len(value) <= n else value[: n - 1] + "…"


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the signals of an item say for one purpose: denied or not, and by which signal
    (the denying one, else the first explicit allow, else None)."""

    deny: bool
    signal: Signal | None = None

    @property
    def reason(self) -> str | None:
        """The record ``reason`` of a denial (None when allowed)."""
        if not self.deny or self.signal is None:
            return None
        return _REASON.get(self.signal.source, "opt_out")

    @property
    def message(self) -> str | None:
        if not self.deny or self.signal is None:
            return None
        return f"{self.signal.source} on the {self.signal.on}: {self.signal.value}"


def _tdm_effective(signals: Sequence[Signal], purpose: str | None) -> list[Signal]:
    """Per response (``on``), the TDMRep signal that stands after file → header → meta
    (``purpose`` None: one that says anything for any purpose)."""
    last: dict[str, Signal] = {}
    for source in _TDM:
        for s in signals:
            speaks = any(s.prefs) if purpose is None else s.says(purpose) is not None
            if s.source == source and speaks:
                last[s.on] = s  # a later source supersedes; an absent one does not reset
    return list(last.values())


def decide(signals: Iterable[Signal], purpose: str) -> Decision:
    """The decision of ``signals`` for ``purpose`` (see the module docstring)."""
    signals = list(signals)
    purpose_index(purpose)
    first_allow: Signal | None = None
    for family in FAMILIES:
        if family == _TDM:
            members = _tdm_effective(signals, purpose)
        else:
            members = [s for s in signals if s.source in family]
        for s in members:
            if s.says(purpose) == DENY:
                return Decision(True, s)
        if first_allow is None:
            first_allow = next((s for s in members if s.says(purpose) == ALLOW), None)
    return Decision(False, first_allow)


def record_columns(signals: Iterable[Signal], purpose: str) -> dict[str, Any]:
    """``optout_source``, ``optout_value`` and ``optout_signals`` of a crawl record."""
    signals = list(signals)
    decision = decide(signals, purpose)
    s = decision.signal
    standing = {id(x) for x in _tdm_effective(signals, None)}
    rows = [
        x.row(superseded=x.source in _TDM and any(x.prefs) and id(x) not in standing)
        for x in signals
    ]
    return {
        "optout_source": s.source if s else None,
        "optout_value": s.value if s else None,
        "optout_signals": rows or None,
    }
