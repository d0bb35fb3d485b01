"""Embedding index and text search: shards → Parquet of clip embeddings → top-k clips for a query.

Takes a checkpoint and a shard set (or MSR-VTT-style folder) and produces a Parquet table, one
row per clip: ``key``, ``caption``, ``source`` (the shard or file it came from), ``embedding``
(L2-normalised ``float32`` list). The file's schema metadata records the checkpoint, its
``--model`` overrides, the frame count and the dimension, so ``search`` can embed a query with
the same model, and the identity of every source file (:mod:`webvid.index_sources`), so
``search`` refuses an index whose shards were rewritten since (``webvid refilter``, a re-shard)
unless told ``allow_stale``: its hits could name samples that are gone. ``search`` reads the
table in record batches and keeps a running top-k, so memory stays bounded for big indexes.
"""

from __future__ import annotations

import heapq
import json
import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from webvid import contract, index_sources
from webvid.clips.sample import ClipOptions, Tokenize
from webvid.errors import InputError
from webvid.io import write_parquet
from webvid.log import NullProgress, Progress
from webvid.model.build import data_stats, load_for_inference
from webvid.retrieval.evaluate import embed, make_stream

INDEX_META_KEY = contract.EMBEDDING_INDEX_META_KEY
#: Metadata key of the ``--model KEY=VALUE`` overrides the index was embedded with.
OVERRIDES_KEY = "model_overrides"
#: At most this many stale sources are named in an error (then a count).
STALE_NAMED = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    key: str
    caption: str
    score: float
    source: str
    stale: bool = False  # its source changed since the index was built (``allow_stale``)


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
    overrides: Mapping[str, str] | None = None,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Embed every clip of ``data`` with ``checkpoint``'s video encoder into ``out`` (Parquet).

    ``overrides``: the ``--model KEY=VALUE`` items (raw strings) for the model's config; they
    are recorded with the index, as is the identity of every source file."""
    overrides = dict(overrides or {})
    model = load_for_inference(checkpoint, text_model, overrides=overrides or None).to(device)
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
        OVERRIDES_KEY: overrides,
        "mean": list(mean),
        "std": list(std),
        "data": str(data),
        "kind": kind,
        index_sources.SOURCES_KEY: index_sources.record_sources(emb.urls, Path(out)),
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


def rebuild_command(index: str | Path, meta: Mapping[str, Any]) -> str:
    """The ``webvid embed`` command line that rebuilds ``index`` as it was built."""
    args = ["webvid", "embed", str(meta["checkpoint"]), str(meta.get("data", "DATA"))]
    args += ["--index", str(index), "--frames", str(meta["frames"])]
    if meta.get("kind", "video") != "video":
        args += ["--kind", str(meta["kind"])]
    if meta.get("text_model"):
        args += ["--text-model", str(meta["text_model"])]
    for key, value in (meta.get(OVERRIDES_KEY) or {}).items():
        args += ["--model", f"{key}={value}"]
    return shlex.join([*args, "--force"])


def check_sources(
    index: str | Path, meta: Mapping[str, Any], *, allow_stale: bool = False
) -> list[index_sources.StaleSource] | None:
    """The sources of ``index`` that are gone or changed since it was built; None for an index
    without the record (built before it was kept). Stale sources are an :class:`InputError`
    naming them and the command that rebuilds the index, unless ``allow_stale``."""
    entries = meta.get(index_sources.SOURCES_KEY)
    if entries is None:
        return None
    stale = index_sources.stale_sources(entries, Path(index))
    if stale and not allow_stale:
        named = ", ".join(f"{s.path} ({s.problem})" for s in stale[:STALE_NAMED])
        more = f" and {len(stale) - STALE_NAMED} more" if len(stale) > STALE_NAMED else ""
        raise InputError(
            f"{index} is stale: {len(stale)} of its {len(entries)} source file(s) changed or are "
            f"gone since it was built ({named}{more}), so its hits may name samples that no "
            f"longer exist. Rebuild it: {rebuild_command(index, meta)} "
            "(or search it anyway with --allow-stale)"
        )
    return stale


def query_overrides(meta: Mapping[str, Any], overrides: Mapping[str, str] | None) -> dict[str, str]:
    """The ``--model`` overrides to embed a query for an index: the ones it was built with,
    which the caller's may repeat but not change or add to (an InputError names the clash)."""
    mine = {k: str(v) for k, v in (overrides or {}).items()}
    if OVERRIDES_KEY not in meta:  # an index from before overrides were recorded
        return mine
    built = {k: str(v) for k, v in meta[OVERRIDES_KEY].items()}
    clash = [k for k, v in mine.items() if k not in built or built[k].strip() != v.strip()]
    if clash:
        given = " ".join(f"--model {k}={mine[k]}" for k in clash)
        was = " ".join(f"--model {k}={v}" for k, v in built.items()) or "no --model"
        raise InputError(
            f"{given} embeds the query with another model than the index's, which was built "
            f"with {was}: drop it (the index's own overrides are used) or rebuild the index"
        )
    return built


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
    overrides: Mapping[str, str] | None = None,
    allow_stale: bool = False,
    device: str = "cpu",
    max_text_len: int = 64,
) -> list[list[Hit]]:
    """Top-``k`` clips of ``index`` for each query, best first (cosine similarity).

    The query is embedded with the index's checkpoint and ``--model`` overrides
    (:func:`query_overrides`). An index whose sources changed since it was built is refused
    (:func:`check_sources`); with ``allow_stale`` it is searched with a warning, and the hits
    from a changed or missing source are marked ``stale``."""
    meta = index_meta(index)
    stale_names = _stale_names(index, meta, allow_stale)
    ckpt = checkpoint or meta["checkpoint"]
    if not Path(ckpt).exists():
        raise InputError(f"the index was built with {ckpt}, which is gone: pass --checkpoint")
    values = query_overrides(meta, overrides)
    model = load_for_inference(ckpt, text_model or meta.get("text_model"), overrides=values or None)
    model = model.to(device)
    q = encode_queries(model, queries, max_text_len)
    if q.shape[1] != meta["dim"]:
        raise InputError(
            f"query dim {q.shape[1]} != index dim {meta['dim']}: another model built this index"
        )
    return top_k(index, q, k, stale_names)


