"""Page extraction as tables: which clip a page describes (our rules, on lxml's tree), links,
CSS selection (cssselect), and pages built to hurt a parser."""

from __future__ import annotations

import json

import pytest

from webvid.crawl.extract import (
    extract_clip,
    is_clip_page,
    links,
    meta_robots_opt_out,
    parse_html,
    select,
    select_values,
)

URL = "https://stock.example/clip/42"


def ld(obj: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(obj)}</script>'


VIDEO_LD = {
    "@type": "VideoObject",
    "name": " A  red ball ",
    "contentUrl": "/media/42.mp4",
    "thumbnailUrl": "/t/42.jpg",
    "duration": "PT1M2S",
    "width": 640,
    "height": [{"value": "360"}],
    "keywords": ["ball", " red "],
    "description": "words",
}


@pytest.mark.parametrize(
    ("html", "expect"),
    [
        # JSON-LD first, also inside @graph; the type may be a URL
        (
            ld({"@graph": [{"@type": "WebPage"}, VIDEO_LD]}),
            ("https://stock.example/media/42.mp4", "A red ball", ["json-ld"], "video", 0),
        ),
        (
            ld({**VIDEO_LD, "@type": "https://schema.org/VideoObject"}),
            ("https://stock.example/media/42.mp4", "A red ball", ["json-ld"], "video", 0),
        ),
        # an image page: ImageObject with a contentUrl
        (
            ld({"@type": "ImageObject", "contentUrl": "/i.jpg", "name": "Sky"}),
            ("https://stock.example/i.jpg", "Sky", ["json-ld"], "image", 0),
        ),
        # broken JSON-LD is skipped; OpenGraph: secure_url before url before og:video
        (
            '<script type="application/ld+json">{oops</script>'
            '<meta property="og:video" content="/a.mp4">'
            '<meta property="og:video:secure_url" content="https://cdn.example/s.mp4">'
            '<meta property="og:title" content="OG title">',
            ("https://cdn.example/s.mp4", "OG title", ["opengraph"], "video", 0),
        ),
        # <video>: an mp4 <source> first, the poster image's alt text is the caption
        (
            '<video poster="/p.jpg"><source src="/v.webm" type="video/webm">'
            '<source src="/v.mp4" type="video/mp4"></video>'
            '<img src="/other.jpg" alt="no"><img src="https://stock.example/p.jpg" title="Alt">',
            ("https://stock.example/v.mp4", "Alt", ["video-tag"], "video", 1),
        ),
        # the video's own title when no image carries the poster's alt; <base href> applies
        (
            '<base href="https://cdn.example/dir/"><video src="v.mp4" title="Own  title">'
            "</video><video></video>",
            ("https://cdn.example/dir/v.mp4", "Own title", ["video-tag"], "video", 2),
        ),
        # the JSON-LD caption wins over OpenGraph and alt text; all are kept
        (
            ld(VIDEO_LD) + '<meta property="og:video" content="/o.mp4">'
            '<meta property="og:title" content="OG">'
            '<video poster="/p.jpg" src="/v.mp4"></video><img src="/p.jpg" alt="ALT">',
            (
                "https://stock.example/media/42.mp4",
                "A red ball",
                ["json-ld", "opengraph", "video-tag"],
                "video",
                1,
            ),
        ),
        ("<p>nothing here</p>", (None, None, [], "video", 0)),
    ],
)
def test_clip_rules(html: str, expect: tuple) -> None:
    clip, n_videos = extract_clip(parse_html(html, URL))
    assert (clip.media_url, clip.caption, clip.found_by, clip.kind, n_videos) == expect


def test_json_ld_fields_and_candidates() -> None:
    html = ld(VIDEO_LD) + '<meta property="og:title" content="OG">'
    clip, _ = extract_clip(parse_html(html, URL))
    assert (clip.duration_s, clip.width, clip.height) == (62.0, 640, 360)
    assert clip.keywords == ["ball", "red"] and clip.description == "words"
    assert clip.thumbnail_url == "https://stock.example/t/42.jpg"
    assert clip.captions == {
        "json-ld": "A red ball",
        "json-ld:description": "words",
        "opengraph": "OG",
    }
    assert (clip.caption_by, clip.media_by) == ("json-ld", "json-ld contentUrl")
    assert is_clip_page(clip, 0)


