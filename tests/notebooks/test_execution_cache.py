"""notebooks/conftest.py: what the notebook tests execute is what the book renders, executed once.

Runs nbval in a scratch project (a copy of the plugin and two tiny notebooks) and reads
the jupyter-cache that ``jupyter-book`` would read: a passing notebook is cached with its
outputs; a failing one is not, and a notebook that passed before and fails now loses
its old entry, so the book cannot show outputs the code no longer produces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[2]


def _notebook(path: Path, *sources: str) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


def _run_notebook_tests(project: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
         "-q", "notebooks"],
        cwd=project, capture_output=True, text=True, env={**os.environ, **env}, timeout=300,
    )


def test_passing_notebooks_are_cached_with_their_outputs_and_failing_ones_are_not(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / "conftest.py", notebooks / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # the scratch project's root
    _notebook(notebooks / "good.ipynb", "import os\nprint('hello from the test run')",
              "assert os.environ.get('BREAK') != '1'\n6 * 7")
    _notebook(notebooks / "bad.ipynb", "raise ValueError('broken')")

    first = _run_notebook_tests(tmp_path)
    assert first.returncode == 1 and "1 failed" in first.stdout, first.stdout + first.stderr
    cache = get_cache(str(tmp_path / "_build" / ".jupyter_cache"))
    good = nbformat.read(notebooks / "good.ipynb", as_version=4)
    record = cache.match_cache_notebook(good)
    _, rendered = cache.merge_match_into_notebook(good)
    outputs = [cell.outputs for cell in rendered.cells]
    assert outputs[0][0]["text"] == "hello from the test run\n"
    assert outputs[1][0]["data"]["text/plain"] == "42"
    assert [cell.execution_count for cell in rendered.cells] == [1, 2]
    assert len(cache.list_cache_records()) == 1  # bad.ipynb was not cached
    assert not (tmp_path / "_build" / "executed").exists() or not any((tmp_path / "_build" / "executed").iterdir())

    second = _run_notebook_tests(tmp_path, BREAK="1")  # the same notebook now fails
    assert "2 failed" in second.stdout, second.stdout + second.stderr
    assert cache.list_cache_records() == [], f"stale record {record.pk} kept for a failing notebook"
