"""A crawl dir is untrusted input: hostile records and media cannot make ``webvid shard`` write
outside OUT, open files outside the crawl dir, or let ffprobe/ffmpeg grow without bound.

* records whose ``clip_id`` is a path (``../``, absolute, NUL bytes, very long, bad UTF-8) and
  whose ``media_path`` leaves the crawl dir (``..``, absolute, a symlink pointing out, a FIFO)
  become rejected verdicts that say why, and the run completes;
* a gzip bomb given as media is rejected from its first bytes, before any tool opens it;
* every media tool runs under an address-space ceiling (read back from ``/proc``), dies on a
  real over-allocation instead of growing, and is killed at its wall-clock limit.

Everything stays under ``tmp_path``: the escape targets of the hostile ids are chosen so that,
even on code that follows them, they land inside ``tmp_path`` where the test sees them.
"""

from __future__ import annotations

import os
import resource
import sys
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from webvid import contract
from webvid.io import write_manifest
from webvid.shards import probe as probe_mod
from webvid.shards import recipe
from webvid.shards.probe import MediaError, probe, run_ffprobe
from webvid.shards.run import run
from webvid.shards.tools import run_tool
from webvid.synth import crawl_dir as synth

OVERRIDES = ["filters.min_short_side=32", "workers=1", "output.report=false"]
CAPTION = "A red ball rolls slowly across a wooden table"
GOOD = "good0"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.make_video(tmp_path_factory.mktemp("shard-input") / "good.mp4", seed=3)


@pytest.fixture(scope="module")
def gzip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 1 MB of gzip that inflates to 1 GiB of zeros."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.mp4"
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
    zeros = bytes(1 << 24)
    with open(path, "wb") as fh:
        for _ in range(64):
            fh.write(packer.compress(zeros))
        fh.write(packer.flush())
    assert path.stat().st_size < 2_000_000
    return path


def _listing(root: Path, skip: Path) -> set[str]:
    return {str(p) for p in root.rglob("*") if p != skip and skip not in p.parents}


def _write_records(crawl: Path, rows: list[dict], bad_utf8_id: bytes) -> None:
    """A records part in the contract's schema, plus one row whose clip_id bytes are not
    UTF-8 (written through pyarrow's binary view, as a hostile tool could)."""
    table = contract.rows_to_table([*rows, rows[0]], contract.CRAWL_RECORD_SCHEMA)
    ids = [r["clip_id"].encode() for r in rows] + [bad_utf8_id]
    table = table.set_column(0, "clip_id", pa.array(ids, pa.binary()).view(pa.string()))
    (crawl / "records").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, crawl / "records" / "part-00000.parquet")
    write_manifest(crawl, "crawl", config={"source": "hostile"}, counts={"records": len(ids)})


def _row(cid: str, media_path: str | None) -> dict:
    return {
        "clip_id": cid,
        "source_id": None,
        "caption": CAPTION,
        "media_kind": "video",
        "status": contract.STATUS_SUCCESS,
        "media_path": media_path,
    }


def _verdicts(out: Path) -> list[dict]:
    return pq.read_table(out / contract.VERDICTS_NAME).to_pylist()


@pytest.mark.timeout(300)
def test_hostile_crawl_dir_writes_nothing_outside_out(tmp_path: Path, clip: Path) -> None:
    crawl = tmp_path / "in" / "crawl"
    out = tmp_path / "run" / "out"  # staging is out/.work/<fp>/: 5 levels below tmp_path
    media = crawl / "media" / "ab"
    media.mkdir(parents=True)
    good = media / f"{GOOD}.mp4"
    good.write_bytes(clip.read_bytes())
    outside = tmp_path / "secret.mp4"  # a real clip, but outside the crawl dir
    outside.write_bytes(clip.read_bytes())
    (media / "link.mp4").symlink_to(outside)
    (media / "dirlink.mp4").symlink_to(tmp_path)
    os.mkfifo(media / "fifo.mp4")
    (media / "folder.mp4").mkdir()
    ok_path = f"media/ab/{GOOD}.mp4"
    bad_ids = {
        "../../../../escaped1": ok_path,
        "a/../../../../../escaped2": ok_path,
        str(tmp_path / "absolute"): ok_path,
        "nul\x00byte": ok_path,
        "x" * 5000: ok_path,
        "..": ok_path,
        "-rf": ok_path,
        "dotted.id": ok_path,
        "": ok_path,
    }
    bad_paths = {
        "up": "../secret.mp4",
        "upup": "media/../../secret.mp4",
        "absolute": str(outside),
        "symlink_out": "media/ab/link.mp4",
        "symlink_dir": "media/ab/dirlink.mp4",
        "fifo": "media/ab/fifo.mp4",
        "folder": "media/ab/folder.mp4",
        "nul_path": "media/ab/good0.mp4\x00.txt",
        "the_dir": ".",
    }
    rows = [_row(GOOD, ok_path)]
    rows += [_row(cid, path) for cid, path in bad_ids.items()]
    rows += [_row(cid, path) for cid, path in bad_paths.items()]
    _write_records(crawl, rows, b"\xff\xfe../../../../escaped3")
    out.parent.mkdir()
    before = _listing(tmp_path, out)

    summary = run(recipe.load(None, OVERRIDES), [crawl], out)

    assert _listing(tmp_path, out) == before  # nothing new outside OUT, crawl dir untouched
    assert all(out in Path(os.path.realpath(p)).parents for p in out.rglob("*"))
    verdicts = _verdicts(out)
    assert summary.inputs == len(rows) + 1 and summary.kept == 1
    by_reason: dict[str, list[dict]] = {}
    for v in verdicts:
        by_reason.setdefault(v["reason"], []).append(v)
    assert [v["clip_id"] for v in by_reason[None]] == [GOOD]
    assert len(by_reason["invalid_clip_id"]) == len(bad_ids) + 1
    assert {v["clip_id"] for v in by_reason["unsafe_media_path"]} == set(bad_paths)
    for v in by_reason["invalid_clip_id"] + by_reason["unsafe_media_path"]:
        assert v["detail"] and not v["kept"] and v["sha256"] is None  # never opened
        assert len(v["clip_id"]) <= 256
    shown = {v["clip_id"] for v in by_reason["invalid_clip_id"]}
    assert "../../../../escaped1" in shown and "nul\\x00byte" in shown
    assert dict(summary.funnel) == {
        "invalid_clip_id": len(bad_ids) + 1,
        "unsafe_media_path": len(bad_paths),
    }


