"""The shard recipe: frozen dataclasses read from ``shards/*.toml`` by :func:`load`.

Takes a TOML file (and ``--set a.b=v`` overrides); produces a :class:`ShardRecipe`. Every
threshold of every filter lives here, with a name that carries its unit. Values are checked
in ``__post_init__`` so a bad recipe fails before any work starts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from webvid.config import load_recipe, to_dict
from webvid.shards.tools import DEFAULT_MAX_MEMORY_BYTES, DEFAULT_PROBE_TIMEOUT_S

Policy = Literal["reject", "keep"]
#: FilterConfig keys that read a model scores table (``ShardRecipe.scores``).
SCORE_FILTERS = ("min_caption_agreement", "min_caption_cosine", "max_per_semantic_cluster")


@dataclass(frozen=True)
class FilterConfig:
    """Per-clip thresholds; ``None`` turns a bound off. Scores are stored either way."""

    min_duration_s: float | None = 1.0
    max_duration_s: float | None = 120.0  # longer clips are rejected (transform trims others)
    min_short_side: int | None = 64
    max_frame_area: int = 4096 * 4096  # decompression-bomb guard: never decoded
    min_aspect_ratio: float | None = 0.4  # width / height (display orientation)
    max_aspect_ratio: float | None = 2.5
    min_fps: float | None = 5.0
    max_fps: float | None = 120.0
    min_caption_words: int | None = 2
    max_caption_words: int | None = 100
    languages: tuple[str, ...] = ("en",)  # empty: no language filter
    min_language_confidence: float = 0.5  # below this the detector is unsure: keep
    max_caption_repeats: int | None = 20  # templated: same clean caption on more clips
    min_motion: float | None = 0.002  # mean |frame diff| / 255 between sampled frames
    max_black_fraction: float | None = 0.9  # share of sampled frames that are dark or flat
    black_luma: float = 24.0  # mean luma (0..255) under which a frame counts as dark
    blank_std: float = 3.0  # luma std under which a frame counts as flat (blank)
    scene_threshold: float = 0.3  # ffmpeg-style scene score over which a pair is a cut
    scene_cut: Policy = "keep"  # "reject" drops clips with any cut; "keep" only scores
    # model scores (a `webvid score` table given as `scores` / --scores; docs/curation.md)
    min_caption_agreement: float | None = None  # mutual-rank agreement, 0..1
    min_caption_cosine: float | None = None  # caption–clip cosine under the scoring model
    max_per_semantic_cluster: int | None = None  # kept per near-duplicate group, by the keep rule

    def __post_init__(self) -> None:
        if self.max_frame_area <= 0:
            raise ValueError("max_frame_area must be positive")
        if self.min_caption_agreement is not None and not 0 <= self.min_caption_agreement <= 1:
            raise ValueError("min_caption_agreement must be in [0, 1]")
        if self.max_per_semantic_cluster is not None and self.max_per_semantic_cluster < 1:
            raise ValueError("max_per_semantic_cluster must be at least 1")

    @property
    def uses_scores(self) -> bool:
        """Whether a filter reads a model scores table."""
        return (
            self.min_caption_agreement is not None
            or self.min_caption_cosine is not None
            or self.max_per_semantic_cluster is not None
        )
        if not 0 < self.min_language_confidence <= 1:
            raise ValueError("min_language_confidence must be in (0, 1]")


@dataclass(frozen=True)
class CaptionConfig:
    """Stock-site boilerplate clean-up (the raw caption stays in the JSON and Parquet)."""

    clean: bool = True
    drop_phrases: tuple[str, ...] = (
        "stock footage",
        "stock video",
        "stock clip",
        "royalty free",
        "royalty-free",
        "footage",
    )
    min_keyword_run: int = 4  # trailing comma list of >= this many 1-2 word items is dropped


@dataclass(frozen=True)
class DedupConfig:
    exact: bool = True  # media sha256
    near: bool = True  # multi-frame perceptual hash
    near_max_distance: float = 0.1  # Hamming distance as a fraction of the hash bits
    near_max_colour_diff: float = (
        12.0  # and mean chroma (U, V; 0..255) per cell of an 8x8 grid, every hashed frame
    )
    source_id: bool = True  # the same source id (or clip id) twice


@dataclass(frozen=True)
class AnalysisConfig:
    """The low-resolution frames every clip is decoded to once (scores and hashes)."""

    fps: float = 4.0
    size: int = 64  # analysis frames are size x size grey
    hash_frames: int = 4  # frames combined into the perceptual hash


@dataclass(frozen=True)
class TransformConfig:
    max_short_side: int = 256
    max_fps: float = 30.0
    max_duration_s: float = 60.0  # kept clips are trimmed to this length
    codec: Literal["libx264"] = "libx264"
    crf: int = 23
    preset: str = "veryfast"
    keyframe_interval_s: float = 1.0
    keep_audio: bool = False
    threads: int = 1  # ffmpeg threads per worker: one worker = one core
    frames: int = 0  # K JPEG frames at segment midpoints stored beside the mp4
    frame_quality: int = 3  # mjpeg -q:v (2 best .. 31 worst)
    allow_copy: bool = True  # keep the original bytes when the clip meets the target
    max_tool_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES  # 2 GiB address space per ffmpeg run
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S  # ffprobe killed after (ffmpeg: 120 s + 10/s)

    def __post_init__(self) -> None:
        if self.max_tool_memory_bytes < 512 * 1024**2 or self.probe_timeout_s <= 0:
            raise ValueError(
                "max_tool_memory_bytes must be at least 512 MiB and probe_timeout_s positive"
            )
        if (
            self.max_short_side < 2
            or min(self.max_fps, self.max_duration_s, self.keyframe_interval_s) <= 0
        ):
            raise ValueError(
                "max_short_side, max_fps, max_duration_s, keyframe_interval_s must be positive"
            )
        if not 0 <= self.frames <= 64:
            raise ValueError("frames must be in 0..64")


@dataclass(frozen=True)
class ImageConfig:
    max_short_side: int = 256
    quality: int = 90  # JPEG quality of re-encoded images
    allow_copy: bool = True  # keep a JPEG's bytes when it is already small enough


@dataclass(frozen=True)
class OutputConfig:
    max_samples: int = 1000  # per shard
    max_bytes: int = 1_000_000_000  # per shard tar, roll over before crossing it
    val_fraction: float = 0.0  # stable hash of the clip id
    mtime: int = 0  # tar member mtime: fixed so tars are reproducible
    report: bool = True  # write report.html (matplotlib plots, thumbnails)

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1:
            raise ValueError("val_fraction must be in [0, 1)")
        if not 1 <= self.max_samples <= 10_000:
            raise ValueError("max_samples must be in 1..10000 (4-digit sample keys)")
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive")


@dataclass(frozen=True)
class ShardRecipe:
    media_kind: Literal["video", "image"] = "video"
    workers: int = 0  # 0: one per CPU core
    filters: FilterConfig = field(default_factory=FilterConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    images: ImageConfig = field(default_factory=ImageConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    #: exclude lists (clip ids, URLs, sha256) and takedown logs whose items are skipped; the
    #: takedowns.parquet of the output folder, the crawl dirs and the folders above them are
    #: read as well (docs/ethics.md, "Takedowns")
    exclude: tuple[str, ...] = ()
    #: a scores table written by `webvid score` (matched by clip id): the model-score filters
    #: of [filters] read it, and every verdict row gets its scores
    scores: str | None = None

    def __post_init__(self) -> None:
        if self.filters.uses_scores and self.scores is None:
            raise ValueError(
                "min_caption_agreement, min_caption_cosine and max_per_semantic_cluster need "
                "a scores table: set scores = FILE or pass --scores FILE"
            )

    def fingerprint(self) -> str:
        """A hash of everything that shapes the output (not ``workers``, nor ``exclude``:
        what a list removes is checked against a finished dir instead, see ``shards.run``)."""
        data = to_dict(self)
        data.pop("workers", None)
        data.pop("exclude", None)
        # the model-score keys left unset keep the fingerprint of a recipe written before
        # they existed, so a finished dir stays finished
        if data.get("scores") is None:
            data.pop("scores", None)
        for key in SCORE_FILTERS:
            if data["filters"].get(key) is None:
                data["filters"].pop(key, None)
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load(
    path: str | Path | None = None, overrides: tuple[str, ...] | list[str] = ()
) -> ShardRecipe:
    """Read a shard recipe (defaults when ``path`` is None) with ``--set`` overrides."""
    return load_recipe(ShardRecipe, path, list(overrides))
