"""Read the successful records of one or more crawl dirs, streamed in batches.

Takes crawl dir paths (each with ``records/part-*.parquet`` in ``contract.CRAWL_RECORD_SCHEMA``);
produces one :class:`InputItem` per successful record, plus the count of records skipped
because they were not successes. Only the columns the shard stage needs are read, batch by
batch; when an item has rows in several parts, the last part's row wins.

A crawl dir is untrusted input (it may have been copied from someone else): every
``clip_id`` must pass :func:`webvid.contract.is_clip_id` before it names any file, and every
``media_path`` must resolve, symlinks followed, to a regular file inside its crawl dir. A
record that fails either check becomes an item with ``reject`` set (``invalid_clip_id``,
``unsafe_media_path``) and no ``src``: it is never opened, and its verdict says why. Strings
that are not valid UTF-8 are read with replacement characters instead of stopping the run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from webvid import contract
from webvid.errors import InputError
from webvid.exclude import ExcludeSet, logs_for

log = logging.getLogger(__name__)

COLUMNS = (
    "clip_id",
    "source_index",
    "source_id",
    "page_url",
    "media_url",
    "caption",
    "media_kind",
    "status",
    "sha256",
    "media_path",
)
#: Longest raw id or path kept in a verdict of a rejected record (the rest is cut).
SHOWN_CHARS = 256


@dataclass(frozen=True)
class InputItem:
    uid: str  # "<clip_id>.<crawl dir number>": unique in the run, a safe file name
    clip_id: str  # the record's id; for an invalid one, an escaped and shortened copy
    dir_index: int
    crawl_dir: str
    media_path: str | None  # as recorded, relative to the crawl dir
    src: str | None  # absolute path inside the crawl dir; None when rejected or missing
    caption_raw: str | None
    source_id: str | None
    url: str | None
    page_url: str | None
    media_kind: str | None
    crawl_sha256: str | None
    source_index: int | None
    reject: str | None = None  # invalid_clip_id / unsafe_media_path: never opened
    reject_detail: str | None = None


def record_files(crawl_dir: Path) -> list[Path]:
    files = sorted(crawl_dir.glob(contract.CRAWL_RECORDS_GLOB))
    if not crawl_dir.is_dir():
        raise InputError(f"crawl dir not found: {crawl_dir}")
    if not files:
        raise InputError(f"{crawl_dir}: no {contract.CRAWL_RECORDS_GLOB} (is this a crawl dir?)")
    return files


def read_inputs(crawl_dirs: list[Path], batch_rows: int = 8192) -> tuple[list[InputItem], int]:
    """Successful records of every crawl dir, and the number of other records skipped.

    An item can appear in several parts of one crawl dir (a retry, a resumed crawl): the row
    in the highest-numbered part is its current state, as the data contract says.
    """
    items: list[InputItem] = []
    skipped = 0
    for dir_index, crawl_dir in enumerate(crawl_dirs):
        crawl_dir = Path(crawl_dir)
        files = record_files(crawl_dir)
        if not (crawl_dir / contract.MANIFEST_NAME).is_file():
            log.warning("%s has no manifest.json: the crawl may be unfinished", crawl_dir)
        root = Path(os.path.realpath(crawl_dir))
        current: dict[object, dict] = {}
        for f in files:  # sorted: later parts override earlier ones
            for row in _rows(f, batch_rows):
                cid = row["clip_id"]
                current[cid if isinstance(cid, str) else (None, len(current))] = row
        for n, row in enumerate(current.values()):
            if row.get("status") != contract.STATUS_SUCCESS:
                skipped += 1
                continue
            items.append(_item(row, dir_index, crawl_dir, root, n))
    return items, skipped


def _rows(path: Path, batch_rows: int) -> Iterator[dict]:
    """The needed columns of one records file, row by row, typed as the contract says."""
    dataset = ds.dataset(str(path), format="parquet")
    missing = {"clip_id", "status", "media_path"} - set(dataset.schema.names)
    if missing:
        raise InputError(f"{path}: records lack columns {sorted(missing)}")
    cols = [c for c in COLUMNS if c in dataset.schema.names]
    for batch in dataset.to_batches(columns=cols, batch_size=batch_rows):
        values = {
            c: _values(batch.column(c), contract.CRAWL_RECORD_SCHEMA.field(c), path) for c in cols
        }
        for i in range(batch.num_rows):
            yield {c: values[c][i] for c in cols}


def _values(column: pa.Array, field: pa.Field, path: Path) -> list:
    """A column as Python values of the contract's type; bad UTF-8 becomes U+FFFD."""
    if column.type != field.type:
        try:
            column = column.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(
                f"{path}: column {field.name} is {column.type}, the contract says {field.type}"
            ) from None
    try:
        return column.to_pylist()
    except UnicodeDecodeError:
        raw = column.cast(pa.binary()).to_pylist()
        return [None if v is None else v.decode("utf-8", "replace") for v in raw]


