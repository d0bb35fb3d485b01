"""``webvid shard``: crawl dirs → curated shards, every decision recorded.

``run(recipe, inputs, out, *, progress, runner) -> ShardSummary``, the stage shape shared with
:func:`webvid.crawl.run.run` and :func:`webvid.train.run.run`. Takes a
:class:`~webvid.shards.recipe.ShardRecipe`, the crawl dirs (``inputs``), an output folder and,
optionally, a :data:`~webvid.shards.fanout.ShardRunner` (where the per-clip work and the shard
writing run; the CLI hands the Ray one down for ``--engine ray``); produces the shard dir
described in :mod:`webvid.shards` and returns a :class:`ShardSummary`.

Pipeline (how each item changes shape; the records are in :mod:`webvid.shards.records`):

1. ``read_inputs``: successful crawl records → :class:`InputItem` (paths, raw caption, ids);
2. captions (parent, pure, :func:`~webvid.shards.decide.caption_facts`): → ``CaptionFacts``
   (clean caption, word count, language, templated count, caption reasons), so clips already
   rejected by their caption are scored but not transcoded;
3. the pool (:func:`webvid.shards.worker.process`): → ``ClipResult`` (probe facts, sha256,
   frame scores, local reasons, the staged output); only paths cross the process boundary;
4. global decisions (parent, :func:`~webvid.shards.decide.decide`): duplicates (exact, source
   id, near) in a stable order → one ``Verdict`` per input;
5. kept clips sorted by clip id within each split (:func:`~webvid.shards.decide.place`) →
   ``ShardSample`` → shard plans, each verdict given its key; shards written (in the pool),
   committed shards skipped;
6. ``verdicts.parquet``, ``index.parquet``, ``report.html``, then ``manifest.json`` last
   (:func:`_finish`). Records become the contract's rows only in :mod:`webvid.shards.rows`.

The pool only computes per-clip results and writes whole shards; every decision that depends
on more than one clip is made in the parent in a fixed order, so the outputs do not depend on
the worker count.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from webvid import contract
from webvid.config import to_dict
from webvid.errors import InputError
from webvid.io import read_json, read_manifest, remove_stale_temps, write_manifest, write_parquet
from webvid.log import NullProgress, Progress
from webvid.shards import writer
from webvid.shards.decide import SPLITS, add_languages, caption_facts, decide, funnel, place
from webvid.shards.fanout import ShardRunner, map_in_order, start_pool
from webvid.shards.inputs import InputItem, drop_excluded, exclusions, read_inputs
from webvid.shards.modelscores import read_scores, scores_for
from webvid.shards.recipe import ShardRecipe
from webvid.shards.records import ClipResult, Verdict
from webvid.shards.rows import verdict_row
from webvid.shards.worker import ClipTask, process

log = logging.getLogger(__name__)
WORK_DIR = ".work"


@dataclass
class ShardSummary:
    """What a shard run did: inputs, kept, the rejection funnel, samples and shards."""

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


@dataclass(frozen=True)
class ShardJob:
    """One run's fixed inputs: the recipe, what it reads, where it writes, its fingerprint."""

    recipe: ShardRecipe
    out: Path
    crawl_dirs: tuple[Path, ...]
    items: tuple[InputItem, ...]
    skipped: int  # crawl records that were not successes
    fingerprint: str
    taken_down: int = 0  # inputs on an exclude list or a takedown log: never opened

    @property
    def staging(self) -> Path:
        """Per-clip results and staged media until the run commits (``out/.work/<fp>``)."""
        return self.out / WORK_DIR / self.fingerprint


@dataclass(frozen=True)
class Curation:
    """What the pipeline decided and wrote, for :func:`_finish` to record."""

    verdicts: Mapping[str, Verdict]  # uid → verdict, kept clips placed
    plans: list[writer.ShardPlan]
    shards_reused: int  # committed by an earlier run, left as they were


