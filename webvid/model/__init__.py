"""The Frozen-in-Time model library: space-time ViT, text encoder, dual encoder, checkpoints.

:mod:`~webvid.model.model` (``FrozenInTime``, ``ModelConfig``, loss, similarity),
:mod:`~webvid.model.vit` (the video encoder and its SDPA attention), :mod:`~webvid.model.text`
(the BERT-family text side), :mod:`~webvid.model.checkpoint` (our, official and ImageNet ViT
weights; ``inflate_temporal_embed``) over :mod:`~webvid.model.safe_pickle`, and
:mod:`~webvid.model.build` (a model from a recipe's ``[model]`` table, :mod:`~webvid.model.spec`,
or from a checkpoint for inference). Used by training, retrieval and the demo; imports none of
them, only the shared floor (``webvid.errors``, ``webvid.io``) and torch/transformers. This
package file imports nothing, so ``webvid.model.spec`` stays cheap for recipe readers.
"""
