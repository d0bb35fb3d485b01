"""One clip in full, and what moving a threshold would do.

Takes a :class:`~webvid.browse.catalog.Root`; produces JSON-ready dicts:

* :func:`sample` — the clip's whole verdict row (probe info, every score, verdict, reason),
  its near-duplicate group (the kept twin and every clip pointing at the same twin) and its
  crawl record (page URL, opt-out decision, HTTP status);
* :func:`threshold` — for one curation threshold of a shard set (:data:`THRESHOLDS`), how many
  clips a new value keeps, which kept ones it newly drops (a page of them) and how many
  rejected ones it would let through, with the ``--set`` override for ``webvid shard``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webvid import contract
from webvid.browse import items as it
from webvid.browse.catalog import Root

MAX_GROUP = 12


@dataclass(frozen=True)
class Threshold:
    """A curation threshold: the score it reads, which side rejects, its recipe key, its reason."""

    name: str  # the recipe key under [filters]
    score: str  # the verdict column
    bound: str  # "min": a score below rejects; "max": above rejects
    reason: str


THRESHOLDS = (
    Threshold("min_motion", "motion_score", "min", "still"),
    Threshold("max_black_fraction", "black_fraction", "max", "black"),
    Threshold("min_duration_s", "duration_s", "min", "duration_too_short"),
    Threshold("max_duration_s", "duration_s", "max", "duration_too_long"),
    Threshold("min_short_side", "short_side", "min", "too_small"),
    Threshold("min_aspect_ratio", "aspect_ratio", "min", "aspect_ratio"),
    Threshold("max_aspect_ratio", "aspect_ratio", "max", "aspect_ratio"),
    Threshold("min_fps", "fps", "min", "fps_out_of_range"),
    Threshold("max_fps", "fps", "max", "fps_out_of_range"),
    Threshold("min_caption_words", "caption_words", "min", "caption_too_short"),
    Threshold("max_caption_words", "caption_words", "max", "caption_too_long"),
    Threshold("max_caption_repeats", "caption_count", "max", "caption_templated"),
)
BY_NAME = {t.name: t for t in THRESHOLDS}


def sample(root: Root, src: int, cid: str) -> dict[str, Any] | None:
    """Everything about one clip, or None when ``(src, cid)`` names none."""
    item = it.locate(root, src, cid)
    if item is None:
        return None
    filename = item["src"]
    out: dict[str, Any] = {"src": src, "id": cid, "status": item["status"]}
    if Path(filename).name == contract.VERDICTS_NAME:
        found = it.rows(
            root,
            "SELECT * EXCLUDE (ord, src, id, status, search_text) FROM items WHERE src = ? AND id = ? LIMIT 1",
            [filename, cid],
        )
        out["verdict"] = found[0] if found else None
        out["group"] = _duplicates(
            root, filename, cid, (found[0] if found else {}).get("duplicate_of")
        )
    crawl = it.rows(root, "SELECT * FROM crawl_rows WHERE clip_id = ? LIMIT 1", [cid])
    out["crawl"] = crawl[0] if crawl else None
    if out["crawl"] is not None:
        out["crawl"]["src"] = root.src_id(out["crawl"]["filename"])
    out["has_media"] = it.media_location(root, item) is not None
    return out


def _duplicates(root: Root, filename: str, cid: str, twin: str | None) -> list[dict[str, Any]]:
    """The clip's near/exact-duplicate group: its twin, and every clip naming the same twin."""
    head = twin or cid
    return it.rows(
        root,
        "SELECT src, id, status, reason, media_kind, caption, key FROM items"
        " WHERE src = ? AND (id = ? OR duplicate_of = ?)"
        " ORDER BY status = 'rejected', id LIMIT ?",
        [filename, head, head, MAX_GROUP],
    )


def thresholds(root: Root) -> dict[str, Any]:
    """The thresholds a root's verdicts can be re-judged on, with each shard set's values."""
    sets = [
        {
            "src": root.src_id(str(d / contract.VERDICTS_NAME)),
            "label": d.relative_to(root.path).as_posix() or ".",
            "values": {t.name: root.filters(d).get(t.name) for t in THRESHOLDS},
        }
        for d in root.shard_sets
    ]
    names = [
        {"name": t.name, "score": t.score, "bound": t.bound, "reason": t.reason}
        for t in THRESHOLDS
        if t.score in root.scores
    ]
    return {"sets": sets, "thresholds": names}


def threshold(
    root: Root, src: int, name: str, value: float, *, page: int = 0, size: int = 24
) -> dict[str, Any] | None:
    """What ``filters.<name> = value`` would do to shard set ``src`` (None: unknown set/name)."""
    t = BY_NAME.get(name)
    filename = root.src(src)
    if t is None or t.score not in root.scores or filename is None:
        return None
    if Path(filename).name != contract.VERDICTS_NAME:
        return None
    size = max(1, min(int(size), it.MAX_PAGE))
    fails = f"{t.score} < ?" if t.bound == "min" else f"{t.score} > ?"
    passes = f"{t.score} >= ?" if t.bound == "min" else f"{t.score} <= ?"
    kept, dropped, let_through = root.con.execute(
        "SELECT count(*) FILTER (WHERE kept),"
        f" count(*) FILTER (WHERE kept AND {fails}),"
        f" count(*) FILTER (WHERE NOT kept AND reasons = [?] AND {passes})"
        " FROM items WHERE src = ?",
        [value, t.reason, value, filename],
    ).fetchall()[0]
    cols = ", ".join([*it.GRID_COLUMNS, *root.scores])
    order = "ASC" if t.bound == "min" else "DESC"
    dropped_rows = it.rows(
        root,
        f"SELECT {cols} FROM items WHERE src = ? AND status = 'kept' AND {fails}"
        f" ORDER BY {t.score} {order}, id LIMIT ? OFFSET ?",
        [filename, value, size, max(0, int(page)) * size],
    )
    current = root.filters(Path(filename).parent).get(t.name)
    return {
        "threshold": {"name": t.name, "score": t.score, "bound": t.bound, "reason": t.reason},
        "current": current,
        "value": value,
        "kept_now": int(kept),
        "newly_dropped": int(dropped),
        # rejected for this reason alone and passing the new value: curation would keep them
        # unless a later step (deduplication) rejects them
        "newly_kept": int(let_through),
        "would_keep": int(kept) - int(dropped) + int(let_through),
        "set": f"--set filters.{t.name}={value:g}",
        "page": max(0, int(page)),
        "size": size,
        "items": dropped_rows,
    }
