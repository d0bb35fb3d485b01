"""One raw shard sample → model inputs: the clip array, its caption(s), the caption tokens.

Takes a raw WebDataset sample dict (``__key__``, ``mp4``/``webm``/… or ``jpg``/``png``/…,
pre-extracted ``frame00.jpg``…, ``txt``, ``json``; or a folder item with a ``captions`` list) and
:class:`ClipOptions`, and produces:

* :func:`decode_clip` — ``uint8 (F, S, S, 3)``: F frames chosen and decoded
  (:mod:`webvid.clips.frames`, the training fast path :mod:`webvid.clips.fastframes`), cropped
  (random resized crop and flip for training, central crop for evaluation);
* :func:`caption_of` / :func:`captions_of` — the caption(s), whitespace-normalised and cut;
  :func:`train_caption` — the one caption a training visit uses: ``txt``, or, for a sample
  whose ``json`` carries all captions of its video (``"captions": [...]``, benchmark training
  shards), one of those drawn with the visit's RNG (``caption_sample = "rand"``) or the first;
* :class:`Tokenize` — captions → the text model's tokenizer output (picklable, so it can run
  in data-loader workers).

Runs inside data-loader workers, for the training stream (:mod:`webvid.train.data`) and the
evaluation stream (:mod:`webvid.clips.stream`). An unusable sample raises
:class:`~webvid.clips.frames.BrokenSample` with a short reason; the streams count it and go on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from webvid.clips import fastframes as ff
from webvid.clips import frames as fr
from webvid.errors import ConfigError
from webvid.model.text import load_tokenizer

#: The values of ``caption_sample`` (``data.caption_sample`` in a training recipe).
CAPTION_SAMPLES = ("rand", "first")


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
    #: Which of a multi-caption sample's ``json["captions"]`` a training visit uses: "rand"
    #: (one drawn per visit, as the official MSR-VTT loader) or "first" (= its ``txt``).
    caption_sample: str = "rand"

    def __post_init__(self) -> None:
        if self.caption_sample not in CAPTION_SAMPLES:
            raise ConfigError(
                f"caption_sample must be one of {CAPTION_SAMPLES}, got {self.caption_sample!r}"
            )


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


def clean_caption(text: str, max_chars: int) -> str:
    """Whitespace runs → one space, ends stripped, cut to ``max_chars`` (0: no cut)."""
    text = " ".join(text.split())
    return text[:max_chars] if max_chars > 0 else text


def caption_of(sample: Mapping[str, Any], max_chars: int) -> str:
    """The sample's ``txt``, cleaned; BrokenSample when it is missing or blank."""
    raw = sample.get("txt")
    if raw is None:
        raise fr.BrokenSample("no_caption")
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    text = clean_caption(text, max_chars)
    if not text:
        raise fr.BrokenSample("empty_caption")
    return text


def train_caption(sample: Mapping[str, Any], opts: ClipOptions, rng: random.Random) -> str:
    """The caption one training visit of ``sample`` uses.

    A sample whose ``json`` has a ``captions`` list (all captions of its video, annotation
    order) gives one of them, cleaned, blank ones skipped: drawn with ``rng`` for
    ``opts.caption_sample == "rand"``, the first for ``"first"``. Any other sample gives its
    ``txt`` (:func:`caption_of`; ``rng`` is not used). A ``captions`` that is not a list of
    strings is BrokenSample("bad_captions"), one with no non-blank entry "empty_caption".
    """
    meta = meta_of(sample)
    if "captions" not in meta:
        return caption_of(sample, opts.caption_max_chars)
    caps = meta["captions"]
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise fr.BrokenSample("bad_captions")
    clean = [c for c in (clean_caption(c, opts.caption_max_chars) for c in caps) if c]
    if not clean:
        raise fr.BrokenSample("empty_caption")
    if opts.caption_sample == "first":
        return clean[0]
    return clean[rng.randrange(len(clean))]


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
    :mod:`webvid.clips.fastframes` (the same draws, the same pixels up to resize rounding);
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


def captions_of(sample: Mapping[str, Any], max_chars: int) -> list[str]:
    """The caption(s) of an eval sample: ``txt``, or a ``captions`` list (folders)."""
    if "captions" in sample:
        caps = [clean_caption(str(c), max_chars) for c in sample["captions"]]
        caps = [c for c in caps if c]
        if not caps:
            raise fr.BrokenSample("empty_caption")
        return caps
    return [caption_of(sample, max_chars)]
