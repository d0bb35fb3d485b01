"""Table readers: every layout and format, gz, overrides, clear errors, batch streaming."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from webvid.crawl.config import TableConfig
from webvid.crawl.items import parse_duration
from webvid.crawl.sources import iter_items
from webvid.errors import InputError

WEBVID5 = "videoid,contentUrl,duration,page_dir,name\n1001,https://cdn.test/v/1001.mp4,PT00H00M17S,000001_000050,a red ball rolls left\n"
WEBVID6 = 'videoid,name,page_idx,page_dir,duration,contentUrl\n1002,"blue cube, slowly",7,000001_000050,PT00H01M02S,https://cdn.test/v/1002.mp4\n'


def items(path: Path, **kw: object) -> list:
    return list(iter_items(path, TableConfig(**kw)))  # type: ignore[arg-type]


def test_webvid_layouts(tmp_path: Path) -> None:
    (a,) = items(_w(tmp_path / "a.csv", WEBVID5))
    assert (a.clip_id, a.source_id, a.media_url, a.caption, a.duration_s) == (
        "1001",
        "1001",
        "https://cdn.test/v/1001.mp4",
        "a red ball rolls left",
        17.0,
    )
    assert a.extra == {"page_dir": "000001_000050", "duration": "PT00H00M17S"}
    (b,) = items(_w(tmp_path / "b.csv", WEBVID6))
    assert (b.caption, b.duration_s, b.extra["page_idx"]) == ("blue cube, slowly", 62.0, "7")


def test_cc3m_headerless_tsv_and_cc12m_order(tmp_path: Path) -> None:
    cc3m = 'a "quoted" bus station\thttp://img.test/1.jpg\nsecond\thttp://img.test/2\n'
    got = items(_w(tmp_path / "train.tsv", cc3m))
    assert [(i.caption, i.media_url) for i in got] == [
        ('a "quoted" bus station', "http://img.test/1.jpg"),
        ("second", "http://img.test/2"),
    ]
    assert got[0].clip_id.startswith("u") and got[0].source_index == 0 and got[1].source_index == 1
    cc12m = "http://img.test/3.jpg\tthird caption\n"
    (c,) = items(_w(tmp_path / "cc12m.tsv", cc12m))
    assert (c.media_url, c.caption) == ("http://img.test/3.jpg", "third caption")


def test_url_id_path_keeps_ids_when_the_host_moves(tmp_path: Path) -> None:
    """Default ids hash the whole URL; ``url_id="path"`` hashes path + query only."""
    a = _w(tmp_path / "a.tsv", "cat\thttp://127.0.0.1:4001/img/p1.jpg?s=2#frag\n")
    b = _w(tmp_path / "b.tsv", "cat\thttps://mirror.test/img/p1.jpg?s=2\n")
    c = _w(tmp_path / "c.tsv", "cat\thttp://127.0.0.1:4001/img/p1.jpg?s=3\n")
    ids = {name: items(path)[0].clip_id for name, path in (("a", a), ("b", b), ("c", c))}
    assert len(set(ids.values())) == 3
    by_path = {
        name: items(path, url_id="path")[0].clip_id for name, path in (("a", a), ("b", b), ("c", c))
    }
    assert by_path["a"] == by_path["b"] != by_path["c"]
    assert by_path["a"].startswith("u") and by_path["a"] != ids["a"]
    assert items(a, url_id="path")[0].media_url == "http://127.0.0.1:4001/img/p1.jpg?s=2#frag"


def test_gz_parquet_jsonl_and_overrides(tmp_path: Path) -> None:
    gz = tmp_path / "a.csv.gz"
    gz.write_bytes(gzip.compress(WEBVID5.encode()))
    assert items(gz)[0].clip_id == "1001"
    table = pa.table(
        {"URL": ["https://x.test/a.jpg"], "TEXT": ["laion style"], "similarity": [0.3]}
    )
    pq.write_table(table, tmp_path / "l.parquet")
    (p,) = items(tmp_path / "l.parquet")
    assert (p.media_url, p.caption, p.extra) == (
        "https://x.test/a.jpg",
        "laion style",
        {"similarity": 0.3},
    )
    pgz = tmp_path / "l.parquet.gz"
    pgz.write_bytes(gzip.compress((tmp_path / "l.parquet").read_bytes()))
    assert items(pgz)[0].caption == "laion style"
    jl = tmp_path / "j.jsonl.gz"
    jl.write_bytes(
        gzip.compress(b'{"link": "https://x.test/v.mp4", "alt": "hello", "key": "k1"}\nnot json\n')
    )
    (j,) = items(jl, url_col="link", caption_col="alt", id_col="key")
    assert (j.clip_id, j.caption) == ("k1", "hello")


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="table not found"):
        items(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="unknown table format .xlsx"):
        items(_w(tmp_path / "a.xlsx", "x"))
    with pytest.raises(InputError, match=r"no URL column \(found columns: a, b\)"):
        items(_w(tmp_path / "n.csv", "a,b\n1,2\n"))
    with pytest.raises(InputError, match="no column 'nope' for the URL"):
        items(_w(tmp_path / "o.csv", WEBVID5), url_col="nope")
    with pytest.raises(InputError, match="empty table"):
        items(_w(tmp_path / "e.csv", ""))


def test_streams_in_batches(tmp_path: Path) -> None:
    """A big table is read batch by batch: the first item arrives before the rest is parsed."""
    path = tmp_path / "big.csv"
    with open(path, "w") as fh:
        fh.write("url,caption\n")
        for i in range(200_000):
            fh.write(f"https://x.test/{i}.mp4,caption {i}\n")
    stats: dict[str, int] = {}
    it = iter_items(path, TableConfig(batch_rows=1000), stats)
    first = next(it)
    assert first.media_url == "https://x.test/0.mp4"
    # the generator holds one CSV block (1 MiB), not the 7 MB file
    frame = it.gi_frame  # type: ignore[attr-defined]
    assert frame is not None and len(frame.f_locals.get("rows", [])) < 50_000
    assert sum(1 for _ in it) == 199_999


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT00H00M17S", 17.0),
        ("PT4S", 4.0),
        ("PT1M30.5S", 90.5),
        ("P1DT1H", 90000.0),
        ("12.5", 12.5),
        ("", None),
        ("PT", None),
        ("soon", None),
        (None, None),
        (3, 3.0),
    ],
)
def test_durations(text: object, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def _w(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_jsonl_first_line_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 1 is not JSON"):
        items(_w(tmp_path / "x.jsonl", "oops\n" + json.dumps({"url": "http://a"}) + "\n"))