def _stale_names(index: str | Path, meta: Mapping[str, Any], allow_stale: bool) -> set[str]:
    """The ``source`` values of the index's stale sources (:func:`check_sources`), logged."""
    stale = check_sources(index, meta, allow_stale=allow_stale)
    if stale is None:
        log.info(
            "%s records no source identities (an older index): it cannot be checked for "
            "staleness; rebuild it with webvid embed to get the check",
            index,
        )
    elif stale:
        log.warning(
            "%s is stale (%d source file(s) changed or gone): hits from them are "
            "marked stale and may name samples that no longer exist",
            index,
            len(stale),
        )
    return {s.source for s in stale or ()}


def top_k(
    index: str | Path, q: np.ndarray, k: int, stale: set[str] | None = None
) -> list[list[Hit]]:
    """Each query row's (of ``q``: unit rows) top-``k`` rows of the index, best first, read in
    record batches of 65,536 rows (memory bounded whatever the index's size); the hits whose
    ``source`` is in ``stale`` are marked so."""
    stale = stale or set()
    heaps: list[list[tuple[float, int, Hit]]] = [[] for _ in range(len(q))]
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
        for qi in range(len(q)):
            top = np.argsort(-scores[qi])[:k]
            for i in top:
                counter += 1
                item = (
                    float(scores[qi, i]),
                    -counter,
                    Hit(
                        keys[i],
                        caps[i] or "",
                        float(scores[qi, i]),
                        srcs[i] or "",
                        (srcs[i] or "") in stale,
                    ),
                )
                if len(heaps[qi]) < k:
                    heapq.heappush(heaps[qi], item)
                elif item[0] > heaps[qi][0][0]:
                    heapq.heapreplace(heaps[qi], item)
    return [[h for _, _, h in sorted(hp, key=lambda t: (-t[0], -t[1]))] for hp in heaps]
