"""``webvid shard --engine ray`` against the local engine on the same inputs: identical bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from webvid.cli import cli
from webvid.scale.shard_engine import run_shard
from webvid.shards import recipe
from webvid.shards.run import run as local_run
from webvid.synth import crawl_dir as synth

from .conftest import Killer, run_ray_child

OVERRIDES = (
    "filters.min_short_side=32",
    "output.max_samples=2",
    "workers=1",
    "output.report=false",
    "output.val_fraction=0.3",
)


@pytest.fixture(scope="module")
def crawl_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two crawl dirs (two work units apart): an exact duplicate and a near duplicate of a clip
    of dir A sit in dir B, and a templated caption is repeated across both."""
    d = tmp_path_factory.mktemp("scale-media")
    media = {f"m{i}": synth.make_video(d / f"m{i}.mp4", seed=i + 1) for i in range(5)}
    near = d / "near.mp4"
    synth.make_reencode(media["m0"], near)
    E = synth.Entry
    a = [
        E("a0", "A red ball rolls across a wooden table", media["m0"]),
        E("a1", "Clouds drift over a green valley at dawn", media["m1"]),
        E("a2", "A cyclist rides along a coastal road", media["m2"]),
    ]
    b = [
        E("b0", "The same red ball again on the table", media["m0"]),
        E("b1", "The ball on the table once more, sharper", near),
        E("b2", "Waves break slowly on a sandy beach", media["m3"]),
        E("b3", "A small boat sails past a lighthouse", media["m4"]),
    ]
    return [synth.write_crawl_dir(d / "A", a), synth.write_crawl_dir(d / "B", b)]


def _digests(out: Path) -> dict[str, str]:
    """sha256 of every shard tar and Parquet file (the manifest holds timings: not compared)."""
    files = sorted([*out.glob("*/*.tar"), *out.glob("*/*.parquet")])
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def local_out(crawl_dirs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local") / "shards"
    local_run(recipe.load(None, list(OVERRIDES)), crawl_dirs, out)
    return out


def _verdicts(out: Path) -> dict[str, tuple[bool, str | None]]:
    t = pq.read_table(out / "verdicts.parquet", columns=["clip_id", "kept", "reason"]).to_pylist()
    return {r["clip_id"]: (r["kept"], r["reason"]) for r in t}


def test_ray_shards_are_byte_identical_and_dedup_is_global(
    ray_cluster, crawl_dirs, local_out, tmp_path
):
    out = tmp_path / "ray"
    summary = run_shard(recipe.load(None, list(OVERRIDES)), crawl_dirs, out)
    local = _digests(local_out)
    assert len([k for k in local if k.endswith(".tar")]) >= 2
    assert _digests(out) == local
    assert (out / "verdicts.parquet").read_bytes() == (local_out / "verdicts.parquet").read_bytes()
    verdicts = _verdicts(out)
    # the duplicates of a0 live in the other crawl dir, analysed by other tasks: still caught
    assert verdicts["a0"] == (True, None)
    assert verdicts["b0"] == (False, "duplicate_exact")
    assert verdicts["b1"] == (False, "duplicate_near")
    assert summary.kept == sum(1 for k, _ in verdicts.values() if k) == 5


def test_ray_shard_survives_a_killed_worker(ray_cluster, crawl_dirs, local_out, tmp_path):
    out = tmp_path / "ray-killed"
    # once a first clip's result is cached, the others are mid-analysis: kill one of them
    with Killer("webvid_task", ready=lambda: any(out.glob(".work/*/*.json"))) as killer:
        run_shard(recipe.load(None, list(OVERRIDES)), crawl_dirs, out)
    assert killer.killed is not None, "no Ray task was seen running: nothing was killed"
    assert _digests(out) == _digests(local_out)
    assert not list(out.glob("**/.tmp*")) and not (out / ".work").exists()


def test_shard_cli_engine_ray(ray_cluster, crawl_dirs, local_out, tmp_path):
    out = tmp_path / "cli"
    sets = [a for o in OVERRIDES for a in ("--set", o)]
    res = CliRunner().invoke(
        cli, ["shard", *map(str, crawl_dirs), "-o", str(out), "--engine", "ray", *sets]
    )
    assert res.exit_code == 0, res.output
    assert _digests(out) == _digests(local_out)
    again = CliRunner().invoke(
        cli, ["shard", *map(str, crawl_dirs), "-o", str(out), "--engine", "ray", *sets]
    )
    assert again.exit_code == 0 and "already complete" in again.output


def test_executor_gives_the_functions_own_error(tmp_path):
    """A failing call's future holds the function's own exception, not Ray's wrapper; run in
    a child process with a Ray of its own (``ray_child.py``), as every Ray failure path."""
    res = run_ray_child(tmp_path, "executor_error")
    assert res["ok"] == {"value": "42"}
    assert res["bad"]["error"] == "builtins.ValueError" and "forty-two" in res["bad"]["message"]
    assert res["bad_exception_class"] == "builtins.ValueError"
