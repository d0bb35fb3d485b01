"""How well can any view of the demo model's clips find the planted re-renders? (issue #18)

Takes the output folder of ``webvid demo --loop`` (its ``noise-truth.json``, its train shards
and each seed's baseline checkpoint) and measures, per seed and per *representation* of a
clip, how well semantic dedup (:func:`webvid.curate.semdedup.semantic_dedup`, the code
``webvid score`` runs, keep one per group) recovers the planted re-render families, at every
threshold of a sweep. Representations, from the most semantic to the least:

* ``joint``    — the clip embedding ``webvid score`` uses (video tower → projection);
* ``cls``      — the video tower's CLS feature before the projection;
* ``tokens-2`` / ``tokens-4`` — the tower's final patch tokens pooled to a 2×2 / 4×4 grid
  per frame (where things are, as the model sees them);
* ``pixels``   — the normalised input frames themselves (no model at all);
* ``oracle``   — what a perfect caption-trained model could know: a one-hot of the clip's true
  look and direction from the site's catalogue (the bound set by the site itself).

Per representation it reports the re-render's rank among its original's nearest clips, and the
threshold with the best F1 of "clips dropped that are a family's extra member" (precision:
right / dropped, recall: right / planted extras), with how many families end up in a group of
their own. Printed as a Markdown table; ``--json`` writes every number.

    python benchmarks/dedup_ceiling.py demo-loop [--seeds 0 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from webvid.clips.sample import ClipOptions
from webvid.clips.stream import EvalStream
from webvid.curate.semdedup import DedupParams, find_roots, semantic_dedup, union
from webvid.demo.siteconfig import SiteConfig, site_catalog
from webvid.model.build import data_stats, load_for_inference
from webvid.synth.noise import NoiseConfig

REPRESENTATIONS = ("joint", "cls", "tokens-2", "tokens-4", "pixels", "oracle")
THRESHOLDS = (0.8, 0.85, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995, 0.999)
MARGINS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def _grid(tokens: torch.Tensor, frames: int, cells: int) -> torch.Tensor:
    """``(B, F·P, d)`` patch tokens → ``(B, F·cells²·d)`` average-pooled per frame."""
    b, fp, d = tokens.shape
    side = int(round((fp // frames) ** 0.5))
    grid = tokens.reshape(b * frames, side, side, d).permute(0, 3, 1, 2)
    return torch.nn.functional.adaptive_avg_pool2d(grid, cells).reshape(b, -1)


@torch.no_grad()
def representations(ckpt: Path, tars: list[str], frames: int = 4) -> tuple[list[str], dict]:
    """Sample keys and ``{name: (N, d) unit rows}`` of every clip in ``tars``."""
    model = load_for_inference(ckpt, None, None).eval()
    stats = data_stats(ckpt)
    clip = ClipOptions(size=model.config.img_size, train=False, short_side=stats["short_side"])
    mean = torch.tensor(stats["mean"]).view(1, 1, 3, 1, 1) * 255
    std = torch.tensor(stats["std"]).view(1, 1, 3, 1, 1) * 255
    keys: list[str] = []
    rows: dict[str, list[torch.Tensor]] = {r: [] for r in REPRESENTATIONS if r != "oracle"}
    for item in EvalStream(tars, "video", frames, clip):
        if "broken" in item:
            continue
        x = (item["clips"].float() - mean) / std  # (windows, F, 3, H, W)
        tokens = model.video_model.forward_tokens(x)
        cls, patches = tokens[:, 0], tokens[:, 1:]
        views = {
            "joint": model.vid_proj(cls),
            "cls": cls,
            "tokens-2": _grid(patches, x.shape[1], 2),
            "tokens-4": _grid(patches, x.shape[1], 4),
            "pixels": x.flatten(1),
        }
        keys.append(item["key"])
        for name, v in views.items():  # windows averaged, as webvid score does
            rows[name].append(v.mean(0))
    unit = {
        n: torch.nn.functional.normalize(torch.stack(v), dim=1).numpy() for n, v in rows.items()
    }
    return keys, unit


def judge(
    group: np.ndarray, families: list[list[int]], content: list[tuple], setting: float
) -> dict[str, Any]:
    """Score one grouping (``group[i]``: the row each row's group keeps, the group's smallest
    index) against the families; also count the drops whose kept clip shows the same
    ``content`` (look and direction)."""
    dropped = group != np.arange(len(group))
    size = np.bincount(group, minlength=len(group))
    same = sum(1 for i in np.flatnonzero(dropped) if content[i] == content[group[i]])
    right = sum(min(len(f) - 1, int(dropped[f].sum())) for f in families)
    extras = sum(len(f) - 1 for f in families)
    alone = sum(
        1 for f in families if len(set(group[f].tolist())) == 1 and size[group[f[0]]] == len(f)
    )
    n_drop = int(dropped.sum())
    p = right / n_drop if n_drop else float("nan")
    r = right / extras if extras else float("nan")
    f1 = 2 * p * r / (p + r) if n_drop and right else 0.0
    return {
        "setting": setting,
        "dropped": n_drop,
        "right": right,
        "precision": p,
        "recall": r,
        "f1": f1,
        "families_alone": alone,
        "same_content": same,
    }


def threshold_groups(emb: np.ndarray, threshold: float) -> np.ndarray:
    """``webvid score``'s grouping: cosine ≥ ``threshold``, chained; the first row kept."""
    res = semantic_dedup(emb, np.arange(len(emb)), DedupParams(threshold=threshold))
    return res.group


