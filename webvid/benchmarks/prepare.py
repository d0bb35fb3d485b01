"""``webvid prepare``: a benchmark's train split → WebDataset training shards, all captions kept.

Takes a :class:`~webvid.benchmarks.Benchmark` holding a train split (from
:func:`~webvid.benchmarks.load_train_split`: one :class:`~webvid.benchmarks.BenchItem` per video,
with every caption of the video), the dataset root and an output folder; produces::

    OUT/train/00000.tar          KEY.mp4 (the clip), KEY.txt (its FIRST caption), KEY.json
    OUT/train/00000.parquet      the shard stage's sample rows (contract.SAMPLE_SCHEMA)
    OUT/train/00000_stats.json   written last for its shard: the shard's commit marker
    OUT/items.parquet            one row per video of the split, written or not (ITEM_SCHEMA)
    OUT/index.parquet            one row per shard (contract.SHARD_INDEX_SCHEMA)
    OUT/stats.json               the run's counts (PrepareSummary)
    OUT/manifest.json            last: the run's commit marker

``KEY.json`` is ``{"key", "id", "dataset", "split": "train", "captions": [every caption, in
annotation order], "source", "transform", "width", "height", "fps", "duration_s",
"num_frames"}``: the training loader draws one caption per visit from ``captions``
(``data.caption_sample``); any other WebDataset reader still finds a caption in ``KEY.txt``.
Keys are img2dataset's positional keys, never the video id (DiDeMo ids hold dots, which
WebDataset would read as extensions).

How the work is cut: videos sorted by id, shard ``i`` takes videos ``i*N .. i*N+N-1`` (N =
``shard_size``), so each shard is an independent unit whatever happens to the others. A worker
(one process per shard at a time, videos one by one: memory stays bounded) stores each video
through :mod:`webvid.benchmarks.prepare_media`, then writes the shard with the shard stage's
writer (:func:`webvid.shards.writer.write_shard`: sorted members, fixed mtime and owner, temp
name + fsync + rename, stats last). A video that is missing or broken gets a row with its
reason in ``items.parquet`` and the run goes on; its shard is one sample shorter. A rerun skips
shards already committed with the same fingerprint (settings + every video's id, captions,
path, size and mtime), so a killed run resumes and finishes with the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from webvid import contract
from webvid.benchmarks.items import BenchItem, Benchmark
from webvid.benchmarks.prepare_media import MediaResult, MediaSettings, store_video
from webvid.errors import InputError
from webvid.io import (
    read_json,
    read_manifest,
    remove_stale_temps,
    write_json,
    write_manifest,
    write_parquet,
)
from webvid.log import NullProgress, Progress
from webvid.shards import writer
from webvid.shards.fanout import map_in_order

SPLIT = "train"
WORK_DIR = ".work"
ITEMS_NAME = "items.parquet"
STATS_NAME = "stats.json"
#: tar member mtime: fixed, so the same inputs give byte-identical tars
MTIME = 0

#: ``items.parquet``: one row per video of the train split, stored or not.
ITEM_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string()),  # the sample key in the tar; null when not stored
        pa.field("id", pa.string(), nullable=False),  # the dataset's video id
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),  # the shard the video belongs to
        pa.field("n_captions", pa.int32(), nullable=False),
        pa.field("captions", pa.list_(pa.string()), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # the video file read
        pa.field("source_bytes", pa.int64()),
        pa.field("bytes", pa.int64()),  # bytes of the stored KEY.mp4
        pa.field("sha256", pa.string()),  # of the stored KEY.mp4
        pa.field("transform", pa.string()),  # copy | remux | transcode
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("duration_s", pa.float64()),
        pa.field("num_frames", pa.int32()),
        pa.field(
            "status", pa.string(), nullable=False
        ),  # success | failed_to_download | failed_to_subsample
        pa.field("reason", pa.string()),  # a contract.VERDICT_REASONS value when not stored
        pa.field("error_message", pa.string()),
    ]
)


@dataclass(frozen=True)
class PrepareOptions:
    """How ``webvid prepare`` cuts and stores: shard size, worker processes, the stored mp4."""

    shard_size: int = 256
    workers: int = 0  # 0: one per CPU core
    media: MediaSettings = field(default_factory=MediaSettings)

    def __post_init__(self) -> None:
        if not 1 <= self.shard_size <= contract.MAX_SAMPLES_PER_SHARD:
            raise InputError(f"shard size must be 1..{contract.MAX_SAMPLES_PER_SHARD}")
        if self.workers < 0:
            raise InputError("workers must be >= 0")


@dataclass
class PrepareSummary:
    """What a prepare run did (also ``stats.json``)."""

    out: Path
    dataset: str
    benchmark: str
    videos: int = 0
    written: int = 0
    captions: int = 0  # captions carried by the written samples
    failed: dict[str, int] = field(default_factory=dict)  # reason → videos
    transforms: dict[str, int] = field(default_factory=dict)  # copy / remux / transcode → videos
    shards: int = 0
    shards_written: int = 0
    shards_reused: int = 0
    tar_bytes: int = 0
    elapsed_s: float = 0.0
    already_done: bool = False

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "out": str(self.out)}


@dataclass(frozen=True)
class ShardTask:
    """One shard's unit of work (picklable: it crosses to the worker processes)."""

    out: str
    index: int
    dataset: str
    root: str
    items: tuple[BenchItem, ...]
    media: MediaSettings
    fingerprint: str


