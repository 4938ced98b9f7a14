"""Browser tests of the built book: `_build/html` served on loopback, read by headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, or ``$CHROMIUM``), driven by Playwright's Python client;
axe-core comes from npm (``package.json``; ``make test-browser`` installs it). Requests that leave
the loopback server are aborted, so the tests run offline and see the book as a reader without
network access to CDNs would. Without Chromium, Playwright or a built book these tests skip with the
reason (``make test``), unless ``--require-browser`` (``make test-browser``) turns that into a failure.

Each page is loaded once per test session and everything the tests need is read from it then
(:class:`Visit`): links, images, outputs, axe-core's findings, and on pages with a quiz the outcome of
answering every question right and wrong. The tests only assert on what the visit recorded.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def _toc_files(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["file"]] if "file" in node else []
        return own + [f for value in node.values() for f in _toc_files(value)]
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
TOC_PAGES = [TOC["root"], *_toc_files(TOC["parts"])]
# Every page of the built site: the table of contents' files, then what Sphinx adds (search, indexes).
BUILT_PAGES = sorted(str(p.relative_to(HTML).with_suffix("")) for p in HTML.rglob("*.html")
                     if not p.relative_to(HTML).parts[0].startswith("_"))
PAGES = TOC_PAGES + [p for p in BUILT_PAGES if p not in TOC_PAGES and p != "index"]  # index: a redirect
NOTEBOOK_PAGES = [p for p in TOC_PAGES if p.startswith("notebooks/") and (ROOT / f"{p}.ipynb").exists()]


def per_page(names: list[str]) -> list:
    """Parameters, one per page, with the page as the test id: under ``pytest -n 2 --dist loadscope``
    all tests of one page run on one worker (``pytest_xdist_make_scheduler`` in tests/conftest.py)."""
    return [pytest.param(name, id=name) for name in names]


def _why_not() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $CHROMIUM)"
    if not (HTML / "index.html").exists():
        return f"no built book in {HTML.relative_to(ROOT)} (run `make book` first)"
    return None


@pytest.fixture(scope="session")
def _can_run(request) -> None:
    reason = _why_not()
    if reason:
        if request.config.getoption("--require-browser"):
            pytest.fail(f"browser tests required but cannot run: {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def axe_source(_can_run, request) -> str:
    if not AXE.exists():
        reason = f"axe-core is not installed in {AXE.parent.relative_to(ROOT)} (`make test-browser` runs `npm ci`)"
        if request.config.getoption("--require-browser"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return AXE.read_text(encoding="utf-8")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the tests report what failed; no access log
        pass


@pytest.fixture(scope="session")
def base_url(_can_run) -> str:
    """The built book served on a free loopback port for the whole session."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser(_can_run):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def is_local(url: str, base_url: str) -> bool:
    return url.startswith(base_url)


@dataclass
class Visit:
    """What one page showed when it loaded."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # requests off loopback, aborted
    links: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    output_heights: list[float] = field(default_factory=list)  # the rendered text outputs, in px
    axe: list[dict] = field(default_factory=list)  # serious-or-not WCAG 2 A/AA violations
    quizzes: int = 0  # jupyterquiz questions on the page, each answered right and then wrong
    quiz_problems: list[str] = field(default_factory=list)  # answers that got no or the wrong feedback
    quiz_contrast: list[str] = field(default_factory=list)  # answered-quiz text with too little contrast


def new_page(browser, base_url: str, visit: Visit):
    """A fresh page (own context) whose console errors and failed requests land in ``visit``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()

    def route(route):
        if is_local(route.request.url, base_url):
            route.continue_()
        else:
            visit.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    def console(message):
        if message.type != "error":
            return
        where = message.location.get("url", "")
        if where in visit.blocked or message.text.startswith("Failed to load resource: net::ERR_BLOCKED_BY_CLIENT"):
            return  # a request this test aborted (off loopback): not the page's fault
        visit.console_errors.append(f"{message.text} [{where}:{message.location.get('lineNumber')}]")

    page.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda error: visit.console_errors.append(f"uncaught {error}"))
    page.on("requestfailed", lambda request: is_local(request.url, base_url)
            and visit.failed_requests.append(f"{request.url} ({request.failure})"))
    page.on("response", lambda response: is_local(response.url, base_url) and response.status >= 400
            and visit.failed_requests.append(f"{response.url} (HTTP {response.status})"))
    return page


