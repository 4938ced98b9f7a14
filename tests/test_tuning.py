"""Tests for companion.tuning: the pruning callback against Optuna's own pruner bookkeeping, the
objective builder against a hand-written fit, trial counting, and studies shared by processes."""

from __future__ import annotations

import math
import operator
import time

import optuna
import pytest
import torch
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from torch import nn

from companion.data import make_loader, make_regression, split
from companion.metrics import accuracy
from companion.training import fit
from companion.tuning import PruningCallback, fit_objective, optimize_in_processes, trials_to_target
from companion.utils import seed_everything

optuna.logging.set_verbosity(optuna.logging.WARNING)
COMPLETE, PRUNED, RUNNING = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                             optuna.trial.TrialState.RUNNING)
EPOCHS = 6

(X_TR, Y_TR), (X_VAL, Y_VAL) = split(*make_regression(96, 3, noise=0.3), fractions=(2 / 3, 1 / 3), seed=0)
TRAIN = make_loader(X_TR, Y_TR.unsqueeze(1), batch_size=16)
VAL = make_loader(X_VAL, Y_VAL.unsqueeze(1), batch_size=64, shuffle=False)


def _space(trial):
    return {"lr": trial.suggest_float("lr", 1e-6, 0.5, log=True)}


def _build(params):
    model = nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=params["lr"])


def _objective(**kwargs):
    options = dict(train_loader=TRAIN, val_loader=VAL, loss_fn=nn.MSELoss(), epochs=EPOCHS, device="cpu")
    return fit_objective(_space, _build, **(options | kwargs))


def _study(lrs, *, pruner=None, direction="minimize"):
    """A study that runs one trial per learning rate in `lrs`, in that order."""
    study = optuna.create_study(direction=direction, pruner=pruner or optuna.pruners.MedianPruner(
        n_startup_trials=2, n_warmup_steps=0))
    for lr in lrs:
        study.enqueue_trial({"lr": lr})
    return study


# --- PruningCallback ---------------------------------------------------------------------------

def test_a_trial_worse_than_the_median_is_pruned_and_recorded_as_pruned():
    study = _study([0.1, 0.05, 1e-6])  # two good trials set the median; the third barely learns
    study.optimize(_objective(), n_trials=3)
    first, second, slow = study.trials
    assert [first.state, second.state] == [COMPLETE, COMPLETE]
    assert slow.state == PRUNED
    assert list(slow.intermediate_values) == [1]  # worse than the median at the first epoch: stopped there
    assert slow.intermediate_values[1] > max(first.intermediate_values[1], second.intermediate_values[1])
    assert slow.value == slow.intermediate_values[1]  # Optuna keeps the last reported value
    assert not study.get_trials(states=(RUNNING,))  # nothing left running
    assert study.best_trial.number in (0, 1)
    assert list(first.intermediate_values) == list(range(1, EPOCHS + 1))  # one report per epoch


def test_a_good_trial_is_not_pruned():
    study = _study([0.02, 0.01, 0.1])  # the third is better than the median every epoch
    study.optimize(_objective(), n_trials=3)
    assert [t.state for t in study.trials] == [COMPLETE] * 3
    assert len(study.trials[2].intermediate_values) == EPOCHS
    assert study.best_trial.number == 2


def test_without_a_pruner_every_trial_only_reports():
    study = _study([0.1, 0.05, 1e-6], pruner=optuna.pruners.NopPruner())
    study.optimize(_objective(), n_trials=3)
    assert [t.state for t in study.trials] == [COMPLETE] * 3
    assert all(len(t.intermediate_values) == EPOCHS for t in study.trials)


def test_the_callback_reports_the_history_and_resets_between_runs():
    study = _study([1e-6, 1e-6, 1e-6], pruner=optuna.pruners.ThresholdPruner(upper=0.0))  # prunes any loss
    trial = study.ask()
    callback = PruningCallback(trial)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(optuna.TrialPruned, match="epoch 1"):
        fit(model, TRAIN, loss_fn=nn.MSELoss(), optimizer=optimizer, epochs=3, val_loader=VAL,
            callbacks=[callback], progress=False, device="cpu")
    assert callback.pruned_epoch_ == 1
    callback.on_train_begin(None)
    assert callback.pruned_epoch_ is None
    assert "PruningCallback(trial=0" in repr(callback)


def test_the_callback_reports_a_maximized_metric():
    study = _study([0.1], pruner=optuna.pruners.NopPruner(), direction="maximize")
    trial = study.ask()
    callback = PruningCallback(trial, monitor="val_acc")
    model = nn.Linear(3, 2)
    labels = (Y_TR > Y_TR.median()).long()
    history = fit(model, [(X_TR, labels)], loss_fn=nn.CrossEntropyLoss(),
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=3,
                  val_loader=[(X_TR, labels)], metrics={"acc": lambda y, out: accuracy(y, out.argmax(1))},
                  callbacks=[callback], progress=False, device="cpu")
    frozen = study.tell(trial, 0.0)
    assert list(frozen.intermediate_values.values()) == history["val_acc"]


