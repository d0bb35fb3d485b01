"""``webvid crawl`` as a library call: ``run(recipe, inputs, out, *, progress, runner)``.

The stage shape shared with :func:`webvid.shards.run.run` and :func:`webvid.train.run.run`.
Takes a :class:`~webvid.crawl.recipe.CrawlRecipe` (politeness, limits...), the source
(``inputs``: a table path or URL, or a site URL; None: the recipe's ``source``), the output
folder (None: the recipe's ``output.dir``), a Progress and, optionally, a
:class:`~webvid.crawl.unit.CrawlRunner` (where the units run; the CLI hands the Ray one down
for ``--engine ray``); returns a :class:`CrawlSummary` (``Summary``: its old name, an alias)
and produces a crawl dir: ``OUT/media/…``,
``OUT/records/part-*.parquet`` and, last, ``OUT/manifest.json`` (the commit marker, with the
counts and a stats summary).

One sequence, whatever the engine::

    resolve the mode (list | discover)  → check everything that can be checked without a
      request (the table's header, the start URLs against the egress policy, the exclude
      lists; nothing is created when one fails)  → drop the old manifest
      → recover OUT/records (fold journals of a killed run, compact superseded rows)
      → runner: units (slices of the input, :mod:`webvid.crawl.unit`) → UnitCounts each
      → recover again (folds what a dead unit left) → fold the counts → manifest.json

Runners: :class:`InProcessRunner` (one unit in this process, the default),
:class:`webvid.crawl.multi.ProcessRunner` (list mode with ``processes > 1``: one event loop
per core) and the Ray one in :mod:`webvid.scale.crawl_engine`.

A start URL given as the source replaces the recipe's ``discover.start_urls`` (the recipe
then lends its patterns and limits to another copy or port of the site). A run that could
attempt nothing — no item found, or every item refused by the crawl's own policy — says why
in :attr:`CrawlSummary.nothing_done` (the CLI exits non-zero on it); it commits its crawl dir,
except a new one without a single record, which is removed again. A run that fails removes
the folders it created, if they are still empty.

Resume: the records already committed say which clips are done (see
:func:`webvid.crawl.unit.is_done`); those are skipped before any request. ``limit`` counts
source items, done or not, so rerunning the same command finishes the same set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webvid import config as wconfig
from webvid import contract, io
from webvid.crawl import diagnose, sources
from webvid.crawl.loop import lean_gc, run_unit
from webvid.crawl.multi import ProcessRunner
from webvid.crawl.recipe import CrawlRecipe
from webvid.crawl.sink import Disk
from webvid.crawl.store import RecordStore, summarise
from webvid.crawl.unit import CrawlPlan, CrawlRunner, UnitCounts
from webvid.errors import InputError
from webvid.exclude import read_exclude
from webvid.log import NullProgress, Progress

log = logging.getLogger(__name__)


@dataclasses.dataclass
class CrawlSummary:
    """What a crawl did: this run's counts, the totals over OUT's records, the manifest."""

    out: Path
    mode: str
    source: str
    dry_run: bool
    attempted: int  # items processed by this run
    skipped_done: int  # items an earlier run had finished
    duplicates: int  # source items sharing a clip id with an earlier one (kept once)
    by_status: dict[str, int]  # this run
    by_reason: dict[str, int]  # this run
    bytes: int  # media bytes stored by this run
    elapsed_s: float
    totals: dict[str, Any]  # over every committed record of OUT
    manifest: dict[str, Any]
    #: why this run attempted nothing (no item found, every item refused by our own policy)
    nothing_done: str | None = None

    @property
    def items_per_s(self) -> float:
        return self.attempted / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0


def resolve_mode(cfg: CrawlRecipe) -> tuple[str, str]:
    """``(mode, source)``: a table is list mode; an http(s) URL or a recipe's start URLs is
    discovery mode. Errors name what was expected."""
    src = cfg.source.strip()
    is_url = src.lower().startswith(("http://", "https://"))
    if is_url and (
        cfg.mode == "list" or (cfg.mode == "auto" and sources.looks_like_table(urlsplit(src).path))
    ):
        return "list", src  # a table on the web: fetched politely into OUT/sources/ first
    if cfg.mode == "list" or (cfg.mode == "auto" and src and not is_url):
        if not src:
            raise InputError("list mode needs a table: webvid crawl TABLE -o OUT")
        sources.table_format(src, cfg.table.format)  # unknown format → one clear line
        if not Path(src).is_file():
            raise InputError(f"table not found: {src}")
        return "list", src
    if src and not src.lower().startswith(("http://", "https://")):
        raise InputError(f"discovery mode needs an http(s) start URL, got {src!r}")
    if not src and not cfg.discover.start_urls:
        raise InputError(
            "nothing to crawl: give a table, a start URL or a recipe with discover.start_urls"
        )
    return "discover", src or cfg.discover.start_urls[0]


def start_urls(cfg: CrawlRecipe, source: str) -> CrawlRecipe:
    """Discovery: ``cfg`` whose start URLs are the source when one was given (it replaces the
    recipe's list), less those the egress policy refuses outright (each logged: the URL, the
    policy and the option that allows it); an InputError when none is left."""
    starts = (source,) if cfg.source.strip() else cfg.discover.start_urls
    refused = diagnose.refused_starts(cfg, starts)
    left = tuple(u for u in starts if u not in refused)
    if not left:
        raise InputError(
            "nothing to crawl: "
            + "; ".join(f"the start URL {url} is refused: {why}" for url, why in refused.items())
        )
    for url, why in refused.items():
        log.warning("start URL %s skipped: %s", url, why)
    return dataclasses.replace(cfg, discover=dataclasses.replace(cfg.discover, start_urls=left))


def check_inputs(cfg: CrawlRecipe, mode: str, source: str, target: Path) -> CrawlRecipe:
    """Everything that can be checked before any folder or request: the output folder, a
    local table's header and first row, a table URL or the start URLs against the egress
    policy, the exclude lists. Returns the recipe to run (discovery: its start URLs)."""
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: the output is a file, not a folder")
    for path in cfg.exclude:
        read_exclude(path)  # a missing or malformed list: an InputError naming its line
    if mode == "discover":
        return start_urls(cfg, source)
    if source.lower().startswith(("http://", "https://")):
        refused = diagnose.refused_starts(cfg, [source])
        if refused:
            raise InputError(f"cannot fetch the table {source}: {refused[source]}")
    else:
        sources.check_table(source, cfg.table)
    return cfg


def with_io(
    recipe: CrawlRecipe, inputs: str | Path | None = None, out: str | Path | None = None
) -> CrawlRecipe:
    """``recipe`` with ``inputs`` as its source and ``out`` as its output folder, where given."""
    if inputs is not None:
        recipe = dataclasses.replace(recipe, source=str(inputs))
    if out is not None:
        recipe = dataclasses.replace(
            recipe, output=dataclasses.replace(recipe.output, dir=str(Path(out)))
        )
    return recipe


def output_dir(cfg: CrawlRecipe, out: str | Path | None = None) -> Path:
    """``out``, else ``cfg.output.dir``; an InputError when neither names a folder."""
    target = Path(out if out is not None else cfg.output.dir)
    if not str(target):
        raise InputError("no output folder: pass -o OUT")
    return target


class InProcessRunner:
    """The whole crawl as one unit in this process (alone in the folder: it compacts)."""

    def run(self, plan: CrawlPlan, progress: Progress) -> list[UnitCounts]:
        with lean_gc():
            return [run_unit(plan.unit(0, 1, compact=True), progress)]


def local_runner(cfg: CrawlRecipe, mode: str, source: str) -> CrawlRunner:
    """Worker processes for a local table with ``processes > 1``, else this process."""
    if (
        cfg.processes > 1
        and mode == "list"
        and not source.lower().startswith(("http://", "https://"))
    ):
        return ProcessRunner(cfg.processes)
    return InProcessRunner()


def run(
    recipe: CrawlRecipe,
    inputs: str | Path | None = None,
    out: str | Path | None = None,
    *,
    progress: Progress | None = None,
    runner: CrawlRunner | None = None,
) -> CrawlSummary:
    """Crawl ``inputs`` (default ``recipe.source``) into ``out`` (default
    ``recipe.output.dir``) with ``runner`` (default: :func:`local_runner`). The manifest
    records the recipe as run: its ``source`` and ``output.dir`` are what was used."""
    cfg = with_io(recipe, inputs, out)
    target = output_dir(cfg)
    mode, source = resolve_mode(cfg)
    cfg = check_inputs(cfg, mode, source, target)
    source = cfg.discover.start_urls[0] if mode == "discover" else source
    progress = progress or NullProgress()
    runner = runner or local_runner(cfg, mode, source)
    t0 = time.monotonic()
    created = _first_missing(target)  # the folder this run creates (target or one above)
    with _cleaned_on_error(created):
        target.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # no longer a committed crawl while we work
            (target / contract.MANIFEST_NAME).unlink()
        store, recovered = _recover(target, cfg)
        plan = CrawlPlan(cfg, target, mode, source, first_part=store.next_part)
        counts = runner.run(plan, progress)
    store, again = _recover(target, cfg)  # folds what a unit that died left; compacts
    recovered = {k: recovered.get(k, 0) + again.get(k, 0) for k in {**recovered, **again}}
    summary = _finish(plan, store, UnitCounts.fold(counts), time.monotonic() - t0, recovered)
    if created and summary.nothing_done and not summary.totals["records"]:
        (target / contract.MANIFEST_NAME).unlink()  # a new crawl dir that found nothing:
        _remove_empty(created)  # nothing is left behind
    return summary


def _first_missing(target: Path) -> Path | None:
    """The topmost folder of ``target``'s path that does not exist yet (None: it exists)."""
    if target.exists():
        return None
    missing = target
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    return missing