def relative_groups(emb: np.ndarray, margin: float, k: int = 3) -> np.ndarray:
    """A relative rule: ``i`` and ``j`` are near-duplicates when their cosine beats both rows'
    ``k``-th nearest other clip by ``margin`` (a duplicate stands out from its neighbourhood,
    however dense); chained; the smallest index kept."""
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    kth = -np.sort(-sims, axis=1)[:, min(k, len(emb) - 1) - 1]
    pairs = np.argwhere(
        np.triu((sims >= kth[:, None] + margin) & (sims >= kth[None, :] + margin), 1)
    )
    parent = np.arange(len(emb))
    union(parent, pairs[:, 0], pairs[:, 1])  # the smaller root index becomes the root
    return find_roots(parent, np.arange(len(emb)))


def loop_catalog(loop: Path) -> Any:
    """The catalogue (with its planted noise) of the site a loop folder was crawled from."""
    cfg = json.loads((loop / "loop.json").read_text())["config"]
    return site_catalog(
        SiteConfig(
            seed=cfg["site_seed"],
            n_clips=cfg["clips"],
            n_images=cfg["clips"],
            faults=True,
            appearances=cfg["appearances"],
            noise=NoiseConfig(**cfg["noise"]),
        )
    )


def _content(item: Any) -> tuple:
    """What a caption can say of a clip: its look and direction."""
    return item.colour, item.shape, item.background, item.direction


def original_rank(emb: np.ndarray, families: list[list[int]]) -> list[int]:
    """For each family's re-render(s), the rank of its original among its nearest clips."""
    sims = emb @ emb.T
    np.fill_diagonal(sims, -2.0)
    return [int((sims[r] > sims[r, f[0]]).sum()) + 1 for f in families for r in f[1:]]


