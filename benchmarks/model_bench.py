"""Benchmark: the space-time ViT's SDPA attention against the reference formulation.

Takes no data (random clips) and prints, and optionally writes as JSON, forward+backward
clips/s of the video model with our :func:`webvid.model.vit.divided_attention` against a plain
softmax(q·kᵀ)·v formulation of the official ``VarAttention`` (same weights, same run, runs
interleaved so load on a shared machine hits both alike; on CPU the clock is the process's CPU
time, which other jobs do not inflate).

* CPU (default): a small ViT (ViT-S/16-224 widths, 2 blocks; ``--width 192``: ViT-Ti), fp32,
  4 frames, 2 clips/step; ``--precision bf16``: ours under bf16 autocast (the GPU variant's
  comparison) against the reference in fp32 and, for a like-for-like figure, in bf16 too.
  ``nice`` it on shared machines.
* ``--gpu``: ViT-B/16-224, 4 frames; ours in bf16 autocast + SDPA (flash) against the
  reference in fp32, with peak memory per variant and an fp32 equivalence check.

    .venv/bin/python benchmarks/model_bench.py [--json out.json]
    python benchmarks/model_bench.py --gpu --json $OUT/model_bench_gpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from webvid.model.vit import SpaceTimeTransformer, divided_attention


def reference_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, frames: int, pattern: str
) -> torch.Tensor:
    """The official formulation (a copy of the one in tests/model/test_model_attention.py)."""
    b, h, length, d = q.shape
    n = (length - 1) // frames
    q, k, v = (t.reshape(b * h, length, d) for t in (q, k, v))
    q = q * d**-0.5

    def attn(qq: torch.Tensor, kk: torch.Tensor, vv: torch.Tensor) -> torch.Tensor:
        sim = torch.einsum("bid,bjd->bij", qq, kk)
        return torch.einsum("bij,bjd->bid", sim.softmax(dim=-1), vv)

    cls_out = attn(q[:, :1], k, v)

    def group(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(b * h, frames, n, d)
        if pattern == "space":
            return t.reshape(b * h * frames, n, d)
        return t.transpose(1, 2).reshape(b * h * n, frames, d)

    r = frames if pattern == "space" else n
    q_, k_, v_ = group(q[:, 1:]), group(k[:, 1:]), group(v[:, 1:])
    k_ = torch.cat([k[:, :1].repeat_interleave(r, dim=0), k_], dim=1)
    v_ = torch.cat([v[:, :1].repeat_interleave(r, dim=0), v_], dim=1)
    out = attn(q_, k_, v_)
    if pattern == "space":
        out = out.reshape(b * h, frames * n, d)
    else:
        out = out.reshape(b * h, n, frames, d).transpose(1, 2).reshape(b * h, frames * n, d)
    out = torch.cat([cls_out, out], dim=1).reshape(b, h, length, d)
    return out.transpose(1, 2).reshape(b, length, h * d)


def no_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, frames: int, pattern: str
) -> torch.Tensor:
    """Not attention: passes v through. Timing it bounds any attention kernel's gain."""
    b, h, length, d = v.shape
    return v.transpose(1, 2).reshape(b, length, h * d)


def _randomise_time_attention(model: SpaceTimeTransformer) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "timeattn" in name:
                p.normal_(0, 0.02)


def _step_fn(
    model: SpaceTimeTransformer, video: torch.Tensor, autocast: torch.dtype | None
) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        if autocast is not None:
            with torch.autocast(video.device.type, dtype=autocast):
                out = model(video)
        else:
            out = model(video)
        out.float().square().mean().backward()

    return step


