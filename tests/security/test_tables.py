"""Hostile URL tables: no row stops a crawl, no table grows memory, no table URL fills a disk.

Issue #13 (deliverable 2, point 7, the remote-table cap of deliverable 1). Each table is
generated under ``tmp_path`` (50 MB at most, deleted after use); the remote-table server runs
on loopback and stops sending after 50 MB whatever the crawler does; crawls are dry runs
(no media requests) unless a server is needed. Peak memory is measured in a subprocess from
its own ``VmHWM`` (``ru_maxrss`` of a child can carry the parent's figure across exec), under
an address-space limit so a regression fails fast instead of taking the machine's memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import math
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from webvid import contract
from webvid.crawl.config import CrawlConfig, NetConfig, OutputConfig, PoliteConfig, TableConfig
from webvid.crawl.run import run
from webvid.crawl.sources import iter_items
from webvid.errors import InputError

MiB = 1024 * 1024


def _config(source: Path | str, **kw: Any) -> CrawlConfig:
    """Loopback allowed, quick retries, small record parts; dry run unless told otherwise."""
    kw.setdefault("dry_run", True)
    return CrawlConfig(
        source=str(source),
        polite=PoliteConfig(allow_private=True, per_host_rps=1000.0, per_host_burst=100),
        net=NetConfig(retries=1, backoff_base_s=0.05, total_timeout_s=30.0, read_timeout_s=10.0),
        output=OutputConfig(fsync_media=False, flush_every=5000),
        **kw,
    )


def _records(out: Path) -> list[dict[str, Any]]:
    parts = sorted((out / "records").glob("part-*.parquet"))
    return [r for p in parts for r in pq.read_table(p).to_pylist()]


def _bad(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for r in records if r["reason"] == "bad_row"), key=lambda r: r["source_index"])


# -- rows that cannot be decoded, or are too long, are recorded and skipped ----------------

ROWS = 40_000
BAD_LINES = {  # data row index → what is wrong with it (line number = index + 2)
    20_000: b"x" * (MiB + 100),  # one caption over 1 MiB
    33_500: b"a caption with \xff\xfe in it",  # not UTF-8
    37_000: b"," * (2 * MiB),  # a run of empty fields over the row limit
}


def _webvid_csv(path: Path, bad: dict[int, bytes], rows: int = ROWS) -> Path:
    with open(path, "wb") as fh:
        fh.write(b"videoid,contentUrl,name\n")
        for i in range(rows):
            caption = bad.get(i, b"caption %d" % i)
            fh.write(b"%d,http://cdn.test/v/%d.mp4,%s\n" % (i, i, caption))
    return path


@pytest.mark.timeout(180)
def test_bad_rows_are_recorded_once_and_the_crawl_completes(tmp_path: Path) -> None:
    table = _webvid_csv(tmp_path / "webvid.csv", BAD_LINES)
    out = tmp_path / "out"
    # a first run stops part-way (limit), the second finishes, the third has nothing to do
    first = run(_config(table, limit=35_000), out=out)
    assert first.by_reason == {"bad_row": 2}
    assert (out / contract.MANIFEST_NAME).is_file()
    second = run(_config(table), out=out)
    assert (second.attempted, second.skipped_done, second.by_reason) == (
        ROWS - 35_000,
        35_000,
        {"bad_row": 1},
    )
    third = run(_config(table), out=out)
    assert (third.attempted, third.skipped_done) == (0, ROWS)
    assert (out / contract.MANIFEST_NAME).is_file()

    records = _records(out)
    assert len(records) == ROWS == len({r["clip_id"] for r in records})
    bad = _bad(records)
    assert [r["source_index"] for r in bad] == sorted(BAD_LINES)
    for record, index in zip(bad, sorted(BAD_LINES), strict=True):
        assert record["status"] == contract.STATUS_FAILED_TO_DOWNLOAD
        assert record["error_message"].startswith(f"line {index + 2}: ")
        assert record["media_url"] is None and record["caption"] is None
    assert "not UTF-8" in bad[1]["error_message"]
    assert "max_row_bytes" in bad[0]["error_message"] and "max_row_bytes" in bad[2]["error_message"]
    good = {r["clip_id"]: r for r in records if r["reason"] is None}
    assert good["33499"]["caption"] == "caption 33499" and good["33501"]["status"] == "discovered"


@pytest.mark.timeout(120)
def test_bad_rows_with_processes_give_the_same_records(tmp_path: Path) -> None:
    table = _webvid_csv(tmp_path / "t.csv", {5: b"\xc3(", 900: b"y" * (MiB + 1)}, rows=2_000)
    one, two = tmp_path / "one", tmp_path / "two"
    run(_config(table), out=one)
    run(_config(table, processes=2), out=two)
    key = ("clip_id", "status", "reason", "error_message", "source_index")
    rows = [sorted(tuple(r[k] for k in key) for r in _records(o)) for o in (one, two)]
    assert rows[0] == rows[1] and len(_bad(_records(two))) == 2


def test_row_limit_is_configurable(tmp_path: Path) -> None:
    table = _webvid_csv(tmp_path / "t.csv", {1: b"z" * 5000}, rows=3)
    assert [i.failed for i in iter_items(table, TableConfig())] == [None] * 3
    got = list(iter_items(table, TableConfig(max_row_bytes=4096)))
    assert [i.failed.reason if i.failed else None for i in got] == [None, "bad_row", None]
    assert got[1].failed.message == "line 3: row over table.max_row_bytes (4096 bytes)"


def test_csv_bad_rows_keep_the_rows_around_them(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(
        b"id,url,caption\n"
        b'a,http://x.test/a.mp4,"two\nlines"\n'  # lines 2-3: a quoted line break is fine
        b'b,http://x.test/b.mp4,"bad \xff\nover two lines"\n'  # lines 4-5: not UTF-8
        b"c,http://x.test/c.mp4,fine\n"  # line 6
        b'd,http://x.test/d.mp4,"never closed\n'
        + b"filler\n" * 200
        + b"e,http://x.test/e.mp4,after\n"
    )
    got = list(iter_items(path, TableConfig(max_row_bytes=1000)))
    assert [(i.clip_id, i.caption) for i in got[:2]] == [("a", "two\nlines")] + [
        (got[1].clip_id, None)
    ]
    assert got[1].failed.message == "line 4: not UTF-8 text (byte 0xff at offset 27 of the row)"
    assert (got[2].clip_id, got[2].caption) == ("c", "fine")
    # an unclosed quote swallows lines only up to the row limit; reading resumes after it
    assert got[3].failed.message.startswith("line 7: row over table.max_row_bytes (1000 bytes")
    assert got[-1].clip_id == "e" and got[-1].caption == "after"
    again = list(iter_items(path, TableConfig(max_row_bytes=1000)))
    assert [i.clip_id for i in again] == [i.clip_id for i in got]  # stable bad-row ids


def test_tsv_and_jsonl_bad_rows(tmp_path: Path) -> None:
    tsv = tmp_path / "cc3m.tsv"
    tsv.write_bytes(
        b"first\thttp://x.test/1.jpg\nbad \x80\thttp://x.test/2.jpg\nthird\thttp://x.test/3\n"
    )
    got = list(iter_items(tsv, TableConfig()))
    assert [i.caption for i in got] == ["first", None, "third"]
    assert got[1].failed.message.startswith("line 2: not UTF-8")

    jl = tmp_path / "t.jsonl.gz"
    lines = [
        json.dumps({"url": "http://x.test/1.mp4", "caption": "one"}).encode(),
        b'{"url": "http://x.test/2.mp4", "caption": "\xff"}',
        b'{"url": "http://x.test/3.mp4", "caption": "' + b"w" * (2 * MiB) + b'"}',
        b'{"url": "http://x.test/4.mp4", "caption": "lone \\ud800 surrogate"}',
        b"[" * 100_000,  # valid-looking nesting that no JSON parser should recurse into
        json.dumps({"url": "http://x.test/5.mp4", "caption": "five"}).encode(),
    ]
    jl.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    stats: dict[str, int] = {}
    got = list(iter_items(jl, TableConfig(), stats))
    assert [i.caption for i in got] == ["one", None, None, None, "five"]
    assert [i.failed.message.split(":")[0] for i in got if i.failed] == [
        "line 2",
        "line 3",
        "line 4",
    ]
    assert stats == {"bad_rows": 3, "invalid_rows": 1}


# -- headers are bounded before memory grows -------------------------------------------------


def test_header_limits_are_clear_errors(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(100_000)) + ",url\n")
    with pytest.raises(InputError, match=r"first line is over table.max_header_bytes \(65536"):
        list(iter_items(wide, TableConfig()))
    cols = tmp_path / "cols.csv"
    cols.write_text(",".join(f"c{i}" for i in range(2000)) + ",url\n" + "," * 2000 + "http://a\n")
    with pytest.raises(InputError, match=r"2001 columns, more than table.max_columns \(1000\)"):
        list(iter_items(cols, TableConfig()))
    (item,) = iter_items(cols, TableConfig(max_columns=3000))
    assert item.media_url == "http://a"
    jl = tmp_path / "keys.jsonl"
    jl.write_text(json.dumps({f"k{i}": i for i in range(1500)} | {"url": "http://a"}) + "\n")
    with pytest.raises(InputError, match="1501 keys, more than table.max_columns"):
        list(iter_items(jl, TableConfig()))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfvideoid,contentUrl\n7,http://a\n")
    assert [i.clip_id for i in iter_items(bom, TableConfig())] == ["7"]


def _hostile(path: Path, kind: str) -> None:
    """Hostile tables of at most ~50 MB."""
    with open(path, "wb") as fh:
        if kind == "wide_header":  # 100,000 columns
            fh.write(b",".join(b"c%d" % i for i in range(100_000)) + b",url\n")
            fh.write(b"x," * 100_000 + b"http://a.test/1.mp4\n")
        elif kind == "empty_header":  # 50 MB of empty fields as the header
            fh.write(b"," * (50 * MiB) + b"\n")
        elif kind == "empty_fields":  # 50 MB of empty fields in one row, then good rows
            fh.write(b"url,caption\nhttp://a.test/0.mp4,zero\n")
            fh.write(b"," * (50 * MiB) + b"\n")
            fh.write(b"http://a.test/2.mp4,two\n")
        elif kind == "open_quote":  # a quote never closed, then 50 MB of lines, then a row
            fh.write(b'url,caption\nhttp://a.test/0.mp4,zero\nhttp://a.test/1.mp4,"open\n')
            for _ in range(500):
                fh.write(b"q" * (100 * 1024) + b"\n")
            fh.write(b"http://a.test/2.mp4,two\n")
        elif kind == "long_jsonl":  # one 50 MB JSON line
            fh.write(b'{"url": "http://a.test/0.mp4"}\n{"url": "http://a.test/1.mp4", "caption": "')
            fh.write(b"c" * (50 * MiB) + b'"}\n')


_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a regression fails fast
    from webvid.crawl.config import CrawlConfig, OutputConfig
    from webvid.crawl.run import run
    from webvid.errors import InputError
    cfg = CrawlConfig(source=sys.argv[1], dry_run=True, output=OutputConfig(fsync_media=False))
    try:
        s = run(cfg, out=sys.argv[2])
        result = {"by_reason": s.by_reason, "attempted": s.attempted}
    except InputError as exc:
        result = {"error": str(exc)}
    status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
    print(json.dumps({**result, "peak_rss_mb": int(status) / 1024}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("kind", "expect"),
    [
        ("wide_header", "max_header_bytes"),
        ("empty_header", "max_header_bytes"),
        ("empty_fields", {"bad_row": 1}),
        ("open_quote", {"bad_row": 1}),
        ("long_jsonl", {"bad_row": 1}),
    ],
)
def test_hostile_tables_stay_under_300_mb(tmp_path: Path, kind: str, expect: Any) -> None:
    table = tmp_path / ("t.jsonl" if kind.endswith("jsonl") else "t.csv")
    _hostile(table, kind)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(table), str(tmp_path / "out")],
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        table.unlink()
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if isinstance(expect, str):
        assert expect in result.get("error", ""), result
    else:
        assert result.get("by_reason") == expect, result
    assert result["peak_rss_mb"] < 300, result


# -- id rules: float, NaN, binary ------------------------------------------------------------


def test_parquet_float_nan_and_binary_cells(tmp_path: Path) -> None:
    urls = [f"http://x.test/{i}.mp4".encode() for i in range(7)]
    table = pa.table(
        {
            "id": pa.array([1.0, math.nan, 3.0, None, math.inf, 2.5, 7.0]),
            "url": pa.array(urls, pa.binary()),
            "caption": pa.array(
                [b"one", b"two", b"three", b"four", b"five", b"six", b"bad \xff"], pa.binary()
            ),
            "thumb": pa.array([b"\x89PNG\xff\x00"] * 6 + [None], pa.binary()),
            "score": pa.array([0.5, math.nan, 1.0, 1.0, 1.0, 1.0, 1.0]),
            # a string column whose bytes are not UTF-8: must not fail the batch
            "note": pa.array([b"ok", b"\xfe"] + [b"ok"] * 5, pa.binary()).view(pa.string()),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    got = list(iter_items(path, TableConfig()))
    url_id = [contract.clip_id(url=u.decode()) for u in urls]
    assert [i.clip_id for i in got[:6]] == [
        "1",
        url_id[1],  # NaN, None and inf ids are missing: the id comes from the URL
        "3",
        url_id[3],
        url_id[4],
        contract.clip_id(source_id="2.5"),
    ]
    assert [i.source_id for i in got[:6]] == ["1", None, "3", None, None, "2.5"]
    assert [i.caption for i in got[:6]] == ["one", "two", "three", "four", "five", "six"]
    assert got[0].media_url == "http://x.test/0.mp4"
    assert got[0].extra == {"score": 0.5, "note": "ok"}  # binary thumbnail left out
    assert got[1].extra is None  # NaN score and non-UTF-8 note left out
    assert got[6].failed is not None and got[6].failed.reason == "bad_row"
    assert got[6].failed.message.startswith("row 6: ")

    out = tmp_path / "out"
    summary = run(_config(path), out=out)
    assert summary.by_reason == {"bad_row": 1} and summary.duplicates == 0
    records = {r["source_index"]: r for r in _records(out)}
    assert len(records) == 7
    assert records[0]["caption"] == "one" and records[0]["media_url"] == "http://x.test/0.mp4"
    assert not any(str(r["caption"]).startswith("b'") for r in records.values())
    assert json.loads(records[0]["extra_json"]) == {"score": 0.5, "note": "ok"}


def test_id_rules_for_jsonl_and_csv(tmp_path: Path) -> None:
    jl = tmp_path / "t.jsonl"
    jl.write_text(
        "\n".join(
            [
                '{"id": 1.0, "url": "http://x.test/a"}',
                '{"id": NaN, "url": "http://x.test/b"}',
                '{"id": null, "url": "http://x.test/c"}',
                '{"id": 12345678901234567890, "url": "http://x.test/d"}',
            ]
        )
        + "\n"
    )
    ids = [i.clip_id for i in iter_items(jl, TableConfig())]
    by_url = [contract.clip_id(url=f"http://x.test/{c}") for c in "bc"]
    assert ids == ["1", *by_url, "12345678901234567890"]
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("id,url\n1.0,http://x.test/a\n,http://x.test/b\n")
    ids = [i.clip_id for i in iter_items(csv_path, TableConfig())]
    # CSV cells are text, taken as written: "1.0" is not the number 1
    assert ids == [contract.clip_id(source_id="1.0"), contract.clip_id(url="http://x.test/b")]


# -- a table given as a URL has a byte cap ---------------------------------------------------

SERVER_CAP = 50 * MiB  # the server stops after this, whatever the client does


class _TableServer:
    """Loopback server: ``/endless.csv`` (chunked rows, until SERVER_CAP), ``/declared.csv``
    (claims 10 GB, sends 64 KiB), ``/small.csv`` (a real table); counts the bytes it sent."""

    def __init__(self) -> None:
        self.sent = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _endless(self, req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/csv"})
        resp.enable_chunked_encoding()
        await resp.prepare(req)
        chunk = b"http://127.0.0.1:9/v.mp4,caption\n" * 2000
        await resp.write(b"url,caption\n")
        try:
            while self.sent < SERVER_CAP:
                await resp.write(chunk)
                self.sent += len(chunk)
        except (ConnectionError, RuntimeError):
            return resp
        await resp.write_eof()
        return resp

    async def _declared(self, req: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/csv", "Content-Length": str(10 * 10**9)}
        )
        await resp.prepare(req)
        await resp.write(b"url,caption\n" + b"x" * 65536)
        self.sent += 65548
        if req.transport:
            req.transport.close()
        return resp

    async def _slow(self, req: web.Request) -> web.StreamResponse:
        """100 rows, one every 20 ms: a 2-second body, each read well inside read_timeout_s."""
        resp = web.StreamResponse(headers={"Content-Type": "text/csv"})
        await resp.prepare(req)
        await resp.write(b"url,caption\n")
        for i in range(100):
            await asyncio.sleep(0.02)
            await resp.write(f"http://127.0.0.1:9/{i}.mp4,c{i}\n".encode())
        await resp.write_eof()
        return resp

    async def _small(self, _: web.Request) -> web.Response:
        rows = "".join(f"http://127.0.0.1:9/{i}.mp4,c{i}\n" for i in range(100))
        return web.Response(text="url,caption\n" + rows, content_type="text/csv")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/endless.csv", self._endless)
        app.router.add_get("/declared.csv", self._declared)
        app.router.add_get("/small.csv", self._small)
        app.router.add_get("/slow.csv", self._slow)
        app.router.add_get("/", self._small)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> _TableServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def table_server() -> Iterator[_TableServer]:
    with _TableServer() as server:
        yield server


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.timeout(60)
def test_endless_table_url_stops_at_max_table_bytes(tmp_path: Path, table_server) -> None:
    out = tmp_path / "out"
    cfg = _config(f"{table_server.url}/endless.csv", max_table_bytes=MiB)
    with pytest.raises(
        InputError, match=rf"table at .*/endless.csv exceeds --max-table-bytes {MiB}"
    ):
        run(cfg, out=out)
    assert _files(out / "sources") == []  # the partial download is gone
    assert table_server.sent < SERVER_CAP  # the crawler hung up; the server did not run out


@pytest.mark.timeout(60)
def test_declared_size_over_the_cap_is_refused_up_front(tmp_path: Path, table_server) -> None:
    out = tmp_path / "out"
    cfg = _config(f"{table_server.url}/declared.csv", max_table_bytes=MiB)
    with pytest.raises(InputError, match=r"exceeds --max-table-bytes .*Content-Length 10000000000"):
        run(cfg, out=out)
    assert _files(out / "sources") == []


@pytest.mark.timeout(60)
def test_table_url_under_the_cap_is_crawled(tmp_path: Path, table_server) -> None:
    out = tmp_path / "out"
    summary = run(_config(f"{table_server.url}/small.csv", max_table_bytes=MiB), out=out)
    assert summary.attempted == 100 and (out / "sources" / "small.csv").is_file()


@pytest.mark.timeout(60)
def test_table_url_has_its_own_deadline(tmp_path: Path, table_server) -> None:
    """A table is one long body: it gets table_timeout_s, not the per-clip total_timeout_s,
    and its own deadline still ends a download that runs past it."""
    url = f"{table_server.url}/slow.csv"
    net = NetConfig(retries=0, backoff_base_s=0.05, total_timeout_s=0.5, read_timeout_s=10.0)
    cfg = dataclasses.replace(_config(url, table_timeout_s=30.0), net=net)
    assert run(cfg, out=tmp_path / "a").attempted == 100
    cfg = dataclasses.replace(_config(url, table_timeout_s=0.5), net=net)
    with pytest.raises(InputError, match="cannot fetch the table .*timeout"):
        run(cfg, out=tmp_path / "b")


@pytest.mark.timeout(60)
def test_table_url_ending_in_dot_dot_lands_in_sources(tmp_path: Path, table_server) -> None:
    out = tmp_path / "out"
    cfg = _config(f"{table_server.url}/x/..", mode="list", table=TableConfig(format="csv"))
    assert run(cfg, out=out).attempted == 100
    assert [p.name for p in _files(out / "sources")] == ["table"]


def test_cli_max_table_bytes(tmp_path: Path, capsys, table_server) -> None:
    from webvid.cli import main

    def cli(*args: str) -> int:
        try:
            main(list(args))
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    url = f"{table_server.url}/endless.csv"
    out = str(tmp_path / "out")
    assert cli("-q", "crawl", url, "-o", out, "--allow-private", "--max-table-bytes", "1MB") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "exceeds --max-table-bytes 1000000" in err and "Traceback" not in err
    assert cli("-q", "crawl", url, "-o", out, "--max-table-bytes", "lots") == 2
    assert "--max-table-bytes: not a size: 'lots'" in capsys.readouterr().err
