"""Politeness and safety rules as pure functions: no I/O, tested as tables.

Takes strings and numbers (a robots.txt body, an ``X-Robots-Tag`` header, a ``Retry-After``
value, an IP address, the clock); produces decisions:

* :func:`parse_robots` → :class:`RobotsRules`: protego parses and matches (RFC 9309 as
  Google reads it: groups by user-agent token, longest match wins, ``Allow`` wins ties, ``*``
  and ``$`` wildcards, ``Crawl-delay``); :func:`robots_for_status` adds our policy (4xx: allow
  all, 5xx: disallow all). The rules also carry the file's opt-out side
  (:mod:`webvid.crawl.optout_robots`: ``Content-Usage`` / ``Content-Signal`` rules, groups of
  AI-training crawlers) and the host's tdmrep.json (:mod:`webvid.crawl.optout_tdm`);
* :func:`x_robots_opt_out` — whether an ``X-Robots-Tag`` opts out of AI/dataset use, with
  img2dataset's directive set and UA-scoped directives (``webvid: noai``);
* :func:`backoff_delay`, :func:`parse_retry_after` — exponential backoff with jitter that
  honours ``Retry-After``;
* :class:`TokenBucket` — per-host request rate;
* :func:`is_forbidden_address` — private, loopback, link-local, reserved targets;
* :func:`status_of` — the record ``status`` a failure reason maps to.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import ipaddress
import math
import random
import time

from protego import Protego

from webvid import contract
from webvid.crawl.optout_robots import RobotsSignals, parse_signals
from webvid.crawl.optout_tdm import TdmFile

# --------------------------------------------------------------------------------------------
# robots.txt
# --------------------------------------------------------------------------------------------


#: the origin put in front of a path for protego, which reads URLs: the rules of one host are
#: asked about that host's paths only, so any fixed origin does (a path like ``//x`` stays a path)
_ORIGIN = "http://robots.invalid"


@dataclasses.dataclass(frozen=True)
class RobotsRules:
    """What one host's robots.txt says to our token: parsed and matched by protego, with our
    policy for unreachable or missing files on top."""

    parser: Protego | None = None  # None: no rules at all (no robots.txt, a 4xx, obey off)
    token: str = ""
    crawl_delay_s: float | None = None
    disallow_all: bool = False  # robots.txt unreachable (5xx / network error): RFC 9309 §2.3.1.4
    signals: RobotsSignals | None = None  # usage rules and AI-crawler groups of the file
    tdm: TdmFile | None = None  # the host's /.well-known/tdmrep.json, when it has one

    def allowed(self, path: str) -> bool:
        """Whether ``path`` (path + query, percent-encoded as sent) may be fetched."""
        if self.disallow_all:
            return False
        if self.parser is None or path == "/robots.txt":
            return True
        return self.parser.can_fetch(_ORIGIN + _utf8(path), self.token)


ALLOW_ALL = RobotsRules()
DISALLOW_ALL = RobotsRules(disallow_all=True)


def _utf8(text: str) -> str:
    """``text`` with lone surrogates (which protego cannot percent-encode) replaced."""
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


def parse_robots(text: str, token: str) -> RobotsRules:
    """The group for ``token`` (case-insensitive product token), else ``*``, else allow all.

    Parsing and matching are protego's (Google's robots.txt rules, RFC 9309: longest match
    wins, ``Allow`` wins ties, ``*`` and ``$`` wildcards, percent-encoding normalised, groups
    naming one agent merged); ``Crawl-delay`` is the chosen group's (its last valid value).
    """
    token = token.strip().lower()
    parser = Protego.parse(_utf8(text.removeprefix("\ufeff")))  # a BOM is not a field name
    return RobotsRules(
        parser=parser,
        token=token,
        crawl_delay_s=parser.crawl_delay(token),
        signals=parse_signals(text, token),
    )


def robots_for_status(status: int, text: str, token: str) -> RobotsRules:
    """RFC 9309: 2xx → parse; 4xx → no restrictions; 5xx → assume complete disallow."""
    if 200 <= status < 300:
        return parse_robots(text, token)
    if 400 <= status < 500:
        return ALLOW_ALL
    return DISALLOW_ALL


# --------------------------------------------------------------------------------------------
# X-Robots-Tag and meta robots
# --------------------------------------------------------------------------------------------

#: The directives img2dataset treats as an opt-out of dataset use.
OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai", "noindex", "noimageindex", "none"})


def x_robots_opt_out(
    values: list[str] | tuple[str, ...],
    token: str,
    directives: frozenset[str] = OPT_OUT_DIRECTIVES,
) -> str | None:
    """The opt-out directive (one of ``directives``) that applies to us in these header
    values, or None.

    A value is ``"noai, noindex"`` (everyone) or ``"otherbot: noai"`` / ``"webvid: noai"``
    (that user agent only). Directives scoped to other agents are ignored.
    """
    token = token.lower()
    for value in values:
        scope: str | None = None
        for part in value.split(","):
            part = part.strip().lower()
            if not part:
                continue
            if ":" in part:
                head, rest = (s.strip() for s in part.split(":", 1))
                if head not in (
                    "unavailable_after",
                    "max-snippet",
                    "max-image-preview",
                    "max-video-preview",
                ):
                    scope, part = head, rest
            if scope is not None and scope != token:
                continue
            if part in directives:
                return part
    return None


# --------------------------------------------------------------------------------------------
# Retries and rates
# --------------------------------------------------------------------------------------------


#: the longest wait a ``Retry-After`` can ask for (larger values are capped here; the
#: request loop ends an item whose wait is over ``net.max_retry_after_s`` anyway)
MAX_RETRY_AFTER_S = 86_400.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: ASCII delta-seconds or an HTTP date
    (RFC 9110 §10.2.3), capped at :data:`MAX_RETRY_AFTER_S`; None for anything else
    (Unicode digits, signs, fractions, garbage). Never raises."""
    if not value or len(value) > 64:
        return None
    value = value.strip(" \t")
    if not value.isascii():
        return None
    if value.isdigit():
        return min(float(int(value[:16])), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322, not local time
            when = when.replace(tzinfo=datetime.UTC)
        delta = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, OverflowError, IndexError, AttributeError):
        return None
    if not math.isfinite(delta):
        return None
    return min(max(0.0, delta), MAX_RETRY_AFTER_S)


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number ``attempt`` (1 = first retry): full exponential with jitter.

    ``Retry-After`` is a floor: we never come back sooner than the server asked.
    """
    rng = rng or random
    exp = min(max_s, base_s * (2 ** max(0, attempt - 1)))
    delay = exp * (0.5 + rng.random())  # jitter in [0.5, 1.5) × so retries do not line up
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return min(delay, max(max_s, retry_after_s or 0.0))


class TokenBucket:
    """A token bucket that hands out future slots: ``reserve(now)`` → seconds to wait.

    Reserving ahead (tokens may go negative) keeps concurrent callers in FIFO order without
    a lock: each caller learns its own start time at once.
    """

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = float(rate_per_s)
        self.burst = max(1, int(burst))
        self.tokens = float(self.burst)
        self.stamp: float | None = None

    def set_rate(self, rate_per_s: float) -> None:
        self.rate = max(1e-3, float(rate_per_s))

    def reserve(self, now: float) -> float:
        if self.stamp is None:
            self.stamp = now
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


# --------------------------------------------------------------------------------------------
# Addresses and statuses
# --------------------------------------------------------------------------------------------


def is_forbidden_address(address: str, allowlist: tuple[str, ...] = ()) -> bool:
    """Private, loopback, link-local, multicast, reserved or unspecified (v4 or v6), unless
    inside one of the ``allowlist`` networks (CIDR strings)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in ipaddress.ip_network(net, strict=False) for net in allowlist):
        return False
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT)
    )