def _clock(device: torch.device) -> float:
    """GPU: wall time. CPU: this process's CPU time, which other jobs on a shared machine do
    not inflate (one intra-op thread, so CPU time is the step's compute time)."""
    return time.perf_counter() if device.type == "cuda" else time.process_time()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _kernel_only(
    model: SpaceTimeTransformer,
    video: torch.Tensor,
    repeats: int,
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, float]:
    """Forward+backward of the attention kernels alone (space + time) at the model's shapes:
    ours (its per-device kernel choice), ours forced onto SDPA, and the reference."""
    b, f = video.shape[:2]
    h = model.blocks[0].attn.num_heads
    d = model.embed_dim // h
    length = 1 + f * model.patches_per_frame
    qkv0 = torch.randn(b, length, 3 * h * d, device=device, dtype=dtype)
    fns = {
        "ours": divided_attention,
        "ours_forced_sdpa": partial(
            divided_attention, kernel=torch.nn.functional.scaled_dot_product_attention
        ),
        "reference": reference_attention,
    }
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats + 2):
        for name, fn in fns.items():
            qkv = qkv0.clone().requires_grad_()
            q, k, v = qkv.view(b, length, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)
            _sync(device)
            t0 = _clock(device)
            (fn(q, k, v, f, "space") + fn(q, k, v, f, "time")).float().sum().backward()
            _sync(device)
            times[name].append(_clock(device) - t0)
    return {name: 1000 * statistics.median(ts[2:]) for name, ts in times.items()}


def run(args: argparse.Namespace) -> dict[str, object]:
    device = torch.device("cuda" if args.gpu else "cpu")
    gpu_mode = args.gpu or args.dry_run
    if gpu_mode:
        dims = dict(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12)
        if args.dry_run:  # the GPU code path on CPU with a tiny model, to check the script
            dims = dict(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=4)
        batch = args.batch or 8
        variants = {"ours_bf16_sdpa": (divided_attention, torch.bfloat16)}
        variants["reference_fp32"] = (reference_attention, None)
        if args.with_ours_fp32:
            variants["ours_fp32_sdpa"] = (divided_attention, None)
    else:
        torch.set_num_threads(args.threads)
        # ViT-S/16-224 (384 wide, 6 heads) or ViT-Ti (192, 3), 2 blocks, the real token count
        dims = dict(
            img_size=224,
            patch_size=args.patch,
            embed_dim=args.width,
            depth=2,
            num_heads=args.width // 64,
        )
        batch = args.batch or 2
        if args.precision == "bf16":
            variants = {"ours_bf16": (divided_attention, torch.bfloat16)}
            variants["reference_bf16"] = (reference_attention, torch.bfloat16)
        else:
            variants = {"ours_fp32_sdpa": (divided_attention, None)}
        variants["reference_fp32"] = (reference_attention, None)
    if args.bound:
        # in the main variant's precision: its bound, against the reference in that precision
        variants["no_attention_bound"] = (no_attention, next(iter(variants.values()))[1])
    torch.manual_seed(0)
    model = SpaceTimeTransformer(num_frames=args.frames, **dims).to(device).train()
    _randomise_time_attention(model)
    size = dims["img_size"]
    video = torch.randn(batch, args.frames, 3, size, size, device=device)

    # fp32 equivalence of the two kernels on this device, whole model, same weights
    with torch.no_grad():
        model.set_attention(reference_attention)
        ref = model.forward_tokens(video[:2])
        model.set_attention(divided_attention)
        ours = model.forward_tokens(video[:2])
    max_abs_diff = (ours - ref).abs().max().item()
    flash_ok = None
    if gpu_mode:  # prove every SDPA call can run on the flash kernel (raises otherwise)
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            _step_fn(model, video[:2], torch.bfloat16)()
        flash_ok = True

    times: dict[str, list[float]] = {name: [] for name in variants}
    peak: dict[str, float] = {}
    for name, (fn, dtype) in variants.items():  # warm-up + peak memory
        model.set_attention(fn)
        step = _step_fn(model, video, dtype)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(args.warmup):
            step()
        _sync(device)
        if device.type == "cuda":
            peak[name] = torch.cuda.max_memory_allocated() / 2**30
    for _ in range(args.repeats):  # interleaved timing
        for name, (fn, dtype) in variants.items():
            model.set_attention(fn)
            step = _step_fn(model, video, dtype)
            _sync(device)
            t0 = _clock(device)
            step()
            _sync(device)
            times[name].append(_clock(device) - t0)
    kernel_dtype = torch.bfloat16 if args.precision == "bf16" and not gpu_mode else torch.float32
    kernel = _kernel_only(model, video, args.repeats, device, kernel_dtype)
    compiled = _compiled(model, video, args, device) if args.compile else None
    result: dict[str, object] = {
        "device": torch.cuda.get_device_name() if args.gpu else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "clock": "wall" if args.gpu else "process CPU time",
        "dry_run": args.dry_run,
        "model": dims,
        "frames": args.frames,
        "batch": batch,
        "repeats": args.repeats,
        "fp32_max_abs_diff_vs_reference": max_abs_diff,
        "flash_kernel_ok": flash_ok,
        "clips_per_s": {},
        "median_step_s": {},
        "peak_mem_gib": peak,
        "precision": "bf16 autocast vs fp32" if gpu_mode else args.precision,
        "kernel_only_median_ms": kernel,
        "kernel_only_dtype": str(kernel_dtype).removeprefix("torch."),
        "compiled": compiled,
    }
    for name, ts in times.items():
        med = statistics.median(ts)
        result["median_step_s"][name] = med  # type: ignore[index]
        result["clips_per_s"][name] = batch / med  # type: ignore[index]
    rates = result["clips_per_s"]
    main = "ours_bf16_sdpa" if gpu_mode else next(iter(variants))
    result["speedup_vs_reference"] = rates[main] / rates["reference_fp32"]  # type: ignore[index]
    if "reference_bf16" in rates:  # type: ignore[operator]
        result["speedup_vs_reference_bf16"] = rates[main] / rates["reference_bf16"]  # type: ignore[index]
    if args.bound:  # the largest speed-up any attention kernel could give here
        same = "reference_bf16" if "reference_bf16" in rates else "reference_fp32"  # type: ignore[operator]
        result["speedup_ceiling"] = rates["no_attention_bound"] / rates[same]  # type: ignore[index]
        result["speedup_ceiling_against"] = same
    return result


