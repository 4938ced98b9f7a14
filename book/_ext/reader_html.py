"""What the book's HTML pages need beyond what the theme writes (a local Sphinx extension).

- Each inline script once: Sphinx 7.4 adds a script registered after the builder started
  (sphinx-thebe's ``const THEBE_JS_URL = ...``) twice, and the second copy throws
  "Identifier 'THEBE_JS_URL' has already been declared" on every page.
- A name for every ``<summary>`` of the navigation: pydata-sphinx-theme's expand/collapse toggles
  hold only an icon, so screen readers announce an unnamed control (axe-core: ``summary-name``).
  Each gets ``aria-label="<section title>: show or hide its pages"``.
- ``static/reader.css``: long text outputs scroll in a box; figures fit the text column.

tests/browser/ checks the result in a browser (no console error, no serious axe-core violation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup
from sphinx.application import Sphinx


def _unique_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # an inline script's filename is None or "" depending on how it was added
        key = (str(getattr(script, "filename", script) or ""), repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _label_toggles(html):
    """Name the unnamed summaries of ``html`` (a string, or the theme's parsed BeautifulSoup)."""
    soup = BeautifulSoup(html, "html.parser") if isinstance(html, str) else html
    for summary in soup.find_all("summary"):
        if summary.get_text(strip=True) or summary.get("aria-label"):
            continue
        item = summary.find_parent("li")
        link = item.find("a", recursive=False) if item else None
        title = link.get_text(" ", strip=True) if link else "this section"
        summary["aria-label"] = f"{title}: show or hide its pages"
    return str(soup) if isinstance(html, str) else soup


def _label_navigation(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    generate = context.get("generate_toctree_html")
    if generate is None or getattr(generate, "_labels_toggles", False):
        return

    def generate_labelled(*args: Any, **kwargs: Any):
        return _label_toggles(generate(*args, **kwargs))

    generate_labelled._labels_toggles = True
    context["generate_toctree_html"] = generate_labelled


def _add_static(app: Sphinx) -> None:
    app.config.html_static_path.append(str(Path(__file__).parent / "static"))
    app.add_css_file("reader.css")


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _add_static)
    # After the theme's own html-page-context handlers (priority 500), which fill the context.
    app.connect("html-page-context", _unique_scripts, priority=900)
    app.connect("html-page-context", _label_navigation, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
