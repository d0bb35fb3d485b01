"""The browser's HTTP API on a real data root: media by id with Range, no path from the
client, read-only SQL, filters, thresholds, detail and search (no browser needed)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.browse.conftest import PLANTED_CLIP, PLANTED_QUERY
from webvid import contract
from webvid.browse import server
from webvid.browse.catalog import open_root


@pytest.fixture
async def client(data_root: Path):
    root = open_root(data_root)
    async with TestClient(TestServer(server.make_app(root))) as c:
        c.root = root  # type: ignore[attr-defined]
        yield c


def _verdicts(data_root: Path) -> dict[str, dict]:
    rows = pq.read_table(data_root / "shards" / contract.VERDICTS_NAME).to_pylist()
    return {r["clip_id"]: r for r in rows}


def _member_bytes(data_root: Path, row: dict) -> bytes:
    with tarfile.open(data_root / "shards" / row["split"] / f"{row['shard']}.tar") as tf:
        return tf.extractfile(f"{row['key']}.mp4").read()


async def test_media_comes_from_the_tar_member_with_range(client, data_root) -> None:
    row = _verdicts(data_root)["moving1"]
    want = _member_bytes(data_root, row)
    url = "/media/0/moving1"
    full = await client.get(url)
    assert full.status == 200 and full.headers["Content-Type"] == "video/mp4"
    assert full.headers["Accept-Ranges"] == "bytes"
    assert await full.read() == want
    part = await client.get(url, headers={"Range": "bytes=100-299"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-299/{len(want)}"
    assert await part.read() == want[100:300]
    tail = await client.get(url, headers={"Range": "bytes=-50"})
    assert tail.status == 206 and await tail.read() == want[-50:]
    open_end = await client.get(url, headers={"Range": f"bytes={len(want) - 10}-"})
    assert await open_end.read() == want[-10:]
    bad = await client.get(url, headers={"Range": f"bytes={len(want)}-"})
    assert bad.status == 416 and bad.headers["Content-Range"] == f"bytes */{len(want)}"
    head = await client.head(url)
    assert head.status == 200 and int(head.headers["Content-Length"]) == len(want)


async def test_rejected_clip_is_served_from_its_crawl_dir(client, data_root) -> None:
    row = _verdicts(data_root)["still"]
    resp = await client.get("/media/0/still")
    assert resp.status == 200
    assert await resp.read() == (Path(row["crawl_dir"]) / row["media_path"]).read_bytes()
    picture = _verdicts(data_root)["picture1"]
    resp = await client.get("/media/0/picture1")
    assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg"
    assert await resp.read() == (Path(picture["crawl_dir"]) / picture["media_path"]).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/media/0/..%2F..%2F..%2Fetc%2Fpasswd",
        "/media/0/../../etc/passwd",
        "/media/0/%2Fetc%2Fpasswd",
        "/media/99/moving1",
        "/media/0/nosuchclip",
        "/media/1/gone1",  # a failed crawl record has no media
        "/static/..%2F..%2F..%2Fpyproject.toml",
        "/static/..%2Fserver.py",
        "/etc/passwd",
        "/api/sample/0/..%2Fverdicts.parquet",
    ],
)
async def test_no_client_path_reaches_a_file(client, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 404, (path, resp.status)


async def test_read_only_by_construction(client) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        resp = await client.request(method, "/api/sql", data="q=select 1")
        assert resp.status == 405, method
    bad = await client.get("/api/sql", params={"q": "COPY (SELECT 1) TO '/tmp/x.csv'"})
    assert bad.status == 400 and "read-only" in (await bad.json())["error"]
    file_read = await client.get("/api/sql", params={"q": "SELECT * FROM read_text('/etc/passwd')"})
    assert file_read.status == 400
    rebinding = await client.get("/api/overview", headers={"Host": "evil.example:80"})
    assert rebinding.status == 403


async def test_sql_is_row_capped_and_time_limited(client, monkeypatch) -> None:
    resp = await client.get("/api/sql", params={"q": "SELECT range AS n FROM range(5000)"})
    body = await resp.json()
    assert resp.status == 200 and len(body["rows"]) == server.SQL_ROWS and body["truncated"]
    monkeypatch.setattr(server, "SQL_SECONDS", 0.5)
    slow = "SELECT sum(hash(a.range * b.range)) FROM range(200000) a, range(200000) b"
    resp = await client.get("/api/sql", params={"q": slow})
    assert resp.status == 400 and "stopped after 0.5 s" in (await resp.json())["error"]
    ok = await client.get("/api/sql", params={"q": "SELECT count(*) AS n FROM items"})
    assert (await ok.json())["rows"] == [{"n": 9}]  # the connection still works


async def test_filters_change_the_counts(client) -> None:
    async def total(**params: str) -> int:
        resp = await client.get("/api/samples", params=params)
        assert resp.status == 200
        return (await resp.json())["total"]

    assert await total() == 9  # 8 curated + 1 failed download
    assert await total(status="kept") == 5
    assert await total(status="rejected") == 3
    assert await total(reason="still") == 1
    assert await total(status="failed_to_download") == 1
    assert await total(q="SQUARE") == 2  # moving0 and near0, case-insensitive
    assert await total(q="100%_") == 0  # LIKE wildcards are literal
    assert await total(range="motion_score:0.001:") == 6  # every moving clip, not the still one
    page = await (await client.get("/api/samples", params={"size": "3", "page": "2"})).json()
    assert len(page["items"]) == 3 and page["page"] == 2


async def test_threshold_reports_the_newly_dropped(client, data_root) -> None:
    verdicts = _verdicts(data_root)
    kept = {c: r["motion_score"] for c, r in verdicts.items() if r["kept"]}
    cut = sorted(kept.values())[2]  # drops the two least moving kept clips
    expected = {c for c, m in kept.items() if m < cut}
    resp = await client.get(
        "/api/threshold", params={"src": "0", "name": "min_motion", "value": repr(cut)}
    )
    body = await resp.json()
    assert {i["id"] for i in body["items"]} == expected and len(expected) == 2
    assert body["kept_now"] == 5 and body["newly_dropped"] == 2
    assert body["set"] == f"--set filters.min_motion={cut:g}"
    # lowering it under the still clip's score lets that clip (rejected only as still) through
    low = await client.get(
        "/api/threshold", params={"src": "0", "name": "min_motion", "value": "0"}
    )
    body = await low.json()
    assert (body["newly_dropped"], body["newly_kept"], body["would_keep"]) == (0, 1, 6)
    unknown = await client.get(
        "/api/threshold", params={"src": "0", "name": "drop_table", "value": "1"}
    )
    assert unknown.status == 404


async def test_detail_has_scores_group_and_crawl_record(client) -> None:
    d = await (await client.get("/api/sample/0/near0")).json()
    assert d["verdict"]["reason"] == "duplicate_near" and d["verdict"]["duplicate_of"] == "moving0"
    assert {g["id"] for g in d["group"]} == {"moving0", "near0"}
    assert d["crawl"]["page_url"] == "http://127.0.0.1/clip/near0"
    assert d["crawl"]["status"] == "success" and d["has_media"]


async def test_search_returns_the_planted_clip(client) -> None:
    resp = await client.get("/api/search", params={"q": PLANTED_QUERY, "k": "3"})
    body = await resp.json()
    assert resp.status == 200, body
    top = body["hits"][0]
    assert top["id"] == PLANTED_CLIP and top["score"] == pytest.approx(1.0, abs=1e-4)
    assert (await client.get(f"/media/{top['src']}/{top['id']}")).status == 200
    empty = await client.get("/api/search", params={"q": "  "})
    assert empty.status == 400


async def test_overview_funnel_runs_and_shards(client) -> None:
    o = await (await client.get("/api/overview")).json()
    assert [f["count"] for f in o["funnel"]] == [9, 8, 8, 5]
    assert {r["value"]: r["count"] for r in o["verdict_reasons"]} == {
        "still": 1,
        "duplicate_near": 1,
        "not_video": 1,
    }
    assert sum(s["count"] for s in o["shards"]) == 5
    assert o["indexes"] == ["run/index.parquet"]
    run = await (await client.get("/api/run/0")).json()
    assert [p[0] for p in run["loss"]["vid"]] == [1, 2]


def test_loopback_and_host_names() -> None:
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1")
    assert server.is_loopback("localhost")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("192.168.1.5")
    assert server.host_name("[::1]:8765") == "[::1]" and server.host_name("a.b:1") == "a.b"


def test_range_parsing() -> None:
    assert server.parse_range(None, 10) is None
    assert server.parse_range("bytes=0-", 10) == (0, 9)
    assert server.parse_range("bytes=2-100", 10) == (2, 9)
    for bad in ("bytes=10-", "bytes=5-2", "items=0-1", "bytes=0-1,3-4", "bytes=-0", "bytes=x-"):
        with pytest.raises(ValueError):
            server.parse_range(bad, 10)


def test_cli_serves_the_root_on_loopback(data_root: Path) -> None:
    """`webvid browse ROOT --port 0` prints its URL and answers there; ended by its PID."""
    import subprocess
    import sys
    import time
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "webvid.cli", "browse", str(data_root), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "http://" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
        url = line.split()[2]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/api/samples?status=kept", timeout=30) as resp:
            assert json.loads(resp.read())["total"] == 5
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_views_over_the_files_answer_as_the_cached_tables(data_root: Path) -> None:
    """Without the cache the relations are views over the files: same answers."""
    from webvid.browse import detail
    from webvid.browse import items as it

    cached = open_root(data_root)
    viewed = open_root(data_root, cache=False)
    assert cached.cache is not None and viewed.cache is None
    where = "SELECT database_name FROM duckdb_tables() WHERE table_name = 'items'"
    assert cached.con.execute(where).fetchall() == [("browse",)]
    assert viewed.con.execute(where).fetchall() == []
    for f in (it.Filters(), it.Filters(status="rejected"), it.Filters(text="square")):
        assert it.grid(viewed, f, size=5) == it.grid(cached, f, size=5)
    assert detail.sample(viewed, 0, "near0") == detail.sample(cached, 0, "near0")
    assert detail.threshold(viewed, 0, "min_motion", 0.0) == detail.threshold(
        cached, 0, "min_motion", 0.0
    )


def test_hits_with_sources_relative_to_the_index_play(data_root: Path) -> None:
    """An index built from its own folder (`../shards/*/*.tar`, as the takedown tests do)
    names its tars relative to that folder; the hits still map to playable clips."""
    from webvid.browse.textsearch import attach_items

    root = open_root(data_root)
    row = _verdicts(data_root)["moving1"]
    rel = f"../shards/{row['split']}/{row['shard']}.tar"
    hits = [{"key": row["key"], "source": rel}, {"key": row["key"], "source": "nowhere/x.tar"}]
    attach_items(root, data_root / "run", hits)
    assert hits[0]["id"] == "moving1" and hits[0]["src"] == 0
    assert "id" not in hits[1]


async def test_sql_after_every_other_endpoint(client) -> None:
    """No endpoint leaves a pending result on the shared connection (DuckDB then refuses the
    SQL page's streamed query with 'connection has an unfinished result')."""
    paths = [
        "/api/sample/0/near0",
        "/media/0/moving1",
        "/api/overview",
        "/api/facets",
        "/api/samples?status=kept",
        "/api/threshold?src=0&name=min_motion&value=0.01",
        "/api/sql?q=SELECT%20range%20FROM%20range(5000)",
    ]
    for path in paths:
        assert (await client.get(path)).status == 200, path
        resp = await client.get("/api/sql", params={"q": "SELECT count(*) AS n FROM items"})
        assert resp.status == 200, (path, await resp.text())
