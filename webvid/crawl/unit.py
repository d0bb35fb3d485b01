"""The crawl's unit of work: one slice of the input → its counts; and the runner seam.

Takes nothing at import; defines what flows between the crawl's driver and where its work runs:

* :class:`CrawlUnit` — slice ``index`` of ``count`` of one crawl: the config (its share of the
  limits), the crawl dir, the mode and source, and where its record parts start. A unit takes
  the items whose clip id hashes to ``index`` (every item when ``count`` is 1) and numbers its
  parts ``first_part + index + k·count``, so no two units write the same file;
  :func:`webvid.crawl.loop.run_unit` crawls one in an event loop;
* :class:`UnitCounts` — what a unit did, and :meth:`UnitCounts.fold` for a whole run;
* :class:`CrawlPlan` — what the driver (:func:`webvid.crawl.run.run`) hands a runner after
  recovering the crawl dir; it slices itself into units;
* :class:`CrawlRunner` — where the units run: in this process
  (:class:`webvid.crawl.run.InProcessRunner`), in forked processes
  (:class:`webvid.crawl.multi.ProcessRunner`) or as Ray tasks (``webvid.scale.crawl_engine``,
  handed down by the CLI);
* :func:`is_done` — which committed records mean "skip this clip" on a rerun.

Every unit streams the whole source, so ``limit`` (counted in source items, done or not) and
duplicate ids mean the same whatever the number of units.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from webvid import contract
from webvid.crawl.recipe import CrawlRecipe
from webvid.log import Progress


@dataclasses.dataclass(frozen=True)
class UnitCounts:
    """What one unit did (this run only); :meth:`fold` sums the units of a run."""

    by_status: dict[str, int]
    by_reason: dict[str, int]
    bytes: int  # media bytes stored
    attempted: int  # items processed
    skipped_done: int  # items an earlier run had finished
    duplicates: int  # source items sharing a clip id with an earlier one (kept once)
    invalid_rows: int  # source rows that could not be read as items
    #: discovery that yielded no item at all: why (start pages refused or failed, no clip page)
    nothing_found: str | None = None

    @classmethod
    def fold(cls, units: Iterable[UnitCounts]) -> UnitCounts:
        """The run's counts. Every unit streams the whole source, so duplicates and invalid
        rows are the same in each (the largest is taken); everything else is summed."""
        by_status: Counter[str] = Counter()
        by_reason: Counter[str] = Counter()
        total, attempted, skipped, dups, invalid = 0, 0, 0, 0, 0
        why: str | None = None
        for c in units:
            why = why or c.nothing_found
            by_status.update(c.by_status)
            by_reason.update(c.by_reason)
            total += c.bytes
            attempted += c.attempted
            skipped += c.skipped_done
            dups = max(dups, c.duplicates)
            invalid = max(invalid, c.invalid_rows)
        return cls(dict(by_status), dict(by_reason), total, attempted, skipped, dups, invalid, why)


@dataclasses.dataclass(frozen=True)
class CrawlUnit:
    """Slice ``index`` of ``count`` of one crawl (plain data: it crosses process boundaries)."""

    cfg: CrawlRecipe  # this unit's share of the limits (the driver splits them)
    out: Path
    mode: str  # "list" or "discover"
    source: str
    index: int = 0
    count: int = 1
    first_part: int = 0  # parts are numbered first_part + index + k·count
    compact: bool = False  # alone in the folder: keep only each clip's newest row at the end


@dataclasses.dataclass(frozen=True)
class CrawlPlan:
    """What the driver hands a runner: the recovered crawl dir and where new parts start."""

    cfg: CrawlRecipe
    out: Path
    mode: str
    source: str
    first_part: int

    def unit(
        self, index: int, count: int, *, cfg: CrawlRecipe | None = None, compact: bool = False
    ) -> CrawlUnit:
        """Slice ``index`` of ``count``, with ``cfg`` (default: the run's) as its config."""
        return CrawlUnit(
            cfg or self.cfg,
            self.out,
            self.mode,
            self.source,
            index,
            count,
            self.first_part,
            compact,
        )


class CrawlRunner(Protocol):
    """Where a crawl's units run: here, in worker processes, or as Ray tasks. It slices the
    plan into units, runs each with :func:`webvid.crawl.loop.run_unit`, reports progress,
    and returns the units' counts; the first unit that fails stops the run with its error."""

    def run(self, plan: CrawlPlan, progress: Progress) -> list[UnitCounts]: ...


def is_done(status: str, reason: str | None, cfg: CrawlRecipe) -> bool:
    """Whether a committed record means its clip needs no new attempt. A private address
    refused by an earlier run is decided again when this run allows some (``--allow-private``
    or ``polite.private_allowlist``): the refusal cost no request."""
    if reason == "private_address" and (cfg.polite.allow_private or cfg.polite.private_allowlist):
        return False
    if status == contract.STATUS_DISCOVERED:
        return cfg.dry_run
    if cfg.retry_failed and status == contract.STATUS_FAILED_TO_DOWNLOAD:
        return not contract.is_retryable(reason)
    return True
