"""Near-duplicate colour check: a chroma grid, not a whole-frame mean, on real JPEGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from webvid.shards import dedup, scores
from webvid.shards.images import process_image
from webvid.shards.recipe import DedupConfig, ImageConfig
from webvid.synth.catalog import RenderSpec
from webvid.synth.media import MediaParams, render_frames


def _shape(path: Path, colour: str, size: int = 160) -> Path:
    """A demo-site still: a small shape on a textured black background (the failing case)."""
    spec = RenderSpec(colour, "square", "black", None, "image", 0.25, 0.5, 0.5, texture=7)
    params = MediaParams(width=size, height=size * 3 // 4)
    Image.fromarray(next(iter(render_frames(spec, params)))).save(path, quality=90)
    return path


def _item(tmp: Path, name: str, path: Path) -> dedup.DedupItem:
    res = process_image(path, ImageConfig(), 10**8, 64, None)
    sig = scores.colour_signature(res.chroma, 4)
    colour = tuple(tuple(frame) for frame in sig)
    return dedup.DedupItem(f"{name}.0", name, name, name, scores.phash(res.frames, 4), colour)


def test_chroma_grid_cells_and_shape() -> None:
    uv = np.zeros((2, 2, 8, 8), np.uint8)
    uv[1, 0, :4, :4] = 200  # frame 1, U, top-left quarter
    grid = scores.chroma_grid(uv, 2)
    assert grid.shape == (2, 8)
    assert grid[0].tolist() == [0.0] * 8
    assert grid[1].tolist() == [200.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert scores.chroma_grid(np.zeros((1, 2, 3, 3), np.uint8)).shape == (1, 18)  # grid <= size


def test_small_shapes_of_other_colours_are_not_near_duplicates(tmp_path: Path) -> None:
    white = _item(tmp_path, "white", _shape(tmp_path / "white.jpg", "white"))
    purple = _item(tmp_path, "purple", _shape(tmp_path / "purple.jpg", "purple"))
    # the same white picture, smaller and recompressed: a true near-duplicate
    Image.open(tmp_path / "white.jpg").resize((200, 150)).save(tmp_path / "w2.jpg", quality=40)
    again = _item(tmp_path, "white2", tmp_path / "w2.jpg")
    # the grey hash alone cannot tell white from purple here , nor can whole-frame means
    assert dedup.hamming(white.phash, purple.phash) <= 6
    assert dedup.colour_close(
        tuple(dedup._frame_mean(f) for f in white.colour),
        tuple(dedup._frame_mean(f) for f in purple.colour),
        12,
    )
    found = dedup.find_duplicates([white, purple, again], DedupConfig())
    assert set(found) == {"white2.0"} and found["white2.0"].of == "white"


def test_colour_signatures_of_other_grids_compare_by_frame_mean() -> None:
    legacy = ((150.0, 110.0),)  # a staging cache written with whole-frame means
    grid = ((150.0, 110.0) * 16,)
    assert dedup.colour_close(legacy, grid, 12)
    assert not dedup.colour_close(legacy, ((128.0, 128.0) * 16,), 12)
    assert not dedup.colour_close(grid, grid + grid, 12)  # other frame count: not the same clip
