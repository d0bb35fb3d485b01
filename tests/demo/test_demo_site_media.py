"""Generated demo media: probed and decoded with real ffmpeg; caching and determinism."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from webvid.synth.catalog import Catalog, build_catalog
from webvid.synth.media import MediaParams, background_frame, build_media, render_frames
from webvid.synth.palette import BACKGROUNDS, COLOURS


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def decode(path: Path, indices: list[int], w: int, h: int) -> np.ndarray:
    """Frames ``indices`` of a clip as an (n, h, w, 3) uint8 array, decoded by ffmpeg."""
    select = "+".join(f"eq(n\\,{i})" for i in indices)
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"select={select}", "-vsync", "0"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(len(indices), h, w, 3)


def centroid(frame: np.ndarray, background: np.ndarray) -> tuple[float, float]:
    """(x, y) centre of the pixels that are clearly not background."""
    diff = np.abs(frame.astype(int) - background.astype(int)).sum(axis=2)
    ys, xs = np.nonzero(diff > 60)
    assert len(xs) > 50, "no shape found in the frame"
    return float(xs.mean()), float(ys.mean())


def test_clips_probe_as_h264_with_the_configured_size_and_duration(demo_site):
    cfg = demo_site.config
    for item in demo_site.items("video"):
        path = demo_site.state.media.clips[item["clip_id"]]
        data = path.read_bytes()
        assert data[4:8] == b"ftyp"
        info = probe(path)
        (stream,) = info["streams"]
        if item["fault"] == "corrupt":  # the header probes fine; no frame decodes
            cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-"]
            bad = subprocess.run(cmd, capture_output=True)
            assert stream["codec_name"] == "h264" and bad.returncode != 0 and bad.stdout == b""
            assert b"Invalid NAL unit size" not in bad.stderr  # garbage, not a cut-off file
            continue
        assert stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p"
        scale = 3 / 4 if item["fault"] == "near_duplicate" else 1  # re-encoded smaller
        assert (stream["width"], stream["height"]) == (cfg.width * scale, cfg.height * scale)
        assert data.find(b"moov") < data.find(b"mdat")  # +faststart
        duration = float(info["format"]["duration"])
        if item["fault"] == "too_short":
            assert duration < 1.0
        else:
            assert duration == pytest.approx(cfg.clip_seconds, abs=0.05)
            assert int(stream["nb_frames"]) == round(cfg.clip_seconds * cfg.fps)


def test_shapes_move_in_the_stated_direction(demo_site):
    cfg = demo_site.config
    n = round(cfg.clip_seconds * cfg.fps)
    checked: dict[str, int] = {}
    for item in demo_site.items("video"):
        if (
            item["fault"] in ("corrupt", "still", "too_short", "near_duplicate")
            or checked.get(item["direction"]) == 3
        ):
            continue  # three clips per direction are enough: one generator draws them all
        path = demo_site.state.media.clips[item["clip_id"]]
        first, last = decode(path, [1, n - 2], cfg.width, cfg.height)
        bg = background_frame(demo_site.state.catalog.by_id[item["clip_id"]].render, params(cfg))
        (x0, y0), (x1, y1) = centroid(first, bg), centroid(last, bg)
        dx, dy = x1 - x0, y1 - y0
        along, across, extent = {
            "right": (dx, dy, cfg.width),
            "left": (-dx, dy, cfg.width),
            "down": (dy, dx, cfg.height),
            "up": (-dy, dx, cfg.height),
        }[item["direction"]]
        # the shape crosses most of the frame along the stated direction, and only that way
        assert along > 0.5 * extent, (item["caption"], dx, dy)
        assert abs(across) < 2, (item["caption"], dx, dy)
        assert item["direction"] in item["caption"].lower() or item["fault"] == "non_english"
        checked[item["direction"]] = checked.get(item["direction"], 0) + 1
    assert checked == {"left": 3, "right": 3, "up": 3, "down": 3}


def test_still_and_short_and_duplicate_clips(demo_site):
    cfg = demo_site.config
    store = demo_site.state.media
    still = demo_site.items("video", "still")[0]
    frames = decode(store.clips[still["clip_id"]], [0, 17, 35], cfg.width, cfg.height)
    bg = background_frame(demo_site.state.catalog.by_id[still["clip_id"]].render, params(cfg))
    c = [centroid(f, bg) for f in frames]
    assert max(abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in zip(c, c[1:], strict=False)) < 0.5
    assert still["direction"] is None
    dup = demo_site.items("video", "duplicate")[0]
    twin = next(t for t in demo_site.truth if t["clip_id"] == dup["duplicate_of"])
    assert twin["fault"] is None and dup["clip_id"] != twin["clip_id"]
    assert store.clips[dup["clip_id"]].read_bytes() == store.clips[twin["clip_id"]].read_bytes()
    near = demo_site.items("video", "near_duplicate")[0]
    twin_file = store.clips[near["duplicate_of"]]
    assert store.clips[near["clip_id"]].read_bytes() != twin_file.read_bytes()
    w, h = cfg.width * 3 // 4, cfg.height * 3 // 4
    small = decode(store.clips[near["clip_id"]], [6], w, h)[0][::3, ::3].astype(int)
    big = decode(twin_file, [6], cfg.width, cfg.height)[0][::4, ::4].astype(int)
    assert np.abs(small - big).mean() < 12  # the same picture, 3/4 the size
    short = demo_site.items("video", "too_short")[0]
    assert int(probe(store.clips[short["clip_id"]])["streams"][0]["nb_frames"]) < cfg.fps


def test_images_are_jpegs_of_the_stated_colours(demo_site):
    from PIL import Image

    cfg = demo_site.config
    for item in demo_site.items("image")[:6]:
        spec = demo_site.state.catalog.by_id[item["clip_id"]].render
        with Image.open(demo_site.state.media.images[item["clip_id"]]) as im:
            assert im.format == "JPEG" and im.size == (cfg.width, cfg.height)
            got = np.asarray(im.convert("RGB")).astype(int)
        drawn = next(iter(render_frames(spec, params(cfg)))).astype(int)
        assert np.abs(got - drawn).mean() < 4  # the JPEG is the drawn frame
        # mostly the named background colour, the named shape colour where the shape is
        bg, fg = np.array(BACKGROUNDS[item["background"]]), np.array(COLOURS[item["colour"]])
        near_bg = np.abs(got - bg).max(axis=2) <= 30
        near_fg = np.abs(got - fg).max(axis=2) <= 30
        assert near_bg.mean() > 0.6 and 0.03 < near_fg.mean() < 0.4


def params(cfg) -> MediaParams:
    return cfg.media_params()


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_second_build_reuses_every_file_and_repairs_a_missing_one(tmp_path):
    catalog = build_catalog(11, 6, 3, faults=False)
    first = build_media(catalog, MediaParams(), tmp_path)
    assert (first.generated, first.reused) == (6 + 6 + 3, 0)
    before = _files(tmp_path)
    assert not [name for name in before if ".tmp-" in name]
    second = build_media(catalog, MediaParams(), tmp_path)
    assert (second.generated, second.reused) == (0, 15)
    assert _files(tmp_path) == before  # same inodes, same mtimes: nothing rewritten
    victim = second.clips[catalog.clips[2].clip_id]
    victim.unlink()
    empty = second.images[catalog.images[0].clip_id]
    empty.write_bytes(b"")  # as a crash before the page cache reached the disk could leave it
    stale = first.root / "clips" / ".tmp-abandoned.mp4"
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))  # left by a build killed long ago
    third = build_media(catalog, MediaParams(), tmp_path)
    assert (third.generated, third.reused) == (2, 13) and victim.is_file()
    assert empty.stat().st_size > 0 and not stale.exists()
    # other render parameters live under another cache key
    other = build_media(catalog, MediaParams(fps=10), tmp_path)
    assert other.generated == 15 and other.root != first.root


def test_a_clips_bytes_do_not_depend_on_its_batch(tmp_path):
    clips = build_catalog(8, 5, 0, faults=False).clips
    alone = build_media(Catalog(8, clips[-1:], ()), MediaParams(), tmp_path / "alone")
    mixed = build_media(Catalog(8, clips[::-1], ()), MediaParams(), tmp_path / "mixed")
    cid = clips[-1].clip_id
    assert alone.clips[cid].read_bytes() == mixed.clips[cid].read_bytes()


def test_same_seed_same_bytes_in_fresh_caches(tmp_path):
    catalog = build_catalog(5, 4, 2)
    a = build_media(catalog, MediaParams(), tmp_path / "a")
    b = build_media(build_catalog(5, 4, 2), MediaParams(), tmp_path / "b")
    for kind in ("clips", "thumbs", "images"):
        pa, pb = getattr(a, kind), getattr(b, kind)
        assert pa.keys() == pb.keys()
        for key in pa:
            assert pa[key].read_bytes() == pb[key].read_bytes()
