"""Hyperparameter tuning of a :func:`~companion.training.fit`-trained model with Optuna.

A *study* searches a space of hyperparameters; each *trial* trains one configuration
and returns its validation score. :func:`fit_objective` turns a search space and a
model builder into the function a study optimizes; :class:`PruningCallback` reports
each epoch's validation value to the trial so that the study's pruner can stop an
unpromising trial early; :func:`optimize_in_processes` runs one study in several
worker processes that share it through a database; :func:`trials_to_target` counts
how many trials a study needed to reach a score.

Optuna keeps the sampler (how the next configuration is chosen: random, grid, TPE)
and the pruner (which running trial to stop: median, successive halving) in the
study object, not in the storage: every process that loads a study chooses its own.
"""

from __future__ import annotations

import multiprocessing
import pickle
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from companion._validation import missing_extra

try:
    import optuna
except ModuleNotFoundError as error:
    raise missing_extra("tuning", error) from error

from companion._validation import (
    check_callable,
    check_float,
    check_instance,
    check_int,
    message,
)
from companion.metrics import Metric
from companion.training import TrainingState, fit
from companion.utils import seed_everything

__all__ = ["PruningCallback", "fit_objective", "optimize_in_processes", "trials_to_target"]


class PruningCallback:
    """Report a validation value to an Optuna trial after every epoch; prune when told to.

    After each epoch of :func:`~companion.training.fit` the callback reads the last
    value of ``monitor`` from the history and calls ``trial.report(value, epoch)``.
    If the study's pruner then says the trial is unpromising
    (``trial.should_prune()``), the callback raises :class:`optuna.TrialPruned`:
    ``fit`` stops at once, and ``study.optimize`` records the trial as ``PRUNED``
    with the values reported so far. The pruner decides (``MedianPruner``,
    ``SuccessiveHalvingPruner``...); with ``NopPruner`` the callback only reports.

    Raising ends ``fit`` without its ``on_train_end`` hooks, so put no callback that
    must clean up at the end (such as one that restores weights) beside it in a
    pruned run; the pruned model is thrown away anyway.

    State life cycle: ``on_train_begin`` resets ``pruned_epoch_``, so one instance can
    watch several runs of the same trial.

    Args:
        trial: the running trial (what Optuna passes to the objective).
        monitor: the history series to report, e.g. ``"val_loss"`` or
            ``"val_accuracy"``; its direction must be the study's.

    Attributes:
        pruned_epoch_: the epoch (from 1) at which the trial was pruned, else ``None``.

    Example:
        >>> import torch
        >>> from companion.data import make_loader, make_regression
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> X, y = make_regression(64, 2)
        >>> def objective(trial):
        ...     model = torch.nn.Linear(2, 1)
        ...     opt = torch.optim.SGD(model.parameters(), lr=trial.suggest_float("lr", 1e-4, 1e-1, log=True))
        ...     history = fit(model, make_loader(X, y.unsqueeze(1)), loss_fn=torch.nn.MSELoss(),
        ...                   optimizer=opt, epochs=5, val_loader=make_loader(X, y.unsqueeze(1)),
        ...                   callbacks=[PruningCallback(trial)], progress=False, device="cpu")
        ...     return min(history.val_loss)
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
        ...                             pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
        >>> study.optimize(objective, n_trials=6)
        >>> len(study.trials[0].intermediate_values)  # one reported value per epoch
        5
    """

    def __init__(self, trial: optuna.trial.Trial, *, monitor: str = "val_loss") -> None:
        self.trial = check_instance("trial", trial, optuna.trial.Trial, "an optuna.trial.Trial")
        self.monitor = check_instance("monitor", monitor, str, "a string")
        self.pruned_epoch_: int | None = None

    def on_train_begin(self, state: TrainingState) -> None:
        """Forget a previous run."""
        self.pruned_epoch_ = None

    def on_epoch_end(self, state: TrainingState) -> None:
        """Report this epoch's value; raise :class:`optuna.TrialPruned` if the pruner says so."""
        series = state.history[self.monitor]
        if not series:
            raise ValueError(
                message("monitor", "a series fit records every epoch (pass val_loader to fit "
                        "to report validation values)", self.monitor)
            )
        value = float(series[-1])
        self.trial.report(value, state.epoch)
        if self.trial.should_prune():
            self.pruned_epoch_ = state.epoch
            raise optuna.TrialPruned(f"pruned at epoch {state.epoch} with {self.monitor} = {value:.6g}")

    def __repr__(self) -> str:
        return f"PruningCallback(trial={self.trial.number}, monitor={self.monitor!r})"


