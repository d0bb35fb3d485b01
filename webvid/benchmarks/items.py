"""The benchmark vocabulary: names, and the dataclasses every reader returns.

Takes nothing; produces :data:`BENCHMARKS`, :data:`DATASETS`, :class:`BenchItem` (one video and
its captions) and :class:`Benchmark` (a protocol's videos, in list order, with the files read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: the evaluation protocols ``webvid eval --benchmark`` knows
BENCHMARKS = ("msrvtt-1ka", "msrvtt-1kb", "msrvtt-full", "msvd", "didemo", "lsmdc")
#: the datasets behind them (``load_train_split`` takes these)
DATASETS = ("msrvtt", "msvd", "didemo", "lsmdc")
#: on-disk layouts
LAYOUTS = ("collaborative-experts", "clip4clip")


@dataclass(frozen=True)
class BenchItem:
    """One video: its id, its file, and its captions.

    ``captions`` are the protocol's queries in protocol order for an evaluation split, and every
    caption (annotation order) for a train split.
    """

    id: str
    path: Path
    captions: tuple[str, ...]


@dataclass(frozen=True)
class Benchmark:
    """A dataset split as a protocol reads it."""

    name: str  # a BENCHMARKS name, or "<dataset>-train"
    dataset: str  # a DATASETS name
    split: str  # "test" / "val" / "train"
    layout: str  # a LAYOUTS name
    items: tuple[BenchItem, ...]
    directions: tuple[str, ...]  # the directions the protocol reports: ("t2v", "v2t") or ("t2v",)
    sources: tuple[Path, ...]  # the annotation and list files read

    @property
    def queries(self) -> int:
        """How many text queries the protocol scores (every caption of every item)."""
        return sum(len(i.captions) for i in self.items)

    def eval_items(self) -> list[dict[str, object]]:
        """The items as raw samples for :class:`webvid.clips.stream.EvalStream` (``items=``)."""
        return [
            {"__key__": i.id, "path": str(i.path), "captions": list(i.captions)} for i in self.items
        ]
