"""companion: the tested PyTorch package behind the PMLE Section 4 course.

Import what you need from the module that holds it, named for what it does:
``from companion.training import fit``, ``from companion.models import MLP``,
``from companion.explain import integrated_gradients``. ``import companion`` itself
loads nothing heavy. Self-check helpers live in :mod:`companion.exercises`.
"""

from __future__ import annotations

__version__ = "0.1.0"

# Where the course lives. The book's _config.yml, pyproject.toml and every notebook's
# Colab cell must agree with these (tests/notebooks/test_hygiene.py checks).
REPOSITORY_URL = "https://github.com/pmle-course/section4-companion"
RELEASE_TAG = f"v{__version__}"

__all__ = ["REPOSITORY_URL", "RELEASE_TAG", "__version__"]
