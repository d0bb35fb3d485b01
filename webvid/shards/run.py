"""``webvid shard``: crawl dirs → curated shards, every decision recorded.

Takes a :class:`~webvid.shards.recipe.ShardRecipe`, crawl dirs and an output folder; produces
the shard dir described in :mod:`webvid.shards` and returns a :class:`ShardSummary`.

Pipeline (how each item changes shape):

1. ``read_inputs``: successful crawl records → :class:`InputItem` (paths, raw caption, ids);
2. captions (parent, pure): + clean caption, word count, language, templated count, and the
   caption reasons, so clips already rejected by their caption are scored but not transcoded;
3. the pool (:func:`webvid.shards.worker.process`): + probe facts, sha256, frame scores, local
   reasons, the staged output; only paths cross the process boundary;
4. global decisions (parent): duplicates (exact, source id, near) in a stable order → verdicts;
5. kept clips sorted by clip id within each split → shard plans → shards written (in the pool),
   committed shards skipped;
6. ``verdicts.parquet``, ``index.parquet``, ``report.html``, then ``manifest.json`` last.

The pool only computes per-clip results and writes whole shards; every decision that depends
on more than one clip is made in the parent in a fixed order, so the outputs do not depend on
the worker count.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from webvid import contract
from webvid.config import to_dict
from webvid.errors import InputError
from webvid.io import read_json, read_manifest, remove_stale_temps, write_manifest, write_parquet
from webvid.log import NullProgress, Progress
from webvid.shards import captions as cap
from webvid.shards import filters, writer
from webvid.shards.decide import decide, sample_for
from webvid.shards.inputs import InputItem, read_inputs
from webvid.shards.recipe import ShardRecipe
from webvid.shards.worker import ClipTask, init_worker, ping, process

log = logging.getLogger(__name__)
WORK_DIR = ".work"
SPLITS = ("train", "val")
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ShardSummary:
    out: Path
    inputs: int = 0
    kept: int = 0
    skipped_records: int = 0
    funnel: list[tuple[str, int]] = field(default_factory=list)  # (reason, removed) in order
    samples: dict[str, int] = field(default_factory=dict)  # per split
    shards: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    elapsed_s: float = 0.0
    already_done: bool = False
    phase_s: dict[str, float] = field(default_factory=dict)  # wall time per pipeline phase

    @property
    def rejected(self) -> int:
        return self.inputs - self.kept


def _preload_report() -> None:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot
    except Exception:  # the report step says what went wrong, if anything
        pass


class _Clock:
    """Wall time per phase, for the summary, the manifest and the benchmark."""

    def __init__(self, started: float) -> None:
        self.started = self._last = started
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _workers(recipe: ShardRecipe) -> int:
    return recipe.workers if recipe.workers > 0 else max(1, os.cpu_count() or 1)


def _map(
    fn: Callable[[T], R],
    items: Sequence[T],
    pool: ProcessPoolExecutor | None,
    on_done: Callable[[R], None],
    meanwhile: Callable[[], None] = lambda: None,
) -> list[R]:
    """Apply ``fn`` to every item (in the pool when given); results in input order.

    ``meanwhile`` runs in the parent after the work is handed out, while the pool computes.
    """
    if pool is None:
        meanwhile()
        out = []
        for it in items:
            out.append(fn(it))
            on_done(out[-1])
        return out
    futures = {pool.submit(fn, it): i for i, it in enumerate(items)}
    meanwhile()
    results: list[Any] = [None] * len(items)
    for fut in as_completed(futures):
        results[futures[fut]] = fut.result()
        on_done(results[futures[fut]])
    return results


def fingerprint(recipe: ShardRecipe, items: Iterable[InputItem]) -> str:
    """What the output depends on: the recipe and every input (id, bytes hash, caption, path)."""
    h = hashlib.sha256(recipe.fingerprint().encode())
    for it in sorted(items, key=lambda i: i.uid):
        h.update(
            f"{it.uid}\0{it.crawl_sha256}\0{it.caption_raw}\0{it.src}\0{it.source_id}\n".encode()
        )
    return h.hexdigest()[:20]


def _check_out(out: Path, fp: str) -> dict[str, Any] | None:
    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is not None:
        if manifest.get("fingerprint") == fp:
            return manifest
        raise InputError(
            f"{out} already holds shards made from other inputs or another recipe; "
            "choose a new output folder"
        )
    for split in SPLITS:
        for stats in (out / split).glob("*_stats.json"):
            if read_json(stats).get("run_fingerprint") != fp:
                raise InputError(
                    f"{out} holds an unfinished run with other inputs or another "
                    f"recipe ({stats.name}); remove it or choose a new output folder"
                )
    return None


def _caption_facts(items: list[InputItem], recipe: ShardRecipe) -> dict[str, dict[str, Any]]:
    """Clean captions, word counts, templated counts and the reasons they give (no language yet)."""
    cc = recipe.captions
    clean = {
        it.uid: (
            cap.clean_caption(it.caption_raw, cc.drop_phrases, cc.min_keyword_run)
            if cc.clean
            else (it.caption_raw or "").strip()
        )
        for it in items
    }
    counts = cap.caption_counts(clean.values())
    facts: dict[str, dict[str, Any]] = {}
    for it in items:
        text = clean[it.uid]
        facts[it.uid] = {
            "caption": text,
            "caption_words": cap.word_count(text),
            "caption_lang": None,
            "caption_lang_score": None,
            "caption_count": counts.get(cap.template_key(text), 0),
        }
        _caption_reasons(facts[it.uid], recipe)
    return facts


def _caption_reasons(f: dict[str, Any], recipe: ShardRecipe) -> None:
    f["caption_reasons"] = filters.caption_reasons(
        words=f["caption_words"],
        lang=f["caption_lang"],
        lang_score=f["caption_lang_score"],
        repeats=f["caption_count"],
        cfg=recipe.filters,
    )


def _add_languages(facts: dict[str, dict[str, Any]], recipe: ShardRecipe) -> None:
    """Detect each caption's language (runs while the pool works) and update the reasons."""
    if not recipe.filters.languages:
        return
    for f in facts.values():
        f["caption_lang"], f["caption_lang_score"] = cap.detect_language(f["caption"])
        _caption_reasons(f, recipe)


