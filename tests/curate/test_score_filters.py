"""Filters on model scores: thresholds in [filters], `webvid shard --scores`, and `webvid refilter`
rewriting only the shards that lose samples (the others byte-identical).

The scores table here is written by hand (the values a model would give are not the point):
clip3's caption disagrees with its clip (agreement 0.2), clip0 and clip2 are one semantic
group where clip0 comes first by the keep rule.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from webvid import contract
from webvid.curate.refilter import refilter
from webvid.errors import ConfigError, InputError
from webvid.io import read_json
from webvid.shards import filters, recipe
from webvid.shards.modelscores import ModelScore, semantic_excess

from .conftest import SHARD_OVERRIDES

AGREEMENT = {"clip0": 0.9, "clip1": 0.8, "clip2": 0.7, "clip3": 0.2, "clip4": 0.95, "clip5": 0.6}
GROUP = {"clip0": ("clip0", 1), "clip2": ("clip0", 2)}
FILTERS = ("filters.min_caption_agreement=0.5", "filters.max_per_semantic_cluster=1")


def write_scores(path: Path) -> Path:
    rows = []
    for cid, agreement in AGREEMENT.items():
        group, rank = GROUP.get(cid, (cid, 1))
        rows.append(
            {
                "clip_id": cid,
                "shard": "00000",
                "key": "000000000",
                "caption_cosine": agreement / 2,
                "caption_agreement": agreement,
                "semantic_group": group,
                "semantic_group_rank": rank,
                "semantic_group_size": 2 if cid in GROUP else 1,
            }
        )
    pq.write_table(contract.rows_to_table(rows, contract.SCORES_SCHEMA), path)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _members(tar: Path) -> set[str]:
    with tarfile.open(tar) as tf:
        return {m.name.split(".", 1)[0] for m in tf.getmembers()}


@pytest.mark.parametrize(
    ("agreement", "cosine", "expected"),
    [
        (0.49, 0.3, ["caption_mismatch"]),
        (0.5, 0.3, []),
        (0.9, 0.09, ["caption_mismatch"]),
        (None, None, []),  # no scores: not judged
    ],
)
def test_model_reasons_by_threshold(agreement, cosine, expected) -> None:
    cfg = recipe.FilterConfig(min_caption_agreement=0.5, min_caption_cosine=0.1)
    assert (
        filters.model_reasons(caption_agreement=agreement, caption_cosine=cosine, cfg=cfg)
        == expected
    )


def test_semantic_excess_keeps_the_first_by_rank() -> None:
    s = {
        "a": ModelScore(0.5, 0.9, "g", 2),
        "b": ModelScore(0.5, 0.9, "g", 1),
        "c": ModelScore(0.5, 0.9, "g", 3),
        "d": ModelScore(0.5, 0.9, "d", 1),
    }
    assert semantic_excess(s.items(), 1) == {"a": "b", "c": "b"}
    assert semantic_excess(s.items(), 2) == {"c": "b"}
    assert semantic_excess(s.items(), None) == {}


def test_score_filters_need_a_scores_table() -> None:
    with pytest.raises(ConfigError, match="scores table"):
        recipe.load(None, ["filters.min_caption_agreement=0.5"])
    with pytest.raises(ConfigError, match="min_caption_agreement"):
        recipe.load(None, ["filters.min_caption_agreement=1.5", 'scores="s.parquet"'])


def test_shard_with_scores_rejects_by_threshold_and_stores_every_score(
    run_cli, crawl: Path, tmp_path: Path
) -> None:
    scores = write_scores(tmp_path / "scores.parquet")
    out = tmp_path / "shards"
    sets = [a for s in (*SHARD_OVERRIDES, *FILTERS) for a in ("--set", s)]
    code, _, err = run_cli(["shard", str(crawl), "-o", str(out), "--scores", str(scores), *sets])
    assert code == 0, err
    rows = {r["clip_id"]: r for r in pq.read_table(out / contract.VERDICTS_NAME).to_pylist()}
    assert rows["clip3"]["reason"] == "caption_mismatch" and not rows["clip3"]["kept"]
    assert rows["clip2"]["reason"] == "duplicate_semantic"
    assert rows["clip2"]["duplicate_of"] == "clip0"
    assert {c for c, r in rows.items() if r["kept"]} == {"clip0", "clip1", "clip4", "clip5"}
    for cid, r in rows.items():  # stored whether or not it rejects
        assert r["caption_agreement"] == AGREEMENT[cid]
        assert r["semantic_group"] == GROUP.get(cid, (cid, 1))[0]
    manifest = read_json(out / contract.MANIFEST_NAME)
    assert manifest["counts"]["rejected_caption_mismatch"] == 1
    assert manifest["counts"]["rejected_duplicate_semantic"] == 1


def test_refilter_rewrites_only_the_shards_that_lose_samples(
    run_cli, shard_set: Path, tmp_path: Path
) -> None:
    root = tmp_path / "shards"
    shutil.copytree(shard_set, root)
    scores = write_scores(tmp_path / "scores.parquet")
    tars = sorted((root / "train").glob("*.tar"))
    assert [t.stem for t in tars] == ["00000", "00001", "00002"]
    before = {p.name: _sha(p) for p in (root / "train").iterdir()}
    old = {r["clip_id"]: r for r in pq.read_table(root / contract.VERDICTS_NAME).to_pylist()}
    assert old["clip2"]["shard"] == old["clip3"]["shard"] == "00001"  # placed by clip id

    dry = refilter(root, scores, recipe.load(None, [*FILTERS, f'scores="{scores}"']).filters,
                   dry_run=True)  # fmt: skip
    assert dry["removed"] == 2 and {p.name: _sha(p) for p in (root / "train").iterdir()} == before

    sets = [a for s in FILTERS for a in ("--set", s)]
    code, out, err = run_cli(["refilter", str(root), "--scores", str(scores), *sets])
    assert code == 0, err
    after = {p.name: _sha(p) for p in (root / "train").iterdir()}
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"00001.tar", "00001.parquet", "00001_stats.json"}
    assert _members(root / "train" / "00001.tar") == set()
    assert pq.read_table(root / "train" / "00001.parquet").num_rows == 0
    rows = {r["clip_id"]: r for r in pq.read_table(root / contract.VERDICTS_NAME).to_pylist()}
    assert rows["clip3"]["reasons"] == ["caption_mismatch"] and rows["clip3"]["key"] is None
    assert rows["clip3"]["detail"].startswith(f"was {old['clip3']['key']} in train/00001")
    assert rows["clip2"]["reason"] == "duplicate_semantic"
    assert rows["clip2"]["duplicate_of"] == "clip0"
    assert all(r["caption_agreement"] == AGREEMENT[c] for c, r in rows.items())
    assert {c for c, r in rows.items() if r["kept"]} == {"clip0", "clip1", "clip4", "clip5"}
    index = {r["shard"]: r["count"] for r in pq.read_table(root / "index.parquet").to_pylist()}
    assert index == {"00000": 2, "00001": 0, "00002": 2}
    manifest = read_json(root / contract.MANIFEST_NAME)
    assert manifest["counts"]["kept"] == 4 and manifest["counts"]["samples_train"] == 4
    assert manifest["counts"]["rejected_caption_mismatch"] == 1
    assert manifest["config"]["filters"]["max_per_semantic_cluster"] == 1

    # a second run changes nothing at all
    snapshot = {p: _sha(p) for p in root.rglob("*") if p.is_file()}
    code, out, err = run_cli(["refilter", str(root), "--scores", str(scores), *sets])
    assert code == 0, err
    assert '"removed": 0' in out
    assert {p: _sha(p) for p in root.rglob("*") if p.is_file()} == snapshot


def test_refilter_refuses_a_folder_that_is_not_a_shard_dir(tmp_path: Path) -> None:
    scores = write_scores(tmp_path / "scores.parquet")
    cfg = recipe.FilterConfig(min_caption_agreement=0.5)
    with pytest.raises(InputError, match="not a finished shard dir"):
        refilter(tmp_path, scores, cfg)
