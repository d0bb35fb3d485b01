"""Streaming WebDataset pipelines: shards in, batches of clips + tokenised captions out.

Takes shard patterns (globs or brace patterns of ``.tar`` files in img2dataset's layout:
``KEY.mp4`` or ``KEY.jpg``, ``KEY.txt``, ``KEY.json``, optionally ``KEY.frame00.jpg`` …) and
produces, per worker, batches as dicts::

    {"video": uint8 (B, F, 3, S, S),       # not normalised: the trainer normalises on device
     "text": {"input_ids", "attention_mask", ...},   # the text model's tokenizer output
     "keys": [...], "captions": [...],
     "source": int, "frames": F, "batch_index": b,   # b: this source's b-th batch
     "worker": w, "pos": raw samples this worker consumed so far,
     "seen": raw samples in this batch, "broken": {reason: count}}

Training (:class:`TrainStream`): each (rank, worker) reads its own share of the shards
(a disjoint slice when there are enough shards, else all shards with its own seed), reshuffled
every pass ("resampled": the stream never ends), through a seeded shuffle buffer. The stage of
every batch — frame count and batch size — comes from the run's :class:`~webvid.train.schedule.Plan`
and the batch's index, so a curriculum stage change needs no loader rebuild and cannot race
prefetched batches. Every random draw is seeded by (seed, rank, worker, position), so the stream
is a pure function of the recipe: a resumed run skips the raw samples its workers had consumed
(``pos``), without decoding them, and continues with identical batches. That includes the
caption of a multi-caption sample (``json["captions"]``, one drawn per visit with
``caption_sample = "rand"``): a video met again later in the stream sits at a later position,
so it gets an independent draw, and a resumed run draws the same captions again.

One sample's decoding (frames, crops, captions: :mod:`webvid.clips.sample`) and the one-pass
evaluation stream (:class:`webvid.clips.stream.EvalStream`) live in :mod:`webvid.clips`, which
retrieval shares; this module is the training side.

Stage by stage the sample dict changes shape like this::

    shard url   {"url"}                                   (_samples_forever)
    tar reader  {"__key__", "__url__", "mp4"|"jpg", "txt", "json", "frame00.jpg", ...}
    shuffle     same, reordered                           (_shuffle)
    decode      {"key", "caption", "clip": uint8 (F,S,S,3)}   broken ones → counters
                (the caption: ``txt``, or one of ``json["captions"]``: sample.train_caption)
    batch       the batch dict above                      (TrainStream._batches)
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset

from webvid.clips import frames as fr
from webvid.clips.sample import ClipOptions, decode_clip, train_caption
from webvid.clips.stream import TarErrors, worker_identity
from webvid.errors import InputError
from webvid.train.schedule import Plan

log = logging.getLogger(__name__)


# ---- generator stages ----------------------------------------------------------------------


def _samples_forever(
    shards: Sequence[str], rng: random.Random, handler: Callable[[Exception], bool]
) -> Iterator[dict[str, Any]]:
    """Endless raw samples: every pass over ``shards`` in a fresh seeded order.

    A pass that yields nothing at all (every shard unreadable or empty) is an error, not an
    endless loop.
    """
    order = list(shards)
    while True:
        rng.shuffle(order)
        n = 0
        for sample in wds.tariterators.tarfile_samples(
            ({"url": u} for u in order), handler=handler
        ):
            n += 1
            yield sample
        if n == 0:
            raise InputError(f"no readable samples in {len(order)} shard(s), e.g. {order[0]}")


def _shuffle(
    samples: Iterable[dict[str, Any]], bufsize: int, rng: random.Random
) -> Iterator[dict[str, Any]]:
    """A seeded shuffle buffer (fills to ``bufsize``, then emits a random slot per new sample)."""
    if bufsize <= 1:
        yield from samples
        return
    buf: list[dict[str, Any]] = []
    for s in samples:
        if len(buf) < bufsize:
            buf.append(s)
            continue
        k = rng.randrange(len(buf))
        buf[k], s = s, buf[k]
        yield s
    rng.shuffle(buf)
    yield from buf


def shards_for(
    shards: Sequence[str], rank: int, world: int, worker: int, workers: int
) -> list[str]:
    """This (rank, worker)'s share: a disjoint slice if there are enough shards, else all."""
    n = world * workers
    slot = rank * workers + worker
    return list(shards[slot::n]) if len(shards) >= n else list(shards)


