"""Stage 1, crawl: stock-footage sites or URL tables → a crawl dir.

Takes a site recipe (``crawl/*.toml``), a start URL, or a URL table (WebVid CSV, CC3M TSV,
Parquet, JSONL). Produces ``OUT/media/…`` (clips and images named by their clip id),
``OUT/records/part-*.parquet`` (one row per attempted item, schema
``webvid.contract.CRAWL_RECORD_SCHEMA``) and ``OUT/manifest.json``.
"""
