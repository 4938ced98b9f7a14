"""The grader of exercise 4.2.4-search-space: right search spaces pass, each typical mistake gets its hint."""

from __future__ import annotations

import re

import pytest

from companion.exercises import check, get_exercise

EXERCISE = "4.2.4-search-space"


def _space(lr=("float", 1e-5, 1e-1, True), layers=("int", 1, 4, False), dropout=("float", 0.0, 0.5, False),
           returns=None):
    """A search space built from (kind, low, high, log) per name; kind 'cat' draws from a list."""

    def draw(trial, name, spec):
        kind, low, high, log = spec
        if kind == "cat":
            return trial.suggest_categorical(name, [low, (low + high) / 2, high])
        suggest = trial.suggest_int if kind == "int" else trial.suggest_float
        return suggest(name, low, high, log=log)

    def space(trial):
        params = {name: draw(trial, name, spec) for name, spec in
                  (("lr", lr), ("layers", layers), ("dropout", dropout)) if spec is not None}
        return params if returns is None else returns(params)

    return space


def _right_reordered(trial):
    dropout = trial.suggest_float("dropout", 0, 0.5)
    layers = trial.suggest_int("layers", 1, 4)
    return {"layers": layers, "dropout": dropout, "lr": trial.suggest_float("lr", 1e-5, 0.1, log=True)}


WRONG = [
    ("linear learning rate", _space(lr=("float", 1e-5, 1e-1, False)), r"log scale"),
    ("layers as a float", _space(layers=("float", 1, 4, False)), r"suggest_int"),
    ("lr as an int", _space(lr=("int", 0, 1, False)), r"suggest_float"),
    ("a grid of learning rates", _space(lr=("cat", 1e-5, 1e-1, False)), r"grid"),
    ("wrong bounds", _space(dropout=("float", 0.0, 0.9, False)), r"\[0\.0, 0\.5\].*\[0\.0, 0\.9\]"),
    ("log-scale layers", _space(layers=("int", 1, 4, True)), r"linear scale"),
    ("dropout missing", _space(dropout=None), r"'dropout'"),
    ("returns a list", _space(returns=lambda p: list(p.values())), r"dict"),
    ("returns other values", _space(returns=lambda p: p | {"lr": 0.01}), r"the values you drew"),
    ("a fixed value", lambda trial: {"lr": 1e-3, "layers": 2, "dropout": 0.1}, r"no hyperparameter named 'lr'"),
]


def test_the_solution_and_other_right_answers_pass(capsys):
    assert check(EXERCISE, get_exercise(EXERCISE).solution) is True
    assert check(EXERCISE, _space()) is True
    assert check(EXERCISE, _right_reordered) is True
    assert capsys.readouterr().out.count("✓") == 3


@pytest.mark.parametrize(("answer", "words"), [pytest.param(a, w, id=what) for what, a, w in WRONG])
def test_each_mistake_gets_its_hint(answer, words, capsys):
    assert check(EXERCISE, answer) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {EXERCISE}: not yet. Hint: ") and out.count("\n") == 1, out
    assert re.search(words, out, flags=re.IGNORECASE), out


def test_an_extra_hyperparameter_and_a_non_function_are_named(capsys):
    def extra(trial):
        return _space()(trial) | {"momentum": trial.suggest_float("momentum", 0.0, 0.99)}

    assert check(EXERCISE, extra) is False
    assert check(EXERCISE, None) is False
    assert check(EXERCISE, lambda trial: None) is False  # suggests nothing
    out = capsys.readouterr().out
    assert "'momentum'" in out and "function space(trial)" in out and "no hyperparameter named" in out
