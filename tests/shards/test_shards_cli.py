"""`webvid shard` through the real command line: funnel table, errors as one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from webvid.cli import cli


def test_cli_prints_the_funnel(tmp_path: Path, standard_crawl: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "shard",
            str(standard_crawl),
            "-o",
            str(out),
            "--workers",
            "1",
            "--set",
            "filters.min_short_side=32",
            "--set",
            "output.max_samples=3",
        ],
    )
    assert result.exit_code == 0, result.output
    for word in ("curation funnel", "inputs", "still", "duplicate_exact", "kept", "6/11 kept"):
        assert word in result.output
    assert (out / "manifest.json").is_file() and (out / "train" / "00001.tar").is_file()


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "WEBVID_NO_PROGRESS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "webvid.cli",
            "shard",
            str(tmp_path / "missing"),
            "-o",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "crawl dir not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "webvid.cli",
            "shard",
            str(tmp_path),
            "-o",
            str(tmp_path / "o"),
            "--set",
            "filters.nope=1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and "unknown key" in proc.stderr
