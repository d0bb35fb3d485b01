"""Where each member's bytes lie inside a WebDataset tar, read from the tar headers only.

Takes a shard tar; produces ``{member name: (offset, size)}`` so a clip can be served straight
from the tar by offset (:func:`read_range`), never extracted to disk. Reading the index walks
the headers once (:mod:`tarfile` seeks past each member's data) and is cached per tar, keyed
by size and mtime, for the most recent :data:`CACHE_SHARDS` tars.
"""

from __future__ import annotations

import os
import tarfile
import threading
from collections import OrderedDict
from pathlib import Path

#: Member suffixes that are not the sample's media (WebDataset side files, pre-extracted frames).
SIDE_SUFFIXES = frozenset({"txt", "json", "cls", "npy", "pyd"})
CACHE_SHARDS = 256

_cache: OrderedDict[tuple[str, int, int], dict[str, tuple[int, int]]] = OrderedDict()
_lock = threading.Lock()


def member_offsets(tar: Path) -> dict[str, tuple[int, int]]:
    """``{name: (data offset, size)}`` of every regular member of ``tar`` (cached)."""
    st = tar.stat()
    key = (str(tar), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    index: dict[str, tuple[int, int]] = {}
    with tarfile.open(tar, "r:") as tf:
        for info in tf:
            if info.isreg():
                index[info.name] = (info.offset_data, info.size)
    with _lock:
        _cache[key] = index
        while len(_cache) > CACHE_SHARDS:
            _cache.popitem(last=False)
    return index


def media_member(index: dict[str, tuple[int, int]], key: str) -> tuple[str, int, int] | None:
    """The media member of sample ``key``: ``KEY.<ext>`` with a one-part extension that is not
    a side file (``KEY.frame00.jpg`` frames and ``KEY.txt``/``KEY.json`` are skipped)."""
    prefix = key + "."
    for name, (offset, size) in index.items():
        if name.startswith(prefix):
            ext = name[len(prefix) :]
            if ext and "." not in ext and "/" not in ext and ext.lower() not in SIDE_SUFFIXES:
                return ext.lower(), offset, size
    return None


def read_range(path: Path, offset: int, size: int) -> bytes:
    """``size`` bytes of ``path`` from ``offset`` (one ``pread``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)
