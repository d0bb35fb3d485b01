"""Text↔video retrieval evaluation of a model on a shard set or an MSR-VTT-style folder.

Takes a model (or a checkpoint path) and evaluation data, produces a dict of metrics:
``t2v_R1/R5/R10/R50/MedR/MeanR`` and ``v2t_*`` with the official semantics
(:mod:`webvid.retrieval.metrics`), plus counts (videos, captions, broken samples).

Data:

* a **shard set** — a folder of ``.tar`` shards, or glob / brace patterns: one caption per clip;
* an **MSR-VTT-style folder** — ``videos/`` (``VIDEO_ID.mp4``, also ``videos/all/``), a captions
  JSON (``{"video7020": ["caption", …]}`` or the official ``MSR_VTT.json`` with
  ``annotations: [{image_id, caption}]``) and a split list (one video id per line): each
  video's first caption, or with ``all_captions`` every caption, video-major. The paper's
  protocols (1k-A's designated captions, MSVD, DiDeMo, LSMDC) are read by
  :mod:`webvid.benchmarks` and passed to :class:`EvalStream` as ``items``.

Frames are taken at segment midpoints with a central crop; ``window_stride > 0`` averages the
embeddings of sliding windows per video (the official ``--sliding_window_stride``). Similarities
are computed in row chunks, so memory for the matmul stays bounded on large sets.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from webvid.clips.sample import ClipOptions, Tokenize
from webvid.clips.stream import EvalStream, expand_shards
from webvid.errors import InputError
from webvid.log import NullProgress, Progress
from webvid.retrieval.metrics import t2v_metrics, v2t_metrics

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v")


@dataclass
class Embeddings:
    keys: list[str]
    urls: list[str]
    captions: list[list[str]]  # per video
    video: torch.Tensor  # (N, D) float32
    text: torch.Tensor  # (N * k, D) video-major, zero rows where a caption is missing
    mask: np.ndarray  # (N, k) bool: caption present
    broken: Counter[str]


def chunked_similarity(text: torch.Tensor, video: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Cosine similarities ``(n_text, n_video)`` computed ``chunk`` rows at a time (fp32, CPU)."""
    t = torch.nn.functional.normalize(text.float(), dim=1, eps=1e-8)
    v = torch.nn.functional.normalize(video.float(), dim=1, eps=1e-8)
    out = torch.empty(t.shape[0], v.shape[0])
    for i in range(0, t.shape[0], chunk):
        out[i : i + chunk] = (t[i : i + chunk] @ v.t()).cpu()
    return out


def retrieval_metrics(emb: Embeddings, chunk: int = 1024) -> dict[str, float]:
    sims = chunked_similarity(emb.text, emb.video, chunk).numpy()
    mask = emb.mask if not emb.mask.all() else None
    out = {f"t2v_{k}": float(v) for k, v in t2v_metrics(sims, query_masks=mask).items()}
    out.update({f"v2t_{k}": float(v) for k, v in v2t_metrics(sims, query_masks=mask).items()})
    return out


@torch.no_grad()
def embed(
    model: Any,
    stream: EvalStream,
    tokenize: Callable[[Sequence[str]], dict[str, torch.Tensor]],
    *,
    device: torch.device,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 16,
    num_workers: int = 0,
    precision: str = "fp32",
    progress: Progress | None = None,
    with_text: bool = True,
) -> Embeddings:
    """Video (window-averaged) and caption embeddings of every sample of ``stream``."""
    progress = progress or NullProgress()
    m = torch.tensor(mean, device=device).view(1, 1, 3, 1, 1) * 255
    s = torch.tensor(std, device=device).view(1, 1, 3, 1, 1) * 255
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=num_workers)
    amp = (
        torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    )
    keys: list[str] = []
    urls: list[str] = []
    caps: list[list[str]] = []
    vids: list[torch.Tensor] = []
    broken: Counter[str] = Counter()
    pending: list[tuple[int, torch.Tensor]] = []  # (video index, clips)

    def flush() -> None:
        if not pending:
            return
        clips = torch.cat([c for _, c in pending])
        owners = torch.tensor([i for i, c in pending for _ in range(c.shape[0])])
        with amp:
            e = model.encode_video((clips.to(device).float() - m) / s).float().cpu()
        n0 = pending[0][0]
        sums = torch.zeros(len(pending), e.shape[1]).index_add_(0, owners - n0, e)
        counts = torch.bincount(owners - n0, minlength=len(pending)).clamp_min(1).unsqueeze(1)
        vids.append(sums / counts)
        pending.clear()

    for item in loader:
        if "broken" in item:
            broken[item["broken"]] += 1
            continue
        keys.append(item["key"])
        urls.append(item.get("url", ""))
        caps.append(list(item["captions"]))
        pending.append((len(keys) - 1, item["clips"]))
        if sum(c.shape[0] for _, c in pending) >= batch_size:
            flush()
        progress.update("embed", advance=1)
    flush()
    if not keys:
        raise InputError(f"no usable samples to evaluate ({dict(broken) or 'the data is empty'})")
    video = torch.cat(vids)
    k = max(len(c) for c in caps)
    mask = np.zeros((len(caps), k), bool)
    flat: list[str] = []
    for i, c in enumerate(caps):
        mask[i, : len(c)] = True
        flat.extend(c + [""] * (k - len(c)))
    text = torch.zeros(len(flat), video.shape[1])
    if with_text:
        real = [i for i, c in enumerate(flat) if c]
        for j in range(0, len(real), max(1, batch_size * 4)):
            idx = real[j : j + batch_size * 4]
            with amp:
                text[idx] = model.encode_text(tokenize([flat[i] for i in idx])).float().cpu()
    return Embeddings(keys, urls, caps, video, text, mask, broken)


