"""Status, reason and opt-out counts of a crawl, as the demo's summary.json and report show them.

Takes a crawl :class:`~webvid.crawl.run.Summary` (or the totals of a multi-process crawl);
produces ``{"by_status": {...}, "by_reason": {...}, "by_optout": {...}}``: ``by_optout`` counts
the records whose opt-out signals decided, as ``"<optout_source>:kept"`` or ``":skipped"``
(``robots-ai`` for a robots.txt group of an AI-training crawler), read from the crawl dir's
records. Shared by the pipeline (summary.json), the report and the ``demo`` command's table,
none of which need to import each other for it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

_COLUMNS = ["status", "optout_source", "optout_value"]


def optout_label(status: str, source: str | None, value: str | None) -> str | None:
    """``"content-usage:skipped"``, ``"tdmrep-file:kept"``, ... (None: no signal decided)."""
    if not source:
        return None
    if source == "robots" and not (value or "").startswith("robots.txt "):
        source = "robots-ai"  # a group naming an AI-training crawler, not our own Disallow
    return f"{source}:{'kept' if status == 'success' else 'skipped'}"


def optout_counts(crawl_dir: str | Path) -> dict[str, int]:
    """Records per opt-out label over the crawl dir's committed records parts."""
    counts: Counter[str] = Counter()
    for part in sorted(Path(crawl_dir).glob("records/part-*.parquet")):
        if not set(_COLUMNS) <= set(pq.read_schema(part).names):
            continue  # written before the opt-out columns existed
        t = pq.read_table(part, columns=_COLUMNS)
        for row in zip(*(t.column(c).to_pylist() for c in _COLUMNS), strict=True):
            label = optout_label(*row)
            if label:
                counts[label] += 1
    return dict(sorted(counts.items()))


def crawl_counts(crawl_summary: Any) -> dict[str, Any]:
    totals = getattr(crawl_summary, "totals", {}) or {}
    out = getattr(crawl_summary, "out", None)
    return {
        "by_status": dict(totals.get("by_status", crawl_summary.by_status)),
        "by_reason": dict(totals.get("by_reason", crawl_summary.by_reason)),
        "by_optout": optout_counts(out) if out else {},
    }
