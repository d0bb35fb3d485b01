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
(``pos``), without decoding them, and continues with identical batches.

Evaluation (:class:`EvalStream`): exactly one pass, shards split by node then by worker,
``uniform`` frames, central crop; yields single samples (the evaluator batches them).

Stage by stage the sample dict changes shape like this::

    shard url   {"url"}                                   (_samples_forever)
    tar reader  {"__key__", "__url__", "mp4"|"jpg", "txt", "json", "frame00.jpg", ...}
    shuffle     same, reordered                           (_shuffle)
    decode      {"key", "caption", "clip": uint8 (F,S,S,3)}   broken ones → counters
    batch       the batch dict above                      (TrainStream._batches)
"""

from __future__ import annotations

import glob
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import braceexpand
import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from webvid.errors import ConfigError, InputError
from webvid.train import fastframes as ff
from webvid.train import frames as fr
from webvid.train.schedule import Plan

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


@dataclass(frozen=True)
class ClipOptions:
    """How one sample becomes a clip (picklable: it travels to the workers)."""

    size: int = 224
    train: bool = True
    scale: tuple[float, ...] = (0.5, 1.0)
    ratio: tuple[float, ...] = (0.75, 4.0 / 3.0)
    hflip: bool = True
    short_side: int = 256
    caption_max_chars: int = 350
    ffmpeg_threads: int = 1


def load_tokenizer(text_model: str) -> Any:
    """The text model's tokenizer from a local directory (or the hub cache; never downloads)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(text_model, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the tokenizer of {text_model!r}: {exc}") from None


class Tokenize:
    """Picklable callable: captions → tokenizer output dict (padded to the longest, truncated)."""

    def __init__(self, text_model: str, max_len: int) -> None:
        self.text_model, self.max_len = text_model, max_len
        self._tok: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"text_model": self.text_model, "max_len": self.max_len, "_tok": None}

    def __call__(self, captions: Sequence[str]) -> dict[str, torch.Tensor]:
        if self._tok is None:
            self._tok = load_tokenizer(self.text_model)
        enc = self._tok(
            list(captions),
            padding=True,
            truncation=True,
            max_length=self.max_len,
            return_tensors="pt",
        )
        return dict(enc)


def caption_of(sample: Mapping[str, Any], max_chars: int) -> str:
    raw = sample.get("txt")
    if raw is None:
        raise fr.BrokenSample("no_caption")
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    text = " ".join(text.split())
    if not text:
        raise fr.BrokenSample("empty_caption")
    return text[:max_chars] if max_chars > 0 else text


def meta_of(sample: Mapping[str, Any]) -> dict[str, Any]:
    raw = sample.get("json")
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def decode_clip(
    sample: Mapping[str, Any],
    kind: str,
    n: int,
    mode: str,
    opts: ClipOptions,
    rng: random.Random,
    offset: int = 0,
) -> np.ndarray:
    """One raw sample → uint8 (F, S, S, 3); raises BrokenSample.

    Training clips of JPEG frames (pre-extracted frames, images) take the fast path of
    :mod:`webvid.train.fastframes` (the same draws, the same pixels up to resize rounding);
    mp4 frames and evaluation clips the PIL crop of :func:`frames.crop_frames`.
    """
    fast = opts.train
    if kind == "image":
        member = fr.media_member(sample, "image")
        if member is None:
            raise fr.BrokenSample("no_media")
        frames: Any = [fr.open_image(sample[member], opts.short_side)]
    elif len(members := fr.frame_members(sample)) >= n or (
        members and fr.media_member(sample, "video") is None
    ):
        decode = ff.decode_jpegs_array if fast else fr.decode_jpegs
        frames = decode(sample, n, mode, rng, opts.short_side, offset)
    else:
        fast = False
        member = fr.media_member(sample, "video")
        if member is None:
            raise fr.BrokenSample("no_media")
        frames = fr.decode_video(
            sample[member],
            n,
            mode,
            rng,
            opts.short_side,
            meta_of(sample),
            offset,
            opts.ffmpeg_threads,
        )
    w, h = fr.frame_size(frames)
    if not opts.train:
        return fr.crop_frames(frames, fr.center_box(w, h), opts.size, False)
    box = fr.random_resized_crop_box(w, h, opts.scale, opts.ratio, rng)
    flip = opts.hflip and rng.random() < 0.5
    crop = ff.crop_frames_fast if fast else fr.crop_frames
    return crop(frames, box, opts.size, flip)


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


class _TarErrors:
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
        tar_errors = _TarErrors()
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
        tar_errors: _TarErrors,
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
                    cap = caption_of(sample, self.opts.caption_max_chars)
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


# ---- evaluation --------------------------------------------------------------------------


class EvalStream(IterableDataset):
    """One exact pass: yields {"key", "caption", "clips": uint8 (V, F, 3, S, S)} per sample.

    ``samples`` is either shard urls (split by node and worker) or a list of ready raw sample
    dicts (an MSR-VTT-style folder, see :mod:`webvid.train.evaluate`), split the same way.
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
        yield from wds.tariterators.tarfile_samples(
            ({"url": u} for u in urls), handler=_TarErrors()
        )

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
            vlen = _length_of(sample)
            seg = max(1, vlen // self.frames)
            out = [
                decode_clip(sample, self.kind, self.frames, "fix_start", self.opts, rng, off)
                for off in range(0, seg, self.window_stride)
            ]
        return torch.from_numpy(np.stack(out)).permute(0, 1, 4, 2, 3).contiguous()


def captions_of(sample: Mapping[str, Any], max_chars: int) -> list[str]:
    """The caption(s) of an eval sample: ``txt``, or a ``captions`` list (folders)."""
    if "captions" in sample:
        caps = [" ".join(str(c).split())[: max_chars or None] for c in sample["captions"]]
        caps = [c for c in caps if c]
        if not caps:
            raise fr.BrokenSample("empty_caption")
        return caps
    return [caption_of(sample, max_chars)]


def _length_of(sample: Mapping[str, Any]) -> int:
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
