"""Training recipes: TOML → frozen dataclasses (``webvid train --recipe train/demo.toml``).

Takes a TOML file (plus ``--set a.b=value`` overrides) through :func:`load` and produces a
validated :class:`TrainRecipe` (``load_train_recipe`` is the old name of :func:`load`). Cross-field rules (stage batch sizes name real
sources, frames within the model's temporal table, positive sizes) are checked here so a bad
recipe fails before any data or model is touched. The resolved recipe is written into every run
dir as ``config.toml`` (:func:`webvid.config.dump_toml` of :func:`webvid.config.to_dict`).

Shape of a recipe::

    seed = 0
    [model]            preset + optional overrides of the model's ModelConfig fields
    [data]             workers, shuffle buffer, crops, normalisation, tokenizer length, caption
                       choice of multi-caption samples, broken cap
    [[sources]]        name, kind ("video" | "image"), shards (globs / brace patterns), global
                       batch size, weight
    [[stages]]         name, frames, steps (or epochs), lr, global batch_sizes, temporal_fix, warm-up

Batch sizes are **global**: the clips of one optimiser step over all processes. Under
``torchrun`` each process loads global / world size of them
(:func:`webvid.train.schedule.plan_from_recipe`, an error when that does not divide).
    [optim]            AdamW settings, schedule ("constant" | "cosine"), gradient clipping
    [train]            precision, device, logging and checkpoint cadence, tensorboard
    [[evals]]          validation shard sets, evaluated every ``train.eval_every_steps``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from webvid.config import load_recipe
from webvid.errors import ConfigError

# the [model] table and the ImageNet statistics belong to the model library (re-exported here)
from webvid.model.spec import IMAGENET_MEAN, IMAGENET_STD, ModelSection, TemporalFix


@dataclass(frozen=True)
class DataSection:
    num_workers: int = 2
    shuffle_buffer: int = 1000
    #: Training crop: RandomResizedCrop(img_size, scale) with the usual 3/4–4/3 aspect range.
    crop_scale: tuple[float, ...] = (0.5, 1.0)
    crop_ratio: tuple[float, ...] = (0.75, 4.0 / 3.0)
    hflip: bool = True
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    #: Decoded frames are scaled so their short side is this many pixels before cropping.
    decode_short_side: int = 256
    max_text_len: int = 64
    caption_max_chars: int = 350
    #: Samples carrying all captions of their video (``json["captions"]``, as ``webvid
    #: prepare`` writes a benchmark's train split): "rand" draws one per visit (the official
    #: MSR-VTT loader's caption_sample="rand"), "first" takes the first (= ``txt``). Samples
    #: without that list (WebVid, CC3M) always use ``txt``.
    caption_sample: Literal["rand", "first"] = "rand"
    #: Stop with an error when more than this fraction of samples seen is broken ...
    max_broken_fraction: float = 0.05
    #: ... but only once this many samples were seen (a few early bad ones are no verdict).
    broken_check_after: int = 200
    #: "exact": a resumed run replays the same sample stream (skips consumed raw samples
    #: without decoding them); "reseed": start a fresh stream (cheap, not equivalent).
    resume_data: Literal["exact", "reseed"] = "exact"
    #: An "epoch" for stages given in epochs: this many samples of the first source.
    samples_per_epoch: int = 1_000_000

    def __post_init__(self) -> None:
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError("crop_scale must be [lo, hi] with 0 < lo <= hi <= 1")
        if len(self.crop_ratio) != 2 or not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError("crop_ratio must be [lo, hi] with 0 < lo <= hi")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 values, std > 0")
        if self.num_workers < 0 or self.shuffle_buffer < 0 or self.max_text_len < 2:
            raise ValueError("num_workers/shuffle_buffer must be >= 0 and max_text_len >= 2")
        if not 0 <= self.max_broken_fraction <= 1:
            raise ValueError("max_broken_fraction must be within [0, 1]")


@dataclass(frozen=True)
class Source:
    name: str
    kind: Literal["video", "image"]
    shards: tuple[str, ...]
    #: Global batch size: clips per step over all processes (each loads batch_size / world).
    batch_size: int = 8
    #: Batches of this source per cycle (1:1 video:image by default, as the official code).
    weight: int = 1

    def __post_init__(self) -> None:
        if not self.shards:
            raise ValueError(f"source {self.name!r} has no shards")
        if self.batch_size < 1 or self.weight < 1:
            raise ValueError(f"source {self.name!r}: batch_size and weight must be >= 1")


@dataclass(frozen=True)
class Stage:
    name: str
    frames: int
    steps: int | None = None
    epochs: float | None = None
    lr: float = 3e-5
    #: Per-source global batch sizes for this stage (source name → size); others keep theirs.
    batch_sizes: dict[str, int] = field(default_factory=dict)
    #: How the temporal table is inflated when this stage starts with more frames.
    temporal_fix: TemporalFix = "zeros"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ValueError(f"stage {self.name!r}: frames must be >= 1")
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"stage {self.name!r}: give exactly one of steps or epochs")
        if (self.steps is not None and self.steps < 1) or (
            self.epochs is not None and self.epochs <= 0
        ):
            raise ValueError(f"stage {self.name!r}: steps/epochs must be positive")
        if self.lr <= 0 or self.warmup_steps < 0:
            raise ValueError(f"stage {self.name!r}: lr must be > 0, warmup_steps >= 0")


@dataclass(frozen=True)
class OptimSection:
    weight_decay: float = 0.0
    betas: tuple[float, ...] = (0.9, 0.999)
    eps: float = 1e-6
    schedule: Literal["constant", "cosine"] = "constant"
    #: Cosine floor as a fraction of the stage's lr.
    min_lr_ratio: float = 0.0
    #: Clip the global gradient norm to this (0 = off, as the official code).
    grad_clip_norm: float = 0.0


@dataclass(frozen=True)
class TrainSection:
    precision: Literal["fp32", "bf16"] = "fp32"
    device: str = "auto"
    grad_checkpointing: bool = False
    #: ``torch.compile`` the video model in place (state_dict keys unchanged); 1.4x on an
    #: H200 in bf16 (docs/benchmarks.md). The backend: "inductor" (default), or "eager" /
    #: "aot_eager" to check graph capture without code generation.
    compile: bool = False
    compile_backend: str = "inductor"
    log_every_steps: int = 10
    checkpoint_every_steps: int = 500
    keep_checkpoints: int = 3
    eval_every_steps: int = 0
    tensorboard: bool = False
    #: Which validation figure picks ``best.pt`` (from the first eval set): "<set>/<metric>".
    select_metric: str = ""
    dist_backend: Literal["auto", "gloo", "nccl"] = "auto"


@dataclass(frozen=True)
class EvalSet:
    name: str
    shards: tuple[str, ...]
    kind: Literal["video", "image"] = "video"
    #: Frames per clip (0: the current stage's frame count).
    frames: int = 0
    batch_size: int = 16
    max_samples: int = 0


@dataclass(frozen=True)
class TrainRecipe:
    seed: int = 0
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    sources: tuple[Source, ...] = ()
    stages: tuple[Stage, ...] = ()
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    evals: tuple[EvalSet, ...] = ()

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("a recipe needs at least one [[sources]] table")
        if not self.stages:
            raise ValueError("a recipe needs at least one [[stages]] table")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")
        for st in self.stages:
            for src, bs in st.batch_sizes.items():
                if src not in names:
                    raise ValueError(f"stage {st.name!r}: batch_sizes names unknown source {src!r}")
                if not isinstance(bs, int) or bs < 1:
                    raise ValueError(f"stage {st.name!r}: batch size for {src!r} must be >= 1")
        nf = self.model.num_frames
        if nf is not None and max(s.frames for s in self.stages) > nf:
            raise ValueError(f"a stage asks for more frames than model.num_frames = {nf}")

    def batch_size(self, stage: int, source: int) -> int:
        """The global batch size of ``source`` in ``stage``."""
        src = self.sources[source]
        return self.stages[stage].batch_sizes.get(src.name, src.batch_size)


def load(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainRecipe:
    """Read and validate a training recipe; errors name the file and the key."""
    recipe = load_recipe(TrainRecipe, path, list(overrides))
    if not isinstance(recipe, TrainRecipe):  # pragma: no cover - load_recipe's contract
        raise ConfigError("not a training recipe")
    return recipe


#: The old name of :func:`load` (an alias, for scripts written before the rename).
load_train_recipe = load