def fit_objective(
    space: Callable[[optuna.trial.Trial], Mapping[str, Any]],
    build: Callable[[Mapping[str, Any]], tuple[nn.Module, Optimizer]],
    *,
    train_loader: Iterable,
    val_loader: Iterable,
    loss_fn: Callable[..., Any],
    epochs: int,
    monitor: str = "val_loss",
    metrics: Mapping[str, Metric] | None = None,
    seed: int = 0,
    device: Any = None,
) -> Callable[[optuna.trial.Trial], float]:
    """The objective of a study that trains each trial's configuration with ``fit``.

    For each trial the objective draws the hyperparameters (``params = space(trial)``),
    seeds everything with ``seed``, and the shuffling generator of a loader made by
    :func:`~companion.data.make_loader` too (so that two trials with the same parameters
    train the same model on the same batches), builds the model and its optimizer (``build(params)``), trains
    with :func:`~companion.training.fit` and a :class:`PruningCallback`, and returns
    the best value of ``monitor`` over the epochs: the lowest if the study minimizes,
    the highest if it maximizes. The study's pruner may stop the trial early.

    Args:
        space: ``trial -> {name: value}``, drawing each value with ``trial.suggest_*``.
        build: ``params -> (model, optimizer)``, a fresh model for every trial.
        train_loader: ``(x, y)`` batches to train on.
        val_loader: ``(x, y)`` batches to score each epoch on.
        loss_fn: ``loss_fn(model(x), y)`` returns a scalar tensor.
        epochs: the most epochs a trial trains, an int >= 1.
        monitor: the history series to optimize, ``"val_loss"`` or ``"val_<metric>"``.
        metrics: ``{name: fn(y_true, output) -> float}`` for ``fit`` to record.
        seed: seeds each trial's initialisation and shuffling, an int >= 0.
        device: where to train; ``None`` picks :func:`companion.utils.get_device`.

    Returns:
        ``objective(trial) -> float``, for ``study.optimize(objective, n_trials=...)``.

    Example:
        >>> import torch
        >>> from companion.data import make_loader, make_regression
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> X, y = make_regression(64, 2)
        >>> def build(params):
        ...     model = torch.nn.Linear(2, 1)
        ...     return model, torch.optim.SGD(model.parameters(), lr=params["lr"])
        >>> objective = fit_objective(
        ...     lambda trial: {"lr": trial.suggest_float("lr", 1e-3, 1e-1, log=True)}, build,
        ...     train_loader=make_loader(X, y.unsqueeze(1)), val_loader=make_loader(X, y.unsqueeze(1)),
        ...     loss_fn=torch.nn.MSELoss(), epochs=3, device="cpu")
        >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        >>> study.optimize(objective, n_trials=3)
        >>> len(study.trials), len(study.trials[0].intermediate_values)  # 3 trials of 3 epochs each
        (3, 3)
    """
    check_callable("space", space)
    check_callable("build", build)
    check_callable("loss_fn", loss_fn)
    epochs = check_int("epochs", epochs, low=1)
    check_instance("monitor", monitor, str, "a string")
    if monitor != "val_loss" and not monitor.startswith("val_"):
        raise ValueError(message("monitor", "a validation series, 'val_loss' or 'val_<metric>'", monitor))
    if monitor != "val_loss" and monitor.removeprefix("val_") not in (metrics or {}):
        raise ValueError(message("monitor", f"'val_loss' or 'val_<name>' for a name in `metrics` "
                                 f"{tuple(metrics or ())}", monitor))
    seed = check_int("seed", seed, low=0)

    def objective(trial: optuna.trial.Trial) -> float:
        if len(trial.study.directions) != 1:
            raise ValueError(message("study", "a study with one direction", trial.study.directions))
        params = space(trial)
        check_instance("space(trial)", params, Mapping, "a mapping of names to values")
        seed_everything(seed)
        for loader in (train_loader, val_loader):  # the same batch order in every trial
            if isinstance(getattr(loader, "generator", None), torch.Generator):
                loader.generator.manual_seed(seed)
        built = build(params)
        if not (isinstance(built, tuple) and len(built) == 2):
            raise TypeError(message("build(params)", "a tuple (model, optimizer)", built))
        model, optimizer = built
        history = fit(model, train_loader, loss_fn=loss_fn, optimizer=optimizer, epochs=epochs,
                      val_loader=val_loader, metrics=metrics, progress=False, device=device,
                      callbacks=[PruningCallback(trial, monitor=monitor)])
        values = history[monitor]
        maximize = trial.study.direction == optuna.study.StudyDirection.MAXIMIZE
        return float(max(values) if maximize else min(values))

    return objective


