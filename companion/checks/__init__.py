"""Model tests: checks that a model, its training code and its serving path are sound.

One naming rule: a function that raises :class:`ModelCheckError` when the model
fails is ``check_<what must hold>``; it passes quietly, returning what it measured.
Functions that only measure or decide are named for what they return
(:func:`population_stability_index`, :func:`training_serving_skew`,
:func:`model_age`, :func:`compare_models`, :func:`monitor_live_quality`). The
failure message has three parts: what failed, where (which parameter, layer,
feature or file), and what to try. Bad *arguments* raise ``ValueError``/``TypeError``
with the package's one message template (see :mod:`companion._validation`).

Before training (:mod:`~companion.checks.pipeline`: does the code work at all?):
    :func:`check_training_step`, :func:`check_overfits_small_batch`,
    :func:`check_learns_leaked_label`, :func:`check_reproducible`.
Numerical health (:mod:`~companion.checks.numerics`):
    :func:`check_finite`, :func:`check_units_alive`.
Before serving (:mod:`~companion.checks.release`: should this model ship, and will the server run it?):
    :func:`compare_models`, :func:`check_beats_baseline`, :func:`check_export_roundtrip`.
In production (is it still healthy?):
    :func:`training_serving_skew` (:mod:`~companion.checks.skew`), :func:`model_age` with
    :class:`ModelCard` (:mod:`~companion.checks.staleness`), :func:`monitor_live_quality`
    (:mod:`~companion.checks.monitoring`).

Example:
    >>> from companion.checks import check_training_step
    >>> model = torch.nn.Linear(3, 2)
    >>> check_training_step(model, torch.nn.CrossEntropyLoss(), torch.randn(8, 3),
    ...                     torch.randint(0, 2, (8,))) > 0
    True
"""

import torch  # noqa: F401  (for the doctest above)

from companion.checks._report import ModelCheckError, StaleModelWarning
from companion.checks.monitoring import monitor_live_quality
from companion.checks.numerics import check_finite, check_units_alive
from companion.checks.pipeline import (
    check_learns_leaked_label,
    check_overfits_small_batch,
    check_reproducible,
    check_training_step,
)
from companion.checks.release import (
    METRICS,
    ModelComparison,
    check_beats_baseline,
    check_export_roundtrip,
    compare_models,
)
from companion.checks.skew import SkewReport, population_stability_index, training_serving_skew
from companion.checks.staleness import ModelAge, ModelCard, model_age

__all__ = [
    "METRICS",
    "ModelAge",
    "ModelCard",
    "ModelCheckError",
    "ModelComparison",
    "SkewReport",
    "StaleModelWarning",
    "check_beats_baseline",
    "check_export_roundtrip",
    "check_finite",
    "check_learns_leaked_label",
    "check_overfits_small_batch",
    "check_reproducible",
    "check_training_step",
    "check_units_alive",
    "compare_models",
    "model_age",
    "monitor_live_quality",
    "population_stability_index",
    "training_serving_skew",
]
