"""Planted curation noise for the model-in-the-loop demo: swapped captions and re-renders.

Takes a demo :class:`~webvid.synth.catalog.Catalog` and a :class:`NoiseConfig`. Produces a new
catalogue with two kinds of noise that rule-based curation keeps and only a model can find:

* **swapped captions** (fault ``"caption_swap"``): pairs of clips of different appearance
  (colour, shape or background) trade captions — the noise of scraped alt-text. The clip's
  ``caption`` is its partner's; its ``colour``/``shape``/``background``/``direction`` stay
  what the clip shows; ``noise_of`` names the partner;
* **re-renders** (fault ``"rerender"``): extra clips showing the same scene as an original
  (same appearance, direction, background texture) with small changes — a shifted start, a
  slower speed, a slightly different size, a colour jitter, every other one re-encoded
  smaller and worse — captioned anew from the same content. ``noise_of`` names the original.
  They are appended after the catalogue's clips, so the listing pages of the others stay.

Noise goes only to clean clips (no planted fault) that the shard split puts in ``train``
(:func:`webvid.contract.split_of` with ``val_fraction``): the held-out clips stay clean, so
retrieval is measured the same way with and without a filter. Deterministic for the
catalogue's seed; :func:`noise_truth` is the ground truth the demo loop scores a filter on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from webvid import contract
from webvid.synth.catalog import CLIP_TEMPLATES, Catalog, Expected, Item, clip_caption

SWAP = "caption_swap"
RERENDER = "rerender"


@dataclass(frozen=True)
class NoiseConfig:
    """Shares of the eligible (clean, train-split) clips that get each kind of noise."""

    swapped: float = 0.15  # clips whose caption is swapped with another's (rounded to pairs)
    rerendered: float = 0.10  # clips that get one re-render each
    val_fraction: float = 0.25  # the shard recipe's output.val_fraction (noise only in train)

    def __post_init__(self) -> None:
        if not (0 <= self.swapped <= 1 and 0 <= self.rerendered <= 1):
            raise ValueError("noise shares must be in [0, 1]")
        if self.swapped + self.rerendered > 1:
            raise ValueError("swapped + rerendered must not exceed 1")
        if not 0 <= self.val_fraction < 1:
            raise ValueError("val_fraction must be in [0, 1)")


def _appearance(item: Item) -> tuple[str, str, str]:
    return item.colour, item.shape, item.background


def _pairs(pool: list[Item], n_pairs: int) -> list[tuple[Item, Item]]:
    """Up to ``n_pairs`` disjoint pairs of clips that differ in appearance (pool order)."""
    pairs: list[tuple[Item, Item]] = []
    free = list(pool)
    while len(pairs) < n_pairs and free:
        a = free.pop(0)
        partner = next((b for b in free if _appearance(b) != _appearance(a)), None)
        if partner is None:
            break
        free.remove(partner)
        pairs.append((a, partner))
    return pairs


def _fresh_id(rng: random.Random, used: set[str], val_fraction: float) -> str:
    while True:
        cid = str(rng.randrange(1_000_000, 10_000_000))
        if cid not in used and contract.split_of(cid, val_fraction) == "train":
            used.add(cid)
            return cid


def _rerender(original: Item, cid: str, rng: random.Random) -> Item:
    render = replace(
        original.render,
        start=round(rng.uniform(0.08, 0.2), 3),
        speed=round(rng.uniform(0.8, 0.95), 3),
        size_frac=round(original.render.size_frac * rng.uniform(0.9, 1.1), 3),
        tint=(rng.randint(-10, 10), rng.randint(-10, 10), rng.randint(-10, 10)),
        reencode=rng.random() < 0.5,
    )
    assert original.direction is not None
    caption = clip_caption(
        rng.choice(CLIP_TEMPLATES),
        original.colour,
        original.shape,
        original.background,
        original.direction,
    )
    return replace(
        original,
        clip_id=cid,
        caption=caption,
        clean_caption=caption,
        fault=RERENDER,
        expected=Expected(contract.STATUS_SUCCESS),
        render=render,
        markup="full",
        noise_of=original.clip_id,
    )


def plant_noise(catalog: Catalog, cfg: NoiseConfig) -> Catalog:
    """``catalog`` with swapped captions and re-renders planted (see the module doc)."""
    rng = random.Random(f"{catalog.seed}/noise")
    eligible = [
        c
        for c in catalog.clips
        if c.fault is None
        and c.direction is not None
        and contract.split_of(c.clip_id, cfg.val_fraction) == "train"
    ]
    rng.shuffle(eligible)
    n_swap_pairs = round(cfg.swapped * len(eligible)) // 2
    pairs = _pairs(eligible, n_swap_pairs)
    changed: dict[str, Item] = {}
    for a, b in pairs:
        changed[a.clip_id] = replace(
            a, caption=b.caption, clean_caption=b.clean_caption, fault=SWAP, noise_of=b.clip_id
        )
        changed[b.clip_id] = replace(
            b, caption=a.caption, clean_caption=a.clean_caption, fault=SWAP, noise_of=a.clip_id
        )
    rest = [c for c in eligible if c.clip_id not in changed]
    n_rerender = min(len(rest), round(cfg.rerendered * len(eligible)))
    used = {c.clip_id for c in (*catalog.clips, *catalog.probes, *catalog.images)}
    extra = [_rerender(o, _fresh_id(rng, used, cfg.val_fraction), rng) for o in rest[:n_rerender]]
    clips = tuple(changed.get(c.clip_id, c) for c in catalog.clips) + tuple(extra)
    return Catalog(catalog.seed, clips, catalog.images, probes=catalog.probes)


def noise_truth(catalog: Catalog) -> dict[str, Any]:
    """The planted noise of ``catalog``: ``swapped`` (clip id → the clip whose caption it
    carries) and ``rerenders`` (re-render's clip id → original's clip id)."""
    return {
        "swapped": {c.clip_id: c.noise_of for c in catalog.clips if c.fault == SWAP},
        "rerenders": {c.clip_id: c.noise_of for c in catalog.clips if c.fault == RERENDER},
    }
