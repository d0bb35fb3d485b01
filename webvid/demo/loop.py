"""``webvid demo --loop``: curation with the model in the loop, measured on the demo site.

Takes a :class:`LoopConfig` (output folder, clip count, seeds, steps, the planted noise and
the filter thresholds). Produces, under ``out``:

* ``noise-truth.json`` — the planted noise (:mod:`webvid.synth.noise`): which clips carry a
  swapped caption, which clips re-render which;
* ``crawl/``, ``shards/`` — the demo site (with that noise) crawled and curated once, as
  ``webvid demo`` does (the rule-based filters);
* ``seeds/<seed>/`` per training seed: ``baseline/`` (the demo's training recipe on the
  curated shards), ``scores.parquet`` (``webvid score`` of the train split with that run's
  final checkpoint), ``videos-filtered/`` (the video shards after ``webvid refilter`` with
  ``min_caption_agreement`` and ``max_per_semantic_cluster``) and ``filtered/`` (the same
  recipe, same seed and steps, retrained on the filtered shards);
* ``loop.json`` and ``report.html`` — per seed and over the seeds (mean, min, max, std):
  precision and recall of each filter against the planted truth (:func:`filter_quality`) and
  held-out retrieval (t2v R@1/5/10, direction accuracy: :mod:`webvid.demo.evaluate`) with and
  without the filter.

The held-out clips carry no noise and are not scored, so both arms are measured on the same
clips. CPU cost is bounded by the small defaults (128 clips, 60 + 60 steps, 3 seeds).
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from webvid import contract
from webvid import io as wio
from webvid.demo.pipeline import (
    DemoConfig,
    crawl_stage,
    demo_train_recipe,
    prepare_out,
    recipes_root,
    shard_stage,
)
from webvid.demo.siteconfig import SiteConfig, site_catalog
from webvid.log import NullProgress, Progress
from webvid.synth.noise import NoiseConfig, noise_truth

#: Held-out metrics compared between the arms (keys of direction_and_retrieval's result).
METRICS = ("t2v_R1", "t2v_R5", "t2v_R10", "direction_acc")
ARMS = ("baseline", "filtered")


@dataclass(frozen=True)
class LoopConfig:
    out: Path = Path("demo-loop")
    clips: int = 128
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: tuple[int, int] = (60, 60)  # 1-frame and 4-frame stage
    site_seed: int = 0
    appearances: int = 16  # 8 clips per look (4 directions x 2)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    min_caption_agreement: float = 0.6
    dedup_threshold: float = 0.95  # webvid score --threshold
    max_per_semantic_cluster: int = 1
    #: retrain without the clips semantic dedup drops too (off: its precision and recall are
    #: measured on a dry run, and only the agreement filter is applied — with a model trained
    #: for two CPU minutes the dedup groups every clip with its look-alikes; the ceiling of any
    #: view of these clips: benchmarks/dedup_ceiling.py, docs/benchmarks.md)
    apply_dedup: bool = False
    workers: int = 2
    val_fraction: float = 0.25  # the demo's output.val_fraction

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("the loop needs at least one seed")
        if self.noise.val_fraction != self.val_fraction:
            raise ValueError("noise.val_fraction must be the shards' val_fraction")


def filter_quality(
    before: list[dict[str, Any]], after: list[dict[str, Any]], truth: dict[str, Any]
) -> dict[str, Any]:
    """Precision and recall of the model-score filters against the planted noise.

    ``before``/``after``: the verdict rows of the shard set before and after ``refilter``;
    ``truth``: :func:`webvid.synth.noise.noise_truth`. Only train clips kept before count (the
    filters see nothing else). Agreement filter: flagged = newly rejected ``caption_mismatch``,
    positives = the swapped clips kept before. Semantic dedup: the clips to drop are each
    planted family's (an original and its re-renders) members beyond one; the newly rejected
    ``duplicate_semantic`` clips are right up to that many per family (``named_right``: those
    whose ``duplicate_of`` is of their own family). ``chance_precision``: the positives' share
    of the clips the filter saw.
    """
    kept = {r["clip_id"] for r in before if r["kept"] and r["split"] == "train"}
    new = {r["clip_id"]: r for r in after}
    dropped = {
        cid: new[cid] for cid in kept if cid in new and not new[cid]["kept"]
    }  # newly rejected
    swapped = set(truth["swapped"]) & kept
    flagged = {c for c, r in dropped.items() if r["reason"] == "caption_mismatch"}
    family = {o: o for o in truth["rerenders"].values()}
    family.update(truth["rerenders"])
    members: dict[str, list[str]] = {}
    for cid in kept:
        if cid in family:
            members.setdefault(family[cid], []).append(cid)
    excess = sum(len(m) - 1 for m in members.values())
    sem = {c: r for c, r in dropped.items() if r["reason"] == "duplicate_semantic"}
    # right: a family's dropped members, up to its members beyond one (whatever clip the
    # dedup named as the one kept); named right: the clip named kept is of the same family
    sem_right = sum(min(len(m) - 1, sum(c in sem for c in m)) for m in members.values())
    named_right = sum(
        1 for c, r in sem.items() if c in family and family.get(r["duplicate_of"]) == family[c]
    )
    families = [m for m in members.values() if len(m) > 1]
    one_kept = sum(1 for m in families if sum(new[c]["kept"] for c in m if c in new) == 1)

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    right = len(flagged & swapped)
    return {
        "train_clips": len(kept),
        "caption_mismatch": {
            "planted": len(swapped),
            "flagged": len(flagged),
            "right": right,
            "precision": ratio(right, len(flagged)),
            "recall": ratio(right, len(swapped)),
            "chance_precision": ratio(len(swapped), len(kept)),
        },
        "semantic_duplicates": {
            "families": len(families),
            "to_drop": excess,
            "dropped": len(sem),
            "right": sem_right,
            "precision": ratio(sem_right, len(sem)),
            "recall": ratio(sem_right, excess),
            "named_right": named_right,
            "families_one_kept": one_kept,
            "chance_precision": ratio(excess, len(kept)),
        },
        "removed": len(dropped),
    }


def spread(values: list[float]) -> dict[str, float]:
    """Mean, min, max and (sample) standard deviation of ``values`` (NaNs left out)."""
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return {"mean": float("nan"), "min": float("nan"), "max": float("nan"), "std": 0.0}
    return {
        "mean": statistics.fmean(v),
        "min": min(v),
        "max": max(v),
        "std": statistics.stdev(v) if len(v) > 1 else 0.0,
    }


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the seeds: each arm's held-out metrics and each filter's precision / recall."""
    out: dict[str, Any] = {
        arm: {m: spread([s[arm][m] for s in per_seed]) for m in METRICS} for arm in ARMS
    }
    out["delta"] = {
        m: spread([s["filtered"][m] - s["baseline"][m] for s in per_seed]) for m in METRICS
    }
    for kind in ("caption_mismatch", "semantic_duplicates"):
        out[kind] = {
            k: spread([s["filter"][kind][k] for s in per_seed]) for k in ("precision", "recall")
        }
    return out


