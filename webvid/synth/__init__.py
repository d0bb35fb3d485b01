"""Synthetic media, in one place and one palette: nothing here is downloaded.

* :mod:`~webvid.synth.palette` — the colours, backgrounds, shapes and directions by name;
* :mod:`~webvid.synth.catalog` and :mod:`~webvid.synth.media` — the demo site's catalogue
  (items, captions, planted faults) and its clip/thumbnail/image renderer with its cache;
* :mod:`~webvid.synth.shards` — captioned moving-shape clips written as training shards;
* :mod:`~webvid.synth.crawl_dir` — ffmpeg-made clips and images written as a crawl dir.

Imports only the shared floor (contract, io, log, errors) and third-party libraries. The demo
uses it at run time; tests and benchmarks use it; the stage libraries never import it.
"""