def test_the_callback_rejects_bad_input():
    trial = optuna.create_study().ask()
    with pytest.raises(TypeError, match="`trial`"):
        PruningCallback("trial 0")
    with pytest.raises(TypeError, match="`monitor`"):
        PruningCallback(trial, monitor=1)
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="pass val_loader"):  # nothing to report without validation data
        fit(model, TRAIN, loss_fn=nn.MSELoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1, callbacks=[PruningCallback(trial)], progress=False, device="cpu")


# --- fit_objective -----------------------------------------------------------------------------

def test_the_objective_returns_what_a_manual_fit_gives():
    study = _study([0.3], pruner=optuna.pruners.NopPruner())
    study.optimize(_objective(seed=3), n_trials=1)
    seed_everything(3)
    TRAIN.generator.manual_seed(3)  # the objective seeds the loader's shuffling too
    model, optimizer = _build({"lr": 0.3})
    history = fit(model, TRAIN, loss_fn=nn.MSELoss(), optimizer=optimizer, epochs=EPOCHS, val_loader=VAL,
                  progress=False, device="cpu")
    assert study.trials[0].value == min(history.val_loss)  # bit for bit: same seed, same batches
    assert list(study.trials[0].intermediate_values.values()) == history.val_loss
    assert min(history.val_loss) < history.val_loss[-1]  # the best epoch is not the last: the value is the best


def test_the_objective_returns_the_best_epoch_in_the_study_direction():
    labels = (Y_TR > Y_TR.median()).long()

    def build(params):
        model = nn.Linear(3, 2)
        return model, torch.optim.SGD(model.parameters(), lr=params["lr"])

    objective = fit_objective(_space, build, train_loader=[(X_TR, labels)], val_loader=[(X_TR, labels)],
                              loss_fn=nn.CrossEntropyLoss(), epochs=EPOCHS, monitor="val_acc",
                              metrics={"acc": lambda y, out: accuracy(y, out.argmax(1))}, device="cpu")
    study = _study([0.5], pruner=optuna.pruners.NopPruner(), direction="maximize")
    study.optimize(objective, n_trials=1)
    values = list(study.trials[0].intermediate_values.values())
    assert study.trials[0].value == max(values) and max(values) > min(values)


def test_the_objective_builder_rejects_bad_input():
    with pytest.raises(TypeError, match="`space`"):
        fit_objective({"lr": 0.1}, _build, train_loader=TRAIN, val_loader=VAL, loss_fn=nn.MSELoss(), epochs=2)
    with pytest.raises(TypeError, match="`build`"):
        fit_objective(_space, None, train_loader=TRAIN, val_loader=VAL, loss_fn=nn.MSELoss(), epochs=2)
    with pytest.raises(ValueError, match="`epochs`"):
        _objective(epochs=0)
    with pytest.raises(ValueError, match="validation series"):
        _objective(monitor="train_loss")
    with pytest.raises(ValueError, match="a name in `metrics`"):
        _objective(monitor="val_auc")
    with pytest.raises(ValueError, match="`seed`"):
        _objective(seed=-1)


def test_the_objective_rejects_what_space_and_build_return():
    bad_space = fit_objective(lambda trial: trial.suggest_float("lr", 0.01, 0.1), _build,
                              train_loader=TRAIN, val_loader=VAL, loss_fn=nn.MSELoss(), epochs=1)
    with pytest.raises(TypeError, match=r"`space\(trial\)`"):
        optuna.create_study().optimize(bad_space, n_trials=1)
    bad_build = fit_objective(_space, lambda params: nn.Linear(3, 1), train_loader=TRAIN, val_loader=VAL,
                              loss_fn=nn.MSELoss(), epochs=1)
    with pytest.raises(TypeError, match=r"`build\(params\)`"):
        optuna.create_study().optimize(bad_build, n_trials=1)
    with pytest.raises(ValueError, match="one direction"):
        optuna.create_study(directions=["minimize", "minimize"]).optimize(_objective(), n_trials=1)


# --- trials_to_target --------------------------------------------------------------------------

def _scripted(values, direction="minimize"):
    study = optuna.create_study(direction=direction)
    for value in values:
        if value == "pruned":
            study.add_trial(optuna.trial.create_trial(state=PRUNED, intermediate_values={1: 9.0}))
        else:
            study.add_trial(optuna.trial.create_trial(value=value))
    return study


def test_trials_to_target_counts_every_trial_up_to_the_first_that_reaches_it():
    study = _scripted([5.0, "pruned", 2.0, 0.9, 0.1])
    assert trials_to_target(study, target=1.0) == 4  # the pruned trial cost compute too
    assert trials_to_target(study, target=2.0) == 3  # reaching means <= when minimizing
    assert trials_to_target(study, target=5.0) == 1
    assert trials_to_target(study, target=0.0) is None
    maximized = _scripted([0.5, 0.7, 0.9], direction="maximize")
    assert trials_to_target(maximized, target=0.7) == 2 and trials_to_target(maximized, target=0.95) is None


