"""Takedown lists (``webvid.exclude``): each identifier's kind from its shape, CSV by header,
takedown logs as lists, and a clear error naming the line for anything else."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from webvid import contract, io
from webvid.errors import InputError
from webvid.exclude import Entry, ExcludeSet, logs_for, parse_identifier, read_exclude, read_list

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("tdclip01", ("clip_id", "tdclip01")),
        ("1066649851", ("clip_id", "1066649851")),  # a WebVid videoid
        ("  padded-id_2  ", ("clip_id", "padded-id_2")),
        ("https://cdn.example/v/1.mp4?sig=a,b", ("url", "https://cdn.example/v/1.mp4?sig=a,b")),
        ("HTTP://Example.com/clip/7", ("url", "HTTP://Example.com/clip/7")),  # kept as written
        (SHA.upper(), ("sha256", SHA)),
        (f"sha256:{SHA}", ("sha256", SHA)),
        ("url:https://x.example/a", ("url", "https://x.example/a")),
        ("id:000120005", ("clip_id", "000120005")),
        ("key:000120005", ("key", "000120005")),
        ("clip_id:abc", ("clip_id", "abc")),
        # not identifiers
        ("key:12", None),  # a key has 9 digits
        ("url:abc", None),  # the kind and the shape disagree
        ("sha256:xyz", None),
        ("ftp://example.com/a.mp4", None),
        ("two words", None),
        ("../etc/passwd", None),
        ("a" * 97, None),  # longer than a clip id may be
    ],
)
def test_identifier_kinds(text: str, want: tuple[str, str] | None) -> None:
    assert parse_identifier(text) == want


def test_text_list_with_comments_blank_lines_and_a_headerless_csv(tmp_path: Path) -> None:
    p = tmp_path / "l.txt"
    p.write_text(
        "\ufeff# request 42\n\ntdclip01\n  # indented comment\n"
        "https://a.example/m.mp4\nclip7,asked by the owner\n"
    )
    assert read_list(p) == [
        Entry("clip_id", "tdclip01", 3),
        Entry("url", "https://a.example/m.mp4", 5),
        Entry("clip_id", "clip7", 6),
    ]


def test_csv_by_header(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text(f"videoid,contentUrl,sha256,reason\n42,https://a/b.mp4,,x\n,,{SHA},y\n")
    assert read_list(p) == [
        Entry("clip_id", "42", 2),
        Entry("url", "https://a/b.mp4", 2),
        Entry("sha256", SHA, 3),
    ]
    p.write_text("clip_id,reason\nnot an id,x\n")
    with pytest.raises(InputError, match=r"l\.csv:2: 'not an id' is not a valid clip_id"):
        read_list(p)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"ok1\nnot an id\n", r"l\.txt:2: 'not an id' is not a clip id"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_bad_lists_are_errors_naming_the_line(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "l.txt"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match):
        read_list(p)
    with pytest.raises(InputError, match="not found"):
        read_list(tmp_path / "missing.txt")


def test_a_takedown_log_is_a_list_and_applies_below_its_folder(tmp_path: Path) -> None:
    row = {
        "takedown_id": "t",
        "at": dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
        "kind": "clip_id",
        "identifier": "c1",
        "matched": "clip_id",
        "clip_id": "c1",
        "source_id": "1066649851",
        "url": "https://a/c1.mp4",
        "page_url": "https://a/clip/c1",
        "sha256": SHA,
        "source_sha256": "cd" * 32,
    }
    log = tmp_path / "data" / contract.TAKEDOWNS_NAME
    io.write_parquet(log, contract.rows_to_table([row], contract.TAKEDOWN_SCHEMA))
    excl = ExcludeSet.of(read_exclude(log))
    assert excl.clip_ids == {"c1", "1066649851"} and excl.sha256s == {SHA, "cd" * 32}
    assert excl.urls == {"https://a/c1.mp4", "https://a/clip/c1"}
    assert excl.match(source_id="1066649851") == ("clip_id", "1066649851")
    assert excl.match(urls=(None, "https://a/clip/c1")) == ("url", "https://a/clip/c1")
    assert excl.match(clip_id="c2", sha256s=[SHA.upper()]) == ("sha256", SHA)
    assert excl.match(clip_id="c2", urls=["https://a/other"]) is None
    assert excl.match_row({"key": "000000001", "page_url": "https://a/clip/c1"}) == (
        "page_url",
        "https://a/clip/c1",
    )
    deep = tmp_path / "data" / "crawl" / "videos"
    deep.mkdir(parents=True)
    assert logs_for(deep) == [log] and logs_for(tmp_path) == []
