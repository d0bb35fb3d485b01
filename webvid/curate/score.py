"""``webvid score``: a shard set scored by a checkpoint — caption agreement and semantic near-duplicates.

Takes a checkpoint (ours or an official Frozen-in-Time one), a shard set and scoring options;
produces one Parquet table (``contract.SCORES_SCHEMA``, one row per sample, keyed like
``verdicts.parquet`` by ``clip_id``, ``shard`` and ``key``) with, per sample:

* ``caption_cosine``: cosine of the clip's and its caption's embeddings;
* ``caption_rank``: the rank (1 = best) of its own caption among all captions, for the clip;
  ``clip_rank``: of the clip among all clips, for its caption; ``caption_agreement`` =
  ``1 - (max(caption_rank, clip_rank) - 1) / (rank_pool - 1)``: 1 when clip and caption pick
  each other first, about 0.5 for a caption that fits its clip no better than a random one.
  Ranks are counted exactly among all N samples when ``N ≤ rank_pool``; above, among a seeded
  sample of ``rank_pool`` captions (clips) and scaled to N;
* ``neighbor_ids``/``neighbor_distances``: the nearest other clips and ``1 - cosine``;
* the semantic near-duplicate group (:mod:`webvid.curate.semdedup`): ``semantic_cluster`` (the
  k-means bucket), ``semantic_group`` (clip id of the group's first by the keep rule),
  ``semantic_group_size``, ``semantic_group_rank`` (1 = kept), ``semantic_duplicate_of`` and
  ``semantic_cosine``. **Keep rule**: in each group the sample with the highest
  ``caption_agreement`` comes first, then the highest ``caption_cosine``, ties by ``shard``
  then ``key``.

Embedding is resumable (:mod:`webvid.curate.parts`); everything after it is a deterministic
function of the parts, so a killed and resumed run writes the same table as a clean one.
The table's schema metadata (``webvid.scores``) records the checkpoint and the settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from webvid import contract
from webvid.curate.parts import PART_COLUMNS, EmbedOptions, embed_parts, find_shards
from webvid.curate.semdedup import DedupParams, semantic_dedup
from webvid.errors import ConfigError
from webvid.io import write_parquet
from webvid.log import NullProgress, Progress

#: Cosine margin under which another caption (clip) ties with a sample's own in the ranks.
TIE = 1e-6
#: Clip embeddings are searched for duplicates in float32 up to this many numbers, else float16.
FP32_LIMIT = 1 << 28


@dataclass(frozen=True)
class ScoreOptions:
    embed: EmbedOptions = field(default_factory=EmbedOptions)
    dedup: DedupParams = field(default_factory=DedupParams)
    rank_pool: int = 65_536  # ranks counted among at most this many captions / clips
    rank_block: int = 4096

    def __post_init__(self) -> None:
        if self.rank_pool < 2 or self.rank_block < 1:
            raise ConfigError("rank_pool must be >= 2 and rank_block >= 1")


@dataclass
class Embedded:
    """The parts' decodable rows as arrays, and their broken rows."""

    meta: pa.Table  # clip_id, shard, key, split, caption, broken of the decodable rows
    broken: pa.Table  # the same columns, rows that could not be decoded
    video: np.ndarray  # (N, d) unit rows: float32, float16 above FP32_LIMIT numbers
    text: np.ndarray
    cosine: np.ndarray  # (N,) float64, from the float32 vectors


def _vectors(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    dim = column.type.list_size
    if len(column) == 0:
        return np.zeros((0, dim), np.float32)
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return arr.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32)