@contextlib.contextmanager
def _cleaned_on_error(created: Path | None) -> Iterator[None]:
    """The folders a run created are removed again when it fails before committing anything
    (a table URL that cannot be fetched, a worker error)."""
    try:
        yield
    except BaseException:
        if created is not None:
            _remove_empty(created)
        raise


def _remove_empty(target: Path) -> None:
    """Remove ``target``'s empty folders, then ``target`` if it is empty: records or media a
    failed run did write stay for the rerun."""
    if not target.is_dir():
        return
    for folder in sorted((p for p in target.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        target.rmdir()


def _recover(out: Path, cfg: CrawlRecipe) -> tuple[RecordStore, dict[str, int]]:
    """Make OUT consistent after any interruption: journals folded into parts, superseded
    rows compacted, temps of a killed run removed (``media/.partial`` too, keeping resumable
    bodies). Returns the records folder (closed: read-only now) and what was done."""
    store = RecordStore(
        out, flush_every=cfg.output.flush_every, flush_interval_s=cfg.output.flush_interval_s
    )
    recovered = store.recover()
    store.close(compact=False)  # stops its journal thread (before any fork)
    Disk(out, cfg).close()
    return store, recovered


def _finish(
    plan: CrawlPlan,
    store: RecordStore,
    counts: UnitCounts,
    elapsed: float,
    recovered: dict[str, int],
) -> CrawlSummary:
    """Write the manifest (counts over every committed record, this run's stats)."""
    cfg, out = plan.cfg, plan.out
    totals = summarise(store)
    nothing = counts.nothing_found if counts.attempted == 0 and not counts.skipped_done else None
    if nothing is None and counts.attempted == 0 and not counts.skipped_done and cfg.limit != 0:
        nothing = f"{plan.source} gave no item"
    nothing = nothing or diagnose.all_refused(counts.by_status, counts.by_reason)
    stats = {
        "mode": plan.mode,
        "this_run": {
            "attempted": counts.attempted,
            "skipped_done": counts.skipped_done,
            "duplicates": counts.duplicates,
            "by_status": counts.by_status,
            "by_reason": counts.by_reason,
            "bytes": counts.bytes,
            "elapsed_s": round(elapsed, 3),
            "items_per_s": round(counts.attempted / elapsed, 2) if elapsed else 0.0,
            "invalid_source_rows": counts.invalid_rows,
            "nothing_done": nothing,
            "recovered": recovered,
        },
        "by_reason": totals["by_reason"],
        "bytes": totals["bytes"],
    }
    manifest = io.write_manifest(
        out,
        "crawl",
        config=wconfig.to_dict(cfg),
        counts={"records": totals["records"], **totals["by_status"]},
        source=plan.source,
        stats=stats,
    )
    return CrawlSummary(
        out=out,
        mode=plan.mode,
        source=plan.source,
        dry_run=cfg.dry_run,
        attempted=counts.attempted,
        skipped_done=counts.skipped_done,
        duplicates=counts.duplicates,
        by_status=dict(counts.by_status),
        by_reason=dict(counts.by_reason),
        bytes=counts.bytes,
        elapsed_s=elapsed,
        totals=totals,
        manifest=manifest,
        nothing_done=nothing,
    )


#: The old name of :class:`CrawlSummary` (an alias, for scripts written before the rename).
Summary = CrawlSummary