def run(
    config: ShardRecipe,
    crawl_dirs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    progress: Progress | None = None,
    executor: Callable[[ShardRecipe], Executor] | None = None,
) -> ShardSummary:
    """Curate ``crawl_dirs`` into shards under ``out``; resumable, deterministic.

    ``executor(config)``, when given, replaces the local process pool for the per-clip work and
    the shard writing (e.g. :class:`webvid.scale.executor.RayExecutor`); it must run
    ``init_worker(config)`` in its workers. Decisions stay here, so the output is the same."""
    started = time.monotonic()
    progress = progress or NullProgress()
    out = Path(out)
    dirs = [Path(d) for d in crawl_dirs]
    if not dirs:
        raise InputError("no crawl dir given")
    items, skipped = read_inputs(dirs)
    fp = fingerprint(config, items)
    done = _check_out(out, fp)
    if done is not None:
        return _summary_from_manifest(out, done)
    staging = out / WORK_DIR / fp
    staging.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        remove_stale_temps(out / split)
    progress.message(
        f"{len(items)} inputs from {len(dirs)} crawl dir(s); {skipped} unsuccessful records skipped"
    )
    unsafe = sum(1 for it in items if it.reject in ("invalid_clip_id", "unsafe_media_path"))
    if unsafe:
        progress.message(
            f"{unsafe} records with an invalid clip id or an unsafe media path: rejected "
            "unopened (see verdicts.parquet)"
        )

    clock = _Clock(started)
    clock.lap("read")
    workers = min(_workers(config), max(1, sum(1 for it in items if it.src)))
    ctx = multiprocessing.get_context("spawn")
    pool: Any = (
        executor(config)
        if executor is not None
        else ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=init_worker, initargs=(config,)
        )
        if workers > 1
        else None
    )
    if pool is None:
        init_worker(config)
    else:  # start the workers now: they import while the parent cleans the captions
        for _ in range(workers):
            pool.submit(ping)
    try:
        facts = _caption_facts(items, config)
        tasks = [
            ClipTask(it.uid, it.src, not facts[it.uid]["caption_reasons"], str(staging))
            for it in items
            if it.src
        ]
        if config.output.report:  # import matplotlib while the pool works, not after it
            threading.Thread(target=_preload_report, daemon=True).start()
        progress.update("curate", total=len(tasks))
        kept_so_far = Counter[str]()

        def tick(res: dict[str, Any]) -> None:
            kept_so_far["rejected" if res.get("reasons") else "passing"] += 1
            progress.update("curate", advance=1, **kept_so_far)

        # clips rejected by their caption's language are transformed anyway, then dropped: the
        # language model loads and runs while the pool works instead of before it
        results = {
            r["uid"]: r
            for r in _map(
                process, tasks, pool, tick, meanwhile=lambda: _add_languages(facts, config)
            )
        }
        clock.lap("analyse")
        verdicts = decide(items, facts, results, config)
        plans = _plan(items, verdicts, results, config)
        clock.lap("decide")
        summary = _write(out, plans, pool, config, fp, progress)
        clock.lap("write")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    summary.phase_s = clock.laps
    return _finish(out, dirs, items, skipped, verdicts, plans, summary, config, fp, clock, progress)


