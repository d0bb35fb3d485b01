"""``webvid browse``: a local, read-only web app over everything under a data root.

Takes a data root (crawl dirs, shard sets, verdicts, training runs, embedding indexes);
produces an aiohttp application (:func:`webvid.browse.server.make_app`) whose pages — Overview,
Samples, Threshold, Sample detail, Search, SQL — are plain HTML/JS/CSS shipped in
``static/`` and whose data come from the same sandboxed DuckDB views as ``webvid query``
(:mod:`webvid.browse.catalog`). Modules: :mod:`catalog` (views, files), :mod:`cache` (the
relations' DuckDB file in the cache folder, outside the root), :mod:`items` (grid,
media location), :mod:`detail` (one clip, thresholds), :mod:`overview` (funnel, plots, runs),
:mod:`textsearch` (embedding search), :mod:`tarindex` (tar member offsets), :mod:`server`.
"""

from __future__ import annotations

from webvid.browse.catalog import Root, open_root
from webvid.browse.server import make_app

__all__ = ["Root", "make_app", "open_root"]
