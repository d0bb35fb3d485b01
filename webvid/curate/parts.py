"""Embedding a shard set one shard at a time into committed part files (what makes scoring resumable).

Takes a checkpoint, the shard tars and the scoring options; produces, for each shard, one
Parquet part file in a hidden folder beside the output (``.SCORES.parts/NNNNN.parquet``, so
``webvid query`` does not list it): per sample its ``clip_id``, ``shard``, ``key``, ``split``,
caption, why it could not be decoded (``broken``) and its unit-norm ``video`` and ``text``
embeddings (float32). A part is written whole (temp name, fsync, rename) only once its shard
is done, so a killed run leaves finished parts and nothing half-written; the rerun finds the
``plan.json`` it wrote (checkpoint, shards, options: a different plan is refused) and embeds
only the shards without a part. The shards are decoded as the evaluation stream decodes
(uniform frames, central crop), in this process or in DataLoader workers, each shard whole by
one of them (:mod:`webvid.curate.decode`), and each shard's clips and captions are embedded
here, on the device, in batches of that shard alone: the same batches whether it runs in one
go or after a kill, with or without workers, so the parts are the same bytes either way.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from webvid.clips.sample import ClipOptions, Tokenize
from webvid.clips.stream import expand_shards
from webvid.curate import decode
from webvid.errors import ConfigError, InputError
from webvid.io import read_json, remove_stale_temps, write_json, write_parquet
from webvid.log import NullProgress, Progress
from webvid.model.build import data_stats, load_for_inference

PART_COLUMNS = ("clip_id", "shard", "key", "split", "caption", "broken", "video", "text")


@dataclass(frozen=True)
class EmbedOptions:
    frames: int = 4
    batch_size: int = 16
    device: str = "cpu"
    precision: str = "fp32"
    text_model: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)


def find_shards(data: str | Path | Sequence[str]) -> list[str]:
    """The tars of a shard set: a folder (searched at any depth, hidden folders skipped) or
    glob / brace patterns. Sorted, so a rerun sees the same list."""
    if isinstance(data, (str, Path)) and Path(data).is_dir():
        root = Path(data)
        tars = sorted(
            str(p)
            for p in root.rglob("*.tar")
            if not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        if not tars:
            raise InputError(f"{root}: no .tar shards in this folder")
        return tars
    return expand_shards([str(data)] if isinstance(data, (str, Path)) else list(data))


def parts_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.parts"


def _plan(checkpoint: Path, shards: list[str], opts: EmbedOptions) -> dict[str, Any]:
    st = checkpoint.stat()
    return {
        "checkpoint": str(checkpoint.resolve()),
        "checkpoint_bytes": st.st_size,
        "checkpoint_mtime_ns": st.st_mtime_ns,
        "shards": [str(Path(s).resolve()) for s in shards],
        "options": {k: v for k, v in asdict(opts).items() if k != "device"},
    }


def open_parts(out: Path, checkpoint: Path, shards: list[str], opts: EmbedOptions) -> Path:
    """The parts folder of ``out`` with its ``plan.json``: created, or resumed when the plan
    is the same; a folder left by another plan is refused (ConfigError naming it)."""
    folder = parts_dir(out)
    plan = _plan(checkpoint, shards, opts)
    plan_path = folder / "plan.json"
    if plan_path.is_file():
        if read_json(plan_path) != json.loads(json.dumps(plan)):
            raise ConfigError(
                f"{folder} holds the parts of another scoring run (other checkpoint, shards or "
                f"options): delete it, or choose another --out"
            )
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    write_json(plan_path, plan)
    return folder


def part_path(folder: Path, index: int) -> Path:
    return folder / f"{index:05d}.parquet"


def part_schema(dim: int) -> pa.Schema:
    """The columns of a part file (``dim``: the model's projection size)."""
    vec = pa.list_(pa.float32(), dim)
    text = [pa.field(c, pa.string()) for c in PART_COLUMNS[:6]]
    return pa.schema([*text, pa.field("video", vec), pa.field("text", vec)])


def _sample_ids(tar: Path) -> dict[str, tuple[str, str | None]]:
    """key → (clip_id, split) from the shard's ``NNNNN.parquet`` when it has one."""
    table_path = tar.with_suffix(".parquet")
    if not table_path.is_file():
        return {}
    try:
        t = pq.read_table(table_path, columns=["key", "clip_id", "split"])
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise InputError(f"{table_path}: unreadable sample table: {exc}") from None
    keys, ids, splits = (t.column(c).to_pylist() for c in ("key", "clip_id", "split"))
    return {k: (c, s) for k, c, s in zip(keys, ids, splits, strict=True)}


def _vectors(x: torch.Tensor | None, n: int, dim: int) -> pa.Array:
    flat = np.zeros((n, dim), np.float32) if x is None else x.numpy().astype(np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1), pa.float32()), dim)


@dataclass
class ShardState:
    """One shard's embedding under way: its decodable samples in tar order, embedded a batch
    at a time as they come, and its broken samples' reasons by key."""

    keys: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    video: list[torch.Tensor] = field(default_factory=list)  # embedded batches (B, d)
    clips: list[torch.Tensor] = field(default_factory=list)  # decoded, not embedded yet
    broken: dict[str, str] = field(default_factory=dict)