def _shown(value: object) -> str:
    """A printable, bounded copy of a hostile value for a verdict row."""
    text = "" if value is None else str(value).encode("unicode_escape").decode("ascii")
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def media_source(root: Path, rel: object) -> tuple[str | None, str | None, str | None]:
    """``(absolute path, None, None)`` of a record's media inside ``root`` (a resolved crawl
    dir), or ``(None, reason, detail)``: ``missing_media`` without a path,
    ``unsafe_media_path`` for one that leaves ``root`` (``..``, absolute, a symlink pointing
    out) or names something other than a regular file. A path to nothing yet is returned
    as is: the worker reports it as ``missing_media``."""
    if rel is None or rel == "":
        return None, "missing_media", "the record has no media_path"
    if not isinstance(rel, str) or "\x00" in rel or os.path.isabs(rel):
        return None, "unsafe_media_path", f"not a relative path: {_shown(rel)}"
    try:
        full = Path(os.path.realpath(root / rel))
    except (OSError, ValueError) as exc:
        return None, "unsafe_media_path", f"{_shown(rel)}: {exc}"
    if full == root or not full.is_relative_to(root):
        return None, "unsafe_media_path", f"{_shown(rel)} resolves outside the crawl dir"
    if os.path.lexists(full) and not full.is_file():
        return None, "unsafe_media_path", f"{_shown(rel)} is not a regular file"
    return str(full), None, None


def exclusions(
    lists: Sequence[str | os.PathLike[str]], out: Path, crawl_dirs: Sequence[Path]
) -> ExcludeSet:
    """What a shard run skips: the recipe's exclude lists, and the takedown logs of the
    output folder and of each crawl dir (each folder and every folder above it)."""
    logs = [log for d in (out, *crawl_dirs) for log in logs_for(d)]
    return ExcludeSet.load([*lists, *logs])


def drop_excluded(
    items: Sequence[InputItem], excl: ExcludeSet
) -> tuple[list[InputItem], list[InputItem]]:
    """``(items to curate, items on the list)``: by clip id, source id, media or page URL,
    or the crawled file's sha256. Listed items are never opened and get no verdict row."""
    if not len(excl):
        return list(items), []
    keep: list[InputItem] = []
    listed: list[InputItem] = []
    for it in items:
        hit = excl.match(
            clip_id=it.clip_id,
            source_id=it.source_id,
            urls=(it.url, it.page_url),
            sha256s=(it.crawl_sha256,),
        )
        (keep if hit is None else listed).append(it)
    return keep, listed


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _item(row: dict, dir_index: int, crawl_dir: Path, root: Path, n: int) -> InputItem:
    raw_id = row["clip_id"]
    rel = row.get("media_path")
    if contract.is_clip_id(raw_id):
        cid, uid = str(raw_id), f"{raw_id}.{dir_index}"
        src, reject, detail = media_source(root, rel)
    else:  # "~" is never in a clip id: this uid cannot collide with a valid one
        cid, uid, src = _shown(raw_id), f"invalid~{n}.{dir_index}", None
        reject = "invalid_clip_id"
        detail = (
            f"clip_id {_shown(raw_id)!r} breaks the clip-id rule ([A-Za-z0-9_-], starting "
            f"with a letter or digit, at most {contract.CLIP_ID_MAX_CHARS} characters)"
        )
    return InputItem(
        uid=uid,
        clip_id=cid,
        dir_index=dir_index,
        crawl_dir=str(crawl_dir),
        media_path=None if rel is None else _shown(rel) if reject else str(rel),
        src=src,
        caption_raw=_text(row.get("caption")),
        source_id=_text(row.get("source_id")),
        url=_text(row.get("media_url")),
        page_url=_text(row.get("page_url")),
        media_kind=_text(row.get("media_kind")),
        crawl_sha256=_text(row.get("sha256")),
        source_index=row.get("source_index"),
        reject=reject,
        reject_detail=detail,
    )
