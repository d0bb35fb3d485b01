"""``webvid query``'s table output in a narrow terminal: rows too wide for an 80-column grid are
shown one record per block (every column named, long values cut) with a hint to use
``--format csv``; narrow results stay a grid; cells are text, never rich markup."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

import webvid.cli.query as query_cli


@pytest.fixture
def root(tmp_path: Path) -> Path:
    cols = {f"column_{i:02d}": [f"value {i} of row {r}" for r in range(3)] for i in range(14)}
    cols["caption"] = ["a long caption " * 10, "[bold]not markup[/bold]", "short"]
    pq.write_table(pa.table(cols), tmp_path / "wide.parquet")
    return tmp_path


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr(query_cli, "console", Console(file=out, width=80, color_system=None))
    return out


def test_wide_rows_are_shown_one_record_per_block(root, screen, run_cli) -> None:
    code, _, err = run_cli(["query", "--root", str(root), "SELECT * FROM wide"])
    assert code == 0, err
    lines = screen.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert sum(line.startswith("── ") for line in lines) == 3  # one block per row
    for i in range(14):  # every column is named with its value
        assert any(f"column_{i:02d}  value {i} of row 0" in line for line in lines), i
    assert "[bold]not markup[/bold]" in screen.getvalue()
    hint = " ".join(screen.getvalue().split())
    assert re.search(r"1[56] columns do not fit in 80 columns", hint)  # (+ the view's filename)
    assert "--format csv" in hint
    assert "3 rows" in hint


def test_narrow_rows_stay_a_grid(root, screen, run_cli) -> None:
    code, _, err = run_cli(["query", "--root", str(root), "SELECT column_00, column_01 FROM wide"])
    assert code == 0, err
    text = screen.getvalue()
    assert "┃ column_00" in text and "value 1 of row 2" in text
    assert "do not fit" not in text and "── 1" not in text


def test_fits() -> None:
    assert query_cli.fits(["a", "b"], [["1", "2"]], 80)
    assert not query_cli.fits([f"c{i}" for i in range(10)], [["x" * 20] * 10], 80)
    assert query_cli.fits([f"c{i}" for i in range(6)], [["x" * 20] * 6], 80)
