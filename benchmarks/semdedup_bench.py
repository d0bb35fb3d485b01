"""Benchmark: semantic dedup (webvid.curate.semdedup) on synthetic embeddings with planted groups.

For each size N, in a fresh subprocess (so peak RSS is that size's own): draws N unit vectors
of 256 dimensions, clustered like real embeddings (a mixture of 1,000 topics, a random pair in
one topic at cosine ≈ 0.5), of which 1 % are planted near-duplicates — copies of another row
plus noise (cosine ≈ 0.97–0.99), 1 to 3 copies per original — stored as float16 as ``webvid
score`` stores them above 2^28 numbers; then runs :func:`semantic_dedup` at the default settings
(threshold 0.95, buckets of 2,048, 2 probes unless ``--probes``, 5 neighbours) and reports wall time (generation
excluded), peak RSS, and the recall of the planted groups (all copies in their original's group)
and of the planted pairs, plus how many rows ended in a group with a row they were not planted
with (false merges).

    python benchmarks/semdedup_bench.py --sizes 100000 300000 1000000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DIM = 256
TOPICS = 1000


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(float16 embeddings, planted original of each row or -1)."""
    rng = np.random.default_rng(seed)
    n_dup = n // 100
    n_base = n - n_dup
    centres = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    emb = np.empty((n, DIM), np.float16)
    topic = rng.integers(0, TOPICS, n_base)
    for i in range(0, n_base, 100_000):
        j = min(i + 100_000, n_base)
        x = centres[topic[i:j]] + 0.07 * rng.standard_normal((j - i, DIM)).astype(np.float32)
        emb[i:j] = x / np.linalg.norm(x, axis=1, keepdims=True)
    # planted groups: originals drawn once each, 1-3 copies per original
    copies = rng.integers(1, 4, n_dup)
    originals = rng.choice(n_base, n_dup, replace=False)
    orig_of = np.full(n, -1, np.int64)
    row = n_base
    for o, c in zip(originals, copies, strict=True):
        for _ in range(int(c)):
            if row >= n:
                break
            x = emb[o].astype(np.float32) + 0.012 * rng.standard_normal(DIM).astype(np.float32)
            emb[row] = x / np.linalg.norm(x)
            orig_of[row] = o
            row += 1
    return emb, orig_of


def one(n: int, probes: int = 2) -> dict[str, object]:
    import torch

    from webvid.curate.semdedup import DedupParams, semantic_dedup

    emb, orig_of = synthetic(n)
    order = np.random.default_rng(1).permutation(n)
    t0 = time.perf_counter()
    res = semantic_dedup(emb, order, DedupParams(probes=probes))
    wall = time.perf_counter() - t0
    dup_rows = np.flatnonzero(orig_of >= 0)
    pair_hit = res.group[dup_rows] == res.group[orig_of[dup_rows]]
    originals = np.unique(orig_of[dup_rows])
    missed = set(orig_of[dup_rows][~pair_hit].tolist())
    planted = np.full(n, -1, np.int64)
    planted[originals] = originals
    planted[dup_rows] = orig_of[dup_rows]
    # false merges: groups holding rows of more than one planted set (a row without a planted
    # partner is a set of its own); every row of such a group counts
    label = np.where(planted >= 0, planted, n + np.arange(n))
    pairs = np.unique(np.stack([res.group, label], 1), axis=0)
    labels_per_group = np.bincount(pairs[:, 0], minlength=n)
    stray = labels_per_group[res.group] > 1
    return {
        "n": n,
        "probes": probes,
        "dim": DIM,
        "planted_rows": int(len(dup_rows)),
        "planted_groups": int(len(originals)),
        "wall_s": round(wall, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "embeddings_gib": round(emb.nbytes / 2**30, 3),
        "group_recall": round(1 - len(missed) / len(originals), 5),
        "pair_recall": round(float(pair_hit.mean()), 5),
        "falsely_merged_rows": int(stray.sum()),
        "buckets": int(res.cluster.max() + 1),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--probes", type=int, default=2, help="Buckets each row is compared in.")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.probes)))
        return
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--probes", str(args.probes)]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        rows.append(res)
        print(json.dumps(res), flush=True)
    report = {"machine": platform.platform(), "python": platform.python_version(), "runs": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
