"""Text↔video retrieval with a trained model: evaluation, metrics, an embedding index, search.

:mod:`~webvid.retrieval.evaluate` (embed a shard set or an MSR-VTT-style folder, R@K / MedR),
:mod:`~webvid.retrieval.metrics` (the official metric semantics, pure policy) and
:mod:`~webvid.retrieval.search` (a Parquet index of clip embeddings, top-k text search).
Imports the model library (:mod:`webvid.model`), the clip decoding (:mod:`webvid.clips`) and the
shared floor, never ``webvid.train``; the trainer's periodic evaluation imports this package.
"""
