"""The data contract: clip ids, keys, splits, schemas — and the doc kept in step with them."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from webvid import contract

DOC = Path(__file__).resolve().parents[1] / "docs" / "data-contract.md"


def _doc_sections() -> dict[str, list[tuple[str, str, str]]]:
    """Column tables of docs/data-contract.md: view name → [(column, type, nullable)]."""
    text = DOC.read_text(encoding="utf-8")
    sections: dict[str, list[tuple[str, str, str]]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^### `(\w+)`\s*$", line)
        if m:
            current = m.group(1)
            sections[current] = []
            continue
        if line.startswith("## "):
            current = None
        m = re.match(r"^\| `([^`]+)` \| `([^`]+)` \| (yes|no) \|", line)
        if current and m:
            sections[current].append(m.groups())
    return sections


@pytest.mark.parametrize("view", sorted(contract.SCHEMAS))
def test_doc_lists_every_column_with_its_type(view: str) -> None:
    documented = _doc_sections().get(view)
    assert documented is not None, f"docs/data-contract.md has no section for {view}"
    schema = contract.SCHEMAS[view]
    expected = [(f.name, str(f.type), "yes" if f.nullable else "no") for f in schema]
    assert documented == expected


def test_doc_lists_statuses_and_reasons() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    for status in contract.STATUSES:
        assert status in rows, f"status {status} missing from the doc"
    for reason, retry in contract.CRAWL_REASONS.items():
        assert re.search(rf"^\| `{reason}` \| {'yes' if retry else 'no'} \|", text, re.M), reason
    for reason in contract.VERDICT_REASONS:
        assert reason in rows, f"verdict reason {reason} missing from the doc"


@pytest.mark.parametrize(
    "raw",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "a\x00b",
        "x" * 500,
        "vidéo-été 🎬",
        "..",
        ".",
        "a/b\\c",
        "CON",
        "-rf",
        "key.with.dots",
        " spaced id ",
    ],
)
def test_clip_id_is_always_a_safe_file_name(raw: str, tmp_path: Path) -> None:
    cid = contract.clip_id(raw)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cid), cid
    assert 1 <= len(cid) <= contract.CLIP_ID_MAX_CHARS
    assert "." not in cid and not cid.startswith("-")
    path = tmp_path / contract.media_relpath(cid, "mp4")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")
    assert tmp_path in path.resolve().parents
    assert contract.clip_id(raw) == cid  # stable


def test_clip_id_keeps_safe_ids_and_separates_lookalikes() -> None:
    assert contract.clip_id("1006630957") == "1006630957"
    assert contract.clip_id("a/b") != contract.clip_id("a_b")
    assert contract.clip_id("a/b") != contract.clip_id("a?b")
    long_a, long_b = "y" * 400 + "a", "y" * 400 + "b"
    assert contract.clip_id(long_a) != contract.clip_id(long_b)


def test_clip_id_from_url_and_errors() -> None:
    a = contract.clip_id(url="https://cdn.example/v/1.mp4")
    assert a.startswith("u") and len(a) == 21
    assert a != contract.clip_id(url="https://cdn.example/v/2.mp4")
    assert contract.clip_id("", url="https://x/1.mp4") == contract.clip_id(url="https://x/1.mp4")
    with pytest.raises(ValueError):
        contract.clip_id()


def test_media_relpath_refuses_non_ids() -> None:
    assert contract.media_relpath("abc", ".MP4!").endswith("/abc.mp4")
    with pytest.raises(ValueError):
        contract.media_relpath("../x", "mp4")


def test_shard_names_and_keys_round_trip() -> None:
    assert contract.shard_name(12) == "00012"
    assert contract.sample_key(1, 5) == "000010005"
    assert contract.parse_sample_key("000120005") == (12, 5)
    with pytest.raises(ValueError):
        contract.sample_key(0, 10_000)
    with pytest.raises(ValueError):
        contract.parse_sample_key("00012.0005")


def test_split_is_stable_and_close_to_the_fraction() -> None:
    ids = [f"clip{i}" for i in range(4000)]
    splits = [contract.split_of(c, 0.1) for c in ids]
    assert splits == [contract.split_of(c, 0.1) for c in ids]
    share = splits.count("val") / len(ids)
    assert 0.08 < share < 0.12
    assert contract.split_of("x", 0.0) == "train"


def test_rows_to_table_validates() -> None:
    table = contract.rows_to_table(
        [{"clip_id": "a", "status": "success", "keywords": ["x"], "bytes": 3}],
        contract.CRAWL_RECORD_SCHEMA,
    )
    assert table.schema == contract.CRAWL_RECORD_SCHEMA
    assert table.column("width").null_count == 1
    with pytest.raises(ValueError, match="unknown columns"):
        contract.rows_to_table(
            [{"clip_id": "a", "status": "success", "nope": 1}], contract.CRAWL_RECORD_SCHEMA
        )
    with pytest.raises(ValueError, match="must not contain nulls"):
        contract.rows_to_table([{"clip_id": "a"}], contract.CRAWL_RECORD_SCHEMA)


def test_schemas_have_no_empty_structs() -> None:
    for schema in contract.SCHEMAS.values():
        for f in schema:
            assert not (pa.types.is_struct(f.type) and f.type.num_fields == 0)


def test_retryable_reasons() -> None:
    assert contract.is_retryable("timeout") and contract.is_retryable("http_5xx")
    assert not contract.is_retryable("http_404") and not contract.is_retryable("x_robots_tag")
    assert not contract.is_retryable(None) and not contract.is_retryable("made_up")
