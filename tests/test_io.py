"""Atomic files: the final name never holds a partial file, even after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pytest

from webvid import contract
from webvid import io as wio
from webvid.errors import WebvidError

WRITER = textwrap.dedent(
    """
    import sys
    from webvid import io as wio
    final, marker = sys.argv[1], sys.argv[2]
    chunk = b"N" * (1 << 20)
    with wio.atomic_write(final, "wb") as fh:
        for i in range(400):  # 400 MiB: far longer than the test waits
            fh.write(chunk)
            if i == 8:
                open(marker, "w").close()
    """
)


@pytest.mark.parametrize("previous", [None, b"complete old version"])
def test_sigkill_mid_write_leaves_no_partial_file(tmp_path: Path, previous: bytes | None) -> None:
    final = tmp_path / "big.bin"
    marker = tmp_path / "started"
    if previous is not None:
        final.write_bytes(previous)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(final), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "writer exited early"
            assert time.monotonic() < deadline, "writer never started"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    if previous is None:
        assert not final.exists()
    else:
        assert final.read_bytes() == previous
    temps = [p for p in tmp_path.iterdir() if p.name.startswith(wio.TMP_PREFIX)]
    assert temps and temps[0].stat().st_size >= 8 << 20  # the partial data went to the temp name
    assert wio.remove_stale_temps(tmp_path) == len(temps)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(wio.TMP_PREFIX)]


def test_exception_inside_writer_keeps_old_file(tmp_path: Path) -> None:
    final = tmp_path / "a.json"
    wio.write_json(final, {"v": 1})
    with pytest.raises(RuntimeError), wio.atomic_write(final, "w") as fh:
        fh.write('{"v": 2')
        raise RuntimeError("boom")
    assert json.loads(final.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_path_for_tools_and_parquet(tmp_path: Path) -> None:
    final = tmp_path / "sub" / "t.parquet"
    table = contract.rows_to_table(
        [{"clip_id": "a", "status": "success"}], contract.CRAWL_RECORD_SCHEMA
    )
    wio.write_parquet(final, table, contract.CRAWL_RECORD_SCHEMA)
    import pyarrow.parquet as pq

    assert pq.read_table(final).num_rows == 1
    with pytest.raises(ValueError):
        wio.write_parquet(
            tmp_path / "bad.parquet", pa.table({"x": [1]}), contract.CRAWL_RECORD_SCHEMA
        )
    assert not (tmp_path / "bad.parquet").exists()
    with pytest.raises(ValueError), wio.atomic_write(final, "ab"):
        pass


def test_manifest_round_trip_and_validation(tmp_path: Path) -> None:
    assert wio.read_manifest(tmp_path) is None
    m = wio.write_manifest(
        tmp_path, "crawl", config={"a": 1}, counts={"success": 3}, source="x.csv"
    )
    back = wio.read_manifest(tmp_path)
    assert back == json.loads(json.dumps(m))
    assert (
        back["format"] == "webvid/crawl"
        and back["counts"] == {"success": 3}
        and back["source"] == "x.csv"
    )
    assert "pyarrow" in back["versions"]
    (tmp_path / "manifest.json").write_text('{"kind": "crawl"}')
    with pytest.raises(WebvidError, match="manifest lacks"):
        wio.read_manifest(tmp_path)
    with pytest.raises(ValueError):
        wio.write_manifest(tmp_path, "nope", config={}, counts={})


def test_safe_join(tmp_path: Path) -> None:
    assert wio.safe_join(tmp_path, "media/ab/x.mp4") == (tmp_path / "media/ab/x.mp4").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../x", "a\x00b"):
        with pytest.raises(WebvidError):
            wio.safe_join(tmp_path, bad)


def test_temp_names_live_in_the_target_folder(tmp_path: Path) -> None:
    seen = []
    with wio.atomic_path(tmp_path / "x.bin") as tmp:
        seen.append(tmp)
        assert tmp.parent == tmp_path and tmp.name.startswith(wio.TMP_PREFIX)
        tmp.write_bytes(b"1")
    assert (tmp_path / "x.bin").read_bytes() == b"1" and not seen[0].exists()
    assert os.listdir(tmp_path) == ["x.bin"]
