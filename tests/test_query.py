"""`webvid query`: DuckDB views over a data root, read-only, streamed output, clear errors."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from webvid import contract
from webvid import io as wio
from webvid import query as q

CliRunner = Callable[[list[str]], tuple[int, str, str]]  # the run_cli fixture (conftest.py)


def _crawl_dir(root: Path, n: int) -> None:
    rows = []
    for i in range(n):
        ok = i % 4 != 3
        rows.append(
            {
                "clip_id": f"c{i}",
                "source": "t.csv",
                "source_index": i,
                "caption": f"clip number {i}",
                "status": "success" if ok else "failed_to_download",
                "reason": None if ok else "http_404",
                "bytes": 1000 + i if ok else None,
                "keywords": ["a", "b"],
            }
        )
    half = n // 2
    wio.write_parquet(
        root / "crawl/records/part-00000.parquet",
        contract.rows_to_table(rows[:half], contract.CRAWL_RECORD_SCHEMA),
    )
    wio.write_parquet(
        root / "crawl/records/part-00001.parquet",
        contract.rows_to_table(rows[half:], contract.CRAWL_RECORD_SCHEMA),
    )


def _shard_dir(root: Path, kept: list[int], rejected: list[int]) -> None:
    samples = [
        {
            "key": contract.sample_key(0, j),
            "clip_id": f"c{i}",
            "caption": f"clip number {i}",
            "status": "success",
            "shard": "00000",
            "split": "train",
            "media_kind": "video",
            "ext": "mp4",
            "bytes": 500,
        }
        for j, i in enumerate(kept)
    ]
    wio.write_parquet(
        root / "shards/train/00000.parquet", contract.rows_to_table(samples, contract.SAMPLE_SCHEMA)
    )
    verdicts = [
        {"clip_id": f"c{i}", "kept": True, "key": contract.sample_key(0, j)}
        for j, i in enumerate(kept)
    ]
    verdicts += [
        {"clip_id": f"c{i}", "kept": False, "reason": "still", "reasons": ["still"]}
        for i in rejected
    ]
    wio.write_parquet(
        root / "shards/verdicts.parquet", contract.rows_to_table(verdicts, contract.VERDICT_SCHEMA)
    )
    index = [
        {
            "shard": "00000",
            "split": "train",
            "media_kind": "video",
            "count": len(kept),
            "tar_bytes": 4096,
            "media_bytes": 500 * len(kept),
            "tar_sha256": "0" * 64,
        }
    ]
    wio.write_parquet(
        root / "shards/index.parquet", contract.rows_to_table(index, contract.SHARD_INDEX_SCHEMA)
    )


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    _crawl_dir(tmp_path, 40)
    ok = [i for i in range(40) if i % 4 != 3]
    _shard_dir(tmp_path, kept=ok[:20], rejected=ok[20:])
    pq.write_table(
        pa.table({"key": ["000000000"], "score": [0.5]}), tmp_path / "runs" / "emb.parquet"
    ) if ((tmp_path / "runs").mkdir() or True) else None
    return tmp_path


def test_views_counts_and_joins(root: Path) -> None:
    con = q.connect(root)
    assert con.execute("SELECT count(*) FROM crawl").fetchone() == (40,)
    assert con.execute("SELECT count(*) FROM crawl WHERE status = 'success'").fetchone() == (30,)
    assert con.execute("SELECT count(*) FROM samples").fetchone() == (20,)
    assert con.execute("SELECT sum(count) FROM shards").fetchone() == (20,)
    assert con.execute("SELECT count(*) FROM emb").fetchone() == (1,)
    joined = con.execute(
        "SELECT count(*) FROM crawl c JOIN verdicts v USING (clip_id) JOIN samples s USING (clip_id) WHERE v.kept"
    ).fetchone()
    assert joined == (20,)
    rejected = con.execute(
        "SELECT v.reason, count(*) FROM verdicts v JOIN crawl c USING (clip_id) WHERE NOT v.kept GROUP BY 1"
    ).fetchall()
    assert rejected == [("still", 10)]
    files = {r[0] for r in con.execute("SELECT DISTINCT filename FROM crawl").fetchall()}
    assert len(files) == 2


def test_missing_views_are_empty_and_typed(tmp_path: Path) -> None:
    _crawl_dir(tmp_path, 4)
    con = q.connect(tmp_path)
    assert con.execute("SELECT count(*) FROM samples").fetchone() == (0,)
    cols = dict(q.describe(con))["verdicts"]
    assert ("kept", "BOOLEAN") in cols and ("reasons", "VARCHAR[]") in cols


def test_schema_listing(root: Path, capsys: pytest.CaptureFixture[str], run_cli: CliRunner) -> None:
    code, out, _ = run_cli(["query", "--root", str(root), "--schema"])
    assert code == 0
    for view in ("crawl", "samples", "shards", "verdicts", "emb", "clip_id", "filename"):
        assert view in out


def test_table_output_truncates_and_counts(
    root: Path, capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    code, out, _ = run_cli(
        [
            "query",
            "--root",
            str(root),
            "--limit",
            "5",
            "SELECT clip_id, caption FROM crawl ORDER BY source_index",
        ]
    )
    assert code == 0
    assert "c0" in out and "c4" in out and "c5 " not in out
    assert "35 more rows not shown (40 in all)" in out


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_file_outputs(
    root: Path, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    out_file = tmp_path / f"out.{fmt}"
    code, _, _ = run_cli(
        [
            "query",
            "--root",
            str(root),
            "--format",
            fmt,
            "-o",
            str(out_file),
            "SELECT clip_id, bytes, keywords FROM crawl ORDER BY source_index",
        ]
    )
    assert code == 0
    if fmt == "csv":
        rows = list(csv.DictReader(out_file.open()))
        assert len(rows) == 40 and rows[0]["clip_id"] == "c0"
    elif fmt == "json":
        rows = [json.loads(line) for line in out_file.read_text().splitlines()]
        assert len(rows) == 40 and rows[1] == {
            "clip_id": "c1",
            "bytes": 1001,
            "keywords": ["a", "b"],
        }
    else:
        t = pq.read_table(out_file)
        assert t.num_rows == 40 and t.column_names == ["clip_id", "bytes", "keywords"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []


def test_csv_to_stdout_streams_many_rows(
    root: Path, capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    code, out, _ = run_cli(
        ["query", "--root", str(root), "--format", "csv", "SELECT range AS i FROM range(200000)"]
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == '"i"' and len(lines) == 200_001 and lines[-1] == "199999"


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELEC 1", "bad SQL"),
        ("SELECT nope FROM crawl", "query failed"),
        ("INSERT INTO crawl VALUES (1)", "read-only: INSERT"),
        ("CREATE TABLE t AS SELECT 1", "read-only: CREATE"),
        ("COPY (SELECT 1) TO 'x.csv'", "read-only: COPY"),
        ("ATTACH 'x.db' AS x", "read-only: ATTACH"),
        ("DROP VIEW crawl", "read-only: DROP"),
        ("SET threads = 1", "read-only: SET"),
        ("SELECT 1; SELECT 2", "exactly one SQL statement"),
    ],
)
def test_bad_sql_and_writes_are_one_line_errors(
    root: Path, sql: str, message: str, capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    code, out, err = run_cli(["query", "--root", str(root), sql])
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not (root / "x.csv").exists() and not (root / "x.db").exists()


def test_root_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    code, _, err = run_cli(["query", "--root", str(tmp_path / "missing"), "SELECT 1"])
    assert code == 2 and "data root not found" in err
    code, _, err = run_cli(["query", "--root", str(tmp_path), "SELECT 1"])
    assert code == 2 and "no Parquet files" in err
    (tmp_path / "f").write_text("x")
    code, _, err = run_cli(["query", "--root", str(tmp_path / "f"), "SELECT 1"])
    assert code == 2 and "not a folder" in err


def test_parquet_needs_output_and_sql_needed(
    root: Path, capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    code, _, err = run_cli(["query", "--root", str(root), "--format", "parquet", "SELECT 1"])
    assert code == 2 and "needs -o FILE" in err
    code, _, err = run_cli(["query", "--root", str(root)])
    assert code == 2 and "give a SQL statement" in err


def test_stale_temp_parquet_is_ignored(root: Path) -> None:
    (root / "crawl/records/.tmp-part-00002.parquet.abc").write_bytes(b"partial")
    con = q.connect(root)
    assert con.execute("SELECT count(*) FROM crawl").fetchone() == (40,)


def test_views_go_by_schema_not_file_name(root: Path) -> None:
    """An embedding index called index.parquet (as `webvid embed` writes in a run dir) is not a
    shard index: the shards view keeps its own rows and columns; the index gets its own view."""
    table = pa.table(
        {
            "key": ["000000000", "000000001"],
            "caption": ["a", "b"],
            "source": ["shards/train/00000.tar"] * 2,
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array([1.0, 0.0, 0.0, 1.0], pa.float32()), 2
            ),
        }
    ).replace_schema_metadata({contract.EMBEDDING_INDEX_META_KEY: b'{"dim": 2}'})
    wio.write_parquet(root / "run" / contract.SHARD_INDEX_NAME, table)
    # a shard index under another name is still a shard index
    extra = pq.read_table(root / "shards" / contract.SHARD_INDEX_NAME).to_pylist()
    extra[0]["shard"] = "00001"
    wio.write_parquet(
        root / "more" / "shard-index.parquet",
        contract.rows_to_table(extra, contract.SHARD_INDEX_SCHEMA),
    )
    con = q.open_readonly(root)
    rows = con.execute("SELECT shard, filename FROM shards ORDER BY shard").fetchall()
    assert [(s, Path(f).relative_to(root).as_posix()) for s, f in rows] == [
        ("00000", "shards/index.parquet"),
        ("00001", "more/shard-index.parquet"),
    ]
    views = dict(q.describe(con))
    assert [c for c, _ in views["shards"]] == [*contract.SHARD_INDEX_SCHEMA.names, "filename"]
    assert con.execute("SELECT count(*), min(caption) FROM embeddings").fetchone() == (2, "a")
    assert q.classify(root / "run" / contract.SHARD_INDEX_NAME) == q.EMBEDDINGS_VIEW
    assert q.classify(root / "shards" / contract.SHARD_INDEX_NAME) == "shards"
