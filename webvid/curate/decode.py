"""The shards of a scoring run decoded for the embedder, in DataLoader worker processes or not.

Takes the shards still to embed (their index in the run and their tar), the frame count and
the clip options; :class:`ShardItems` is an iterable dataset that yields, per shard, every
sample decoded as the evaluation stream decodes it (uniform frames, central crop), then one
end marker. Each shard is decoded whole by one worker (worker ``w`` of ``n`` takes the
shards ``w, w + n, …`` of the list), so a shard's items come in the order of its tar, and
each tar is read once. Items carry their shard index, so the consumer can take them apart
again when a DataLoader interleaves the workers; a broken sample is an item too, so its
reason travels with it from the worker::

    (index, tar)   one shard of this worker
    tar reader     {"__key__", "__url__", "mp4"|"frame00.jpg"…, "txt", "json"}
    decode         {"shard": index, "key", "captions", "clips": uint8 (1, F, 3, S, S)}
                   or {"shard": index, "key", "broken": reason}
    end of shard   {"shard": index, "end": samples read from the tar}
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset

from webvid.clips.frames import BrokenSample
from webvid.clips.sample import ClipOptions, captions_of, decode_clip
from webvid.clips.stream import TarErrors, worker_identity


def decode_sample(sample: Mapping[str, Any], frames: int, clip: ClipOptions) -> dict[str, Any]:
    """One raw tar sample → its key and captions and clips, or its key and why it is broken."""
    key = str(sample.get("__key__"))
    try:
        captions = captions_of(sample, clip.caption_max_chars)
        # uniform frames draw nothing; a fresh generator per sample all the same, so a clip
        # cannot depend on which worker decoded it or what it decoded before
        x = decode_clip(sample, "video", frames, "uniform", clip, random.Random(0))
    except BrokenSample as exc:
        return {"key": key, "broken": exc.reason}
    clips = torch.from_numpy(np.stack([x])).permute(0, 1, 4, 2, 3).contiguous()
    return {"key": key, "captions": captions, "clips": clips}


class ShardItems(IterableDataset):
    """Every sample of ``shards`` (``(index, tar)`` pairs), decoded, then an end marker per
    shard; in a DataLoader's workers each worker takes every n-th shard."""

    def __init__(self, shards: Sequence[tuple[int, str]], frames: int, clip: ClipOptions) -> None:
        super().__init__()
        self.shards, self.frames, self.clip = list(shards), frames, clip

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker, workers = worker_identity()
        for index, tar in self.shards[worker::workers]:
            read = 0
            samples = wds.tariterators.tarfile_samples([{"url": tar}], handler=TarErrors())
            for sample in samples:
                read += 1
                yield {"shard": index, **decode_sample(sample, self.frames, self.clip)}
            yield {"shard": index, "end": read}


def loader(
    shards: Sequence[tuple[int, str]], frames: int, clip: ClipOptions, workers: int
) -> torch.utils.data.DataLoader:
    """The items of :class:`ShardItems` one at a time, decoded by ``workers`` processes (at
    most one a shard; 0: in this process). At most two items a worker are decoded ahead of
    the consumer (the DataLoader's prefetch), so the decoded clips in flight stay bounded."""
    n = max(0, min(workers, len(shards)))
    return torch.utils.data.DataLoader(
        ShardItems(shards, frames, clip),
        batch_size=None,
        num_workers=n,
        prefetch_factor=2 if n else None,
    )
