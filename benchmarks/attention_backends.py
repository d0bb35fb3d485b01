"""Benchmark: which SDPA backend serves each divided-attention pattern fastest (GPU).

Times forward+backward of :func:`webvid.model.vit.divided_attention` for the space and the time
pattern alone at ViT-B/16-224 shapes (12 heads × 64, 196 patches, 4 frames), with each SDPA
backend forced in turn (flash, memory-efficient, cuDNN, math) and with PyTorch's own choice, in
fp32 and bf16, against the reference formulation (einsum + softmax) at the same precision.
Medians of CUDA-event times; runs interleaved. Prints a table and writes JSON with ``--json``.

    python benchmarks/attention_backends.py --json $OUT/attention_backends.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_bench import reference_attention

from webvid.model.vit import divided_attention

BACKENDS = {
    "auto": None,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "math": SDPBackend.MATH,
}


def _time(fn: Callable[[], None], repeats: int) -> float | None:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    try:
        fn()
        fn()
    except RuntimeError:  # backend refuses this dtype/shape
        return None
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    b, h, d, n, f = args.batch, 12, 64, 196, args.frames
    length = 1 + f * n
    results: dict[str, dict[str, dict[str, float | None]]] = {}
    for dtype in (torch.float32, torch.bfloat16):
        qkv0 = torch.randn(b, length, 3 * h * d, device="cuda", dtype=dtype)
        for pattern in ("space", "time"):
            row: dict[str, float | None] = {}

            def step(
                kernel: Callable[..., torch.Tensor],
                qkv0: torch.Tensor = qkv0,
                pattern: str = pattern,
            ) -> Callable[[], None]:
                def run() -> None:
                    qkv = qkv0.clone().requires_grad_()
                    q, k, v = qkv.view(b, length, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)
                    kernel(q, k, v, f, pattern).sum().backward()

                return run

            for name, backend in BACKENDS.items():
                if backend is None:
                    row[name] = _time(step(divided_attention), args.repeats)
                    continue

                def forced(backend: SDPBackend = backend) -> None:
                    with sdpa_kernel(backend):
                        step(divided_attention)()

                row[name] = _time(forced, args.repeats)
            row["reference"] = _time(step(reference_attention), args.repeats)
            key = f"{str(dtype).removeprefix('torch.')}/{pattern}"
            results[key] = {"median_ms": row}
            cells = "  ".join(f"{k}={'-' if v is None else f'{v:.2f}'}" for k, v in row.items())
            print(f"{key:16s} {cells}", flush=True)
    out = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "batch": b,
        "frames": f,
        "results": results,
    }
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