def _timed(timings: dict[str, float], name: str, progress: Progress, fn: Any) -> Any:
    progress.message(f"[bold]» {name}[/]")
    t0 = time.monotonic()
    try:
        return fn()
    finally:
        timings[name] = round(timings.get(name, 0.0) + time.monotonic() - t0, 2)


def _score_and_filter(
    root: Path, cfg: LoopConfig, ckpt: Path, videos: Path, sdir: Path, progress: Progress
) -> tuple[Path, list[dict[str, Any]]]:
    """Score the train split with ``ckpt``; a copy of ``videos`` refiltered with the scores
    (the filters ``cfg`` applies), and the verdict rows both filters would give (dry run)."""
    from webvid.curate.parts import EmbedOptions
    from webvid.curate.refilter import decide_rows, refilter
    from webvid.curate.score import ScoreOptions, score
    from webvid.curate.semdedup import DedupParams
    from webvid.shards.recipe import load as load_shard

    scores = sdir / "scores.parquet"
    opts = ScoreOptions(
        embed=EmbedOptions(frames=4, batch_size=16),
        dedup=DedupParams(threshold=cfg.dedup_threshold),
    )
    score(ckpt, videos / "train", scores, opts, progress)
    filtered = sdir / "videos-filtered"
    if filtered.exists():
        shutil.rmtree(filtered)
    shutil.copytree(videos, filtered)
    both = [
        f"filters.min_caption_agreement={cfg.min_caption_agreement}",
        f"filters.max_per_semantic_cluster={cfg.max_per_semantic_cluster}",
        f"scores={json.dumps(str(scores))}",
    ]
    recipe = root / "shards" / "demo.toml"
    both_filters = load_shard(recipe, both).filters
    applied = both_filters if cfg.apply_dedup else load_shard(recipe, [both[0], both[2]]).filters
    refilter(filtered, scores, applied)
    rows = pq.read_table(videos / contract.VERDICTS_NAME).to_pylist()
    return filtered, decide_rows(rows, scores, both_filters)


def _train_eval(
    root: Path, demo: DemoConfig, videos: Path, images: Path, run_dir: Path, val: Path,
    items: dict[str, Any], progress: Progress,
) -> dict[str, float]:  # fmt: skip
    from webvid.demo.evaluate import direction_and_retrieval
    from webvid.train.run import run as train_run

    recipe = demo_train_recipe(root, videos, images, demo)
    # no validation during training: both arms are evaluated once, at the end, below
    recipe = replace(
        recipe, evals=(), train=replace(recipe.train, eval_every_steps=0, select_metric="")
    )
    train_run(recipe, None, run_dir, progress=progress)
    return direction_and_retrieval(run_dir / "latest.pt", val, 4, items, progress)


