"""The one palette of synthetic media: colours, backgrounds, shapes and directions by name.

Takes nothing; provides the RGB values every generator in :mod:`webvid.synth` draws with (the
demo site's clips and images, the training shards of the tests and benchmarks), so that a
caption word means one colour everywhere, plus :func:`luma` to check a shape stands out.
"""

from __future__ import annotations

from typing import Final

COLOURS: Final[dict[str, tuple[int, int, int]]] = {
    "red": (230, 35, 35),
    "green": (50, 215, 70),
    "blue": (50, 110, 255),
    "yellow": (250, 220, 40),
    "white": (250, 250, 250),
    "purple": (170, 60, 220),
}
#: Backgrounds are never near-black (mean luma >= 30), so no clean clip reads as a black frame.
BACKGROUNDS: Final[dict[str, tuple[int, int, int]]] = {
    "black": (34, 34, 34),
    "grey": (128, 128, 128),
    "white": (232, 232, 232),
    "blue": (15, 30, 110),
    "green": (15, 75, 30),
}
#: Least luma difference between a shape and its background: motion must show in grey too.
MIN_LUMA_CONTRAST: Final = 55.0
SHAPES: Final[tuple[str, ...]] = ("circle", "square", "triangle", "diamond")
DIRECTIONS: Final[tuple[str, ...]] = ("left", "right", "up", "down")


def luma(rgb: tuple[int, int, int]) -> float:
    """BT.601 luma of an RGB colour (what a grey-scale analysis of the clip sees)."""
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b
