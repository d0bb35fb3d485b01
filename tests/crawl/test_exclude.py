"""Exclude lists and takedown logs in the crawl: listed items are recorded, never fetched.

Against the loopback servers of ``conftest.py``: a list (``--exclude``, the recipe's
``exclude``) and a ``takedowns.parquet`` in a folder above the crawl dir name items by clip id,
media URL, page URL and sha256. Those known before any request are never requested (their
clip pages neither); one known only by its body's sha256 is fetched once, deleted at once and
recorded as taken down. Each is a record with status ``skipped_opt_out``, reason
``taken_down``, ``optout_source`` ``takedown`` and the listed identifier as its value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from webvid import contract, io

from .test_crawl_discover import GOOD, demo_like_discover, make_site
from .test_crawl_list import by_id, read_records, write_csv


def write_log(path: Path, **row: str) -> Path:
    """A one-row takedown log, as ``webvid takedown`` writes it."""
    full = {
        "takedown_id": "t1",
        "at": dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
        "kind": "url",
        "identifier": row.get("url", ""),
        "matched": "url",
        **row,
    }
    io.write_parquet(path, contract.rows_to_table([full], contract.TAKEDOWN_SCHEMA))
    return path


def test_list_mode_skips_listed_items_without_a_request(
    tmp_path: Path, site, crawl_config, kit, run_cli
) -> None:
    ids = [f"ok{i}" for i in range(1, 7)]
    table = write_csv(
        tmp_path / "t.csv", [(vid, f"{site.url}/v/{vid}.mp4", f"caption {vid}") for vid in ids]
    )
    body_sha = hashlib.sha256(kit.fake_mp4("ok3")).hexdigest()
    listing = tmp_path / "request.txt"
    listing.write_text(f"# a takedown request\nok1\n{site.url}/v/ok2.mp4\n{body_sha}\n")
    # the data root's log (written by an earlier `webvid takedown`) counts without being named
    write_log(tmp_path / "data" / contract.TAKEDOWNS_NAME, url=f"{site.url}/v/ok4.mp4")
    out = tmp_path / "data" / "crawl" / "videos"
    args = ["--quiet", "crawl", str(table), "-o", str(out), "--allow-private"]
    code, _, err = run_cli([*args, "--exclude", str(listing), "--processes", "2"])
    assert code == 0, err

    rows = by_id(read_records(out))
    assert set(rows) == set(ids)
    want = {
        "ok1": "clip_id:ok1",
        "ok2": f"url:{site.url}/v/ok2.mp4",
        "ok3": f"sha256:{body_sha}",
        "ok4": f"url:{site.url}/v/ok4.mp4",
    }
    for vid, value in want.items():
        r = rows[vid]
        assert (r["status"], r["reason"]) == ("skipped_opt_out", "taken_down"), vid
        assert (r["optout_source"], r["optout_value"]) == ("takedown", value), vid
        assert r["media_path"] is None
    for vid in ("ok5", "ok6"):
        assert rows[vid]["status"] == "success" and rows[vid]["optout_source"] is None
    # never requested: known before any request; ok3 only by its body, which is gone
    assert [site.requests_to(f"/v/{v}.mp4") for v in ("ok1", "ok2", "ok4")] == [[], [], []]
    assert len(site.requests_to("/v/ok3.mp4")) == 1
    media = sorted(p.name for p in (out / "media").rglob("*") if p.is_file())
    assert media == ["ok5.mp4", "ok6.mp4"]
    manifest = io.read_manifest(out)
    assert manifest["config"]["exclude"] == [str(listing)]
    assert manifest["stats"]["by_reason"]["taken_down"] == 4

    # a rerun: everything is done, nothing is asked for again
    before = len(site.state.log)
    code, _, err = run_cli([*args, "--exclude", str(listing)])
    assert code == 0, err
    assert [p for p, _ in site.state.log[before:] if p.startswith("/v/")] == []


def test_discovery_never_fetches_a_listed_clip_page(tmp_path: Path, kit, crawl_config) -> None:
    from webvid.crawl.run import run

    app, state = make_site(kit)
    with kit.ThreadServer(app) as server:
        listing = tmp_path / "request.csv"
        listing.write_text(f"clip_id,page_url,reason\nog-5,,asked\n,{server.url}/clip/ld-4,asked\n")
        out = tmp_path / "out"
        cfg = crawl_config(
            source=server.url + "/", discover=demo_like_discover(), exclude=(str(listing),)
        )
        run(cfg, out=out)
    rows = {r["clip_id"]: r for r in read_records(out)}
    for cid, value in (("og-5", "clip_id:og-5"), ("ld-4", f"url:{server.url}/clip/ld-4")):
        assert (rows[cid]["reason"], rows[cid]["optout_source"]) == ("taken_down", "takedown")
        assert rows[cid]["optout_value"] == value
    paths = [p for p, _ in state.log]
    assert "/clip/og-5" not in paths and "/clip/ld-4" not in paths
    assert "/cdn/og-5.mp4" not in paths and "/cdn/ld-4.mp4" not in paths
    ok = sorted(c for c, r in rows.items() if r["status"] == "success")
    assert ok == sorted(set(GOOD) - {"og-5", "ld-4"})