def test_trials_to_target_rejects_bad_input():
    with pytest.raises(TypeError, match="`study`"):
        trials_to_target([1.0, 2.0], target=1.0)
    with pytest.raises(ValueError, match="`target`"):
        trials_to_target(_scripted([1.0]), target=math.nan)
    with pytest.raises(TypeError, match="`target`"):
        trials_to_target(_scripted([1.0]), target="0.5")
    with pytest.raises(ValueError, match="one direction"):
        trials_to_target(optuna.create_study(directions=["minimize", "maximize"]), target=1.0)


# --- optimize_in_processes ---------------------------------------------------------------------

def _square(trial):
    return (trial.suggest_float("x", -2.0, 2.0) - 0.5) ** 2


def _slow_square(trial):
    time.sleep(0.05)  # between creating the trial and drawing its value, the other workers write too
    return _square(trial)


def _fails(trial):
    trial.suggest_float("x", 0.0, 1.0)
    raise ArithmeticError("this objective always fails")


def _url(tmp_path, name="demo"):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=url, study_name=name)
    return url


# fork runs any function; spawn pickles the objective by name, so it must be importable
@pytest.mark.parametrize(("start_method", "objective"),
                         [(None, _square), ("spawn", operator.methodcaller("suggest_float", "x", -2.0, 2.0))])
def test_workers_share_one_study_through_the_database(tmp_path, start_method, objective):
    url = _url(tmp_path)
    study = optimize_in_processes(objective, storage=url, study_name="demo", n_trials=7, n_workers=2,
                                  start_method=start_method)
    assert [t.state for t in study.trials] == [COMPLETE] * 7  # 4 + 3 trials, all in one study
    assert len({t.params["x"] for t in study.trials}) == 7  # each worker drew its own values
    assert [t.number for t in study.trials] == list(range(7))
    assert study.best_value == min(t.value for t in study.trials)


def test_workers_share_a_journal_storage_object(tmp_path):
    # each worker must open the storage under an identity of its own: forked copies of one object would
    # take each other's trials for their own and fail to finish them
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    optuna.create_study(storage=storage, study_name="journal")
    study = optimize_in_processes(_slow_square, storage=storage, study_name="journal", n_trials=12, n_workers=3,
                                  sampler=lambda rank: optuna.samplers.RandomSampler(seed=rank))
    assert [t.state for t in study.trials] == [COMPLETE] * 12
    assert len({t.params["x"] for t in study.trials}) == 12


def test_a_failing_worker_raises_with_its_traceback(tmp_path):
    url = _url(tmp_path)
    with pytest.raises(RuntimeError, match="(?s)2 of 2 workers failed.*ArithmeticError: this objective"):
        optimize_in_processes(_fails, storage=url, study_name="demo", n_trials=2, n_workers=2)


def test_optimize_in_processes_rejects_bad_input(tmp_path):
    url = _url(tmp_path)
    with pytest.raises(ValueError, match="create it first"):
        optimize_in_processes(_square, storage=url, study_name="missing", n_trials=2)
    with pytest.raises(ValueError, match="`n_workers`"):
        optimize_in_processes(_square, storage=url, study_name="demo", n_trials=2, n_workers=3)
    with pytest.raises(ValueError, match="`n_trials`"):
        optimize_in_processes(_square, storage=url, study_name="demo", n_trials=0)
    with pytest.raises(TypeError, match="`storage`"):
        optimize_in_processes(_square, storage=None, study_name="demo", n_trials=2)
    with pytest.raises(TypeError, match="`study_name`"):
        optimize_in_processes(_square, storage=url, study_name=3, n_trials=2)
    with pytest.raises(ValueError, match="`start_method`"):
        optimize_in_processes(_square, storage=url, study_name="demo", n_trials=2, start_method="thread")
    with pytest.raises(TypeError, match="`objective`"):
        optimize_in_processes("square", storage=url, study_name="demo", n_trials=2)
    with pytest.raises(TypeError, match="`sampler`"):
        optimize_in_processes(_square, storage=url, study_name="demo", n_trials=2, sampler=3)
    with pytest.raises(ValueError, match="in-memory"):
        optimize_in_processes(_square, storage=optuna.storages.InMemoryStorage(), study_name="demo", n_trials=2)
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "journal.log")))
    optuna.create_study(storage=storage, study_name="demo")
    storage.callback = lambda: None  # a local function cannot be pickled to reach the workers
    with pytest.raises(TypeError, match="can be pickled"):
        optimize_in_processes(_square, storage=storage, study_name="demo", n_trials=2)
    assert len(optuna.load_study(study_name="demo", storage=url).trials) == 0  # nothing ran
