"""Every docstring example in companion runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import companion

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(companion.__path__, prefix="companion.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", ["companion", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
