"""`webvid query` is read-only whatever the SQL: no statement form writes a file or reads outside --root.

Two lines are tested separately: the DuckDB sandbox of :func:`webvid.query.open_readonly`
alone (statements executed directly, no statement-type check), and the whole command (the
statement-type check in front of the sandbox). Every write attempt names a target path that
must still not exist afterwards; every read attempt names a file whose content must not show.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from webvid import query as q

CliRunner = Callable[[list[str]], tuple[int, str, str]]  # the run_cli fixture (conftest.py)

SECRET = "top-secret-6f1c"
PWNED = "pwned-b2a9"


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    root = tmp_path / "root"
    (root / "crawl/records").mkdir(parents=True)
    pq.write_table(
        pa.table({"clip_id": ["a", "b"], "caption": ["red", "blue"]}),
        root / "crawl/records/part-00000.parquet",
    )
    (root / "notes.txt").write_text(SECRET + " inside root but not a view\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    pq.write_table(pa.table({"s": [SECRET]}), outside / "secret.parquet")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # relative targets (and DuckDB's ':memory:' paths) land here
    return {
        "root": root,
        "outside": outside,
        "out": outside / "written.txt",
        "in_root": root / "written.txt",
        "parquet": root / "crawl/records/part-00000.parquet",
        "cwd": work,
    }


def _fill(sql: str, env: dict[str, Path]) -> str:
    return sql.format(
        out=env["out"],
        in_root=env["in_root"],
        parquet=env["parquet"],
        outside=env["outside"],
        root=env["root"],
        pwned=PWNED,
    )


#: Statements that try to write a file, read outside the views, reach the network, load
#: code or change the sandbox. Each must fail both at the sandbox alone and via the CLI.
SANDBOX_ATTACKS = [
    "EXPLAIN ANALYZE COPY (SELECT '{pwned}') TO '{out}' (HEADER false, QUOTE '')",
    "EXPLAIN ANALYZE COPY (SELECT '{pwned}') TO '{in_root}' (FORMAT csv, USE_TMP_FILE false)",
    "EXPLAIN ANALYZE COPY (SELECT '{pwned}') TO '{parquet}' (FORMAT csv, USE_TMP_FILE false)",
    "EXPLAIN ANALYZE COPY (SELECT '{pwned}') TO ':memory:' (FORMAT csv, USE_TMP_FILE false)",
    "EXPLAIN ANALYZE COPY (SELECT '{pwned}') TO 'rel.txt' (FORMAT csv)",
    "COPY (SELECT '{pwned}') TO '{out}' (HEADER false)",
    "COPY (SELECT * FROM crawl) TO '{in_root}' (FORMAT parquet)",
    "EXPORT DATABASE '{outside}/export'",
    "ATTACH '{outside}/x.db' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "LOAD '{outside}/evil.duckdb_extension'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_text('{outside}/secret.txt')",
    "SELECT * FROM read_blob('{outside}/secret.txt')",
    "SELECT * FROM read_text('{root}/notes.txt')",
    "SELECT * FROM read_text('{root}/crawl/records/../../notes.txt')",
    "SELECT * FROM read_parquet('{outside}/secret.parquet')",
    "SELECT * FROM read_parquet('{parquet}')",
    "SELECT * FROM parquet_metadata('{outside}/secret.parquet')",
    "SELECT * FROM sniff_csv('{outside}/secret.txt')",
    "SELECT * FROM read_json('{outside}/secret.txt')",
    "SELECT * FROM glob('{outside}/*')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_text('file://{outside}/secret.txt')",
    "SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')",
    "SELECT * FROM query('COPY (SELECT 1) TO ''{out}''')",
    "SELECT * FROM duckdb_extensions()",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET lock_configuration = false",
    "RESET lock_configuration",
    "SET disabled_filesystems = ''",
    "SET allowed_directories = ['/']",
    "SET profiling_output = '{out}'",
    "PRAGMA enable_profiling = 'json'",
    "CALL enable_logging()",
    "CREATE PERSISTENT SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')",
    "SELECT * FROM secret_table",  # a Python variable of the caller: no replacement scans
]

#: Statements the sandbox alone would run (they touch no file: in-memory catalog only) but
#: that are not queries; the statement-type check refuses them.
CHECK_ONLY_ATTACKS = [
    "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    "EXPLAIN ANALYZE DROP VIEW crawl",
    "EXPLAIN ANALYZE SET threads = 1",
    "EXPLAIN ANALYZE INSTALL httpfs",
    "EXPLAIN ANALYZE LOAD httpfs",
    "EXPLAIN ANALYZE ATTACH '{outside}/x.db'",
    "EXPLAIN /* SELECT */ ANALYZE COPY (SELECT '{pwned}') TO '{out}'",
    "EXPLAIN (FORMAT json) COPY (SELECT '{pwned}') TO '{out}'",
    "EXPLAIN EXPLAIN ANALYZE COPY (SELECT '{pwned}') TO '{out}'",
    "PRAGMA version",
    "CALL pragma_version()",
    "SELECT 1; COPY (SELECT '{pwned}') TO '{out}'",
    "SELECT 1 /* ; */; COPY (SELECT '{pwned}') TO '{out}'",
    "/* SELECT */ COPY (SELECT '{pwned}') TO '{out}'",
    "-- SELECT\nCOPY (SELECT '{pwned}') TO '{out}'",
    "DETACH memory",
    "USE system",
    "CHECKPOINT",
]


def _assert_nothing_written(env: dict[str, Path], parquet_bytes: bytes) -> None:
    assert not env["out"].exists()
    assert not env["in_root"].exists()
    assert not (env["outside"] / "export").exists()
    assert not (env["outside"] / "x.db").exists()
    assert sorted(p.name for p in env["cwd"].iterdir()) == []
    assert env["parquet"].read_bytes() == parquet_bytes


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sql", SANDBOX_ATTACKS)
def test_sandbox_alone_refuses(sql: str, env: dict[str, Path]) -> None:
    parquet_bytes = env["parquet"].read_bytes()
    secret_table = pa.table({"s": [SECRET]})  # noqa: F841  (what a replacement scan would find)
    con = q.open_readonly(env["root"])
    with pytest.raises(duckdb.Error) as info:
        con.execute(_fill(sql, env)).fetchall()
    assert SECRET not in str(info.value)
    _assert_nothing_written(env, parquet_bytes)
    # the views still work after the refusal, and the settings did not move
    assert con.execute("SELECT count(*) FROM crawl").fetchone() == (2,)
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', 'allowed_paths', 'allowed_directories')"
        ).fetchall()
    )
    assert settings == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "allowed_paths": "[]",
        "allowed_directories": "[]",
    }


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sql", SANDBOX_ATTACKS + CHECK_ONLY_ATTACKS)
def test_cli_refuses_with_one_line(
    sql: str, env: dict[str, Path], capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    parquet_bytes = env["parquet"].read_bytes()
    code, out, err = run_cli(["query", "--root", str(env["root"]), "--", _fill(sql, env)])
    assert code == 2, (out, err)
    # one message (rich wraps it at the terminal width), no traceback
    assert err.startswith("error: ") and err.count("error:") == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
    assert any(word in err for word in ("read-only", "query failed", "bad SQL", "exactly one"))
    assert SECRET not in out + err and PWNED not in out
    _assert_nothing_written(env, parquet_bytes)


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
        "/* c */ EXPLAIN /* x */ ANALYZE COPY (SELECT 1) TO 'x'",
        "EXPLAIN (FORMAT json) COPY (SELECT 1) TO 'x'",
    ],
)
def test_explain_names_the_refused_inner_statement(sql: str, env: dict[str, Path]) -> None:
    con = q.open_readonly(env["root"])
    with pytest.raises(q.QueryError, match=r"read-only: EXPLAIN of a (CREATE|COPY) statement"):
        q.check_read_only(con, sql)


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELECT count(*) FROM crawl", [(2,)]),
        ("FROM crawl SELECT clip_id ORDER BY clip_id", [("a",), ("b",)]),
        ("WITH c AS (SELECT * FROM crawl) SELECT count(*) FROM c", [(2,)]),
        ("SELECT count(*) FROM query_table('crawl')", [(2,)]),
        ("SELECT count(*) FROM crawl WHERE filename LIKE '%part-00000.parquet'", [(2,)]),
        ("SELECT count(*) FROM (SUMMARIZE crawl)", [(3,)]),
        ("SELECT count(*) FROM (DESCRIBE crawl)", [(3,)]),
    ],
)
def test_reads_over_the_views_still_work(
    sql: str, expected: list[tuple], env: dict[str, Path]
) -> None:
    con = q.open_readonly(env["root"])
    assert q.check_read_only(con, sql)
    assert con.execute(sql).fetchall() == expected


@pytest.mark.parametrize(
    "sql", ["EXPLAIN SELECT * FROM crawl", "EXPLAIN ANALYZE SELECT count(*) FROM crawl"]
)
def test_explain_of_a_select_runs(
    sql: str, env: dict[str, Path], capsys: pytest.CaptureFixture[str], run_cli: CliRunner
) -> None:
    code, _, err = run_cli(["query", "--root", str(env["root"]), sql])
    assert code == 0, err


def test_filename_column_and_union_by_name(env: dict[str, Path]) -> None:
    pq.write_table(
        pa.table({"clip_id": ["c"], "extra": [7]}), env["root"] / "crawl/records/part-00001.parquet"
    )
    con = q.open_readonly(env["root"])
    rows = con.execute("SELECT clip_id, extra, filename FROM crawl ORDER BY clip_id").fetchall()
    p0 = str(env["root"] / "crawl/records/part-00000.parquet")
    p1 = str(env["root"] / "crawl/records/part-00001.parquet")
    assert rows == [("a", None, p0), ("b", None, p0), ("c", 7, p1)]


def test_types_are_unified_across_files(env: dict[str, Path]) -> None:
    a, b = env["root"] / "runs/a", env["root"] / "runs/b"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    dict_col = pa.array(["x", "y"]).dictionary_encode()
    pq.write_table(pa.table({"k": dict_col, "n": pa.array([1, 2], pa.int32())}), a / "emb.parquet")
    pq.write_table(pa.table({"k": ["z"], "n": pa.array(["three"])}), b / "emb.parquet")
    con = q.open_readonly(env["root"])
    assert dict(q.describe(con))["emb"][:2] == [("k", "VARCHAR"), ("n", "VARCHAR")]
    assert con.execute("SELECT k, n FROM emb ORDER BY k").fetchall() == [
        ("x", "1"),
        ("y", "2"),
        ("z", "three"),
    ]


def test_a_broken_parquet_file_is_a_one_line_error(env: dict[str, Path]) -> None:
    (env["root"] / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(q.QueryError, match="cannot read the 'junk' files"):
        q.open_readonly(env["root"])
