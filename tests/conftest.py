"""Shared test set-up. (No network but loopback: pyproject.toml passes pytest-socket's
``--allow-hosts``.)"""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-browser", action="store_true",
        help="fail, rather than skip, the browser tests of the built book (tests/browser) when Chromium, "
             "Playwright, axe-core or the built book is missing (`make test-browser` passes it)",
    )


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope``, with each page of the browser tests as one scope.

    The browser tests of one page share one load of it (``tests/browser/conftest.py``), so they must
    run on one worker. xdist's ``--dist loadgroup`` would do that from ``xdist_group`` marks, but with
    pytest 9.2 it no longer can (it renames ``item._nodeid``, which pytest stopped reading) and every
    page was loaded once per worker that got one of its tests.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class PageScopes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/browser/") and nodeid.endswith("]"):
                return "page " + nodeid[nodeid.index("[") + 1:-1]
            return super()._split_scope(nodeid)

    return PageScopes(config, log)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say in one line why the browser tests did not run, rather than leave them in a skip count."""
    reasons = {
        report.longrepr[2].removeprefix("Skipped: ")
        for report in terminalreporter.stats.get("skipped", [])
        if "tests/browser/" in report.nodeid and isinstance(report.longrepr, tuple)
    }
    for reason in sorted(reasons):
        terminalreporter.write_line(f"BROWSER TESTS SKIPPED: {reason}", yellow=True, bold=True)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
