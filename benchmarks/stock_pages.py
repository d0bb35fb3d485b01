"""Realistic stock-footage pages for parsing benchmarks: clip pages and listing pages.

Takes a count and a seed; produces ``(url, html)`` pairs of 100-300 KB each, shaped like a
stock site's pages (and like the demo site's, ``webvid/demo/site.py``, padded with what real
ones carry): a nav mega-menu, inline SVG icons, a large inline state script, analytics,
JSON-LD ``VideoObject`` and ``BreadcrumbList``, OpenGraph and Twitter meta,
``<video><source>`` with a poster image, keyword links, a grid of related clips and a footer;
listing pages have a grid of cards with hover-preview ``<video>`` elements, filters and
pagination with ``rel=next``.
"""

from __future__ import annotations

import json
import random
from html import escape

BASE = "https://stock.example.com"
WORDS = (  # noqa: SIM905 (one string reads better than 43 quoted words)
    "aerial view of a mountain lake at sunset young woman walking on the beach slow "
    "motion city traffic night timelapse drone shot forest river waves ocean close up "
    "hands typing laptop office business team meeting happy family autumn leaves snow "
    "winter road car"
).split()


def _words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _svg(rng: random.Random) -> str:
    points = " ".join(
        f"{'M' if i == 0 else 'L'}{rng.uniform(0, 24):.2f} {rng.uniform(0, 24):.2f}"
        for i in range(rng.randint(8, 30))
    )
    return (
        '<svg class="icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" '
        f'xmlns="http://www.w3.org/2000/svg"><path fill="currentColor" d="{points}Z"></path>'
        f'<circle cx="{rng.randint(2, 22)}" cy="{rng.randint(2, 22)}" r="2"></circle></svg>'
    )


def _head(rng: random.Random, title: str, extra: str) -> str:
    hreflang = "".join(
        f'<link rel="alternate" hreflang="{lang}" href="{BASE}/{lang}/">'
        for lang in ("de", "fr", "es", "it", "ja", "ko", "pt", "ru", "zh", "nl", "sv", "pl")
    )
    css = "".join(
        f".c{i}{{margin:{i % 7}px;padding:{i % 5}px;color:#{rng.randrange(16**6):06x}}}"
        for i in range(250)
    )
    analytics = (
        "(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),"
        "event:'gtm.js'});var f=d.getElementsByTagName(s)[0],j=d.createElement(s);j.async=true;"
        "j.src='https://www.googletagmanager.com/gtm.js?id='+i;f.parentNode.insertBefore(j,f);"
        "})(window,document,'script','dataLayer','GTM-XXXX');" * 6
    )
    return (
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="/static/app.{rng.randrange(16**8):08x}.css">'
        '<link rel="preconnect" href="https://cdn.example.net"><link rel="icon" href="/favicon.ico">'
        f"{hreflang}<style>{css}</style><script>{analytics}</script>{extra}"
    )


def _nav(rng: random.Random) -> str:
    menus = []
    for m in range(8):
        items = "".join(
            f'<li><a class="nav-link" href="/search?q={w}&amp;cat={m}">{escape(w.title())}</a></li>'
            for w in (rng.choice(WORDS) for _ in range(30))
        )
        menus.append(
            f'<li class="menu"><button aria-expanded="false">{_svg(rng)}Menu {m}</button>'
            f'<ul class="submenu">{items}</ul></li>'
        )
    return (
        f'<header class="site-header"><a class="logo" href="/">{_svg(rng)}Stock</a>'
        f'<form action="/search" role="search"><input name="q" type="search"></form>'
        f'<nav class="main-nav"><ul>{"".join(menus)}</ul></nav></header>'
    )


def _footer(rng: random.Random) -> str:
    cols = "".join(
        "<div class=col><h4>Section</h4><ul>"
        + "".join(
            f'<li><a href="/about/{rng.choice(WORDS)}-{i}">{rng.choice(WORDS)}</a></li>'
            for i in range(15)
        )
        + "</ul></div>"
        for _ in range(6)
    )
    return f'<footer class="site-footer">{cols}<p>&copy; 2026 Stock Example</p></footer>'


def _card(rng: random.Random, n: int, preview: bool) -> str:
    cap = escape(_words(rng, 5, 14))
    video = (
        f'<video class="preview" muted loop preload="none" playsinline>'
        f'<source src="https://cdn.example.net/previews/{n}.webm" type="video/webm">'
        f'<source src="https://cdn.example.net/previews/{n}.mp4" type="video/mp4"></video>'
        if preview
        else ""
    )
    return (
        f'<div class="card c{n % 250}" data-id="{n}" data-duration="{rng.randint(5, 60)}">'
        f'<a class="clip-card" href="/clip/{n}-{cap.split()[0]}" title="{cap}">'
        f'<picture><source srcset="https://cdn.example.net/thumbs/{n}.webp" type="image/webp">'
        f'<img src="https://cdn.example.net/thumbs/{n}.jpg" alt="{cap}" loading="lazy" '
        f'width="320" height="180"></picture>{video}</a>'
        f'<span class="duration">0:{rng.randint(5, 59):02d}</span><span class="title">{cap}</span>'
        f'<button class="fav" aria-label="Save">{_svg(rng)}</button>'
        f'<a class="download" href="/download/{n}?size=hd">{_svg(rng)}HD</a></div>'
    )


