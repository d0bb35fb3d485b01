"""Shard patterns, tar reading and the one-pass evaluation stream.

Takes shard patterns (globs or brace patterns of ``.tar`` files in img2dataset's layout) or a
list of ready raw samples (an MSR-VTT-style folder, see :mod:`webvid.retrieval.evaluate`), and
produces:

* :func:`expand_shards` — the sorted, de-duplicated list of existing shard files;
* :class:`TarErrors` — a webdataset error handler that counts unreadable tar content and carries
  on (also used by the training stream, :mod:`webvid.train.data`);
* :func:`worker_identity` — this data-loader worker's (id, count);
* :class:`EvalStream` — exactly one pass, shards split by node then by worker, ``uniform``
  frames, central crop; yields single samples (the evaluator batches them)::

      shard url   {"url"}
      tar reader  {"__key__", "__url__", "mp4"|"jpg", "txt", "json", "frame00.jpg", ...}
      decode      {"key", "captions", "clips": uint8 (V, F, 3, S, S), "url"}
                  or {"key", "broken": reason}
"""

from __future__ import annotations

import glob
import logging
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import braceexpand
import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from webvid.clips import frames as fr
from webvid.clips.sample import ClipOptions, captions_of, decode_clip, meta_of
from webvid.errors import ConfigError

log = logging.getLogger(__name__)


def expand_shards(patterns: Sequence[str] | str, base: Path | None = None) -> list[str]:
    """Brace patterns and globs → sorted, de-duplicated list of existing files."""
    if isinstance(patterns, str):
        patterns = [patterns]
    out: list[str] = []
    for pat in patterns:
        for p in braceexpand.braceexpand(str(pat)):
            if base is not None and not Path(p).is_absolute():
                p = str(base / p)
            hits = sorted(glob.glob(p)) if glob.has_magic(p) else ([p] if Path(p).exists() else [])
            out.extend(hits)
    seen: set[str] = set()
    uniq = [p for p in out if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]
    if not uniq:
        raise ConfigError(f"no shards match {list(patterns)}")
    return uniq


class TarErrors:
    """webdataset error handler that counts unreadable tar content and carries on."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, exc: Exception) -> bool:
        self.count += 1
        log.warning("unreadable shard content skipped: %s", exc)
        return True


def worker_identity() -> tuple[int, int]:
    info = get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


class EvalStream(IterableDataset):
    """One exact pass: yields {"key", "caption", "clips": uint8 (V, F, 3, S, S)} per sample.

    ``samples`` is either shard urls (split by node and worker) or a list of ready raw sample
    dicts (an MSR-VTT-style folder, see :mod:`webvid.retrieval.evaluate`), split the same way.
    ``window_stride > 0`` gives V sliding-window clips per video (segment start + k·stride),
    averaged later; otherwise V = 1 (segment midpoints).
    """

    def __init__(
        self,
        shards: Sequence[str] | None,
        kind: str,
        frames: int,
        opts: ClipOptions,
        *,
        rank: int = 0,
        world_size: int = 1,
        items: Sequence[Mapping[str, Any]] | None = None,
        window_stride: int = 0,
        max_samples: int = 0,
    ) -> None:
        super().__init__()
        self.shards, self.items = list(shards or []), items
        self.kind, self.frames, self.opts = kind, frames, opts
        self.rank, self.world_size = rank, world_size
        self.window_stride, self.max_samples = window_stride, max_samples
        self.broken: Counter[str] = Counter()

    def _raw(self, worker: int, workers: int) -> Iterator[dict[str, Any]]:
        slot, n = self.rank * workers + worker, self.world_size * workers
        if self.items is not None:
            for i, item in enumerate(self.items):
                if i % n == slot:
                    sample = dict(item)
                    path = sample.pop("path", None)
                    if path is not None:  # folder items are read lazily, one at a time
                        ext = Path(path).suffix.lstrip(".").lower()
                        sample[ext] = Path(path).read_bytes() if Path(path).is_file() else b""
                        sample["__url__"] = str(path)
                    yield sample
            return
        urls = self.shards[self.rank :: self.world_size][worker::workers]
        yield from wds.tariterators.tarfile_samples(({"url": u} for u in urls), handler=TarErrors())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker, workers = worker_identity()
        rng = random.Random(0)
        for count, sample in enumerate(self._raw(worker, workers)):
            if self.max_samples and count * workers * self.world_size >= self.max_samples:
                break
            try:
                caps = captions_of(sample, self.opts.caption_max_chars)
                clips = self._clips(sample, rng)
            except fr.BrokenSample as exc:
                yield {"key": str(sample.get("__key__")), "broken": exc.reason}
                continue
            yield {
                "key": str(sample.get("__key__")),
                "captions": caps,
                "clips": clips,
                "url": str(sample.get("__url__", "")),
            }

    def _clips(self, sample: Mapping[str, Any], rng: random.Random) -> torch.Tensor:
        if self.window_stride <= 0 or self.kind == "image":
            out = [decode_clip(sample, self.kind, self.frames, "uniform", self.opts, rng)]
        else:
            vlen = clip_length(sample)
            seg = max(1, vlen // self.frames)
            out = [
                decode_clip(sample, self.kind, self.frames, "fix_start", self.opts, rng, off)
                for off in range(0, seg, self.window_stride)
            ]
        return torch.from_numpy(np.stack(out)).permute(0, 1, 4, 2, 3).contiguous()


def clip_length(sample: Mapping[str, Any]) -> int:
    """Frames in a sample's clip: its frame members, the JSON's ``num_frames``, or ffprobe."""
    members = fr.frame_members(sample)
    if members:
        return len(members)
    meta = meta_of(sample)
    if meta.get("num_frames"):
        return int(meta["num_frames"])
    member = fr.media_member(sample, "video")
    if member is None:
        raise fr.BrokenSample("no_media")
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".vid") as fh:
        fh.write(sample[member])
        fh.flush()
        return fr.probe_video(fh.name)[0]
