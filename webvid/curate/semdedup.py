"""Semantic near-duplicates and nearest neighbours of unit-norm clip embeddings, memory bounded.

Takes an ``(N, d)`` array of L2-normalised embeddings (float16 is enough: 10 M × 256-d is
5.1 GB) and each row's place in the keep order (0 = kept first); produces a
:class:`DedupResult`: each row's k-means bucket, its near-duplicate group (rows joined by any
chain of pairs with cosine ≥ ``threshold``), the group's size, the row's rank in its group by
the keep order (1 = the one semantic dedup keeps), its cosine to that row, and its ``neighbors``
nearest other rows with their cosines.

Method (plain torch, the scoring device's own library): spherical k-means with
``ceil(N / bucket_size)`` centroids, trained on a seeded sample of ``kmeans_sample`` rows per
centroid; every row goes to its ``probes`` nearest centroids. For each bucket, the rows that
probe it are compared, exactly, with the rows whose nearest centroid it is, in blocks of
``block`` × ``block`` (so a lopsided bucket never needs more than one block of similarities);
pairs over the threshold are merged into groups by a vectorised union–find after each block,
and a running top-k keeps the neighbours. With one bucket (``N ≤ bucket_size``) everything is
exact; otherwise a pair is missed only when neither row probes the other's bucket (recall is
measured in ``benchmarks/semdedup_bench.py``). Work: ``N × probes × bucket_size × d`` multiply–adds;
memory: the embeddings plus ``N × (probes + 2·neighbors)`` numbers plus one block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class DedupParams:
    threshold: float = 0.95  # cosine at or above which two clips are near-duplicates
    bucket_size: int = 2048  # target rows per k-means bucket
    probes: int = 2  # buckets each row is compared in
    neighbors: int = 5  # nearest other clips kept per row
    kmeans_iters: int = 10
    kmeans_sample: int = 64  # training rows per centroid
    block: int = 4096  # rows per similarity block
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be a cosine in [-1, 1]")
        if min(self.bucket_size, self.probes, self.kmeans_iters, self.kmeans_sample) < 1:
            raise ValueError("bucket_size, probes, kmeans_iters, kmeans_sample must be >= 1")
        if self.neighbors < 0 or self.block < 1:
            raise ValueError("neighbors must be >= 0 and block >= 1")


@dataclass
class DedupResult:
    cluster: np.ndarray  # (N,) int64: nearest k-means centroid
    group: np.ndarray  # (N,) int64: row index of the group's first by the keep order
    group_size: np.ndarray  # (N,) int32
    group_rank: np.ndarray  # (N,) int32: 1 = kept
    group_cosine: np.ndarray  # (N,) float32: cosine to the group's first (1 for itself)
    neighbor_index: np.ndarray  # (N, neighbors) int64, -1 where fewer rows exist
    neighbor_cosine: np.ndarray  # (N, neighbors) float32, nan where fewer rows exist


def _rows(emb: np.ndarray, idx: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(emb[idx])).to(device).float()


def kmeans(emb: np.ndarray, k: int, params: DedupParams) -> np.ndarray:
    """``(k, d)`` unit-norm centroids of spherical k-means on a seeded sample of ``emb``."""
    n = emb.shape[0]
    dev = torch.device(params.device)
    rng = np.random.default_rng(params.seed)
    take = min(n, k * params.kmeans_sample)
    sample = _rows(emb, np.sort(rng.choice(n, take, replace=False)), dev)
    cent = sample[torch.from_numpy(rng.choice(take, k, replace=False)).to(dev)].clone()
    for _ in range(params.kmeans_iters):
        assign = torch.cat([(b @ cent.T).argmax(1) for b in sample.split(params.block)])
        sums = torch.zeros_like(cent).index_add_(0, assign, sample)
        counts = torch.bincount(assign, minlength=k)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):  # re-seed an empty centroid with a random sample row
            pick = torch.from_numpy(rng.choice(take, len(empty), replace=False)).to(dev)
            sums[empty] = sample[pick]
        cent = torch.nn.functional.normalize(sums, dim=1)
    return cent.cpu().numpy()


def assign(emb: np.ndarray, cent: np.ndarray, probes: int, params: DedupParams) -> np.ndarray:
    """``(N, probes)`` indices of each row's nearest centroids, nearest first."""
    dev = torch.device(params.device)
    c = torch.from_numpy(cent).to(dev)
    p = min(probes, c.shape[0])
    out = np.empty((emb.shape[0], p), np.int64)
    for i in range(0, emb.shape[0], params.block * 4):
        rows = _rows(emb, np.arange(i, min(i + params.block * 4, emb.shape[0])), dev)
        out[i : i + len(rows)] = (rows @ c.T).topk(p, dim=1).indices.cpu().numpy()
    return out


