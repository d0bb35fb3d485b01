"""`webvid crawl` through the real CLI entry point: one-line errors, summary, options."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from webvid.cli import main
from webvid.cli.crawl import parse_size
from webvid.errors import ConfigError


def cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "error: table not found:"),
        ("t.xlsx", "x", "unknown table format .xlsx"),
        ("t.csv", "a,b,c\n1,2,3\n", "no URL column (found columns: a, b, c)"),
    ],
)
def test_one_line_errors(
    tmp_path: Path, capsys, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code = cli("-q", "crawl", str(path), "-o", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert message in " ".join(err.split())
    assert (
        err.count("error:") == 1 and "Traceback" not in err
    )  # one message (rich wraps it at 80 cols)


def test_bad_override_and_recipe(tmp_path: Path, capsys) -> None:
    table = tmp_path / "t.csv"
    table.write_text("url\nhttp://127.0.0.1:9/a.mp4\n")
    assert cli("crawl", str(table), "-o", str(tmp_path / "o"), "--set", "polite.nope=1") == 2
    assert "unknown key" in capsys.readouterr().err
    assert cli("crawl", str(tmp_path / "none.toml"), "-o", str(tmp_path / "o")) == 2
    assert "recipe not found" in capsys.readouterr().err


def test_crawl_prints_summary(tmp_path: Path, capsys, site) -> None:
    table = tmp_path / "t.csv"
    table.write_text(
        "id,url,caption\n" + "".join(f"c{i},{site.url}/v/c{i}.mp4,cap {i}\n" for i in range(5))
    )
    out = tmp_path / "out"
    code = cli(
        "crawl",
        str(table),
        "-o",
        str(out),
        "--allow-private",
        "--limit",
        "3",
        "--max-bytes",
        "1MB",
        "--per-host-rps",
        "100",
        "--url-col",
        "url",
        "--caption-col",
        "caption",
        "--id-col",
        "id",
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "success" in text and "3 items" in text
    rows = [r for p in (out / "records").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    assert sorted(r["clip_id"] for r in rows) == ["c0", "c1", "c2"]
    code = cli(
        "-q", "crawl", str(table), "-o", str(tmp_path / "dry"), "--dry-run", "--allow-private"
    )
    assert code == 0 and capsys.readouterr().out == ""
    rows = [
        r
        for p in (tmp_path / "dry" / "records").glob("*.parquet")
        for r in pq.read_table(p).to_pylist()
    ]
    assert {r["status"] for r in rows} == {"discovered"} and len(rows) == 5


def test_parse_size() -> None:
    assert parse_size("200MB") == 200_000_000
    assert parse_size("64MiB") == 64 * 2**20
    assert parse_size("1000") == 1000
    assert parse_size("1.5k") == 1500
    with pytest.raises(ConfigError):
        parse_size("lots")