def run(
    recipe: ShardRecipe,
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    runner: ShardRunner | None = None,
) -> ShardSummary:
    """Curate the crawl dirs ``inputs`` into shards under ``out``; resumable, deterministic.

    ``runner(recipe)``, when given, replaces the local process pool for the per-clip work and
    the shard writing (e.g. :class:`webvid.scale.executor.RayExecutor`); it must run
    ``init_worker(recipe)`` in its workers. Decisions stay here, so the output is the same."""
    clock = _Clock(time.monotonic())
    progress = progress or NullProgress()
    dirs = tuple(Path(d) for d in inputs)
    if not dirs:
        raise InputError("no crawl dir given")
    items, skipped = read_inputs(list(dirs))
    fp = fingerprint(recipe, items)  # over every input: a takedown leaves a finished dir done
    items, listed = drop_excluded(items, exclusions(recipe.exclude, Path(out), dirs))
    job = ShardJob(recipe, Path(out), dirs, tuple(items), skipped, fp, len(listed))
    done = _check_out(job.out, fp)
    if done is not None:
        _check_listed(job.out, listed)
        return summary_from_manifest(job.out, done)
    _prepare(job, progress)
    clock.lap("read")
    pool = start_pool(recipe, sum(1 for it in items if it.src), runner)
    try:
        curation = _curate(job, pool, clock, progress)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return _finish(job, curation, clock)


def _check_listed(out: Path, listed: Sequence[InputItem]) -> None:
    """A finished dir that still holds listed clips is not done: they must be taken down."""
    verdicts = out / contract.VERDICTS_NAME
    if not listed or not verdicts.is_file():
        return
    present = set(pq.read_table(verdicts, columns=["clip_id"]).column("clip_id").to_pylist())
    n = sum(1 for it in listed if it.clip_id in present)
    if n:
        raise InputError(
            f"{out} is finished but holds {n} clip(s) on the exclude list: remove them with "
            f"webvid takedown LIST --root {out}"
        )


def _prepare(job: ShardJob, progress: Progress) -> None:
    """Make the staging folder, clear a killed run's temporary files, say what came in."""
    job.staging.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        remove_stale_temps(job.out / split)
    progress.message(
        f"{len(job.items)} inputs from {len(job.crawl_dirs)} crawl dir(s); "
        f"{job.skipped} unsuccessful records skipped"
    )
    if job.taken_down:
        progress.message(
            f"{job.taken_down} inputs on an exclude list or takedown log: skipped unopened"
        )
    unsafe = sum(1 for it in job.items if it.reject in ("invalid_clip_id", "unsafe_media_path"))
    if unsafe:
        progress.message(
            f"{unsafe} records with an invalid clip id or an unsafe media path: rejected "
            "unopened (see verdicts.parquet)"
        )


def _curate(job: ShardJob, pool: Executor | None, clock: _Clock, progress: Progress) -> Curation:
    """Captions, per-clip work in the pool, decisions in the parent, then the shards."""
    config = job.recipe
    captions = caption_facts(job.items, config)
    tasks = [
        ClipTask(it.uid, it.src, not captions[it.uid].reasons, str(job.staging))
        for it in job.items
        if it.src
    ]
    if config.output.report:  # import matplotlib while the pool works, not after it
        threading.Thread(target=_preload_report, daemon=True).start()
    # the bar counts every input; those without media were rejected unopened, and a clip whose
    # caption failed is rejected whatever its media say; after the decisions (duplicates,
    # languages) "passing" is the kept count, so the bar ends on the funnel's figures
    progress.update("curate", total=len(job.items))
    if job.taken_down:  # listed inputs never reach the bar: the funnel's first row
        progress.update("curate", taken_down=job.taken_down)
    tally = {"passing": 0, "rejected": len(job.items) - len(tasks)}
    progress.update("curate", advance=tally["rejected"], **tally)

    def tick(res: ClipResult) -> None:
        tally["rejected" if res.reasons or captions[res.uid].reasons else "passing"] += 1
        progress.update("curate", advance=1, **tally)

    # clips rejected by their caption's language are transformed anyway, then dropped: the
    # language model loads and runs while the pool works instead of before it
    results = {
        r.uid: r
        for r in map_in_order(
            process, tasks, pool, tick, meanwhile=lambda: add_languages(captions, config)
        )
    }
    clock.lap("analyse")
    scores = read_scores(config.scores) if config.scores else None
    verdicts = decide(job.items, captions, results, config, scores)
    verdicts, plans = place(job.items, verdicts, results, config)
    kept = sum(1 for v in verdicts.values() if v.kept)
    progress.update("curate", passing=kept, rejected=len(job.items) - kept)
    clock.lap("decide")
    reused = _write(job, plans, pool, progress)
    clock.lap("write")
    return Curation(verdicts, plans, reused)


def _write_one(args: tuple[Path, writer.ShardPlan, int, str]) -> dict[str, Any]:
    out, plan, mtime, fp = args
    stats = writer.write_shard(out, plan, mtime, extra={"run_fingerprint": fp})
    return stats


