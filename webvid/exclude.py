"""Exclude lists: the clips a takedown removed, as data every stage checks before it works.

Takes an exclude list — a text or CSV file with one identifier per line, or a
``takedowns.parquet`` log written by ``webvid takedown`` — and produces an :class:`ExcludeSet`
that answers "is this item on the list, and by which identifier?" for a crawl item (clip id,
source id, media URL, page URL, the body's sha256 once fetched), a shard input (the crawl
record's ids, URLs and sha256) or a shard sample (its key too).

Identifiers, one per line (``#`` comments and blank lines are ignored), recognised by shape:

* 64 hex digits: a ``sha256`` (of the crawled file or of the stored media member);
* ``http://`` / ``https://``: a ``url``, compared with both the media URL and the page URL,
  character for character (no normalisation: list the URL as the records hold it);
* anything else that is a clip id (``[A-Za-z0-9_-]``, see :func:`webvid.contract.is_clip_id`):
  a ``clip_id``, compared with the clip id and the source id (a WebVid ``videoid``);
* ``KIND:VALUE`` says the kind outright (``clip_id:``, ``url:``, ``sha256:``, ``key:`` — a
  positional sample key such as ``000120005`` is only taken with ``key:``, since it has the
  shape of a numeric id).

A CSV file with a header row naming one of :data:`CSV_COLUMNS` is read by column instead
(other columns, such as a ``reason``, are ignored). A line that is none of these is an
:class:`~webvid.errors.InputError` naming the file and line: a takedown list is never
guessed at.

:func:`logs_for` finds the ``takedowns.parquet`` logs that apply to a folder (the folder
and every folder above it), so a crawl or shard run into a data root honours the
takedowns done on that root without being told.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from webvid import contract
from webvid.errors import InputError

KINDS = ("clip_id", "url", "sha256", "key")
#: CSV header names → identifier kind.
CSV_COLUMNS = {
    "clip_id": "clip_id",
    "id": "clip_id",
    "videoid": "clip_id",
    "source_id": "clip_id",
    "url": "url",
    "media_url": "url",
    "contenturl": "url",
    "page_url": "url",
    "sha256": "sha256",
    "source_sha256": "sha256",
    "key": "key",
}
#: Columns of a takedown log read as identifiers (besides its ``identifier`` column).
LOG_COLUMNS = {
    "clip_id": "clip_id",
    "source_id": "clip_id",
    "url": "url",
    "page_url": "url",
    "sha256": "sha256",
    "source_sha256": "sha256",
}
#: Columns of a table row (sample, verdict, crawl record) compared by :meth:`ExcludeSet.match_row`.
ROW_COLUMNS = {
    "clip_id": "clip_id",
    "source_id": "clip_id",
    "url": "url",
    "media_url": "url",
    "page_url": "url",
    "sha256": "sha256",
    "source_sha256": "sha256",
    "key": "key",
}
MAX_LIST_BYTES = 256 * 1024**2
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_KEY = re.compile(rf"\d{{{contract.SHARD_DIGITS + contract.SAMPLE_DIGITS}}}")


@dataclass(frozen=True)
class Entry:
    """One identifier of a list: its kind, its value and where it was read (1-based line)."""

    kind: str  # one of KINDS
    value: str
    line: int = 0


def parse_identifier(text: str) -> tuple[str, str] | None:
    """``(kind, value)`` of one identifier, or None when it has none of the known shapes."""
    text = text.strip()
    head, sep, rest = text.partition(":")
    if sep and head.lower() in (*KINDS, "id") and not rest.startswith("//"):
        kind = "clip_id" if head.lower() == "id" else head.lower()
        if kind == "key":
            return ("key", rest.strip()) if _KEY.fullmatch(rest.strip()) else None
        found = parse_identifier(rest)
        return found if found is not None and found[0] == kind else None
    if _SHA256.fullmatch(text):
        return "sha256", text.lower()
    if re.match(r"https?://\S+$", text, re.I):
        return "url", text
    if contract.is_clip_id(text):
        return "clip_id", text
    return None


def _check(kind: str, value: str, path: Path, line: int) -> Entry | None:
    value = value.strip()
    if not value:
        return None
    found = parse_identifier(f"{kind}:{value}")
    if found is None:
        raise InputError(f"{path}:{line}: {value[:200]!r} is not a valid {kind}")
    return Entry(found[0], found[1], line)


def _csv_entries(path: Path, lines: Sequence[tuple[int, str]]) -> list[Entry] | None:
    """The entries of a CSV with a known header, or None when the first line is no header."""
    first = lines[0][1]
    header = [h.strip().lower() for h in next(csv.reader([first]))]
    if len(header) < 2 or not any(h in CSV_COLUMNS for h in header):
        return None
    cols = [(i, CSV_COLUMNS[h]) for i, h in enumerate(header) if h in CSV_COLUMNS]
    out: list[Entry] = []
    for no, line in lines[1:]:
        row = next(csv.reader([line]))
        for i, kind in cols:
            if i < len(row):
                entry = _check(kind, row[i], path, no)
                if entry is not None:
                    out.append(entry)
    return out


def read_list(path: str | os.PathLike[str]) -> list[Entry]:
    """The identifiers of a text or CSV list (see the module doc); InputError on a bad line."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_LIST_BYTES:
            raise InputError(f"{path}: a list over {MAX_LIST_BYTES} bytes is not a takedown list")
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"exclude list not found: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (an exclude list is text or CSV)") from None
    except OSError as exc:
        raise InputError(f"cannot read the exclude list {path}: {exc.strerror}") from None
    lines = [
        (no, line.strip())
        for no, line in enumerate(io.StringIO(text), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return []
    by_column = _csv_entries(path, lines)
    if by_column is not None:
        return by_column
    out = []
    for no, line in lines:
        found = parse_identifier(line)
        if found is None and "," in line:  # a headerless CSV: the first field
            found = parse_identifier(line.split(",", 1)[0])
        if found is None:
            raise InputError(
                f"{path}:{no}: {line[:200]!r} is not a clip id, an http(s) URL, a sha256 "
                "(64 hex digits) or KIND:VALUE"
            )
        out.append(Entry(found[0], found[1], no))
    return out


def read_log(path: str | os.PathLike[str]) -> list[Entry]:
    """Every identifier a ``takedowns.parquet`` log holds: the ones asked for and those of
    each removed sample (clip id, source id, URLs, both sha256 values)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable takedown log: {exc}") from None
    out: list[Entry] = []
    names = set(table.column_names)
    if {"kind", "identifier"} <= names:
        for kind, value in zip(
            table.column("kind").to_pylist(), table.column("identifier").to_pylist(), strict=True
        ):
            if kind in KINDS and value:
                out.append(Entry(kind, value))
    for col, kind in LOG_COLUMNS.items():
        if col in names:
            out.extend(Entry(kind, v) for v in table.column(col).to_pylist() if v)
    return out


def read_exclude(path: str | os.PathLike[str]) -> list[Entry]:
    """A list file or, for ``*.parquet``, a takedown log."""
    return read_log(path) if str(path).endswith(".parquet") else read_list(path)


def logs_for(folder: str | os.PathLike[str]) -> list[Path]:
    """The takedown logs that apply to ``folder``: ``takedowns.parquet`` in it and in every
    folder above it (a data root's log covers the crawl and shard dirs inside it)."""
    here = Path(os.path.abspath(folder))
    return [
        d / contract.TAKEDOWNS_NAME
        for d in (here, *here.parents)
        if (d / contract.TAKEDOWNS_NAME).is_file()
    ]


@dataclass(frozen=True)
class ExcludeSet:
    """Identifiers to skip, by kind; :meth:`match` says which one an item carries."""

    clip_ids: frozenset[str] = frozenset()
    urls: frozenset[str] = frozenset()
    sha256s: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entries: Iterable[Entry]) -> ExcludeSet:
        by: dict[str, set[str]] = {k: set() for k in KINDS}
        for e in entries:
            by[e.kind].add(e.value.lower() if e.kind == "sha256" else e.value)
        return cls(*(frozenset(by[k]) for k in KINDS))

    @classmethod
    def load(cls, paths: Iterable[str | os.PathLike[str]]) -> ExcludeSet:
        """The union of the lists and logs at ``paths`` (each read once, in order)."""
        entries: list[Entry] = []
        for p in dict.fromkeys(Path(os.path.abspath(p)) for p in paths):
            entries.extend(read_exclude(p))
        return cls.of(entries)

    def __len__(self) -> int:
        return len(self.clip_ids) + len(self.urls) + len(self.sha256s) + len(self.keys)

    def match(
        self,
        *,
        clip_id: str | None = None,
        source_id: str | None = None,
        urls: Iterable[str | None] = (),
        sha256s: Iterable[str | None] = (),
        key: str | None = None,
    ) -> tuple[str, str] | None:
        """``(kind, value)`` of the first identifier of the item on the list, else None."""
        for cid in (clip_id, source_id):
            if cid and cid in self.clip_ids:
                return "clip_id", cid
        for url in urls:
            if url and url in self.urls:
                return "url", url
        for sha in sha256s:
            if sha and sha.lower() in self.sha256s:
                return "sha256", sha.lower()
        if key and key in self.keys:
            return "key", key
        return None

    def match_row(self, row: Mapping[str, object]) -> tuple[str, str] | None:
        """``(column, value)`` of the first column of a table row whose value is on the list
        (columns of :data:`ROW_COLUMNS` the row lacks or holds null are passed over)."""
        for col, kind in ROW_COLUMNS.items():
            value = row.get(col)
            if not isinstance(value, str) or not value:
                continue
            if kind == "sha256":
                value = value.lower()
            if value in self._by_kind(kind):
                return col, value
        return None

    def _by_kind(self, kind: str) -> frozenset[str]:
        return {
            "clip_id": self.clip_ids,
            "url": self.urls,
            "sha256": self.sha256s,
            "key": self.keys,
        }[kind]