def trials_to_target(study: optuna.Study, *, target: float) -> int | None:
    """How many trials ``study`` ran up to the first one whose value reached ``target``.

    Trials count in the order they were started (their numbers), pruned and failed ones
    included, since each cost compute. A value reaches the target when it is ``<=``
    ``target`` in a study that minimizes, ``>=`` in one that maximizes.

    Args:
        study: a single-objective study.
        target: the score to reach, a finite float.

    Returns:
        The count (from 1), or ``None`` if no finished trial reached ``target``.

    Example:
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study()
        >>> for value in [5.0, 3.0, 0.5, 0.1]:
        ...     study.add_trial(optuna.trial.create_trial(value=value))
        >>> trials_to_target(study, target=1.0), trials_to_target(study, target=0.0)
        (3, None)
    """
    check_instance("study", study, optuna.Study, "an optuna.Study")
    target = check_float("target", target)
    if len(study.directions) != 1:
        raise ValueError(message("study", "a study with one direction", study.directions))
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    for count, trial in enumerate(sorted(study.get_trials(deepcopy=False), key=lambda t: t.number), 1):
        if trial.state != optuna.trial.TrialState.COMPLETE:
            continue
        if (trial.value >= target) if maximize else (trial.value <= target):
            return count
    return None


def _tpe(rank: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=rank)


def _worker(objective: Callable, storage: str | bytes, study_name: str, n_trials: int,
            sampler: Callable[[int], optuna.samplers.BaseSampler], rank: int, errors: Any) -> None:
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if isinstance(storage, bytes):  # unpickled, a storage object takes a worker identity of its own
            storage = pickle.loads(storage)  # (a forked copy would share the parent's, and clash)
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler(rank))
        study.optimize(objective, n_trials=n_trials)
    except BaseException:  # the parent raises it: a child's traceback would go to a terminal no one reads
        errors.put((rank, traceback.format_exc()))
        raise


