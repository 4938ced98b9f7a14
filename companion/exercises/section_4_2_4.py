"""Exercise of notebook 4.2.4 (hyperparameter tuning): a search space for Optuna."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from companion._validation import missing_extra
from companion.exercises._registry import exercise

# name -> (kind, low, high, log): what the exercise asks for
_WANTED = {
    "lr": ("float", 1e-5, 1e-1, True),
    "layers": ("int", 1, 4, False),
    "dropout": ("float", 0.0, 0.5, False),
}


def _space_solution(trial: Any) -> dict[str, Any]:
    return {
        "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),  # a log scale: each decade equally likely
        "layers": trial.suggest_int("layers", 1, 4),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


@exercise(
    "4.2.4-search-space",
    "Write space(trial) for Optuna: draw a learning rate 'lr' in [1e-5, 1e-1] on a log scale, an integer "
    "number of hidden layers 'layers' in [1, 4] and a dropout rate 'dropout' in [0, 0.5]; return them "
    "as a dict.",
    solution=_space_solution,
)
def _grade_space(answer: Callable[[Any], Mapping[str, Any]]) -> str | None:
    try:  # the tuning extra: only notebook 4.2.4 installs it, and every notebook loads the graders
        import optuna
    except ModuleNotFoundError as error:
        raise missing_extra("tuning", error) from error
    if not callable(answer):
        return "give a function space(trial) that returns a dict of hyperparameters."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    returned: list[Any] = []

    def objective(trial: Any) -> float:
        returned.append(answer(trial))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=3)
    trial = study.trials[0]
    distributions = trial.distributions
    for name, (kind, low, high, log) in _WANTED.items():
        if name not in distributions:
            return (f"no hyperparameter named {name!r} was suggested (you suggested "
                    f"{sorted(distributions)}); call trial.suggest_...({name!r}, ...).")
        hint = _check_distribution(optuna, name, distributions[name], kind, low, high, log)
        if hint:
            return hint
    extra = sorted(set(distributions) - set(_WANTED))
    if extra:
        return f"suggest only lr, layers and dropout; you also suggested {extra}."
    if not isinstance(returned[0], Mapping):
        return f"return the values as a dict {{'lr': ..., 'layers': ..., 'dropout': ...}}, not {type(returned[0]).__name__}."
    if dict(returned[0]) != trial.params:
        return (f"return the values you drew from the trial, {trial.params}; you returned {dict(returned[0])}.")
    return None


def _check_distribution(optuna: Any, name: str, distribution: Any, kind: str, low: float, high: float,
                        log: bool) -> str | None:
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return (f"{name} is drawn from a fixed list {list(distribution.choices)}: that is a grid; draw it "
                f"from the whole range with trial.suggest_{kind}.")
    if kind == "int" and not isinstance(distribution, optuna.distributions.IntDistribution):
        return f"{name} counts layers: draw a whole number with trial.suggest_int, not a float."
    if kind == "float" and not isinstance(distribution, optuna.distributions.FloatDistribution):
        return f"{name} is a real number: draw it with trial.suggest_float, not suggest_int."
    if (distribution.low, distribution.high) != (low, high):
        return f"draw {name} from [{low}, {high}]; you used [{distribution.low}, {distribution.high}]."
    if distribution.step not in (None, 1):
        return f"draw {name} from the whole range, without a step of {distribution.step}."
    if log and not distribution.log:
        return (f"draw {name} on a log scale (log=True): on a linear scale from {low} to {high}, nine "
                "draws in ten land above a tenth of the top, and the small rates are almost never tried.")
    if not log and distribution.log:
        return f"{name} does not span several orders of magnitude: draw it on a linear scale (log=False)."
    return None
