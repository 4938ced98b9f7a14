"""The book's local Sphinx extensions (book/_ext), apart from a build."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

from generated_pages import _always_outdated, generated_pages  # noqa: E402


def _front_matter(page: Path) -> dict:
    return yaml.safe_load(page.read_text(encoding="utf-8").split("---\n")[1])


def test_the_pages_rendered_from_data_are_found():
    assert generated_pages(ROOT) == ["book/claims", "book/exam-map", "book/intro", "book/practice-exam"]


def test_every_generated_page_executes_afresh_rather_than_from_the_cache():
    for name in generated_pages(ROOT):
        assert _front_matter(ROOT / f"{name}.md")["mystnb"]["execution_mode"] == "force", name


def test_generated_pages_are_outdated_on_every_build_and_only_they():
    class App:
        srcdir = str(ROOT)

    class Env:
        found_docs = {"book/claims", "book/intro", "book/glossary", "notebooks/4.0-gradient-descent-and-backprop"}

    assert sorted(_always_outdated(App(), Env(), set(), set(), set())) == ["book/claims", "book/intro"]
    assert _always_outdated(App(), Env(), set(), {"book/claims"}, set()) == ["book/intro"]
