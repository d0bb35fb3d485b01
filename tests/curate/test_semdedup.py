"""Semantic dedup: planted near-duplicates (one embedding + small noise) are grouped, exactly as a
brute-force search groups them, one per group is kept by the rule, and neighbours are exact."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from webvid import contract
from webvid.curate.score import ScoreOptions, embedded, scores_table
from webvid.curate.semdedup import DedupParams, find_roots, semantic_dedup, union


def planted(n: int, groups: int, copies: int, dim: int = 32, noise: float = 0.02, seed: int = 0):
    """``n`` random unit vectors, then ``copies`` noisy copies of each of the first ``groups``."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, dim)).astype(np.float32)
    extra = [
        base[g] + noise * rng.standard_normal(dim).astype(np.float32)
        for g in range(groups)
        for _ in range(copies)
    ]
    emb = np.concatenate([base, np.array(extra, np.float32).reshape(-1, dim)])
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def brute_groups(emb: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the exact ``cosine >= threshold`` graph (root = smallest index)."""
    sims = emb @ emb.T
    a, b = np.nonzero(np.triu(sims >= threshold, 1))
    parent = np.arange(len(emb))
    union(parent, a, b)
    return find_roots(parent, np.arange(len(emb)))


def test_union_find_joins_chains_and_keeps_the_rest_apart() -> None:
    parent = np.arange(8)
    union(parent, np.array([5, 1, 3]), np.array([3, 0, 7]))
    assert find_roots(parent, np.arange(8)).tolist() == [0, 0, 2, 3, 4, 3, 6, 3]


@pytest.mark.parametrize("bucket_size", [10_000, 300])  # one bucket (exact), then many
def test_planted_groups_are_found_and_one_is_kept(bucket_size: int) -> None:
    n, groups, copies = 3000, 40, 3
    emb = planted(n, groups, copies)
    keep_order = np.random.default_rng(1).permutation(len(emb))
    res = semantic_dedup(emb, keep_order, DedupParams(threshold=0.95, bucket_size=bucket_size))
    if bucket_size < n:
        assert res.cluster.max() >= 9  # really split into buckets
    truth = brute_groups(emb, 0.95)
    for g in range(groups):
        members = [g, *range(n + g * copies, n + (g + 1) * copies)]
        assert len({int(res.group[m]) for m in members}) == 1, f"group {g} split"
        first = min(members, key=lambda m: keep_order[m])  # the rule: smallest keep order
        assert {int(res.group[m]) for m in members} == {first}
        assert sorted(res.group_rank[members].tolist()) == [1, 2, 3, 4]
        assert res.group_rank[first] == 1 and res.group_cosine[first] == 1.0
        assert all(res.group_size[m] == 4 for m in members)
        assert all(res.group_cosine[m] >= 0.95 for m in members)
    # nothing else is grouped, exactly as the brute-force components say
    same = res.group[:, None] == res.group[None, :]
    assert np.array_equal(same, truth[:, None] == truth[None, :])
    singles = np.arange(groups, n)
    assert (res.group_size[singles] == 1).all() and (res.group[singles] == singles).all()


def test_neighbours_are_the_exact_nearest_other_rows() -> None:
    emb = planted(400, 5, 2)
    res = semantic_dedup(emb, np.arange(len(emb)), DedupParams(neighbors=4))
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    assert np.array_equal(res.neighbor_index, np.argsort(-sims, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(
        res.neighbor_cosine, np.sort(sims, axis=1)[:, ::-1][:, :4], atol=1e-5
    )


def test_fewer_rows_than_neighbours_pad_with_minus_one() -> None:
    emb = planted(3, 0, 0)
    res = semantic_dedup(emb, np.arange(3), DedupParams(neighbors=5))
    assert (res.neighbor_index[:, :2] >= 0).all() and (res.neighbor_index[:, 2:] == -1).all()
    assert np.isnan(res.neighbor_cosine[:, 2:]).all()


def test_keep_order_must_be_a_permutation() -> None:
    with pytest.raises(ValueError, match="permutation"):
        semantic_dedup(planted(4, 0, 0), np.array([0, 0, 1, 2]), DedupParams())


def _parts(video: np.ndarray, text: np.ndarray, keys: list[str]) -> pa.Table:
    dim = video.shape[1]

    def vec(x: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), pa.float32()), dim)

    n = len(keys)
    return pa.table(
        {
            "clip_id": [f"c{k}" for k in keys],
            "shard": ["00000"] * n,
            "key": keys,
            "split": ["train"] * n,
            "caption": [f"caption {k}" for k in keys],
            "broken": [None] * n,
            "video": vec(video),
            "text": vec(text),
        }
    )


def test_scores_table_keeps_the_best_agreeing_clip_of_a_group() -> None:
    """Three re-renders of one scene: the one whose caption agrees best is kept; the others
    point at it. Keys tie-break two copies with the same agreement and cosine."""
    rng = np.random.default_rng(3)
    n = 40
    video = rng.standard_normal((n, 16)).astype(np.float32)
    video /= np.linalg.norm(video, axis=1, keepdims=True)
    text = video + 0.3 * rng.standard_normal((n, 16)).astype(np.float32)  # captions fit
    for i in (11, 12, 13):  # re-renders of clip 10
        video[i] = video[10] + 0.01 * rng.standard_normal(16).astype(np.float32)
    text[10] = rng.standard_normal(16)  # clip 10's caption is someone else's: low agreement
    text[12] = text[13] = video[10] * 3  # two equally good captions
    video /= np.linalg.norm(video, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    keys = [f"{i:09d}" for i in range(n)]
    table = scores_table(embedded([_parts(video, text, keys)], n), ScoreOptions())
    rows = {r["key"]: r for r in table.to_pylist()}
    group = [rows[keys[i]] for i in (10, 11, 12, 13)]
    assert {r["semantic_group"] for r in group} == {"c000000012"}  # 12 and 13 tie: key decides
    assert rows[keys[12]]["semantic_group_rank"] == 1
    assert rows[keys[12]]["semantic_duplicate_of"] is None
    assert rows[keys[13]]["semantic_group_rank"] == 2
    assert rows[keys[10]]["caption_agreement"] < rows[keys[11]]["caption_agreement"]
    assert rows[keys[10]]["semantic_group_rank"] == 4  # the mismatched caption goes last
    assert all(r["semantic_group_size"] == 4 for r in group)
    assert sum(r["semantic_duplicate_of"] is not None for r in rows.values()) == 3
    assert table.schema.names == contract.SCORES_SCHEMA.names
