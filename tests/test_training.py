import os

import pytest
import torch

from companion.data import make_classification, make_loader, make_regression
from companion.training import History, fit, load_checkpoint, save_checkpoint
from companion.utils import seed_everything


def _regression_setup(seed=0):
    seed_everything(seed)
    X, y = make_regression(128, 2, noise=0.05, seed=seed)
    model = torch.nn.Linear(2, 1)
    loader = make_loader(X, y.unsqueeze(1), batch_size=16, seed=seed)
    return model, loader


def test_fit_learns_and_records_history():
    model, loader = _regression_setup()
    history = fit(model, loader, loss_fn=torch.nn.MSELoss(),
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=20,
                  val_loader=loader, progress=False, device="cpu")
    assert len(history.train_loss) == len(history.val_loss) == 20
    assert history.train_loss[-1] < 0.01 < history.train_loss[0]
    assert history.epochs == list(range(1, 21))


def test_fit_loss_is_the_mean_over_examples():
    model, loader = _regression_setup()
    history = fit(model, loader, loss_fn=torch.nn.MSELoss(),
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.0), epochs=1,
                  val_loader=loader, progress=False, device="cpu")
    X, y = loader.dataset.tensors
    with torch.no_grad():
        expected = float(torch.nn.functional.mse_loss(model(X), y))
    assert history.val_loss[0] == pytest.approx(expected, rel=1e-5)
    assert history.train_loss[0] == pytest.approx(expected, rel=1e-5)  # lr=0: nothing moved


def test_fit_is_reproducible():
    def run():
        model, loader = _regression_setup(seed=4)
        fit(model, loader, loss_fn=torch.nn.MSELoss(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.05), epochs=3, progress=False)
        return model.weight.detach().clone()

    assert torch.equal(run(), run())


def test_fit_metrics_and_callbacks():
    seed_everything(0)
    X, y = make_classification(90, 2, 3, seed=0)
    loader = make_loader(X, y, batch_size=30)
    model = torch.nn.Linear(2, 3)
    events = []

    class StopAtTwo:
        def on_train_begin(self, state):
            events.append("begin")

        def on_epoch_end(self, state):
            events.append(state.epoch)
            state.stop = state.epoch == 2

        def on_train_end(self, state):
            events.append("end")

    accuracy = lambda y_true, out: float((out.argmax(1) == y_true).float().mean())  # noqa: E731
    history = fit(model, loader, loss_fn=torch.nn.CrossEntropyLoss(),
                  optimizer=torch.optim.Adam(model.parameters(), lr=0.1), epochs=10,
                  val_loader=loader, metrics={"accuracy": accuracy}, callbacks=[StopAtTwo()],
                  progress=False)
    assert events == ["begin", 1, 2, "end"]
    assert history.stopped_epoch == 2 and len(history.train_loss) == 2
    assert set(history.metrics) == {"train_accuracy", "val_accuracy"}
    assert all(0 <= a <= 1 for a in history["val_accuracy"])
    ax = history.plot(metrics=["val_accuracy"])
    assert len(ax.lines) == 4  # train loss, val loss, metric, stop marker


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "Expected `epochs` to be an int >= 1, but got 0."),
        ({"model": "net"}, TypeError, "`model` to be a torch.nn.Module"),
        ({"loss_fn": 3}, TypeError, "`loss_fn` to be callable"),
        ({"optimizer": None}, TypeError, "`optimizer` to be a torch.optim.Optimizer"),
        ({"metrics": {"acc": 1}}, TypeError, "callable"),
        ({"train_loader": []}, ValueError, "at least one batch"),
    ],
)
def test_fit_bad_input(kwargs, error, match):
    model, loader = _regression_setup()
    args = {"model": model, "train_loader": loader, "loss_fn": torch.nn.MSELoss(),
            "optimizer": torch.optim.SGD(model.parameters(), lr=0.1), "epochs": 1}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fit(args.pop("model"), args.pop("train_loader"), progress=False, **args)


def test_history_best_epoch():
    history = History(train_loss=[3.0, 2.0, 1.0], val_loss=[2.5, 1.5, 1.8],
                      metrics={"val_accuracy": [0.5, 0.9, 0.7]})
    assert history.best_epoch() == 2
    assert history.best_epoch("val_accuracy", mode="max") == 2
    assert history.best_epoch("train_loss") == 3


def test_history_lookup_errors():
    with pytest.raises(KeyError, match="one of"):
        History()["val_accuracy"]
    with pytest.raises(ValueError, match="at least one epoch"):
        History().best_epoch()


def test_checkpoint_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "ck" / "model.pt", model, opt, epoch=7, extra={"note": "x"})
    clone = torch.nn.Linear(3, 2)
    clone_opt = torch.optim.Adam(clone.parameters(), lr=0.01)
    info = load_checkpoint(path, clone, clone_opt)
    assert info == {"epoch": 7, "extra": {"note": "x"}}
    assert torch.equal(clone.weight, model.weight)
    assert clone_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert os.listdir(tmp_path / "ck") == ["model.pt"]  # no temporary file left


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = torch.nn.Linear(2, 1)
    path = save_checkpoint(tmp_path / "m.pt", model, epoch=1)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_load_checkpoint_errors(tmp_path):
    model = torch.nn.Linear(2, 1)
    with pytest.raises(FileNotFoundError, match="existing checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt", model)
    path = save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(ValueError, match="saved without optimizer state"):
        load_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1))
