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