def _plan(
    items: list[InputItem],
    verdicts: dict[str, dict[str, Any]],
    results: dict[str, dict[str, Any]],
    config: ShardRecipe,
) -> list[writer.ShardPlan]:
    """Kept clips → split by a stable hash of the clip id → sorted by clip id → shard plans.

    One numbering for the whole dir (train first, then val), so keys identify samples alone.
    """
    by_split: dict[str, list[InputItem]] = {s: [] for s in SPLITS}
    for it in items:
        if verdicts[it.uid]["kept"]:
            by_split[contract.split_of(it.clip_id, config.output.val_fraction)].append(it)
    plans: list[writer.ShardPlan] = []
    for split in SPLITS:
        ordered = sorted(by_split[split], key=lambda i: (i.clip_id, i.uid))
        samples = [sample_for(it, verdicts[it.uid], results[it.uid]) for it in ordered]
        split_plans = writer.plan_shards(
            samples,
            split,
            config.media_kind,
            config.output.max_samples,
            config.output.max_bytes,
            start=len(plans),
        )
        uids = iter(ordered)
        for plan in split_plans:
            for i in range(len(plan.samples)):
                verdicts[next(uids).uid].update(key=plan.key(i), shard=plan.name, split=split)
        plans += split_plans
    return plans


def _write_one(args: tuple[Path, writer.ShardPlan, int, str]) -> dict[str, Any]:
    out, plan, mtime, fp = args
    stats = writer.write_shard(out, plan, mtime, extra={"run_fingerprint": fp})
    return stats


def _write(
    out: Path,
    plans: list[writer.ShardPlan],
    pool: ProcessPoolExecutor | None,
    config: ShardRecipe,
    fp: str,
    progress: Progress,
) -> ShardSummary:
    summary = ShardSummary(out=out, shards=len(plans))
    todo = [p for p in plans if not writer.is_committed(out, p)]
    summary.shards_skipped = len(plans) - len(todo)
    summary.shards_written = len(todo)
    if summary.shards_skipped:
        progress.message(f"{summary.shards_skipped} committed shard(s) kept from an earlier run")
    progress.update("write", total=len(todo))
    _map(
        _write_one,
        [(out, p, config.output.mtime, fp) for p in todo],
        pool,
        lambda _stats: progress.update("write", advance=1),
    )
    return summary


