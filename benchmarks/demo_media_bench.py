"""Benchmark: how fast the demo site's media are generated, cold and cached.

Takes ``--clips N`` (default 100, with as many images), ``--repeats R`` and ``--baseline-clips``.
Produces a table on stdout (paste it into docs/benchmarks.md):

* cold builds of the whole site's media (clips, thumbnails, images) into a fresh cache folder,
  with 1 and with 2 ffmpeg processes at once (``webvid.synth.media`` batches many clips per
  ffmpeg process through the segment muxer);
* a warm rebuild of the same catalogue (everything cached: nothing should be rendered);
* the naive baseline, run in the same script: one ffmpeg process per clip with the same
  frames and encoder settings — the obvious way to write it.

Run it niced on a shared machine: ``nice python benchmarks/demo_media_bench.py``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from unittest import mock

from webvid.synth import media
from webvid.synth.catalog import build_catalog
from webvid.synth.media import MediaParams, build_media, render_frames


def cold_build(n: int, workers: int) -> float:
    catalog = build_catalog(1, n, n, faults=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(media.os, "cpu_count", lambda: workers),
    ):
        t0 = time.perf_counter()
        store = build_media(catalog, MediaParams(), tmp)
        elapsed = time.perf_counter() - t0
        assert store.reused == 0 and store.generated > 0
        t1 = time.perf_counter()
        again = build_media(catalog, MediaParams(), tmp)
        warm = time.perf_counter() - t1
        assert again.generated == 0
    cold_build.warm.append(warm)  # type: ignore[attr-defined]
    return elapsed


cold_build.warm = []  # type: ignore[attr-defined]


def naive(n: int) -> float:
    """One ffmpeg process per clip, same frames and x264 settings, then the same JPEGs."""
    params = MediaParams()
    catalog = build_catalog(1, n, 0, faults=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for clip in catalog.clips:
            cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo"]
            cmd += ["-pix_fmt", "rgb24", "-s", f"{params.width}x{params.height}"]
            cmd += ["-r", str(params.fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast"]
            cmd += ["-qp", str(params.qp), "-bf", "0", "-threads", "1", "-pix_fmt", "yuv420p"]
            cmd += ["-movflags", "+faststart", str(Path(tmp) / f"{clip.clip_id}.mp4")]
            data = b"".join(f.tobytes() for f in render_frames(clip.render, params))
            subprocess.run(cmd, input=data, check=True)
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline-clips", type=int, default=50)
    args = ap.parse_args()
    rows = []
    for workers in (1, 2):
        times = [cold_build(args.clips, workers) for _ in range(args.repeats)]
        rows.append(
            (f"webvid, cold, {workers} ffmpeg at once", statistics.median(times), args.clips)
        )
    warm = statistics.median(cold_build.warm)  # type: ignore[attr-defined]
    base = statistics.median(naive(args.baseline_clips) for _ in range(args.repeats))
    per_clip_naive = base / args.baseline_clips
    print(f"{args.clips} clips + {args.clips} images (+ thumbnails); medians of {args.repeats}")
    print("| run | median wall | per clip | clips/s |")
    print("| --- | --- | --- | --- |")
    for name, t, n in rows:
        print(
            f"| {name} (clips, thumbnails, images) | {t:.2f} s | {1000 * t / n:.1f} ms | {n / t:.0f} |"
        )
    print(f"| webvid, warm rebuild (all cached) | {warm:.3f} s | | |")
    print(
        f"| naive: one ffmpeg per clip, clips only ({args.baseline_clips} clips) | {base:.2f} s "
        f"| {1000 * per_clip_naive:.1f} ms | {1 / per_clip_naive:.0f} |"
    )
    best = min(t / n for _, t, n in rows)
    print(
        f"\nratio naive per clip / webvid best per clip (webvid also makes the JPEGs): "
        f"{per_clip_naive / best:.1f}x"
    )


if __name__ == "__main__":
    main()