def run_loop(cfg: LoopConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the whole loop into ``cfg.out`` (see the module doc); returns ``loop.json``'s data."""
    from webvid.demo.report import write_loop_report
    from webvid.demo.site import start_in_thread

    progress = progress or NullProgress()
    root, out = recipes_root(), Path(cfg.out)
    prepare_out(out)
    t_start, timings = time.monotonic(), {}
    site_cfg = SiteConfig(
        seed=cfg.site_seed, n_clips=cfg.clips, n_images=cfg.clips, faults=True,
        appearances=cfg.appearances, noise=cfg.noise,
    )  # fmt: skip
    catalog = site_catalog(site_cfg)
    truth = noise_truth(catalog)
    wio.write_json(out / "noise-truth.json", truth)
    items = {c.clip_id: c for c in catalog.clips}
    site = _timed(timings, "site", progress, lambda: start_in_thread(site_cfg))
    try:
        for kind, src, disc in (("videos", "", True), ("images", "/cc3m.tsv", False)):
            _timed(timings, f"crawl {kind}", progress, lambda s=src, k=kind, d=disc: crawl_stage(
                root, site.url + s, out / "crawl" / k, progress, discover=d))  # fmt: skip
    finally:
        site.stop()
    demo = DemoConfig(out=out, clips=cfg.clips, steps=cfg.steps, workers=cfg.workers)
    for kind, recipe in (("videos", "demo.toml"), ("images", "cc3m.toml")):
        _timed(timings, f"shard {kind}", progress, lambda k=kind, r=recipe: shard_stage(
            root, r, out / "crawl" / k, out / "shards" / k, demo, progress))  # fmt: skip
    videos, images = out / "shards" / "videos", out / "shards" / "images"
    val = videos / "val"
    before = pq.read_table(videos / contract.VERDICTS_NAME).to_pylist()
    per_seed = []
    for seed in cfg.seeds:
        sdir, d = out / "seeds" / str(seed), replace(demo, seed=seed)
        base = _timed(timings, "train + eval", progress, lambda d=d, s=sdir: _train_eval(
            root, d, videos, images, s / "baseline", val, items, progress))  # fmt: skip
        filtered, judged = _timed(timings, "score + refilter", progress, lambda s=sdir: (
            _score_and_filter(root, cfg, s / "baseline" / "latest.pt", videos, s, progress)))  # fmt: skip
        after = pq.read_table(filtered / contract.VERDICTS_NAME).to_pylist()
        if any(r["kept"] and r["split"] == "train" for r in after):
            filt = _timed(timings, "train + eval", progress, lambda d=d, s=sdir, f=filtered: (
                _train_eval(root, d, f, images, s / "filtered", val, items, progress)))  # fmt: skip
        else:  # the filters removed every training clip: nothing to retrain on
            filt = {m: float("nan") for m in METRICS}
        per_seed.append(
            {
                "seed": seed,
                "baseline": {m: base[m] for m in METRICS},
                "filtered": {m: filt[m] for m in METRICS},
                "val_videos": base.get("videos"),
                "train_videos": {
                    "baseline": sum(r["kept"] and r["split"] == "train" for r in before),
                    "filtered": sum(r["kept"] and r["split"] == "train" for r in after),
                },
                "filter": filter_quality(before, judged, truth),
            }
        )
    timings["total"] = round(time.monotonic() - t_start, 2)
    result = {
        "config": json.loads(json.dumps(cfg, default=_plain)),
        "noise": {"swapped": len(truth["swapped"]), "rerenders": len(truth["rerenders"])},
        "rule_based": _rule_based(before, truth),
        "seeds": per_seed,
        "summary": summarize(per_seed),
        "chance": _chance(per_seed),
        "timings_s": timings,
    }
    result = finite(result)
    wio.write_json(out / "loop.json", result)
    result["report"] = str(write_loop_report(out, result))
    return result


def finite(obj: Any) -> Any:
    """``obj`` with every NaN float as None (JSON has no NaN)."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def _plain(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    raise TypeError(f"not JSON: {type(obj).__name__}")


def _rule_based(before: list[dict[str, Any]], truth: dict[str, Any]) -> dict[str, Any]:
    """What the rule-based curation already did with the planted noise (by reason)."""
    rows = {r["clip_id"]: r for r in before}
    out: dict[str, dict[str, int]] = {}
    for kind in ("swapped", "rerenders"):
        counts: dict[str, int] = {}
        for cid in truth[kind]:
            r = rows.get(cid)
            label = "not crawled" if r is None else ("kept" if r["kept"] else r["reason"])
            counts[label] = counts.get(label, 0) + 1
        out[kind] = dict(sorted(counts.items()))
    return out


def _chance(per_seed: list[dict[str, Any]]) -> dict[str, float]:
    n = per_seed[0].get("val_videos") or 0
    return {
        "t2v_R1": 100.0 / n if n else float("nan"),
        "t2v_R5": min(100.0, 500.0 / n) if n else float("nan"),
        "t2v_R10": min(100.0, 1000.0 / n) if n else float("nan"),
        "direction_acc": 25.0,
    }
