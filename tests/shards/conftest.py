"""Fixtures for the shard stage: generated media (made once per session) and crawl dirs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from webvid.shards import recipe
from webvid.shards.recipe import ShardRecipe
from webvid.synth import crawl_dir as synth

#: Test recipe: tiny 64x48 media pass the size filter; small shards so rolling over is exercised.
TEST_OVERRIDES = (
    "filters.min_short_side=32",
    "output.max_samples=3",
    "workers=1",
    "output.report=false",
)


@pytest.fixture(scope="session")
def shards_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small clips: seven distinct moving ones, a still, a black one, a two-scene one, a re-encode."""
    d = tmp_path_factory.mktemp("shards-media")
    media = {f"moving{i}": synth.make_video(d / f"moving{i}.mp4", seed=i + 1) for i in range(7)}
    media["still"] = synth.make_video(d / "still.mp4", "still", seed=7)
    media["black"] = synth.make_video(d / "black.mp4", "black")
    media["cut"] = synth.make_video(d / "cut.mp4", "cut", seed=9, duration=3.0)
    # the same picture as moving0 at another resolution and bitrate: a near-duplicate
    near = d / "near0.mp4"
    synth.make_reencode(media["moving0"], near)
    media["near0"] = near
    return media


@pytest.fixture
def shards_recipe() -> Callable[..., ShardRecipe]:
    def make(*overrides: str, path: str | None = None) -> ShardRecipe:
        return recipe.load(path, [*TEST_OVERRIDES, *overrides])

    return make


@pytest.fixture
def make_crawl(tmp_path: Path) -> Callable[..., Path]:
    counter = {"n": 0}

    def make(entries: Sequence[synth.Entry], name: str | None = None) -> Path:
        counter["n"] += 1
        return synth.write_crawl_dir(tmp_path / (name or f"crawl{counter['n']}"), entries)

    return make


@pytest.fixture
def standard_crawl(make_crawl: Callable[..., Path], shards_media: dict[str, Path]) -> Path:
    return make_crawl(standard_entries(shards_media), "standard")


def standard_entries(media: dict[str, Path]) -> list[synth.Entry]:
    """Six good clips, a still, a black clip, an exact and a near duplicate, a French caption,
    a boilerplate caption and a failed download: the funnel in miniature."""
    E = synth.Entry
    captions = [
        "A red ball rolls across a wooden table",
        "Clouds drift over a green valley at dawn",
        "A cyclist rides along a coastal road",
        "Waves break slowly on a sandy beach",
        "A small boat sails past a lighthouse",
        "Children play football in a park",
    ]
    entries = [E(f"clip{i}", c, media[f"moving{i}"]) for i, c in enumerate(captions)]
    entries[5] = E(
        "clip5",
        "Children play football in a park. 4K stock footage, sport, kids, fun, summer",
        media["moving5"],
    )
    return entries + [
        E("still0", "A quiet room with nothing moving at all", media["still"]),
        E("black0", "A night scene where the screen stays dark", media["black"]),
        E("zdup0", "The same red ball again on the table", media["moving0"]),
        E("znear0", "The ball on the table once more, sharper", media["near0"]),
        E("french0", "Une balle rouge roule lentement sur une table en bois", media["moving6"]),
        E("gone0", "A clip that never arrived", None, status="failed_to_download"),
    ]
