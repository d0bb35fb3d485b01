"""The crawl's one egress policy: which URLs and addresses a crawl may connect to.

Takes a URL (from a table, a page, a ``Location`` header, robots.txt, yt-dlp through the
local proxy) or a resolved address, and the ``[polite]`` settings; produces a
:class:`Verdict` — refused with a crawl reason (``invalid_url``, ``off_host``,
``private_address``), or allowed with the *canonical* URL to request.

The host is judged in the form the HTTP library will connect to, not as written: yarl (the
URL library of aiohttp) maps full-width and other compatibility digits and dots, case and
IDNA/UTS-46 spellings onto one ASCII host (``１２７。０。０。１`` → ``127.0.0.1``), and the
request is then made with that same canonical :class:`yarl.URL` object, so what was checked
is what is connected to. Numeric hosts that the C library would read as an IPv4 address
(``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``, a trailing dot) are judged as that
address. A host name is judged on its resolved addresses by :meth:`EgressPolicy.allowed_addresses`
(the session's resolver and the proxy use it: one resolution, the checked address is the one
connected to), and :meth:`EgressPolicy.socket_factory` checks the address of every socket the
session opens, the last line for IP literals that never meet a resolver.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import re
import socket
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import yarl

from webvid.crawl import polite

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: what a host name may hold once canonical (IDNA turns every other letter into xn--...)
_REG_NAME = re.compile(r"[a-z0-9_\-]+(?:\.[a-z0-9_\-]+)*\.?")
#: a host made of these the C library's inet_aton may read as an IPv4 address
_NUMERIC = re.compile(r"[0-9][0-9a-fx.]*")
#: the full stops UTS-46 maps to "." (ideographic, full-width, half-width ideographic)
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class PrivateAddressError(OSError):
    """A host resolved only to addresses we refuse (private, loopback, link-local...)."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The policy's answer for one URL. ``reason`` None: allowed, request ``url``."""

    reason: str | None
    message: str = ""
    url: yarl.URL | None = None  # canonical URL, what the HTTP library will connect to
    host: str = ""  # canonical host (IPv6 without brackets)
    address: Address | None = None  # the address when the host is an IP literal in any form


def canonical_url(url: str | yarl.URL) -> yarl.URL:
    """``url`` parsed exactly as aiohttp parses it (ValueError when it cannot be)."""
    return url if isinstance(url, yarl.URL) else yarl.URL(url)


