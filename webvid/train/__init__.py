"""Stage 3, train: shards → a Frozen-in-Time dual encoder (space-time ViT + BERT-family text).

Takes WebDataset video and image shards and a training recipe (``train/*.toml``). Produces a
run dir: the resolved ``config.toml``, ``metrics.jsonl``, ``checkpoints/``, ``latest.pt`` and
evaluation results; ``webvid eval``, ``webvid embed`` and ``webvid search`` use its checkpoints.
"""