def _funnel(verdicts: Iterable[dict[str, Any]]) -> list[tuple[str, int]]:
    first = Counter(v["reason"] for v in verdicts if v["reason"])
    return [(r, first[r]) for r in contract.VERDICT_REASONS if first.get(r)]


def _finish(
    out: Path,
    dirs: list[Path],
    items: list[InputItem],
    skipped: int,
    verdicts: dict[str, dict[str, Any]],
    plans: list[writer.ShardPlan],
    summary: ShardSummary,
    config: ShardRecipe,
    fp: str,
    clock: _Clock,
    progress: Progress,
) -> ShardSummary:
    ordered = [verdicts[it.uid] for it in sorted(items, key=lambda i: (i.clip_id, i.uid))]
    write_parquet(
        out / contract.VERDICTS_NAME, contract.rows_to_table(ordered, contract.VERDICT_SCHEMA)
    )
    index = [writer.index_row(read_json(writer.stats_path(out, p))) for p in plans]
    write_parquet(
        out / contract.SHARD_INDEX_NAME, contract.rows_to_table(index, contract.SHARD_INDEX_SCHEMA)
    )
    summary.inputs = len(items)
    summary.kept = sum(1 for v in ordered if v["kept"])
    summary.skipped_records = skipped
    summary.funnel = _funnel(ordered)
    summary.samples = {s: sum(len(p.samples) for p in plans if p.split == s) for s in SPLITS}
    if config.output.report:
        try:
            from webvid.shards.report import write_report

            write_report(out, ordered, summary)
            clock.lap("report")
        except Exception as exc:  # the report must never lose a finished run
            log.warning("report.html not written: %s", exc)
    counts = {
        "inputs": summary.inputs,
        "kept": summary.kept,
        "rejected": summary.rejected,
        "skipped_records": skipped,
        "shards": len(plans),
        **{f"samples_{s}": n for s, n in summary.samples.items()},
        **{f"rejected_{r}": n for r, n in summary.funnel},
    }
    summary.elapsed_s = round(time.monotonic() - clock.started, 3)
    write_manifest(
        out,
        "shards",
        config=to_dict(config),
        counts=counts,
        fingerprint=fp,
        tools=_tools(),
        inputs=[str(d) for d in dirs],
        funnel=summary.funnel,
        layout={
            "tar": "{split}/{shard}.tar",
            "parquet": "{split}/{shard}.parquet",
            "stats": "{split}/{shard}_stats.json",
        },
        elapsed_s=summary.elapsed_s,
        phase_s=clock.laps,
    )
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    return summary


def _tools() -> dict[str, str]:
    """Versions of the media tools that shaped the bytes (beside the manifest's package versions)."""
    from importlib import metadata

    tools: dict[str, str] = {}
    try:
        first = subprocess.run(
            ["ffmpeg", "-version"], capture_output=True, text=True, timeout=30
        ).stdout
        tools["ffmpeg"] = first.splitlines()[0] if first else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        tools["ffmpeg"] = "unknown"
    for name in ("py3langid", "pillow", "numpy", "ffmpeg-python"):
        try:
            tools[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return tools


def _summary_from_manifest(out: Path, manifest: dict[str, Any]) -> ShardSummary:
    counts = manifest.get("counts", {})
    return ShardSummary(
        out=out,
        inputs=counts.get("inputs", 0),
        kept=counts.get("kept", 0),
        skipped_records=counts.get("skipped_records", 0),
        funnel=[(r, n) for r, n in manifest.get("funnel", [])],
        samples={s: counts.get(f"samples_{s}", 0) for s in SPLITS},
        shards=counts.get("shards", 0),
        shards_skipped=counts.get("shards", 0),
        already_done=True,
    )
