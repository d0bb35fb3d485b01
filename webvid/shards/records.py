"""What flows between the shard stage's steps: frozen, typed records (no I/O, no Arrow).

Takes nothing by itself; the steps produce and consume these, in order:

* the worker (:mod:`webvid.shards.worker`) turns one input into a :class:`ClipResult`: the
  :class:`MediaFacts` of the file (probe, size, sha256), its frame :class:`Scores`, the local
  reasons and, for a clip still in the running, the :class:`StagedOutput` (the mp4 or jpg that
  goes into a tar, with its frames);
* the parent (:mod:`webvid.shards.decide`) adds each input's :class:`CaptionFacts`, merges them
  with the result into one :class:`Verdict` (kept or the reasons it was not, every score,
  duplicate twin), gives kept clips a :class:`Placement` (key, shard, split) and pairs each with
  its staged output as a :class:`ShardSample`;
* :mod:`webvid.shards.rows` is the one place where these become the contract's rows
  (``verdicts.parquet``, the per-shard Parquet, ``KEY.json``).

A :class:`ClipResult` is also cached as ``STAGING/<uid>.json`` (:meth:`ClipResult.to_cache`),
one flat JSON object, so a rerun after a crash redoes only the clips that had not finished.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from webvid.shards.dedup import Colour, Duplicate
from webvid.shards.inputs import InputItem


@dataclass(frozen=True)
class MediaFacts:
    """What the file is: container and stream facts (probe or Pillow), size and hash.

    Every field is None until known: a file that could not be probed has only its bytes and
    sha256, a missing file nothing.
    """

    container: str | None = None
    codec: str | None = None
    width: int | None = None  # display size, after the rotation
    height: int | None = None
    rotation: int | None = None
    fps: float | None = None
    duration_s: float | None = None
    num_frames: int | None = None
    bitrate: int | None = None
    has_audio: bool | None = None
    bytes: int | None = None
    sha256: str | None = None  # of the input file

    @property
    def short_side(self) -> int | None:
        return min(self.width, self.height) if self.width and self.height else None

    @property
    def aspect_ratio(self) -> float | None:
        return round(self.width / self.height, 6) if self.width and self.height else None


def as_colour(value: Any) -> Colour:
    """A chroma signature (nested lists, e.g. from JSON) as the tuples dedup compares."""
    return tuple(tuple(float(x) for x in frame) for frame in value) if value else None


@dataclass(frozen=True)
class Scores:
    """Scores of the decoded analysis frames; all None when the clip was never decoded."""

    motion_score: float | None = None  # video only
    black_fraction: float | None = None
    scene_cuts: int | None = None  # video only
    phash: str | None = None  # hex of the multi-frame perceptual hash
    colour: Colour = None  # chroma grid of the hashed frames (near-duplicate check only)


@dataclass(frozen=True)
class StagedOutput:
    """The media that goes into a tar for a kept clip: the original or its transformed copy."""

    path: str
    ext: str  # tar member extension: "mp4" | "jpg"
    bytes: int
    sha256: str
    width: int
    height: int
    fps: float | None
    duration_s: float | None
    num_frames: int | None
    frames: tuple[str, ...] = ()  # pre-extracted JPEG frames, stored beside the media


@dataclass(frozen=True)
class ClipResult:
    """What a worker learned about one input (see the module doc)."""

    uid: str
    want_output: bool  # whether a staged output was asked for (the cache is keyed on it)
    reasons: tuple[str, ...] = ()  # local rejection reasons (media, decode, scores)
    detail: str | None = None  # free text for the first reason (an ffmpeg line, ...)
    media: MediaFacts = MediaFacts()
    scores: Scores = Scores()
    transform: str | None = None  # "copy" | "remux" | "transcode" | "resize" when staged
    output: StagedOutput | None = None
    out_files: tuple[str, ...] = ()  # files this result made in the staging folder

    def to_cache(self) -> dict[str, Any]:
        """One flat JSON object (the staging cache's layout)."""
        out = None
        if self.output is not None:
            out = {**asdict(self.output), "frames": list(self.output.frames)}
        scores = asdict(self.scores)
        scores["colour"] = [list(f) for f in self.scores.colour] if self.scores.colour else None
        return {
            "uid": self.uid,
            "want_output": self.want_output,
            "reasons": list(self.reasons),
            "detail": self.detail,
            "out_files": list(self.out_files),
            **asdict(self.media),
            "short_side": self.media.short_side,
            "aspect_ratio": self.media.aspect_ratio,
            **scores,
            "transform": self.transform,
            "out": out,
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> ClipResult:
        """The inverse of :meth:`to_cache`; absent keys are unknown values."""
        out = data.get("out")
        output = None
        if out:
            values = {f.name: out.get(f.name) for f in fields(StagedOutput)}
            output = StagedOutput(**{**values, "frames": tuple(out.get("frames") or ())})
        return cls(
            uid=data["uid"],
            want_output=bool(data.get("want_output")),
            reasons=tuple(data.get("reasons") or ()),
            detail=data.get("detail"),
            media=MediaFacts(**{f.name: data.get(f.name) for f in fields(MediaFacts)}),
            scores=Scores(
                motion_score=data.get("motion_score"),
                black_fraction=data.get("black_fraction"),
                scene_cuts=data.get("scene_cuts"),
                phash=data.get("phash"),
                colour=as_colour(data.get("colour")),
            ),
            transform=data.get("transform"),
            output=output,
            out_files=tuple(data.get("out_files") or ()),
        )


@dataclass(frozen=True)
class CaptionFacts:
    """An input's clean caption and what the caption filters found."""

    text: str  # the clean caption (KEY.txt)
    words: int
    lang: str | None  # None until detected, or when the text has no letters
    lang_score: float | None
    count: int  # inputs sharing this clean caption (templated filter)
    reasons: tuple[str, ...]  # caption reasons


@dataclass(frozen=True)
class Placement:
    """Where a kept clip lands: its positional sample key, shard and split."""

    key: str
    shard: str
    split: str


@dataclass(frozen=True)
class Verdict:
    """The decision about one input: kept, or every reason it was not, with all its scores."""

    item: InputItem
    media_kind: str
    caption: CaptionFacts
    media: MediaFacts
    scores: Scores
    reasons: tuple[str, ...]  # every reason that rejects it, in the canonical order
    detail: str | None
    transform: str | None  # how the kept media was made; None for a rejected clip
    duplicate: Duplicate | None = None  # the kept twin, for duplicate_* reasons
    placement: Placement | None = None  # set for kept clips once the shards are planned

    @property
    def kept(self) -> bool:
        return not self.reasons

    @property
    def reason(self) -> str | None:
        """The first failing filter: the one the funnel counts."""
        return self.reasons[0] if self.reasons else None


@dataclass(frozen=True)
class ShardSample:
    """A kept clip on its way into a tar: its verdict and its staged media."""

    verdict: Verdict
    output: StagedOutput
