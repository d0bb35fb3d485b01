"""Pure policy and scoring, tested as tables: filters, captions, dedup, scores, shard planning."""

from __future__ import annotations

import numpy as np
import pytest

from webvid.shards import captions, dedup, filters, scores, writer
from webvid.shards.probe import ProbeInfo
from webvid.shards.recipe import DedupConfig, FilterConfig, TransformConfig
from webvid.shards.transform import even_size, plan_video

F = FilterConfig()


@pytest.mark.parametrize(
    ("kind", "video", "image", "w", "h", "fps", "dur", "expected"),
    [
        ("video", True, False, 320, 240, 25.0, 5.0, []),
        ("video", True, True, 320, 240, None, None, ["not_video"]),
        ("video", False, False, None, None, None, 3.0, ["not_video"]),
        ("image", True, False, 320, 240, 25.0, 5.0, ["not_image"]),
        ("image", True, True, 320, 240, None, None, []),
        ("video", True, False, 8000, 8000, 25.0, 5.0, ["too_large"]),
        ("video", True, False, 48, 32, 25.0, 5.0, ["too_small"]),
        ("video", True, False, 640, 100, 25.0, 5.0, ["aspect_ratio"]),
        ("video", True, False, 100, 640, 25.0, 5.0, ["aspect_ratio"]),
        ("video", True, False, 320, 240, 25.0, 0.5, ["duration_too_short"]),
        ("video", True, False, 320, 240, 25.0, 0.0, ["duration_too_short"]),
        ("video", True, False, 320, 240, 25.0, 500.0, ["duration_too_long"]),
        ("video", True, False, 320, 240, 2.0, 5.0, ["fps_out_of_range"]),
        ("video", True, False, 320, 240, 240.0, 5.0, ["fps_out_of_range"]),
        (
            "video",
            True,
            False,
            40,
            240,
            240.0,
            0.1,
            ["too_small", "aspect_ratio", "duration_too_short", "fps_out_of_range"],
        ),
    ],
)
def test_media_reasons(kind, video, image, w, h, fps, dur, expected) -> None:
    got = filters.media_reasons(
        media_kind=kind,
        has_video=video,
        is_image=image,
        width=w,
        height=h,
        fps=fps,
        duration_s=dur,
        cfg=F,
    )
    assert got == expected


@pytest.mark.parametrize(
    ("words", "lang", "score", "repeats", "expected"),
    [
        (6, "en", 0.9, 1, []),
        (1, "en", 0.9, 1, ["caption_too_short"]),
        (0, None, None, 0, ["caption_too_short"]),
        (150, "en", 0.9, 1, ["caption_too_long"]),
        (6, "fr", 0.98, 1, ["caption_language"]),
        (6, "lb", 0.2, 1, []),  # the detector is unsure: keep
        (6, "en", 0.9, 21, ["caption_templated"]),
        (6, "de", 0.9, 30, ["caption_language", "caption_templated"]),
    ],
)
def test_caption_reasons(words, lang, score, repeats, expected) -> None:
    assert (
        filters.caption_reasons(words=words, lang=lang, lang_score=score, repeats=repeats, cfg=F)
        == expected
    )


def test_language_filter_off_and_score_reasons() -> None:
    off = FilterConfig(languages=())
    assert filters.caption_reasons(words=5, lang="fr", lang_score=1.0, repeats=1, cfg=off) == []
    assert filters.score_reasons(motion_score=0.0001, black_fraction=0.0, scene_cuts=0, cfg=F) == [
        "still"
    ]
    assert filters.score_reasons(motion_score=0.0, black_fraction=1.0, scene_cuts=0, cfg=F) == [
        "black",
        "still",
    ]
    assert filters.score_reasons(motion_score=0.05, black_fraction=0.0, scene_cuts=2, cfg=F) == []
    reject = FilterConfig(scene_cut="reject")
    assert filters.score_reasons(
        motion_score=0.05, black_fraction=0.0, scene_cuts=2, cfg=reject
    ) == ["scene_cut"]
    assert filters.ordered(["duplicate_near", "still", "too_small"]) == [
        "too_small",
        "still",
        "duplicate_near",
    ]
    with pytest.raises(ValueError):
        filters.ordered(["nonsense"])


