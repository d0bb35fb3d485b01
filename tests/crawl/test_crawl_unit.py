"""The crawl's unit of work and its seams: counts fold as the drivers need, a runner handed to
``run()`` gets the recovered plan and its units give the same crawl dir, and both politeness
implementations (local and Ray) satisfy the one protocol."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from webvid import io
from webvid.crawl.loop import run_unit
from webvid.crawl.net import HostSlots, PoliteSlot, PoliteSlots, RobotsCache, RobotsSource
from webvid.crawl.run import run
from webvid.crawl.unit import CrawlPlan, UnitCounts
from webvid.log import Progress
from webvid.scale.limiter import RayRobots, RaySlots


def test_fold_sums_the_work_and_takes_the_largest_source_counts() -> None:
    a = UnitCounts({"success": 2}, {}, 10, 2, 1, 3, 1)
    b = UnitCounts({"success": 1, "failed_to_download": 1}, {"http_404": 1}, 5, 2, 0, 3, 1)
    assert UnitCounts.fold([a, b]) == UnitCounts(
        {"success": 3, "failed_to_download": 1}, {"http_404": 1}, 15, 4, 1, 3, 1
    )
    assert UnitCounts.fold([a]) == a


def test_plan_slices_number_parts_apart(tmp_path: Path, crawl_config) -> None:
    cfg = crawl_config(source="t.csv")
    plan = CrawlPlan(cfg, tmp_path, "list", "t.csv", first_part=7)
    units = [plan.unit(w, 3) for w in range(3)]
    assert [(u.index, u.count, u.first_part, u.compact) for u in units] == [
        (w, 3, 7, False) for w in range(3)
    ]
    assert plan.unit(0, 1, compact=True).compact and plan.unit(0, 1).cfg is cfg


class TwoUnitsHere:
    """A runner of our own: two slices, one after the other, in this process."""

    def __init__(self) -> None:
        self.plans: list[CrawlPlan] = []

    def run(self, plan: CrawlPlan, progress: Progress) -> list[UnitCounts]:
        self.plans.append(plan)
        return [run_unit(plan.unit(w, 2), progress) for w in range(2)]


def _records(out: Path) -> dict[str, tuple[str, str | None]]:
    rows = [
        r
        for p in sorted((out / "records").glob("part-*.parquet"))
        for r in pq.read_table(p).to_pylist()
    ]
    return {r["clip_id"]: (r["status"], r["reason"]) for r in rows}


def test_a_runner_handed_down_runs_the_units(tmp_path: Path, site, crawl_config) -> None:
    table = tmp_path / "t.csv"
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["videoid", "contentUrl", "name"])
        w.writerows((f"c{i}", f"{site.url}/v/c{i}.mp4", f"clip {i}") for i in range(12))
    one, two = tmp_path / "one", tmp_path / "two"
    single = run(crawl_config(source=str(table)), out=one)
    runner = TwoUnitsHere()
    split = run(crawl_config(source=str(table)), out=two, runner=runner)
    assert [(p.mode, p.first_part, p.out) for p in runner.plans] == [("list", 0, two)]
    assert _records(one) == _records(two) and len(_records(two)) == 12
    assert (split.attempted, split.by_status) == (single.attempted, single.by_status)
    assert io.read_manifest(two)["counts"] == io.read_manifest(one)["counts"]
    again = run(crawl_config(source=str(table)), out=two, runner=runner)
    assert again.attempted == 0 and again.skipped_done == 12
    assert runner.plans[-1].first_part >= 2  # the second run numbers its parts above the first's


@pytest.mark.parametrize("impl", ["local", "ray"])
def test_both_politeness_implementations_satisfy_the_seam(impl: str, crawl_config) -> None:
    cfg = crawl_config()
    if impl == "local":
        slots: object = HostSlots(cfg)
        robots: object = RobotsCache(cfg, session=None, slots=HostSlots(cfg))
    else:
        slots, robots = RaySlots([object()]), RayRobots(cfg, [object()])
    assert isinstance(slots, PoliteSlots) and isinstance(robots, RobotsSource)
    assert isinstance(slots.get("http://example.com/a.mp4"), PoliteSlot)
    assert slots.backing_off() == 0


async def test_robots_cache_counts_one_fetch_per_host(site, crawl_config) -> None:
    """Concurrent askers of one host share one robots.txt fetch; the cache's public ``fetches``
    counter (which the Ray limiter reports) says so, and the server agrees."""
    import asyncio

    from webvid.crawl.net import make_session

    cfg = crawl_config()
    async with make_session(cfg) as session:
        cache = RobotsCache(cfg, session, HostSlots(cfg))
        urls = [f"{site.url}/v/c{i}.mp4" for i in range(20)]
        rules = await asyncio.gather(*(cache.rules(u) for u in urls))
    assert all(r is rules[0] for r in rules)
    assert list(cache.fetches.values()) == [1] and site.state.hits["/robots.txt"] == 1
