"""Resume and retry: SIGKILL of the real `webvid crawl` process at random moments, the
journal/part recovery, and --retry-failed touching only retryable failures."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiohttp import web

from webvid import io
from webvid.crawl.run import run
from webvid.crawl.store import RecordStore, journal_name, part_name

N_ITEMS = 200


def slow_media_app(kit) -> tuple[web.Application, object]:
    state = kit.SiteState()
    app = kit.make_app(state)
    fake_mp4 = kit.fake_mp4

    async def clip(req: web.Request) -> web.Response:
        name = req.match_info["name"]
        await web_sleep(0.2)
        if name.endswith("x"):  # planted permanent failures
            return web.Response(status=404)
        return web.Response(body=fake_mp4(name, 30_000), content_type="video/mp4")

    app.router.add_get("/clip/{name}.mp4", clip)
    return app, state


async def web_sleep(s: float) -> None:
    import asyncio

    await asyncio.sleep(s)


def write_table(path: Path, base: str) -> Path:
    lines = ["id,url,caption"]
    for i in range(N_ITEMS):
        name = f"c{i:04d}" + ("x" if i % 37 == 5 else "")
        lines.append(f"{name},{base}/clip/{name}.mp4,clip number {i}")
    path.write_text("\n".join(lines) + "\n")
    return path


def crawl_cmd(table: Path, out: Path, processes: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "webvid.cli",
        "-q",
        "crawl",
        str(table),
        "-o",
        str(out),
        "--set",
        f"processes={processes}",
        "--allow-private",
        "--concurrency",
        "8",
        "--per-host-concurrency",
        "8",
        "--per-host-rps",
        "2000",
        "--set",
        "polite.per_host_burst=200",
        "--set",
        "output.flush_every=15",
        "--set",
        "output.flush_interval_s=0.3",
        "--set",
        "net.backoff_base_s=0.05",
    ]


def committed(out: Path) -> list[dict]:
    rows: list[dict] = []
    for part in sorted((out / "records").glob("part-*.parquet")):
        rows.extend(
            pq.read_table(
                part, columns=["clip_id", "status", "reason", "sha256", "media_path"]
            ).to_pylist()
        )
    return rows


@pytest.mark.parametrize("processes", [1, 2])
def test_sigkill_at_random_points_then_resume(tmp_path: Path, kit, processes: int) -> None:
    app, state = slow_media_app(kit)
    rng = random.Random(1234 + processes)
    env = dict(os.environ, WEBVID_NO_PROGRESS="1")
    with kit.ThreadServer(app) as server:
        table = write_table(tmp_path / "t.csv", server.url)
        ref = tmp_path / "ref"
        subprocess.run(crawl_cmd(table, ref, processes), check=True, env=env, timeout=120)
        reference = {r["clip_id"]: r["sha256"] for r in committed(ref) if r["status"] == "success"}
        assert len(reference) == N_ITEMS - len([i for i in range(N_ITEMS) if i % 37 == 5])
        hits_ref = sum(n for p, n in state.hits.items() if p.startswith("/clip/"))
        state.hits.clear()

        out = tmp_path / "out"
        kills = 0
        for _ in range(4):
            proc = subprocess.Popen(
                crawl_cmd(table, out, processes),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(1.0, 2.8))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
        subprocess.run(crawl_cmd(table, out, processes), check=True, env=env, timeout=120)
    assert kills >= 2, "the crawl finished before it could be killed: make it slower"
    rows = committed(out)
    ids = [r["clip_id"] for r in rows]
    assert len(ids) == len(set(ids)) == N_ITEMS  # no duplicate, no lost record
    got = {r["clip_id"]: r["sha256"] for r in rows if r["status"] == "success"}
    assert got == reference
    for r in rows:
        if r["status"] == "success":
            assert (
                hashlib.sha256(io.safe_join(out, r["media_path"]).read_bytes()).hexdigest()
                == r["sha256"]
            )
    leftovers = [
        p.name for p in (out / "media").rglob("*") if p.is_file() and not p.name.endswith(".mp4")
    ]
    assert leftovers == []
    # only what was in flight at a kill may have been asked for again: the 8 open requests,
    # plus items finished in the journal writer's last batching window (lines reach the OS
    # every 10 ms; allow 0.1 s of a loaded machine: at 8 requests / 0.2 s, 4 items)
    hits = sum(n for p, n in state.hits.items() if p.startswith("/clip/"))
    assert hits <= hits_ref + kills * (8 + 4) * processes
    assert io.read_manifest(out)["counts"]["records"] == N_ITEMS


def test_recover_folds_journal_and_drops_torn_line(tmp_path: Path) -> None:
    from webvid.crawl.items import Item, Outcome, make_record

    store = RecordStore(tmp_path, flush_every=1000, flush_interval_s=1e9)
    store.recover()
    for i in range(3):
        store.add(
            make_record(
                Item(clip_id=f"a{i}", source="s", source_index=i),
                Outcome(None, bytes=1),
                time.time(),
                0.1,
            )
        )
    store.flush()  # part 0 committed
    for i in range(3, 6):
        store.add(
            make_record(
                Item(clip_id=f"a{i}", source="s", source_index=i),
                Outcome("timeout"),
                time.time(),
                0.1,
            )
        )
    store._journal.close()  # the background writer has put every line in the OS
    with open(tmp_path / "records" / journal_name(1), "a") as fh:
        fh.write('{"clip_id": "torn')  # a kill in the middle of a write
    # simulate the kill: nothing else is flushed; a stale journal of a committed part lingers
    (tmp_path / "records" / journal_name(0)).write_text('{"clip_id": "a0"}\n')
    again = RecordStore(tmp_path, flush_every=1000, flush_interval_s=1e9)
    did = again.recover()
    assert did["journals_folded"] == 1
    states = sorted(again.final_states())
    assert [s[0] for s in states] == [f"a{i}" for i in range(6)]
    assert not list((tmp_path / "records").glob("journal-*"))
    assert (tmp_path / "records" / part_name(1)).is_file()


def test_retry_failed_only_retries_retryable(tmp_path: Path, kit, crawl_config) -> None:
    healthy = {"ok": False}
    app, state = slow_media_app(kit)

    async def sometimes(req: web.Request) -> web.Response:
        if not healthy["ok"]:
            return web.Response(status=503)
        return web.Response(body=kit.fake_mp4("s"), content_type="video/mp4")

    app.router.add_get("/sometimes.mp4", sometimes)
    with kit.ThreadServer(app) as server:
        table = tmp_path / "t.csv"
        table.write_text(
            f"id,url\nflaky,{server.url}/sometimes.mp4\ngone,{server.url}/status/404\n"
        )
        out = tmp_path / "out"
        cfg = crawl_config(source=str(table))
        run(cfg, out=out)
        first = {r["clip_id"]: r for r in committed(out)}
        assert first["flaky"]["reason"] == "http_5xx" and first["gone"]["reason"] == "http_404"
        healthy["ok"] = True
        hits_404 = state.hits["/status/404"]
        run(cfg, out=out)  # plain rerun: everything recorded counts as done
        assert state.hits["/status/404"] == hits_404
        assert {r["clip_id"]: r["reason"] for r in committed(out)} == {
            "flaky": "http_5xx",
            "gone": "http_404",
        }
        summary = run(crawl_config(source=str(table), retry_failed=True), out=out)
        assert summary.attempted == 1
        rows = committed(out)
        assert sorted(r["clip_id"] for r in rows) == ["flaky", "gone"]  # one row each
        final = {r["clip_id"]: r for r in rows}
        assert final["flaky"]["status"] == "success" and final["gone"]["reason"] == "http_404"
        assert state.hits["/status/404"] == hits_404  # 404 never asked again


def test_partial_body_left_by_a_killed_run_is_resumed_with_range(
    tmp_path: Path, site, kit, crawl_config
) -> None:
    import hashlib as _h
    import json as _json

    url = f"{site.url}/resume/big.mp4"
    full = kit.fake_mp4("big", 200_000)
    out = tmp_path / "out"
    partial = out / "media" / ".partial"
    partial.mkdir(parents=True)
    (partial / "big.part").write_bytes(full[:120_000])  # what a killed run had streamed
    etag = '"' + _h.md5(full).hexdigest() + '"'
    (partial / "big.partjson").write_text(
        _json.dumps({"url": url, "etag": etag, "total": len(full)})
    )
    (partial / ".tmp-other.mp4").write_bytes(b"junk")  # a temp of the killed run: removed
    table = tmp_path / "t.csv"
    table.write_text(f"id,url\nbig,{url}\n")
    run(crawl_config(source=str(table)), out=out)
    (row,) = committed(out)
    assert row["status"] == "success" and row["sha256"] == _h.sha256(full).hexdigest()
    (req,) = [h for p, h in site.state.log if p.startswith("/resume/")]
    assert req["Range"] == "bytes=120000-" and req["If-Range"] == etag
    assert not partial.exists()  # emptied and removed
