"""Opt-out signals as tables, per spec: IETF AI preferences (Content-Usage field and robots.txt
rule, vocabulary hierarchy), Content-Signal, robots.txt groups for AI-training crawlers,
TDMRep (tdmrep.json matching, headers, meta, processing priority), X-Robots-Tag and robots meta,
and how they add up to one decision per purpose."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from webvid.crawl import extract, optout, polite
from webvid.crawl.optout import ALLOW, DENY, Signal, decide, record_columns
from webvid.crawl.optout_aipref import SFError, Token, parse_dictionary, usage_prefs
from webvid.crawl.optout_collect import page_signals, response_signals, robots_directive_signal
from webvid.crawl.optout_robots import parse_signals, pattern_matches, signal_prefs
from webvid.crawl.optout_tdm import TDM_FILE_MAX_BYTES, header_signal, parse_tdm_file

N = None  # says nothing about that purpose
ALL_DENY = (DENY, DENY, DENY)

# --------------------------------------------------------------------------------------------
# Content-Usage: RFC 9651 Dictionary + draft-ietf-aipref-vocab(-03) hierarchy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "prefs"),  # prefs: (train-ai, train-genai, search)
    [
        ("train-ai=n", (DENY, DENY, N)),  # train-genai ⊂ train-ai: inherits the n
        ("train-ai=y", (ALLOW, ALLOW, N)),
        ("train-genai=n", (N, DENY, N)),
        ("train-ai=n, train-genai=y", (DENY, ALLOW, N)),  # the more specific statement wins
        ("train-ai=y, train-genai=n", (ALLOW, DENY, N)),
        ("bots=n", ALL_DENY),  # bots ⊃ everything
        ("bots=n, search=y", (DENY, DENY, ALLOW)),
        ("bots=y, train-ai=n", (DENY, DENY, ALLOW)),
        ("search=n", (N, N, DENY)),
        ("ai-output=n", (N, N, DENY)),  # -04: search ⊂ ai-output
        ("ai-use=n", (N, N, N)),  # not one of our purposes
        ("train-ai=y, train-ai=n", (DENY, DENY, N)),  # RFC 9651: the last duplicate wins
        ("  train-ai=n  ", (DENY, DENY, N)),  # field value whitespace
        ("train-ai=n ,\tsearch=y", (DENY, DENY, ALLOW)),  # OWS around the comma
        ('train-ai=y;note="ok"', (ALLOW, ALLOW, N)),  # parameters are ignored
        ("train-ai;allow=n, train-ai=y", (ALLOW, ALLOW, N)),  # vocab §6.5's own example
        ("foo=n, train-ai=y", (ALLOW, ALLOW, N)),  # unknown labels ignored
        ("train-ai=y, foo=(a b)", (ALLOW, ALLOW, N)),  # an inner list elsewhere parses
        ("", (N, N, N)),
        # malformed, read conservatively (the draft says "unknown"; we deny the purpose)
        ("train-ai=no", (DENY, DENY, N)),
        ("train-ai=N", (DENY, DENY, N)),
        ('train-ai="n"', (DENY, DENY, N)),  # a String is not the Token n
        ("train-ai", (DENY, DENY, N)),  # a bare key is Boolean true
        ("train-ai=y, search=?1", (ALLOW, ALLOW, DENY)),
        ("train-ai=?0", (DENY, DENY, N)),
        # unparsable field: every purpose denied
        ("Train-AI=n", ALL_DENY),  # keys are lower case
        ("train-ai=n,", ALL_DENY),  # trailing comma
        ("train-ai=n;", ALL_DENY),  # a parameter without a key
        ("train-ai = n", ALL_DENY),  # no spaces around '='
        ("train-ai=ñ", ALL_DENY),  # not ASCII
        ('search=y, train-ai="n', ALL_DENY),  # unterminated string
        ("train-ai=y search=n", ALL_DENY),  # no comma
    ],
)
def test_content_usage_prefs(text: str, prefs: tuple) -> None:
    assert usage_prefs(text) == prefs


def test_structured_dictionary_values() -> None:
    got = parse_dictionary('a=y, b="x\\"y", c=12, d=-1.5, e, f=?0, g=:AQ==:, h=(1 2);p=1, i=*t/x')
    assert got == {
        "a": "y",
        "b": 'x"y',
        "c": 12,
        "d": -1.5,
        "e": True,
        "f": False,
        "g": ":AQ==:",
        "h": (),
        "i": "*t/x",
    }
    assert isinstance(got["a"], Token) and not isinstance(got["b"], Token)
    for bad in ("a=", "=y", "a=y,,b=n", "a=(1 2", "a=1.2345", "a=@x", 'a=%"x"'):
        with pytest.raises(SFError):
            parse_dictionary(bad)


# --------------------------------------------------------------------------------------------
# Content-Signal
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "prefs"),
    [
        ("ai-train=no, search=yes, ai-input=yes", (DENY, DENY, ALLOW)),
        ("ai-train=yes", (ALLOW, ALLOW, N)),
        ("search=no", (N, N, DENY)),
        ("ai-input=no", (N, N, N)),  # RAG input: not one of our purposes
        ("AI-Train = No ,Search=YES", (DENY, DENY, ALLOW)),  # case and spaces forgiven
        ("ai-train=yes, ai-train=no", (DENY, DENY, N)),  # contradiction: the denial holds
        ("ai-train=maybe", (DENY, DENY, N)),  # neither yes nor no: conservative
        ("ai-train", ALL_DENY),  # not key=value: unreadable
        ("", (N, N, N)),
    ],
)
def test_content_signal_prefs(text: str, prefs: tuple) -> None:
    assert signal_prefs(text) == prefs


# --------------------------------------------------------------------------------------------
# robots.txt: path patterns, Content-Usage / Content-Signal rules, AI-crawler groups
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "match"),
    [
        ("", "/anything", True),  # an absent path covers everything
        ("/", "/x", True),
        ("/fish", "/fish.html", True),  # a prefix
        ("/fish", "/Fish", False),  # case-sensitive
        ("/fish/", "/fish", False),
        ("/*.mp4", "/v/a.mp4", True),
        ("/*.mp4$", "/v/a.mp4?x=1", False),  # $ anchors the end
        ("/*.mp4$", "/v/a.mp4", True),
        ("/a*b*c", "/aXbYc", True),
        ("*.jpg", "/img/a.jpg", True),
        ("/%7Euser", "/~user/x", True),  # unreserved escapes normalised
        ("/~user", "/%7euser/x", True),
        ("/a%2fb", "/a%2Fb", True),  # reserved escapes: case only
        ("/a%2Fb", "/a/b", False),
        ("/q?x=1", "/q?x=1&y", True),
    ],
)
def test_pattern_matches(pattern: str, path: str, match: bool) -> None:
    assert pattern_matches(pattern, path) is match


ATTACH_EXAMPLE = """User-Agent: *
Allow: /
Disallow: /never/
Content-Usage: train-ai=n
Content-Usage: /ai-ok/ train-ai=y