def literal_address(host: str) -> Address | None:
    """The address a canonical host names when it is an IP literal in any spelling the C
    library accepts (dotted quad, IPv6 with or without zone, decimal, hex, octal, short
    forms, one trailing dot), else None."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    bare = bare[:-1] if bare.endswith(".") else bare
    if _NUMERIC.fullmatch(bare):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def unicode_reading(host: str) -> Address | None:
    """The IPv4 address a non-ASCII host spells when each of its labels is read as a
    decimal number in any script (``int("١٢٧")`` is 127), else None. IDNA leaves such a
    host a name; a library that read it with ``int()`` would reach the address, so the
    policy judges both readings."""
    text = unicodedata.normalize("NFKC", host).translate(_DOTS).strip("[]")
    text = text[:-1] if text.endswith(".") else text
    labels = text.split(".")
    if len(labels) != 4 or not all(label.isdecimal() and len(label) <= 3 for label in labels):
        return None
    octets = [int(label) for label in labels]
    if any(o > 255 for o in octets):
        return None
    return ipaddress.IPv4Address(".".join(map(str, octets)))


@functools.lru_cache(maxsize=4096)
def canonical_host(host: str) -> str:
    """A host name as the HTTP library will spell it (lower case, IDNA, no trailing dot),
    for host allow-lists and per-host keys; lower-cased when it is not a valid host."""
    host = host.strip().strip("[]")
    if not host:
        return ""
    try:
        canonical = yarl.URL.build(scheme="http", host=host).raw_host or ""
    except ValueError:
        canonical = host.lower()
    return canonical[:-1] if canonical.endswith(".") else canonical


def host_of(url: str) -> str:
    """The canonical host of ``url`` ("" when it has none or cannot be parsed)."""
    try:
        return canonical_url(url).raw_host or ""
    except ValueError:
        return ""


class EgressPolicy:
    """The decisions of one crawl: ``allow_private`` lifts the address rule, ``allowlist``
    (CIDR strings) names networks allowed anyway."""

    def __init__(self, allow_private: bool = False, allowlist: tuple[str, ...] = ()) -> None:
        self.allow_private = allow_private
        try:
            self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in allowlist)
        except ValueError as exc:
            raise ValueError(f"polite.private_allowlist: {exc}") from None
        self.allowlist = allowlist
        self._hosts: dict[tuple[str, str], Verdict] = {}

    @classmethod
    def from_config(cls, polite_cfg: Any) -> EgressPolicy:
        return cls(polite_cfg.allow_private, tuple(polite_cfg.private_allowlist))

    # -- addresses -----------------------------------------------------------------------

    def forbidden(self, address: str | Address) -> bool:
        """Whether connecting to ``address`` is refused (never, with allow_private)."""
        if self.allow_private:
            return False
        return polite.is_forbidden_address(str(address), self.allowlist)

    def allowed_addresses(self, host: str, addresses: list[str]) -> list[str]:
        """The addresses of ``addresses`` (what ``host`` resolved to) we may connect to;
        PrivateAddressError when none is left."""
        allowed = [a for a in addresses if not self.forbidden(a)]
        if not allowed:
            shown = ", ".join(sorted(set(addresses))) or "no address"
            raise PrivateAddressError(f"{host} resolves to a private/loopback address ({shown})")
        return allowed

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and keep the allowed addresses (for the yt-dlp proxy)."""
        address = literal_address(host)
        if address is not None:
            return self.allowed_addresses(host, [str(address)])
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return self.allowed_addresses(host, [str(info[4][0]) for info in infos])

    def socket_factory(self) -> Callable[[Any], socket.socket]:
        """For ``aiohttp.TCPConnector(socket_factory=...)``: refuses to open a socket to a
        forbidden address, whatever path (literal, resolver, cache) chose it."""

        def make(addr_info: Any) -> socket.socket:
            family, type_, proto, _, sockaddr = addr_info
            if self.forbidden(sockaddr[0]):
                raise PrivateAddressError(f"{sockaddr[0]} is a private/loopback address")
            return socket.socket(family=family, type=type_, proto=proto)

        return make

    # -- URLs ----------------------------------------------------------------------------

    def check(self, url: str | yarl.URL, hosts: frozenset[str] | None = None) -> Verdict:
        """The verdict on ``url``; ``hosts`` (canonical host names) limits where it may go."""
        try:
            parsed = canonical_url(url)
            _ = parsed.port
        except (ValueError, TypeError) as exc:
            return Verdict("invalid_url", f"invalid URL: {exc}")
        scheme = parsed.scheme
        host = parsed.raw_host or ""
        if scheme not in ("http", "https") or not host:
            return Verdict("invalid_url", f"not an http(s) URL: {str(url)[:200]}")
        key = (scheme, host)
        verdict = self._hosts.get(key)
        if verdict is None:
            verdict = self._check_host(host)
            if len(self._hosts) > 4096:
                self._hosts.clear()
            self._hosts[key] = verdict
        if verdict.reason is not None:
            return verdict
        if isinstance(url, str) and not url.isascii():
            refused = self._check_unicode_reading(url)
            if refused is not None:
                return refused
        if hosts is not None and host.rstrip(".") not in hosts:
            return Verdict("off_host", f"{host} is not an allowed host")
        return dataclasses.replace(verdict, url=parsed)

    def _check_legacy_numeric(self, host: str, address: Address) -> Verdict:
        """A numeric host that is not a dotted quad (``2130706433``, ``0x7f.1``,
        ``010.0.0.1``): libraries read it differently (inet_aton: octal; ``int()``: decimal;
        aiohttp: refused), so it is private when any reading is, else not a usable URL."""
        for reading in (address, unicode_reading(host)):
            if reading is not None and self.forbidden(reading):
                return Verdict(
                    "private_address",
                    f"{host} reads as the private/loopback address {reading} (use --allow-private)",
                    host=host,
                    address=reading,
                )
        return Verdict("invalid_url", f"{host} is not a canonical IPv4 address")

    def _check_unicode_reading(self, url: str) -> Verdict | None:
        try:
            written = urlsplit(url).hostname or ""
        except ValueError:
            return Verdict("invalid_url", f"invalid URL: {url[:200]}")
        address = unicode_reading(written)
        if address is not None and self.forbidden(address):
            return Verdict(
                "private_address",
                f"{written[:100]} spells the private/loopback address {address}",
                address=address,
            )
        return None

    def _check_host(self, host: str) -> Verdict:
        address = literal_address(host)
        if address is None and not (":" in host or _REG_NAME.fullmatch(host)):
            return Verdict("invalid_url", f"invalid host {host[:100]!r}")
        if address is not None and ":" not in host and str(address) != host:
            return self._check_legacy_numeric(host, address)
        if address is not None and self.forbidden(address):
            return Verdict(
                "private_address",
                f"{host} is a private/loopback address"
                + (f" ({address})" if str(address) != host else "")
                + " (use --allow-private)",
                host=host,
                address=address,
            )
        return Verdict(None, host=host, address=address)
