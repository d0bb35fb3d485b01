"""Stage 2, shard: crawl dirs → curated WebDataset shards with Parquet metadata.

Takes one or more crawl dirs (their successful records and media) and a curation recipe
(``shards/*.toml``). Produces ``OUT/00000.tar`` (``KEY.mp4``/``KEY.jpg``, ``KEY.txt``,
``KEY.json``), ``OUT/00000.parquet`` (``SAMPLE_SCHEMA``), ``OUT/00000_stats.json``,
``OUT/index.parquet`` (``SHARD_INDEX_SCHEMA``), ``OUT/verdicts.parquet`` (``VERDICT_SCHEMA``,
every input kept or rejected with its reason and scores) and ``OUT/manifest.json``.
"""
