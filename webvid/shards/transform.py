"""One ffmpeg pass per video: decode once into analysis frames and (when needed) the output.

Takes a source path, its :class:`~webvid.shards.probe.ProbeInfo` and the recipe; produces

* a :class:`VideoPlan`: ``copy`` (the original bytes already meet the target), ``remux``
  (stream copy to drop audio or move ``moov`` to the front) or ``transcode`` (H.264 yuv420p,
  short side at most S, fps cap, trimmed to the maximum duration, audio dropped by default,
  ``+faststart``, a keyframe every ``keyframe_interval_s``; rotation applied by ffmpeg's
  autorotate, odd sizes rounded to even);
* the ``size x size`` analysis frames at ``analysis.fps`` (grey for the scores and hashes,
  plus each frame's chroma grid for the duplicate check; the proof that the clip decodes),
  read from ffmpeg's stdout in the same process that writes the output, so
  the clip is decoded exactly once and never held in memory;
* optionally K JPEG frames at segment midpoints of the output (:func:`extract_frames`).

Outputs are written to a temp name in the caller's staging folder and renamed when complete.
All outputs are bit-exact (``+bitexact``, no metadata), so reruns give identical bytes.
Every ffmpeg runs through :func:`webvid.shards.tools.run_tool`: its address space is capped at
``transform.max_tool_memory_bytes`` and it is killed by PID at its wall-clock limit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from webvid.shards.probe import ProbeInfo
from webvid.shards.recipe import AnalysisConfig, TransformConfig
from webvid.shards.scores import chroma_grid
from webvid.shards.tools import DEFAULT_MAX_MEMORY_BYTES, run_tool

BITEXACT = [
    "-fflags",
    "+bitexact",
    "-flags:v",
    "+bitexact",
    "-map_metadata",
    "-1",
    "-map_chapters",
    "-1",
]


@dataclass(frozen=True)
class VideoPlan:
    kind: str  # "copy" | "remux" | "transcode"
    width: int
    height: int
    fps: float | None  # output fps when capped, else None (keep)
    trim_s: float | None  # output length cap, else None


@dataclass(frozen=True)
class DecodeResult:
    frames: np.ndarray  # (n, size, size) uint8 grey (luma)
    chroma: np.ndarray  # (n, 128) float: mean U and V per cell of each frame's 8x8 grid
    returncode: int
    stderr: str
    output: Path | None  # the finished output (renamed into place), None unless written
    timed_out: bool = False  # killed at the wall-clock limit
    out_of_memory: bool = False  # an allocation failed under the address-space cap


def even_size(width: int, height: int, max_short_side: int) -> tuple[int, int]:
    """Scale so the short side is at most ``max_short_side``; both sides even and >= 2."""
    scale = min(1.0, max_short_side / min(width, height))
    return (max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2))


def plan_video(p: ProbeInfo, cfg: TransformConfig) -> VideoPlan:
    """Copy, remux or transcode, from the probed facts (pure)."""
    assert p.width and p.height
    width, height = even_size(p.width, p.height, cfg.max_short_side)
    fps_cap = cfg.max_fps if p.fps and p.fps > cfg.max_fps + 1e-6 else None
    trim = cfg.max_duration_s if p.duration_s and p.duration_s > cfg.max_duration_s else None
    meets = (
        p.codec == "h264"
        and p.pix_fmt == "yuv420p"
        and "mp4" in p.container
        and p.rotation == 0
        and (width, height) == (p.width, p.height)
        and fps_cap is None
        and trim is None
    )
    if cfg.allow_copy and meets:
        drop_audio = p.has_audio and not cfg.keep_audio
        kind = "remux" if drop_audio or p.moov_first is False else "copy"
        return VideoPlan(kind, width, height, None, None)
    return VideoPlan("transcode", width, height, fps_cap, trim)


def _analysis_filter(a: AnalysisConfig) -> str:
    return f"fps={a.fps:g},scale={a.size}:{a.size}:flags=area,format=yuv444p"


def _encode_args(plan: VideoPlan, cfg: TransformConfig, src_fps: float | None) -> list[str]:
    fps = plan.fps or src_fps or 25.0
    gop = max(1, int(round(fps * cfg.keyframe_interval_s)))
    args = [
        "-c:v",
        cfg.codec,
        "-preset",
        cfg.preset,
        "-crf",
        str(cfg.crf),
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-pix_fmt",
        "yuv420p",
        "-threads",
        str(cfg.threads),
    ]
    args += ["-c:a", "aac", "-b:a", "128k"] if cfg.keep_audio else ["-an"]
    return args


def build_command(
    src: Path,
    p: ProbeInfo,
    plan: VideoPlan | None,
    out_tmp: Path | None,
    tcfg: TransformConfig,
    acfg: AnalysisConfig,
) -> list[str]:
    """The ffmpeg command: analysis frames to stdout, plus the output file when ``out_tmp``."""
    window = min(p.duration_s or tcfg.max_duration_s, tcfg.max_duration_s)
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-y",
        "-hide_banner",
        "-v",
        "error",
        "-threads",
        str(tcfg.threads),
        "-t",
        f"{window:.3f}",
        "-i",
        str(src),
        "-filter_complex_threads",
        "1",
    ]
    if out_tmp is None or plan is None or plan.kind != "transcode":
        cmd += ["-filter_complex", f"[0:v:0]{_analysis_filter(acfg)}[an]"]
        if out_tmp is not None and plan is not None:  # remux: stream copy beside the analysis
            cmd += ["-map", "0:v:0", "-c:v", "copy"]
            cmd += ["-map", "0:a:0?", "-c:a", "copy"] if tcfg.keep_audio else ["-an"]
            cmd += [*BITEXACT, "-movflags", "+faststart", "-f", "mp4", str(out_tmp)]
    else:
        chain = f"scale={plan.width}:{plan.height}:flags=bicubic,setsar=1,format=yuv420p"
        if plan.fps:
            chain = f"fps={plan.fps:g}," + chain
        cmd += [
            "-filter_complex",
            f"[0:v:0]split=2[a0][t0];[a0]{_analysis_filter(acfg)}[an];[t0]{chain}[tx]",
        ]
        cmd += ["-map", "[tx]"] + (["-map", "0:a:0?"] if tcfg.keep_audio else [])
        cmd += _encode_args(plan, tcfg, p.fps)
        cmd += [*BITEXACT, "-movflags", "+faststart", "-f", "mp4", str(out_tmp)]
    cmd += ["-map", "[an]", "-f", "rawvideo", "pipe:1"]
    return cmd


def decode_video(
    src: Path,
    p: ProbeInfo,
    plan: VideoPlan | None,
    out: Path | None,
    tcfg: TransformConfig,
    acfg: AnalysisConfig,
) -> DecodeResult:
    """Run the one ffmpeg pass; ``out`` (when given and the plan writes one) appears only if it worked."""
    writes = out is not None and plan is not None and plan.kind != "copy"
    tmp = out.with_name(f".tmp-{out.name}") if writes and out is not None else None
    cmd = build_command(src, p, plan, tmp, tcfg, acfg)
    timeout = 120.0 + 10.0 * min(p.duration_s or 0.0, tcfg.max_duration_s)
    run = run_tool(cmd, timeout_s=timeout, max_memory_bytes=tcfg.max_tool_memory_bytes)
    rc, raw, err = run.returncode, run.stdout, run.stderr
    plane = acfg.size * acfg.size
    n = len(raw) // (3 * plane)
    planes = np.frombuffer(raw[: n * 3 * plane], np.uint8).reshape(n, 3, acfg.size, acfg.size)
    frames = planes[:, 0]
    chroma = chroma_grid(planes[:, 1:])
    done: Path | None = None
    if tmp is not None and out is not None:
        if rc == 0 and tmp.is_file() and tmp.stat().st_size > 0:
            os.replace(tmp, out)
            done = out
        else:
            tmp.unlink(missing_ok=True)
    return DecodeResult(frames, chroma, rc, err[-4000:], done, run.timed_out, run.out_of_memory)


def expected_analysis_frames(p: ProbeInfo, tcfg: TransformConfig, acfg: AnalysisConfig) -> int:
    window = min(p.duration_s or 0.0, tcfg.max_duration_s)
    return int(math.floor(window * acfg.fps))


def extract_frames(
    video: Path,
    duration_s: float,
    k: int,
    quality: int,
    out_prefix: Path,
    max_memory_bytes: int | None = DEFAULT_MAX_MEMORY_BYTES,
) -> list[Path]:
    """K JPEGs at the midpoints of K equal segments: ``<out_prefix>.f00.jpg`` ... (renamed when done)."""
    if k <= 0 or duration_s <= 0:
        return []
    rate = k / duration_s
    tmp_pattern = out_prefix.with_name(f".tmp-{out_prefix.name}.f%02d.jpg")
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-y",
        "-hide_banner",
        "-v",
        "error",
        "-threads",
        "1",
        "-i",
        str(video),
        "-vf",
        f"fps=fps={rate:.6f}:start_time={duration_s / (2 * k):.6f}",
        "-frames:v",
        str(k),
        "-start_number",
        "0",
        "-q:v",
        str(quality),
        *BITEXACT,
        "-f",
        "image2",
        str(tmp_pattern),
    ]
    run = run_tool(cmd, timeout_s=120.0, max_memory_bytes=max_memory_bytes)
    made = sorted(out_prefix.parent.glob(f".tmp-{out_prefix.name}.f??.jpg"))
    if not run.ok:
        for f in made:
            f.unlink(missing_ok=True)
        return []
    outs = []
    for i, f in enumerate(made):
        final = out_prefix.with_name(f"{out_prefix.name}.f{i:02d}.jpg")
        os.replace(f, final)
        outs.append(final)
    return outs
