"""The book's generated pages are rebuilt on every build (a local Sphinx extension).

``book/claims.md``, ``book/exam-map.md``, ``book/intro.md`` and ``book/practice-exam.md`` are MyST
notebooks whose one hidden cell renders a table or quiz from data outside the page: ``claims.yml``, the
exam map, the table of contents, the question banks. Sphinx re-reads a page only when its own source
changes, and the execution cache keys a page by its code, so an edit to that data would leave the
built page stale. Every page under ``book/`` with a ``{code-cell}`` is therefore marked outdated on
each build, and each sets ``mystnb: execution_mode: force`` in its front matter so it runs afresh
(a second or two each); the notebooks keep using the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment


def generated_pages(srcdir: Path) -> list[str]:
    """The docnames of the pages under ``book/`` that execute code."""
    return sorted(str(page.relative_to(srcdir).with_suffix("")) for page in (srcdir / "book").glob("*.md")
                  if "```{code-cell}" in page.read_text(encoding="utf-8"))


def _always_outdated(app: Sphinx, env: BuildEnvironment, added: set, changed: set, removed: set) -> list[str]:
    return [name for name in generated_pages(Path(app.srcdir)) if name in env.found_docs and name not in changed]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("env-get-outdated", _always_outdated)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