def test_recipe_selectors_override() -> None:
    html = (
        '<div class="clip"><h1 class="t"> A <b>blue</b>\n cube </h1>'
        '<span class="player" data-src="/cdn/x.mp4">p</span>'
        '<ul><li class="kw">a, b</li><li class="kw">c</li></ul></div>'
    )
    doc = parse_html(html, URL)
    select_spec = {
        "caption": "div.clip > h1.t",
        "media_url": "span.player[data-src]@data-src",
        "keywords": "li.kw",
        "description": "p.missing",
        "next": "a[rel=next]@href",  # read by the walker, not here
    }
    clip, n_videos = extract_clip(doc, select_spec)
    assert (clip.caption, clip.media_url, clip.keywords, clip.description) == (
        "A blue cube",
        "https://stock.example/cdn/x.mp4",
        ["a", "b", "c"],
        None,
    )
    assert clip.found_by == ["css:caption", "css:media_url", "css:keywords"]
    assert is_clip_page(clip, n_videos)
    with pytest.raises(ValueError, match="unknown field"):
        extract_clip(doc, {"colour": "h1"})


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("li:nth-child(2)", ["2"]),
        ("li:not(.x)", ["1", "3"]),
        ("ul > li.x + li", ["3"]),
        ("LI[DATA-K=v]", ["1"]),
        ("li[data-k]", ["1"]),
        ("", []),
    ],
)
def test_css_selectors_beyond_the_old_subset(selector: str, expected: list[str]) -> None:
    doc = parse_html('<ul><li data-k="v">1</li><li class="x">2</li><li>3</li></ul>', URL)
    assert [e.text() for e in select(doc, selector)] == expected


@pytest.mark.parametrize("selector", ["a[", "div >", "::nope", "a:unknown-pseudo"])
def test_bad_selector_is_a_value_error(selector: str) -> None:
    with pytest.raises(ValueError, match="unsupported CSS selector"):
        select(parse_html("<a>x</a>", URL), selector)


def test_links_and_meta_robots() -> None:
    html = (
        '<link rel="next" href="/p/2"><link rel="stylesheet" href="/s.css">'
        '<a href="/a?x=1&amp;y=2#frag">a</a><a href="/b?q=1&copy=2">b</a>'
        '<a href="javascript:void(0)">j</a><a href="mailto:x@y">m</a><a href=" ">s</a>'
        '<a href="ftp://h/f">f</a><a rel="Next" href="https://other.example/3">n</a>'
        '<map><area href="/area"></map><meta name="WebVid" content="noai">'
    )
    doc = parse_html(html, URL)
    assert links(doc) == [
        ("https://stock.example/p/2", True),
        ("https://stock.example/a?x=1&y=2", False),
        ("https://stock.example/b?q=1&copy=2", False),  # &copy= is not an entity in a URL
        ("https://other.example/3", True),
        ("https://stock.example/area", False),
    ]
    assert meta_robots_opt_out(doc, "webvid") == "noai"
    assert (
        meta_robots_opt_out(parse_html('<meta name="other" content="noai">', URL), "webvid") is None
    )
    assert select_values(doc, "a[href^=javascript]@href") == ["javascript:void(0)"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n",
        "<",
        "\x00<p>nul</p>",
        "<p>lone \udc80 surrogate</p>",
        '<?xml version="1.0" encoding="ISO-8859-1"?><html><body><p>é</p></body></html>',
        "<!DOCTYPE html [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;&a;'>]><p>&b;</p>",
    ],
)
def test_odd_pages_parse(text: str) -> None:
    doc = parse_html(text, URL)
    clip, n_videos = extract_clip(doc)
    assert (clip.media_url, n_videos, links(doc)) == (None, 0, [])
    if "é" in text:  # the page is text already: a declared charset is not applied again
        assert select_values(doc, "p") == ["é"]


def test_pages_built_to_hurt_a_parser_stay_small() -> None:
    """Deep nesting and the formatting-element bomb: HTML5 tree builders (Lexbor) take
    quadratic time on the first and build 800,000 elements from the 17 KB second; the
    parser before this one died of RecursionError on both. libxml2 stops nesting at 256
    levels and does not reconstruct formatting elements."""
    deep = parse_html("<div>" * 40_000 + '<a href="/x">x</a>', URL)
    assert len(select(deep, "div")) <= 256
    extract_clip(deep)
    bomb = "<p>" + "".join(f"<b a={i}>" for i in range(200)) + "<p>x" * 4_000
    doc = parse_html(bomb, URL)
    assert len(select(doc, "b")) <= 200
    assert extract_clip(doc)[0].media_url is None
