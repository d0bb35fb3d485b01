"""Moved to :mod:`webvid.retrieval.metrics`; this alias keeps old imports working."""

from webvid.retrieval.metrics import (
    ranks_to_metrics,
    t2v_metrics,
    t2v_ranks,
    v2t_metrics,
    v2t_ranks,
)

__all__ = [
    "ranks_to_metrics",
    "t2v_metrics",
    "t2v_ranks",
    "v2t_metrics",
    "v2t_ranks",
]
