"""Duplicate detection across all inputs: exact (sha256), near (perceptual hash), source id.

Takes one :class:`DedupItem` per input (already in the run's stable order) and the recipe's
:class:`~webvid.shards.recipe.DedupConfig`; produces, per duplicate, the reason, the clip id
of the copy that is kept and, for near-duplicates, the Hamming distance.

The first item in the given order wins. The caller orders items so that clips that pass every
other filter come first (by clip id): a rejected clip never makes its good twin a duplicate.
Near-duplicates are found with the pigeonhole principle: a hash of ``n`` bits within distance
``t`` of another shares at least one of ``t + 1`` bands exactly, so only items in a common
band bucket are compared (exact Hamming on those candidates only). The grey hash is blind to
colour, so a near-duplicate must also have the same chroma, frame by frame and cell by cell of
an 8x8 grid, within ``near_max_colour_diff``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from webvid.shards.recipe import DedupConfig

#: Per hashed frame, the chroma grid: ``u, v`` per cell (see ``scores.chroma_grid``).
Colour = tuple[tuple[float, ...], ...] | None


@dataclass(frozen=True)
class DedupItem:
    uid: str
    clip_id: str
    sha256: str | None
    source_key: str | None  # source id, else clip id
    phash: str | None  # hex
    colour: Colour = None  # chroma grid of each hashed frame


@dataclass(frozen=True)
class Duplicate:
    reason: str  # duplicate_exact | duplicate_source_id | duplicate_near
    of: str  # clip_id of the kept item
    hamming: int | None


def hamming(a: str, b: str) -> int:
    """Bit distance between two equal-length hex hashes."""
    if len(a) != len(b):
        raise ValueError("hashes of different lengths")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _bands(bits: int, count: int) -> list[tuple[int, int]]:
    count = max(1, min(count, bits))
    edges = [round(i * bits / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1]) for i in range(count)]


def _frame_mean(cells: tuple[float, ...]) -> tuple[float, float]:
    return sum(cells[0::2]) / len(cells[0::2]), sum(cells[1::2]) / len(cells[1::2])


def colour_close(a: Colour, b: Colour, max_diff: float) -> bool:
    """Whether two chroma signatures agree within ``max_diff`` in every cell of every frame.

    Unknown colour agrees. Signatures of different grids (a staging cache written by an
    older version beside a new one) are compared by their whole-frame means.
    """
    if a is None or b is None:
        return True
    if len(a) != len(b):
        return False
    pairs = list(zip(a, b, strict=True))
    if any(len(fa) != len(fb) for fa, fb in pairs):
        pairs = [(_frame_mean(fa), _frame_mean(fb)) for fa, fb in pairs]
    return all(abs(x - y) <= max_diff for fa, fb in pairs for x, y in zip(fa, fb, strict=True))


class NearIndex:
    """Hashes registered so far, bucketed by band, for threshold queries."""

    def __init__(self, bits: int, max_distance: int, max_colour_diff: float = 255.0) -> None:
        self.bits = bits
        self.max_distance = max_distance
        self.max_colour_diff = max_colour_diff
        self.bands = _bands(bits, max_distance + 1)
        self.buckets: list[dict[int, list[tuple[int, str, int, Colour]]]] = [
            defaultdict(list) for _ in self.bands
        ]
        self.count = 0

    def _keys(self, value: int) -> list[int]:
        return [(value >> (self.bits - hi)) & ((1 << (hi - lo)) - 1) for lo, hi in self.bands]

    def query(self, hex_hash: str, colour: Colour = None) -> tuple[str, int] | None:
        """The closest registered (clip_id, distance) within the thresholds; ties go to the first."""
        value = int(hex_hash, 16)
        best: tuple[int, int, str] | None = None  # (distance, registration order, clip_id)
        for bucket, key in zip(self.buckets, self._keys(value), strict=True):
            for seq, cid, other, other_colour in bucket.get(key, ()):
                d = (value ^ other).bit_count()
                if (
                    d <= self.max_distance
                    and (best is None or (d, seq) < best[:2])
                    and colour_close(colour, other_colour, self.max_colour_diff)
                ):
                    best = (d, seq, cid)
        return (best[2], best[0]) if best else None

    def add(self, clip_id: str, hex_hash: str, colour: Colour = None) -> None:
        value = int(hex_hash, 16)
        self.count += 1
        for bucket, key in zip(self.buckets, self._keys(value), strict=True):
            bucket[key].append((self.count, clip_id, value, colour))


def find_duplicates(items: Iterable[DedupItem], cfg: DedupConfig) -> dict[str, Duplicate]:
    """uid → Duplicate for every item that repeats an earlier one (in the given order)."""
    out: dict[str, Duplicate] = {}
    by_sha: dict[str, str] = {}
    by_source: dict[str, str] = {}
    indexes: dict[int, NearIndex] = {}
    for it in items:
        if cfg.exact and it.sha256 and it.sha256 in by_sha:
            out[it.uid] = Duplicate("duplicate_exact", by_sha[it.sha256], None)
            continue
        if cfg.source_id and it.source_key and it.source_key in by_source:
            out[it.uid] = Duplicate("duplicate_source_id", by_source[it.source_key], None)
            continue
        if cfg.near and it.phash:
            bits = len(it.phash) * 4
            index = indexes.get(bits)
            if index is None:
                index = indexes[bits] = NearIndex(
                    bits, int(cfg.near_max_distance * bits), cfg.near_max_colour_diff
                )
            hit = index.query(it.phash, it.colour)
            if hit is not None:
                out[it.uid] = Duplicate("duplicate_near", hit[0], hit[1])
                continue
            index.add(it.clip_id, it.phash, it.colour)
        if it.sha256:
            by_sha.setdefault(it.sha256, it.clip_id)
        if it.source_key:
            by_source.setdefault(it.source_key, it.clip_id)
    return out