class ShardEmbedder:
    """A loaded model and its decode settings. :meth:`add` takes a shard's decoded items
    (:mod:`webvid.curate.decode`) one by one, :meth:`table` turns the shard into its part.

    A shard's clips are embedded in batches of ``batch_size`` in tar order, then its captions
    in batches of ``4 × batch_size``, as :func:`webvid.retrieval.evaluate.embed` does: the
    batches are the same whether the shard was decoded here or in a worker, alone or beside
    others, in one run or after a kill, so the vectors are the same numbers.
    """

    def __init__(self, checkpoint: Path, opts: EmbedOptions) -> None:
        self.opts, self.device = opts, torch.device(opts.device)
        self.model = load_for_inference(checkpoint, opts.text_model, opts.overrides or None)
        self.model = self.model.to(self.device)
        stats = data_stats(checkpoint)
        self.mean = torch.tensor(stats["mean"], device=self.device).view(1, 1, 3, 1, 1) * 255
        self.std = torch.tensor(stats["std"], device=self.device).view(1, 1, 3, 1, 1) * 255
        self.clip = ClipOptions(
            size=self.model.config.img_size, train=False, short_side=stats["short_side"]
        )
        self.tokenize = Tokenize(self.model.config.tokenizer_ref, stats["max_text_len"])
        self.dim = int(self.model.config.projection_dim)

    def _amp(self) -> AbstractContextManager[Any]:
        if self.opts.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def add(self, shard: ShardState, item: Mapping[str, Any], progress: Progress) -> None:
        """One decoded item of ``shard``: a broken sample is noted, a clip batched."""
        if "broken" in item:
            shard.broken[item["key"]] = item["broken"]
            return
        shard.keys.append(item["key"])
        shard.captions.append(item["captions"][0] if item["captions"] else "")
        shard.clips.append(item["clips"])
        if len(shard.clips) >= self.opts.batch_size:
            self._flush(shard)
        progress.update("embed", advance=1)

    @torch.no_grad()
    def _flush(self, shard: ShardState) -> None:
        if not shard.clips:
            return
        clips = torch.cat(shard.clips).to(self.device).float()
        with self._amp():
            shard.video.append(
                self.model.encode_video((clips - self.mean) / self.std).float().cpu()
            )
        shard.clips.clear()

    @torch.no_grad()
    def _text(self, captions: list[str]) -> torch.Tensor:
        """Caption embeddings, zero rows for empty captions."""
        out = torch.zeros(len(captions), self.dim)
        real = [i for i, c in enumerate(captions) if c]
        step = max(1, self.opts.batch_size * 4)
        for j in range(0, len(real), step):
            idx = real[j : j + step]
            with self._amp():
                out[idx] = (
                    self.model.encode_text(self.tokenize([captions[i] for i in idx])).float().cpu()
                )
        return out

    def table(self, shard: ShardState, tar: str, read: int) -> pa.Table:
        """The part of a finished shard (``read``: the samples its tar gave): decodable
        samples in tar order with unit vectors, then the broken ones by key, without."""
        if read == 0 and _has_samples(tar):
            raise InputError(f"{tar}: no sample could be read from this shard")
        self._flush(shard)
        keys, n_ok, dim = shard.keys, len(shard.keys), self.dim
        video = text = None
        if n_ok:
            video = torch.nn.functional.normalize(torch.cat(shard.video), dim=1, eps=1e-8)
            text = torch.nn.functional.normalize(self._text(shard.captions), dim=1)
        ids = _sample_ids(Path(tar))
        split = Path(tar).parent.name if Path(tar).parent.name in ("train", "val") else None
        broken = sorted(shard.broken)
        all_keys = [*keys, *broken]
        vec_v = _vectors(video, n_ok, dim)
        vec_t = _vectors(text, n_ok, dim)
        nulls = pa.nulls(len(broken), vec_v.type)
        return pa.Table.from_pydict(
            {
                "clip_id": [ids.get(k, (k, None))[0] for k in all_keys],
                "shard": [Path(tar).stem] * len(all_keys),
                "key": all_keys,
                "split": [ids.get(k, (None, split))[1] or split for k in all_keys],
                "caption": [*shard.captions, *([None] * len(broken))],
                "broken": [*([None] * n_ok), *(shard.broken[k] for k in broken)],
                "video": pa.concat_arrays([vec_v, nulls]),
                "text": pa.concat_arrays([vec_t, nulls]),
            },
            schema=part_schema(dim),
        )


def _has_samples(tar: str) -> bool:
    try:
        with tarfile.open(tar) as tf:
            return any(m.isfile() for m in tf.getmembers())
    except (OSError, tarfile.TarError):
        return True


def embed_parts(
    checkpoint: str | Path,
    shards: list[str],
    out: Path,
    opts: EmbedOptions,
    progress: Progress | None = None,
    *,
    workers: int = 0,
) -> tuple[list[Path], int]:
    """Every shard's committed part (embedding those that have none, decoded by ``workers``
    processes: 0, in this one). Returns the part paths, in shard order, and how many were
    embedded now (the rest were found from a killed run).

    With workers, several shards are decoded at once and their items come interleaved; each
    goes to its shard's :class:`ShardState`, and a shard's part is written as soon as its
    end marker comes, so parts may be committed out of shard order (each whole, as ever).
    """
    progress = progress or NullProgress()
    ckpt = Path(checkpoint)
    folder = open_parts(out, ckpt, shards, opts)
    paths = [part_path(folder, i) for i in range(len(shards))]
    todo = [(i, shards[i]) for i, p in enumerate(paths) if not p.is_file()]
    progress.update("shards", total=len(shards), advance=len(shards) - len(todo))
    if todo:
        embedder = ShardEmbedder(ckpt, opts)
        under_way: dict[int, ShardState] = {}
        for item in decode.loader(todo, opts.frames, embedder.clip, workers):
            i = item["shard"]
            shard = under_way.setdefault(i, ShardState())
            if "end" not in item:
                embedder.add(shard, item, progress)
                continue
            write_parquet(paths[i], embedder.table(under_way.pop(i), shards[i], item["end"]))
            progress.update("shards", advance=1)
    remove_stale_temps(folder)  # a killed writer's temp file
    return paths, len(todo)
