"""The two engines side by side: ``--engine local`` vs ``--engine ray`` on one machine.

Takes sizes from the command line; prints a JSON summary (and a Markdown table with
--markdown). Every measured run is a fresh child process (``python -m webvid.cli ...``) timed
from spawn to exit, so the Ray figures include starting a local Ray (what a user pays on one
machine); Ray's start-up and shutdown alone are measured too, so the rest can be told apart.

* crawl: a CSV of ``--n`` URLs (default 2,000 clips of ~100 KB) served by the lean loopback
  server of ``benchmarks/crawl_bench.py`` (a separate process), per-host limits raised;
  items/s of ``webvid crawl`` with each engine;
* the same crawl in one process with Ray already up (``run`` vs ``run_crawl``): the
  marginal cost of the Ray engine (tasks + one limiter round trip per request), no start-up;
* shard: ``--shard-clips`` generated 64x48 one-second H.264 clips in a crawl dir (default
  300: on a shared 2-core VM the full 2,000 takes many minutes per engine; pass
  ``--shard-clips 2000`` on a quiet machine); clips/s of ``webvid shard --workers 2`` against
  ``--engine ray`` (Ray: one task per clip and per shard), and whether the tars are identical.

Runs alternate (local, ray, local, ray, ...); medians over ``--repeat``.
Usage: nice .venv/bin/python benchmarks/engine_bench.py [--n 2000] [--shard-clips 300] [--repeat 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crawl_bench import FAST, Server, measure

from webvid.synth import crawl_dir as synth

SHARD_SETS = [
    "--set",
    "filters.min_short_side=32",
    "--set",
    "filters.min_duration_s=0.5",
    "--set",
    "output.report=false",
    "--set",
    "output.max_samples=100",
]


def ray_startup() -> dict[str, float]:
    code = (
        "import os,time;os.environ['RAY_USAGE_STATS_ENABLED']='0';os.environ['RAY_AUTH_MODE']='disabled';"
        "import ray;ray.init(num_cpus=2,include_dashboard=False);ray.get(ray.remote(lambda:1).remote());"
        "ray.shutdown()"
    )
    return measure([sys.executable, "-c", code])


def crawl_runs(root: Path, n: int, repeat: int) -> dict[str, list[dict[str, float]]]:
    server = Server(n)
    try:
        table = root / "table.csv"
        rows = [f"{i},{server.url}/cdn/{i}.mp4,clip {i}" for i in range(n)]
        table.write_text("videoid,contentUrl,name\n" + "\n".join(rows) + "\n")
        res: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
        for r in range(repeat):
            for engine in ("local", "ray"):
                out = root / f"crawl-{engine}-{r}"
                cmd = [
                    sys.executable,
                    "-m",
                    "webvid.cli",
                    "-q",
                    "crawl",
                    str(table),
                    "-o",
                    str(out),
                    *FAST,
                    "--engine",
                    engine,
                ]
                m = measure(cmd)
                m["items_s"] = n / m["wall_s"]
                res[engine].append(m)
                print(
                    f"crawl {engine}: {m['wall_s']:.1f}s {m['items_s']:.0f} items/s",
                    file=sys.stderr,
                )
                shutil.rmtree(out)
        return res
    finally:
        server.close()


def warm_crawl(root: Path, n: int, repeat: int) -> dict[str, list[float]]:
    """In one process with Ray already up: the engines' marginal items/s (no start-up)."""
    import time

    from webvid.crawl.recipe import load
    from webvid.crawl.run import run
    from webvid.scale.cluster import ray_session
    from webvid.scale.crawl_engine import run_crawl

    server = Server(n)
    res: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        table = root / "warm.csv"
        table.write_text(
            "videoid,contentUrl,name\n"
            + "".join(f"{i},{server.url}/cdn/{i}.mp4,clip {i}\n" for i in range(n))
        )
        sets = [
            "polite.allow_private=true",
            "concurrency=64",
            "polite.per_host_concurrency=64",
            "polite.per_host_rps=100000",
            "polite.per_host_burst=100000",
            "net.backoff_base_s=0.05",
        ]
        with ray_session(num_cpus=2):
            for r in range(repeat):
                for engine, fn in (("local", run), ("ray", run_crawl)):
                    out = root / f"warm-{engine}-{r}"
                    cfg = load(None, sets)
                    t = time.perf_counter()
                    summary = fn(cfg, table, out)
                    res[engine].append(n / (time.perf_counter() - t))
                    assert summary.by_status.get("success") == n, summary.by_status
                    print(f"warm crawl {engine}: {res[engine][-1]:.0f} items/s", file=sys.stderr)
                    shutil.rmtree(out)
    finally:
        server.close()
    return res


