"""Removing samples from a finished shard dir: each file rewritten as a function of itself.

Takes a shard dir (``manifest.json`` of kind ``shards``) and what a takedown removes from it —
sample keys per shard, verdict rows by ``(clip_id, crawl_dir)`` — and produces the same dir
without them. Every function here reads the file as it is now and writes the result only
when it differs, atomically (temp name, fsync, rename): running one twice, or after a kill
at any point, gives the same bytes as running it once. That is what makes a takedown
resumable (:mod:`webvid.shards.takedown` keeps the plan in a journal and replays it).

* :func:`rewrite_shard`: ``NNNNN.tar`` without the removed keys' members — every other member
  copied with the writer's header fields (USTAR, its name, size, mtime, mode, owner), so its
  header and data blocks are byte for byte what they were — then ``NNNNN.parquet`` without
  their rows, then ``NNNNN_stats.json`` recomputed from the two (count, bytes, sha256, first
  and last key, plan digest), last, as the writer does. Keys are not renumbered: the samples
  left keep their keys (an embedding index or a user's notes still name them), so a shard may
  have gaps, as img2dataset's shards do where downloads failed.
* :func:`rewrite_verdicts`: ``verdicts.parquet`` without the removed inputs' rows (nothing
  but the takedown log names them), and ``duplicate_of``/``hamming`` cleared where they
  named a removed clip;
* :func:`rewrite_index`, :func:`rewrite_manifest`: the shard index from the stats files; the
  manifest's counts and funnel from the verdicts and stats (``taken_down`` = inputs that
  have no verdict row any more), its fingerprint from its crawl dirs as they are now;
* :func:`filter_embedding_index`: an index written by ``webvid embed`` without the rows of
  removed samples (its schema metadata kept).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from webvid import contract
from webvid.index_sources import refresh_metadata
from webvid.io import atomic_path, read_json, write_json, write_parquet
from webvid.shards import writer
from webvid.shards.probe import sha256_file

TEXT_EXTS = ("txt", "json")  # tar members that are not media (media_bytes counts the rest)


def member_key(name: str) -> str:
    """The sample key of a tar member (``000120005.frame00.jpg`` → ``000120005``)."""
    return name.split(".", 1)[0]


def _copy_info(m: tarfile.TarInfo) -> tarfile.TarInfo:
    info = tarfile.TarInfo(m.name)
    info.size, info.mtime, info.mode = m.size, m.mtime, m.mode
    info.uid, info.gid, info.uname, info.gname = m.uid, m.gid, m.uname, m.gname
    info.type = m.type
    return info


def _rewrite_tar(path: Path, remove: Collection[str]) -> bool:
    with tarfile.open(path) as src:
        if not any(member_key(m.name) in remove for m in src.getmembers()):
            return False
        with (
            atomic_path(path) as tmp,
            tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as dst,
        ):
            for m in src.getmembers():
                if member_key(m.name) not in remove:
                    dst.addfile(_copy_info(m), src.extractfile(m))
    return True


def _rewrite_table(path: Path, column: str, remove: Collection[str], schema: pa.Schema) -> bool:
    table = pq.read_table(path)
    keep = pc.invert(pc.is_in(table.column(column), pa.array(sorted(remove), pa.string())))
    kept = table.filter(pc.fill_null(keep, True))
    if kept.num_rows == table.num_rows:
        return False
    write_parquet(path, contract.validate_table(kept, schema))
    return True


def shard_stats(folder: Path, shard: str, old: Mapping[str, Any]) -> dict[str, Any]:
    """``NNNNN_stats.json`` as it must be for the shard's tar and Parquet as they are now."""
    tar_path = folder / f"{shard}.tar"
    with tarfile.open(tar_path) as tf:
        members = tf.getmembers()
    rows = pq.read_table(folder / f"{shard}.parquet").to_pylist()
    frames = Counter(member_key(m.name) for m in members if ".frame" in m.name)
    digest = hashlib.sha256()
    for r in rows:  # ShardPlan.digest's fields, over the keys the shard holds
        digest.update(f"{r['key']}\0{r['sha256']}\0{r['caption']}\0{frames[r['key']]}\n".encode())
    n = len(rows)
    return {
        **old,
        "count": n,
        "successes": n,
        "status_dict": {contract.STATUS_SUCCESS: n},
        "tar_bytes": tar_path.stat().st_size,
        "media_bytes": sum(m.size for m in members if m.name.rsplit(".", 1)[-1] not in TEXT_EXTS),
        "tar_sha256": sha256_file(tar_path),
        "first_key": rows[0]["key"] if rows else None,
        "last_key": rows[-1]["key"] if rows else None,
        "plan_digest": digest.hexdigest(),
    }


