"""Embedding index and text search: shards → Parquet of clip embeddings → top-k clips for a query.

Takes a checkpoint and a shard set (or MSR-VTT-style folder) and produces a Parquet table, one
row per clip: ``key``, ``caption``, ``source`` (the shard or file it came from), ``embedding``
(L2-normalised ``float32`` list). The file's schema metadata records the checkpoint, the frame
count and the dimension, so ``search`` can embed a query with the same model. ``search`` reads
the table in record batches and keeps a running top-k, so memory stays bounded for big indexes.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from webvid import contract
from webvid.clips.sample import ClipOptions, Tokenize
from webvid.errors import InputError
from webvid.io import write_parquet
from webvid.log import NullProgress, Progress
from webvid.model.build import data_stats, load_for_inference
from webvid.retrieval.evaluate import embed, make_stream

INDEX_META_KEY = contract.EMBEDDING_INDEX_META_KEY


@dataclass(frozen=True)
class Hit:
    key: str
    caption: str
    score: float
    source: str


def build_index(
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    frames: int = 4,
    kind: str = "video",
    batch_size: int = 16,
    num_workers: int = 0,
    text_model: str | None = None,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Embed every clip of ``data`` with ``checkpoint``'s video encoder into ``out`` (Parquet)."""
    model = load_for_inference(checkpoint, text_model).to(device)
    stats = data_stats(checkpoint)
    mean, std = stats["mean"], stats["std"]
    opts = ClipOptions(size=model.config.img_size, train=False, short_side=stats["short_side"])
    stream = make_stream(data, kind, frames, opts)
    emb = embed(
        model,
        stream,
        lambda caps: {},
        device=torch.device(device),
        mean=mean,
        std=std,
        batch_size=batch_size,
        num_workers=num_workers,
        progress=progress or NullProgress(),
        with_text=False,
    )
    vec = torch.nn.functional.normalize(emb.video, dim=1).numpy().astype(np.float32)
    dim = int(vec.shape[1])
    table = pa.table(
        {
            "key": pa.array(emb.keys, pa.string()),
            "caption": pa.array([c[0] for c in emb.captions], pa.string()),
            "source": pa.array(emb.urls, pa.string()),
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array(vec.reshape(-1), pa.float32()), dim
            ),
        }
    )
    meta = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "frames": frames,
        "dim": dim,
        "text_model": text_model,
        "mean": list(mean),
        "std": list(std),
    }
    table = table.replace_schema_metadata({INDEX_META_KEY: json.dumps(meta).encode()})
    write_parquet(out, table)
    return {"clips": len(emb.keys), "broken": dict(emb.broken), "dim": dim, "path": str(out)}


def index_meta(path: str | Path) -> dict[str, Any]:
    try:
        md = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable Parquet index: {exc}") from None
    if INDEX_META_KEY not in md:
        raise InputError(
            f"{path}: not a webvid embedding index (no {INDEX_META_KEY.decode()} metadata)"
        )
    return json.loads(md[INDEX_META_KEY])


def encode_queries(
    model: Any, queries: list[str], max_text_len: int = 64, tokenize: Tokenize | None = None
) -> np.ndarray:
    """L2-normalised text embeddings of ``queries`` (one row each) from a loaded model.

    ``tokenize``: a :class:`Tokenize` kept by a caller that encodes many queries (it loads
    its tokenizer once); by default a new one, for the model's tokenizer and ``max_text_len``.
    """
    tokenize = tokenize or Tokenize(model.config.tokenizer_ref, max_text_len)
    with torch.no_grad():
        q = model.encode_text(tokenize(queries)).float().cpu()
    return torch.nn.functional.normalize(q, dim=1).numpy()


def search(
    index: str | Path,
    queries: list[str],
    *,
    k: int = 10,
    checkpoint: str | Path | None = None,
    text_model: str | None = None,
    device: str = "cpu",
    max_text_len: int = 64,
) -> list[list[Hit]]:
    """Top-``k`` clips of ``index`` for each query, best first (cosine similarity)."""
    meta = index_meta(index)
    ckpt = checkpoint or meta["checkpoint"]
    if not Path(ckpt).exists():
        raise InputError(f"the index was built with {ckpt}, which is gone: pass --checkpoint")
    model = load_for_inference(ckpt, text_model or meta.get("text_model")).to(device)
    q = encode_queries(model, queries, max_text_len)
    if q.shape[1] != meta["dim"]:
        raise InputError(
            f"query dim {q.shape[1]} != index dim {meta['dim']}: another model built this index"
        )
    heaps: list[list[tuple[float, int, Hit]]] = [[] for _ in queries]
    counter = 0
    pf = pq.ParquetFile(index)
    for batch in pf.iter_batches(
        batch_size=65536, columns=["key", "caption", "source", "embedding"]
    ):
        emb = (
            batch.column("embedding")
            .flatten()
            .to_numpy(zero_copy_only=False)
            .reshape(len(batch), -1)
        )
        scores = q @ emb.T
        keys, caps, srcs = (batch.column(c).to_pylist() for c in ("key", "caption", "source"))
        for qi in range(len(queries)):
            top = np.argsort(-scores[qi])[:k]
            for i in top:
                counter += 1
                item = (
                    float(scores[qi, i]),
                    -counter,
                    Hit(keys[i], caps[i] or "", float(scores[qi, i]), srcs[i] or ""),
                )
                if len(heaps[qi]) < k:
                    heapq.heappush(heaps[qi], item)
                elif item[0] > heaps[qi][0][0]:
                    heapq.heapreplace(heaps[qi], item)
    return [[h for _, _, h in sorted(hp, key=lambda t: (-t[0], -t[1]))] for hp in heaps]
