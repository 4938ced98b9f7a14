"""The API reference (book/api/*.md) documents every public area of the package, and no area that is gone."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import companion

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_area_has_an_api_page():
    areas = {m.name for m in pkgutil.iter_modules(companion.__path__) if not m.name.startswith("_")}
    documented = set()
    for page in (ROOT / "book" / "api").glob("*.md"):
        documented |= set(re.findall(r"^\.\. automodule:: companion\.(\w+)\s*$", page.read_text(encoding="utf-8"), re.M))
    assert areas - documented == set(), f"add these to a page of book/api/: {sorted(areas - documented)}"
    assert documented - areas == set(), f"book/api/ documents areas that no longer exist: {sorted(documented - areas)}"
