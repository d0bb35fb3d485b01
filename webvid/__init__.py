"""webvid: build WebVid-scale video-text datasets and train Frozen-in-Time dual encoders.

Three stages joined by files on disk: ``webvid.crawl`` (sites and URL tables → crawl dir),
``webvid.shards`` (crawl dir → curated WebDataset shards + Parquet), ``webvid.train``
(shards → Frozen-in-Time dual encoder). ``webvid.model`` is the model library,
``webvid.clips`` the clip decoding shared by training and ``webvid.retrieval`` (eval, embedding
index, search). ``webvid.query`` runs DuckDB SQL over all metadata.
"""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("webvid")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
