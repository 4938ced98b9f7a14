
import pytest
import torch

from companion.data import make_gaussian_blobs, make_loader, make_regression
from companion.training import History, fit
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
    X, y = make_gaussian_blobs(90, 2, 3, seed=0)
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
    # any mode other than "min" used to mean "max": a typo silently picked the worst epoch
    with pytest.raises(ValueError, match=r"Expected `mode` to be one of \('min', 'max'\)"):
        history.best_epoch(mode="minimum")


def test_history_lookup_errors():
    with pytest.raises(KeyError, match="one of"):
        History()["val_accuracy"]
    with pytest.raises(ValueError, match="at least one epoch"):
        History().best_epoch()
