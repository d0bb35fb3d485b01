"""The model library's shape: old import paths still work, and no import points back up.

The public model API of docs/model.md moved out of ``webvid.train``; the old modules are aliases
that must hand out the very same objects. The model library, the clip decoding it shares with
retrieval, and retrieval itself must not import the layers above them — that part is checked
for the whole package in tests/test_architecture.py.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

WEBVID = Path(__file__).resolve().parents[2] / "webvid"

PUBLIC_API = [
    ("webvid.train.model", "webvid.model.model", "FrozenInTime"),
    ("webvid.train.model", "webvid.model.model", "ModelConfig"),
    ("webvid.train.checkpoint", "webvid.model.checkpoint", "load_checkpoint"),
    ("webvid.train.checkpoint", "webvid.model.checkpoint", "inflate_temporal_embed"),
    ("webvid.train.metrics", "webvid.retrieval.metrics", "t2v_metrics"),
    ("webvid.train.metrics", "webvid.retrieval.metrics", "v2t_metrics"),
]

ALIASES = {
    "webvid.train.vit": "webvid.model.vit",
    "webvid.train.text": "webvid.model.text",
    "webvid.train.model": "webvid.model.model",
    "webvid.train.checkpoint": "webvid.model.checkpoint",
    "webvid.train.safe_pickle": "webvid.model.safe_pickle",
    "webvid.train.build": "webvid.model.build",
    "webvid.train.evaluate": "webvid.retrieval.evaluate",
    "webvid.train.metrics": "webvid.retrieval.metrics",
    "webvid.train.search": "webvid.retrieval.search",
    "webvid.train.frames": "webvid.clips.frames",
    "webvid.train.fastframes": "webvid.clips.fastframes",
}


@pytest.mark.parametrize(("old", "new", "name"), PUBLIC_API)
def test_public_api_is_the_same_object_from_its_old_and_new_path(
    old: str, new: str, name: str
) -> None:
    assert getattr(importlib.import_module(old), name) is getattr(
        importlib.import_module(new), name
    )


def defined_names(path: Path) -> list[str]:
    """Public names a module defines at its top level (functions, classes, constants)."""
    names: list[str] = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_") and n != "log"]


@pytest.mark.parametrize(("old", "new"), sorted(ALIASES.items()))
def test_old_module_re_exports_every_public_name_of_the_new_one(old: str, new: str) -> None:
    alias, moved = importlib.import_module(old), importlib.import_module(new)
    assert moved.__file__ is not None
    names = defined_names(Path(moved.__file__))
    assert names
    missing = [n for n in names if getattr(alias, n, None) is not getattr(moved, n)]
    assert not missing, f"{old} lacks {missing}"
