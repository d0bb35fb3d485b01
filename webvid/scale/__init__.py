"""Scale-out on Ray: ``webvid crawl`` and ``webvid shard`` with ``--engine ray``.

Takes the same configs as the local engines plus a Ray address (none: start a local Ray);
produces the same output folders. The unit of work does not change (a slice of the input
table, or the site, for the crawl; a clip and a shard for sharding); only where it runs does.

* :mod:`webvid.scale.cluster` — connect to or start Ray, with quiet, local-only settings;
* :mod:`webvid.scale.executor` — a ``concurrent.futures.Executor`` whose tasks are Ray tasks
  (retried when a worker dies), which the shard stage uses in place of its process pool;
* :mod:`webvid.scale.limiter` — the cluster-wide politeness actor (per-host tokens,
  concurrency, 429 back-off, robots.txt once per host) and the worker-side clients;
* :mod:`webvid.scale.crawl_engine` — the crawl's runner on Ray (its units as Ray tasks), handed
  to the stage's own ``webvid.crawl.run.run``; :mod:`webvid.scale.shard_engine` — the shard
  stage's ``run`` with the Ray executor. The stages' drivers run unchanged on this machine.
"""
