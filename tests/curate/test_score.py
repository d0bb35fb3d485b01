"""webvid score: a tiny random model scores generated shards; every value checked by brute force.

The brute force embeds the same shards through the evaluator in one stream (batches crossing
shard boundaries, unlike the per-shard parts), builds the full similarity matrices and counts
ranks and neighbours itself.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from webvid import contract
from webvid.clips.sample import ClipOptions, Tokenize
from webvid.curate.parts import EmbedOptions, parts_dir
from webvid.curate.score import TIE, ScoreOptions, ranks, score
from webvid.errors import ConfigError
from webvid.model.build import data_stats, load_for_inference
from webvid.query import open_readonly
from webvid.retrieval.evaluate import embed, make_stream


def brute_force(ckpt: Path, shards: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    model = load_for_inference(ckpt)
    stats = data_stats(ckpt)
    opts = ClipOptions(size=model.config.img_size, train=False, short_side=stats["short_side"])
    emb = embed(
        model,
        make_stream(shards, "video", 4, opts),
        Tokenize(model.config.tokenizer_ref, stats["max_text_len"]),
        device=torch.device("cpu"),
        mean=stats["mean"],
        std=stats["std"],
        batch_size=5,
    )
    v = torch.nn.functional.normalize(emb.video, dim=1).numpy()
    t = torch.nn.functional.normalize(emb.text, dim=1).numpy()
    return emb.keys, v, t


@pytest.fixture(scope="module")
def scored(tiny_ckpt: Path, clip_shards: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scored") / "scores.parquet"
    score(tiny_ckpt, clip_shards, out, ScoreOptions(embed=EmbedOptions(batch_size=2)))
    return out


def test_columns_and_values_match_a_brute_force_computation(
    scored: Path, tiny_ckpt: Path, clip_shards: Path
) -> None:
    table = pq.read_table(scored)
    assert table.schema.names == contract.SCORES_SCHEMA.names
    rows = table.to_pylist()
    keys, v, t = brute_force(tiny_ckpt, clip_shards)
    assert [r["key"] for r in rows] == keys and len(keys) == 12
    assert [r["shard"] for r in rows] == [k[:5] for k in keys]
    cos = (v * t).sum(1)
    np.testing.assert_allclose([r["caption_cosine"] for r in rows], cos, atol=1e-5)
    s = v @ t.T  # clip i × caption j
    # captions 0 and 10 are the same text: a tie, not closer (score.TIE)
    cap_rank = 1 + (s > np.diag(s)[:, None] + TIE).sum(1)
    clip_rank = 1 + (s > np.diag(s)[None, :] + TIE).sum(0)
    assert [r["caption_rank"] for r in rows] == cap_rank.tolist()
    assert [r["clip_rank"] for r in rows] == clip_rank.tolist()
    worst = np.maximum(cap_rank, clip_rank)
    np.testing.assert_allclose([r["caption_agreement"] for r in rows], 1 - (worst - 1) / 11)
    assert {r["rank_pool"] for r in rows} == {12}
    vv = v @ v.T
    np.fill_diagonal(vv, -np.inf)
    for i, r in enumerate(rows):
        near = np.argsort(-vv[i], kind="stable")[:5]
        assert r["neighbor_ids"] == [keys[j] for j in near]  # no sample table: clip id = key
        np.testing.assert_allclose(r["neighbor_distances"], 1 - vv[i, near], atol=1e-5)
        assert r["semantic_group_rank"] >= 1 and r["broken"] is None
    meta = json.loads(table.schema.metadata[contract.SCORES_META_KEY])
    assert meta["checkpoint"] == str(tiny_ckpt.resolve()) and meta["shards"] == 4


def test_ranks_are_exact_up_to_the_pool_and_estimated_above() -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((300, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    t = v + 0.8 * rng.standard_normal((300, 8)).astype(np.float32)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    own = (v * t).sum(1)
    s = v @ t.T
    exact_c = 1 + (s > np.diag(s)[:, None] + TIE).sum(1)
    rc, rv, pool = ranks(v, t, own, pool=300, block=64)
    assert pool == 300 and rc.tolist() == exact_c.tolist()
    assert rv.tolist() == (1 + (s > np.diag(s)[None, :] + TIE).sum(0)).tolist()
    est_c, _, pool = ranks(v, t, own, pool=100, block=64)
    assert pool == 100
    assert np.corrcoef(est_c, exact_c)[0, 1] > 0.9  # a sampled estimate of the same ranks
    assert np.abs(est_c - exact_c).mean() < 0.1 * 300


def test_a_broken_sample_gets_a_row_without_scores(tiny_ckpt: Path, clip_shards: Path, tmp_path):
    shards = tmp_path / "shards"
    shutil.copytree(clip_shards, shards)
    with tarfile.open(shards / "00004.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("000040000.mp4", b"not a video"), ("000040000.txt", b"a caption")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "scores.parquet"
    res = score(tiny_ckpt, shards, out)
    rows = pq.read_table(out).to_pylist()
    assert res["samples"] == 13 and res["broken"] == 1
    assert rows[-1]["key"] == "000040000" and rows[-1]["broken"]
    assert rows[-1]["caption_cosine"] is None and rows[-1]["semantic_group"] is None


def test_another_plan_is_refused(tiny_ckpt: Path, clip_shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    score(tiny_ckpt, clip_shards, out)
    with pytest.raises(ConfigError, match="another scoring run"):
        score(tiny_ckpt, clip_shards, out, ScoreOptions(embed=EmbedOptions(frames=2)))
    assert (parts_dir(out) / "plan.json").is_file()


def test_cli_scores_a_shard_set_and_query_joins_it(
    run_cli, shard_set: Path, tiny_ckpt: Path, tmp_path: Path
) -> None:
    """A `webvid shard` set scored from the command line (mp4 clips decoded by two workers);
    `scores` joins `samples`/`verdicts`."""
    root = tmp_path / "data"
    shutil.copytree(shard_set, root / "shards")
    code, out, err = run_cli(
        ["score", str(tiny_ckpt), str(root / "shards"), "--out", str(root / "scores.parquet"),
         "--workers", "2"]
    )  # fmt: skip
    assert code == 0, err
    assert "scored 6 samples of 3 shards" in " ".join(out.split())
    con = open_readonly(root)
    joined = con.sql(
        "SELECT s.clip_id, s.key, v.caption, c.caption_cosine, c.semantic_group "
        "FROM scores c JOIN samples s USING (clip_id, key) JOIN verdicts v USING (clip_id) "
        "ORDER BY s.key"
    ).fetchall()
    assert len(joined) == 6 and all(r[0].startswith("clip") for r in joined)
    assert all(r[3] is not None for r in joined)
    split = con.sql("SELECT DISTINCT split FROM scores").fetchall()
    assert split == [("train",)]


def test_out_must_be_parquet(tiny_ckpt: Path, clip_shards: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.parquet"):
        score(tiny_ckpt, clip_shards, tmp_path / "scores.csv")
