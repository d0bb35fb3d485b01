"""Shard samples → model inputs, shared by training and retrieval.

:mod:`~webvid.clips.frames` (which frames, decoding video / JPEG frames / images, crops),
:mod:`~webvid.clips.fastframes` (the training fast path for JPEG frames),
:mod:`~webvid.clips.sample` (one raw sample → clip, captions, caption tokens) and
:mod:`~webvid.clips.stream` (shard patterns, tar errors, the one-pass evaluation stream).
Imports only the shared floor and third-party libraries (no model, no trainer):
``webvid.train`` and ``webvid.retrieval`` both import it, never the reverse.
"""
