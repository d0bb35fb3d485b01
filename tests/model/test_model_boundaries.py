"""The model library's shape: old import paths still work, and no import points back up.

The public model API of docs/model.md moved out of ``webvid.train``; the old modules are aliases
that must hand out the very same objects. The model library, the clip decoding it shares with
retrieval, and retrieval itself must not import the layers above them — checked on the source,
lazy imports inside functions included.
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

#: package → the webvid packages it must never import (the shared floor is always allowed).
FORBIDDEN = {
    "model": ("train", "retrieval", "clips", "demo", "cli", "scale"),
    "clips": ("train", "retrieval", "model", "demo", "cli", "scale"),
    "retrieval": ("train", "demo", "cli", "scale"),
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


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name a file imports, top-level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module or "")
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    bad = []
    for path in sorted((WEBVID / package).glob("*.py")):
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] == "webvid" and len(parts) > 1 and parts[1] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(WEBVID.parent)} imports {name}")
    assert not bad, "\n".join(bad)
