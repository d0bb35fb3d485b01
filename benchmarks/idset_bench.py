"""Benchmark: the crawl's id sets — a Python ``set`` of clip-id strings against ``IdSet``.

Builds a set of N WebVid-style numeric clip ids (default 10 M) in a fresh process per
variant and prints the RSS it adds once built (after a garbage collection), the process's
peak RSS, the CPU time of building it and of a look-up (100 k probes, all hits).

    .venv/bin/python benchmarks/idset_bench.py [--n 10000000]
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def measure(kind: str, n: int) -> None:
    from webvid.crawl.idset import IdSet

    ids = (str(1_000_000 + 7 * i) for i in range(n))
    base = _rss_mb()
    t = time.process_time()
    s = set(ids) if kind == "set" else IdSet(ids)
    build = time.process_time() - t
    probes = [str(1_000_000 + 7 * i) for i in range(0, n, max(1, n // 100_000))]
    t = time.process_time()
    assert all(p in s for p in probes)
    lookup_us = 1e6 * (time.process_time() - t) / len(probes)
    del probes
    gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"| {kind} | {n:,} | {_rss_mb() - base:.0f} MB | {peak:.0f} MB | {build:.1f} s "
        f"| {lookup_us:.2f} µs |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--kind", choices=["set", "idset"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.kind:
        measure(args.kind, args.n)
        return
    print("| variant | ids | RSS added | process peak RSS | build CPU | look-up CPU |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in ("set", "idset"):  # a fresh process each: RSS is not shared between them
        subprocess.run([sys.executable, __file__, "--kind", kind, "--n", str(args.n)], check=True)


if __name__ == "__main__":
    main()
