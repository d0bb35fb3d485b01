"""The Overview page's data: the funnel, counts by status and reason, shard sizes, the
reports' plots and the training runs' curves.

Takes a :class:`~webvid.browse.catalog.Root`; produces JSON-ready dicts. The counts are a few
grouped DuckDB queries; the reports' PNG plots are read out of each ``report.html`` (where the
shard stage embeds them) once and kept; a run's ``metrics.jsonl`` is read once per change of
its size or mtime and thinned to at most :data:`MAX_POINTS` points per curve.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from webvid import contract
from webvid.browse.catalog import Root

MAX_POINTS = 600
MAX_METRIC_LINES = 500_000
MAX_SHARDS = 2000
MAX_REPORT_BYTES = 64 << 20
_PLOT = re.compile(rb'<img alt="([^"]{1,80})" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
_EVAL_KEY = re.compile(r"(?:^|/)(t2v|v2t)_(R1|R5|R10)$")
_plots: dict[tuple[str, int, int], list[tuple[str, bytes]]] = {}
_runs: dict[tuple[str, int, int], dict[str, Any]] = {}


def overview(root: Root) -> dict[str, Any]:
    """Funnel, counts, per-shard sizes, reports and runs of the root."""
    con = root.con
    attempted, downloaded = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = ?) FROM crawl_rows",
        [contract.STATUS_SUCCESS],
    ).fetchall()[0]
    curated, kept = con.execute(
        "SELECT count(*) FILTER (WHERE status IN ('kept', 'rejected')),"
        " count(*) FILTER (WHERE status = 'kept') FROM items WHERE src IN (SELECT unnest(?))",
        [[str(d / contract.VERDICTS_NAME) for d in root.shard_sets]],
    ).fetchall()[0]
    samples = root.sample_rows
    funnel = [
        {"stage": "attempted", "count": int(attempted)},
        {"stage": "downloaded", "count": int(downloaded)},
        {"stage": "curated", "count": int(curated)},
        {"stage": "kept", "count": int(kept) if curated else int(samples)},
    ]
    by_status = con.execute(
        "SELECT status, count(*) FROM crawl_rows GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    crawl_reasons = con.execute(
        "SELECT reason, count(*) FROM crawl_rows WHERE reason IS NOT NULL GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    verdict_reasons = con.execute(
        "SELECT reason, count(*) FROM items WHERE status = 'rejected' GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    shards = con.execute(
        "SELECT filename, split, shard, media_kind, count, tar_bytes FROM shards"
        " ORDER BY filename, split, shard LIMIT ?",
        [MAX_SHARDS],
    ).fetchall()
    return {
        "root": str(root.path),
        "funnel": funnel,
        "crawl_status": [{"value": s, "count": int(n)} for s, n in by_status],
        "crawl_reasons": [{"value": s, "count": int(n)} for s, n in crawl_reasons],
        "verdict_reasons": [{"value": s, "count": int(n)} for s, n in verdict_reasons],
        "shards": [
            {
                "set": _rel(root, Path(f).parent),
                "split": sp,
                "shard": sh,
                "media_kind": mk,
                "count": int(c),
                "tar_bytes": int(b),
            }
            for f, sp, sh, mk, c, b in shards
        ],
        "reports": [
            {"n": i, "path": _rel(root, p), "plots": [alt for alt, _ in report_plots(p)]}
            for i, p in enumerate(root.reports)
        ],
        "runs": [{"n": i, "path": _rel(root, p)} for i, p in enumerate(root.runs)],
        "indexes": [_rel(root, p) for p in root.indexes],
    }


def _rel(root: Root, p: Path) -> str:
    try:
        return p.relative_to(root.path).as_posix() or "."
    except ValueError:
        return p.name


def report_plots(path: Path) -> list[tuple[str, bytes]]:
    """The PNG plots embedded in a shard set's ``report.html``: ``[(alt text, png bytes)]``."""
    try:
        st = path.stat()
    except OSError:
        return []
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _plots:
        data = path.read_bytes()[:MAX_REPORT_BYTES] if st.st_size else b""
        _plots[key] = [
            (alt.decode("utf-8", "replace"), base64.b64decode(b64))
            for alt, b64 in _PLOT.findall(data)
        ]
    return _plots[key]


def run_curves(run_dir: Path) -> dict[str, Any]:
    """Loss per source and retrieval recall per eval set from a run's ``metrics.jsonl``."""
    path = run_dir / "metrics.jsonl"
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _runs:
        return _runs[key]
    loss: dict[str, list[tuple[int, float]]] = {}
    recall: dict[str, list[tuple[int, float]]] = {}
    with path.open("rb") as fh:
        for n, line in enumerate(fh):
            if n >= MAX_METRIC_LINES:
                break
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
                continue
            step = rec["step"]
            if "loss" in rec and isinstance(rec["loss"], int | float):
                loss.setdefault(str(rec.get("source", "loss")), []).append(
                    (step, float(rec["loss"]))
                )
            for k, v in rec.items():
                if _EVAL_KEY.search(k) and isinstance(v, int | float):
                    recall.setdefault(k, []).append((step, float(v)))
    out = {
        "path": run_dir.name,
        "loss": {k: _thin(v) for k, v in sorted(loss.items())},
        "recall": {k: _thin(v) for k, v in sorted(recall.items())},
    }
    _runs[key] = out
    return out


def _thin(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]