@pytest.mark.timeout(120)
def test_gzip_bomb_is_rejected_before_probing(
    tmp_path: Path, gzip_bomb: Path, clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[str] = []
    real = probe_mod.run_ffprobe

    def spy(path, *args, **kwargs):  # same signature as run_ffprobe
        probed.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(probe_mod, "run_ffprobe", spy)
    with pytest.raises(MediaError) as err:
        probe(gzip_bomb)
    assert err.value.reason == "archive" and "gzip" in err.value.detail
    crawl = synth.write_crawl_dir(
        tmp_path / "crawl",
        [synth.Entry("bomb0", CAPTION, gzip_bomb), synth.Entry(GOOD, CAPTION, clip)],
    )
    summary = run(recipe.load(None, OVERRIDES), [crawl], tmp_path / "out")
    reasons = {v["clip_id"]: v["reason"] for v in _verdicts(tmp_path / "out")}
    assert reasons == {"bomb0": "archive", GOOD: None} and summary.kept == 1
    assert "bomb.mp4" not in probed and f"{GOOD}.mp4" in probed  # in the same process


def _limits(text: str, name: str) -> tuple[str, str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(name))
    soft, hard = line[len(name) :].split()[:2]
    return soft, hard


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs Linux /proc")
def test_tools_run_under_an_address_space_limit() -> None:
    cap = 700 * 1024**2
    done = run_tool(["cat", "/proc/self/limits"], timeout_s=30, max_memory_bytes=cap)
    text = done.stdout.decode()
    assert done.ok
    assert _limits(text, "Max address space") == (str(cap), str(cap))
    assert _limits(text, "Max core file size") == ("0", "0")
    # the limit is real: an allocation over it fails in the child instead of growing
    grab = [sys.executable, "-c", "bytearray(1 << 30)"]
    failed = run_tool(grab, timeout_s=60, max_memory_bytes=512 * 1024**2)
    assert failed.returncode != 0 and "MemoryError" in failed.stderr


@pytest.mark.timeout(120)
def test_ffprobe_of_a_bomb_under_a_low_limit_fails_cleanly(gzip_bomb: Path) -> None:
    """Past the archive check (called directly), ffprobe inflates gzip through its libgme
    demuxer: 2 GB of memory for this file unbounded. Under the ceiling it fails and stays small."""
    cap = 512 * 1024**2
    peak_before_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    with pytest.raises(MediaError) as err:
        run_ffprobe(gzip_bomb, timeout_s=60, max_memory_bytes=cap)
    assert err.value.reason in ("not_media", "memory_limit", "undecodable")
    assert time.monotonic() - started < 30
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak_kb <= max(peak_before_kb, cap // 1024)  # the largest child stayed under the cap


def test_tools_are_killed_at_their_time_limit(clip: Path) -> None:
    started = time.monotonic()
    done = run_tool(["sleep", "30"], timeout_s=0.5)
    assert done.timed_out and not done.ok and time.monotonic() - started < 10
    with pytest.raises(MediaError) as err:
        run_ffprobe(clip, timeout_s=0.001)  # no ffprobe starts in a millisecond
    assert err.value.reason == "media_timeout"


def test_special_files_are_never_probed(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)  # a tool reading it would wait forever
    with pytest.raises(MediaError) as err:
        probe(fifo)
    assert err.value.reason == "not_media"
