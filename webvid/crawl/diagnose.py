"""Why a crawl could attempt nothing: one line naming the policy, the URL and the option.

Takes a :class:`~webvid.crawl.recipe.CrawlRecipe` and what a run saw; produces the
explanations the driver (:mod:`webvid.crawl.run`) logs or raises and the CLI prints:

* :func:`refused_starts` — the start URLs (or a table URL) the crawl's own egress policy
  refuses before any request (a loopback start URL without ``--allow-private``...), checked
  before any folder is created;
* :class:`PageWatch` — a :class:`~webvid.crawl.fetch.Fetcher` that keeps why the first pages
  failed, so a discovery that yields no item can say what happened to its start pages;
* :func:`nothing_found` — a discovery that yielded no item: its start pages' failures, or
  how many pages were read without finding a clip page;
* :func:`all_refused` — a run whose every item the crawl's own policy refused (status
  ``skipped_policy``: nothing was requested);
* :data:`POLICY_HINTS` — the option or recipe key that changes each policy refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webvid import contract
from webvid.crawl.egress import EgressPolicy
from webvid.crawl.fetch import Fetcher
from webvid.crawl.items import Outcome
from webvid.crawl.recipe import CrawlRecipe

#: reason → what would allow it (only the crawl's own policies: robots.txt and opt-outs are
#: the site's answer, and no option overrides them)
POLICY_HINTS: Mapping[str, str] = {
    "private_address": "--allow-private allows loopback/private/link-local addresses "
    "(or name the network in polite.private_allowlist)",
    "off_host": "name the host in discover.allowed_hosts",
    "invalid_url": "only http(s) URLs with a valid host are crawled",
}


def explain(reason: str | None, message: str | None) -> str:
    """``reason: message``, with the option that would allow a policy refusal."""
    message = (message or "").replace(" (use --allow-private)", "")  # the hint says more
    text = f"{reason}: {message}" if message else str(reason)
    hint = POLICY_HINTS.get(reason or "")
    return f"{text}; {hint}" if hint else text


def refused_starts(cfg: CrawlRecipe, urls: Iterable[str]) -> dict[str, str]:
    """``{url: why}`` for each URL the crawl's egress policy refuses without a request (bad
    scheme or host, a private or loopback address in any spelling). Names that resolve to
    such an address are only known once resolved: :class:`PageWatch` sees those."""
    policy = EgressPolicy.from_config(cfg.polite)
    refused = {}
    for url in urls:
        verdict = policy.check(url)
        if verdict.reason is not None:
            refused[url] = explain(verdict.reason, verdict.message)
    return refused


class PageWatch(Fetcher):
    """A Fetcher that counts pages and keeps the outcome of the first failed ones."""

    keep = 16

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages = 0
        self.failed_pages: dict[str, Outcome] = {}

    async def get_page(
        self, url: str, hosts: frozenset[str] | None = None
    ) -> tuple[Outcome, str | None, str]:
        out, text, final = await super().get_page(url, hosts)
        self.pages += 1
        if text is None and len(self.failed_pages) < self.keep:
            self.failed_pages[url] = out
        return out, text, final


def nothing_found(cfg: CrawlRecipe, starts: Iterable[str], watch: PageWatch) -> str:
    """Why a discovery from ``starts`` yielded no item at all."""
    starts = list(starts)
    failed = [
        f"the start page {url} failed: {explain(out.reason, out.message)}"
        for url in starts
        if (out := watch.failed_pages.get(url)) is not None
    ]
    if failed:
        return "; ".join(failed)
    where = ", ".join(starts)
    if watch.pages == 0:
        return f"no page was fetched from {where} (discover.max_pages {cfg.discover.max_pages})"
    what = (
        "matching discover.item_patterns"
        if cfg.discover.item_patterns
        else "(a JSON-LD or OpenGraph video, or one <video>); name them with discover.item_patterns"
    )
    return (
        f"{watch.pages} page(s) fetched from {where} ({len(watch.failed_pages)} failed), "
        f"none of them a clip page {what}"
    )


def all_refused(by_status: Mapping[str, int], by_reason: Mapping[str, int]) -> str | None:
    """Why nothing was requested when every item of a run was refused by the crawl's own
    policy (status ``skipped_policy``); None when anything else happened."""
    if not by_status or set(by_status) != {contract.STATUS_SKIPPED_POLICY}:
        return None
    counts = sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    hints = [POLICY_HINTS[r] for r, _ in counts if r in POLICY_HINTS]
    return (
        "every item was refused by the crawl's own policy before any request ("
        + ", ".join(f"{r} {n}" for r, n in counts)
        + ")"
        + "".join(f"; {h}" for h in hints)
    )
