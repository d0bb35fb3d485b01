"""The demo site's opt-out signals: one clip per signal and answer (pure data, no I/O).

Takes a :class:`~webvid.synth.catalog.Catalog` (built with faults); produces the same catalogue
with opt-out signals planted (:func:`plant_signals`) and, for the site, what to send for each
(:func:`robots_lines`, :func:`tdmrep_rules`, :func:`media_headers`, :func:`page_meta`). See docs/ethics.md for the signals and docs/demo-site.md for the layout.

* A "no" answer is planted on a **probe**: an extra clip listed after the catalogue's own, with
  the media of a clean clip (nothing new is rendered) and the outcome a correct crawler reaches
  for the default purpose ``train-ai`` — skipped, the signal on record. Probes are never kept,
  so what the demo keeps, trains on and measures stays what it was.
* A "yes" answer is planted on a clean clip of the catalogue, which stays kept, with the
  allowing signal on record as ``optout_source``.

``X-Robots-Tag`` (the ``noai`` fault) and robots.txt ``Disallow`` (the ``robots`` fault) are
the catalogue's own faults; they have no "yes" form, nor do robots meta and AI-crawler groups.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Final

from webvid import contract
from webvid.synth.catalog import Catalog, Expected, Item

_OPT_OUT = Expected(contract.STATUS_SKIPPED_OPT_OUT, "opt_out")

#: signal kind → (the crawl record's optout_source, the outcome of its "no" probe)
SIGNALS: Final[dict[str, tuple[str, Expected]]] = {
    "content_usage_header": ("content-usage", _OPT_OUT),
    "content_usage_robots": ("content-usage", _OPT_OUT),
    "content_signal": ("content-signal", _OPT_OUT),
    "tdmrep_file": ("tdmrep-file", _OPT_OUT),
    "tdmrep_header": ("tdmrep-header", _OPT_OUT),
    "tdmrep_meta": ("tdmrep-meta", _OPT_OUT),
    "robots_meta": (
        "robots-meta",
        Expected(contract.STATUS_SKIPPED_OPT_OUT, "x_robots_tag"),
    ),
    "ai_crawler_group": (
        "robots",
        Expected(contract.STATUS_SKIPPED_ROBOTS, "robots_disallowed"),
    ),
}
#: kinds that also have a "yes" answer (an explicit allow)
YES_SIGNALS: Final[tuple[str, ...]] = (
    "content_usage_header",
    "content_usage_robots",
    "content_signal",
    "tdmrep_file",
    "tdmrep_header",
    "tdmrep_meta",
)


def plant_signals(catalog: Catalog) -> Catalog:
    """``catalog`` with a probe per signal kind ("no") and a clean clip per "yes" kind.

    Drawn from their own random stream (the seed's), so the catalogue's clips, faults and
    images stay exactly as they were; a site too small to have clean clips gets none."""
    rng = random.Random(f"{catalog.seed}/optout-signals")
    clean = [i for i, c in enumerate(catalog.clips) if c.fault is None]
    if not clean:
        return catalog
    clips = list(catalog.clips)
    for kind, i in zip(
        YES_SIGNALS, rng.sample(clean, min(len(clean), len(YES_SIGNALS))), strict=False
    ):
        clips[i] = replace(clips[i], signal=f"{kind}:yes")
    used = {c.clip_id for c in (*catalog.clips, *catalog.images)}
    probes = []
    for kind, (_source, expected) in SIGNALS.items():
        base = catalog.clips[rng.choice(clean)]
        while (cid := str(rng.randrange(1_000_000, 10_000_000))) in used:
            pass
        used.add(cid)
        probes.append(
            replace(
                base,
                clip_id=cid,
                fault=None,
                expected=expected,
                markup="full",
                duplicate_of=base.clip_id,  # its media are the base clip's file
                signal=f"{kind}:no",
            )
        )
    return Catalog(catalog.seed, tuple(clips), catalog.images, probes=tuple(probes))


def _signalled(catalog: Catalog) -> list[tuple[Item, str, bool]]:
    """``(item, kind, allows)`` of every clip with a signal, in listing order."""
    out = []
    for item in catalog.listed:
        if item.signal:
            kind, _, answer = item.signal.partition(":")
            out.append((item, kind, answer == "yes"))
    return out


def robots_lines(catalog: Catalog) -> list[str]:
    """Lines added to the site's ``User-agent: *`` group, then an AI-crawler group."""
    star, ai = [], []
    for item, kind, yes in _signalled(catalog):
        if kind == "content_usage_robots":
            star.append(f"Content-Usage: {item.media_path} train-ai={'y' if yes else 'n'}")
        elif kind == "content_signal":
            star.append(
                f"Content-Signal: {item.media_path} ai-train={'yes' if yes else 'no'}, search=yes"
            )
        elif kind == "ai_crawler_group":
            ai.append(f"Disallow: {item.media_path}")
    return star + (["", "User-agent: GPTBot", *ai] if ai else [])


def tdmrep_rules(catalog: Catalog) -> list[dict[str, object]] | None:
    """The site's ``/.well-known/tdmrep.json`` (None: the site has none)."""
    rules: list[dict[str, object]] = [
        {"location": f"{item.media_path}$", "tdm-reservation": 0 if yes else 1}
        for item, kind, yes in _signalled(catalog)
        if kind == "tdmrep_file"
    ]
    return rules or None


def media_headers(item: Item) -> dict[str, str]:
    """Opt-out headers on the item's media response."""
    kind, _, answer = (item.signal or "").partition(":")
    yes = answer == "yes"
    if kind == "content_usage_header":
        return {"Content-Usage": "train-ai=y" if yes else "train-ai=n"}
    if kind == "tdmrep_header":
        headers = {"tdm-reservation": "0" if yes else "1"}
        if not yes:
            headers["tdm-policy"] = "https://demo.invalid/tdm-policy.json"
        return headers
    return {}


def page_meta(item: Item) -> str:
    """Opt-out ``<meta>`` elements for the item's clip page."""
    kind, _, answer = (item.signal or "").partition(":")
    if kind == "tdmrep_meta":
        return f'<meta name="tdm-reservation" content="{0 if answer == "yes" else 1}">'
    if kind == "robots_meta" and answer == "no":
        return '<meta name="robots" content="noai, noimageai">'
    return ""
