"""The built book as readers get it, page by page, in headless Chromium.

Pages come from ``_toc.yml`` (plus Sphinx's search and index pages), so a new notebook is covered
as soon as it is in the table of contents.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
import yaml

import companion

from .conftest import (
    HTML,
    NOTEBOOK_PAGES,
    PAGES,
    ROOT,
    TOC_PAGES,
    Visit,
    ids_in,
    is_local,
    local_file,
    new_page,
    per_page,
)

CLAIMS = yaml.safe_load((ROOT / "book" / "claims.yml").read_text(encoding="utf-8"))
_FILE_NAME = re.compile(r"(^|/)[\w.-]+\.(png|jpe?g|svg|gif|webp)$|^image/|^_images|^\.\./", re.IGNORECASE)


def _repository() -> str:
    return urlsplit(companion.REPOSITORY_URL).path.strip("/")  # owner/name


@pytest.mark.parametrize("name", per_page(PAGES))
def test_page_loads_without_console_errors(visits, name):
    visit = visits(name)
    assert not visit.console_errors, f"{name}: console errors (loading, or answering its quiz):\n" + "\n".join(
        visit.console_errors)
    assert not visit.failed_requests, f"{name}: requests for the book's own files failed:\n" + "\n".join(
        visit.failed_requests)


@pytest.mark.parametrize("name", per_page(PAGES))
def test_local_links_and_images_resolve(visits, base_url, name):
    visit = visits(name)
    broken = []
    for url in visit.links:
        if not is_local(url, base_url):
            continue
        target = local_file(url)
        fragment = urlsplit(url).fragment
        if not target.is_file():
            broken.append(f"{url} (no file {target.relative_to(HTML)})")
        elif fragment and target.suffix == ".html" and fragment not in ids_in(target):
            broken.append(f"{url} (no element with id {fragment!r} in {target.relative_to(HTML)})")
    for image in visit.images:
        if is_local(image["src"], base_url) and not (image["complete"] and image["width"] > 0):
            broken.append(f"image {image['src']} did not load")
    assert not broken, f"{name}: broken local links or images:\n" + "\n".join(sorted(set(broken)))


@pytest.mark.parametrize("name", per_page(PAGES))
def test_no_serious_accessibility_violation(visits, name):
    visit = visits(name)
    serious = [v for v in visit.axe if v["impact"] in ("serious", "critical")]
    assert not serious, f"{name}: axe-core (WCAG 2 A and AA) found:\n" + "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']}; {len(v['nodes'])} element(s), e.g. {v['nodes'][:3]}"
        for v in serious)


@pytest.mark.parametrize("name", per_page(NOTEBOOK_PAGES))
def test_long_outputs_are_trimmed_to_a_scrolling_box(visits, name):
    tallest = max(visits(name).output_heights, default=0)
    assert tallest <= 600, f"{name}: a text output is {tallest:.0f} px tall on the page; long outputs must scroll"


def test_the_build_has_every_page_of_the_table_of_contents(_can_run):
    missing = [name for name in TOC_PAGES if not (HTML / f"{name}.html").is_file()]
    assert not missing, f"pages of _toc.yml the build did not write: {missing}"


def _drawn_figures(name: str) -> list[str]:
    """The alt texts of the notebook's drawing cells (tests/notebooks/test_hygiene.py makes every one say)."""
    cells = json.loads((ROOT / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    return [alt for cell in cells if (alt := cell["metadata"].get("mystnb", {}).get("image", {}).get("alt"))]


@pytest.mark.parametrize("name", per_page(NOTEBOOK_PAGES))
def test_notebook_page_shows_its_figures_with_alt_text(visits, name):
    figures = [image for image in visits(name).images if image["figure"]]
    shown = {(figure["alt"] or "").strip() for figure in figures}
    missing = [alt for alt in _drawn_figures(name) if alt.strip() not in shown]
    assert not missing, f"{name}: the page lacks the figures of the cells whose alt text reads {missing}"
    for figure in figures:
        assert figure["complete"] and figure["width"] > 0, f"{name}: figure {figure['src']} did not load"
        assert figure["shownWidth"] <= figure["columnWidth"] + 1, (
            f"{name}: figure {figure['src']} is {figure['shownWidth']:.0f} px wide in a "
            f"{figure['columnWidth']:.0f} px column"
        )
        alt = (figure["alt"] or "").strip()
        assert len(alt.split()) >= 5 and not _FILE_NAME.search(alt), (
            f"{name}: figure {figure['src']} has alt text {alt!r}; say what the figure shows "
            "(cell metadata mystnb.image.alt)"
        )


@pytest.mark.parametrize("name", per_page(NOTEBOOK_PAGES))
def test_notebook_page_links_to_itself_in_colab_and_offers_the_ipynb(visits, name):
    links = visits(name).links
    colab = f"https://colab.research.google.com/github/{_repository()}/blob/main/{name}.ipynb"
    colab_links = [url for url in links if "colab.research.google.com" in url]
    assert colab_links and set(colab_links) == {colab}, f"{name}: Colab links {colab_links}, expected {colab}"
    downloads = [url for url in links if url.endswith(f"_sources/{name}.ipynb")]
    assert downloads, f"{name}: no link to download the .ipynb"
    notebook = json.loads(local_file(downloads[0]).read_text(encoding="utf-8"))
    assert notebook["cells"][0]["cell_type"] == "markdown"


@pytest.mark.parametrize("name", per_page(NOTEBOOK_PAGES))
def test_quiz_gives_feedback_on_a_right_and_a_wrong_option(visits, name):
    visit = visits(name)
    assert visit.quizzes, f"{name}: no quiz on the page"
    assert not visit.quiz_problems, f"{name}: " + "\n".join(visit.quiz_problems)
    assert not visit.quiz_contrast, f"{name}: answered quiz, text with too little contrast: {visit.quiz_contrast}"


def test_claims_page_lists_every_claim(browser, base_url):
    visit = Visit(url=f"{base_url}book/claims.html")
    page = new_page(browser, base_url, visit)
    try:
        page.goto(visit.url, wait_until="load")
        cells = set(page.locator("table td:first-child").all_inner_texts())
    finally:
        page.context.close()
    missing = [c["id"] for c in CLAIMS if c["id"] not in {cell.strip() for cell in cells}]
    assert not missing, f"the claims page does not list {missing}"


def _title(notebook: str) -> str:
    cells = json.loads((ROOT / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    return "".join(cells[0]["source"]).splitlines()[0].lstrip("# ")


def test_search_finds_each_notebook_by_a_word_of_its_title(browser, base_url):
    visit = Visit(url=f"{base_url}search.html")
    page = new_page(browser, base_url, visit)
    missed = []
    try:
        for notebook in NOTEBOOK_PAGES:
            word = max(re.findall(r"[A-Za-z]{4,}", _title(notebook)), key=len)
            page.goto(f"{base_url}search.html?q={word}", wait_until="load")
            page.locator("#search-results .search-summary, #search-results p").first.wait_for(timeout=20_000)
            page.wait_for_function("() => !document.querySelector('#search-progress')?.textContent", timeout=20_000)
            found = page.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
            if not any(urlsplit(url).path.endswith(f"/{notebook}.html") for url in found):
                missed.append(f"{word!r} (from {notebook}'s title) finds {found[:5]}")
    finally:
        page.context.close()
    assert not missed, "search misses notebooks:\n" + "\n".join(missed)
    assert not visit.console_errors, visit.console_errors