def run_seed(loop: Path, seed: str, thresholds: tuple[float, ...]) -> dict[str, Any]:
    train = loop / "shards" / "videos" / "train"
    tars = sorted(str(p) for p in train.glob("*.tar"))
    ids: dict[str, str] = {}
    for part in sorted(train.glob("*.parquet")):
        for row in pq.read_table(part, columns=["key", "clip_id"]).to_pylist():
            ids[row["key"]] = row["clip_id"]
    truth = json.loads((loop / "noise-truth.json").read_text())["rerenders"]
    items = {c.clip_id: c for c in loop_catalog(loop).clips}
    keys, reps = representations(loop / "seeds" / seed / "baseline" / "latest.pt", tars)
    index = {ids[k]: i for i, k in enumerate(keys)}
    by_original: dict[str, list[int]] = {}
    for rerender, original in sorted(truth.items()):
        if rerender in index and original in index:
            by_original.setdefault(original, [index[original]]).append(index[rerender])
    families = list(by_original.values())
    content = [_content(items[ids[k]]) for k in keys]
    classes = {c: i for i, c in enumerate(sorted(set(content), key=str))}
    reps["oracle"] = np.eye(len(classes), dtype=np.float32)[[classes[c] for c in content]]
    extras = sum(len(f) - 1 for f in families)
    out: dict[str, Any] = {
        "clips": len(keys),
        "families": len(families),
        "chance_precision": extras / len(keys) if keys else float("nan"),
    }
    for name, emb in reps.items():
        sweep = [judge(threshold_groups(emb, t), families, content, t) for t in thresholds]
        rel = [judge(relative_groups(emb, m), families, content, m) for m in MARGINS]
        out[name] = {
            "dim": int(emb.shape[1]),
            "original_rank": original_rank(emb, families),
            "sweep": sweep,
            "best": max(sweep, key=lambda s: (s["f1"], s["setting"])),
            "relative_sweep": rel,
            "relative_best": max(rel, key=lambda s: (s["f1"], s["setting"])),
        }
    return out


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if x == x]
    return statistics.fmean(xs) if xs else float("nan")


def table(results: dict[str, dict[str, Any]]) -> str:
    seeds = list(results)
    lines = [
        "| representation | dim | original's rank (median) | best threshold per seed "
        "| precision | recall | dropped | of them same look and direction | families alone "
        "| relative rule: best margin, precision / recall |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name in REPRESENTATIONS:
        best = [results[s][name]["best"] for s in seeds]
        ranks = [r for s in seeds for r in results[s][name]["original_rank"]]
        fam = sum(results[s]["families"] for s in seeds)
        thresholds = ", ".join(f"{b['setting']:g}" for b in best)
        rel = [results[s][name]["relative_best"] for s in seeds]
        margins = ", ".join(f"{b['setting']:g}" for b in rel)
        lines.append(
            f"| {name} | {results[seeds[0]][name]['dim']} | {statistics.median(ranks):g} "
            f"| {thresholds} "
            f"| {_mean([b['precision'] for b in best]):.2f} "
            f"| {_mean([b['recall'] for b in best]):.2f} "
            f"| {', '.join(str(b['dropped']) for b in best)} "
            f"| {', '.join(str(b['same_content']) for b in best)} "
            f"| {sum(b['families_alone'] for b in best)}/{fam} "
            f"| {margins}: {_mean([b['precision'] for b in rel]):.2f} / "
            f"{_mean([b['recall'] for b in rel]):.2f} |"
        )
    chance = _mean([results[s]["chance_precision"] for s in seeds])
    clips = ", ".join(str(results[s]["clips"]) for s in seeds)
    lines.append(f"\nTrain clips per seed: {clips}; chance precision (random drops): {chance:.2f}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("loop", type=Path, help="a `webvid demo --loop` output folder")
    ap.add_argument("--seeds", nargs="*", help="seed folders (default: all under seeds/)")
    ap.add_argument("--thresholds", nargs="*", type=float, default=list(THRESHOLDS))
    ap.add_argument("--json", type=Path, help="write every number here")
    a = ap.parse_args(argv)
    missing = [n for n in ("noise-truth.json", "loop.json") if not (a.loop / n).is_file()]
    if missing:
        print(
            f"{a.loop}: not a finished `webvid demo --loop` folder (no {missing[0]})",
            file=sys.stderr,
        )
        return 2
    seeds = a.seeds or sorted(p.name for p in (a.loop / "seeds").iterdir() if p.is_dir())
    torch.manual_seed(0)
    results = {s: run_seed(a.loop, s, tuple(a.thresholds)) for s in seeds}
    print(table(results))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
