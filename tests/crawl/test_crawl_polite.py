"""The pure politeness rules as tables: robots.txt, X-Robots-Tag, Retry-After, backoff,
token bucket, forbidden addresses, reason → status."""

from __future__ import annotations

import random

import pytest

from webvid import contract
from webvid.crawl import polite
from webvid.crawl.media import content_type_class, route_for_url, sniff

ROBOTS = """
# comment
User-agent: *
Disallow: /private/
Allow: /private/open/
Disallow: /*.php$
Crawl-delay: 2

User-agent: WebVid
User-agent: otherbot
Disallow: /no-webvid/
Allow: /no-webvid/yes
Crawl-delay: 0.5

User-agent: badbot
Disallow: /
"""


@pytest.mark.parametrize(
    ("token", "path", "allowed"),
    [
        ("somebot", "/private/x", False),
        ("somebot", "/private/open/x", True),  # longer Allow wins
        ("somebot", "/index.php", False),
        ("somebot", "/index.php?x=1", True),  # $ anchors the end
        ("somebot", "/public", True),
        ("webvid", "/private/x", True),  # our own group replaces *
        ("webvid", "/no-webvid/a", False),
        ("webvid", "/no-webvid/yes", True),
        ("badbot", "/anything", False),
        ("badbot", "/robots.txt", True),
    ],
)
def test_robots_rules(token: str, path: str, allowed: bool) -> None:
    assert polite.parse_robots(ROBOTS, token).allowed(path) is allowed


def test_robots_crawl_delay_and_status() -> None:
    assert polite.parse_robots(ROBOTS, "webvid").crawl_delay_s == 0.5
    assert polite.parse_robots(ROBOTS, "x").crawl_delay_s == 2
    assert polite.robots_for_status(404, "", "webvid").allowed("/a")
    assert not polite.robots_for_status(503, "", "webvid").allowed("/a")
    assert polite.parse_robots("", "webvid").allowed("/a")
    assert polite.parse_robots("User-agent: *\nDisallow:\n", "webvid").allowed("/a")
    tie = "User-agent: *\nDisallow: /a\nAllow: /a\n"
    assert polite.parse_robots(tie, "webvid").allowed("/a/b")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["noai"], "noai"),
        (["noindex, nofollow"], "noindex"),
        (["NoImageAI"], "noimageai"),
        (["webvid: noai"], "noai"),
        (["otherbot: noai"], None),
        (["otherbot: noai", "webvid: noindex"], "noindex"),
        (["nofollow", "noarchive"], None),
        (["unavailable_after: 25 Jun 2010 15:00:00 PST"], None),
        (["max-snippet: 20, noai"], "noai"),
        ([], None),
    ],
)
def test_x_robots_tag(values: list[str], expected: str | None) -> None:
    assert polite.x_robots_opt_out(values, "webvid") == expected


def test_retry_after_and_backoff() -> None:
    assert polite.parse_retry_after("7") == 7.0
    assert polite.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert polite.parse_retry_after("soon") is None
    rng = random.Random(0)
    delays = [polite.backoff_delay(a, base_s=1.0, max_s=30.0, rng=rng) for a in range(1, 8)]
    assert all(
        0.5 * min(30, 2 ** (a - 1)) <= d <= 30 for a, d in zip(range(1, 8), delays, strict=True)
    )
    assert delays[3] > delays[0]
    assert polite.backoff_delay(1, base_s=0.1, max_s=30.0, retry_after_s=12.0, rng=rng) == 12.0


def test_token_bucket_spaces_requests() -> None:
    bucket = polite.TokenBucket(rate_per_s=2.0, burst=2)
    waits = [bucket.reserve(100.0) for _ in range(5)]
    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5]
    assert bucket.reserve(110.0) == 0.0  # refilled after idling


@pytest.mark.parametrize(
    ("addr", "forbidden"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("192.168.0.1", True),
        ("169.254.169.254", True),
        ("::1", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("93.184.216.34", False),
        ("2606:4700::1111", False),
    ],
)
def test_forbidden_addresses(addr: str, forbidden: bool) -> None:
    assert polite.is_forbidden_address(addr) is forbidden


def test_allowlist_and_statuses() -> None:
    assert not polite.is_forbidden_address("10.0.0.5", ("10.0.0.0/24",))
    assert polite.is_forbidden_address("10.0.1.5", ("10.0.0.0/24",))
    assert polite.status_of(None) == "success"
    assert polite.status_of("robots_disallowed") == "skipped_robots"
    assert polite.status_of("x_robots_tag") == "skipped_opt_out"
    assert polite.status_of("private_address") == "skipped_policy"
    assert polite.status_of("timeout") == "failed_to_download"
    assert all(polite.status_of(r) in contract.STATUSES for r in contract.CRAWL_REASONS)
    assert [polite.reason_of_http(s) for s in (200, 404, 410, 403, 429, 503)] == [
        None,
        "http_404",
        "http_404",
        "http_4xx",
        "http_429",
        "http_5xx",
    ]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 8, ("video", "mp4")),
        (b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 8, ("video", "mov")),
        (b"\x1aE\xdf\xa3" + b"\x00" * 12, ("video", "webm")),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 12, ("image", "jpg")),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, ("image", "png")),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", ("image", "webp")),
        (b"<!doctype html><html>", None),
        (b"G" + b"x" * 300, None),
        ((b"\x47" + b"\x00" * 187) * 2, ("video", "ts")),
    ],
)
def test_sniff(head: bytes, expected: tuple[str, str] | None) -> None:
    assert sniff(head) == expected


def test_content_type_and_routes() -> None:
    assert content_type_class("video/mp4; codecs=avc1") == "media"
    assert content_type_class("application/octet-stream") == "binary"
    assert content_type_class("application/vnd.apple.mpegurl") == "manifest"
    assert content_type_class("text/html; charset=utf-8") == "html"
    assert content_type_class(None) == "missing"
    assert route_for_url("https://x/a/b.m3u8", "auto") == "yt-dlp"
    assert route_for_url("https://x/a/b.mp4", "auto") == "direct"
    assert route_for_url("https://x/a/b.mp4", "yt-dlp") == "yt-dlp"
