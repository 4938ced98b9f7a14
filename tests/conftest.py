"""Shared test set-up. (No network but loopback: pyproject.toml passes pytest-socket's
``--allow-hosts``.)"""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
