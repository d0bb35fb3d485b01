"""``webvid doctor``: what the toolkit needs, what this machine has, and how to fix the gaps.

Takes nothing but a data root (for the free-disk figure). Produces a list of :class:`Check`
results (pure data, testable) and, through the CLI, a rich table; exits non-zero when a
required piece is missing, naming the command that installs it.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from webvid.cliutil import console

#: Python packages the toolkit imports: (distribution, import name, required).
PACKAGES: tuple[tuple[str, str, bool], ...] = (
    ("aiohttp", "aiohttp", True),
    ("yt-dlp", "yt_dlp", True),
    ("webdataset", "webdataset", True),
    ("ffmpeg-python", "ffmpeg", True),
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
MIN_FREE_BYTES = 5 * 2**30


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    required: bool = True
    fix: str = ""


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
    path = Path(root)
    while not path.exists() and path != path.parent:
        path = path.parent
    free = shutil.disk_usage(path).free
    ok = free >= MIN_FREE_BYTES
    return Check(
        f"free disk in {Path(root)}",
        ok,
        f"{free / 2**30:.1f} GiB",
        False,
        "" if ok else "free space or choose another data root: media and shards need room",
    )


@click.command("doctor")
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Data root to check for free disk.",
)
def doctor(root: str) -> None:
    """Check ffmpeg, Python packages, torch and disk; exit 1 if something required is missing."""
    checks = check_all(root)
    table = Table("check", "found", "status", "fix", header_style="bold")
    for c in checks:
        status = (
            "[green]ok[/]" if c.ok else ("[red]MISSING[/]" if c.required else "[yellow]optional[/]")
        )
        table.add_row(escape(c.name), escape(c.found), status, escape(c.fix))
    console.print(table)
    missing = [c for c in checks if c.required and not c.ok]
    if missing:
        console.print(
            f"[red]{len(missing)} required piece(s) missing.[/] Fix: "
            + "; ".join(sorted({c.fix for c in missing}))
        )
        raise SystemExit(1)
    console.print("[green]everything webvid needs is here[/]")