def rewrite_shard(folder: Path, shard: str, remove: Collection[str]) -> bool:
    """Remove the samples ``remove`` (keys) from one shard: tar, Parquet, then stats last.
    Returns whether any file changed."""
    changed = _rewrite_tar(folder / f"{shard}.tar", remove)
    changed |= _rewrite_table(folder / f"{shard}.parquet", "key", remove, contract.SAMPLE_SCHEMA)
    stats_path = folder / f"{shard}_stats.json"
    old = read_json(stats_path)
    new = shard_stats(folder, shard, old)
    if new != old:
        write_json(stats_path, new)
        changed = True
    return changed


def rewrite_verdicts(
    path: Path, remove: Collection[tuple[str, str | None]], removed_ids: Collection[str]
) -> bool:
    """Drop the verdict rows ``(clip_id, crawl_dir)`` in ``remove``; clear ``duplicate_of``
    and ``hamming`` where they name a clip in ``removed_ids``."""
    rows = pq.read_table(path).to_pylist()
    kept = [r for r in rows if (r["clip_id"], r["crawl_dir"]) not in remove]
    cleared = 0
    for r in kept:
        if r.get("duplicate_of") in removed_ids:
            r["duplicate_of"] = r["hamming"] = None
            cleared += 1
    if len(kept) == len(rows) and not cleared:
        return False
    write_parquet(path, contract.rows_to_table(kept, contract.VERDICT_SCHEMA))
    return True


