"""What an embedding index was built from: the identity of each source file, and staleness.

Takes the ``source`` values of an embedding index (``webvid embed``: the shard tars, or the
video files of a plain folder) and the index's own path; produces a record, one entry per
source: the path relative to the index's folder and absolute (a root copied or moved with its
index is found by the first, an index moved alone by the second), ``bytes``, ``mtime_ns`` and
``sha256``. ``webvid embed`` keeps the record in the index's schema metadata under
:data:`SOURCES_KEY`.

:func:`stale_sources` compares a record with the files as they are now: a file that is gone,
or that differs (size first; the sha256 only when the size is the same but the mtime is not, so
an unchanged shard set costs one ``stat`` per file), is stale. ``webvid refilter``,
``webvid takedown`` and a re-shard rewrite tars, so an index built before still lists samples
that are gone. :func:`refresh_sources` is for the takedown, which removes those rows from the
index itself: it records a source's new identity only when every key the index still holds for
it is still in the file. It records no mtime for them (the record must not depend on when a
takedown ran, so that a resumed one writes the same bytes as one run straight through): those
sources are hashed on every check.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webvid import contract

#: Key of the record inside the index's JSON metadata (``contract.EMBEDDING_INDEX_META_KEY``).
SOURCES_KEY = "sources"


@dataclass(frozen=True)
class StaleSource:
    """A recorded source that is ``gone`` or ``changed``; ``path``: where it was looked for."""

    source: str
    path: str
    problem: str


def file_identity(path: Path) -> dict[str, Any]:
    """``bytes``, ``mtime_ns`` and ``sha256`` of the file ``path``."""
    st = path.stat()
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}


def record_sources(sources: Iterable[str], index_path: Path) -> list[dict[str, Any]]:
    """The record of every distinct non-empty source that is a file (relative sources are
    taken from the working folder, as the stream opened them)."""
    folder = Path(os.path.abspath(index_path)).parent
    out = []
    for source in sorted({s for s in sources if s}):
        path = Path(os.path.abspath(source))
        if path.is_file():
            rel = os.path.relpath(path, folder)
            out.append({"source": source, "path": rel, "abs": str(path), **file_identity(path)})
    return out


def locate(entry: Mapping[str, Any], index_path: Path) -> Path | None:
    """The file a record entry names now: relative to the index's folder, else absolute."""
    folder = Path(os.path.abspath(index_path)).parent
    for candidate in (folder / entry["path"], Path(entry["abs"])):
        if candidate.is_file():
            return Path(os.path.normpath(candidate))
    return None


def is_unchanged(entry: Mapping[str, Any], path: Path) -> bool:
    """Whether ``path`` still has the recorded identity (hashing only when size and mtime
    cannot tell; a refreshed entry records no mtime, so it is always hashed)."""
    st = path.stat()
    if st.st_size != entry["bytes"]:
        return False
    if st.st_mtime_ns == entry["mtime_ns"]:
        return True
    return file_identity(path)["sha256"] == entry["sha256"]


def stale_sources(entries: Iterable[Mapping[str, Any]], index_path: Path) -> list[StaleSource]:
    """The recorded sources that are gone or differ from their record, in record order."""
    stale = []
    for e in entries:
        path = locate(e, index_path)
        if path is None:
            stale.append(StaleSource(e["source"], e["abs"], "gone"))
        elif not is_unchanged(e, path):
            stale.append(StaleSource(e["source"], str(path), "changed"))
    return stale


def tar_keys(path: Path) -> set[str]:
    """The sample keys of a tar (``000120005.frame00.jpg`` → ``000120005``)."""
    with tarfile.open(path) as tf:
        return {m.name.split(".", 1)[0] for m in tf.getmembers()}


def refresh_sources(
    entries: Iterable[Mapping[str, Any]],
    index_path: Path,
    sources: Collection[str],
    keys_by_source: Mapping[str, Collection[str]],
) -> list[dict[str, Any]]:
    """The record with the current identity of each of ``sources`` whose file holds every key
    the index keeps for it (``keys_by_source``); every other entry is left as it was."""
    out = []
    for e in entries:
        entry = dict(e)
        path = locate(e, index_path) if e["source"] in sources else None
        if path is not None and not is_unchanged(e, path):
            keys = keys_by_source.get(e["source"], ())
            if not keys or (path.suffix == ".tar" and set(keys) <= tar_keys(path)):
                # no mtime: a takedown rerun after a kill must write the same bytes
                entry.update(file_identity(path), mtime_ns=None)
        out.append(entry)
    return out


def refresh_metadata(
    metadata: Mapping[bytes, bytes],
    index_path: Path,
    sources: Collection[str],
    rows: Iterable[tuple[str, str]],
) -> dict[bytes, bytes]:
    """An index's schema metadata with its record refreshed for ``sources`` (see
    :func:`refresh_sources`), ``rows`` being the ``(key, source)`` pairs the index keeps."""
    out = dict(metadata)
    meta = json.loads(out[contract.EMBEDDING_INDEX_META_KEY])
    if SOURCES_KEY not in meta:
        return out
    keys: dict[str, list[str]] = {}
    for key, source in rows:
        if source in sources:
            keys.setdefault(source, []).append(key)
    meta[SOURCES_KEY] = refresh_sources(meta[SOURCES_KEY], index_path, sources, keys)
    out[contract.EMBEDDING_INDEX_META_KEY] = json.dumps(meta).encode()
    return out
