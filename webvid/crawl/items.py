"""The unit of work of a crawl and the record it ends as.

Takes what a source says about one clip or image (an :class:`Item`: ids, URLs, caption as
found, declared duration/size, the source row's other columns) and what fetching it gave (an
:class:`Outcome`); produces one ``CRAWL_RECORD_SCHEMA`` row dict (:func:`make_record`).

Shape of the dicts as they move: table row / clip page → ``Item`` → fetch → ``Outcome`` →
record dict (journal line, then a row of ``records/part-NNNNN.parquet``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import re
from typing import Any

from webvid.crawl import polite


@dataclasses.dataclass
class Item:
    clip_id: str
    source: str
    source_index: int
    media_url: str | None = None
    page_url: str | None = None
    source_id: str | None = None
    caption: str | None = None
    description: str | None = None
    keywords: list[str] | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    thumbnail_url: str | None = None
    extra: dict[str, Any] | None = None
    #: a failure already known before any media request (clip page 404, robots, no media)
    failed: Outcome | None = None
    #: opt-out signals seen on the clip page (``optout.Signal``; discovery mode)
    signals: list[Any] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Outcome:
    reason: str | None = None  # None = success
    message: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    media_path: str | None = None
    media_kind: str | None = None
    via: str | None = None
    attempts: int = 0
    dry_run: bool = False
    #: opt-out signals seen on the response(s) of this request (``optout.Signal``)
    signals: list[Any] = dataclasses.field(default_factory=list)
    # not recorded: how the fetch loop and the worker act on an outcome
    retry_after_s: float | None = None  # the server's Retry-After, when it sent one
    handoff: bool = False  # a page or manifest where media was expected: try yt-dlp (auto)


_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: Any) -> float | None:
    """ISO-8601 ``PT00H00M17S`` / ``PT4S`` / plain seconds → seconds; anything else → None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().upper()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    m = _DURATION.match(text)
    if not m or text in ("P", "PT"):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def to_int(value: Any) -> int | None:
    try:
        n = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return n if -(2**31) <= n < 2**31 else None


def make_record(
    item: Item, outcome: Outcome, started_at: float, elapsed_s: float
) -> dict[str, Any]:
    """One ``CRAWL_RECORD_SCHEMA`` row (``started_at`` as epoch seconds, JSON-friendly)."""
    from webvid import contract

    if outcome.dry_run:
        status = contract.STATUS_DISCOVERED
    else:
        status = polite.status_of(outcome.reason)
    extra = json.dumps(item.extra, ensure_ascii=False, default=str) if item.extra else None
    return {
        "clip_id": item.clip_id,
        "source": item.source,
        "source_index": item.source_index,
        "source_id": item.source_id,
        "page_url": item.page_url,
        "media_url": item.media_url,
        "caption": item.caption,
        "description": item.description,
        "keywords": item.keywords,
        "duration_s": item.duration_s,
        "width": item.width,
        "height": item.height,
        "thumbnail_url": item.thumbnail_url,
        "media_kind": outcome.media_kind,
        "status": status,
        "reason": outcome.reason,
        "error_message": outcome.message,
        "http_status": outcome.http_status,
        "content_type": outcome.content_type,
        "bytes": outcome.bytes,
        "sha256": outcome.sha256,
        "media_path": outcome.media_path,
        "via": outcome.via,
        "attempts": outcome.attempts,
        "started_at": started_at,
        "elapsed_s": round(elapsed_s, 4),
        "extra_json": extra,
    }


def epoch_to_datetime(value: float | None) -> _dt.datetime | None:
    if value is None:
        return None
    return _dt.datetime.fromtimestamp(value, tz=_dt.timezone.utc)  # noqa: UP017 - py3.10
