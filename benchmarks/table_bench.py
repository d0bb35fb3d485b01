"""URL-table reading speed: today's `webvid.crawl.sources.iter_items` against an earlier revision's.

Takes a row count and a git revision (the baseline); produces a JSON summary on stdout and a
Markdown table on stderr. Both readers run in this one process, interleaved, on the same
generated WebVid-style CSV (``videoid,contentUrl,duration,page_dir,name``; captions with commas
and quotes, as real alt text has) and the same rows as Parquet. Each pass drains
``iter_items`` to the end (one ``Item`` per row: clip id, URL, caption, extra columns), so what
is timed is everything the crawl's feeder pays per row before any request. The baseline module
is the revision's ``webvid/crawl/sources.py`` loaded from ``git show``; it uses today's
``items``/``config`` modules, which both readers share.

    python benchmarks/table_bench.py --rows 500000 --baseline f4ff5da --repeat 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from webvid.crawl import sources as current
from webvid.crawl.recipe import TableConfig

REPO = Path(__file__).resolve().parents[1]
WORDS = [
    "aerial",
    "view",
    "of",
    "a",
    "mountain",
    "lake",
    "at",
    "sunset",
    "young",
    "woman",
    "walking",
    "on",
    "the",
    "beach",
]


def baseline_module(rev: str) -> types.ModuleType:
    src = subprocess.run(
        ["git", "show", f"{rev}:webvid/crawl/sources.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    mod = types.ModuleType(f"sources_{rev}")
    mod.__file__ = f"{rev}:webvid/crawl/sources.py"
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    return mod


def make_tables(rows: int, folder: Path) -> dict[str, Path]:
    rng = random.Random(0)
    ids, urls, durations, dirs, names = [], [], [], [], []
    for i in range(rows):
        vid = 1_000_000_000 + i
        caption = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18)))
        if i % 7 == 0:
            caption = f'"{caption}", 4k, slow motion'
        ids.append(str(vid))
        urls.append(f"https://cdn.example.com/videos/{vid}/preview/stock-footage-{i}.mp4")
        durations.append(f"PT00H00M{rng.randint(5, 59):02d}S")
        dirs.append(f"{i // 50 * 50:06d}_{i // 50 * 50 + 49:06d}")
        names.append(caption)
    table = pa.table(
        {"videoid": ids, "contentUrl": urls, "duration": durations, "page_dir": dirs, "name": names}
    )
    paths = {"csv": folder / "webvid.csv", "parquet": folder / "webvid.parquet"}
    pacsv.write_csv(table, paths["csv"])
    pq.write_table(table, paths["parquet"], row_group_size=64_000)
    return paths


def one_pass(module: types.ModuleType, path: Path) -> tuple[float, float, int]:
    cfg = TableConfig()
    wall, cpu = time.perf_counter(), time.process_time()
    n = sum(1 for _ in module.iter_items(path, cfg, {}))
    return time.perf_counter() - wall, time.process_time() - cpu, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--baseline", default="f4ff5da", help="git revision of the baseline reader")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    readers = {"baseline": baseline_module(args.baseline), "current": current}
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="table-bench-") as tmp:
        paths = make_tables(args.rows, Path(tmp))
        for fmt, path in paths.items():
            for _ in range(args.repeat):
                for name, module in readers.items():  # interleaved: drift hits both alike
                    wall, cpu, n = one_pass(module, path)
                    if n != args.rows:
                        raise SystemExit(f"{name} read {n} rows of {fmt}, expected {args.rows}")
                    slot = results.setdefault(f"{fmt}/{name}", {"wall_s": [], "cpu_s": []})
                    slot["wall_s"].append(wall)
                    slot["cpu_s"].append(cpu)
    summary = {
        key: {
            "median_wall_s": statistics.median(v["wall_s"]),
            "median_cpu_s": statistics.median(v["cpu_s"]),
            "rows_per_cpu_s": args.rows / statistics.median(v["cpu_s"]),
            "us_per_row": 1e6 * statistics.median(v["cpu_s"]) / args.rows,
        }
        for key, v in results.items()
    }
    print(json.dumps({"rows": args.rows, "baseline": args.baseline, "results": summary}, indent=2))
    print(
        "| table | reader | µs CPU per row (median) | rows per CPU-s | current / baseline |",
        file=sys.stderr,
    )
    print("| --- | --- | ---: | ---: | ---: |", file=sys.stderr)
    for fmt in ("csv", "parquet"):
        base = summary[f"{fmt}/baseline"]["median_cpu_s"]
        for name in ("baseline", "current"):
            s = summary[f"{fmt}/{name}"]
            ratio = base / s["median_cpu_s"]
            print(
                f"| {fmt} | {name} | {s['us_per_row']:.2f} | {s['rows_per_cpu_s']:,.0f} | "
                f"{ratio:.2f}× |",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