# ---- data sources ------------------------------------------------------------------------------


def is_folder_dataset(path: Path) -> bool:
    return path.is_dir() and (path / "videos").is_dir()


def folder_items(
    root: Path,
    split: str | Path | None = None,
    captions: str | Path | None = None,
    all_captions: bool = False,
) -> list[dict[str, Any]]:
    """Raw eval samples of an MSR-VTT-style folder (media read lazily by the stream)."""
    vids_dir = root / "videos" / "all" if (root / "videos" / "all").is_dir() else root / "videos"
    cap_file = (
        Path(captions)
        if captions
        else _first(root, ("captions.json", "annotation/MSR_VTT.json", "MSR_VTT.json"))
    )
    table = _read_captions(cap_file)
    split_file = (
        Path(split)
        if split
        else _first(root, ("test_list.txt", "val_list_jsfusion.txt", "split.txt"), required=False)
    )
    if split_file is not None:
        ids = [ln.strip() for ln in split_file.read_text().splitlines() if ln.strip()]
    else:
        ids = sorted(table)
    files = {p.stem: p for p in vids_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES}
    items = []
    for vid in ids:
        if vid not in table:
            raise InputError(f"{cap_file}: no caption for video {vid!r} of the split list")
        caps = table[vid] if all_captions else table[vid][:1]
        items.append(
            {"__key__": vid, "path": str(files.get(vid, vids_dir / f"{vid}.mp4")), "captions": caps}
        )
    if not items:
        raise InputError(f"{root}: no videos to evaluate")
    return items


def _first(root: Path, names: Sequence[str], required: bool = True) -> Path | None:
    for n in names:
        if (root / n).is_file():
            return root / n
    if required:
        raise InputError(f"{root}: none of {', '.join(names)} found")
    return None


def _read_captions(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable captions JSON: {exc}") from None
    table: dict[str, list[str]] = {}
    if isinstance(data, Mapping) and isinstance(data.get("annotations"), list):
        for a in data["annotations"]:
            table.setdefault(str(a["image_id"]), []).append(str(a["caption"]))
    elif isinstance(data, Mapping):
        for k, v in data.items():
            table[str(k)] = [str(x) for x in (v if isinstance(v, list) else [v])]
    else:
        raise InputError(f"{path}: expected an object of video id → captions")
    return table


def make_stream(
    data: str | Path | Sequence[str],
    kind: str,
    frames: int,
    opts: ClipOptions,
    *,
    split: str | None = None,
    captions: str | None = None,
    all_captions: bool = False,
    window_stride: int = 0,
    max_samples: int = 0,
    base: Path | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> EvalStream:
    """An :class:`EvalStream` over a shard set (patterns or a folder of tars) or an MSR-VTT folder."""
    if isinstance(data, (str, Path)) and is_folder_dataset(Path(data)):
        items = folder_items(Path(data), split, captions, all_captions)
        return EvalStream(
            None,
            "video",
            frames,
            opts,
            items=items,
            window_stride=window_stride,
            max_samples=max_samples,
            rank=rank,
            world_size=world_size,
        )
    patterns: Sequence[str]
    if isinstance(data, (str, Path)):
        p = Path(data)
        patterns = [str(p / "*.tar")] if p.is_dir() else [str(data)]
    else:
        patterns = list(data)
    shards = expand_shards(patterns, base)
    return EvalStream(
        shards,
        kind,
        frames,
        opts,
        window_stride=window_stride,
        max_samples=max_samples,
        rank=rank,
        world_size=world_size,
    )


def evaluate_model(
    model: Any,
    stream: EvalStream,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    max_text_len: int = 64,
    batch_size: int = 16,
    num_workers: int = 0,
    precision: str = "fp32",
    progress: Progress | None = None,
) -> dict[str, Any]:
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        emb = embed(
            model,
            stream,
            Tokenize(model.config.tokenizer_ref, max_text_len),
            device=device,
            mean=mean,
            std=std,
            batch_size=batch_size,
            num_workers=num_workers,
            precision=precision,
            progress=progress,
        )
    finally:
        model.train(was_training)
    out: dict[str, Any] = retrieval_metrics(emb)
    out.update(videos=len(emb.keys), captions=int(emb.mask.sum()), broken=sum(emb.broken.values()))
    return out