def _state_blob(rng: random.Random, size: int) -> str:
    clips = []
    while sum(len(c) for c in clips) < size:
        n = rng.randrange(10**9)
        clips.append(
            json.dumps(
                {
                    "id": n,
                    "title": _words(rng, 6, 14),
                    "thumb": f"https://cdn.example.net/thumbs/{n}.jpg",
                    "keywords": [rng.choice(WORDS) for _ in range(12)],
                    "contributor": {"id": rng.randrange(10**6), "name": _words(rng, 2, 3)},
                }
            )
        )
    return 'window.__INITIAL_STATE__ = {"related": [' + ",".join(clips) + "]};"


def clip_page(rng: random.Random, n: int) -> str:
    caption = _words(rng, 6, 16)
    media = f"https://cdn.example.net/clips/{n}/preview.mp4"
    thumb = f"https://cdn.example.net/clips/{n}/poster.jpg"
    ld = {
        "@context": "https://schema.org",
        "@type": "VideoObject",
        "name": caption,
        "description": _words(rng, 20, 40),
        "contentUrl": media,
        "thumbnailUrl": thumb,
        "duration": f"PT0H0M{rng.randint(5, 59)}S",
        "width": 1920,
        "height": 1080,
        "uploadDate": "2025-06-01",
        "keywords": ", ".join(rng.choice(WORDS) for _ in range(25)),
    }
    crumbs = {
        "@context": "https://schema.org",
        "@type": "BreadcrumbList",
        "itemListElement": [
            {"@type": "ListItem", "position": i + 1, "name": w, "item": f"{BASE}/c/{w}"}
            for i, w in enumerate(rng.sample(WORDS, 4))
        ],
    }
    og = "".join(
        f'<meta property="{p}" content="{escape(str(v))}">'
        for p, v in (
            ("og:type", "video.other"),
            ("og:site_name", "Stock Example"),
            ("og:title", caption),
            ("og:description", ld["description"]),
            ("og:url", f"{BASE}/clip/{n}"),
            ("og:video", media),
            ("og:video:secure_url", media),
            ("og:video:type", "video/mp4"),
            ("og:video:width", 1920),
            ("og:video:height", 1080),
            ("og:image", thumb),
            ("twitter:card", "player"),
            ("twitter:title", caption),
        )
    )
    head = _head(
        rng,
        caption,
        og
        + '<meta name="robots" content="index, follow, max-image-preview:large">'
        + f'<link rel="canonical" href="{BASE}/clip/{n}">'
        + f'<script type="application/ld+json">{json.dumps(ld)}</script>'
        + f'<script type="application/ld+json">{json.dumps(crumbs)}</script>',
    )
    keywords = "".join(
        f'<a class="tag" href="/search?q={escape(w)}">{escape(w)}</a>'
        for w in (rng.choice(WORDS) for _ in range(40))
    )
    details = "".join(
        f"<dt>{k}</dt><dd>{escape(v)}</dd>"
        for k, v in (("Clip ID", str(n)), ("Resolution", "1920x1080"), ("Frame rate", "29.97"))
    )
    related = "".join(_card(rng, rng.randrange(10**8), preview=False) for _ in range(60))
    body = (
        _nav(rng)
        + f'<main><ol class="breadcrumbs"><li><a href="/">Home</a></li><li><a href="/c/nature">'
        f'Nature</a></li></ol><h1 class="clip-title">{escape(caption)}</h1>'
        f'<div class="player"><video controls preload="none" poster="{thumb}" width="1920" '
        f'height="1080"><source src="{media}" type="video/mp4">'
        f'<source src="{media[:-4]}.webm" type="video/webm"></video>'
        f'<img class="poster" src="{thumb}" alt="{escape(caption)}"></div>'
        f'<section class="details"><dl>{details}</dl><p class="description">'
        f'{escape(ld["description"])}</p><div class="tags">{keywords}</div></section>'
        f'<section class="related"><h2>Similar clips</h2>{related}</section></main>'
        + _footer(rng)
        + f"<script>{_state_blob(rng, rng.randint(30_000, 80_000))}</script>"
        + '<script src="/static/vendor.js" defer></script>'
    )
    return f'<!doctype html>\n<html lang="en"><head>{head}</head><body>{body}</body></html>'


def listing_page(rng: random.Random, n: int) -> str:
    head = _head(
        rng,
        f"Stock videos - page {n}",
        f'<link rel="prev" href="/videos/page/{n - 1}"><link rel="next" href="/videos/page/{n + 1}">',
    )
    filters = "".join(
        f'<label><input type="checkbox" name="f" value="{w}">{escape(w)}</label>'
        f'<a class="filter" href="/videos?f={w}">{_svg(rng)}</a>'
        for w in (rng.choice(WORDS) for _ in range(40))
    )
    cards = "".join(_card(rng, n * 1000 + i, preview=True) for i in range(100))
    pages = "".join(f'<a href="/videos/page/{i}">{i}</a>' for i in range(max(1, n - 3), n + 4))
    body = (
        _nav(rng) + f'<main><aside class="filters">{filters}</aside><h1>Stock videos</h1>'
        f'<div class="grid">{cards}</div><nav class="pagination">{pages}'
        f'<a rel="next" href="/videos/page/{n + 1}">Next</a></nav></main>'
        + _footer(rng)
        + f"<script>{_state_blob(rng, rng.randint(10_000, 40_000))}</script>"
    )
    return f'<!doctype html>\n<html lang="en"><head>{head}</head><body>{body}</body></html>'


def make_pages(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` pages (half clip pages, half listings) as ``(url, html)``."""
    rng = random.Random(seed)
    pages = []
    for i in range(count):
        if i % 2 == 0:
            pages.append((f"{BASE}/clip/{i}", clip_page(rng, i)))
        else:
            pages.append((f"{BASE}/videos/page/{i}", listing_page(rng, i)))
    return pages
