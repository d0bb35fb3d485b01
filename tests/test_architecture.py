"""The package's shape, checked from its own imports: no cycles, arrows point down only.

Reads every module under ``webvid/`` with :mod:`ast` (nothing is imported), collects each
``import webvid…`` / ``from webvid… import …`` — at module level, inside functions (lazy
imports) and under ``if TYPE_CHECKING:`` alike, since a type-only import is still a dependency a
reader has to follow — and checks them against the layering of docs/architecture.md:

    cli → scale, demo → stages (crawl, shards, train) → retrieval → clips → model → floor

* the floor (contract, io, log, config, errors, sniff, query, …) imports no subpackage;
* a stage never imports another stage, the scale layer, the demo or the CLI;
* the model library imports only the floor; clips only the model and the floor; retrieval
  never the training stage;
* no module takes part in an import cycle;
* only ``webvid/cli/`` imports the terminal libraries (click, rich): stages are libraries
  that report through the ``Progress`` protocol and never print.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "webvid"
STAGES = {"crawl", "shards", "train"}
#: for each subpackage, the subpackages it may import (the floor is always allowed)
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "synth": set(),  # synthetic media: below the stages, which never import it
    # benchmark datasets: readers (floor only) and `webvid prepare`'s media path (the shard stage's)
    "benchmarks": {"model", "clips", "shards"},
    "clips": {"model"},
    "retrieval": {"model", "clips"},
    "crawl": set(),
    "shards": set(),
    "train": {"model", "clips", "retrieval"},
    # curation with the model in the loop: embeds (retrieval) and re-curates shard sets
    "curate": {"model", "clips", "retrieval", "shards"},
    "scale": STAGES | {"model", "clips", "retrieval"},
    "demo": STAGES | {"model", "clips", "retrieval", "scale", "synth", "curate"},
    # the read-only web browser over a data root: query views, media, embedding search
    "browse": {"model", "clips", "retrieval"},
    "cli": STAGES
    | {"model", "clips", "retrieval", "scale", "demo", "synth", "benchmarks", "curate", "browse"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """Every webvid module ``path`` imports (``from webvid import io`` counts as webvid.io)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "webvid")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "webvid":
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                out.add(sub if _exists(sub) else mod)
    out.discard(name)
    return out


def _third_party(path: Path) -> set[str]:
    """Top-level names of the non-webvid packages ``path`` imports, anywhere in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    names.discard("webvid")
    return names


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (PKG.parent / rel.with_suffix(".py")).is_file() or (
        PKG.parent / rel / "__init__.py"
    ).is_file()


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        name = _module_name(path)
        graph[name] = _imports(path, name)
    return graph


def _subpackage(module: str) -> str | None:
    """The layer a module belongs to: its first-level subpackage, or None for the floor."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    return parts[1] if (PKG / parts[1]).is_dir() else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
                continue
            if child not in graph:
                continue
            if child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _graph()


def test_the_walk_sees_the_package(graph) -> None:
    assert "webvid.contract" in graph and "webvid.crawl.run" in graph
    assert "webvid.contract" in graph["webvid.crawl.run"]  # the walk finds real edges


def test_no_import_cycles(graph) -> None:
    assert _cycles(graph) == []


def test_arrows_point_down(graph) -> None:
    bad: dict[str, list[str]] = defaultdict(list)
    for module, deps in graph.items():
        layer = _subpackage(module)
        for dep in deps:
            target = _subpackage(dep)
            if target is None or target == layer:
                continue
            if layer is None or target not in ALLOWED.get(layer, set()):
                bad[module].append(dep)
    assert dict(bad) == {}


def test_only_the_cli_uses_the_terminal() -> None:
    bad = [
        f"{path.relative_to(PKG.parent)} imports {name}"
        for path in sorted(PKG.rglob("*.py"))
        if path.relative_to(PKG).parts[0] != "cli"
        for name in sorted(_third_party(path) & {"click", "rich", "rich_click"})
    ]
    assert bad == []


def test_the_checks_can_fail() -> None:
    """The cycle finder and the layer rule catch what they are for (a test that cannot fail
    is a defect)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _subpackage("webvid.crawl.run") == "crawl" and _subpackage("webvid.io") is None
    assert "scale" not in ALLOWED["crawl"] and "train" not in ALLOWED["retrieval"]
