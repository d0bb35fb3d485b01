"""The egress policy under attack: host spellings generated property-style (Unicode digits
of every script, full-width and ideographic dots, IDNA, numeric IPv4 forms, userinfo,
percent-encoding, trailing dots), and end to end — a table, a redirect, robots.txt, a
remote table and a discovered page aimed at a loopback server that is *not* allow-listed,
while 127.0.0.1 poses as a public host. The secret server must log zero requests.
Also ``Retry-After`` values of any shape. Everything runs on loopback; no DNS is asked
(numeric parsing uses ``AI_NUMERICHOST``)."""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import json
import math
import random
import socket
import sys
import time
import unicodedata
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest
import yarl
from aiohttp import web
from aiohttp.helpers import is_ip_address

from tests.loopback_polite import strict
from webvid.crawl import polite
from webvid.crawl.config import NetConfig, PoliteConfig
from webvid.crawl.egress import EgressPolicy, PrivateAddressError, literal_address
from webvid.crawl.net import GuardedResolver, host_key
from webvid.crawl.run import run
from webvid.errors import InputError


def _load_crawl_kit() -> ModuleType:
    """The loopback servers of tests/crawl/conftest.py (ThreadServer, make_app, ...)."""
    path = Path(__file__).parents[1] / "crawl" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_webvid_crawl_kit", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


kit = _load_crawl_kit()

# --------------------------------------------------------------------------------------------
# host spellings, generated
# --------------------------------------------------------------------------------------------

#: addresses that must never be reached, and one public one
FORBIDDEN = ["127.0.0.2", "169.254.169.254", "10.0.0.1", "192.168.1.1", "0.0.0.0", "100.64.0.1"]
PUBLIC = "8.8.8.8"
DOTS = [".", "\u3002", "\uff0e", "\uff61"]


def digit_families() -> list[str]:
    """The ten digits of every Unicode Nd script (ASCII, Arabic-Indic, Devanagari,
    full-width, mathematical bold, ...): each family as a 10-character string."""
    families = []
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if unicodedata.category(ch) == "Nd" and unicodedata.digit(ch) == 0:
            family = "".join(chr(cp + d) for d in range(10))
            if all(unicodedata.digit(c, -1) == d for d, c in enumerate(family)):
                families.append(family)
    return families


FAMILIES = digit_families()
#: compatibility digits outside Nd that NFKC maps to ASCII digits (superscripts, circled)
OTHER_DIGITS = {"1": ["\u00b9", "\u2460"], "2": ["\u00b2", "\u2461"], "7": ["\u2466", "\u2077"]}


def in_family(address: str, family: str) -> str:
    return "".join(family[int(c)] if c.isdigit() else c for c in address)


def spellings(address: str, rng: random.Random) -> list[str]:
    """Host spellings of the IPv4 ``address``: every digit family with every dot, mixed
    families, compatibility digits, numeric forms, trailing dots, mapped IPv6."""
    ip = ipaddress.IPv4Address(address)
    out = []
    for family in FAMILIES:
        for dot in DOTS:
            out.append(in_family(address, family).replace(".", dot))
    for _ in range(40):  # each character from a random family, each dot random
        out.append(
            "".join(
                rng.choice(FAMILIES)[int(c)] if c.isdigit() else rng.choice(DOTS) for c in address
            )
        )
    for _ in range(10):
        out.append(
            "".join(
                rng.choice([c, *OTHER_DIGITS.get(c, [])]) if c.isdigit() else c for c in address
            )
        )
    n = int(ip)
    a, b, c, d = ip.packed
    out += [
        str(n),
        hex(n),
        hex(n).upper().replace("X", "x"),
        "0" + oct(n)[2:],
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}",
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
        f"{address}.",
        f"{address}\uff0e",
        in_family(address, FAMILIES[-1]) + "\u3002",
        f"[::ffff:{address}]",
        f"[::ffff:{a * 256 + b:x}:{c * 256 + d:x}]",
        f"[0:0:0:0:0:ffff:{address}]",
        "%" + "%".join(f"{ord(ch):02X}" for ch in address),
        address.replace(".", "%2e"),
        address.upper(),
    ]
    return out


def urls_for(host: str, port: int = 8080) -> list[str]:
    """``host`` in URL positions: plain, with a port, behind userinfo, in front of @."""
    return [
        f"http://{host}/secret.mp4",
        f"https://{host}:{port}/secret.mp4",
        f"http://public.example:{port}@{host}:{port}/secret.mp4",
        f"http://user:pw@{host}/secret.mp4",
    ]