def embedded(parts: Iterable[pa.Table], total: int) -> Embedded:
    """Gather part tables (``total`` rows in all) into arrays, one part in memory at a time."""
    meta_cols = list(PART_COLUMNS[:6])
    metas, bads = [], []
    video = text = cosine = None
    row = 0
    for part in parts:
        ok_mask = part.column("broken").is_null()
        ok = part.filter(ok_mask)
        bads.append(part.filter(pc.invert(ok_mask)).select(meta_cols))
        metas.append(ok.select(meta_cols))
        v, t = _vectors(ok.column("video")), _vectors(ok.column("text"))
        if video is None:
            dtype = np.float32 if total * v.shape[1] <= FP32_LIMIT else np.float16
            video = np.empty((total, v.shape[1]), dtype)
            text = np.empty((total, v.shape[1]), dtype)
            cosine = np.empty(total, np.float64)
        video[row : row + len(v)], text[row : row + len(v)] = v, t
        cosine[row : row + len(v)] = (v * t).sum(1)
        row += len(v)
    if video is None or text is None or cosine is None:
        raise ConfigError("no shards to score")
    return Embedded(
        pa.concat_tables(metas), pa.concat_tables(bads), video[:row], text[:row], cosine[:row]
    )


def _rows(x: np.ndarray, sl: slice | np.ndarray, dev: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x[sl])).to(dev).float()


def ranks(
    v: np.ndarray,
    t: np.ndarray,
    own: np.ndarray,
    pool: int,
    block: int,
    *,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, int]:
    """(caption_rank, clip_rank, pool size) of each pair ``(v[i], t[i])`` (unit-norm rows,
    ``own[i]`` their cosine).

    caption_rank: 1 + how many other captions are closer to clip i than its own; clip_rank:
    1 + how many other clips are closer to caption i than its own clip; "closer" by more than
    ``TIE`` (an identical caption ties, whatever the rounding of the matmul). With more rows than
    ``pool``, counted among a seeded sample of ``pool`` rows and scaled by ``(N-1)/m``.
    """
    n = v.shape[0]
    dev = torch.device(device)
    if n <= pool:
        ref_np = np.arange(n)
    else:
        ref_np = np.sort(np.random.default_rng(seed).choice(n, pool, replace=False))
    ref = torch.from_numpy(ref_np).to(dev)
    tr, vr = _rows(t, ref_np, dev), _rows(v, ref_np, dev)
    own_t = torch.from_numpy(own).to(dev).float()
    out_c = np.empty(n, np.int64)
    out_v = np.empty(n, np.int64)
    for i in range(0, n, block):
        sl = slice(i, min(i + block, n))
        rows = torch.arange(sl.start, sl.stop, device=dev)
        is_self = rows.unsqueeze(1) == ref.unsqueeze(0)
        others = (len(ref) - is_self.sum(1)).clamp_min(1).double()
        for mat, q, out in ((tr, _rows(v, sl, dev), out_c), (vr, _rows(t, sl, dev), out_v)):
            closer = ((q @ mat.T) > own_t[sl].unsqueeze(1) + TIE) & ~is_self
            scaled = closer.sum(1).double() * (n - 1) / others
            out[sl] = (1 + torch.round(scaled)).long().cpu().numpy()
    return out_c, out_v, len(ref_np)


def _keep_order(
    agreement: np.ndarray, cosine: np.ndarray, shard: pa.ChunkedArray, key: pa.ChunkedArray
) -> np.ndarray:
    """Each row's place in the keep rule: agreement desc, cosine desc, shard, key."""
    n = len(key)
    tie = pc.sort_indices(
        pa.table({"shard": shard, "key": key}),
        sort_keys=[("shard", "ascending"), ("key", "ascending")],
    ).to_numpy()
    tie_rank = np.empty(n, np.int64)
    tie_rank[tie] = np.arange(n)
    order = np.lexsort((tie_rank, -cosine, -agreement))
    place = np.empty(n, np.int64)
    place[order] = np.arange(n)
    return place


