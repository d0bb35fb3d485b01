"""Retrieval metrics on hand-worked matrices (ties, 2 captions per video, masks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from webvid.retrieval.metrics import t2v_metrics, t2v_ranks, v2t_metrics, v2t_ranks


def test_one_caption_per_video_with_ties() -> None:
    sims = np.array(
        [
            [0.9, 0.1, 0.4],  # caption 0 → video 0 first: rank 0
            [0.8, 0.5, 0.2],  # caption 1 → video 1 behind video 0: rank 1
            [0.4, 0.4, 0.4],  # caption 2: a three-way tie, optimistic → rank 0
        ]
    )
    assert t2v_ranks(sims).tolist() == [0, 1, 0]
    m = t2v_metrics(sims)
    assert m["R1"] == pytest.approx(200 / 3)
    assert m["R5"] == m["R10"] == m["R50"] == 100.0
    assert m["MedR"] == 1.0
    assert m["MeanR"] == pytest.approx(1 + 1 / 3)
    # video → text: video 2's column is [0.4, 0.2, 0.4]: its caption ties caption 0 → 0.5
    assert v2t_ranks(sims).tolist() == [0, 0, 0.5]
    m = v2t_metrics(sims)
    assert m["R1"] == pytest.approx(200 / 3)  # an averaged tie is not a hit
    assert m["R5"] == 100.0
    assert m["MedR"] == 1.0
    assert m["MeanR"] == pytest.approx(1 + 0.5 / 3)


def test_two_captions_per_video() -> None:
    # rows: captions 0, 1 of video 0, then captions 2, 3 of video 1 (video-major)
    sims = np.array(
        [
            [0.9, 0.2],  # c0 → v0: rank 0
            [0.1, 0.6],  # c1 → v0: rank 1
            [0.3, 0.6],  # c2 → v1: rank 0
            [0.7, 0.5],  # c3 → v1: rank 1
        ]
    )
    assert t2v_ranks(sims).tolist() == [0, 1, 0, 1]
    m = t2v_metrics(sims)
    assert (m["R1"], m["R5"], m["MedR"], m["MeanR"]) == (50.0, 100.0, 1.5, 1.5)
    # v0 over captions [0.9, 0.1, 0.3, 0.7]: c0 rank 0, c1 rank 3 → best 0.
    # v1 over captions [0.2, 0.6, 0.6, 0.5]: c2 ties c1 → 0.5, c3 rank 2 → best 0.5.
    assert v2t_ranks(sims).tolist() == [0, 0.5]
    m = v2t_metrics(sims)
    assert (m["R1"], m["R5"], m["MedR"], m["MeanR"]) == (50.0, 100.0, 1.25, 1.25)
    assert m["geometric_mean_R1-R5-R10"] == pytest.approx((50 * 100 * 100) ** (1 / 3))


def test_query_masks_drop_missing_captions() -> None:
    sims = np.array([[0.9, 0.2], [0.1, 0.6], [0.3, 0.6], [0.7, 0.5]])
    mask = np.array([[1, 0], [1, 1]])  # video 0's second caption is missing
    assert t2v_metrics(sims, mask)["R1"] == pytest.approx(200 / 3)  # ranks [0, 0, 1]
    # without c1 (0.6) in v1's row, c2 is alone on top
    assert v2t_ranks(sims, mask).tolist() == [0, 0]
    assert v2t_metrics(sims, mask)["R1"] == 100.0


def test_torch_input_and_bad_shapes() -> None:
    m = t2v_metrics(torch.eye(4))
    assert m["R1"] == 100.0 and m["MedR"] == 1.0
    assert v2t_metrics(torch.eye(4, dtype=torch.bfloat16))["MeanR"] == 1.0
    with pytest.raises(ValueError, match="evenly"):
        t2v_metrics(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="2-D"):
        v2t_metrics(np.zeros(3))
    zero = t2v_metrics(np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert zero["R1"] == 0.0 and zero["geometric_mean_R1-R5-R10"] == 0.0


def _official_style(sims: np.ndarray) -> tuple[list[float], list[float]]:
    """The official algorithm, loop by loop: sort distances, locate the ground truth."""
    n_q, n_v = sims.shape
    k = n_q // n_v
    dists = -sims
    t2v = []
    for i in range(n_q):
        row = np.sort(dists[i])
        t2v.append(float(np.where(row == dists[i, i // k])[0][0]))  # first match: optimistic
    v2t = []
    dt = dists.T
    for j in range(n_v):
        row = np.sort(dt[j])
        v2t.append(min(float(np.where(row == dt[j, c])[0].mean()) for c in range(j * k, j * k + k)))
    return t2v, v2t


@pytest.mark.parametrize("k", [1, 3])
def test_matches_the_official_algorithm_on_tied_random_matrices(k: int) -> None:
    rng = np.random.default_rng(k)
    sims = np.round(rng.random((6 * k, 6)), 1)  # coarse values: many ties
    t2v, v2t = _official_style(sims)
    assert t2v_ranks(sims).tolist() == t2v
    assert v2t_ranks(sims).tolist() == v2t
