"""Deterministic, atomic WebDataset shards: ``NNNNN.tar`` + ``NNNNN.parquet`` + ``NNNNN_stats.json``.

Takes the kept samples of one split, already in their final order, each with its media file
(and optional frame JPEGs), caption text and JSON metadata; produces shards in
``OUT/<split>/``:

* :func:`plan_shards` cuts the ordered samples into shards, rolling over on ``max_samples``
  and before a tar would cross ``max_bytes`` (exact tar sizes: headers and padding counted);
* :func:`write_shard` writes one shard: the tar under a temp name (USTAR, members sorted, fixed
  mtime/owner/mode, so the same inputs give byte-identical tars), renamed into place; then the
  sample Parquet; then the stats JSON last, as the commit marker. A shard whose stats file
  exists with the same plan digest is skipped, so reruns resume.

A sample whose media file is missing is an error (never a sample without media in a tar).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webvid import contract
from webvid.io import atomic_path, read_json, write_json, write_parquet
from webvid.shards.probe import sha256_file

BLOCK = 512


@dataclass(frozen=True)
class Sample:
    """One sample as the tar sees it: files and texts to put under ``KEY.<ext>``; its Parquet row.

    Already serialised: the shard stage builds it from its typed records in one place
    (:func:`webvid.shards.rows.tar_sample`); this module adds only the positional key.
    """

    media: str  # path of the media file
    ext: str  # "mp4" | "jpg"
    caption: str
    meta: dict[str, Any]  # KEY.json (the key is added at write time)
    row: dict[str, Any]  # SAMPLE_SCHEMA row (key/shard/split added at write time)
    frames: tuple[str, ...] = ()  # KEY.frame00.jpg ...
    media_bytes: int = 0
    frame_bytes: tuple[int, ...] = ()


@dataclass
class ShardPlan:
    split: str
    index: int
    media_kind: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def name(self) -> str:
        return contract.shard_name(self.index)

    def key(self, i: int) -> str:
        return contract.sample_key(self.index, i)

    def digest(self) -> str:
        """What the shard will hold: keys, media hashes, captions (to validate a committed shard)."""
        h = hashlib.sha256()
        for i, s in enumerate(self.samples):
            h.update(
                f"{self.key(i)}\0{s.row.get('sha256')}\0{s.caption}\0{len(s.frames)}\n".encode()
            )
        return h.hexdigest()


def _member_size(n: int) -> int:
    return BLOCK + (n + BLOCK - 1) // BLOCK * BLOCK


def _json_bytes(meta: dict[str, Any], key: str) -> bytes:
    return json.dumps(
        {"key": key, **meta}, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def sample_tar_bytes(s: Sample) -> int:
    """Exact bytes this sample adds to a tar (keys are fixed width, so any key will do)."""
    key = "0" * (contract.SHARD_DIGITS + contract.SAMPLE_DIGITS)
    sizes = [
        s.media_bytes,
        len(s.caption.encode("utf-8")),
        len(_json_bytes(s.meta, key)),
        *s.frame_bytes,
    ]
    return sum(_member_size(n) for n in sizes)


def plan_shards(
    samples: Sequence[Sample],
    split: str,
    media_kind: str,
    max_samples: int,
    max_bytes: int,
    start: int = 0,
) -> list[ShardPlan]:
    """Cut ordered samples into shards by count and by tar bytes (a lone big sample still fits).

    Shards are numbered from ``start``: the val split continues after the train split, so
    shard names and sample keys are unique in a shard dir.
    """
    end_overhead = 2 * BLOCK + tarfile.RECORDSIZE
    shards: list[ShardPlan] = []
    current: ShardPlan | None = None
    size = 0
    for s in samples:
        n = sample_tar_bytes(s)
        if (
            current is None
            or len(current.samples) >= max_samples
            or (current.samples and size + n + end_overhead > max_bytes)
        ):
            current = ShardPlan(split, start + len(shards), media_kind)
            shards.append(current)
            size = 0
        current.samples.append(s)
        size += n
    return shards


def stats_path(out: Path, plan: ShardPlan) -> Path:
    return out / plan.split / f"{plan.name}_stats.json"


def is_committed(out: Path, plan: ShardPlan) -> bool:
    path = stats_path(out, plan)
    if not path.is_file() or not (out / plan.split / f"{plan.name}.tar").is_file():
        return False
    try:
        return read_json(path).get("plan_digest") == plan.digest()
    except (OSError, ValueError):
        return False


def _tarinfo(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    import io

    tar.addfile(_tarinfo(name, len(data), mtime), io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, path: str, mtime: int) -> int:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"media for {name} is missing: {path}")
    size = p.stat().st_size
    with open(p, "rb") as fh:
        tar.addfile(_tarinfo(name, size, mtime), fh)
    return size


def write_shard(
    out: Path, plan: ShardPlan, mtime: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write one shard atomically (tar, Parquet, stats last); returns the stats dict."""
    started = time.time()
    folder = out / plan.split
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    media_bytes = 0
    tar_path = folder / f"{plan.name}.tar"
    with atomic_path(tar_path) as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for i, s in enumerate(plan.samples):
                key = plan.key(i)
                members: list[tuple[str, bytes | str]] = [
                    (f"{key}.{s.ext}", s.media),
                    (f"{key}.txt", s.caption.encode("utf-8")),
                    (f"{key}.json", _json_bytes(s.meta, key)),
                    *((f"{key}.frame{j:02d}.jpg", f) for j, f in enumerate(s.frames)),
                ]
                for name, payload in sorted(members, key=lambda m: m[0]):
                    if isinstance(payload, bytes):
                        _add_bytes(tar, name, payload, mtime)
                    else:
                        size = _add_file(tar, name, payload, mtime)
                        media_bytes += size
                rows.append({**s.row, "key": key, "shard": plan.name, "split": plan.split})
        tar_sha = sha256_file(tmp)
    write_parquet(
        folder / f"{plan.name}.parquet", contract.rows_to_table(rows, contract.SAMPLE_SCHEMA)
    )
    stats = {
        "shard": plan.name,
        "split": plan.split,
        "media_kind": plan.media_kind,
        "count": len(rows),
        "successes": len(rows),
        "failed_to_download": 0,
        "failed_to_resize": 0,
        "status_dict": {contract.STATUS_SUCCESS: len(rows)},
        "tar_bytes": tar_path.stat().st_size,
        "media_bytes": media_bytes,
        "tar_sha256": tar_sha,
        "first_key": rows[0]["key"] if rows else None,
        "last_key": rows[-1]["key"] if rows else None,
        "plan_digest": plan.digest(),
        "start_time": started,
        "end_time": time.time(),
        "duration": round(time.time() - started, 3),
        **(extra or {}),
    }
    write_json(stats_path(out, plan), stats)
    return stats


def index_row(stats: dict[str, Any]) -> dict[str, Any]:
    """The ``index.parquet`` row (SHARD_INDEX_SCHEMA) of a committed shard's stats."""
    return {
        "shard": stats["shard"],
        "split": stats["split"],
        "media_kind": stats["media_kind"],
        "count": stats["count"],
        "tar_bytes": stats["tar_bytes"],
        "media_bytes": stats["media_bytes"],
        "tar_sha256": stats["tar_sha256"],
        "first_key": stats["first_key"],
        "last_key": stats["last_key"],
    }
