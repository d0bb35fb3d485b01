"""One palette: the training-shard generator and the demo renderer draw a name in one colour."""

from __future__ import annotations

import numpy as np

from webvid.synth import shards
from webvid.synth.catalog import RenderSpec
from webvid.synth.media import MediaParams, render_frames
from webvid.synth.palette import BACKGROUNDS, COLOURS, DIRECTIONS


def _colours(frame: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in px) for px in frame.reshape(-1, 3)}


def test_training_clips_use_the_palette():
    frame = shards.render(shards.ClipSpec("red", "square", "left", "green"), 64, 48, 2)[0]
    assert _colours(frame) == {COLOURS["red"], BACKGROUNDS["green"]}


def test_demo_clips_use_the_same_palette():
    spec = RenderSpec("red", "square", "green", "left", "move", 0.3, 0.5)
    frame = next(iter(render_frames(spec, MediaParams())))
    assert _colours(frame) == {COLOURS["red"], BACKGROUNDS["green"]}


def test_default_training_vocabulary_is_the_palette():
    assert set(shards.STEPS) == set(DIRECTIONS)
    specs = shards.random_specs(64, seed=0)
    assert {s.background for s in specs} <= set(shards.SPEC_BACKGROUNDS)
    assert {s.colour for s in specs} <= set(COLOURS)
