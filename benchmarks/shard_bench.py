"""Benchmark ``webvid shard`` against the bare ffprobe + ffmpeg transcode of the same clips.

Takes ``--clips N`` (default 200) generated 640x360 H.264 clips with AAC audio (so every clip
is transcoded to the 456x256 target); produces a table of clips/s for

* **bare**: a plain script running, for every clip, the same ``ffprobe`` and the same
  ``ffmpeg`` transcode command (scale, libx264 veryfast crf 23, keyframe every second, audio
  dropped, +faststart, one thread) with two clips in flight (both cores busy) — the practical
  limit of any curation tool doing this transcode;
* **webvid shard**: ``webvid.shards.run.run`` with 2 workers on a crawl dir of the same clips
  (probe, one decode for scores + hash + transcode, sha256, dedup, captions, tars, Parquet,
  report), including pool start-up;

and their ratio (target ≥ 0.85), plus peak RSS of the whole process tree (sampled with psutil).
Runs alternate (bare, shard, bare, shard, ...) and medians are reported. Run it niced:
``nice python benchmarks/shard_bench.py --clips 200 --repeats 3``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from webvid.shards.recipe import load
from webvid.shards.run import run
from webvid.synth import crawl_dir as synth


class PeakRss:
    """Samples the summed RSS of this process and all its children every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """User + system CPU of this process and of every child it has waited for (their children
    included): what a run costs in CPU, whatever else the shared machine is doing."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def make_crawl(folder: Path, n: int, duration: float) -> Path:
    media = folder / "src"
    jobs = []
    with ThreadPoolExecutor(2) as pool:
        for i in range(n):
            jobs.append(
                pool.submit(
                    synth.make_video,
                    media / f"{i}.mp4",
                    seed=1000 + i,
                    size="640x360",
                    fps=25,
                    duration=duration,
                    audio=True,
                )
            )
        paths = [j.result() for j in jobs]
    entries = [
        synth.Entry(
            f"clip{i:04d}", f"Benchmark clip number {i}: a card slides over moving colours", p
        )
        for i, p in enumerate(paths)
    ]
    return synth.write_crawl_dir(folder / "crawl", entries)


def bare_clip(src: Path, dst: Path) -> None:
    subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(src)],
        capture_output=True,
        check=True,
    )
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-y",
            "-v",
            "error",
            "-threads",
            "1",
            "-i",
            str(src),
            "-vf",
            "scale=456:256:flags=bicubic,setsar=1,format=yuv420p",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-g",
            "25",
            "-keyint_min",
            "25",
            "-threads",
            "1",
            "-an",
            "-movflags",
            "+faststart",
            str(dst),
        ],
        capture_output=True,
        check=True,
    )


def bare(srcs: list[Path], out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda p: bare_clip(p, out / p.name), srcs))
    return time.perf_counter() - t


def shard(crawl: Path, out: Path) -> float:
    t = time.perf_counter()
    summary = run(load(None, ["workers=2"]), [crawl], out)
    elapsed = time.perf_counter() - t
    print(
        f"  kept {summary.kept}/{summary.inputs} (funnel {summary.funnel}); phases: {summary.phase_s}"
    )
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="shard-bench-"))
    try:
        t = time.perf_counter()
        crawl = make_crawl(root, args.clips, args.duration)
        print(
            f"generated {args.clips} clips of 640x360, {args.duration:g} s in {time.perf_counter() - t:.1f}s",
            flush=True,
        )
        srcs = sorted((crawl / "media").rglob("*.mp4"))
        results: dict[str, list[tuple[float, float, int]]] = {"bare": [], "shard": []}
        for r in range(args.repeats):
            for name in ("bare", "shard"):
                out = root / f"{name}{r}"
                cpu0 = cpu_seconds()
                with PeakRss() as rss:
                    elapsed = bare(srcs, out) if name == "bare" else shard(crawl, out)
                cpu = cpu_seconds() - cpu0
                results[name].append((elapsed, cpu, rss.peak))
                print(
                    f"run {r} {name:5s}: {elapsed:6.2f}s wall  {args.clips / elapsed:6.2f} clips/s  "
                    f"{cpu:7.1f} CPU-s  peak RSS {rss.peak / 2**20:6.0f} MB  "
                    f"(load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
                shutil.rmtree(out, ignore_errors=True)
        wall = {k: statistics.median(v[0] for v in vs) for k, vs in results.items()}
        cpu = {k: statistics.median(v[1] for v in vs) for k, vs in results.items()}
        rss = {k: statistics.median(v[2] for v in vs) for k, vs in results.items()}
        print(
            "\n| | median wall | clips/s (wall) | median CPU | clips per CPU-s x 2 cores | median peak RSS (tree) |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for k in ("bare", "shard"):
            print(
                f"| {k} | {wall[k]:.1f} s | {args.clips / wall[k]:.2f} | {cpu[k]:.1f} CPU-s | "
                f"{2 * args.clips / cpu[k]:.2f} | {rss[k] / 2**20:.0f} MB |"
            )
        print(
            f"\nratio webvid shard / bare: wall {wall['bare'] / wall['shard']:.3f}, "
            f"CPU {cpu['bare'] / cpu['shard']:.3f} (target >= 0.85)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
