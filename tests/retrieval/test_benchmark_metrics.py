"""Multi-caption metric semantics against hand-computed matrices (the benchmarks' cases).

Rows are captions, video-major and padded to the largest caption count; ``query_masks`` marks
the real ones. Every expected rank below was worked out by hand from the matrix beside it.
"""

from __future__ import annotations

import numpy as np
import pytest

from webvid.retrieval.metrics import t2v_metrics, t2v_ranks, v2t_metrics, v2t_ranks

PAD = 9.0  # a padded row scores higher than anything: it must not count anywhere

# MSVD-like: 3 videos with 2, 1 and 3 captions, padded to k = 3.
MSVD_SIMS = np.array(
    [
        # v0     v1     v2
        [0.90, 0.10, 0.50],  # t0 of v0: rank 0
        [0.20, 0.80, 0.30],  # t1 of v0: 0.8, 0.3 higher → rank 2
        [PAD, PAD, PAD],
        [0.40, 0.60, 0.70],  # t3 of v1: 0.7 higher → rank 1
        [PAD, PAD, PAD],
        [PAD, PAD, PAD],
        [0.10, 0.20, 0.30],  # t6 of v2: rank 0
        [0.50, 0.40, 0.45],  # t7 of v2: 0.5 higher → rank 1
        [0.30, 0.90, 0.00],  # t8 of v2: rank 2
    ]
)
MSVD_MASK = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]], bool)


def test_t2v_counts_every_real_caption_once():
    got = t2v_metrics(MSVD_SIMS, query_masks=MSVD_MASK)
    # ranks of the six real queries: 0, 2, 1, 0, 1, 2
    assert got["R1"] == pytest.approx(100 * 2 / 6)
    assert got["R5"] == got["R10"] == got["R50"] == 100.0
    assert got["MedR"] == 2.0  # median(0, 0, 1, 1, 2, 2) + 1
    assert got["MeanR"] == 2.0  # mean 1 + 1
    ranks = t2v_ranks(MSVD_SIMS)[MSVD_MASK.reshape(-1)]
    assert ranks.tolist() == [0, 2, 1, 0, 1, 2]


def test_v2t_takes_each_videos_best_caption_and_ignores_padding():
    # v0's column over the real captions: t0 .9 (rank 0), t1 .2 (rank 4) → best 0
    # v1's column: t3 .6 under .8 (t1) and .9 (t8) → 2
    # v2's column: t6 .3 ties t1 .3 under .5, .7, .45 → 3 + (2 - 1) / 2 = 3.5;
    #              t7 .45 under .5, .7 → 2; t8 0.0 → 5; best 2
    assert v2t_ranks(MSVD_SIMS, MSVD_MASK).tolist() == [0.0, 2.0, 2.0]
    got = v2t_metrics(MSVD_SIMS, query_masks=MSVD_MASK)
    assert got["R1"] == pytest.approx(100 / 3) and got["R5"] == 100.0
    assert got["MedR"] == 3.0 and got["MeanR"] == pytest.approx(4 / 3 + 1)


def test_without_the_mask_padding_would_change_both_directions():
    """The fixture can tell a masked evaluation from an unmasked one."""
    assert t2v_metrics(MSVD_SIMS)["R1"] != t2v_metrics(MSVD_SIMS, query_masks=MSVD_MASK)["R1"]
    assert v2t_ranks(MSVD_SIMS).tolist() != v2t_ranks(MSVD_SIMS, MSVD_MASK).tolist()
    flat = MSVD_MASK.reshape(-1).astype(int)  # a flat 0/1 mask means the same
    assert v2t_metrics(MSVD_SIMS, flat) == v2t_metrics(MSVD_SIMS, MSVD_MASK)


def test_ties_t2v_optimistic_v2t_averaged_and_a_half_rank_is_no_hit():
    # one caption per video (1k-A, DiDeMo paragraphs, LSMDC)
    sims = np.array([[0.5, 0.5], [0.5, 0.2]])
    assert t2v_ranks(sims).tolist() == [0.0, 1.0]  # t0 ties v1 at the top: optimistic 0
    assert v2t_ranks(sims).tolist() == [0.5, 1.0]  # v0's column ties t0 and t1: (0 + 1) / 2
    got = v2t_metrics(sims)
    assert got["R1"] == 0.0 and got["R5"] == 100.0  # 0.5 is not rank 0
    assert got["MedR"] == 1.75 and got["MeanR"] == 1.75
    assert t2v_metrics(sims)["R1"] == 50.0


def test_uniform_twenty_captions_need_no_mask():
    """MSR-VTT full: 20 captions for every video; rows j*20 … j*20+19 are video j's."""
    rng = np.random.default_rng(0)
    n, k = 4, 20
    sims = rng.random((n * k, n))
    own = np.repeat(np.arange(n), k)
    expect = np.array([(sims[i] > sims[i, own[i]]).sum() for i in range(n * k)])
    assert t2v_ranks(sims).tolist() == expect.tolist()
    best = [
        min((sims[:, j] > sims[i, j]).sum() for i in range(j * k, (j + 1) * k)) for j in range(n)
    ]
    assert v2t_ranks(sims).tolist() == best  # random floats: no ties to average
