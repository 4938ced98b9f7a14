"""The flat, lazy public API of `companion`."""

import importlib
import subprocess
import sys

import pytest

import companion

MODULES = sorted(set(companion._EXPORTS.values()))
NOT_FLATTENED = {"main", "ACTIVATIONS"}  # a CLI entry point; two modules' activation tables


def test_every_public_name_of_every_module_is_exported():
    for module in MODULES:
        for name in importlib.import_module(f"companion.{module}").__all__:
            if name not in NOT_FLATTENED:
                assert name in companion._EXPORTS, f"companion.{module}.{name} is not re-exported"


@pytest.mark.parametrize("name", sorted(companion._EXPORTS))
def test_flat_names_resolve_to_the_module_objects(name):
    module = importlib.import_module(f"companion.{companion._EXPORTS[name]}")
    assert getattr(companion, name) is getattr(module, name)


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        companion.nope  # noqa: B018


def test_import_is_lazy():
    code = "import companion, sys; print('fastapi' in sys.modules, 'duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
