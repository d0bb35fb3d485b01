"""webvid score killed mid-way (SIGKILL, a real subprocess) and rerun gives the table of one clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from webvid.curate.parts import parts_dir
from webvid.synth import shards as synth

from .conftest import specs

SHARDS = 8


def _cmd(ckpt: Path, shards: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "webvid.cli", "-q", "score", str(ckpt), str(shards),
            "--out", str(out), "--batch-size", "2"]  # fmt: skip


def _finished_parts(out: Path) -> list[Path]:
    folder = parts_dir(out)
    return sorted(folder.glob("[0-9]*.parquet")) if folder.is_dir() else []


def test_killed_and_resumed_equals_a_clean_run(tiny_ckpt: Path, tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    synth.write_video_shards(shards, specs(2 * SHARDS), per_shard=2, frames=8, pre_extract=4)
    env = {**os.environ, "WEBVID_NO_PROGRESS": "1"}

    clean = tmp_path / "clean" / "scores.parquet"
    subprocess.run(_cmd(tiny_ckpt, shards, clean), check=True, env=env, timeout=600)

    out = tmp_path / "killed" / "scores.parquet"
    proc = subprocess.Popen(_cmd(tiny_ckpt, shards, out), env=env)
    deadline = time.monotonic() + 300
    while not _finished_parts(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(_finished_parts(out))
    assert 1 <= done < SHARDS, f"the kill came when {done} of {SHARDS} parts were committed"
    assert not out.exists()

    subprocess.run(_cmd(tiny_ckpt, shards, out), check=True, env=env, timeout=600)
    resumed, fresh = pq.read_table(out), pq.read_table(clean)
    assert resumed.num_rows == 2 * SHARDS
    assert resumed.equals(fresh)
    assert resumed.schema.metadata == fresh.schema.metadata
    # the parts themselves: the same bytes either way
    for a, b in zip(_finished_parts(out), _finished_parts(clean), strict=True):
        assert a.read_bytes() == b.read_bytes()