def shard_input(root: Path, n: int) -> Path:
    media = root / "media"
    with ThreadPoolExecutor(2) as pool:
        paths = list(
            pool.map(
                lambda i: synth.make_video(media / f"{i}.mp4", seed=5000 + i, duration=1.0),
                range(n),
            )
        )
    entries = [
        synth.Entry(f"clip{i:05d}", f"Benchmark clip {i}: colours drift across the frame", p)
        for i, p in enumerate(paths)
    ]
    return synth.write_crawl_dir(root / "crawl", entries)


def tar_digest(out: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(out.glob("*/*.tar")):
        h.update(p.name.encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def shard_runs(
    root: Path, n: int, repeat: int
) -> tuple[dict[str, list[dict[str, float]]], bool | None]:
    crawl = shard_input(root, n)
    res: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
    digests = set()
    for r in range(repeat):
        for engine in ("local", "ray"):
            out = root / f"shard-{engine}-{r}"
            cmd = [
                sys.executable,
                "-m",
                "webvid.cli",
                "-q",
                "shard",
                str(crawl),
                "-o",
                str(out),
                "--workers",
                "2",
                *SHARD_SETS,
                "--engine",
                engine,
            ]
            m = measure(cmd)
            m["clips_s"] = n / m["wall_s"]
            res[engine].append(m)
            digests.add(tar_digest(out))
            print(f"shard {engine}: {m['wall_s']:.1f}s {m['clips_s']:.1f} clips/s", file=sys.stderr)
            shutil.rmtree(out)
    return res, len(digests) == 1


def med(runs: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="crawl items")
    ap.add_argument("--shard-clips", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-shard", action="store_true", help="crawl figures only")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    try:
        start = ray_startup()
        crawl = crawl_runs(root, args.n, args.repeat)
        warm = warm_crawl(root, args.n, args.repeat)
        shard, identical = (
            ({}, None) if args.no_shard else shard_runs(root, args.shard_clips, args.repeat)
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {
        "ray_start_run_stop_s": round(start["wall_s"], 2),
        "ray_start_peak_pss_mb": round(start["peak_pss_mb"]),
        "crawl_items": args.n,
        "shard_clips": args.shard_clips,
        "repeat": args.repeat,
        "shard_tars_identical": identical,
        **{f"warm_crawl_{e}_items_s": round(statistics.median(v), 1) for e, v in warm.items()},
        **{
            f"crawl_{e}_{k}": med(crawl[e], k)
            for e in crawl
            for k in ("wall_s", "items_s", "peak_pss_mb", "cpu_s")
        },
        **{
            f"shard_{e}_{k}": med(shard[e], k)
            for e in shard
            for k in ("wall_s", "clips_s", "peak_pss_mb", "cpu_s")
        },
    }
    summary["crawl_ray_over_local"] = round(
        summary["crawl_ray_items_s"] / summary["crawl_local_items_s"], 3
    )
    if shard:
        summary["shard_ray_over_local"] = round(
            summary["shard_ray_clips_s"] / summary["shard_local_clips_s"], 3
        )
    print(json.dumps(summary, indent=2))
    if args.markdown:
        s = summary
        print("\n| | local | ray | ray / local |\n| --- | --- | --- | --- |")
        print(
            f"| crawl, {args.n} items: wall s | {s['crawl_local_wall_s']} | {s['crawl_ray_wall_s']} | |"
        )
        print(
            f"| crawl items/s | {s['crawl_local_items_s']:.0f} | {s['crawl_ray_items_s']:.0f} | "
            f"{s['crawl_ray_over_local']} |"
        )
        print(
            f"| crawl items/s, Ray already up (in-process) | {s['warm_crawl_local_items_s']:.0f} | "
            f"{s['warm_crawl_ray_items_s']:.0f} | "
            f"{s['warm_crawl_ray_items_s'] / s['warm_crawl_local_items_s']:.3f} |"
        )
        if not shard:
            return
        print(
            f"| shard, {args.shard_clips} clips: wall s | {s['shard_local_wall_s']} | {s['shard_ray_wall_s']} | |"
        )
        print(
            f"| shard clips/s | {s['shard_local_clips_s']:.1f} | {s['shard_ray_clips_s']:.1f} | "
            f"{s['shard_ray_over_local']} |"
        )


if __name__ == "__main__":
    main()
