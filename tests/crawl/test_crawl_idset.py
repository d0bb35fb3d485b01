"""IdSet: the crawl's compact set of clip ids (done by earlier runs, seen in this table)."""

from __future__ import annotations

import pytest

from webvid.crawl.idset import IdSet, id_key


def test_membership_across_merges_and_the_bulk_constructor() -> None:
    ids = [f"clip{i}" for i in range(5000)]
    s = IdSet(merge_at=64)  # many merges into the sorted array
    for cid in ids:
        s.add(cid)
        s.add(cid)  # a repeat changes nothing
    assert len(s) == 5000 and s
    assert all(cid in s for cid in ids)
    assert not any(f"other{i}" in s for i in range(5000))
    bulk = IdSet(ids + ids[:10])
    assert len(bulk) == 5000 and all(cid in bulk for cid in ids[::7])
    assert "clip5000" not in bulk and 42 not in bulk and not IdSet()
    with pytest.raises(TypeError, match="cannot list"):
        list(bulk)


def test_keys_are_stable_and_memory_is_about_eight_bytes_an_id() -> None:
    assert id_key("1066713") == id_key("1066713") != id_key("1066714")
    assert 0 <= id_key("") < 2**64 and id_key("é") != id_key("e")
    assert id_key("x" * 10) == hash("x" * 10) % 2**64  # the process's own string hash
    s = IdSet(f"{i:08d}" for i in range(200_000))
    assert s.nbytes == 8 * 200_000  # a Python set of these strings holds ~100 bytes each
    s.add("extra")
    assert "extra" in s and s.nbytes < 8 * 200_000 + 100


def test_add_says_whether_the_id_was_new() -> None:
    s = IdSet(["a"], merge_at=2)
    assert s.add("b") is True and s.add("b") is False and s.add("a") is False
    assert s.add("c") is True and len(s) == 3  # "b" and "c" merged into the array
