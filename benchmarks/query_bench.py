"""Benchmark: `webvid query` streaming a 1,000,000-row result to CSV — peak memory and time.

Method: write a crawl dir with N rows (contract schema, realistic string columns) in batches,
then run, each in a fresh subprocess, (a) `webvid query --format csv -o FILE "SELECT * FROM
crawl"` and (b) a naive baseline that does what a notebook would: `fetchall()` the same query
and write it with the csv module. Peak RSS per subprocess comes from getrusage(RUSAGE_CHILDREN)
(each run in its own wrapper process). Repeats R times; reports medians.

Usage: python benchmarks/query_bench.py [--rows 1000000] [--repeats 3] [--dir /tmp/qbench]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from webvid import contract
from webvid import io as wio

NAIVE = """
import csv, sys
from webvid import query as q
con = q.connect(sys.argv[1])
cur = con.execute("SELECT * FROM crawl")
rows = cur.fetchall()
with open(sys.argv[2], "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow([d[0] for d in cur.description])
    w.writerows(rows)
"""

MEASURE = """
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def make_root(root: Path, rows: int, batch: int = 100_000) -> None:
    for part, start in enumerate(range(0, rows, batch)):
        n = min(batch, rows - start)
        idx = pa.array(range(start, start + n), pa.int64())
        cols = {f.name: pa.nulls(n, f.type) for f in contract.CRAWL_RECORD_SCHEMA}
        cols["clip_id"] = pa.array([f"{i:010d}" for i in range(start, start + n)])
        cols["source_index"] = idx
        cols["media_url"] = pa.array(
            [f"https://cdn.example.com/clips/{i:010d}/preview.mp4" for i in range(start, start + n)]
        )
        cols["caption"] = pa.array(
            [
                f"Aerial view of a red car driving on a mountain road number {i}"
                for i in range(start, start + n)
            ]
        )
        cols["status"] = pa.array(["success"] * n)
        cols["bytes"] = pa.array([100_000 + i % 997 for i in range(start, start + n)], pa.int64())
        cols["sha256"] = pa.array([f"{i:064x}" for i in range(start, start + n)])
        table = pa.table(cols, schema=contract.CRAWL_RECORD_SCHEMA)
        wio.write_parquet(
            root / "crawl" / "records" / f"part-{part:05d}.parquet",
            table,
            contract.CRAWL_RECORD_SCHEMA,
        )


def measure(cmd: list[str]) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *cmd], check=True, capture_output=True, text=True
    ).stdout
    secs, kib = out.split()
    return float(secs), int(kib) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/webvid-query-bench"))
    a = ap.parse_args()
    root = a.dir / "root"
    if not (root / "crawl").exists():
        make_root(root, a.rows)
    out = a.dir / "out.csv"
    webvid = [
        sys.executable,
        "-m",
        "webvid.cli",
        "-q",
        "query",
        "--root",
        str(root),
        "--format",
        "csv",
        "-o",
        str(out),
        "SELECT * FROM crawl",
    ]
    naive = [sys.executable, "-c", NAIVE, str(root), str(out)]
    results: dict[str, list[tuple[float, float]]] = {"webvid": [], "naive": []}
    for _ in range(a.repeats):
        results["webvid"].append(measure(webvid))
        with open(out, "rb") as fh:
            lines = sum(1 for _ in fh)
        assert lines == a.rows + 1, lines
        results["naive"].append(measure(naive))
    summary = {
        name: {
            "median_s": statistics.median(r[0] for r in runs),
            "median_peak_rss_mb": statistics.median(r[1] for r in runs),
        }
        for name, runs in results.items()
    }
    summary["rows"] = a.rows
    summary["time_ratio_naive_over_webvid"] = (
        summary["naive"]["median_s"] / summary["webvid"]["median_s"]
    )
    summary["rss_ratio_naive_over_webvid"] = (
        summary["naive"]["median_peak_rss_mb"] / summary["webvid"]["median_peak_rss_mb"]
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
