"""Keep what the notebook tests executed, so that the book does not execute the notebooks again.

nbval runs every cell of every notebook and keeps each cell's outputs. When all cells
of a notebook pass, this plugin writes the executed notebook to ``_build/executed/``
(one file per notebook, from whichever test worker ran it); at the end of the session
the main process adds those notebooks to the book's execution cache
(``_build/.jupyter_cache``, the cache ``jupyter-book`` reads with
``execute_notebooks: cache``). ``make book`` then renders them without running a
cell, and executes only the notebooks that are missing from the cache or changed.
A notebook with a failing cell is never cached (and its old entry is dropped): the book
executes it and fails loudly.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "executed"
CACHE = ROOT / "_build" / ".jupyter_cache"

_cells: dict[Path, list] = defaultdict(list)  # notebook -> its nbval cell items, in order
_failed: set[Path] = set()
_seconds: dict[Path, float] = defaultdict(float)


def _is_notebook_cell(item: pytest.Item) -> bool:
    return hasattr(item, "cell") and hasattr(item, "test_outputs") and item.path.suffix == ".ipynb"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if not _is_notebook_cell(item):
        return
    path = item.path
    _seconds[path] += call.duration
    if report.failed:
        _failed.add(path)
    if call.when == "call":
        _cells[path].append(item)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for path, items in _cells.items():
        if path in _failed:
            EXECUTED.mkdir(parents=True, exist_ok=True)
            (EXECUTED / f"{path.stem}.failed").write_text(str(path), encoding="utf-8")
        else:
            _write_executed(path, items)
    if not hasattr(session.config, "workerinput"):  # the main process: after every worker is done
        _cache_executed()


def _write_executed(path: Path, items: list) -> None:
    notebook = nbformat.read(path, as_version=4)
    by_id = {cell.get("id"): cell for cell in notebook.cells}
    count = 0
    for item in items:
        cell = by_id.get(item.cell.get("id"))
        if cell is None or cell.cell_type != "code" or item.test_outputs is None:
            continue
        count += 1
        cell.execution_count = count
        cell.outputs = [_without_execution_count(o, count) for o in item.test_outputs]
    EXECUTED.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, EXECUTED / path.name)
    (EXECUTED / f"{path.stem}.json").write_text(
        json.dumps({"source": str(path), "seconds": _seconds[path]}), encoding="utf-8"
    )


def _without_execution_count(output: nbformat.NotebookNode, count: int) -> nbformat.NotebookNode:
    if output.get("output_type") == "execute_result":
        output["execution_count"] = count
    return output


def _cache_executed() -> None:
    if not EXECUTED.is_dir():
        return
    cache = get_cache(str(CACHE))
    for marker in sorted(EXECUTED.glob("*.failed")):  # a failing notebook must not render old outputs
        source = nbformat.read(marker.read_text(encoding="utf-8"), as_version=4)
        try:
            cache.remove_cache(cache.match_cache_notebook(source).pk)
        except KeyError:
            pass
        marker.unlink()
    for record in sorted(EXECUTED.glob("*.json")):
        info = json.loads(record.read_text(encoding="utf-8"))
        executed = EXECUTED / f"{record.stem}.ipynb"
        notebook = nbformat.read(executed, as_version=4)
        cache.cache_notebook_bundle(
            CacheBundleIn(notebook, info["source"], data={"execution_seconds": info["seconds"]}),
            check_validity=False,
            overwrite=True,
        )
        record.unlink()
        executed.unlink()