def _write(
    job: ShardJob, plans: list[writer.ShardPlan], pool: Executor | None, progress: Progress
) -> int:
    """Write the shards not committed yet (in the pool); the number of committed ones kept."""
    todo = [p for p in plans if not writer.is_committed(job.out, p)]
    reused = len(plans) - len(todo)
    if reused:
        progress.message(f"{reused} committed shard(s) kept from an earlier run")
    progress.update("write", total=len(todo))
    map_in_order(
        _write_one,
        [(job.out, p, job.recipe.output.mtime, job.fingerprint) for p in todo],
        pool,
        lambda _stats: progress.update("write", advance=1),
    )
    return reused


def _finish(job: ShardJob, curation: Curation, clock: _Clock) -> ShardSummary:
    """Verdicts and index, the summary, the report, then the manifest last; staging removed."""
    out, plans = job.out, curation.plans
    ordered = [
        curation.verdicts[it.uid] for it in sorted(job.items, key=lambda i: (i.clip_id, i.uid))
    ]
    scores = read_scores(job.recipe.scores) if job.recipe.scores else None
    verdict_rows = [
        {**verdict_row(v), **scores_for(scores, v.item.clip_id).columns()} for v in ordered
    ]
    write_parquet(
        out / contract.VERDICTS_NAME, contract.rows_to_table(verdict_rows, contract.VERDICT_SCHEMA)
    )
    index = [writer.index_row(read_json(writer.stats_path(out, p))) for p in plans]
    write_parquet(
        out / contract.SHARD_INDEX_NAME, contract.rows_to_table(index, contract.SHARD_INDEX_SCHEMA)
    )
    summary = ShardSummary(
        out=out,
        inputs=len(job.items) + job.taken_down,
        kept=sum(1 for v in ordered if v.kept),
        skipped_records=job.skipped,
        funnel=[("taken_down", job.taken_down)] * bool(job.taken_down) + funnel(ordered),
        samples={s: sum(len(p.samples) for p in plans if p.split == s) for s in SPLITS},
        shards=len(plans),
        shards_written=len(plans) - curation.shards_reused,
        shards_skipped=curation.shards_reused,
        phase_s=clock.laps,
    )
    if job.recipe.output.report:
        try:
            from webvid.shards.report import write_report

            write_report(out, verdict_rows, summary)
            clock.lap("report")
        except Exception as exc:  # the report must never lose a finished run
            log.warning("report.html not written: %s", exc)
    summary.elapsed_s = round(time.monotonic() - clock.started, 3)
    _write_manifest(job, summary, clock)
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    return summary


def _write_manifest(job: ShardJob, summary: ShardSummary, clock: _Clock) -> None:
    counts = {
        "inputs": summary.inputs,
        "kept": summary.kept,
        "rejected": summary.rejected,
        "skipped_records": summary.skipped_records,
        "shards": summary.shards,
        **{f"samples_{s}": n for s, n in summary.samples.items()},
        **{f"rejected_{r}": n for r, n in summary.funnel},
    }
    write_manifest(
        job.out,
        "shards",
        config=to_dict(job.recipe),
        counts=counts,
        fingerprint=job.fingerprint,
        tools=_tools(),
        inputs=[str(d) for d in job.crawl_dirs],
        funnel=summary.funnel,
        layout={
            "tar": "{split}/{shard}.tar",
            "parquet": "{split}/{shard}.parquet",
            "stats": "{split}/{shard}_stats.json",
        },
        elapsed_s=summary.elapsed_s,
        phase_s=clock.laps,
    )


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
    for name in ("py3langid", "pillow", "numpy"):
        try:
            tools[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return tools


def summary_from_manifest(
    out: Path, manifest: dict[str, Any], *, already_done: bool = True
) -> ShardSummary:
    """A finished dir's summary from its manifest (``already_done``: this run wrote nothing)."""
    counts = manifest.get("counts", {})
    return ShardSummary(
        out=out,
        inputs=counts.get("inputs", 0),
        kept=counts.get("kept", 0),
        skipped_records=counts.get("skipped_records", 0),
        funnel=[(r, n) for r, n in manifest.get("funnel", [])],
        samples={s: counts.get(f"samples_{s}", 0) for s in SPLITS},
        shards=counts.get("shards", 0),
        shards_skipped=counts.get("shards", 0) if already_done else 0,
        already_done=already_done,
    )
