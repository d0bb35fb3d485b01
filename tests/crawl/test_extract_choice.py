"""The media, caption and hydration rules of discovery (webvid.crawl.media_choice, captions,
hydrate) as tables of small pages in the shapes real sites use, plus hostile hydration data."""

from __future__ import annotations

import json
import time

import pytest

from webvid.crawl import captions, hydrate
from webvid.crawl.extract import extract_clip, is_clip_page, parse_html

URL = "https://clips.example.com/v/42"


def clip_of(html: str, url: str = URL):
    return extract_clip(parse_html(html, url))


# --------------------------------------------------------------------------------------------
# media
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "media", "skipped"),
    [
        # blob:/data:/javascript: placeholders are skipped; the later real <video> is the clip
        (
            '<video src="blob:https://clips.example.com/1-2"></video>'
            '<video src="data:video/mp4;base64,AAAA"></video>'
            '<video src="javascript:void(0)"></video>'
            '<video poster="/p.jpg"><source src="/v.webm" type="video/webm">'
            '<source src="/v.mp4" type="video/mp4"></video>',
            "https://clips.example.com/v.mp4",
            {"blob": 1, "data": 1, "no-source": 1},
        ),
        # a <source type="video/mp4"> whose src is a blob: counts as no source at all
        (
            '<video><source src="blob:https://x/1" type="video/mp4"></video>',
            None,
            {"blob": 1},
        ),
        # adverts (by title, by a camelCase id, by an ancestor's class) and hidden players
        (
            '<video title="Advertisement" src="/ad1.mp4"></video>'
            '<video id="adVideoElement" src="/ad2.mp4"></video>'
            '<div class="ad-slot"><div><video src="/ad3.mp4"></video></div></div>'
            '<video width="0" height="0" src="/tracker.mp4"></video>'
            '<div class="badge-track"><video src="/real.mp4"></video></div>',
            "https://clips.example.com/real.mp4",
            {"ad": 3, "hidden": 1},
        ),
        # host-less placeholders (lazy loaders' "//:0") are not sources
        ('<video src="//:0"></video>', None, {"no-source": 1}),
        # a lazy loader's data-src is
        (
            '<video src="//:0" data-src="/lazy.mp4"></video>',
            "https://clips.example.com/lazy.mp4",
            {},
        ),
    ],
)
def test_video_sources(html: str, media: str | None, skipped: dict[str, int]) -> None:
    clip, _ = clip_of(html)
    assert (clip.media_url, clip.media_skipped) == (media, skipped)
    assert is_clip_page(clip, 0) == (media is not None)


def test_evidence_picks_among_usable_videos() -> None:
    page = (
        '<meta property="og:video" content="https://clips.example.com/page.html">'
        '<meta property="og:video:type" content="text/html">'
        '<video src="/teaser.webm" width="320" height="180"></video>'
        '<video src="/big.webm" width="1280" height="720"></video>'
        '<video src="/small.mp4" width="320" height="180"></video>'
    )
    clip, n = clip_of(page)
    # MP4 first, then area: the page's HTML og:video is only a player page, after any media
    assert clip.media_url == "https://clips.example.com/small.mp4" and n == 3
    assert clip.media_by.startswith("video-tag: <video> 3 on the page, 3 usable, video/mp4")
    assert is_clip_page(clip, n)  # an og:video, even a player page, marks a clip page
    # agreement with JSON-LD beats the MIME type and the area
    ld = {"@type": "VideoObject", "embedUrl": "https://player.example/1", "name": "N"}
    agree = (
        f'<script type="application/ld+json">{json.dumps(ld)}</script>'
        '<meta property="og:video" content="/big.webm"><meta property="og:video:type" '
        'content="text/html"><video src="/small.mp4"></video><video src="/big.webm"></video>'
    )
    clip, _ = clip_of(agree)
    # the <video> whose source the page's og:video names, though WebM and declared an HTML page
    assert clip.media_url == "https://clips.example.com/big.webm"
    assert "agrees with json-ld/opengraph" in clip.media_by
    typed = agree.replace("text/html", "video/webm")
    clip, _ = clip_of(typed)
    assert (clip.media_url, clip.media_by) == (
        "https://clips.example.com/big.webm",
        "opengraph og:video (video/webm)",
    )


