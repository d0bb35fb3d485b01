"""Curation with the model in the loop: score a shard set with a checkpoint, find semantic
near-duplicates, and apply score filters to a finished shard set.

* :mod:`webvid.curate.parts` — shards embedded one at a time into committed part files;
* :mod:`webvid.curate.semdedup` — k-means buckets, near-duplicate groups, nearest neighbours;
* :mod:`webvid.curate.score` — ``webvid score``: the scores table;
* :mod:`webvid.curate.refilter` — ``webvid refilter``: a shard set re-curated with the scores,
  only the shards that lose samples rewritten.

A layer above retrieval (it embeds with :func:`webvid.retrieval.evaluate.embed`) and beside
the stages: it may import ``model``, ``clips``, ``retrieval`` and ``shards``.
"""
