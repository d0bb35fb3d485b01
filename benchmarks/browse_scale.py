"""Benchmark: the browser's memory and query times as the number of clips grows.

Method: a root holding one ``verdicts.parquet`` made of the bench root's verdicts
(``benchmarks/browse_bench.py``) repeated ``--times`` times with new clip ids and keys; then,
in this process, open it (``webvid.browse.catalog.open_root``, the cache folder as the
environment says) and run the grid (page 0, a deep page, a deep page of kept clips), the
caption filter, a clip's detail, a threshold, the facets and the overview, 5 times each.
Prints one JSON line: open seconds, peak RSS (MB) after imports / opening / the queries, and
the median ms of each query. Run it twice with the same ``WEBVID_BROWSE_CACHE`` for a cold and
a warm open, and with ``PYTHONPATH`` at another checkout to compare.

Usage: python benchmarks/browse_scale.py [--times 20] [--bench /tmp/browse-bench/root-100000]
       [--dir /tmp/browse-scale]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from pathlib import Path

import duckdb


def peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def build(bench: Path, root: Path, times: int) -> None:
    src = bench / "shards" / "verdicts.parquet"
    out = root / "shards" / "verdicts.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(
        "COPY (SELECT * REPLACE (clip_id || '-' || r AS clip_id,"
        " CASE WHEN key IS NULL THEN NULL ELSE r::VARCHAR || key END AS key)"
        f" FROM read_parquet('{src}'), range({times}) t(r))"
        f" TO '{out}' (ROW_GROUP_SIZE 100000)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--times", type=int, default=20)
    ap.add_argument("--bench", type=Path, default=Path("/tmp/browse-bench/root-100000"))
    ap.add_argument("--dir", type=Path, default=Path("/tmp/browse-scale"))
    args = ap.parse_args()
    root = args.dir / f"root-x{args.times}"
    if not (root / "shards" / "verdicts.parquet").exists():  # in another process: its memory
        proc = multiprocessing.get_context("spawn").Process(
            target=build, args=(args.bench, root, args.times)
        )
        proc.start()
        proc.join()
    from webvid.browse import catalog, detail, overview
    from webvid.browse import items as it

    out: dict[str, float] = {"imported_mb": peak_mb()}
    t = time.perf_counter()
    r = catalog.open_root(root)
    out["open_s"] = round(time.perf_counter() - t, 2)
    out["opened_mb"] = peak_mb()
    ((n,),) = r.con.execute("SELECT count(*) FROM items").fetchall()
    ((cid,),) = r.con.execute("SELECT id FROM items WHERE status = 'kept' LIMIT 1").fetchall()
    calls = {
        "page0": lambda: it.grid(r, it.Filters()),
        "deep": lambda: it.grid(r, it.Filters(), page=n // 48),
        "deep_kept": lambda: it.grid(r, it.Filters(status="kept"), page=n // 48),
        "caption": lambda: it.grid(r, it.Filters(text="sunset forest")),
        "detail": lambda: detail.sample(r, 0, cid),
        "threshold": lambda: detail.threshold(r, 0, "min_motion", 0.01),
        "facets": lambda: it.facets(r),
        "overview": lambda: overview.overview(r),
    }
    for name, call in calls.items():
        times = []
        for _ in range(5):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        out[f"{name}_ms"] = round(sorted(times)[2] * 1000, 1)
    out["queried_mb"] = peak_mb()
    out["rows"] = n
    print(json.dumps(out))


if __name__ == "__main__":
    main()
