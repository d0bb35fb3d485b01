"""Model scores for curation: a ``webvid score`` table read by clip id, and the per-group cap.

Takes the path of a scores table (``contract.SCORES_SCHEMA``, written by ``webvid score``) and
produces ``clip_id → ModelScore`` (the columns the filters and the verdict rows use); and, for
``max_per_semantic_cluster``, :func:`semantic_excess`: which of the clips still kept exceed
the cap in their near-duplicate group, the group's order being the scores table's keep rule
(``semantic_group_rank``). Used by ``webvid shard`` (:mod:`webvid.shards.decide`) and by
``webvid refilter`` (:mod:`webvid.curate.refilter`), so both decide the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from webvid.errors import InputError

COLUMNS = (
    "clip_id",
    "caption_cosine",
    "caption_agreement",
    "semantic_group",
    "semantic_group_rank",
)


@dataclass(frozen=True)
class ModelScore:
    caption_cosine: float | None
    caption_agreement: float | None
    semantic_group: str | None
    semantic_group_rank: int | None

    def columns(self) -> dict[str, Any]:
        """The verdict row's model-score columns."""
        return {
            "caption_cosine": self.caption_cosine,
            "caption_agreement": self.caption_agreement,
            "semantic_group": self.semantic_group,
            "semantic_group_rank": self.semantic_group_rank,
        }


EMPTY = ModelScore(None, None, None, None)


@lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> dict[str, ModelScore]:
    try:
        schema = pq.read_schema(path)
        missing = [c for c in COLUMNS if c not in schema.names]
        if missing:
            raise InputError(f"{path}: not a scores table of webvid score (no {missing})")
        table = pq.read_table(path, columns=list(COLUMNS))
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: unreadable scores table: {exc}") from None
    out: dict[str, ModelScore] = {}
    for row in table.to_pylist():
        cid = row.pop("clip_id")
        if isinstance(cid, str) and cid not in out:
            out[cid] = ModelScore(**row)
    return out


def read_scores(path: str | Path) -> dict[str, ModelScore]:
    """``clip_id → ModelScore`` of a scores table (the first row of a clip id counts)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"scores table not found: {p}")
    st = p.stat()
    return _read(str(p), st.st_mtime_ns, st.st_size)


def semantic_excess(
    kept: Iterable[tuple[str, ModelScore]], max_per_group: int | None
) -> dict[str, str]:
    """``clip_id → clip_id of its group's first kept clip`` for each clip over the cap.

    ``kept`` are the clips that pass every other filter; in each ``semantic_group`` they are
    taken by ``semantic_group_rank`` (then clip id), and those after the first
    ``max_per_group`` are over. Clips without a group are never over.
    """
    if max_per_group is None:
        return {}
    groups: dict[str, list[tuple[int, str]]] = {}
    for cid, s in kept:
        if s.semantic_group is not None:
            rank = s.semantic_group_rank if s.semantic_group_rank is not None else 1 << 30
            groups.setdefault(s.semantic_group, []).append((rank, cid))
    over: dict[str, str] = {}
    for members in groups.values():
        members.sort()
        for _, cid in members[max_per_group:]:
            over[cid] = members[0][1]
    return over


def scores_for(scores: Mapping[str, ModelScore] | None, clip_id: str) -> ModelScore:
    return (scores or {}).get(clip_id, EMPTY)
