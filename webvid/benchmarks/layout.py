"""Where a dataset's annotation files are, in either community layout, and assembling a split.

Takes a dataset root; produces the folder holding a given annotation file and, once a reader has
ids and captions, a :class:`~webvid.benchmarks.items.Benchmark` with every video resolved.

* **collaborative-experts** (CE; also what the official Frozen loaders read): the lists and
  pickles live in ``ROOT/high-quality/structured-symlinks/`` or ``ROOT/structured-symlinks/``.
* **clip4clip**: CLIP4Clip's release archives unpack their files into ``ROOT`` itself or into a
  ``<dataset>_data/`` folder (``msrvtt_data.zip`` → ``msrvtt_data/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from webvid.benchmarks.items import BenchItem, Benchmark
from webvid.benchmarks.videos import VideoFinder, VideoQuery
from webvid.errors import InputError

CE_FOLDERS = ("high-quality/structured-symlinks", "structured-symlinks")


def ce_folder(root: Path, *names: str) -> Path | None:
    """The first CE folder under ``root`` that holds every file in ``names``, if any."""
    for sub in CE_FOLDERS:
        d = root / sub
        if all((d / n).is_file() for n in names):
            return d
    return None


def c4c_folder(root: Path, dataset: str, *names: str) -> Path | None:
    """``root`` or ``root/<dataset>_data`` if it holds every file in ``names``, else None."""
    for d in (root, root / f"{dataset}_data"):
        if all((d / n).is_file() for n in names):
            return d
    return None


def not_found(root: Path, dataset: str, wanted: Sequence[str]) -> InputError:
    """The error for a root holding neither layout: names what each layout needs."""
    return InputError(
        f"{root}: no {dataset} annotations found; looked for "
        + "; or ".join(wanted)
        + " (see docs/benchmarks-data.md)"
    )


def assemble(
    *,
    name: str,
    dataset: str,
    split: str,
    layout: str,
    root: Path,
    videos: str | Path | VideoQuery | None,
    ids: Sequence[str],
    captions: Sequence[Sequence[str]],
    directions: tuple[str, ...],
    sources: Sequence[Path],
    entries: Sequence[str] | None = None,
    movies: Sequence[str] | None = None,
) -> Benchmark:
    """A :class:`Benchmark` with each id's video resolved (an InputError if any is missing)."""
    for vid, caps in zip(ids, captions, strict=True):
        if not caps or any(not c.strip() for c in caps):
            raise InputError(f"{sources[0]}: video {vid!r} has an empty caption or none at all")
    finder = VideoFinder(root, videos, extra=dataset == "didemo")
    paths = finder.resolve(ids, entries=entries, movies=movies)
    items = tuple(
        BenchItem(vid, path, tuple(caps))
        for vid, path, caps in zip(ids, paths, captions, strict=True)
    )
    return Benchmark(name, dataset, split, layout, items, directions, tuple(sources))