_CGNAT = ipaddress.ip_network("100.64.0.0/10")

_STATUS_OF_REASON = {
    "robots_disallowed": contract.STATUS_SKIPPED_ROBOTS,
    "x_robots_tag": contract.STATUS_SKIPPED_OPT_OUT,
    "opt_out": contract.STATUS_SKIPPED_OPT_OUT,
    "taken_down": contract.STATUS_SKIPPED_OPT_OUT,  # exclude list / takedown log
    "private_address": contract.STATUS_SKIPPED_POLICY,
    "off_host": contract.STATUS_SKIPPED_POLICY,
    "invalid_url": contract.STATUS_SKIPPED_POLICY,
}


def status_of(reason: str | None) -> str:
    """The record ``status`` for a failure ``reason`` (None → success)."""
    if reason is None:
        return contract.STATUS_SUCCESS
    if reason not in contract.CRAWL_REASONS:
        raise ValueError(f"unknown crawl reason {reason!r}")
    return _STATUS_OF_REASON.get(reason, contract.STATUS_FAILED_TO_DOWNLOAD)


def reason_of_http(status: int) -> str | None:
    """The failure reason of a final HTTP status (None for 2xx)."""
    if 200 <= status < 300:
        return None
    if status == 429:
        return "http_429"
    if status >= 500:
        return "http_5xx"
    if status in (404, 410):
        return "http_404"
    return "http_4xx"
