"""CLI conventions: --version, help, one-line errors, --debug tracebacks, doctor."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from webvid import doctor
from webvid.cli import LAZY_COMMANDS

CliRunner = Callable[[list[str]], tuple[int, str, str]]  # the run_cli fixture (conftest.py)


def test_version_and_help(capsys: pytest.CaptureFixture[str], run_cli: CliRunner) -> None:
    code, out, _ = run_cli(["--version"])
    assert code == 0 and out.startswith("webvid, version ")
    code, out, _ = run_cli(["--help"])
    assert code == 0
    for name in ("query", "doctor"):
        assert name in out


def test_unknown_command_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    code, _, err = run_cli(["frobnicate"])
    assert code == 2 and "No such command" in err


def test_every_registered_command_shows_help(
    capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    from webvid.cli import _available

    for name in LAZY_COMMANDS:
        if not _available(name):
            continue
        code, out, err = run_cli([name, "--help"])
        assert code == 0, (name, err)
        assert "Usage:" in out


def test_library_error_is_one_line_and_debug_shows_traceback(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "webvid.cli",
        "query",
        "--root",
        str(tmp_path / "nope"),
        "SELECT 1",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: data root not found")
    assert "Traceback" not in res.stderr
    res = subprocess.run(
        cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, timeout=120
    )
    assert res.returncode != 0 and "Traceback" in res.stderr and "InputError" in res.stderr


def test_doctor_reports_and_fails_when_a_tool_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    checks = {c.name: c for c in doctor.check_all(".")}
    assert checks["ffprobe"].ok and checks["python: torch"].ok
    assert checks["ffmpeg encoder libx264"].ok
    code, out, _ = run_cli(["doctor"])
    assert code == 0 and "libx264" in out
    monkeypatch.setenv("PATH", "/nonexistent")  # hide ffmpeg/ffprobe from this process
    code, out, _ = run_cli(["doctor"])
    assert code == 1
    assert "MISSING" in out and "apt-get install -y ffmpeg" in out


NO_TORCH = """
import sys
from webvid.cli import main

try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
assert "torch" not in sys.modules, "torch was imported"
"""


def test_help_and_query_import_no_torch(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"clip_id": ["a", "b"]}), tmp_path / "t.parquet")
    for args in (["--help"], ["-q", "query", "--root", str(tmp_path), "SELECT count(*) FROM t"]):
        res = subprocess.run(
            [sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, (args, res.stderr)
