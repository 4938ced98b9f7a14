import torch

from companion import plots
from companion.gradient_descent import minibatch_descent
from companion.training import History


def test_plot_history_draws_losses():
    ax = plots.plot_history(History(train_loss=[2.0, 1.0], val_loss=[2.5, 1.5]))
    assert [line.get_label() for line in ax.lines] == ["train loss", "validation loss"]
    assert list(ax.lines[0].get_ydata()) == [2.0, 1.0]


def test_descent_and_noise_plots():
    X = torch.randn(16, 1)
    run = minibatch_descent(lambda w, X, y: ((X[:, 0] * w[0] - y) ** 2).mean(), torch.zeros(1),
                            X, X[:, 0], batch_size=4, lr=0.1)
    ax = plots.plot_descent_runs([run])
    assert ax.lines[0].get_label() == "batch size 4" and ax.get_yscale() == "log"
    ax = plots.plot_gradient_noise({1: 4.0, 4: 1.0, 16: 0.0})
    assert list(ax.lines[0].get_xdata()) == [1, 4]  # the zero (full batch) is left out
    ax = plots.plot_loss_along_path([0, 0.5, 1], [0.1, 1.0, 0.1])
    assert list(ax.lines[0].get_ydata()) == [0.1, 1.0, 0.1]
