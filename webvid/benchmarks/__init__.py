"""The paper's downstream benchmarks: MSR-VTT (1k-A, 1k-B, full), MSVD, DiDeMo and LSMDC.

Takes a dataset root in the layout its community distributes (collaborative-experts' lists and
pickles, or CLIP4Clip's JSON/CSV files) and produces a :class:`Benchmark`: the protocol's
videos in list order, each with its resolved file and its queries, plus the directions the
protocol reports and the files read. ``webvid eval --benchmark`` scores one; ``webvid
prepare`` turns a train split (:func:`load_train_split`, every caption of a video) into shards.
Annotation pickles are read with a restricted unpickler (:func:`load_annotation_pickle`).
The protocols, file names and sources are in docs/benchmarks-data.md.
"""

from __future__ import annotations

from pathlib import Path

from webvid.benchmarks import didemo, lsmdc, msrvtt, msvd
from webvid.benchmarks.annotations import load_annotation_pickle
from webvid.benchmarks.items import BENCHMARKS, DATASETS, LAYOUTS, BenchItem, Benchmark
from webvid.benchmarks.videos import VideoQuery
from webvid.errors import InputError

__all__ = [
    "BENCHMARKS",
    "DATASETS",
    "LAYOUTS",
    "BenchItem",
    "Benchmark",
    "VideoQuery",
    "load_annotation_pickle",
    "load_benchmark",
    "load_train_split",
]


def _root(root: str | Path) -> Path:
    p = Path(root)
    if not p.is_dir():
        raise InputError(f"{p}: the dataset root is not a folder")
    return p


def load_benchmark(name: str, root: str | Path, *, videos: str | Path | None = None) -> Benchmark:
    """The evaluation protocol ``name`` (one of :data:`BENCHMARKS`) of the dataset at ``root``."""
    if name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}")
    r = _root(root)
    if name.startswith("msrvtt-"):
        return msrvtt.load(name, r, videos)
    return {"msvd": msvd.load, "didemo": didemo.load, "lsmdc": lsmdc.load}[name]("test", r, videos)


def load_train_split(
    dataset: str,
    root: str | Path,
    *,
    videos: str | Path | None = None,
    keep_missing: bool = False,
) -> Benchmark:
    """The training split of ``dataset`` (one of :data:`DATASETS`), every caption per video.

    MSR-VTT's is the 9k JSFusion training list (the 1k-A protocol's), DiDeMo's captions are each
    video's paragraph (one per video, as both community codes train). ``keep_missing``: a video
    not on disk keeps its item with a path that does not exist (``webvid prepare`` records it as
    ``missing_media``) instead of failing the whole split; all of them missing is still an error.
    """
    if dataset not in DATASETS:
        raise InputError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    r = _root(root)
    query = VideoQuery(videos, keep_missing=keep_missing)
    if dataset == "msrvtt":
        return msrvtt.load("msrvtt-train", r, query)
    return {"msvd": msvd.load, "didemo": didemo.load, "lsmdc": lsmdc.load}[dataset](
        "train", r, query
    )