def _write_if_changed_table(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> bool:
    if path.is_file() and pq.read_table(path).to_pylist() == rows:
        return False
    write_parquet(path, contract.rows_to_table(rows, schema))
    return True


def rewrite_index(shard_dir: Path) -> bool:
    """``index.parquet`` rows from the stats files, in the order the index lists the shards."""
    path = shard_dir / contract.SHARD_INDEX_NAME
    old = pq.read_table(path).to_pylist()
    rows = [
        writer.index_row(read_json(shard_dir / r["split"] / f"{r['shard']}_stats.json"))
        for r in old
    ]
    return _write_if_changed_table(path, rows, contract.SHARD_INDEX_SCHEMA)


def current_counts(shard_dir: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's counts and funnel recomputed from the verdicts and the stats files."""
    counts = dict(manifest.get("counts", {}))
    inputs = int(counts.get("inputs", 0))
    verdicts = pq.read_table(shard_dir / contract.VERDICTS_NAME, columns=["kept", "reason"])
    kept_col = verdicts.column("kept").to_pylist()
    reasons = verdicts.column("reason").to_pylist()
    first = Counter(r for k, r in zip(kept_col, reasons, strict=True) if not k)
    first["taken_down"] = inputs - verdicts.num_rows
    funnel = [(r, first[r]) for r in contract.VERDICT_REASONS if first.get(r)]
    index = pq.read_table(shard_dir / contract.SHARD_INDEX_NAME).to_pylist()
    counts = {k: v for k, v in counts.items() if not k.startswith(("rejected_", "samples_"))}
    counts.update(
        kept=sum(kept_col),
        rejected=inputs - sum(kept_col),
        **{
            f"samples_{s}": sum(r["count"] for r in index if r["split"] == s)
            for s in ("train", "val")
        },
        **{f"rejected_{r}": n for r, n in funnel},
    )
    return {"counts": counts, "funnel": [list(f) for f in funnel]}


def current_fingerprint(manifest: Mapping[str, Any]) -> str | None:
    """The run fingerprint of the manifest's recipe over its crawl dirs as they are now (a
    takedown purges them too), so the same ``webvid shard`` command finds the dir complete;
    None when a crawl dir or the recipe cannot be read back."""
    from webvid.config import from_dict
    from webvid.errors import WebvidError
    from webvid.shards.inputs import read_inputs
    from webvid.shards.recipe import ShardRecipe
    from webvid.shards.run import fingerprint

    dirs = [Path(d) for d in manifest.get("inputs", [])]
    if not dirs or not all(d.is_dir() for d in dirs):
        return None
    try:
        recipe = from_dict(ShardRecipe, manifest.get("config", {}))
        items, _ = read_inputs(dirs)
    except WebvidError:
        return None
    return fingerprint(recipe, items)


def rewrite_manifest(shard_dir: Path) -> bool:
    """``manifest.json`` with the counts, funnel and fingerprint of the dir and its inputs as
    they are now (all else kept)."""
    path = shard_dir / contract.MANIFEST_NAME
    old = read_json(path)
    new = {**old, **current_counts(shard_dir, old)}
    fp = current_fingerprint(old)
    if fp is not None:
        new["fingerprint"] = fp
    if json.dumps(new, sort_keys=True) == json.dumps(old, sort_keys=True):
        return False
    write_json(path, new)
    return True


def is_embedding_index(path: Path) -> bool:
    """Whether ``path`` is a Parquet file written by ``webvid embed`` (by its metadata)."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return False
    return contract.EMBEDDING_INDEX_META_KEY in meta


def source_is(source: str, tar: Path, base: Path) -> bool:
    """Whether an index row's ``source`` (the tar path as ``webvid embed`` was given it)
    names ``tar``: the same file when it still exists (relative paths tried from the index's
    folder and the working folder), else the same trailing path components."""
    src = PurePath(os.path.normpath(source))
    if src.name != tar.name:
        return False
    for candidate in (src,) if src.is_absolute() else (base / src, Path(src)):
        if Path(candidate).is_file():
            return Path(candidate).resolve() == tar.resolve()
    parts = [p for p in src.parts if p not in (".", "..")]
    mine = tar.resolve().parts
    n = min(len(parts), len(mine))
    return tuple(parts[len(parts) - n :]) == mine[len(mine) - n :]


def index_rows_to_remove(path: Path, removed: Iterable[tuple[str, Path]]) -> list[tuple[str, str]]:
    """``(key, source)`` of the rows of the embedding index ``path`` that hold a removed
    sample, ``removed`` being ``(key, tar path)`` pairs."""
    by_key: dict[str, list[Path]] = {}
    for key, tar in removed:
        by_key.setdefault(key, []).append(tar)
    table = pq.read_table(path, columns=["key", "source"])
    found = []
    for key, source in zip(
        table.column("key").to_pylist(), table.column("source").to_pylist(), strict=True
    ):
        tars = by_key.get(key)
        if tars and any(source_is(source or "", t, path.parent) for t in tars):
            found.append((key, source or ""))
    return found


def filter_embedding_index(path: Path, remove: Collection[tuple[str, str]]) -> bool:
    """Drop the rows ``(key, source)`` from the embedding index ``path`` (metadata kept, its
    record of the sources it dropped rows of brought up to date: ``index_sources``)."""
    table = pq.read_table(path)
    pairs = list(
        zip(table.column("key").to_pylist(), table.column("source").to_pylist(), strict=True)
    )
    mask = [(k, s or "") not in remove for k, s in pairs]
    if all(mask):
        return False
    kept = table.filter(pa.array(mask, pa.bool_()))
    left = [(k, s or "") for (k, s), m in zip(pairs, mask, strict=True) if m]
    meta = refresh_metadata(table.schema.metadata, path, {s for _, s in remove}, left)
    write_parquet(path, kept.replace_schema_metadata(meta))
    return True
