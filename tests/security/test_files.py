"""Files on a shared disk: modes follow the umask, a full disk is one clear line, doctor sees it.

- Every committed file (atomic helpers, Parquet, manifests, tool-written temp paths, query
  output) gets ``0o666 & ~umask`` and folders ``0o777 & ~umask`` — not mkstemp's 0600 —
  checked in a subprocess per umask (the umask is process-global).
- ENOSPC is simulated, never produced by filling a disk: ``os.fsync`` or the writer raises
  the error a full disk gives (OSError 28, Arrow's errno-less IOError, torch.save's
  ``[enforce fail at inline_container.cc]`` RuntimeError with the disk nearly full).
- ``webvid doctor`` with ``shutil.disk_usage`` reporting a nearly full disk.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from webvid import doctor
from webvid import io as wio
from webvid.errors import DiskFullError

CliRunner = Callable[[list[str]], tuple[int, str, str]]  # the run_cli fixture (conftest.py)

WRITE_ALL = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    os.umask(int(sys.argv[2], 8))
    import pyarrow as pa
    from webvid import io as wio
    from webvid.cli import main
    out = Path(sys.argv[1])
    wio.write_bytes(out / "a/b/bytes.bin", b"x")
    wio.write_text(out / "text.txt", "x")
    wio.write_json(out / "j.json", {"a": 1})
    wio.write_parquet(out / "crawl/records/part-00000.parquet", pa.table({"clip_id": ["c"]}))
    with wio.atomic_path(out / "tool.tar") as tmp:
        tmp.write_bytes(b"tar")  # a tool writing to the temp path it is given
    with wio.atomic_path(out / "recreated.mp4") as tmp:
        tmp.unlink()  # a tool that deletes and recreates its output (like some muxers)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    with wio.atomic_write(out / "w.bin", "wb") as fh:
        fh.write(b"x")
    wio.write_manifest(out, "crawl", config={}, counts={})
    try:
        main(["--quiet", "query", "--root", str(out), "--format", "csv", "-o",
              str(out / "q/result.csv"), "SELECT * FROM crawl"])
    except SystemExit as exc:
        assert not exc.code, exc.code
    modes = {}
    for p in sorted(out.rglob("*")):
        modes[str(p.relative_to(out))] = oct(p.stat().st_mode & 0o777)
    print(json.dumps(modes))
    """
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "umask, file_mode, dir_mode", [("022", 0o644, 0o755), ("002", 0o664, 0o775)]
)
def test_committed_files_follow_the_umask(
    tmp_path: Path, umask: str, file_mode: int, dir_mode: int
) -> None:
    res = subprocess.run(
        [sys.executable, "-c", WRITE_ALL, str(tmp_path), umask],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    modes = json.loads(res.stdout.strip().splitlines()[-1])
    files = {k: v for k, v in modes.items() if (tmp_path / k).is_file()}
    dirs = {k: v for k, v in modes.items() if (tmp_path / k).is_dir()}
    assert set(files) >= {
        "a/b/bytes.bin",
        "text.txt",
        "j.json",
        "crawl/records/part-00000.parquet",
        "tool.tar",
        "recreated.mp4",
        "w.bin",
        "manifest.json",
        "q/result.csv",
    }
    assert set(dirs) >= {"a", "a/b", "crawl", "crawl/records", "q"}
    assert files == dict.fromkeys(files, oct(file_mode))
    assert dirs == dict.fromkeys(dirs, oct(dir_mode))
    assert not [k for k in modes if Path(k).name.startswith(wio.TMP_PREFIX)]


def test_umask_is_read_without_changing_it() -> None:
    before = os.umask(0o027)
    try:
        assert wio.umask() == 0o027 and wio.file_mode() == 0o640
        assert os.umask(0o027) == 0o027  # still set: reading did not change it
    finally:
        os.umask(before)


# ------------------------------------------------------------------------------------------
# A full disk
# ------------------------------------------------------------------------------------------


def _enospc(*_args: object, **_kw: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _assert_disk_full(info: pytest.ExceptionInfo[DiskFullError], path: Path) -> None:
    text = str(info.value)
    assert text.startswith(f"no space left writing {path} (")
    assert " GiB free on /" in text and "\n" not in text


def test_enospc_on_fsync_is_a_disk_full_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = tmp_path / "out/x.json"
    wio.write_json(final, {"old": True})
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(DiskFullError) as info:
        wio.write_json(final, {"new": True})
    _assert_disk_full(info, final)
    monkeypatch.undo()
    assert json.loads(final.read_text()) == {"old": True}  # untouched
    assert [p.name for p in final.parent.iterdir()] == ["x.json"]  # no temp left


def test_enospc_from_a_tool_writing_the_temp_path(tmp_path: Path) -> None:
    final = tmp_path / "00000.tar"
    with pytest.raises(DiskFullError) as info, wio.atomic_path(final) as tmp:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    _assert_disk_full(info, final)
    assert list(tmp_path.iterdir()) == []


def test_arrow_errno_less_enospc_is_a_disk_full_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_a: object, **_k: object) -> None:
        # what pyarrow raises on a full disk: an OSError subclass without errno set
        raise pa.ArrowIOError(
            "Error writing bytes to file. Detail: [errno 28] No space left on device"
        )

    monkeypatch.setattr(pq, "write_table", full)
    final = tmp_path / "records/part-00000.parquet"
    with pytest.raises(DiskFullError) as info:
        wio.write_parquet(final, pa.table({"a": [1]}))
    _assert_disk_full(info, final)


TORCH_FULL = (
    "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
    "data/0: file write failed"
)


def _disk(free: int, total: int = 100 * 2**30) -> object:
    return shutil._ntuple_diskusage(total, total - free, free)  # type: ignore[attr-defined]


def test_torch_save_on_a_full_disk_is_a_disk_full_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    from webvid.train.checkpoint import save_checkpoint

    def full(*_a: object, **_k: object) -> None:
        raise RuntimeError(TORCH_FULL)

    monkeypatch.setattr(torch, "save", full)
    real_usage = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: _disk(3 * 2**20))
    final = tmp_path / "run/latest.pt"
    with pytest.raises(DiskFullError) as info:
        save_checkpoint(final, torch.nn.Linear(2, 2), step=1)
    assert str(info.value).startswith(f"no space left writing {final} (0.0 GiB free on /")
    # the same failure on a disk with room is not ours to rename: it stays torch's error
    monkeypatch.setattr(shutil, "disk_usage", real_usage)
    with pytest.raises(RuntimeError, match="inline_container"):
        save_checkpoint(final, torch.nn.Linear(2, 2), step=1)
    assert not (tmp_path / "run").exists() or list((tmp_path / "run").iterdir()) == []


