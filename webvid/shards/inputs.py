"""Read the successful records of one or more crawl dirs, streamed in batches.

Takes crawl dir paths (each with ``records/part-*.parquet`` in ``contract.CRAWL_RECORD_SCHEMA``);
produces one :class:`InputItem` per successful record, with the media path resolved safely
inside its crawl dir, plus counts of what was skipped (records that were not successes).
Only the columns the shard stage needs are read, batch by batch; when an item has rows in
several parts, the last part's row wins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow.dataset as ds

from webvid import contract
from webvid.errors import InputError, WebvidError
from webvid.io import safe_join

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


@dataclass(frozen=True)
class InputItem:
    uid: str  # "<clip_id>.<crawl dir number>": unique in the run, a safe file name
    clip_id: str
    dir_index: int
    crawl_dir: str
    media_path: str | None  # as recorded, relative to the crawl dir
    src: str | None  # absolute path, None when the record's path is unsafe or missing
    caption_raw: str | None
    source_id: str | None
    url: str | None
    page_url: str | None
    media_kind: str | None
    crawl_sha256: str | None
    source_index: int | None


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
        current: dict[str, dict] = {}
        for f in files:  # sorted: later parts override earlier ones
            dataset = ds.dataset(str(f), format="parquet")
            missing = {"clip_id", "status", "media_path"} - set(dataset.schema.names)
            if missing:
                raise InputError(f"{f}: records lack columns {sorted(missing)}")
            cols = [c for c in COLUMNS if c in dataset.schema.names]
            for batch in dataset.to_batches(columns=cols, batch_size=batch_rows):
                for row in batch.to_pylist():
                    current[str(row["clip_id"])] = row
        for row in current.values():
            if row.get("status") != contract.STATUS_SUCCESS:
                skipped += 1
                continue
            items.append(_item(row, dir_index, crawl_dir))
    return items, skipped


def _item(row: dict, dir_index: int, crawl_dir: Path) -> InputItem:
    cid = str(row["clip_id"])
    rel = row.get("media_path")
    src = None
    if rel:
        try:
            src = str(safe_join(crawl_dir, rel))
        except WebvidError:
            src = None
    return InputItem(
        uid=f"{cid}.{dir_index}",
        clip_id=cid,
        dir_index=dir_index,
        crawl_dir=str(crawl_dir),
        media_path=rel,
        src=src,
        caption_raw=row.get("caption"),
        source_id=row.get("source_id"),
        url=row.get("media_url"),
        page_url=row.get("page_url"),
        media_kind=row.get("media_kind"),
        crawl_sha256=row.get("sha256"),
        source_index=row.get("source_index"),
    )