def test_player_pages_come_after_direct_media_and_stay_for_yt_dlp() -> None:
    ld = {"@type": "VideoObject", "embedUrl": "https://www.youtube.com/embed/abc", "name": "N"}
    page = f'<script type="application/ld+json">{json.dumps(ld)}</script>'
    clip, n = clip_of(page)
    assert clip.media_url == "https://www.youtube.com/embed/abc" and is_clip_page(clip, n)
    assert clip.media_by == "json-ld embedUrl (player page)"
    clip, _ = clip_of(page + '<video src="/direct.mp4"></video>')
    assert clip.media_url == "https://clips.example.com/direct.mp4"


def test_hydration_media_and_title() -> None:
    state = {
        "props": {
            "pageProps": {
                "logo": {"url": "https://cdn.example/logo.png"},
                "clip": {
                    "title": "A red fox in snow",
                    "media": {"sources": [{"url": "https://cdn.example/fox.mp4"}]},
                },
            }
        }
    }
    page = (
        '<title>Foxes - ClipSite</title><video src="blob:https://clips.example.com/x"></video>'
        f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(state)}</script>'
    )
    clip, n = clip_of(page)
    assert clip.media_url == "https://cdn.example/fox.mp4" and is_clip_page(clip, n)
    assert clip.media_by == "hydration $.props.pageProps.clip.media.sources[0].url"
    assert clip.captions["hydration"] == "A red fox in snow" and "hydration" in clip.found_by


@pytest.mark.parametrize(
    ("blob", "found"),
    [
        ("[" * 200_000 + "]" * 200_000, None),  # deeper than the JSON parser goes: skipped
        ('{"k":' * 5 + "broken", None),
        # 480,000 values before the media URL: the walk queues no more than 200,000 of them,
        # so it ends — here at the URL, the deep tail of the huge list never visited
        (
            json.dumps({"a": [[[[{"b": [1] * 10}]]]] * 30_000, "z": {"videoUrl": "https://e/x"}}),
            "https://e/x",
        ),
        # the URL one level below a value queued after the budget is spent: never reached
        (json.dumps([[1] * 300_000, {"v": {"videoUrl": "https://e/y"}}]), None),
    ],
)
def test_hostile_hydration_is_bounded(blob: str, found: str | None) -> None:
    t0 = time.perf_counter()
    got = hydrate.find_media([blob])
    assert time.perf_counter() - t0 < 10.0
    assert (got.media_url if got else None) == found


def test_hydration_limits() -> None:
    ok = json.dumps({"video": {"playAddr": "https://cdn.example/v", "desc": "Post text"}})
    assert hydrate.find_media([ok]) == hydrate.Hydrated(
        "https://cdn.example/v", "Post text", "$.video.playAddr"
    )
    assert hydrate.find_media([ok], max_blob_bytes=10) is None
    assert hydrate.find_media(["x" * 50, ok], max_page_bytes=60) is None
    deep: dict = {"videoUrl": "https://cdn.example/deep.mp4"}
    for _ in range(60):
        deep = {"k": deep}
    assert hydrate.walk(deep) is None and hydrate.walk(deep, max_depth=100) is not None
    assert hydrate.media_value("src", "https://e/a.jpg") is None
    assert hydrate.media_value("url", "https://e/a") is None  # a generic key needs a media ext
    assert hydrate.media_value("url", "https://e/a.m3u8") == "https://e/a.m3u8"
    assert hydrate.media_value("videoUrl", "blob:https://e/1") is None


