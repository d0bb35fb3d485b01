"""The demo catalogue as a table: balance, captions, fault plan, determinism (pure, no I/O)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

import pytest

from webvid import contract
from webvid.synth.catalog import (
    CLIP_FAULTS,
    IMAGE_FAULTS,
    Expected,
    appearance_combos,
    build_catalog,
)
from webvid.synth.palette import BACKGROUNDS, COLOURS, DIRECTIONS, SHAPES, luma

DIRECTION_WORD = {d: re.compile(rf"\b{d}(wards)?\b") for d in DIRECTIONS}


def test_direction_is_independent_of_appearance():
    catalog = build_catalog(5, 400, 0, faults=False)
    assert Counter(c.direction for c in catalog.clips) == {d: 100 for d in DIRECTIONS}
    by_look = Counter((c.colour, c.shape, c.background, c.direction) for c in catalog.clips)
    looks = Counter((c.colour, c.shape, c.background) for c in catalog.clips)
    for (colour, shape, bg), n in looks.items():
        # every appearance is seen moving in every direction equally often
        assert n % 4 == 0
        assert {by_look[(colour, shape, bg, d)] for d in DIRECTIONS} == {n // 4}
    for attr in ("colour", "shape", "background"):
        for value in {getattr(c, attr) for c in catalog.clips}:
            dirs = Counter(c.direction for c in catalog.clips if getattr(c, attr) == value)
            assert max(dirs.values()) == min(dirs.values()), (attr, value, dirs)
    assert all(c.colour != c.background for c in catalog.clips)
    # up to 4 x (number of appearances) clips, every (appearance, direction) is distinct
    assert len(by_look) == min(400, 4 * len(appearance_combos()))


def test_every_shape_stands_out_from_its_background():
    combos = appearance_combos()
    assert len(combos) >= 80 and {s for _, s, _ in combos} == set(SHAPES)
    assert {c for c, _, _ in combos} == set(COLOURS) and {b for _, _, b in combos} == set(
        BACKGROUNDS
    )
    for colour, _, bg in combos:
        # visible to a grey-scale motion detector; never a near-black (dark) frame
        assert abs(luma(COLOURS[colour]) - luma(BACKGROUNDS[bg])) >= 55
        assert luma(BACKGROUNDS[bg]) >= 30


def test_captions_state_colour_shape_background_and_direction():
    catalog = build_catalog(9, 200, 100, faults=False)
    templates = set()
    for c in catalog.clips:
        text = c.caption.lower()
        assert c.colour in text and c.shape in text and c.background in text, c.caption
        assert DIRECTION_WORD[c.direction].search(text), c.caption
        assert [d for d in DIRECTIONS if DIRECTION_WORD[d].search(text)] == [c.direction]
        templates.add(
            re.sub(r"\b(red|green|blue|yellow|white|purple|grey|black)\b", "C", text)[:12]
        )
    assert len(templates) >= 4  # several stock-site templates in use
    for im in catalog.images:
        text = im.caption.lower()
        assert im.colour in text and im.shape in text and im.background in text
        assert not any(DIRECTION_WORD[d].search(text) for d in DIRECTIONS)
        assert im.direction is None


@pytest.mark.parametrize(("n_clips", "copies"), [(34, 1), (300, 3)])
def test_every_fault_is_planted_with_its_expected_outcome(n_clips, copies):
    catalog = build_catalog(1, n_clips, 40)
    clip_faults = Counter(c.fault for c in catalog.clips if c.fault)
    assert clip_faults == {f: copies for f in CLIP_FAULTS}
    assert sum(clip_faults.values()) <= n_clips // 2
    assert set(Counter(i.fault for i in catalog.images if i.fault)) == set(IMAGE_FAULTS)
    for item in (*catalog.clips, *catalog.images):
        faults = CLIP_FAULTS if item.kind == "video" else IMAGE_FAULTS
        assert item.expected == (faults[item.fault] if item.fault else Expected("success"))
        assert item.expected.status in contract.STATUSES
        assert item.expected.reason is None or item.expected.reason in contract.CRAWL_REASONS
        assert item.expected.verdict is None or item.expected.verdict in contract.VERDICT_REASONS
        if item.fault == "non_english":
            assert item.language in ("es", "fr", "de") and item.caption != item.clean_caption
        elif item.fault == "boilerplate":
            assert item.clean_caption in item.caption and item.clip_id in item.caption
            assert re.search(r"stock|4k|royalty", item.caption, re.I)
        else:
            assert item.caption == item.clean_caption and item.language == "en"
        if item.fault in ("duplicate", "near_duplicate"):
            twin = catalog.by_id[item.duplicate_of]
            assert twin.fault is None and twin.clip_id < item.clip_id  # curation keeps the twin
            near = item.fault == "near_duplicate"
            assert item.render.reencode == near and twin.render == replace(
                item.render, reencode=False
            )
        assert item.page_path.startswith("/private/") == (item.fault == "robots")


def test_small_sites_plant_what_fits_and_faults_switch_off():
    for n in range(0, 8):
        catalog = build_catalog(2, n, n)
        faulty = [c for c in catalog.clips if c.fault]
        assert len(faulty) == max(0, min(n // 2, n - 2))
        # planted in priority order: robots and opt-out first
        assert {c.fault for c in faulty} == set(list(CLIP_FAULTS)[: len(faulty)])
    off = build_catalog(2, 64, 64, faults=False)
    assert not any(it.fault for it in (*off.clips, *off.images))
    with pytest.raises(ValueError):
        build_catalog(0, -1, 0)


def test_deterministic_for_a_seed_and_ids_are_safe():
    a, b, c = build_catalog(42, 50, 20), build_catalog(42, 50, 20), build_catalog(43, 50, 20)
    assert a.truth("http://x") == b.truth("http://x")
    assert a.truth() != c.truth()
    ids = [it.clip_id for it in (*a.clips, *a.images)]
    assert len(set(ids)) == len(ids)
    assert all(contract.clip_id(i) == i for i in ids)
