"""robots.txt beyond Allow/Disallow for our token: usage rules and AI-crawler groups (pure).

Takes a robots.txt body and our product token; produces :class:`RobotsSignals` (frozen, so the
Ray limiter can ship it with the rules), which answers per path:

* :meth:`RobotsSignals.usage_signals` — the ``Content-Usage`` rules (draft-ietf-aipref-attach
  §3: a rule per group, an optional path, matched like Allow/Disallow, the longest match wins,
  rules with the same path all apply) and ``Content-Signal`` lines (``ai-train``, ``ai-input``,
  ``search`` = ``yes``/``no``; read the same way, path optional) of the groups that apply to us:
  the groups naming our token, else the ``*`` groups (RFC 9309 §2.2.1);
* :meth:`RobotsSignals.ai_denial` — a Disallow in a group naming a known AI-training crawler
  (:data:`AI_TRAINING_AGENTS`). An honest crawler of training data applies those groups to
  itself for the training purposes — unless the site wrote a group for our own token, which
  then is its word to us (docs/ethics.md). The usage rules of those groups count the same way.

Group parsing follows RFC 9309 §2.2: consecutive ``user-agent`` lines open a group, the rules
after them belong to it, groups naming the same agent merge; ``#`` starts a comment. Path
patterns (:func:`pattern_matches`) are RFC 9309's: ``*`` any run of characters, ``$`` at the
end anchors, the match is on the path and query with percent-encoding of unreserved characters
normalised, case-sensitive; a pattern's length is its number of bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import re

from webvid.contract import PURPOSES
from webvid.crawl.optout import ALLOW, DENY, Signal, clip, same_for_all
from webvid.crawl.optout_aipref import usage_prefs

#: Product tokens of crawlers that collect training data for AI models (lower case). A group
#: naming one of them is read as written for us too when we crawl for training.
AI_TRAINING_AGENTS: frozenset[str] = frozenset(
    {
        "gptbot",  # OpenAI
        "ccbot",  # Common Crawl (the source of most open training sets)
        "google-extended",  # Google: Gemini / Vertex training
        "claudebot",  # Anthropic
        "anthropic-ai",  # Anthropic (older token)
        "claude-web",  # Anthropic (older token)
        "bytespider",  # ByteDance
        "perplexitybot",  # Perplexity
        "applebot-extended",  # Apple: foundation-model training
        "meta-externalagent",  # Meta: AI training
        "facebookbot",  # Meta: speech / language model training
        "cohere-ai",  # Cohere
        "cohere-training-data-crawler",  # Cohere
        "diffbot",  # Diffbot: knowledge graph and LLM data
        "amazonbot",  # Amazon
        "ai2bot",  # Allen Institute for AI
        "ai2bot-dolma",  # Allen Institute for AI: Dolma training corpus
        "img2dataset",  # the dataset downloader webvid's image side resembles
        "timpibot",  # Timpi
        "imagesiftbot",  # ImageSift / Hive
        "omgili",  # Webz.io
        "omgilibot",  # Webz.io
        "webzio-extended",  # Webz.io: AI training
        "youbot",  # You.com
        "pangubot",  # Huawei PanGu
        "kangaroo bot",  # Kangaroo LLM
    }
)

_TRAIN = tuple(p for p in PURPOSES if p != "search")
_AGENT = re.compile(r"[a-z0-9_\-]+(?: bot)?|\*")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


@functools.lru_cache(maxsize=1024)
def normalise_path(path: str) -> str:
    """Percent-encoded unreserved characters decoded, other escapes upper-cased (memoised: a
    response's path is compared with every rule of its host)."""
    if "%" not in path:
        return path

    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    return _PCT.sub(fix, path)


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    anchored = pattern.endswith("$")
    body = normalise_path(pattern[:-1] if anchored else pattern)
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(regex + (r"\Z" if anchored else ""), re.DOTALL)


def pattern_matches(pattern: str, path: str) -> bool:
    """Whether an RFC 9309 path pattern matches ``path`` (path + query, as requested)."""
    if not pattern:
        return True
    return _compiled(pattern).match(normalise_path(path)) is not None


def pattern_length(pattern: str) -> int:
    return len(pattern.encode("utf-8", "replace"))


def agent_token(value: str) -> str | None:
    """The product token of a ``user-agent`` line (lower case), ``*``, or None."""
    m = _AGENT.match(value.strip().lower())
    return m.group(0) if m else None


def split_rule(value: str) -> tuple[str, str]:
    """``"/path train-ai=n"`` → ``("/path", "train-ai=n")``; no path → ``("", value)``
    (draft-ietf-aipref-attach §3.2: a value starting with ``/`` starts with a path, which ends
    at the first space or tab)."""
    value = value.strip(" \t")
    if value.startswith("/"):
        path, _, rest = _split_ws(value)
        return path, rest.strip(" \t")
    return "", value


def _split_ws(value: str) -> tuple[str, str, str]:
    m = re.search(r"[ \t]", value)
    if not m:
        return value, "", ""
    return value[: m.start()], m.group(0), value[m.end() :]


@functools.lru_cache(maxsize=256)  # the same few rule values, response after response
def signal_prefs(text: str) -> tuple[str | None, str | None, str | None]:
    """A ``Content-Signal`` value (``ai-train=no, search=yes``) per purpose: ``ai-train`` speaks
    for both training purposes, ``search`` for search, ``ai-input`` for none of ours. A value
    other than yes/no for a key of ours, or an entry that is not ``key=value``, denies
    (conservative: docs/ethics.md)."""
    prefs: dict[str, str | None] = dict.fromkeys(PURPOSES)
    for entry in text.split(","):
        entry = entry.strip(" \t")
        if not entry:
            continue
        key, eq, value = (s.strip(" \t").lower() for s in entry.partition("="))
        if not eq or not key:
            return same_for_all(DENY)
        purposes = _TRAIN if key == "ai-train" else ("search",) if key == "search" else ()
        pref = ALLOW if value == "yes" else DENY  # "no" and anything unreadable
        for p in purposes:
            prefs[p] = DENY if DENY in (prefs[p], pref) else pref
    return (prefs[PURPOSES[0]], prefs[PURPOSES[1]], prefs[PURPOSES[2]])


@dataclasses.dataclass(frozen=True)
class Group:
    agents: tuple[str, ...]  # product tokens as written (for the record)
    rules: tuple[tuple[str, str], ...]  # (field lower case, value)


def parse_groups(text: str) -> list[Group]:
    """The groups of a robots.txt body, in file order (RFC 9309 §2.2)."""
    groups: list[Group] = []
    agents: list[str] = []
    rules: list[tuple[str, str]] = []
    for raw in text.removeprefix("\ufeff").splitlines()[:100_000]:
        line = raw.split("#", 1)[0]
        field, colon, value = line.partition(":")
        if not colon:
            continue
        field, value = field.strip(" \t").lower(), value.strip(" \t")
        if field in ("user-agent", "useragent", "user agent"):
            if rules:
                groups.append(Group(tuple(agents), tuple(rules)))
                agents, rules = [], []
            agents.append(value)
        elif agents and field != "sitemap":
            rules.append((field, value))
    if agents:
        groups.append(Group(tuple(agents), tuple(rules)))
    return groups


#: a rule as the signals read it: (field, path pattern, preference, value as written); the
#: path and preference of a usage rule are split once, when the file is parsed
Rule = tuple[str, str, str, str]
_KEPT = ("allow", "disallow", "content-usage", "content-signal")


def _rules(rules: list[tuple[str, str]]) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for field, value in rules:
        if field in ("allow", "disallow"):
            out.append((field, value, "", value))
        elif field in _KEPT:
            path, pref = split_rule(value)
            out.append((field, path, pref, value))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class RobotsSignals:
    """The opt-out side of one robots.txt, for one token."""

    own: tuple[Rule, ...] = ()  # rules of our token's groups (else the * groups)
    own_named: bool = False  # a group names our token
    ai: tuple[tuple[str, tuple[Rule, ...]], ...] = ()  # (agent as written, rules) per AI group

    def usage_signals(self, path: str, on: str) -> list[Signal]:
        """``content-usage`` and ``content-signal`` signals that apply to ``path``."""
        out = _usage(self.own, path, on, None)
        if not self.own_named:
            for agent, rules in self.ai:
                out += _usage(rules, path, on, agent)
        return out

    def ai_denial(self, path: str, on: str) -> Signal | None:
        """A Disallow of ``path`` in a group naming an AI-training crawler (None when we have a
        group of our own, or none of those groups disallows it)."""
        if self.own_named:
            return None
        for agent, rules in self.ai:
            verdict = _access(rules, path)
            if verdict is not None and verdict[0] == "disallow":
                value = f"{agent}: Disallow: {verdict[1]}"
                return Signal("robots", on, clip(value), (DENY, DENY, None))
        return None


def _access(rules: tuple[Rule, ...], path: str) -> tuple[str, str] | None:
    """The Allow/Disallow rule that governs ``path`` (longest match, Allow wins ties)."""
    best: tuple[int, int, str, str] | None = None
    for field, pattern, _pref, _value in rules:
        if field not in ("allow", "disallow") or not pattern or not pattern_matches(pattern, path):
            continue
        key = (pattern_length(pattern), 1 if field == "allow" else 0, field, pattern)
        if best is None or key[:2] > best[:2]:
            best = key
    return (best[2], best[3]) if best else None


def _usage(rules: tuple[Rule, ...], path: str, on: str, agent: str | None) -> list[Signal]:
    out: list[Signal] = []
    for field, source, read in (
        ("content-usage", "content-usage", usage_prefs),
        ("content-signal", "content-signal", signal_prefs),
    ):
        matched: list[tuple[int, str, str]] = []
        for f, rpath, pref, value in rules:
            if f == field and pattern_matches(rpath, path):
                matched.append((pattern_length(rpath), value, pref))
        if not matched:
            continue
        longest = max(m[0] for m in matched)
        for _length, value, pref in (m for m in matched if m[0] == longest):
            prefs = read(pref)
            raw = f"{field}: {value}"
            if agent is not None:  # a group written for an AI crawler: training purposes only
                raw = f"{agent}: {raw}"
                prefs = (prefs[0], prefs[1], None)
            out.append(Signal(source, on, clip(raw), prefs))
    return out


def parse_signals(text: str, token: str) -> RobotsSignals:
    """The :class:`RobotsSignals` of a robots.txt body for our ``token``."""
    token = token.strip().lower()
    own: list[tuple[str, str]] = []
    star: list[tuple[str, str]] = []
    own_named = False
    ai: dict[str, list[tuple[str, str]]] = {}
    names: dict[str, str] = {}
    for group in parse_groups(text):
        tokens = [agent_token(a) for a in group.agents]
        if token in tokens:
            own_named = True
            own.extend(group.rules)
        if "*" in tokens:
            star.extend(group.rules)
        for agent, tok in zip(group.agents, tokens, strict=True):
            if tok in AI_TRAINING_AGENTS and "*" not in tokens and token not in tokens:
                ai.setdefault(tok, []).extend(group.rules)
                names.setdefault(tok, agent.strip())
    return RobotsSignals(
        own=_rules(own if own_named else star),
        own_named=own_named,
        ai=tuple((names[t], _rules(rules)) for t, rules in sorted(ai.items())),
    )
