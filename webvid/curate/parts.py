"""Embedding a shard set one shard at a time into committed part files (what makes scoring resumable).

Takes a checkpoint, the shard tars and the scoring options; produces, for each shard, one
Parquet part file in a hidden folder beside the output (``.SCORES.parts/NNNNN.parquet``, so
``webvid query`` does not list it): per sample its ``clip_id``, ``shard``, ``key``, ``split``,
caption, why it could not be decoded (``broken``) and its unit-norm ``video`` and ``text``
embeddings (float32). A part is written whole (temp name, fsync, rename) only once its shard
is done, so a killed run leaves finished parts and nothing half-written; the rerun finds the
``plan.json`` it wrote (checkpoint, shards, options: a different plan is refused) and embeds
only the shards without a part. Each shard is decoded by the evaluation stream
(:class:`~webvid.clips.stream.EvalStream`: uniform frames, central crop) and embedded by
:func:`webvid.retrieval.evaluate.embed` in batches on the device, the same way whether it runs
in one go or after a kill, so the parts are the same bytes either way.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset

from webvid.clips.sample import ClipOptions, Tokenize
from webvid.clips.stream import EvalStream, expand_shards
from webvid.errors import ConfigError, InputError
from webvid.io import read_json, remove_stale_temps, write_json, write_parquet
from webvid.log import NullProgress, Progress
from webvid.model.build import data_stats, load_for_inference
from webvid.retrieval.evaluate import embed

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


class _Recording(IterableDataset):
    """Passes the evaluation stream through, noting the keys of broken samples."""

    def __init__(self, stream: EvalStream) -> None:
        super().__init__()
        self.stream = stream
        self.broken: dict[str, str] = {}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self.stream:
            if "broken" in item:
                self.broken[item["key"]] = item["broken"]
            yield item


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


class ShardEmbedder:
    """A loaded model and its decode settings; :meth:`part` embeds one shard into a table."""

    def __init__(self, checkpoint: Path, opts: EmbedOptions) -> None:
        self.opts, self.device = opts, torch.device(opts.device)
        self.model = load_for_inference(checkpoint, opts.text_model, opts.overrides or None)
        self.model = self.model.to(self.device)
        stats = data_stats(checkpoint)
        self.mean, self.std = stats["mean"], stats["std"]
        self.clip = ClipOptions(
            size=self.model.config.img_size, train=False, short_side=stats["short_side"]
        )
        self.tokenize = Tokenize(self.model.config.tokenizer_ref, stats["max_text_len"])

    def part(self, tar: str, progress: Progress) -> pa.Table:
        rec = _Recording(EvalStream([tar], "video", self.opts.frames, self.clip))
        try:
            emb = embed(
                self.model,
                rec,  # type: ignore[arg-type]  # an EvalStream passed through
                self.tokenize,
                device=self.device,
                mean=self.mean,
                std=self.std,
                batch_size=self.opts.batch_size,
                precision=self.opts.precision,
                progress=progress,
            )
            keys, caps = emb.keys, [c[0] if c else "" for c in emb.captions]
            k = emb.mask.shape[1]
            video = torch.nn.functional.normalize(emb.video, dim=1, eps=1e-8)
            text = torch.nn.functional.normalize(emb.text.view(len(keys), k, -1)[:, 0], dim=1)
        except InputError:
            if not rec.broken and _has_samples(tar):
                raise
            keys, caps, video, text = [], [], None, None
        dim = int(self.model.config.projection_dim)
        ids = _sample_ids(Path(tar))
        shard = Path(tar).stem
        split = Path(tar).parent.name if Path(tar).parent.name in ("train", "val") else None
        broken = sorted(rec.broken)
        all_keys = [*keys, *broken]
        n_ok = len(keys)
        vec_v = _vectors(video, n_ok, dim)
        vec_t = _vectors(text, n_ok, dim)
        nulls = pa.nulls(len(broken), vec_v.type)
        return pa.Table.from_pydict(
            {
                "clip_id": [ids.get(k, (k, None))[0] for k in all_keys],
                "shard": [shard] * len(all_keys),
                "key": all_keys,
                "split": [ids.get(k, (None, split))[1] or split for k in all_keys],
                "caption": [*caps, *([None] * len(broken))],
                "broken": [*([None] * n_ok), *(rec.broken[k] for k in broken)],
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
) -> tuple[list[Path], int]:
    """Every shard's committed part (embedding those that have none). Returns the part paths,
    in shard order, and how many were embedded now (the rest were found from a killed run)."""
    progress = progress or NullProgress()
    ckpt = Path(checkpoint)
    folder = open_parts(out, ckpt, shards, opts)
    paths = [part_path(folder, i) for i in range(len(shards))]
    todo = [i for i, p in enumerate(paths) if not p.is_file()]
    progress.update("shards", total=len(shards), advance=len(shards) - len(todo))
    if todo:
        embedder = ShardEmbedder(ckpt, opts)
        for i in todo:
            write_parquet(paths[i], embedder.part(shards[i], progress))
            progress.update("shards", advance=1)
    remove_stale_temps(folder)  # a killed writer's temp file
    return paths, len(todo)