def _compiled(
    model: SpaceTimeTransformer, video: torch.Tensor, args: argparse.Namespace, device: torch.device
) -> dict[str, float]:
    """``torch.compile`` (inductor) of ours, same precision as the main variant: time to the
    first compiled step, then the median step and its peak memory."""
    model.set_attention(divided_attention)
    dtype = torch.bfloat16 if (args.gpu or args.dry_run) else None
    step = _step_fn(torch.compile(model), video, dtype)  # type: ignore[arg-type]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    step()
    _sync(device)
    compile_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.repeats):
        _sync(device)
        t0 = _clock(device)
        step()
        _sync(device)
        times.append(_clock(device) - t0)
    med = statistics.median(times)
    out = {"first_step_s": compile_s, "median_step_s": med, "clips_per_s": video.shape[0] / med}
    if device.type == "cuda":
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="ViT-B/16-224 on CUDA, bf16 vs fp32 ref")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--batch", type=int, default=0, help="clips per step (0: 2 CPU / 8 GPU)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--width", type=int, default=384, help="CPU: 384 = ViT-S, 192 = ViT-Ti")
    ap.add_argument("--patch", type=int, default=16, help="CPU: patch size (8: 784 patches/frame)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (CPU mode)")
    ap.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="CPU: ours in fp32, or under bf16 autocast (then the reference in both)",
    )
    ap.add_argument("--bound", action="store_true", help="also time a no-attention lower bound")
    ap.add_argument("--dry-run", action="store_true", help="the --gpu code path, tiny, on CPU")
    ap.add_argument("--with-ours-fp32", action="store_true", help="GPU: also time ours in fp32")
    ap.add_argument("--compile", action="store_true", help="also time ours under torch.compile")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
