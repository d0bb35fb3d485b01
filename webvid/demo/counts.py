"""Status and reason counts of a crawl summary, as the demo's summary.json and report show them.

Takes a crawl :class:`~webvid.crawl.run.Summary` (or the totals of a multi-process crawl);
produces ``{"by_status": {...}, "by_reason": {...}}``. Shared by the pipeline (summary.json),
the report and the ``demo`` command's table, none of which need to import each other for it.
"""

from __future__ import annotations

from typing import Any


def crawl_counts(crawl_summary: Any) -> dict[str, Any]:
    totals = getattr(crawl_summary, "totals", {}) or {}
    return {
        "by_status": dict(totals.get("by_status", crawl_summary.by_status)),
        "by_reason": dict(totals.get("by_reason", crawl_summary.by_reason)),
    }