def connect_target(url: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address aiohttp would connect to for ``url`` without asking DNS: the IP
    literal of its canonical host, or what the C library reads as a numeric host; None
    for a name (that one meets the guarded resolver) or an unusable URL."""
    try:
        host = yarl.URL(url).raw_host or ""
    except ValueError:
        return None
    if is_ip_address(host):
        try:
            return ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            pass
    try:
        infos = socket.getaddrinfo(host, 80, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return ipaddress.ip_address(infos[0][4][0].split("%", 1)[0])


def written_reading(url: str) -> ipaddress.IPv4Address | None:
    """An independent reading of the written host: NFKC, Unicode dots, int() per label."""
    try:
        host = (yarl.URL(url, encoded=True).raw_host or "") if url.isascii() else ""
    except ValueError:
        host = ""
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or host
    except ValueError:
        return None
    text = unicodedata.normalize("NFKC", host)
    for dot in DOTS[1:]:
        text = text.replace(dot, ".")
    labels = text.rstrip(".").split(".")
    try:
        octets = [int(label) for label in labels]
    except ValueError:
        return None
    if len(octets) != 4 or not all(0 <= o <= 255 for o in octets):
        return None
    return ipaddress.IPv4Address(".".join(map(str, octets)))


def test_digit_families_cover_the_scripts() -> None:
    assert len(FAMILIES) >= 60  # Unicode 15 has ~68 decimal digit sets
    assert (
        "0123456789" in FAMILIES
        and "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19" in FAMILIES
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("address", [*FORBIDDEN, PUBLIC])
def test_every_spelling_is_judged_on_what_is_connected_to(address: str) -> None:
    policy = EgressPolicy()
    rng = random.Random(address)
    checked = 0
    for spelling in spellings(address, rng):
        for url in urls_for(spelling):
            verdict = policy.check(url)
            checked += 1
            target = connect_target(url)
            # never allowed when what would be connected to is forbidden
            if target is not None and policy.forbidden(target):
                assert verdict.reason in ("private_address", "invalid_url"), (url, verdict)
            # nor when the written host reads as a forbidden address
            reading = written_reading(url)
            if reading is not None and policy.forbidden(reading):
                assert verdict.reason in ("private_address", "invalid_url"), (url, verdict)
            # an allowed URL is requested in its canonical form, and that form is allowed
            if verdict.reason is None:
                assert verdict.url == yarl.URL(url)
                again = policy.check(str(verdict.url))
                assert again.reason is None and again.url == verdict.url, url
            # a refused canonical form means a refused spelling, for the same reason
            try:
                canonical = str(yarl.URL(url))
            except ValueError:
                assert verdict.reason == "invalid_url", url
                continue
            on_canonical = policy.check(canonical)
            if on_canonical.reason is not None:
                assert verdict.reason == on_canonical.reason, (url, canonical)
            if address in FORBIDDEN and "public.example:8080@" not in url:
                assert verdict.reason in ("private_address", "invalid_url"), (url, verdict)
    assert checked > 1000


def test_public_address_in_unicode_digits_is_the_public_address() -> None:
    policy = EgressPolicy()
    full = in_family(PUBLIC, "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19")
    ideographic = full.replace(".", "\u3002")
    verdict = policy.check(f"http://{ideographic}/x")
    assert verdict.reason is None and verdict.host == PUBLIC
    # with a trailing dot it is no canonical address (aiohttp refuses it too)
    assert policy.check(f"http://{full}\u3002/x").reason == "invalid_url"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:8080/x.mp4", "private_address"),
        ("http://127\u30020\u30020\u30021/x", "private_address"),
        ("http://\u0661\u0662\u0667.\u0660.\u0660.\u0661/x", "private_address"),
        ("http://0x7f.1/x", "private_address"),
        ("http://[::1%25lo]/x", "private_address"),
        ("http://[::ffff:169.254.169.254]/x", "private_address"),
        ("http://169.254.169.254./latest/meta-data", "private_address"),
        ("http://%31%32%37.0.0.1/x", "invalid_url"),
        ("http://exa mple.com/x", "invalid_url"),
        ("http://127.0.0.1\u00ad/x", "invalid_url"),
        ("http://127.0.0.1:99999/x", "invalid_url"),
        ("ftp://example.com/x", "invalid_url"),
        ("http://example.com@127.0.0.1/x", "private_address"),
        ("http://127.0.0.1@example.com/x", None),
        ("http://\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\u3002com/x", None),
        ("http://xn--bcher-kva.example/x", None),
    ],
)
def test_policy_table(url: str, reason: str | None) -> None:
    assert EgressPolicy().check(url).reason == reason


def test_allow_private_and_allowlist() -> None:
    url = "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/x"
    assert EgressPolicy(allow_private=True).check(url).reason is None
    assert EgressPolicy(allowlist=("127.0.0.1/32",)).check(url).reason is None
    assert EgressPolicy(allowlist=("127.0.0.1/32",)).check(
        url.replace("\uff11/", "\uff12/")
    ).reason == ("private_address")


def test_host_allow_list_compares_canonical_hosts() -> None:
    policy = EgressPolicy()
    hosts = frozenset({"example.com"})
    assert policy.check("http://EXAMPLE\u3002com./a", hosts).reason is None
    assert policy.check("http://other.com/a", hosts).reason == "off_host"
    assert host_key("http://\uff25xample.com/a") == host_key("http://example.com:80/b")
    assert host_key("http://[::1]:81/") == "http://[::1]:81"


def test_resolved_and_connected_addresses_are_checked() -> None:
    policy = EgressPolicy(allowlist=("127.0.0.1/32",))
    assert policy.allowed_addresses("h", ["127.0.0.2", "8.8.8.8"]) == ["8.8.8.8"]
    with pytest.raises(PrivateAddressError):
        policy.allowed_addresses("h", ["169.254.169.254", "::1", "::ffff:10.0.0.1"])
    make = policy.socket_factory()
    for sockaddr, family in [
        (("127.0.0.2", 80), socket.AF_INET),
        (("169.254.169.254", 80), socket.AF_INET),
        (("::1", 80, 0, 0), socket.AF_INET6),
        (("::ffff:127.0.0.2", 80, 0, 0), socket.AF_INET6),
        (("fe80::1%lo", 80, 0, 1), socket.AF_INET6),
    ]:
        with pytest.raises(PrivateAddressError):
            make((family, socket.SOCK_STREAM, 6, "", sockaddr))
    sock = make((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    sock.close()
    assert literal_address("0177.0.0.01") == ipaddress.IPv4Address("127.0.0.1")


def test_guarded_resolver_refuses_a_name_of_loopback() -> None:
    async def main() -> None:
        resolver = GuardedResolver(policy=EgressPolicy())
        try:
            with pytest.raises(PrivateAddressError):
                await resolver.resolve("localhost", 80)
        finally:
            await resolver.close()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------
# end to end: a hostile table, redirect, robots.txt, remote table, discovered page
# --------------------------------------------------------------------------------------------


def rows_of(out: Path) -> dict[str, dict]:
    return {
        r["clip_id"]: r
        for p in sorted((out / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    }


async def raw_redirect(req: web.Request) -> web.Response:
    """A 302 whose Location is sent as written, UTF-8 bytes and all (aiohttp's
    ``HTTPFound`` would normalise it first, as a hostile server does not)."""
    return web.Response(status=302, headers={"Location": req.query["to"]})


def secret_spellings(port: int) -> dict[str, str]:
    """Spellings of the secret server 127.0.0.2:port that bypassed the old guard, and the
    ASCII forms that already held."""
    fw = "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19"
    bold = "".join(chr(0x1D7CE + d) for d in range(10))
    return {
        "fullwidth": f"{in_family('127.0.0.2', fw)}:{port}",
        "ideographic": f"127\u30020\u30020\u30022:{port}",
        "fwstop": f"127\uff0e0\uff0e0\uff0e2:{port}",
        "halfstop": f"127\uff610\uff610\uff612:{port}",
        "mixed": f"1\uff127.0.\uff10.2:{port}",
        "bold": f"{in_family('127.0.0.2', bold)}:{port}",
        "circled": f"\u2460\u2461\u2466.0.0.\u2461:{port}",
        "arabic": f"{in_family('127.0.0.2', '٠١٢٣٤٥٦٧٨٩')}:{port}",
        "trailingdot": f"127.0.0.2.:{port}",
        "decimal": f"2130706434:{port}",
        "hex": f"0x7f.0.0.2:{port}",
        "percent": f"%31%32%37.0.0.2:{port}",
    }


@pytest.mark.timeout(120)
def test_table_of_spellings_reaches_no_secret(tmp_path: Path) -> None:
    secret = kit.SiteState(robots="User-agent: *\nAllow: /\n")
    outer_app = kit.make_app(kit.SiteState(robots="User-agent: *\nAllow: /\n"))
    outer_app.router.add_get("/raw", raw_redirect)
    with (
        kit.ThreadServer(kit.make_app(secret), host="127.0.0.2") as inner,
        kit.ThreadServer(outer_app) as outer,
    ):
        port = int(inner.url.rsplit(":", 1)[1])
        rows = {
            name: f"http://{host}/v/secret.mp4" for name, host in secret_spellings(port).items()
        }
        fw = secret_spellings(port)["fullwidth"]
        rows["userinfo"] = f"http://{outer.url[7:]}@{fw}/v/secret.mp4"
        ideographic = secret_spellings(port)["ideographic"]
        rows["redirect"] = f"{outer.url}/raw?to=http://{fw}/v/secret.mp4"
        rows["redirect2"] = f"{outer.url}/raw?to=http://{ideographic}/v/s.mp4"
        rows["redirect3"] = f"{outer.url}/redirect?to=http://{fw}/v/secret.mp4"
        rows["public"] = f"{outer.url}/v/public.mp4"
        table = tmp_path / "t.jsonl"
        table.write_text("".join(json.dumps({"id": k, "url": v}) + "\n" for k, v in rows.items()))
        out = tmp_path / "out"
        run(kit.fast_config(source=str(table), polite=strict()), out=out)
    assert secret.log == [], secret.log  # not one request, robots.txt included
    got = rows_of(out)
    assert got["public"]["status"] == "success"
    for name in rows:
        if name == "public":
            continue
        assert got[name]["status"] == "skipped_policy", (name, got[name])
        assert got[name]["reason"] in ("private_address", "invalid_url"), (name, got[name])
    assert got["fullwidth"]["reason"] == "private_address"
    assert got["redirect"]["reason"] == "private_address"


@pytest.mark.timeout(60)
def test_robots_redirect_to_a_spelling_is_not_followed(tmp_path: Path) -> None:
    secret = kit.SiteState()
    with kit.ThreadServer(kit.make_app(secret), host="127.0.0.2") as inner:
        port = int(inner.url.rsplit(":", 1)[1])
        fw = secret_spellings(port)["fullwidth"]
        app = web.Application()

        async def robots(_: web.Request) -> web.Response:
            return web.Response(status=302, headers={"Location": f"http://{fw}/robots.txt"})

        async def video(req: web.Request) -> web.Response:
            return web.Response(body=kit.fake_mp4(req.match_info["n"]), content_type="video/mp4")

        app.router.add_get("/robots.txt", robots)
        app.router.add_get("/v/{n}.mp4", video)
        with kit.ThreadServer(app) as outer:
            table = tmp_path / "t.csv"
            table.write_text(f"id,url\nv,{outer.url}/v/a.mp4\n")
            run(kit.fast_config(source=str(table), polite=strict()), out=tmp_path / "out")
    assert secret.log == []
    (row,) = rows_of(tmp_path / "out").values()
    assert (row["status"], row["reason"]) == ("skipped_robots", "robots_disallowed")


@pytest.mark.timeout(60)
def test_remote_table_and_discovery_obey_the_policy(tmp_path: Path) -> None:
    secret = kit.SiteState()
    app = web.Application()
    with kit.ThreadServer(kit.make_app(secret), host="127.0.0.2") as inner:
        port = int(inner.url.rsplit(":", 1)[1])
        fw = secret_spellings(port)["fullwidth"]

        async def page(_: web.Request) -> web.Response:
            return web.Response(
                text=f'<html><head><meta property="og:video" content="http://{fw}/v/s.mp4">'
                f'<title>clip</title></head><body><a href="http://{fw}/watch/2">more</a>'
                f'<video src="http://{fw}/v/t.mp4"></video></body></html>',
                content_type="text/html",
            )

        async def robots(_: web.Request) -> web.Response:
            return web.Response(text="User-agent: *\nAllow: /\n")

        app.router.add_get("/robots.txt", robots)
        app.router.add_get("/watch/1", page)
        with kit.ThreadServer(app) as outer:
            with pytest.raises(InputError, match="private_address"):
                run(
                    kit.fast_config(source=f"http://{fw}/table.csv", polite=strict()),
                    out=tmp_path / "a",
                )
            run(
                kit.fast_config(source=f"{outer.url}/watch/1", polite=strict(), via="direct"),
                out=tmp_path / "b",
            )
    assert secret.log == []
    rows = rows_of(tmp_path / "b")
    assert rows and all(r["reason"] == "private_address" for r in rows.values()), rows


# --------------------------------------------------------------------------------------------
# Retry-After
# --------------------------------------------------------------------------------------------


def retry_after_values(rng: random.Random) -> list[str]:
    values = ["0", "7", "120", "00012", " 5 ", "\t9", "1" * 30, "9" * 64, "9" * 65]
    values += [c for fam in FAMILIES for c in fam[1:3] if not c.isascii()]
    values += ["\u00b2", "\u00b9\u00b2", "\u2460", "\u2155", "\u0bf0", "٣", "1\u00b2", "²5"]
    values += ["-1", "-0", "+5", "1.5", "1e3", "inf", "nan", "0x10", "1_000", "", " ", "soon"]
    values += ["Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2099 07:28:00 GMT"]
    values += ["Wed, 21 Oct 9999 07:28:00 GMT", "Wed, 21 Oct 0001 07:28:00 GMT"]
    values += ["Sun, 06 Nov 1994 08:49:37 -0000", "Sunday, 06-Nov-94 08:49:37 GMT"]
    values += ["Sun Nov  6 08:49:37 1994", "Wed, 32 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015"]
    values += ["Wed, 21 Oct 2015 07:28:00 +9999", "Wed, ²1 Oct 2015 07:28:00 GMT"]
    alphabet = "0123456789 ,:-+.GMTWedOct\u00b2\u0663\uff11\x00\xff"
    for _ in range(3000):
        values.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
    for _ in range(500):
        values.append(
            bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 30))).decode("latin-1")
        )
    return values


def test_retry_after_never_raises_and_stays_in_range() -> None:
    now = 1_445_412_470.0
    for value in retry_after_values(random.Random(13)):
        got = polite.parse_retry_after(value, now=now)
        assert got is None or (math.isfinite(got) and 0.0 <= got <= polite.MAX_RETRY_AFTER_S), value
        stripped = value.strip(" \t")
        if (
            stripped
            and not (stripped.isascii() and stripped.isdigit())
            and any(c.isdigit() and not c.isascii() for c in stripped)
        ):
            assert got is None, value  # a non-ASCII digit is never a number of seconds
    assert polite.parse_retry_after("7") == 7.0
    assert polite.parse_retry_after(" 12\t") == 12.0
    assert polite.parse_retry_after("9" * 40) == polite.MAX_RETRY_AFTER_S
    assert polite.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 10.0
    assert polite.parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=now) == 10.0
    assert polite.parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0
    assert polite.parse_retry_after("Wed, 21 Oct 9999 07:28:00 GMT", now=now) == 86_400.0
    for bad in ("\u00b2", "-1", "1.5", "soon", "\u0663", "\uff11\uff12"):
        assert polite.parse_retry_after(bad, now=now) is None


@pytest.mark.timeout(60)
def test_unicode_retry_after_is_a_429_that_pauses_the_host(tmp_path: Path) -> None:
    stamps: list[float] = []

    async def limited(req: web.Request) -> web.Response:
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            return web.Response(status=429, headers={"Retry-After": "\u00b2"})
        return web.Response(body=kit.fake_mp4(req.match_info["n"]), content_type="video/mp4")

    app = kit.make_app(kit.SiteState())
    app.router.add_get("/r/{n}.mp4", limited)
    with kit.ThreadServer(app) as server:
        table = tmp_path / "t.csv"
        table.write_text(f"url\n{server.url}/r/a.mp4\n")
        polite_cfg = PoliteConfig(
            allow_private=True, per_host_rps=1000.0, per_host_burst=100, host_429_pause_s=0.6
        )
        net = NetConfig(retries=0, total_timeout_s=20.0)
        run(kit.fast_config(source=str(table), polite=polite_cfg, net=net), out=tmp_path / "a")
        (row,) = rows_of(tmp_path / "a").values()
        assert (row["reason"], row["http_status"]) == ("http_429", 429), row["error_message"]
        net = NetConfig(retries=2, backoff_base_s=0.01, backoff_max_s=2.0, total_timeout_s=20.0)
        stamps.clear()
        run(kit.fast_config(source=str(table), polite=polite_cfg, net=net), out=tmp_path / "b")
    (row,) = rows_of(tmp_path / "b").values()
    assert row["status"] == "success" and len(stamps) == 2
    assert stamps[1] - stamps[0] >= 0.5  # the host was paused by the 429, not retried at once


def test_spelling_generators_are_deterministic() -> None:
    a = spellings("127.0.0.2", random.Random(1))
    assert a == spellings("127.0.0.2", random.Random(1)) and len(set(a)) > 200