User-Agent: ExampleBot
Allow: /
Content-Usage: train-ai=y
"""


def _usage(text: str, path: str, token: str = "webvid") -> list[tuple[str, str, tuple]]:
    return [
        (s.source, s.value, s.prefs)
        for s in parse_signals(text, token).usage_signals(path, "media")
    ]


@pytest.mark.parametrize(
    ("text", "token", "path", "expected"),
    [
        # draft-ietf-aipref-attach §3.5's example: the longest matching path wins
        (
            ATTACH_EXAMPLE,
            "webvid",
            "/test",
            [("content-usage", "content-usage: train-ai=n", (DENY, DENY, N))],
        ),
        (
            ATTACH_EXAMPLE,
            "webvid",
            "/ai-ok/test",
            [("content-usage", "content-usage: /ai-ok/ train-ai=y", (ALLOW, ALLOW, N))],
        ),
        (
            ATTACH_EXAMPLE,
            "examplebot",
            "/test",
            [("content-usage", "content-usage: train-ai=y", (ALLOW, ALLOW, N))],
        ),
        # rules with the same path all apply (and add up to the most restrictive)
        (
            "User-agent: *\nContent-Usage: /v/ train-ai=y\nContent-Usage: /v/ train-ai=n\n",
            "webvid",
            "/v/1.mp4",
            [
                ("content-usage", "content-usage: /v/ train-ai=y", (ALLOW, ALLOW, N)),
                ("content-usage", "content-usage: /v/ train-ai=n", (DENY, DENY, N)),
            ],
        ),
        # wildcards, tabs between path and preference, comments, field-name case
        (
            "user-AGENT: *  # everyone\nCONTENT-usage:/*.mp4$\ttrain-genai=n # no genai\n",
            "webvid",
            "/v/1.mp4",
            [("content-usage", "content-usage: /*.mp4$\ttrain-genai=n", (N, DENY, N))],
        ),
        ("User-agent: *\nContent-Usage: /*.mp4$ train-ai=n\n", "webvid", "/v/1.mp4?x", []),
        # a group for our token is the only one that applies to us
        (
            "User-agent: webvid\nContent-Usage: train-ai=y\n\nUser-agent: *\nContent-Usage: train-ai=n\n",
            "webvid",
            "/x",
            [("content-usage", "content-usage: train-ai=y", (ALLOW, ALLOW, N))],
        ),
        # Content-Signal: group-scoped, optional path, longest match
        (
            "User-Agent: *\nContent-Signal: ai-train=no, search=yes\nContent-Signal: /free/ ai-train=yes\nAllow: /\n",
            "webvid",
            "/free/a",
            [("content-signal", "content-signal: /free/ ai-train=yes", (ALLOW, ALLOW, N))],
        ),
        (
            "User-Agent: *\nContent-Signal: ai-train=no, search=yes\nContent-Signal: /free/ ai-train=yes\n",
            "webvid",
            "/paid/a",
            [("content-signal", "content-signal: ai-train=no, search=yes", (DENY, DENY, ALLOW))],
        ),
        # Content-Signal / Content-Usage in a group for an AI-training crawler: training only
        (
            "User-agent: ClaudeBot\nContent-Signal: ai-train=no, search=no\n\nUser-agent: *\nAllow: /\n",
            "webvid",
            "/a",
            [
                (
                    "content-signal",
                    "ClaudeBot: content-signal: ai-train=no, search=no",
                    (DENY, DENY, N),
                )
            ],
        ),
        # a group for another (non-AI) agent is not ours
        ("User-agent: otherbot\nContent-Usage: train-ai=n\n", "webvid", "/a", []),
        # lines before any user-agent belong to no group
        ("Content-Usage: train-ai=n\nUser-agent: *\nAllow: /\n", "webvid", "/a", []),
    ],
)
def test_robots_usage_rules(text: str, token: str, path: str, expected: list) -> None:
    assert _usage(text, path, token) == expected


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        (
            "User-agent: GPTBot\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
            "/x",
            "GPTBot: Disallow: /",
        ),
        (
            "User-agent: CCBot\nUser-agent: Google-Extended\nDisallow: /v/\n",
            "/v/1",
            "CCBot: Disallow: /v/",
        ),
        ("User-agent: Google-Extended\nDisallow: /v/\n", "/w/1", None),
        (
            "User-agent: ccbot/2.0\nDisallow: /\n",
            "/x",
            "ccbot/2.0: Disallow: /",
        ),  # token of the line
        ("User-agent: CCBot\nDisallow: /\nAllow: /free/\n", "/free/a", None),  # longest match
        ("User-agent: CCBot\nDisallow: /a\nAllow: /a\n", "/a", None),  # Allow wins a tie
        ("User-agent: CCBot\nDisallow:\n", "/a", None),  # an empty Disallow allows
        ("User-agent: CCBot\nDisallow: /*.mp4$\n", "/v/a.mp4", "CCBot: Disallow: /*.mp4$"),
        # a group that also names * is the everyone group (protego's job), not an AI group
        ("User-agent: GPTBot\nUser-agent: *\nDisallow: /p/\n", "/x", None),
        # the site wrote a group for us by name: its word to us stands
        ("User-agent: GPTBot\nDisallow: /\n\nUser-agent: webvid\nAllow: /\n", "/x", None),
        ("User-agent: SomeBot\nDisallow: /\n", "/x", None),  # not an AI-training crawler
    ],
)
def test_ai_training_groups(text: str, path: str, value: str | None) -> None:
    signal = parse_signals(text, "webvid").ai_denial(path, "media")
    assert (signal.value if signal else None) == value
    if signal:
        assert signal.source == "robots" and signal.prefs == (DENY, DENY, N)


def test_robots_rules_carry_the_signals_and_protego_still_decides_access() -> None:
    rules = polite.parse_robots(
        "User-agent: *\nDisallow: /p/\nContent-Usage: train-ai=n\n", "webvid"
    )
    assert not rules.allowed("/p/x") and rules.allowed("/v/x")
    assert (
        rules.signals is not None
        and rules.signals.usage_signals("/v/x", "page")[0].prefs[0] == DENY
    )


# --------------------------------------------------------------------------------------------
# TDMRep
# --------------------------------------------------------------------------------------------

SPEC_FILE = b"""[
  {"location": "/directory-a/", "tdm-reservation": 1},
  {"location": "/directory-b/html/", "tdm-reservation": 1,
   "tdm-policy": "https://provider.com/policies/policy.json"},
  {"location": "/directory-b/images/*.jpg", "tdm-reservation": 0}
]"""


@pytest.mark.parametrize(
    ("body", "path", "pref", "in_value"),
    [
        (SPEC_FILE, "/directory-a/x.pdf", DENY, '"tdm-reservation": "1"'),
        (SPEC_FILE, "/directory-b/html/p.html", DENY, "policies/policy.json"),
        (SPEC_FILE, "/directory-b/images/a.jpg", ALLOW, "*.jpg"),
        (SPEC_FILE, "/directory-b/images/a.png", None, None),  # no rule matches: unset
        (SPEC_FILE, "/Directory-a/x", None, None),  # case-sensitive
        # the first matching rule in the array is used, not the longest
        (
            b'[{"location": "/a/", "tdm-reservation": 0}, {"location": "/a/b/", "tdm-reservation": 1}]',
            "/a/b/c",
            ALLOW,
            "/a/",
        ),
        (b'[{"location": "/*.mp4$", "tdm-reservation": 1}]', "/v/1.mp4", DENY, "*.mp4"),
        (b'[{"location": "/*.mp4$", "tdm-reservation": 1}]', "/v/1.mp4?x", None, None),
        (b'[{"location": "/", "tdm-reservation": "0"}]', "/x", ALLOW, "/"),  # "0" as a string
        (b'\xef\xbb\xbf [{"location": "/", "tdm-reservation": 1}]', "/x", DENY, "/"),  # BOM, space
        # malformed rules and files: conservative
        (b'[{"location": "/", "tdm-reservation": "yes"}]', "/x", DENY, "yes"),
        (b'[{"location": "/", "tdm-reservation": 2}]', "/x", DENY, "2"),
        (b'[{"location": "/"}]', "/x", DENY, "null"),  # reservation missing
        (
            b'[{"tdm-reservation": 1}, 7, {"location": "/v/", "tdm-reservation": 0}]',
            "/v/1",
            ALLOW,
            "/v/",
        ),
        (b'[{"location": "/", "tdm-reservation": 1}', "/x", DENY, "malformed: not valid JSON"),
        (b'{"location": "/", "tdm-reservation": 1}', "/x", DENY, "malformed: not a JSON array"),
        (b"[" + b" " * TDM_FILE_MAX_BYTES + b"]", "/x", DENY, "malformed: over"),
    ],
)
def test_tdmrep_file(body: bytes, path: str, pref: str | None, in_value: str | None) -> None:
    tdm = parse_tdm_file(body)
    assert tdm is not None
    signal = tdm.signal(path, "media")
    if pref is None:
        assert signal is None
        return
    assert signal is not None and signal.source == "tdmrep-file"
    assert signal.prefs == (pref, pref, pref) and in_value in signal.value


@pytest.mark.parametrize(
    "body", [b"", b"   ", b"<!doctype html><title>Not found</title>", b"Not found"]
)
def test_tdmrep_body_that_is_no_json_is_no_file(body: bytes) -> None:
    assert parse_tdm_file(body) is None


@pytest.mark.parametrize(
    ("reservations", "policies", "pref", "value"),
    [
        (["1"], [], DENY, "tdm-reservation: 1"),
        (["0"], [], ALLOW, "tdm-reservation: 0"),
        (
            [" 1 "],
            ["https://p.example/policy.json"],
            DENY,
            "tdm-reservation: 1; tdm-policy: https://p.example/policy.json",
        ),
        (["0", "1"], [], DENY, "tdm-reservation: 0; tdm-reservation: 1"),  # two header lines
        (["0", "0"], [], ALLOW, "tdm-reservation: 0; tdm-reservation: 0"),
        (["yes"], [], DENY, "tdm-reservation: yes"),  # malformed: reserved
        ([""], [], DENY, "tdm-reservation: "),
        (
            [],
            ["https://p.example/x"],
            None,
            "tdm-policy: https://p.example/x",
        ),  # policy alone: unset
    ],
)
def test_tdmrep_header(reservations: list, policies: list, pref: str | None, value: str) -> None:
    signal = header_signal(reservations, policies, "media")
    assert signal is not None and signal.value == value and signal.prefs == (pref, pref, pref)
    assert header_signal([], [], "media") is None


# --------------------------------------------------------------------------------------------
# X-Robots-Tag, meta tags, a response's headers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "prefs"),
    [
        (["noai"], (DENY, DENY, N)),  # training only: a search index is allowed
        (["noimageai"], (DENY, DENY, N)),
        (["noindex"], ALL_DENY),
        (["none"], ALL_DENY),
        (["index, follow"], (N, N, N)),
        (["otherbot: noindex"], (N, N, N)),  # scoped to another agent
        (["WebVid: NoAI"], (DENY, DENY, N)),  # scoped to us, any case
        (["otherbot: noai", "webvid: noindex"], ALL_DENY),
    ],
)
def test_robots_directive_signal(values: list[str], prefs: tuple) -> None:
    signal = robots_directive_signal("x-robots-tag", values, "webvid", "media")
    assert signal is not None and signal.prefs == prefs


URL = "https://stock.example/clip/1"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            '<meta name="tdm-reservation" content="1"><meta name="tdm-policy" content="https://p/x">',
            [("tdmrep-meta", "tdm-reservation: 1; tdm-policy: https://p/x", ALL_DENY)],
        ),
        (
            '<META NAME="TDM-Reservation" CONTENT="0">',
            [("tdmrep-meta", "tdm-reservation: 0", (ALLOW, ALLOW, ALLOW))],
        ),
        (
            '<meta name="robots" content="noai, noimageai">',
            [("robots-meta", "noai, noimageai", (DENY, DENY, N))],
        ),
        ('<meta name="WebVid" content="noindex">', [("robots-meta", "noindex", ALL_DENY)]),
        ('<meta name="otherbot" content="noindex">', []),
        ('<meta property="tdm-reservation" content="1">', []),  # name=, not property=
        ("", []),
    ],
)
def test_page_signals(head: str, expected: list) -> None:
    doc = extract.parse_html(f"<html><head>{head}</head><body></body></html>", URL)
    got = [(s.source, s.value, s.prefs) for s in page_signals(doc, token="webvid")]
    assert got == expected
    assert all(s.on == "page" for s in page_signals(doc, token="webvid"))


def test_response_signals_read_every_header_form() -> None:
    rules = polite.parse_robots(
        "User-agent: *\nContent-Signal: /v/ ai-train=yes\nContent-Usage: /v/ search=n\n", "webvid"
    )
    tdm = parse_tdm_file(b'[{"location": "/v/", "tdm-reservation": 1}]')
    rules = type(rules)(**{**rules.__dict__, "tdm": tdm})
    headers = CIMultiDict(
        [
            ("content-usage", "train-ai=y"),
            ("Content-Usage", "train-ai=n"),  # two field lines: combined, the last key wins
            ("TDM-Reservation", "0"),
            ("tdm-policy", "https://p/x"),
            ("x-robots-tag", "otherbot: noai"),
        ]
    )
    got = [
        (s.source, s.value, s.prefs)
        for s in response_signals(headers, rules, "/v/1.mp4", "media", token="webvid")
    ]
    assert got == [
        ("content-usage", "content-usage: /v/ search=n", (N, N, DENY)),
        ("content-signal", "content-signal: /v/ ai-train=yes", (ALLOW, ALLOW, N)),
        ("content-usage", "train-ai=y, train-ai=n", (DENY, DENY, N)),
        ("tdmrep-file", '{"location": "/v/", "tdm-reservation": "1"}', ALL_DENY),
        ("tdmrep-header", "tdm-reservation: 0; tdm-policy: https://p/x", (ALLOW, ALLOW, ALLOW)),
        ("x-robots-tag", "otherbot: noai", (N, N, N)),
    ]
    off = response_signals(
        CIMultiDict([("X-Robots-Tag", "noai")]),
        polite.ALLOW_ALL,
        "/",
        "media",
        token="webvid",
        x_robots_tag=False,
    )
    assert off == []


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


def sig(source: str, pref: str | None, on: str = "media", value: str = "") -> Signal:
    return Signal(source, on, value or f"{source}={pref}", (pref, pref, pref))


@pytest.mark.parametrize(
    ("signals", "deny", "decider"),
    [
        ([], False, None),
        ([sig("x-robots-tag", None)], False, None),
        # TDMRep priority per response: file < header < meta, later supersedes
        ([sig("tdmrep-file", DENY), sig("tdmrep-header", ALLOW)], False, "tdmrep-header"),
        (
            [sig("tdmrep-header", ALLOW), sig("tdmrep-file", DENY)],
            False,
            "tdmrep-header",
        ),  # list order
        ([sig("tdmrep-file", ALLOW), sig("tdmrep-header", DENY)], True, "tdmrep-header"),
        (
            [sig("tdmrep-header", DENY, "page"), sig("tdmrep-meta", ALLOW, "page")],
            False,
            "tdmrep-meta",
        ),
        (
            [sig("tdmrep-file", DENY), sig("tdmrep-header", None)],
            True,
            "tdmrep-file",
        ),  # absent: no reset
        # ... but the page and the media are read separately: either denies
        (
            [sig("tdmrep-meta", ALLOW, "page"), sig("tdmrep-file", DENY, "media")],
            True,
            "tdmrep-file",
        ),
        # Content-Usage statements: the most restrictive wins, robots rule or header
        (
            [sig("content-usage", ALLOW), sig("content-usage", DENY, value="hdr")],
            True,
            "content-usage",
        ),
        # families in order: the first denial decides
        ([sig("x-robots-tag", DENY), sig("content-usage", DENY)], True, "content-usage"),
        ([sig("content-signal", DENY), sig("robots", DENY)], True, "robots"),
        ([sig("content-usage", ALLOW), sig("content-signal", DENY)], True, "content-signal"),
        ([sig("robots-meta", DENY), sig("tdmrep-header", ALLOW)], True, "robots-meta"),
        # no denial: the first explicit allow is recorded
        ([sig("tdmrep-header", ALLOW), sig("content-signal", ALLOW)], False, "content-signal"),
    ],
)
def test_decide(signals: list[Signal], deny: bool, decider: str | None) -> None:
    decision = decide(signals, "train-ai")
    assert decision.deny is deny
    assert (decision.signal.source if decision.signal else None) == decider


def test_decision_reasons_and_record_columns() -> None:
    assert decide([sig("robots", DENY)], "train-ai").reason == "robots_disallowed"
    assert decide([sig("x-robots-tag", DENY)], "train-ai").reason == "x_robots_tag"
    assert decide([sig("robots-meta", DENY)], "train-ai").reason == "x_robots_tag"
    for source in (
        "content-usage",
        "content-signal",
        "tdmrep-file",
        "tdmrep-header",
        "tdmrep-meta",
    ):
        assert decide([sig(source, DENY)], "search").reason == "opt_out"
    noai = Signal("x-robots-tag", "media", "noai", (DENY, DENY, None))
    assert decide([noai], "train-genai").deny and not decide([noai], "search").deny
    cols = record_columns([noai], "train-ai")
    assert cols == {
        "optout_source": "x-robots-tag",
        "optout_value": "noai",
        "optout_signals": [
            {
                "source": "x-robots-tag",
                "on": "media",
                "value": "noai",
                "train_ai": "deny",
                "train_genai": "deny",
                "search": None,
                "superseded": False,
            }
        ],
    }
    assert record_columns([], "search") == {
        "optout_source": None,
        "optout_value": None,
        "optout_signals": None,
    }
    with pytest.raises(ValueError, match="unknown purpose"):
        decide([], "train")
    with pytest.raises(ValueError, match="unknown opt-out source"):
        Signal("takedown?", "media", "", (None, None, None))
    assert optout.clip("x" * 600).endswith("…") and len(optout.clip("x" * 600)) == 500
