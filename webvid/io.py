"""Atomic files and manifests: nothing is ever half-written under its final name.

Takes data (bytes, text, JSON, Arrow tables, or a path a tool writes to) and a final path;
produces that file, complete, or nothing. Every writer goes through :func:`atomic_path`:
write to a temp name in the same folder, flush, ``fsync``, ``os.replace`` onto the final
name, ``fsync`` the folder. A reader that sees the final name sees the whole file.

A folder's ``manifest.json`` is written last with :func:`write_manifest`; its presence is
the commit marker of the unit of work (a crawl, a shard dir, a run).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from webvid import contract
from webvid.errors import WebvidError

TMP_PREFIX = ".tmp-"


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename inside ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tmp_name(final: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=TMP_PREFIX + final.name + ".", dir=final.parent)
    os.close(fd)
    return Path(name)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], *, durable: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``final``; on success it is fsynced and renamed onto ``final``.

    For tools that want a path rather than a file object (ffmpeg, DuckDB ``COPY``, pyarrow).
    On any exception the temp file is removed and ``final`` is untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(final)
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, final)
        if durable:
            fsync_dir(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_write(
    final: str | os.PathLike[str], mode: str = "wb", *, durable: bool = True, **open_kw: Any
) -> Iterator[IO[Any]]:
    """Open a temp file beside ``final`` for writing; commit it under ``final`` on success."""
    if "r" in mode or "a" in mode:
        raise ValueError("atomic_write is for new files: use mode 'w' or 'wb'")
    with atomic_path(final, durable=False) as tmp, open(tmp, mode, **open_kw) as fh:
        yield fh
        fh.flush()
        if durable:
            os.fsync(fh.fileno())
    if durable:
        fsync_dir(Path(final).parent)


def write_bytes(final: str | os.PathLike[str], data: bytes) -> None:
    with atomic_write(final, "wb") as fh:
        fh.write(data)


def write_text(final: str | os.PathLike[str], text: str) -> None:
    with atomic_write(final, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json(final: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    write_text(final, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_parquet(
    final: str | os.PathLike[str],
    table: pa.Table,
    schema: pa.Schema | None = None,
    *,
    row_group_size: int = 10_000,
) -> None:
    """Write ``table`` (validated against ``schema`` when given) as one Parquet file, atomically."""
    if schema is not None:
        table = contract.validate_table(table, schema)
    with atomic_path(final) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression="zstd")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def remove_stale_temps(folder: str | os.PathLike[str]) -> int:
    """Delete temp files left by a killed writer in ``folder`` (not recursive). Returns count."""
    n = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        if p.name.startswith(TMP_PREFIX) and p.is_file():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                n += 1
    return n


def safe_join(root: str | os.PathLike[str], relpath: str) -> Path:
    """Join ``relpath`` under ``root`` and refuse anything that would land outside it."""
    root_p = Path(root).resolve()
    if "\x00" in relpath or Path(relpath).is_absolute():
        raise WebvidError(f"unsafe relative path: {relpath!r}")
    full = (root_p / relpath).resolve()
    if full != root_p and root_p not in full.parents:
        raise WebvidError(f"path escapes {root_p}: {relpath!r}")
    return full


# --------------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------------


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape outputs (recorded in every manifest)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for name in ("webvid", "pyarrow", "webdataset", "torch", "transformers", "aiohttp", "yt-dlp"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def write_manifest(
    folder: str | os.PathLike[str],
    kind: str,
    *,
    config: Mapping[str, Any],
    counts: Mapping[str, int],
    **extra: Any,
) -> dict[str, Any]:
    """Write ``folder/manifest.json`` atomically: the commit marker of a finished unit."""
    if kind not in contract.MANIFEST_KINDS:
        raise ValueError(f"unknown manifest kind {kind!r}")
    manifest = {
        "format": f"webvid/{kind}",
        "format_version": contract.FORMAT_VERSION,
        "kind": kind,
        "created_at": utc_now(),
        "tool": "webvid",
        "versions": tool_versions(),
        "config": dict(config),
        "counts": dict(counts),
        **extra,
    }
    write_json(Path(folder) / contract.MANIFEST_NAME, manifest)
    return manifest


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of ``folder``, or None when the unit was never committed."""
    path = Path(folder) / contract.MANIFEST_NAME
    if not path.is_file():
        return None
    manifest = read_json(path)
    missing = [k for k in contract.MANIFEST_REQUIRED_KEYS if k not in manifest]
    if missing:
        raise WebvidError(f"{path}: manifest lacks {', '.join(missing)}")
    return manifest