_LINKS = "() => Array.from(document.querySelectorAll('a[href]'), a => a.href)"
_IMAGES = """() => Array.from(document.images, img => ({
    src: img.currentSrc || img.src, alt: img.getAttribute('alt'), complete: img.complete,
    width: img.naturalWidth, shownWidth: img.getBoundingClientRect().width,
    figure: !!img.closest('.cell_output'),
    columnWidth: (img.closest('.cell_output') || img.parentElement).getBoundingClientRect().width,
}))"""
_OUTPUT_HEIGHTS = "() => Array.from(document.querySelectorAll('.cell_output pre'), p => p.getBoundingClientRect().height)"
_AXE = """async () => (await axe.run(document, {
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']},
    resultTypes: ['violations'],
})).violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                          nodes: v.nodes.map(n => n.target.join(' '))}))"""


_QUIZ_CONTRAST = """async () => (await axe.run('.Quiz', {runOnly: {type: 'rule', values: ['color-contrast']}}))
    .violations.flatMap(v => v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary))"""
_ANIMATIONS_DONE = "async () => { await Promise.all(document.getAnimations().map(a => a.finished)); }"


def _words(html: str) -> list[str]:
    return re.sub(r"<[^>]+>", " ", html).split()


def answer_quizzes(page, visit: Visit) -> None:
    """Clicks a right and a wrong option of every jupyterquiz question; records what went wrong."""
    quizzes = page.locator(".Quiz")  # one per question, with its options and its feedback
    visit.quizzes = quizzes.count()
    for i in range(visit.quizzes):
        quiz = quizzes.nth(i)
        feedback = quiz.locator(".Feedback")
        for correct, verdict in (("true", "correct"), ("false", "incorrect")):
            option = quiz.locator(f'label.MCButton[data-correct="{correct}"]').first
            expected = option.get_attribute("data-feedback") or ""
            option.click()
            if verdict not in (feedback.get_attribute("class") or "").split():
                visit.quiz_problems.append(f"question {i + 1}: clicking a {verdict} option did not mark it {verdict}")
            shown = feedback.inner_text().strip()
            if not expected or _words(expected)[:6] != _words(shown)[:6]:
                visit.quiz_problems.append(f"question {i + 1}: the {verdict} option's feedback {expected[:60]!r} "
                                           f"is not what the page shows: {shown[:60]!r}")
    if visit.quizzes:
        page.evaluate(_ANIMATIONS_DONE)  # the answer buttons' colour transitions end before contrast is read
        visit.quiz_contrast = page.evaluate(_QUIZ_CONTRAST)


@pytest.fixture(scope="session")
def visits(browser, base_url, axe_source):
    """page name -> :class:`Visit`, each page loaded once per session (on first use)."""
    cache: dict[str, Visit] = {}

    def get(name: str) -> Visit:
        if name in cache:
            return cache[name]
        visit = Visit(url=f"{base_url}{name}.html")
        page = new_page(browser, base_url, visit)
        try:
            page.goto(visit.url, wait_until="load")
            page.wait_for_load_state("networkidle")
            page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=10_000)
            visit.links = page.evaluate(_LINKS)
            visit.images = page.evaluate(_IMAGES)
            visit.output_heights = page.evaluate(_OUTPUT_HEIGHTS)
            page.add_script_tag(content=axe_source)
            visit.axe = page.evaluate(_AXE)
            answer_quizzes(page, visit)
        finally:
            page.context.close()
        cache[name] = visit
        return visit

    return get


@functools.cache
def ids_in(path: Path) -> frozenset[str]:
    """The element ids of a built HTML file (the fragments a link may point at)."""
    return frozenset(re.findall(r'\sid="([^"]+)"', path.read_text(encoding="utf-8", errors="replace")))


def local_file(url: str) -> Path:
    """The file under _build/html that a loopback URL names."""
    from urllib.parse import unquote

    path = unquote(urlsplit(url).path).lstrip("/")
    target = HTML / path
    return target / "index.html" if target.is_dir() or not path else target