@pytest.fixture()
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    wio.write_parquet(root / "crawl/records/part-00000.parquet", pa.table({"clip_id": ["c"]}))
    return root


def test_cli_prints_one_line_and_exits_2_on_a_full_disk(
    data_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: CliRunner,
) -> None:
    out_file = tmp_path / "result.csv"
    monkeypatch.setattr(os, "fsync", _enospc)
    code, _, err = run_cli(
        ["query", "--root", str(data_root), "--format", "csv", "-o", str(out_file), "SELECT 1"]
    )
    assert code == 2
    text = " ".join(err.split())  # rich wraps long lines
    assert text.startswith(f"error: no space left writing {out_file} (")
    assert "GiB free on /" in text and "Traceback" not in err and "unexpected" not in err
    assert not out_file.exists()


def test_cli_names_a_raw_enospc_from_outside_the_atomic_helpers(
    data_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: CliRunner,
) -> None:
    from webvid.cli import query as query_cli

    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(data_root / "media/x.mp4"))

    monkeypatch.setattr(query_cli.q, "connect", full)
    code, _, err = run_cli(["query", "--root", str(data_root), "SELECT 1"])
    assert code == 2
    text = " ".join(err.split())
    assert text.startswith(f"error: no space left writing {data_root / 'media/x.mp4'} (")
    assert "unexpected" not in err and "Traceback" not in err


def test_cli_torch_disk_full_is_one_line(
    data_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: CliRunner,
) -> None:
    from webvid.cli import query as query_cli

    def full(*_a: object, **_k: object) -> None:
        with wio.atomic_path(data_root / "latest.pt"):
            raise RuntimeError(TORCH_FULL)

    monkeypatch.setattr(query_cli.q, "connect", full)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: _disk(0))
    code, _, err = run_cli(["query", "--root", str(data_root), "SELECT 1"])
    assert code == 2
    text = " ".join(err.split())
    assert text.startswith(f"error: no space left writing {data_root / 'latest.pt'} (0.0 GiB free")
    assert "enforce fail" not in err and "unexpected" not in err


# ------------------------------------------------------------------------------------------
# doctor and a nearly full disk
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "free, total, ok, warn",
    [
        (0, 100 * 2**30, False, False),
        (2**30 - 1, 100 * 2**30, False, False),  # under 1 GiB
        (3 * 2**30, 1000 * 2**30, False, False),  # 3 GiB but 0.3 %
        (3 * 2**30, 10 * 2**30, True, True),  # 30 %, but under 5 GiB
        (40 * 2**30, 1000 * 2**30, True, True),  # 40 GiB, but 4 %
        (50 * 2**30, 100 * 2**30, True, False),
    ],
)
def test_doctor_disk_check_thresholds(
    free: int, total: int, ok: bool, warn: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda p: _disk(free, total))
    check = doctor._disk_check(tmp_path)
    assert (check.ok, check.warn, check.required) == (ok, warn, True)
    assert check.found.startswith(f"{free / 2**30:.1f} GiB")


def test_doctor_fails_on_a_nearly_full_disk(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: CliRunner,
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda p: _disk(0))
    code, out, _ = run_cli(["doctor", "--root", str(tmp_path)])
    assert code == 1
    assert "0.0 GiB" in out and "FULL" in out and "required check(s) failed" in out
    monkeypatch.setattr(shutil, "disk_usage", lambda p: _disk(3 * 2**30, 10 * 2**30))
    code, out, _ = run_cli(["doctor", "--root", str(tmp_path)])
    assert code == 0 and "low" in out


def test_cli_enospc_without_a_file_name_is_still_one_line(
    data_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: CliRunner,
) -> None:
    from webvid.cli import query as query_cli

    monkeypatch.setattr(query_cli.q, "connect", _enospc)  # a write() error carries no name
    code, _, err = run_cli(["query", "--root", str(data_root), "SELECT 1"])
    text = " ".join(err.split())
    assert code == 2 and text.startswith("error: No space left on device (the file is not known)")
    assert "committed work is kept" in text and "unexpected" not in err