def fingerprint(bench: Benchmark, items: Sequence[BenchItem], options: PrepareOptions) -> str:
    """What the output depends on: the settings and every video (id, captions, file identity)."""
    h = hashlib.sha256(
        json.dumps(
            {"dataset": bench.dataset, "shard_size": options.shard_size, **asdict(options.media)},
            sort_keys=True,
        ).encode()
    )
    for it in items:
        try:
            st = it.path.stat()
            ident = f"{st.st_size}\0{st.st_mtime_ns}"
        except OSError:
            ident = "missing"
        h.update(json.dumps([it.id, list(it.captions), str(it.path), ident]).encode() + b"\n")
    return h.hexdigest()[:20]


def _check_out(out: Path, fp: str) -> dict[str, Any] | None:
    """The finished run's stats when ``out`` holds this very run; an error if another one."""
    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is not None:
        if manifest.get("fingerprint") == fp and (out / STATS_NAME).is_file():
            return read_json(out / STATS_NAME)
        raise InputError(
            f"{out} already holds shards made from other videos or settings; "
            "choose a new output folder"
        )
    for stats in sorted((out / SPLIT).glob("*_stats.json")):
        if read_json(stats).get("run_fingerprint") != fp:
            raise InputError(
                f"{out} holds an unfinished run with other videos or settings ({stats.name}); "
                "remove it or choose a new output folder"
            )
    return None


def _is_committed(out: Path, name: str, fp: str) -> dict[str, Any] | None:
    stats = out / SPLIT / f"{name}_stats.json"
    if not stats.is_file() or not (out / SPLIT / f"{name}.tar").is_file():
        return None
    try:
        data = read_json(stats)
    except (OSError, ValueError):
        return None
    return data if data.get("run_fingerprint") == fp else None


def _relative(path: Path, root: Path) -> str:
    """The video's path as stored in KEY.json: relative to the dataset root, else its name."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _item_row(
    task: ShardTask, item: BenchItem, key: str | None, res: MediaResult
) -> dict[str, Any]:
    status = (
        contract.STATUS_SUCCESS
        if key is not None
        else contract.STATUS_FAILED_TO_DOWNLOAD
        if res.reason == "missing_media"
        else contract.STATUS_FAILED_TO_SUBSAMPLE
    )
    return {
        "key": key,
        "id": item.id,
        "dataset": task.dataset,
        "split": SPLIT,
        "shard": contract.shard_name(task.index),
        "n_captions": len(item.captions),
        "captions": list(item.captions),
        "source": str(item.path),
        "source_bytes": res.source_bytes,
        "bytes": res.bytes if key else None,
        "sha256": res.sha256 if key else None,
        "transform": res.transform if key else None,
        "width": res.width,
        "height": res.height,
        "duration_s": res.duration_s,
        "num_frames": res.num_frames,
        "status": status,
        "reason": res.reason,
        "error_message": res.detail,
    }


def _sample(task: ShardTask, item: BenchItem, res: MediaResult) -> writer.Sample:
    """The tar's view of a stored video: KEY.mp4, KEY.txt, KEY.json and its Parquet row."""
    assert res.media is not None and res.bytes is not None
    meta = {
        "id": item.id,
        "dataset": task.dataset,
        "split": SPLIT,
        "captions": list(item.captions),
        "source": _relative(item.path, Path(task.root)),
        "transform": res.transform,
        "width": res.width,
        "height": res.height,
        "fps": res.fps,
        "duration_s": res.duration_s,
        "num_frames": res.num_frames,
    }
    row = {
        "caption": item.captions[0],
        "status": contract.STATUS_SUCCESS,
        "width": res.width,
        "height": res.height,
        "original_width": res.original_width,
        "original_height": res.original_height,
        "sha256": res.sha256,
        "clip_id": contract.clip_id(item.id),
        "media_kind": "video",
        "ext": "mp4",
        "duration_s": res.duration_s,
        "fps": res.fps,
        "num_frames": res.num_frames,
        "frames": 0,
        "bytes": res.bytes,
        "source_sha256": res.source_sha256,
        "source_id": item.id,
    }
    return writer.Sample(res.media, "mp4", item.captions[0], meta, row, media_bytes=res.bytes)