def _lists(values: pa.Array, index: np.ndarray, sims: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """neighbor_ids and neighbor_distances from the (N, k) neighbour indices (-1: none)."""
    valid = index >= 0  # the -1 padding is only ever at the end of a row
    offsets = pa.array(np.concatenate([[0], np.cumsum(valid.sum(1))]).astype(np.int32))
    ids = pa.ListArray.from_arrays(offsets, values.take(pa.array(index[valid])))
    dist = pa.ListArray.from_arrays(offsets, pa.array(1.0 - sims[valid].astype(np.float64)))
    return ids, dist


def scores_table(emb: Embedded, opts: ScoreOptions) -> pa.Table:
    """The scores table (``SCORES_SCHEMA``): decodable rows in part order, then the broken
    ones (no scores)."""
    n = len(emb.cosine)
    rc, rv, pool = ranks(
        emb.video, emb.text, emb.cosine, opts.rank_pool, opts.rank_block,
        seed=opts.dedup.seed, device=opts.embed.device,
    )  # fmt: skip
    agreement = np.clip(1.0 - (np.maximum(rc, rv) - 1) / max(1, n - 1), 0.0, 1.0)
    meta = emb.meta
    place = _keep_order(agreement, emb.cosine, meta.column("shard"), meta.column("key"))
    res = semantic_dedup(emb.video, place, opts.dedup)
    ids = meta.column("clip_id").combine_chunks() if n else pa.array([], pa.string())
    nb_ids, nb_dist = _lists(ids, res.neighbor_index, res.neighbor_cosine)
    dup = res.group != np.arange(n)
    group = ids.take(pa.array(res.group))
    scored = {
        **{c: meta.column(c) for c in meta.column_names},
        "caption_cosine": emb.cosine,
        "caption_rank": rc,
        "clip_rank": rv,
        "rank_pool": np.full(n, pool, np.int64),
        "caption_agreement": agreement,
        "neighbor_ids": nb_ids,
        "neighbor_distances": nb_dist,
        "semantic_cluster": res.cluster,
        "semantic_group": group,
        "semantic_group_size": res.group_size,
        "semantic_group_rank": res.group_rank,
        "semantic_duplicate_of": pc.if_else(pa.array(dup), group, pa.scalar(None, pa.string())),
        "semantic_cosine": pa.array(res.group_cosine.astype(np.float64), mask=~dup),
    }
    schema = contract.SCORES_SCHEMA
    ok = pa.table([_typed(scored[f.name], f.type) for f in schema], schema=schema)
    bad = emb.broken
    nulls = [
        bad.column(f.name) if f.name in bad.column_names else pa.nulls(bad.num_rows, f.type)
        for f in schema
    ]
    bad = pa.table(nulls, names=schema.names).cast(schema)
    return contract.validate_table(pa.concat_tables([ok, bad]), schema)


def _typed(values: Any, type_: pa.DataType) -> Any:
    if isinstance(values, np.ndarray):
        return pa.array(values, type_)
    return values.cast(type_)


def score(
    checkpoint: str | Path,
    data: str | Path | list[str],
    out: str | Path,
    opts: ScoreOptions | None = None,
    progress: Progress | None = None,
    *,
    workers: int = 0,
) -> dict[str, Any]:
    """Embed (resuming; shards decoded by ``workers`` processes, 0: this one) and score every
    sample of ``data``; write the table to ``out``. The table does not depend on ``workers``."""
    opts = opts or ScoreOptions()
    progress = progress or NullProgress()
    out = Path(out)
    if out.suffix != ".parquet":
        raise ConfigError(f"--out {out}: the scores table is a .parquet file")
    shards = find_shards(data)
    paths, embedded_now = embed_parts(
        checkpoint, shards, out, opts.embed, progress, workers=workers
    )
    total = sum(pq.read_metadata(p).num_rows for p in paths)
    table = scores_table(embedded((pq.read_table(p) for p in paths), total), opts)
    meta = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "shards": len(shards),
        "options": asdict(opts),
    }
    table = table.replace_schema_metadata(
        {contract.SCORES_META_KEY: json.dumps(meta, sort_keys=True, default=str).encode()}
    )
    write_parquet(out, table)
    n_bad = len(table.column("broken").drop_null())
    dup = len(table.column("semantic_duplicate_of").drop_null())
    return {
        "path": str(out),
        "samples": table.num_rows,
        "broken": n_bad,
        "shards": len(shards),
        "embedded_now": embedded_now,
        "semantic_duplicates": dup,
    }
