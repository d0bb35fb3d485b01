"""The checks behind ``webvid doctor``: what the toolkit needs, what this machine has, the fixes.

Takes nothing but a data root (for the free-disk figure). Produces a list of :class:`Check`
results (pure data, testable; nothing printed). The command (:mod:`webvid.cli.doctor`) shows
them as a table and exits non-zero when a required piece is missing, naming the command that
installs it.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

#: Python packages the toolkit imports: (distribution, import name, required).
PACKAGES: tuple[tuple[str, str, bool], ...] = (
    ("aiohttp", "aiohttp", True),
    ("yt-dlp", "yt_dlp", True),
    ("webdataset", "webdataset", True),
    ("lxml", "lxml", True),
    ("cssselect", "cssselect", True),
    ("protego", "protego", True),
    ("pyarrow", "pyarrow", True),
    ("duckdb", "duckdb", True),
    ("torch", "torch", True),
    ("transformers", "transformers", True),
    ("click", "click", True),
    ("rich", "rich", True),
    ("numpy", "numpy", True),
    ("pillow", "PIL", True),
    ("matplotlib", "matplotlib", True),
    ("ray", "ray", False),
)

FIX_FFMPEG = "sudo apt-get install -y ffmpeg   (or: make setup)"
FIX_PACKAGES = "make setup   (or: .venv/bin/pip install 'torch==2.13.0' -e '.[dev]')"
#: Free disk in the data root: below either FAIL figure doctor fails (exit 1): a crawl or shard
#: run would stop with "no space left" and take other jobs on the disk down with it. Below
#: either WARN figure it says the disk is low.
FAIL_FREE_BYTES = 1 * 2**30
FAIL_FREE_FRACTION = 0.02
WARN_FREE_BYTES = 5 * 2**30
WARN_FREE_FRACTION = 0.05


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    required: bool = True
    fix: str = ""
    warn: bool = False  # passes, but is close to failing (shown as "low")
    fail_label: str = "MISSING"  # what a failed required check is called in the table


def _tool_version(tool: str) -> str | None:
    path = shutil.which(tool)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.splitlines()[0] if out else ""
    parts = first.split()
    return parts[2] if len(parts) > 2 and parts[1] == "version" else first or "unknown"


def _encoders() -> set[str]:
    path = shutil.which("ffmpeg")
    if path is None:
        return set()
    try:
        out = subprocess.run(
            [path, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return names


def check_all(root: str | os.PathLike[str] = ".") -> list[Check]:
    checks: list[Check] = []
    for tool in ("ffmpeg", "ffprobe"):
        v = _tool_version(tool)
        checks.append(Check(tool, v is not None, v or "missing", True, "" if v else FIX_FFMPEG))
    enc = _encoders()
    has_x264 = "libx264" in enc
    checks.append(
        Check(
            "ffmpeg encoder libx264",
            has_x264,
            "yes" if has_x264 else "missing",
            True,
            "" if has_x264 else FIX_FFMPEG,
        )
    )
    for dist, mod, required in PACKAGES:
        try:
            version = metadata.version(dist)
            importlib.import_module(mod)
            checks.append(Check(f"python: {dist}", True, version, required))
        except Exception as exc:  # missing, or installed but broken on import
            fix = FIX_PACKAGES if required else "pip install -e '.[ray]'"
            found = (
                "missing"
                if isinstance(exc, metadata.PackageNotFoundError | ImportError)
                else f"broken: {exc}"
            )
            checks.append(Check(f"python: {dist}", False, found, required, fix))
    checks.append(_torch_check())
    checks.append(_disk_check(root))
    return checks


def _torch_check() -> Check:
    try:
        import torch

        cuda = torch.cuda.is_available()
        found = f"{torch.__version__}, {torch.get_num_threads()} threads, " + (
            f"CUDA: {torch.cuda.get_device_name(0)}" if cuda else "CPU only"
        )
        return Check("torch runtime", True, found, True)
    except Exception as exc:
        return Check("torch runtime", False, f"broken: {exc}", True, FIX_PACKAGES)


def _disk_check(root: str | os.PathLike[str]) -> Check:
    """Free space on the data root's disk: fails below 1 GiB or 2 %, low below 5 GiB or 5 %."""
    path = Path(root)
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    fraction = usage.free / usage.total if usage.total else 0.0
    fail = usage.free < FAIL_FREE_BYTES or fraction < FAIL_FREE_FRACTION
    warn = usage.free < WARN_FREE_BYTES or fraction < WARN_FREE_FRACTION
    need = f"{FAIL_FREE_BYTES / 2**30:.0f} GiB and {FAIL_FREE_FRACTION:.0%}"
    fix = ""
    if fail:
        fix = f"free space or choose another data root (--root): webvid needs at least {need} free"
    elif warn:
        fix = "little room left: media and shards of a large crawl will not fit"
    return Check(
        f"free disk in {Path(root)}",
        not fail,
        f"{usage.free / 2**30:.1f} GiB ({fraction:.1%} of {usage.total / 2**30:.0f} GiB)",
        True,
        fix,
        warn=warn and not fail,
        fail_label="FULL",
    )
