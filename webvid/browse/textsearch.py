"""Text search over the embedding indexes under a root, for the Search page.

Takes a :class:`~webvid.browse.catalog.Root`; for a query, produces the top-k clips of one of
its embedding indexes (written by ``webvid embed``), each mapped back to its ``items`` row so
it plays in place. The query is embedded with the index's own checkpoint through
:func:`webvid.retrieval.search.encode_queries`; the model (per checkpoint) and the index's
unit-norm embedding matrix (``rows × dim × 4`` bytes) are loaded on the first search and kept,
so a search costs one text encoding and one matrix product — up to :data:`MATRIX_BYTES`; a
bigger index is not held: each search streams it in record batches
(:func:`webvid.retrieval.search.top_k`), so memory stays bounded and a search costs a read of
the index file.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from webvid import contract
from webvid.browse import items as it
from webvid.browse.catalog import Root
from webvid.clips.sample import Tokenize
from webvid.errors import InputError
from webvid.model.build import load_for_inference
from webvid.retrieval.search import (
    check_sources,
    encode_queries,
    index_meta,
    query_overrides,
    top_k,
)

MAX_K = 100
MAX_TEXT_LEN = 64  # as `webvid search`
#: the largest embedding matrix kept in memory (1 M rows at 64-d, 262,144 at 256-d)
MATRIX_BYTES = 256 << 20


@dataclass
class _Index:
    path: Path
    dim: int
    checkpoint: str
    text_model: str | None
    overrides: dict[str, str]
    matrix: np.ndarray | None = None  # None: streamed at each search (over MATRIX_BYTES)
    keys: list[str] | None = None
    captions: list[str] | None = None
    sources: list[str] | None = None


class TextSearch:
    """Lazily loaded models and indexes of one root (thread-safe)."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self._indexes: dict[int, _Index] = {}
        self._models: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def _index(self, n: int) -> _Index:
        if n not in self._indexes:
            path = self.root.indexes[n]
            meta = index_meta(path)
            check_sources(path, meta)  # an index whose shards were rewritten since: refused
            dim = int(meta["dim"])
            ckpt = Path(meta["checkpoint"])
            if not ckpt.is_absolute():
                ckpt = path.parent / ckpt
            idx = _Index(path, dim, str(ckpt), meta.get("text_model"), query_overrides(meta, None))
            if pq.ParquetFile(path).metadata.num_rows * dim * 4 <= MATRIX_BYTES:
                table = pq.read_table(path, columns=["key", "caption", "source", "embedding"])
                flat = table.column("embedding").combine_chunks().flatten()
                idx.matrix = flat.to_numpy(zero_copy_only=False).astype(np.float32)
                idx.matrix = idx.matrix.reshape(-1, dim)
                idx.keys = table.column("key").to_pylist()
                idx.captions = [c or "" for c in table.column("caption").to_pylist()]
                idx.sources = [s or "" for s in table.column("source").to_pylist()]
            self._indexes[n] = idx
        return self._indexes[n]

    def _model(self, index: _Index) -> Any:
        key = (index.checkpoint, index.text_model, tuple(sorted(index.overrides.items())))
        if key not in self._models:
            if not Path(index.checkpoint).exists():
                raise InputError(f"the index was built with {index.checkpoint}, which is gone")
            overrides = index.overrides or None
            model = load_for_inference(index.checkpoint, index.text_model, overrides=overrides)
            model = model.eval()
            self._models[key] = (model, Tokenize(model.config.tokenizer_ref, MAX_TEXT_LEN))
        return self._models[key]

    def search(self, query: str, *, k: int = 12, index: int = 0) -> dict[str, Any]:
        """The top ``k`` clips of index ``index`` for ``query``, best first."""
        query = query.strip()
        if not query:
            raise InputError("empty query: type some words to search for")
        if not 0 <= index < len(self.root.indexes):
            raise InputError("no such embedding index under the root (run webvid embed first)")
        k = max(1, min(int(k), MAX_K))
        with self._lock:
            idx = self._index(index)
            model, tokenize = self._model(idx)
            q = encode_queries(model, [query], MAX_TEXT_LEN, tokenize)
        if q.shape[1] != idx.dim:
            raise InputError("the index's checkpoint gives another dimension than the index")
        hits = _hits(idx, q[0], k)
        attach_items(self.root, self.root.indexes[index].parent, hits)
        return {"query": query, "index": index, "hits": hits}


def _hits(idx: _Index, q: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The top ``k`` rows of ``idx`` for the unit query ``q``, best first (ties: index order)."""
    if idx.matrix is None:
        return [
            {"key": h.key, "caption": h.caption, "score": h.score, "source": h.source}
            for h in top_k(idx.path, q[None, :], k)[0]
        ]
    assert idx.keys is not None and idx.captions is not None and idx.sources is not None
    scores = idx.matrix @ q
    top = np.argpartition(-scores, min(k, len(scores)) - 1)[:k] if len(scores) else []
    order = sorted(top, key=lambda i: (-float(scores[i]), int(i)))
    return [
        {
            "key": idx.keys[i],
            "caption": idx.captions[i],
            "score": float(scores[i]),
            "source": idx.sources[i],
        }
        for i in order
    ]


def attach_items(root: Root, base: Path, hits: list[dict[str, Any]]) -> None:
    """Give each hit the ``src``/``id`` of its ``items`` row (by shard tar and key), if any.

    A relative ``source`` is taken relative to the index's folder ``base`` (as ``webvid
    takedown`` reads it), then to the root."""
    candidates: dict[tuple[str, str], dict[str, Any]] = {}
    for h in hits:
        tar = Path(h["source"])
        tars = [tar] if tar.is_absolute() else [base / tar, root.path / tar]
        for t in tars:
            t = Path(os.path.normpath(t))
            for table in (t.parent.parent / contract.VERDICTS_NAME, t.with_suffix(".parquet")):
                candidates[(str(table), h["key"])] = h
    if not candidates:
        return
    srcs = sorted({s for s, _ in candidates if s in root.sources})
    keys = sorted({k for _, k in candidates})
    if not srcs:
        return
    found = it.rows(
        root,
        "SELECT src, id, status, media_kind, key FROM items WHERE src IN "
        f"({', '.join('?' * len(srcs))}) AND key IN ({', '.join('?' * len(keys))})",
        [*srcs, *keys],
    )
    for row in found:
        hit = candidates.get((root.sources[row["src"]], row["key"]))
        if hit is not None and "id" not in hit:
            hit.update(
                src=row["src"], id=row["id"], status=row["status"], media_kind=row["media_kind"]
            )
