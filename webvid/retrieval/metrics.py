"""Retrieval metrics with the official Frozen-in-Time semantics (pure policy, no I/O).

Takes a similarity matrix ``sims`` of shape ``(num_texts, num_videos)`` (numpy or torch), rows
ordered **video-major**: with ``k = num_texts // num_videos`` captions per video, rows
``j*k … (j+1)*k - 1`` belong to video ``j``. Produces a dict of floats: ``R1``, ``R5``,
``R10``, ``R50`` (percent), ``MedR``, ``MeanR`` (1-based) and ``geometric_mean_R1-R5-R10``.

* ``t2v_metrics``: each caption is a query over the videos; the 0-based rank of its video is
  the number of videos scored *strictly* higher (ties broken optimistically).
* ``v2t_metrics``: each video is a query over all captions; a caption's rank averages over its
  ties (``#higher + (#equal - 1) / 2``), and the video keeps the best rank among its ``k``
  captions. R@1 counts ranks ``== 0`` (so an averaged tie at the top, rank 0.5, is not a hit) and
  R@K for K > 1 counts ranks ``< K``, as the official ``cols2metrics`` does.

``query_masks`` (``(num_videos, k)`` or flat, truthy = caption present) drops missing captions:
t2v ignores those queries, v2t ignores those captions — as the official code does.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _as_array(sims: Any) -> np.ndarray:
    if hasattr(sims, "detach"):
        sims = sims.detach().float().cpu().numpy()
    arr = np.asarray(sims, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"expected a non-empty 2-D similarity matrix, got shape {arr.shape}")
    return arr


def _per_video(num_texts: int, num_videos: int) -> int:
    if num_texts % num_videos:
        raise ValueError(
            f"{num_texts} captions do not split evenly over {num_videos} videos "
            "(expected video-major rows, the same number of captions per video)"
        )
    return num_texts // num_videos


def _mask(query_masks: Any, size: int) -> np.ndarray | None:
    if query_masks is None:
        return None
    mask = np.asarray(query_masks).reshape(-1).astype(bool)
    if mask.size != size:
        raise ValueError(f"query_masks has {mask.size} entries, expected {size}")
    return mask


def ranks_to_metrics(ranks: np.ndarray) -> dict[str, float]:
    """0-based ranks → R@1/5/10/50 (percent), MedR/MeanR (1-based), geometric mean of R@1/5/10."""
    ranks = np.asarray(ranks, dtype=np.float64)
    n = ranks.size
    if n == 0:
        raise ValueError("no queries to score")
    out: dict[str, float] = {}
    out["R1"] = 100.0 * float(np.sum(ranks == 0)) / n  # official: == 0, so a 0.5 tie misses
    for k in (5, 10, 50):
        out[f"R{k}"] = 100.0 * float(np.sum(ranks < k)) / n
    out["MedR"] = float(np.median(ranks)) + 1.0
    out["MeanR"] = float(np.mean(ranks)) + 1.0
    top = np.array([out["R1"], out["R5"], out["R10"]])
    out["geometric_mean_R1-R5-R10"] = (
        0.0 if np.any(top == 0) else float(np.exp(np.mean(np.log(top))))
    )
    return out


def t2v_ranks(sims: Any) -> np.ndarray:
    """0-based rank of each caption's own video (optimistic ties), shape ``(num_texts,)``."""
    s = _as_array(sims)
    n_text, n_vid = s.shape
    k = _per_video(n_text, n_vid)
    gt = s[np.arange(n_text), np.arange(n_text) // k]
    return np.sum(s > gt[:, None], axis=1).astype(np.float64)


def t2v_metrics(sims: Any, query_masks: Any = None) -> dict[str, float]:
    """Text → video retrieval metrics; see the module docstring."""
    ranks = t2v_ranks(sims)
    mask = _mask(query_masks, ranks.size)
    if mask is not None:
        ranks = ranks[mask]
    return ranks_to_metrics(ranks)


def v2t_ranks(sims: Any, query_masks: Any = None) -> np.ndarray:
    """0-based best rank over each video's captions (tie-averaged), shape ``(num_videos,)``."""
    s = _as_array(sims).T  # (videos, captions)
    n_vid, n_text = s.shape
    k = _per_video(n_text, n_vid)
    mask = _mask(query_masks, n_text)
    if mask is not None:  # a missing caption can never outrank a real one
        s = np.where(mask[None, :], s, -np.inf)
    own = s.reshape(n_vid, n_vid, k)[np.arange(n_vid), np.arange(n_vid)]  # (videos, k)
    # For each (video, own caption): how many captions score higher / equal in that video's
    # row; in chunks of videos so the comparison cube stays under ~16M entries.
    ranks = np.empty((n_vid, k), dtype=np.float64)
    step = max(1, (1 << 24) // max(1, k * n_text))
    for a in range(0, n_vid, step):
        row, mine = s[a : a + step, None, :], own[a : a + step, :, None]
        higher = np.sum(row > mine, axis=2)
        equal = np.sum(row == mine, axis=2)
        ranks[a : a + step] = higher + (equal - 1) / 2.0
    if mask is not None:
        ranks = np.where(mask.reshape(n_vid, k), ranks, np.inf)
    return ranks.min(axis=1)


def v2t_metrics(sims: Any, query_masks: Any = None) -> dict[str, float]:
    """Video → text retrieval metrics; see the module docstring."""
    return ranks_to_metrics(v2t_ranks(sims, query_masks))