@pytest.mark.parametrize(
    ("rc", "frames", "expected_frames", "stderr", "reason"),
    [
        (0, 8, 8, "", None),
        (1, 0, 8, "Invalid data found when processing input", "undecodable"),
        (1, 0, 8, "stream 0, offset 0x9cf: partial file", "truncated"),
        (0, 4, 8, "stream 0, offset 0x9cf: partial file", "truncated"),
        (1, 3, 8, "error", "truncated"),
        (0, 2, 40, "some decoder complaint", "truncated"),
        (0, 2, 40, "", None),
    ],
)
def test_decode_reason(rc, frames, expected_frames, stderr, reason) -> None:
    assert (
        filters.decode_reason(
            returncode=rc, frames=frames, expected_frames=expected_frames, stderr=stderr
        )
        == reason
    )


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Aerial view of beach in 4K. Stock Footage", "Aerial view of beach."),
        (
            "Woman running in park, sport, fitness, health, lifestyle, outdoor",
            "Woman running in park",
        ),
        ("Red circle moves left!!! ID 1234567", "Red circle moves left!"),
        ("Sunset over the sea 1080p HD ...", "Sunset over the sea."),
        ("red, green and blue balls", "red, green and blue balls"),
        ("&quot;Happy dog&quot; jumping - 60fps - 4k uhd", "Happy dog jumping"),
        (
            "Typing on a keyboard. business, technology, computer, work, office",
            "Typing on a keyboard.",
        ),
        ("Slow motion. Water drops.", "Slow motion. Water drops."),
        ("Video 12345678", ""),
        ("  Mountain   lake ,, at dawn  ", "Mountain lake, at dawn"),
        (None, ""),
        # boilerplate segments left once ids, resolutions and phrases are gone
        (
            "Stock Footage 4K - Dog runs, left - id 3184803 - royalty free HD video",
            "Dog runs, left",
        ),
        (
            "Dog runs. 4K Ultra HD stock video clip #3184803, royalty-free, no watermark",
            "Dog runs.",
        ),
        ("Stock footage: Dog runs | HD 1080p | ID 3184803 | Download now", "Dog runs"),
        ("Cat - playful - asleep", "Cat - playful - asleep"),  # descriptive segments stay
        ("Editorial use only - Crowd at a concert", "Crowd at a concert"),
    ],
)
def test_clean_caption(raw, clean) -> None:
    assert captions.clean_caption(raw, ("stock footage", "footage"), 4) == clean


def test_caption_counts_language_and_words() -> None:
    counts = captions.caption_counts(["Abstract background.", "abstract  BACKGROUND", "A dog", ""])
    assert counts["abstract background"] == 2 and "" not in counts
    assert captions.word_count("A red ball, rolling!") == 4
    assert captions.detect_language("A red ball rolls slowly across the wooden table")[0] == "en"
    lang, p = captions.detect_language("Une balle rouge roule lentement sur la table en bois")
    assert lang == "fr" and p > 0.9
    assert captions.detect_language("12345 !!!") == (None, None)


def test_hamming_and_near_index() -> None:
    assert dedup.hamming("ff00", "ff01") == 1 and dedup.hamming("0" * 16, "f" * 16) == 64
    idx = dedup.NearIndex(64, 6)
    idx.add("a", "0" * 16)
    idx.add("b", "f" * 16)
    assert idx.query("0" * 15 + "7") == ("a", 3)  # 3 bits away from a
    assert idx.query("00000000ffffffff") is None  # 32 bits from both
    # every distance up to the threshold is found whatever bits differ (pigeonhole bands)
    rng = np.random.default_rng(0)
    base = int(rng.integers(0, 2**63))
    idx = dedup.NearIndex(64, 6)
    idx.add("base", f"{base:016x}")
    for d in range(0, 7):
        bits = rng.choice(64, size=d, replace=False)
        other = base ^ sum(1 << int(b) for b in bits)
        assert idx.query(f"{other:016x}") == ("base", d)


def test_near_duplicates_must_share_colours() -> None:
    blue, grey = ((150.0, 110.0),), ((128.0, 128.0),)
    assert dedup.colour_close(blue, ((155.0, 105.0),), 12) and not dedup.colour_close(
        blue, grey, 12
    )
    assert dedup.colour_close(None, grey, 12)  # unknown colour never blocks
    idx = dedup.NearIndex(64, 6, max_colour_diff=12)
    idx.add("blue", "0" * 16, blue)
    assert idx.query("0" * 15 + "1", grey) is None  # same grey structure, other colours
    assert idx.query("0" * 15 + "1", ((140.0, 118.0),)) == ("blue", 1)
    D = dedup.DedupItem
    items = [D("a.0", "a", "s1", "a", "0" * 16, blue), D("b.0", "b", "s2", "b", "0" * 16, grey)]
    assert dedup.find_duplicates(items, DedupConfig()) == {}


def test_find_duplicates_order_and_kinds() -> None:
    D = dedup.DedupItem
    items = [
        D("a.0", "a", "s1", "id1", "0" * 16),
        D("b.0", "b", "s1", "id2", "f" * 16),
        D("c.0", "c", "s3", "id1", "3" * 16),
        D("d.0", "d", "s4", "id4", "0" * 15 + "1"),
        D("e.0", "e", None, None, None),
    ]
    out = dedup.find_duplicates(items, DedupConfig())
    assert out == {
        "b.0": dedup.Duplicate("duplicate_exact", "a", None),
        "c.0": dedup.Duplicate("duplicate_source_id", "a", None),
        "d.0": dedup.Duplicate("duplicate_near", "a", 1),
    }
    assert dedup.find_duplicates(items, DedupConfig(exact=False, near=False, source_id=False)) == {}