class TrainStream(IterableDataset):
    """Endless training batches of one source; see the module docstring."""

    def __init__(
        self,
        shards: Sequence[str],
        kind: str,
        source: int,
        plan: Plan,
        opts: ClipOptions,
        tokenize: Callable[[Sequence[str]], dict[str, torch.Tensor]],
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle_buffer: int = 1000,
        resume: Mapping[int, tuple[int, int]] | None = None,
        num_workers: int = 0,
        reseed: int = 0,
        worker_offset: int = 0,
    ) -> None:
        super().__init__()
        self.shards, self.kind, self.source, self.plan = list(shards), kind, source, plan
        self.opts, self.tokenize, self.seed = opts, tokenize, seed
        self.rank, self.world_size, self.shuffle_buffer = rank, world_size, shuffle_buffer
        self.resume = dict(resume or {})
        self.num_workers = num_workers
        self.reseed = reseed
        # The DataLoader asks physical worker 0 first; a resumed stream whose next batch
        # belongs to logical worker k lets physical worker p play logical worker (p + k) % W.
        self.worker_offset = worker_offset

    def _rng(self, worker: int, what: str, pos: int = 0) -> random.Random:
        # str seeds hash with sha512: stable across processes and Python runs
        return random.Random(
            f"{self.seed}/{self.reseed}/{self.source}/{self.rank}/{worker}/{what}/{pos}"
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        physical, workers = worker_identity()
        if workers != max(1, self.num_workers):
            raise RuntimeError(f"stream built for {self.num_workers} workers runs in {workers}")
        worker = (physical + self.worker_offset) % workers
        mine = shards_for(self.shards, self.rank, self.world_size, worker, workers)
        tar_errors = TarErrors()
        raw = _samples_forever(mine, self._rng(worker, "shards"), tar_errors)
        stream = _shuffle(raw, self.shuffle_buffer, self._rng(worker, "shuffle"))
        j, pos = self.resume.get(worker, (0, 0))
        for _ in range(pos):  # resume: replay the stream without decoding
            next(stream)
        yield from self._batches(stream, worker, workers, j, pos, tar_errors, mine)

    def _batches(
        self,
        stream: Iterator[dict[str, Any]],
        worker: int,
        workers: int,
        j: int,
        pos: int,
        tar_errors: TarErrors,
        mine: Sequence[str],
    ) -> Iterator[dict[str, Any]]:
        while True:
            b = j * workers + worker
            spec = self.plan.batch_spec(self.source, b)
            clips, keys, caps = [], [], []
            broken: Counter[str] = Counter()
            seen = 0
            tar_before = tar_errors.count
            mode = "rand" if self.opts.train else "uniform"
            while len(clips) < spec.batch_size:
                sample = next(stream)
                seen += 1
                rng = self._rng(worker, "aug", pos + seen)
                try:
                    # its own RNG: the clip's draws do not depend on how the caption is chosen
                    cap_rng = self._rng(worker, "caption", pos + seen)
                    cap = train_caption(sample, self.opts, cap_rng)
                    clip = decode_clip(sample, self.kind, spec.frames, mode, self.opts, rng)
                except fr.BrokenSample as exc:
                    broken[exc.reason] += 1
                    log.debug("broken sample %s: %s", sample.get("__key__"), exc)
                    if sum(broken.values()) > 100 + 20 * spec.batch_size:  # nothing usable here
                        reasons = ", ".join(f"{k}={v}" for k, v in broken.most_common())
                        raise InputError(
                            f"{sum(broken.values())} broken samples in a row while "
                            f"building one batch from {len(mine)} shard(s): {reasons}"
                        ) from None
                    continue
                clips.append(clip)
                keys.append(str(sample.get("__key__")))
                caps.append(cap)
            if tar_errors.count > tar_before:
                broken["unreadable_tar"] += tar_errors.count - tar_before
            pos += seen
            video = clips_to_batch(clips)
            yield {
                "video": video,
                "text": self.tokenize(caps),
                "keys": keys,
                "captions": caps,
                "source": self.source,
                "frames": spec.frames,
                "batch_index": b,
                "worker": worker,
                "j": j,
                "pos": pos,
                "seen": seen,
                "broken": dict(broken),
            }
            j += 1


def clips_to_batch(clips: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 clips (F, S, S, 3), any strides → one contiguous (B, F, 3, S, S) batch, one copy."""
    f, h, w = clips[0].shape[:3]
    video = torch.empty((len(clips), f, 3, h, w), dtype=torch.uint8)
    out = video.numpy()
    for i, c in enumerate(clips):
        np.copyto(out[i], c.transpose(0, 3, 1, 2))
    return video


def make_train_loader(stream: TrainStream, num_workers: int) -> torch.utils.data.DataLoader:
    """A DataLoader that passes the stream's own batches through (batching is in the workers)."""
    kw: dict[str, Any] = {}
    if num_workers > 0:
        kw = {"persistent_workers": True, "prefetch_factor": 2}
    return torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=num_workers, in_order=True, **kw
    )