def prepare_shard(task: ShardTask) -> dict[str, Any]:
    """Store the shard's videos one at a time and write the shard; its stats (with item rows).

    A shard already committed by this run's fingerprint is returned as it is (``reused``).
    """
    out = Path(task.out)
    name = contract.shard_name(task.index)
    done = _is_committed(out, name, task.fingerprint)
    if done is not None:
        return {**done, "reused": True}
    staging = out / WORK_DIR / task.fingerprint / name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    plan = writer.ShardPlan(SPLIT, task.index, "video")
    rows: list[dict[str, Any]] = []
    for j, item in enumerate(task.items):
        if not any(c.strip() for c in item.captions):
            res = MediaResult(reason="caption_too_short", detail="the video has no caption")
        else:
            res = store_video(Path(item.path), staging / f"{j:04d}.mp4", task.media)
        key = None
        if res.media is not None:
            key = plan.key(len(plan.samples))
            plan.samples.append(_sample(task, item, res))
        rows.append(_item_row(task, item, key, res))
    statuses = Counter(r["status"] for r in rows)
    stats = writer.write_shard(
        out,
        plan,
        MTIME,
        extra={
            "run_fingerprint": task.fingerprint,
            "dataset": task.dataset,
            "inputs": len(rows),
            "failed_to_download": statuses[contract.STATUS_FAILED_TO_DOWNLOAD],
            "failed_to_subsample": statuses[contract.STATUS_FAILED_TO_SUBSAMPLE],
            "status_dict": dict(sorted(statuses.items())),
            "items": rows,
        },
    )
    shutil.rmtree(staging, ignore_errors=True)
    return {**stats, "reused": False}


def _pool(workers: int, shards: int) -> Executor | None:
    n = min(workers if workers > 0 else (os.cpu_count() or 1), shards)
    if n <= 1:
        return None
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


def prepare(
    bench: Benchmark,
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    options: PrepareOptions | None = None,
    progress: Progress | None = None,
) -> PrepareSummary:
    """Write ``bench``'s videos into training shards under ``out``; resumable, deterministic."""
    started = time.monotonic()
    options = options or PrepareOptions()
    progress = progress or NullProgress()
    out = Path(out)
    items = sorted(bench.items, key=lambda i: (i.id, str(i.path)))
    if not items:
        raise InputError(f"{bench.name}: the train split lists no videos")
    fp = fingerprint(bench, items, options)
    done = _check_out(out, fp)
    if done is not None:
        return _summary_from(out, done)
    remove_stale_temps(out / SPLIT)
    n = options.shard_size
    tasks = [
        ShardTask(str(out), i, bench.dataset, str(root), tuple(items[s : s + n]), options.media, fp)
        for i, s in enumerate(range(0, len(items), n))
    ]
    progress.message(f"{bench.name}: {len(items)} videos → {len(tasks)} shard(s) in {out}")
    progress.update("videos", total=len(items))
    tally: Counter[str] = Counter()

    def tick(stats: dict[str, Any]) -> None:
        tally["stored"] += stats["count"]
        tally["failed"] += stats["inputs"] - stats["count"]
        progress.update("videos", advance=stats["inputs"], **tally)

    pool = _pool(options.workers, len(tasks))
    try:
        results = map_in_order(prepare_shard, tasks, pool, tick)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return _finish(bench, out, fp, options, results, started)


def _finish(
    bench: Benchmark,
    out: Path,
    fp: str,
    options: PrepareOptions,
    results: list[dict[str, Any]],
    started: float,
) -> PrepareSummary:
    """items.parquet, index.parquet, stats.json, then manifest.json last; staging removed."""
    rows = [r for stats in results for r in stats["items"]]
    write_parquet(out / ITEMS_NAME, contract.rows_to_table(rows, ITEM_SCHEMA))
    index = [writer.index_row(s) for s in results]
    write_parquet(
        out / contract.SHARD_INDEX_NAME, contract.rows_to_table(index, contract.SHARD_INDEX_SCHEMA)
    )
    stored = [r for r in rows if r["key"] is not None]
    summary = PrepareSummary(
        out=out,
        dataset=bench.dataset,
        benchmark=bench.name,
        videos=len(rows),
        written=len(stored),
        captions=sum(r["n_captions"] for r in stored),
        failed=dict(sorted(Counter(r["reason"] for r in rows if r["key"] is None).items())),
        transforms=dict(sorted(Counter(r["transform"] for r in stored).items())),
        shards=len(results),
        shards_written=sum(1 for s in results if not s["reused"]),
        shards_reused=sum(1 for s in results if s["reused"]),
        tar_bytes=sum(s["tar_bytes"] for s in results),
        elapsed_s=round(time.monotonic() - started, 3),
    )
    write_json(out / STATS_NAME, summary.as_json())
    write_manifest(
        out,
        "shards",
        config={"shard_size": options.shard_size, "media": asdict(options.media)},
        counts={
            "videos": summary.videos,
            "written": summary.written,
            "failed": summary.videos - summary.written,
            "captions": summary.captions,
            "shards": summary.shards,
        },
        fingerprint=fp,
        dataset=bench.dataset,
        benchmark=bench.name,
        layout_of_source=bench.layout,
        sources=[str(s) for s in bench.sources],
        layout={
            "tar": "train/{shard}.tar",
            "parquet": "train/{shard}.parquet",
            "stats": "train/{shard}_stats.json",
            "items": ITEMS_NAME,
        },
        elapsed_s=summary.elapsed_s,
    )
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    return summary


def _summary_from(out: Path, stats: dict[str, Any]) -> PrepareSummary:
    known = {k: v for k, v in stats.items() if k in PrepareSummary.__dataclass_fields__}
    return PrepareSummary(**{**known, "out": out, "already_done": True})
