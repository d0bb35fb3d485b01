"""``webvid embed`` checks its --index path before embedding anything; ``webvid search`` refuses
an empty query and ``-k 0`` as usage errors (exit 2), before any model is loaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import webvid.retrieval.search as retrieval_search


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stands in for the embedding work: records the output it was asked to write."""
    calls: list[str] = []

    def fake_build_index(checkpoint, data, out, **kw):
        calls.append(str(out))
        return {"clips": 0, "dim": 8, "path": str(out), "broken": {}}

    monkeypatch.setattr(retrieval_search, "build_index", fake_build_index)
    monkeypatch.setattr(retrieval_search, "search", lambda *a, **k: pytest.fail("searched"))
    return calls


def test_embed_checks_the_index_path_first(run_cli, spy, tmp_path: Path) -> None:
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"never read: the checks come first")
    base = ["embed", str(ckpt), str(tmp_path)]
    cases = [
        (tmp_path / "missing" / "i.parquet", "the folder"),
        (tmp_path, "is a directory"),  # click.Path(dir_okay=False)
    ]
    for index, message in cases:
        code, _, err = run_cli([*base, "--index", str(index)])
        assert code == 2 and message in err, err
    existing = tmp_path / "old.parquet"
    existing.write_bytes(b"an earlier index")
    code, _, err = run_cli([*base, "--index", str(existing)])
    assert code == 2 and "exists; add --force" in " ".join(err.split())
    assert spy == []  # nothing was embedded for any of them
    code, out, err = run_cli([*base, "--index", str(existing), "--force"])
    assert code == 0, err
    code, out, err = run_cli([*base, "--index", str(tmp_path / "new.parquet")])
    assert code == 0, err
    assert spy == [str(existing), str(tmp_path / "new.parquet")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_embed_refuses_a_folder_it_cannot_write(run_cli, spy, tmp_path: Path) -> None:
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli(
            ["embed", str(ckpt), str(tmp_path), "--index", str(locked / "i.parquet")]
        )
    finally:
        locked.chmod(0o700)
    assert code == 2 and "cannot write in" in err and spy == []


def test_search_refuses_an_empty_query_and_k_zero(run_cli, spy, tmp_path: Path) -> None:
    index = tmp_path / "i.parquet"
    index.write_bytes(b"never read")
    for args, message in (
        (["", "--index", str(index)], "QUERY is empty"),
        (["  ", " ", "--index", str(index)], "QUERY is empty"),
        (["a dog", "--index", str(index), "-k", "0"], "0 is not in the range x>=1"),
    ):
        code, _, err = run_cli(["search", *args])
        assert code == 2 and message in err, err
