"""TDMRep (W3C TDM Reservation Protocol, CG final report): file, headers, meta → Signals (pure).

Takes the body of ``/.well-known/tdmrep.json`` (:func:`parse_tdm_file` → :class:`TdmFile`),
the ``tdm-reservation`` / ``tdm-policy`` response header values (:func:`header_signal`) and
the ``<meta name="tdm-reservation|tdm-policy">`` contents of a clip page (:func:`meta_signal`);
produces :class:`~webvid.crawl.optout.Signal` values: reservation ``1`` denies every purpose
(text and data mining covers training and indexing alike), ``0`` allows, and the policy URL is
kept in the raw value. Which of the three stands is :func:`webvid.crawl.optout.decide`'s
(file < header < meta, TDMRep §Processing priority).

The file: a JSON array of ``{"location", "tdm-reservation", "tdm-policy"?}`` rules; a path is
matched against each ``location`` with robots.txt's pattern rules (``*``, ``$``, percent-
encoding of unreserved characters normalised, case-sensitive) and the *first* matching rule in
the array applies (TDMRep: "the most specific match is the first in sequence"); no match →
unset.

Conservative readings (docs/ethics.md): a reservation value other than 0 or 1 (``"yes"``,
``2``, missing) counts as 1; a body that starts like JSON but does not parse, or is not an
array, or is over the byte cap, reserves every path of the host. A body that does not look
like JSON at all (a site's HTML "not found" page served with 200) is no file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from webvid.crawl.optout import ALLOW, DENY, Signal, clip, same_for_all
from webvid.crawl.optout_robots import pattern_matches

#: the most bytes of tdmrep.json read (a larger file reserves everything, see above)
TDM_FILE_MAX_BYTES = 256 * 1024
TDM_FILE_PATH = "/.well-known/tdmrep.json"
_MAX_RULES = 10_000


@dataclasses.dataclass(frozen=True)
class TdmRule:
    location: str
    reservation: str  # "0", "1", or the raw value when it is neither (counts as 1)
    policy: str | None = None

    def raw(self) -> str:
        obj: dict[str, Any] = {"location": self.location, "tdm-reservation": self.reservation}
        if self.policy:
            obj["tdm-policy"] = self.policy
        return json.dumps(obj, ensure_ascii=False)


@dataclasses.dataclass(frozen=True)
class TdmFile:
    """One host's tdmrep.json: its rules, or why all of it reads as a reservation."""

    rules: tuple[TdmRule, ...] = ()
    malformed: str | None = None

    def signal(self, path: str, on: str) -> Signal | None:
        """The ``tdmrep-file`` signal for ``path`` (path + query), None when no rule matches."""
        if self.malformed:
            return Signal(
                "tdmrep-file", on, clip(f"malformed: {self.malformed}"), same_for_all(DENY)
            )
        for rule in self.rules:
            if pattern_matches(rule.location, path):
                return Signal("tdmrep-file", on, clip(rule.raw()), _prefs(rule.reservation))
        return None


def _prefs(reservation: str) -> tuple[str | None, str | None, str | None]:
    return same_for_all(ALLOW if reservation == "0" else DENY)


def _reservation(value: object) -> str:
    if value in (0, 1) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return value.strip()
    return clip(json.dumps(value, ensure_ascii=False, default=str), 80)


def parse_tdm_file(body: bytes) -> TdmFile | None:
    """A tdmrep.json body (at most ``TDM_FILE_MAX_BYTES + 1`` bytes of it) → its rules."""
    text = body.decode("utf-8", "replace").removeprefix("\ufeff").lstrip()
    if not text or text[0] not in "[{":
        return None  # not JSON at all: no TDMRep file here
    if len(body) > TDM_FILE_MAX_BYTES:
        return TdmFile(malformed=f"over {TDM_FILE_MAX_BYTES} bytes")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return TdmFile(malformed=f"not valid JSON ({str(exc)[:80]})")
    if not isinstance(data, list):
        return TdmFile(malformed="not a JSON array")
    rules = []
    for obj in data[:_MAX_RULES]:
        if not isinstance(obj, dict):
            continue
        location = obj.get("location")
        if not isinstance(location, str) or not location.strip():
            continue  # a rule without a location matches nothing
        policy = obj.get("tdm-policy")
        rules.append(
            TdmRule(
                location.strip(),
                _reservation(obj.get("tdm-reservation")),
                clip(policy, 300) if isinstance(policy, str) else None,
            )
        )
    return TdmFile(rules=tuple(rules))


def _combined(
    source: str, reservations: Sequence[str], policies: Sequence[str], on: str
) -> Signal | None:
    """One signal from the reservation and policy values of a header or a page."""
    values = [v.strip() for v in reservations]
    if not values and not any(p.strip() for p in policies):
        return None
    parts = [f"tdm-reservation: {v}" for v in values]
    parts += [f"tdm-policy: {p.strip()}" for p in policies if p.strip()]
    if not values:
        prefs: tuple[str | None, str | None, str | None] = same_for_all(None)
    elif all(v == "0" for v in values):
        prefs = same_for_all(ALLOW)
    else:  # a 1 anywhere, or a value that is neither: reserved
        prefs = same_for_all(DENY)
    return Signal(source, on, clip("; ".join(parts)), prefs)


def header_signal(reservations: Sequence[str], policies: Sequence[str], on: str) -> Signal | None:
    """The ``tdmrep-header`` signal of a response's ``tdm-reservation`` / ``tdm-policy``."""
    return _combined("tdmrep-header", reservations, policies, on)


def meta_signal(reservations: Sequence[str], policies: Sequence[str]) -> Signal | None:
    """The ``tdmrep-meta`` signal of a clip page's meta elements."""
    return _combined("tdmrep-meta", reservations, policies, "page")
