"""The package's layering, read from the source: who may import whom.

The base (validation, utils, inference, checkpoint, data, models, metrics) imports
nothing above it; training and what shapes it never import serving, distributed,
checks or plots; no library module imports plots or exercises (figures take results
and draw them); the module graph has no cycle; and no function hides an import of
companion (a deferred import is how a cycle stays invisible).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "companion"

BASE = {"_validation", "_tables", "utils", "inference", "checkpoint", "data", "models", "metrics"}
TRAINING_SIDE = {"training", "regularization", "transfer", "online_learning", "sampled_softmax"}
NEVER_FROM_TRAINING = {"serving", "distributed", "checks", "plots"}
ONLY_FROM_THEMSELVES = {"plots", "exercises"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _area(module: str) -> str:
    """``companion.data.tabular`` -> ``data``; ``companion`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _resolve(module: str, level: int, name: str | None, importer: str) -> str:
    if level:
        package = importer.split(".")
        is_package = MODULES[importer].name == "__init__.py"
        base = package[: len(package) - level + (1 if is_package else 0)]
        module = ".".join([*base, module] if module else base)
    if name and f"{module}.{name}" in MODULES:  # from companion.data import tabular
        return f"{module}.{name}"
    return module


@cache
def _imports(module: str) -> tuple[tuple[str, int, bool], ...]:
    """(imported companion module, line, at module level) for every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports under `if TYPE_CHECKING:` or try/except at top level count as top level
        if isinstance(node, (ast.If, ast.Try)):
            top_level |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [(alias.name, None) for alias in node.names]
            level = 0
        elif isinstance(node, ast.ImportFrom):
            targets = [(node.module or "", alias.name) for alias in node.names]
            level = node.level
        else:
            continue
        for target, name in targets:
            resolved = _resolve(target, level, name, module)
            if resolved == "companion" or resolved.startswith("companion."):
                while resolved not in MODULES:  # a name imported from a module
                    resolved = resolved.rpartition(".")[0]
                found.append((resolved, node.lineno, id(node) in top_level))
    return tuple(found)


def _edges(module: str) -> set[str]:
    return {target for target, _, _ in _imports(module) if target != module}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_deferred_import_of_companion(module):
    deferred = [f"{target} (line {line})" for target, line, top in _imports(module) if not top]
    assert not deferred, f"{module} imports companion inside a function: {deferred}; import at the top"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _area(m) in BASE))
def test_base_imports_only_the_base(module):
    above = sorted({t for t in _edges(module) if _area(t) not in BASE | {""}})
    assert not above, f"{module} is in the base but imports {above}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _area(m) in TRAINING_SIDE))
def test_training_never_imports_serving_distributed_checks_or_plots(module):
    bad = sorted({t for t in _edges(module) if _area(t) in NEVER_FROM_TRAINING})
    assert not bad, f"{module} shapes training but imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _area(m) not in ONLY_FROM_THEMSELVES))
def test_no_library_module_imports_plots_or_exercises(module):
    bad = sorted({t for t in _edges(module) if _area(t) in ONLY_FROM_THEMSELVES})
    assert not bad, f"{module} imports {bad}: figures and exercises use the library, never the reverse"


def test_the_module_graph_has_no_cycle():
    graph = {module: _edges(module) for module in MODULES}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_checker_sees_a_planted_violation(tmp_path, monkeypatch):
    """The walker must resolve relative imports and see imports inside functions."""
    planted = tmp_path / "companion" / "data"
    planted.mkdir(parents=True)
    (planted / "__init__.py").write_text("", encoding="utf-8")
    (planted / "leak.py").write_text(
        "from ..plots import plot_history\n\ndef f():\n    import companion.checks\n", encoding="utf-8"
    )
    monkeypatch.setitem(MODULES, "companion.data.leak", planted / "leak.py")
    monkeypatch.setitem(MODULES, "companion.data", planted / "__init__.py")
    _imports.cache_clear()
    try:
        found = _imports("companion.data.leak")
    finally:
        _imports.cache_clear()
    assert [(t.split(".")[1], top) for t, _, top in found] == [("plots", True), ("checks", False)]