def find_roots(parent: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The root of each element of ``x`` in the union–find forest ``parent`` (the paths
    walked are compressed: each element of ``x`` then points at its root)."""
    r = parent[x]
    while True:
        up = parent[r]
        if np.array_equal(up, r):
            parent[x] = r
            return r
        r = up


def union(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Merge the sets of each pair ``(a[i], b[i])`` (the smaller root index becomes the root)."""
    while len(a):
        ra, rb = find_roots(parent, a), find_roots(parent, b)
        diff = ra != rb
        if not diff.any():
            return
        lo, hi = np.minimum(ra, rb)[diff], np.maximum(ra, rb)[diff]
        np.minimum.at(parent, hi, lo)
        a, b = a[diff], b[diff]


def _pairs_and_neighbours(
    emb: np.ndarray, probe: np.ndarray, params: DedupParams, parent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n, k = emb.shape[0], params.neighbors
    dev = torch.device(params.device)
    nb_sim = torch.full((n, k), -math.inf)
    nb_idx = torch.full((n, k), -1, dtype=torch.int64)
    primary = probe[:, 0]
    order = np.argsort(primary, kind="stable")
    starts = np.searchsorted(primary[order], np.arange(probe.max() + 2))
    q_order = np.argsort(probe.reshape(-1), kind="stable")
    q_rows = q_order // probe.shape[1]
    q_starts = np.searchsorted(probe.reshape(-1)[q_order], np.arange(probe.max() + 2))
    for b in range(len(starts) - 1):
        cands = order[starts[b] : starts[b + 1]]
        queries = q_rows[q_starts[b] : q_starts[b + 1]]
        if not len(cands) or not len(queries):
            continue
        for qi in range(0, len(queries), params.block):
            q = queries[qi : qi + params.block]
            qt = _rows(emb, q, dev)
            qcpu = torch.from_numpy(q)
            best_s, best_i = nb_sim[qcpu].to(dev), nb_idx[qcpu].to(dev)
            for ci in range(0, len(cands), params.block):
                c = cands[ci : ci + params.block]  # ascending row indices
                cc = torch.from_numpy(c).to(dev)
                sims = qt @ _rows(emb, c, dev).T
                pos = np.minimum(np.searchsorted(c, q), len(c) - 1)
                own = np.flatnonzero(c[pos] == q)  # never its own neighbour
                sims[torch.from_numpy(own).to(dev), torch.from_numpy(pos[own]).to(dev)] = -math.inf
                top = sims.topk(min(max(k, 1), sims.shape[1]), dim=1)
                rows = (top.values[:, 0] >= params.threshold).nonzero().flatten()
                if len(rows):  # only rows with a pair over the threshold are searched for all
                    hit = (sims[rows] >= params.threshold).nonzero()
                    a = q[rows[hit[:, 0]].cpu().numpy()]
                    union(parent, a, c[hit[:, 1].cpu().numpy()])
                if k:
                    all_s = torch.cat([best_s, top.values], 1)
                    all_i = torch.cat([best_i, cc[top.indices]], 1)
                    merged = all_s.topk(k, dim=1)
                    best_s, best_i = merged.values, all_i.gather(1, merged.indices)
            nb_sim[qcpu], nb_idx[qcpu] = best_s.cpu(), best_i.cpu()
    nb_idx[torch.isinf(nb_sim)] = -1
    return nb_idx.numpy(), nb_sim.numpy().astype(np.float32)


def _groups(
    emb: np.ndarray, parent: np.ndarray, keep_order: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = emb.shape[0]
    root = find_roots(parent, np.arange(n))
    best = np.full(n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(best, root, keep_order)
    by_order = np.empty(n, np.int64)
    by_order[keep_order] = np.arange(n)
    first = by_order[best[root]]
    size = np.bincount(root, minlength=n)[root].astype(np.int32)
    srt = np.lexsort((keep_order, root))
    pos = np.arange(n) - np.searchsorted(root[srt], root[srt])
    rank = np.empty(n, np.int32)
    rank[srt] = pos + 1
    cos = np.ones(n, np.float32)
    dup = np.flatnonzero(first != np.arange(n))
    for i in range(0, len(dup), 65_536):
        d = dup[i : i + 65_536]
        a, b = emb[d].astype(np.float32), emb[first[d]].astype(np.float32)
        cos[d] = (a * b).sum(1)
    return first, size, rank, cos


def semantic_dedup(emb: np.ndarray, keep_order: np.ndarray, params: DedupParams) -> DedupResult:
    """Buckets, near-duplicate groups and neighbours of ``emb`` (unit-norm rows).

    ``keep_order`` is a permutation of ``range(N)``: each row's place in the keep rule (0 is
    kept before all others), so the row kept from a group is the one with the smallest value.
    """
    n = emb.shape[0]
    if keep_order.shape != (n,) or (n and not np.array_equal(np.sort(keep_order), np.arange(n))):
        raise ValueError("keep_order must be a permutation of range(N)")
    if n == 0:
        z = np.zeros(0, np.int64)
        return DedupResult(
            z, z, z.astype(np.int32), z.astype(np.int32), z.astype(np.float32),
            np.zeros((0, params.neighbors), np.int64), np.zeros((0, params.neighbors), np.float32),
        )  # fmt: skip
    k = max(1, math.ceil(n / params.bucket_size))
    cent = kmeans(emb, k, params) if k > 1 else np.zeros((1, emb.shape[1]), np.float32)
    probe = assign(emb, cent, params.probes, params) if k > 1 else np.zeros((n, 1), np.int64)
    parent = np.arange(n, dtype=np.int64)
    nb_idx, nb_sim = _pairs_and_neighbours(emb, probe, params, parent)
    nb_sim[nb_idx < 0] = np.nan
    first, size, rank, cos = _groups(emb, parent, keep_order)
    return DedupResult(probe[:, 0].copy(), first, size, rank, cos, nb_idx, nb_sim)
