"""webvid score killed mid-way (SIGKILL, a real subprocess) and rerun gives the table of one
clean run, with and without decode workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from webvid.curate.parts import parts_dir
from webvid.synth import shards as synth

from .conftest import specs

SHARDS = 8


def _cmd(ckpt: Path, shards: Path, out: Path, workers: int = 0) -> list[str]:
    return [sys.executable, "-m", "webvid.cli", "-q", "score", str(ckpt), str(shards),
            "--out", str(out), "--batch-size", "2", "--workers", str(workers)]  # fmt: skip


def _finished_parts(out: Path) -> list[Path]:
    folder = parts_dir(out)
    return sorted(folder.glob("[0-9]*.parquet")) if folder.is_dir() else []


ENV = {**os.environ, "WEBVID_NO_PROGRESS": "1"}


@pytest.fixture(scope="module")
def clean_run(tiny_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The shard set and its table from one clean run without decode workers."""
    root = tmp_path_factory.mktemp("resume")
    shards = root / "shards"
    synth.write_video_shards(shards, specs(2 * SHARDS), per_shard=2, frames=8, pre_extract=4)
    clean = root / "clean" / "scores.parquet"
    subprocess.run(_cmd(tiny_ckpt, shards, clean), check=True, env=ENV, timeout=600)
    return shards, clean


@pytest.mark.parametrize("workers", [0, 2])
def test_killed_and_resumed_equals_a_clean_run(
    tiny_ckpt: Path, clean_run: tuple[Path, Path], tmp_path: Path, workers: int
) -> None:
    """Killed and rerun with ``workers`` decode workers: the clean run's table and parts."""
    shards, clean = clean_run
    out = tmp_path / "killed" / "scores.parquet"
    proc = subprocess.Popen(_cmd(tiny_ckpt, shards, out, workers), env=ENV)
    deadline = time.monotonic() + 300
    while not _finished_parts(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(_finished_parts(out))
    assert 1 <= done < SHARDS, f"the kill came when {done} of {SHARDS} parts were committed"
    assert not out.exists()

    subprocess.run(_cmd(tiny_ckpt, shards, out, workers), check=True, env=ENV, timeout=600)
    resumed, fresh = pq.read_table(out), pq.read_table(clean)
    assert resumed.num_rows == 2 * SHARDS
    assert resumed.equals(fresh)
    assert resumed.schema.metadata == fresh.schema.metadata
    # the parts themselves: the same bytes either way
    for a, b in zip(_finished_parts(out), _finished_parts(clean), strict=True):
        assert a.read_bytes() == b.read_bytes()