# --------------------------------------------------------------------------------------------
# captions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "url", "caption", "by"),
    [
        # og:title is the site's name: the <title> without its site suffix
        (
            '<meta property="og:site_name" content="Twitch"><meta property="og:title" '
            'content="Twitch"><title>Blowup Tuesday - Twitch</title>',
            "https://clips.twitch.tv/x",
            "Blowup Tuesday",
            "title",
        ),
        # the site's name from the host alone; a prefix segment naming it too
        (
            "<title>ClipHub | Sunset over the bay</title>",
            "https://www.cliphub.co.uk/v/1",
            "Sunset over the bay",
            "title",
        ),
        # an author-only og:title: the post text in og:description wins over <title>
        (
            '<meta property="og:title" content="IlloJuan on TikTok">'
            '<meta property="og:description" content="Mi menú de fin de año">'
            "<title>Descubre el menú | TikTok</title>",
            "https://www.tiktok.com/@illojuan/video/1",
            "Mi menú de fin de año",
            "og:description",
        ),
        # a social wrapper, quotes, trailing t.co links and " / X"
        (
            '<meta property="og:title" content=\'The Verge on X: "Is it bad? '
            "https://t.co/Y3y https://t.co/Z\" / X'>",
            "https://x.com/verge/status/1",
            "Is it bad?",
            "opengraph",
        ),
        # "Watch … on …" and "N likes" are boilerplate; a handle-only title is an author
        (
            '<meta property="og:title" content="Jane Doe (@jane)">'
            '<meta property="og:description" content="Watch this clip and more on ClipHub">'
            '<meta name="twitter:description" content="12K likes, 30 comments">'
            "<h1>Our cookie policy</h1><h1>Kites at dawn</h1>",
            "https://cliphub.example/p/1",
            "Kites at dawn",
            "h1",
        ),
        # a section suffix that other candidates lack is dropped
        (
            '<meta property="og:title" content="Comin in for a landing! - Animals">'
            "<h1>Comin in for a landing!</h1>",
            "https://9gag.com/gag/1",
            "Comin in for a landing!",
            "opengraph",
        ),
        # nothing but the site's name: no caption, every candidate still kept
        ("<title>Twitch</title>", "https://www.twitch.tv/", None, None),
    ],
)
def test_caption_rule(head: str, url: str, caption: str | None, by: str | None) -> None:
    clip, _ = clip_of(f"<html><head>{head}</head><body></body></html>", url)
    assert (clip.caption, clip.caption_by) == (caption, by), clip.caption_demoted
    assert clip.captions  # every candidate stored


def test_demo_like_pages_keep_their_caption() -> None:
    """The demo site's four markups: whatever the variant, the catalogue's caption."""
    cap = "A red ball moving left on a blue background - slow"
    ld = {"@type": "VideoObject", "name": cap, "contentUrl": "/m.mp4", "description": f"{cap}."}
    head = f"<title>{cap}</title>"
    body = f"<h1>{cap}</h1>"
    video = (
        '<video poster="/t.jpg"><source src="/m.mp4" type="video/mp4"></video>'
        f'<img src="/t.jpg" alt="{cap}">'
    )
    variants = {
        "jsonld": f'<script type="application/ld+json">{json.dumps(ld)}</script>',
        "og": f'<meta property="og:title" content="{cap}">'
        '<meta property="og:video" content="/m.mp4">',
        "video": "",
    }
    for name, extra in variants.items():
        tag = video if name == "video" else ""
        html = f"<html><head>{head}{extra}</head><body>{body}{tag}</body></html>"
        clip, _ = clip_of(html, "http://127.0.0.1:8080/clip/x")
        assert clip.caption == cap, name
        assert clip.media_url == "http://127.0.0.1:8080/m.mp4", name


def test_hostile_caption_candidates_are_cut_and_fast() -> None:
    urls = " http://a" * 120_000 + " z"  # quadratic for the trailing-URL rule if uncut
    page = f'<meta property="og:title" content="{urls}"><title>{"x " * 300_000}</title>'
    t0 = time.perf_counter()
    clip, _ = clip_of(page)
    assert time.perf_counter() - t0 < 5.0
    assert max(len(v) for v in clip.captions.values()) <= captions.MAX_CHARS
    assert clip.caption_by == "opengraph" and len(clip.caption or "") <= captions.MAX_CHARS


def test_site_names() -> None:
    names = captions.site_names(
        ["X (formerly Twitter)", "Medal.tv | #1 Free Clip Platform"], "https://clips.twitch.tv/a"
    )
    assert {("x",), ("formerly", "twitter"), ("medal", "tv"), ("twitch",)} <= names
    assert captions.site_names([], "http://127.0.0.1:9/") == set()
