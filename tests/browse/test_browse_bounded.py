"""The browser's memory is bounded by design: ``items`` and ``crawl_rows`` are tables of a DuckDB
file in the cache folder (never in the data root, never copied into memory), read through a
connection whose ``memory_limit`` and ``threads`` are set; a whole session leaves the root as
it was; the file is reused while the inputs stay the same and rebuilt when one changes."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.browse.conftest import PLANTED_QUERY
from webvid import contract
from webvid.browse import cache, catalog, server, textsearch
from webvid.browse import items as it
from webvid.browse.catalog import open_root


def _setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return con.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def _snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[p.relative_to(root).as_posix()] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def test_relations_are_tables_of_a_file_outside_the_root(data_root: Path, browse_cache) -> None:
    root = open_root(data_root)
    con = root.con
    tables = con.execute("SELECT database_name, table_name FROM duckdb_tables()").fetchall()
    assert sorted(tables) == [("browse", "crawl_rows"), ("browse", "items")]  # none in memory
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()
    assert {"items", "crawl_rows"} <= {v for (v,) in views}
    ((path, readonly),) = con.execute(
        "SELECT path, readonly FROM duckdb_databases() WHERE database_name = 'browse'"
    ).fetchall()
    assert readonly and Path(path) == root.cache
    assert root.cache.parent == browse_cache and not root.cache.is_relative_to(data_root)
    limited = duckdb.connect(config={"memory_limit": cache.MEMORY_LIMIT})
    assert _setting(con, "memory_limit") == _setting(limited, "memory_limit")
    assert _setting(con, "memory_limit") != _setting(duckdb.connect(), "memory_limit")
    assert int(_setting(con, "threads")) == catalog.THREADS
    assert int(_setting(open_root(data_root, threads=1).con, "threads")) == 1
    # the rows are read from the file in display order: ord is 1..n, as the views number them
    ords = [r for (r,) in con.execute("SELECT ord FROM items").fetchall()]
    assert ords == list(range(1, len(ords) + 1)) and len(ords) == 9
    viewed = open_root(data_root, cache=False)
    whole = it.grid(root, it.Filters(), size=50)
    assert whole == it.grid(viewed, it.Filters(), size=50)
    page = it.grid(root, it.Filters(), size=4, page=1)  # an unfiltered page: a range of ord
    assert page["items"] == whole["items"][4:8] and page["total"] == 9
    assert it.grid(root, it.Filters(), size=4, page=2)["items"] == whole["items"][8:]
    kept = it.grid(root, it.Filters(status="kept"), size=50)["items"]
    assert len(kept) == 5 and kept == it.grid(viewed, it.Filters(status="kept"), size=50)["items"]
    assert it.grid(root, it.Filters(status="kept"), size=2, page=1)["items"] == kept[2:4]
    assert it.grid(root, it.Filters(status="kept"), size=2, page=3)["items"] == []


async def test_a_session_leaves_the_root_as_it_was(data_root: Path) -> None:
    before = _snapshot(data_root)
    root = open_root(data_root)
    paths = [
        "/api/overview",
        "/api/facets",
        "/api/samples?q=square&status=kept",
        "/api/sample/0/near0",
        "/api/threshold?src=0&name=min_motion&value=0.01",
        "/api/sql?q=SELECT%20count(*)%20FROM%20items",
        "/media/0/moving1",
        f"/api/search?q={PLANTED_QUERY}",
    ]
    async with TestClient(TestServer(server.make_app(root))) as client:
        for path in paths:
            assert (await client.get(path)).status == 200, path
    root.con.close()
    assert _snapshot(data_root) == before


def test_the_file_is_reused_until_an_input_changes(data_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "root"
    for part in ("crawl", "shards"):
        shutil.copytree(data_root / part, copy / part)
    first = open_root(copy).cache
    assert first is not None and first.exists()
    built = first.stat().st_mtime_ns
    again = open_root(copy).cache
    assert again == first and first.stat().st_mtime_ns == built  # reused, not rebuilt
    verdicts = copy / "shards" / contract.VERDICTS_NAME
    st = verdicts.stat()
    os.utime(verdicts, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = open_root(copy).cache
    assert changed is not None and changed != first
    assert changed.exists() and not first.exists()  # the root's stale file is gone
    assert [p.name for p in changed.parent.glob(".build-*")] == []
    assert open_root(data_root).cache not in (first, changed)  # one file per root


def test_no_writable_cache_folder_means_views_over_the_files(
    data_root: Path, tmp_path: Path, monkeypatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("WEBVID_BROWSE_CACHE", str(blocker / "cache"))
    root = open_root(data_root)
    assert root.cache is None
    assert root.con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
    assert it.grid(root, it.Filters(status="kept"))["total"] == 5


def test_a_root_of_shards_alone(data_root: Path, tmp_path: Path) -> None:
    """No crawl dir under the root (shards moved elsewhere): the file is still built."""
    shutil.copytree(data_root / "shards", tmp_path / "shards")
    root = open_root(tmp_path)
    assert root.cache is not None
    assert root.con.execute("SELECT count(*) FROM crawl_rows").fetchone() == (0,)
    assert it.grid(root, it.Filters(status="kept"))["total"] == 5
    assert it.grid(root, it.Filters())["total"] == 8  # the failed crawl record is not there


def test_a_killed_builds_leftovers_are_swept_once_stale(
    data_root: Path, tmp_path: Path, monkeypatch
) -> None:
    """A build killed mid-way leaves its spill folder and temp file: the next build deletes
    them once a day old, and leaves a younger one (another browser's live build) alone."""
    home = tmp_path / "cache"
    monkeypatch.setenv("WEBVID_BROWSE_CACHE", str(home))
    old_spill, live_spill = home / ".build-killed", home / ".build-live"
    for d in (old_spill, live_spill):
        (d / "duckdb_temp_storage").mkdir(parents=True)
        (d / "duckdb_temp_storage" / "block-0.tmp").write_bytes(b"\0" * 4096)
    old_tmp = home / ".tmp-killed.duckdb"
    old_tmp.write_bytes(b"half a database")
    day_ago = time.time() - cache.STALE_BUILD_S - 60
    for p in (old_spill, old_tmp):
        os.utime(p, (day_ago, day_ago))
    root = open_root(data_root)
    assert root.cache is not None and root.cache.parent == home
    assert not old_spill.exists() and not old_tmp.exists()
    assert live_spill.is_dir() and (live_spill / "duckdb_temp_storage" / "block-0.tmp").exists()


def test_a_big_index_is_streamed_not_held(data_root: Path, monkeypatch) -> None:
    """Over MATRIX_BYTES the Search page keeps no matrix and streams the index at each search,
    with the same hits and scores as the in-memory product."""
    held = textsearch.TextSearch(open_root(data_root))
    expected = held.search(PLANTED_QUERY, k=5)["hits"]
    assert held._indexes[0].matrix is not None
    monkeypatch.setattr(textsearch, "MATRIX_BYTES", 0)
    streamed = textsearch.TextSearch(open_root(data_root))
    got = streamed.search(PLANTED_QUERY, k=5)["hits"]
    assert streamed._indexes[0].matrix is None and streamed._indexes[0].keys is None
    assert [h["key"] for h in got] == [h["key"] for h in expected]
    assert [h["id"] for h in got] == [h["id"] for h in expected]  # mapped back to items rows
    assert [h["score"] for h in got] == pytest.approx([h["score"] for h in expected], abs=1e-6)
