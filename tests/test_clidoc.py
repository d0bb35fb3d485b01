"""docs/cli.md is generated from the click commands and must stay in step with them."""

from __future__ import annotations

from pathlib import Path

from webvid.cli.doc import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is stale: regenerate it with `python -m webvid.cli.doc > docs/cli.md`"
    )


def test_cli_reference_covers_every_command() -> None:
    text = render()
    for name in (
        "crawl",
        "shard",
        "train",
        "eval",
        "embed",
        "search",
        "query",
        "doctor",
        "demo",
        "demo-site",
    ):
        assert f"## `webvid {name}`" in text, name
