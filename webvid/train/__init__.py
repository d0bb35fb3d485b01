"""Stage 3, train: shards → a Frozen-in-Time dual encoder (space-time ViT + BERT-family text).

Takes WebDataset video and image shards and a training recipe (``train/*.toml``). Produces a
run dir: the resolved ``config.toml``, ``metrics.jsonl``, ``checkpoints/``, ``latest.pt`` and
evaluation results; ``webvid eval``, ``webvid embed`` and ``webvid search`` use its checkpoints.

The model lives in :mod:`webvid.model`, clip decoding in :mod:`webvid.clips`, evaluation and
search in :mod:`webvid.retrieval`; the modules of those names here (``model``, ``vit``, ``text``,
``checkpoint``, ``safe_pickle``, ``build``, ``frames``, ``fastframes``, ``evaluate``,
``metrics``, ``search``) are aliases that keep old imports working.
"""