def optimize_in_processes(
    objective: Callable[[optuna.trial.Trial], float],
    *,
    storage: str,
    study_name: str,
    n_trials: int,
    n_workers: int = 2,
    sampler: Callable[[int], optuna.samplers.BaseSampler] = _tpe,
    start_method: str | None = None,
) -> optuna.Study:
    """Run one study in ``n_workers`` processes that share it through ``storage``.

    Each worker process loads the study by name from the storage and runs its share
    of ``n_trials`` trials: before each trial it reads every trial the others have
    finished or started, so all workers learn from one history. The same code runs
    on many machines when ``storage`` is a database they all reach
    (``"postgresql://user:password@host/db"``). On one machine a SQLite file
    (``"sqlite:///study.db"``) or a journal file
    (``JournalStorage(JournalFileBackend(path))``, lighter per trial) will do.
    Create the study first (``optuna.create_study(storage=..., study_name=...)``):
    its direction lives in the storage, but each worker builds its own sampler with
    ``sampler(rank)`` and uses Optuna's default pruner.

    Args:
        objective: ``trial -> float``. With the default start method ``"fork"``
            (Linux, Colab) any function works; with ``"spawn"`` it must be importable.
        storage: a database URL, e.g. ``"sqlite:///path/to/study.db"``, or an Optuna
            storage that every process can reach, e.g. a ``JournalStorage``.
        study_name: the name of a study in ``storage``.
        n_trials: trials in all, an int >= 1, shared out as evenly as possible.
        n_workers: worker processes, an int in [1, n_trials].
        sampler: ``rank -> sampler`` for worker ``rank`` (from 0); the default is
            ``TPESampler(seed=rank)``, so that no two workers draw the same values.
        start_method: ``"fork"``, ``"spawn"`` or ``"forkserver"``; ``None`` picks
            ``"fork"`` where the platform has it, else ``"spawn"``.

    Returns:
        The study, loaded from ``storage`` after every worker has finished.

    Raises:
        RuntimeError: a worker failed; the message holds its traceback.

    Example:
        >>> import tempfile, os
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> url = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "study.db")
        >>> _ = optuna.create_study(storage=url, study_name="demo")
        >>> study = optimize_in_processes(lambda t: t.suggest_float("x", -1, 1) ** 2,
        ...                               storage=url, study_name="demo", n_trials=6, n_workers=2)
        >>> len(study.trials)
        6
    """
    check_callable("objective", objective)
    check_instance("storage", storage, (str, optuna.storages.BaseStorage),
                   "a database URL such as 'sqlite:///study.db' or an Optuna storage")
    if isinstance(storage, optuna.storages.InMemoryStorage):
        raise ValueError(message("storage", "a storage every process reaches (a database URL or a "
                                 "JournalStorage); an in-memory one lives in one process", storage))
    check_instance("study_name", study_name, str, "a string")
    n_trials = check_int("n_trials", n_trials, low=1)
    n_workers = check_int("n_workers", n_workers, low=1, high=n_trials)
    check_callable("sampler", sampler)
    methods = multiprocessing.get_all_start_methods()
    if start_method is None:
        start_method = "fork" if "fork" in methods else "spawn"
    elif start_method not in methods:
        raise ValueError(message("start_method", f"one of {tuple(methods)} or None", start_method))
    try:
        optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise ValueError(message("study_name", "the name of a study in `storage` (create it first "
                                 "with optuna.create_study(storage=..., study_name=...))",
                                 study_name)) from None
    payload: str | bytes = storage
    if not isinstance(storage, str):
        try:
            payload = pickle.dumps(storage)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            raise TypeError(message("storage", "a storage that can be pickled, to be opened in each "
                                    "worker", storage, found=str(error))) from None
    context = multiprocessing.get_context(start_method)
    errors = context.SimpleQueue()
    shares = [n_trials // n_workers + (rank < n_trials % n_workers) for rank in range(n_workers)]
    workers = [context.Process(target=_worker, args=(objective, payload, study_name, share, sampler,
                                                     rank, errors), daemon=True)
               for rank, share in enumerate(shares)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    failed = [(rank, w.exitcode) for rank, w in enumerate(workers) if w.exitcode != 0]
    if failed:
        details = []
        while not errors.empty():
            rank, text = errors.get()
            details.append(f"worker {rank}:\n{text}")
        raise RuntimeError(f"{len(failed)} of {n_workers} workers failed (rank, exit code): {failed}\n"
                           + "\n".join(details))
    return optuna.load_study(study_name=study_name, storage=storage)

