"""Atomic files and manifests: nothing is ever half-written under its final name.

Takes data (bytes, text, JSON, Arrow tables, or a path a tool writes to) and a final path;
produces that file, complete, or nothing. Every writer goes through :func:`atomic_path`:
write to a temp name in the same folder, flush, ``fsync``, ``os.replace`` onto the final
name, ``fsync`` the folder. A reader that sees the final name sees the whole file.

A folder's ``manifest.json`` is written last with :func:`write_manifest`; its presence is
the commit marker of the unit of work (a crawl, a shard dir, a run).

Committed files get the mode a plain ``open()`` would give them, ``0o666 & ~umask`` (the temp
file ``mkstemp`` creates is 0600, which would hide shards from teammates on a shared cluster);
folders are made by ``mkdir``, which gives ``0o777 & ~umask``.
A full disk (``ENOSPC``/``EDQUOT``, or torch's "file write failed" with the disk nearly full)
becomes one :class:`~webvid.errors.DiskFullError` naming the file and the free space.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from webvid import contract
from webvid.errors import DiskFullError, WebvidError

TMP_PREFIX = ".tmp-"
#: errno values that mean "the disk (or the user's quota) is full".
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: A write error without an errno (torch's C++ writer) counts as a full disk below this.
DISK_FULL_FREE_BYTES = 64 * 2**20
#: Texts of writer errors that carry no errno: torch.save's "file write failed", Arrow's.
_WRITE_FAILED_TEXTS = ("file write failed", "no space left on device", "[errno 28]")


def _proc_umask() -> int | None:
    """The umask from ``/proc/self/status`` (Linux ≥ 4.7): read without changing it."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return None


def _umask_by_setting() -> int:
    # Set and restore: process-global and not thread-safe, so done once, at import.
    old = os.umask(0o022)
    os.umask(old)
    return old


_UMASK_AT_IMPORT = _proc_umask()
if _UMASK_AT_IMPORT is None:
    _UMASK_AT_IMPORT = _umask_by_setting()


def umask() -> int:
    """The current umask (where /proc has it, read at each call; elsewhere the one at import)."""
    current = _proc_umask()
    return _UMASK_AT_IMPORT if current is None else current


def file_mode() -> int:
    """Mode of committed files: what ``open(path, "w")`` would create, ``0o666 & ~umask``."""
    return 0o666 & ~umask()


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system of ``path`` (its nearest existing ancestor); None if unknown."""
    p = Path(path).absolute()
    for folder in (p, *p.parents):
        with contextlib.suppress(OSError):
            return shutil.disk_usage(folder).free
    return None


def _mount_point(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    with contextlib.suppress(OSError):
        while not os.path.ismount(p) and p != p.parent:
            p = p.parent
    return p


def disk_full_error(exc: BaseException, path: str | os.PathLike[str]) -> DiskFullError | None:
    """A one-line :class:`DiskFullError` for ``exc`` raised while writing ``path``, or None.

    ``OSError`` with errno ENOSPC/EDQUOT always counts; an error without an errno whose text
    says a write failed (torch.save's ``[enforce fail at inline_container.cc] … file write
    failed``, Arrow's ``IOError``) counts when the disk has less than
    :data:`DISK_FULL_FREE_BYTES` free. Call it before deleting the partial file.
    """
    text = str(exc).lower()
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        what = "disk quota exceeded" if exc.errno == errno.EDQUOT else "no space left"
    elif isinstance(exc, (RuntimeError, OSError)) and any(t in text for t in _WRITE_FAILED_TEXTS):
        free = free_bytes(Path(path).parent)
        says_full = "no space left" in text or "[errno 28]" in text
        if not (says_full or (free is not None and free < DISK_FULL_FREE_BYTES)):
            return None  # a write error on a disk with room: not ours to rename
        what = "no space left"
    else:
        return None
    free = free_bytes(Path(path).parent)
    free_text = "free space unknown" if free is None else f"{free / 2**30:.1f} GiB free"
    return DiskFullError(
        f"{what} writing {path} ({free_text} on {_mount_point(Path(path).parent)})"
    )


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
    On any exception the temp file is removed and ``final`` is untouched; a full disk is
    raised as :class:`DiskFullError`. The committed file's mode is :func:`file_mode`.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = _tmp_name(final)
    except OSError as exc:
        raise (disk_full_error(exc, final) or exc) from None
    try:
        yield tmp
        os.chmod(tmp, file_mode())  # the tool may have recreated the file: set it at the end
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, final)
        if durable:
            fsync_dir(final.parent)
    except BaseException as exc:
        full = disk_full_error(exc, final)  # before the partial file is deleted
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if full is not None:
            raise full from exc
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


def user_cache_dir(name: str, env: str) -> Path:
    """``$<env>``, else ``$XDG_CACHE_HOME/webvid/<name>``, else ``~/.cache/webvid/<name>``."""
    explicit = os.environ.get(env)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "webvid" / name
