"""Moved to :mod:`webvid.retrieval.evaluate`; this alias keeps old imports working."""

from webvid.retrieval.evaluate import (
    VIDEO_SUFFIXES,
    Embeddings,
    chunked_similarity,
    embed,
    evaluate_model,
    folder_items,
    is_folder_dataset,
    make_stream,
    retrieval_metrics,
)
from webvid.train.validate import (
    evaluate_sets,
)

__all__ = [
    "Embeddings",
    "VIDEO_SUFFIXES",
    "chunked_similarity",
    "embed",
    "evaluate_model",
    "evaluate_sets",
    "folder_items",
    "is_folder_dataset",
    "make_stream",
    "retrieval_metrics",
]