def test_scores_motion_black_scene_phash() -> None:
    rng = np.random.default_rng(1)
    still = np.repeat(rng.integers(0, 255, (1, 64, 64), dtype=np.uint8), 8, axis=0)
    assert scores.motion_score(still) == 0.0 and scores.black_fraction(still, 24, 3) == 0.0
    black = np.zeros((8, 64, 64), np.uint8)
    assert scores.black_fraction(black, 24, 3) == 1.0
    flat = np.full((4, 64, 64), 200, np.uint8)
    assert scores.black_fraction(flat, 24, 3) == 1.0  # blank, not dark
    a, b = rng.integers(0, 255, (2, 1, 64, 64), dtype=np.uint8)
    cut = np.concatenate([np.repeat(a, 4, 0), np.repeat(b, 4, 0)])
    s = scores.scene_scores(cut)
    assert len(s) == 7 and s.argmax() == 3 and s[3] > 0.3 and (np.delete(s, 3) == 0).all()
    # steady motion is not a cut: equal differences every step
    ramp = np.stack([np.roll(a[0], 2 * i, axis=1) for i in range(8)])
    assert scores.scene_scores(ramp)[1:].max() < 0.1
    assert scores.pick_frames(8, 4) == [1, 3, 5, 7] and scores.pick_frames(2, 4) == [0, 1]
    h = scores.phash(cut, 4)
    assert len(h) == 64 and h == scores.phash(cut.copy(), 4)
    brighter = np.clip(cut.astype(int) + 10, 0, 255).astype(np.uint8)
    assert dedup.hamming(h, scores.phash(brighter, 4)) <= 8


def _probe(**kw) -> ProbeInfo:
    base = dict(
        container="mov,mp4,m4a,3gp,3g2,mj2",
        codec="h264",
        pix_fmt="yuv420p",
        width=256,
        height=144,
        rotation=0,
        fps=25.0,
        duration_s=5.0,
        num_frames=125,
        bitrate=None,
        has_audio=False,
        has_video=True,
        is_image=False,
        bytes=1000,
        moov_first=True,
    )
    return ProbeInfo(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "kind", "size"),
    [
        ({}, "copy", (256, 144)),
        ({"moov_first": False}, "remux", (256, 144)),
        ({"has_audio": True}, "remux", (256, 144)),
        ({"width": 1280, "height": 720}, "transcode", (456, 256)),
        ({"width": 65, "height": 47}, "transcode", (64, 48)),
        ({"codec": "hevc"}, "transcode", (256, 144)),
        ({"pix_fmt": "yuv444p"}, "transcode", (256, 144)),
        ({"rotation": 90, "width": 144, "height": 256}, "transcode", (144, 256)),
        ({"fps": 60.0}, "transcode", (256, 144)),
        ({"duration_s": 100.0}, "transcode", (256, 144)),
        ({"container": "matroska,webm"}, "transcode", (256, 144)),
    ],
)
def test_plan_video(kw, kind, size) -> None:
    plan = plan_video(_probe(**kw), TransformConfig())
    assert plan.kind == kind and (plan.width, plan.height) == size
    assert even_size(*size, 256) == size


def test_plan_video_caps_fps_and_trims() -> None:
    plan = plan_video(_probe(fps=60.0, duration_s=100.0), TransformConfig())
    assert (plan.fps, plan.trim_s) == (30.0, 60.0)
    assert plan_video(_probe(), TransformConfig(allow_copy=False)).kind == "transcode"


def _sample(n: int) -> writer.Sample:
    return writer.Sample(media="x", ext="mp4", caption="c", meta={"a": 1}, row={}, media_bytes=n)


def test_plan_shards_rolls_on_count_and_bytes() -> None:
    by_count = writer.plan_shards([_sample(10)] * 7, "train", "video", 3, 10**9)
    assert [len(p.samples) for p in by_count] == [3, 3, 1] and [p.name for p in by_count] == [
        "00000",
        "00001",
        "00002",
    ]
    per = writer.sample_tar_bytes(_sample(5000))  # 3 headers + 5120 + 512 + 512 of data
    assert per == 3 * 512 + 5120 + 512 + 512
    by_bytes = writer.plan_shards(
        [_sample(5000)] * 5, "train", "video", 100, 2 * per + 2 * 512 + 10240
    )
    assert [len(p.samples) for p in by_bytes] == [2, 2, 1]
    lone = writer.plan_shards([_sample(10**6)], "val", "video", 100, 1000)
    assert len(lone) == 1 and lone[0].key(0) == "000000000"
