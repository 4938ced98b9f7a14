"""The graders behind ``check``: each accepts right answers and names the mistake of wrong ones.

For every exercise of the first sixteen notebooks, ``WRONG`` holds plausible wrong answers (a forbidden shortcut, a numerically
unstable variant, an off-by-one, a sign or axis mistake, a special case missed) with words the
hint must contain, and ``RIGHT`` holds correct answers other than the model solution. The
exercises of later notebooks have the same tests in their own module,
``tests/exercises/test_section_<section>.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.exercises import check, get_exercise, list_exercises, load_quiz, quiz
from companion.exercises._registry import exercise
from companion.exercises._shortcuts import (
    AUTOGRAD,
    SOFTMAX,
    ShortcutUsed,
    _owner,
    call_without,
    forbidden,
)

# ---------------------------------------------------------------- 4.0: sgd_step, sigmoid_grad


def _sgd_autograd(w, X, y, lr):
    w = w.clone().requires_grad_(True)
    ((X @ w - y) ** 2).mean().backward()
    return (w - lr * w.grad).detach()


def _sgd_autograd_grad(w, X, y, lr):
    w = w.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(((X @ w - y) ** 2).mean(), w)
    return (w - lr * grad).detach()


def _sgd_uphill(w, X, y, lr):
    return w + lr * 2 * X.T @ (X @ w - y) / len(y)


def _sgd_no_two(w, X, y, lr):
    return w - lr * X.T @ (X @ w - y) / len(y)


def _sgd_sum(w, X, y, lr):
    return w - lr * 2 * X.T @ (X @ w - y)


def _sgd_n_minus_one(w, X, y, lr):
    return w - lr * 2 * X.T @ (X @ w - y) / (len(y) - 1)


def _sgd_einsum(w, X, y, lr):
    return w - lr * torch.einsum("bf,b->f", X, 2 * (X @ w - y)) / X.shape[0]


def _sgd_rows(w, X, y, lr):
    grads = [2 * (x @ w - t) * x for x, t in zip(X, y, strict=True)]  # one row's gradient at a time
    return w - lr * torch.stack(grads).mean(dim=0)


def _sigmoid_backward(z):
    z = z.clone().requires_grad_(True)
    torch.sigmoid(z).sum().backward()
    return z.grad


def _sigmoid_func_grad(z):
    return torch.vmap(torch.func.grad(torch.sigmoid))(z)


def _sigmoid_exp_overflow(z):
    return torch.exp(-z) / (1 + torch.exp(-z)) ** 2  # exp(1000) = inf: inf / inf


def _sigmoid_itself(z):
    return torch.sigmoid(z)


def _sigmoid_sign(z):
    s = torch.sigmoid(z)
    return s * (s - 1)


def _sigmoid_product(z):
    return torch.sigmoid(z) * torch.sigmoid(-z)


def _sigmoid_stable_exp(z):
    e = torch.exp(-z.abs())  # never overflows; the derivative is even in z
    return e / (1 + e) ** 2


# ---------------------------------------------------------------- 4.1.1: softmax


def _softmax_global_max(z):
    e = torch.exp(z - z.max())  # one maximum for the whole batch
    return e / e.sum(dim=1, keepdim=True)


def _softmax_naive(z):
    e = torch.exp(z)
    return e / e.sum(dim=1, keepdim=True)


def _softmax_columns(z):
    e = torch.exp(z - z.max(dim=0, keepdim=True).values)
    return e / e.sum(dim=0, keepdim=True)


def _softmax_log(z):
    return z - torch.logsumexp(z, dim=1, keepdim=True)


def _softmax_logsumexp(z):
    return torch.exp(z - torch.logsumexp(z, dim=1, keepdim=True))


def _softmax_rows(z):
    rows = []
    for row in z:
        e = torch.exp(row - row.max())
        rows.append(e / e.sum())
    return torch.stack(rows)


# ---------------------------------------------------------------- 4.1.3: freeze


def _freeze_first_layer(module):
    for parameter in next(iter(module.children())).parameters():
        parameter.requires_grad_(False)
    return module


def _freeze_attribute(module):
    module.requires_grad = False
    return module


def _freeze_eval(module):
    return module.eval()


def _freeze_copy(module):
    import copy

    frozen = copy.deepcopy(module)
    frozen.requires_grad_(False)
    return frozen


def _freeze_zero(module):
    for parameter in module.parameters():
        parameter.data.zero_()
        parameter.requires_grad_(False)
    return module


def _freeze_requires_grad_(module):
    return module.requires_grad_(False)


def _freeze_attribute_loop(module):
    for _, parameter in module.named_parameters():
        parameter.requires_grad = False
    return module


# ---------------------------------------------------------------- 4.1.4: L2 penalty


def _l2_with(transform, *, skip_bias=True, factor=1.0):
    def penalty(model, lam):
        total = sum(transform(p).sum() for n, p in model.named_parameters() if not (skip_bias and "bias" in n))
        return factor * lam * total

    return penalty


def _l2_norm(model, lam):
    return lam * torch.sqrt(sum(p.pow(2).sum() for n, p in model.named_parameters() if "bias" not in n))


def _l2_float(model, lam):
    return torch.tensor(_l2_with(torch.square)(model, lam).item())


def _l2_modules(model, lam):
    return lam * sum(m.weight.pow(2).sum() for m in model.modules() if isinstance(m, nn.Linear))


def _l2_by_ndim(model, lam):
    return lam * torch.stack([p.pow(2).sum() for p in model.parameters() if p.ndim > 1]).sum()


# ---------------------------------------------------------------- 4.2.1: ok_to_push


def _push_mean_only(new, previous):
    return abs(float(new.mean()) - float(previous.mean())) <= 0.1


def _push_strict_range(new, previous):
    if not torch.isfinite(new).all() or ((new <= 0) | (new >= 1)).any():
        return False
    return abs(float(new.mean()) - float(previous.mean())) <= 0.1


def _push_no_nan_check(new, previous):
    if ((new < 0) | (new > 1)).any():  # NaN < 0 and NaN > 1 are both False
        return False
    return not float(new.mean()) - float(previous.mean()) > 0.1 and not float(previous.mean()) - float(new.mean()) > 0.1


def _push_one_direction(new, previous):
    if not torch.isfinite(new).all() or ((new < 0) | (new > 1)).any():
        return False
    return float(new.mean()) - float(previous.mean()) <= 0.1


def _push_min_max(new, previous):
    return bool(
        torch.isfinite(new).all() and new.min() >= 0 and new.max() <= 1
        and (new.mean() - previous.mean()).abs() <= 0.1
    )


def _push_numpy(new, previous):
    a = new.numpy()
    return bool(np.isfinite(a).all() and ((a >= 0) & (a <= 1)).all() and abs(a.mean() - previous.numpy().mean()) <= 0.1)


# ---------------------------------------------------------------- 4.2.2: progressive_accuracy


def _progressive(score, *, update_first=False):
    def progressive_accuracy(predict, update, batches):
        scores = []
        for X, y in batches:
            if update_first:
                update(X, y)
            scores.append(score(predict(X), y))
            if not update_first:
                update(X, y)
        return scores

    return progressive_accuracy


def _progressive_running(predict, update, batches):
    scores, right, seen = [], 0.0, 0
    for X, y in batches:
        right += float(((predict(X) > 0).float() == y).sum())
        seen += len(y)
        scores.append(right / seen)
        update(X, y)
    return scores


# ---------------------------------------------------------------- 4.2.3: precision_recall


def _pr_sklearn(y_true, y_pred):
    from sklearn.metrics import precision_score, recall_score

    return precision_score(y_true, y_pred, zero_division=0.0), recall_score(y_true, y_pred, zero_division=0.0)


def _pr_divides(y_true, y_pred):
    tp = ((y_true == 1) & (y_pred == 1)).sum().item()
    return tp / (y_pred == 1).sum().item(), tp / (y_true == 1).sum().item()


def _pr_swapped(y_true, y_pred):
    p, r = _pr_max_one(y_true, y_pred)
    return r, p


def _pr_over_len(y_true, y_pred):
    tp = ((y_true == 1) & (y_pred == 1)).sum().item()
    return tp / len(y_true), tp / (y_true == 1).sum().item()


def _pr_tensor_nan(y_true, y_pred):
    tp = ((y_true == 1) & (y_pred == 1)).sum()
    return float(tp / (y_pred == 1).sum()), float(tp / (y_true == 1).sum())  # 0 / 0 = nan


def _pr_max_one(y_true, y_pred):
    tp = int(((y_true == 1) & (y_pred == 1)).sum())
    return tp / max(int(y_pred.sum()), 1), tp / max(int(y_true.sum()), 1)  # tp is 0 when a count is


def _pr_confusion(y_true, y_pred):
    tp = float((y_true * y_pred).sum())
    fp = float(((1 - y_true) * y_pred).sum())
    fn = float((y_true * (1 - y_pred)).sum())
    return (tp / (tp + fp) if tp + fp else 0.0), (tp / (tp + fn) if tp + fn else 0.0)


# ---------------------------------------------------------------- 4.3.1: with_label_columns


def _label_from_max(X, y, num_classes):
    return torch.cat([X, F.one_hot(y, int(y.max()) + 1).to(X.dtype)], dim=1)


def _label_two_arguments(X, y):
    return torch.cat([X, F.one_hot(y).to(X.dtype)], dim=1)


def _label_as_number(X, y, num_classes):
    return torch.cat([X, y[:, None].to(X.dtype)], dim=1)


def _label_first(X, y, num_classes):
    return torch.cat([F.one_hot(y, num_classes).to(X.dtype), X], dim=1)


def _label_eye(X, y, num_classes):
    return torch.cat([X, torch.eye(num_classes, dtype=X.dtype)[y]], dim=1)


def _label_scatter(X, y, num_classes):
    one_hot = torch.zeros(len(y), num_classes, dtype=X.dtype).scatter_(1, y[:, None], 1.0)
    return torch.hstack([X, one_hot])


# ---------------------------------------------------------------- 4.3.2: psi


def _shares(counts):
    return (counts / counts.sum()).clamp(min=1e-4)


def _psi_no_floor(expected, actual):
    e, a = expected / expected.sum(), actual / actual.sum()
    return float(((a - e) * torch.log(a / e)).sum())


def _psi_kl(expected, actual):
    e, a = _shares(expected), _shares(actual)
    return float((a * torch.log(a / e)).sum())


def _psi_flipped(expected, actual):
    e, a = _shares(expected), _shares(actual)
    return float(((a - e) * torch.log(e / a)).sum())


def _psi_counts(expected, actual):
    e, a = expected.clamp(min=1e-4), actual.clamp(min=1e-4)
    return float(((a - e) * torch.log(a / e)).sum())


def _psi_floor_counts(expected, actual):
    e, a = expected.clamp(min=1e-4), actual.clamp(min=1e-4)
    e, a = e / e.sum(), a / a.sum()
    return float(((a - e) * torch.log(a / e)).sum())


def _psi_numpy(expected, actual):
    e = np.maximum(expected.numpy() / expected.numpy().sum(), 1e-4)
    a = np.maximum(actual.numpy() / actual.numpy().sum(), 1e-4)
    return float(np.sum((a - e) * (np.log(a) - np.log(e))))


def _psi_loop(expected, actual):
    total = 0.0
    for e_count, a_count in zip(expected.tolist(), actual.tolist(), strict=True):
        e = max(e_count / float(expected.sum()), 1e-4)
        a = max(a_count / float(actual.sum()), 1e-4)
        total += (a - e) * np.log(a / e)
    return total


# ---------------------------------------------------------------- 4.3.3: mean_baseline_mse


def _mse_of(center, *, power=2, root=False, denominator=0):
    def mean_baseline_mse(y_train, y_test):
        errors = (y_test - center(y_train, y_test)).abs() ** power
        value = errors.sum() / (len(y_test) - denominator)
        return float(value.sqrt() if root else value)

    return mean_baseline_mse


_train_mean = lambda y_train, y_test: y_train.mean()  # noqa: E731


def _mse_train_rows(y_train, y_test):
    return float(((y_train - y_train.mean()) ** 2).mean())


def _mse_loss(y_train, y_test):
    return float(F.mse_loss(y_train.mean().expand_as(y_test), y_test))


def _mse_decomposed(y_train, y_test):
    bias = y_test.mean() - y_train.mean()
    return float(bias**2 + y_test.var(unbiased=False))  # squared bias + variance


# ---------------------------------------------------------------- 4.3.4: count_dead_units


def _dead_zero_entries(activations):
    return int((activations == 0).sum())


def _dead_rows(activations):
    return int((activations == 0).all(dim=1).sum())


def _dead_any_zero(activations):
    return int((activations == 0).any(dim=0).sum())


def _dead_small_mean(activations):
    return int((activations.mean(dim=0) < 1e-2).sum())


def _dead_alive(activations):
    return int((activations > 0).any(dim=0).sum())


def _dead_max(activations):
    return int((activations.max(dim=0).values <= 0).sum())


def _dead_all_zero(activations):
    return sum(1 for column in activations.T if torch.all(column == 0))


# ---------------------------------------------------------------- 4.3.5: integrated gradients


def _ig_rule(alphas_of, *, reduce="mean", factor=lambda x, b: x - b, ignore_baseline=False):
    def integrated_gradients(model, x, baseline, n_steps):
        start = torch.zeros_like(x) if ignore_baseline else baseline
        alphas = alphas_of(n_steps).to(x.dtype)
        path = (start + alphas[:, None, None] * (x - start)).requires_grad_(True)
        (grads,) = torch.autograd.grad(model(path.reshape(-1, x.shape[1])).sum(), path)
        total = grads.sum(dim=0) if reduce == "sum" else grads.mean(dim=0)
        return factor(x, start) * total

    return integrated_gradients


_right = lambda n: torch.arange(1, n + 1) / n  # noqa: E731  the original paper's right Riemann sum
_left = lambda n: torch.arange(n) / n  # noqa: E731
_mid = lambda n: (torch.arange(n) + 0.5) / n  # noqa: E731
_only_x = lambda n: torch.ones(1)  # noqa: E731


def _ig_captum(model, x, baseline, n_steps):
    from captum.attr import IntegratedGradients

    return IntegratedGradients(model).attribute(x, baselines=baseline, n_steps=n_steps)


def _ig_trapezoid(model, x, baseline, n_steps):
    alphas = torch.linspace(0, 1, n_steps + 1, dtype=x.dtype)
    grads = []
    for alpha in alphas:  # one point of the path at a time
        point = (baseline + alpha * (x - baseline)).requires_grad_(True)
        grads.append(torch.autograd.grad(model(point).sum(), point)[0])
    grads = torch.stack(grads)
    return (x - baseline) * ((grads[:-1] + grads[1:]) / 2).mean(dim=0)


# ---------------------------------------------------------------- 4.4.1: shard


def _shard_whole(batch, rank, world_size):
    return batch


def _shard_overlap(batch, rank, world_size):
    k = len(batch) // world_size
    return batch[rank * k : (rank + 1) * k + 1]


def _shard_one_based(batch, rank, world_size):
    return batch[rank + 1 :: world_size]


def _shard_block_is_world(batch, rank, world_size):
    return batch[rank * world_size : (rank + 1) * world_size]


def _shard_blocks(batch, rank, world_size):
    k = len(batch) // world_size
    return batch[rank * k : (rank + 1) * k]


def _shard_chunk(batch, rank, world_size):
    return torch.chunk(batch, world_size)[rank]


# ---------------------------------------------------------------- 4.4.2: mlp_flops


def _flops_counter(widths, batch_size):
    from torch.utils.flop_counter import FlopCounterMode

    model = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)])
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(batch_size, widths[0]))
    return counter.get_total_flops()


def _flops(layer, *, pairs=lambda w: zip(w[:-1], w[1:], strict=True)):
    return lambda widths, batch_size: sum(layer(batch_size, a, b) for a, b in pairs(widths))


def _flops_loop(widths, batch_size):
    total = 0
    for i in range(len(widths) - 1):
        total += 2 * batch_size * widths[i] * widths[i + 1]
    return total


def _flops_factored(widths, batch_size):
    return 2 * batch_size * sum(a * b for a, b in zip(widths, widths[1:]))  # noqa: B905


# ---------------------------------------------------------------- 4.4.3: bias SQL


def _sql(bias="AVG(score) - AVG(label)", order="ORDER BY slice", n="COUNT(*)"):
    return f"SELECT slice, {n} AS n, {bias} AS prediction_bias FROM preds GROUP BY slice {order}"


WRONG = {  # exercise -> [(what the mistake is, the wrong answer, words the hint must contain)]
    "4.0-sgd-step": [
        ("autograd with backward (forbidden)", _sgd_autograd, r"by hand.*autograd"),
        ("autograd.grad (forbidden)", _sgd_autograd_grad, r"switched off"),
        ("sign mistake", _sgd_uphill, r"uphill"),
        ("factor 2 left out", _sgd_no_two, r"factor 2"),
        ("summed, not averaged over the batch", _sgd_sum, r"batch size B"),
        ("off-by-one denominator", _sgd_n_minus_one, r"B, not B - 1"),
        ("no step", lambda w, X, y, lr: w, r"did not move"),
    ],
    "4.0-sigmoid-grad": [
        ("autograd with backward (forbidden)", _sigmoid_backward, r"without autograd|switched off"),
        ("torch.func.grad (forbidden)", _sigmoid_func_grad, r"switched off"),
        ("exp overflows at z = -1000", _sigmoid_exp_overflow, r"overflow"),
        ("the sigmoid itself", _sigmoid_itself, r"sigmoid itself"),
        ("sign flipped", _sigmoid_sign, r"sign is flipped"),
        ("tanh's derivative instead", lambda z: 1 - torch.tanh(z) ** 2, r"differ.*in terms of sigmoid"),
    ],
    "4.1.1-softmax": [
        ("torch.softmax (forbidden)", lambda z: torch.softmax(z, dim=1), r"torch\.softmax.*switched off"),
        ("F.softmax (forbidden)", lambda z: F.softmax(z, dim=-1), r"switched off"),
        ("Tensor.softmax (forbidden)", lambda z: z.softmax(1), r"switched off"),
        ("nn.Softmax (forbidden)", lambda z: nn.Softmax(dim=1)(z), r"switched off"),
        ("exp of log_softmax (forbidden)", lambda z: z.log_softmax(1).exp(), r"switched off"),
        ("shifted by the global maximum", _softmax_global_max, r"each row's own maximum"),
        ("no shift: overflows", _softmax_naive, r"overflow"),
        ("normalized over the wrong axis", _softmax_columns, r"columns sum to 1.*dim=1"),
        ("log-probabilities", _softmax_log, r"log-probabilities"),
    ],
    "4.1.2-expected-counts": [
        ("the linear predictor (no inverse link)", lambda c, b, X: X @ c + b, r"log-rates"),
        ("log instead of exp", lambda c, b, X: torch.log(X @ c + b), r"inverse is exp"),
        ("intercept left out", lambda c, b, X: torch.exp(X @ c), r"same factor.*intercept"),
        ("intercept multiplied", lambda c, b, X: b * torch.exp(X @ c), r"intercept"),
        ("sign flipped", lambda c, b, X: torch.exp(-(X @ c + b)), r"sign is flipped"),
    ],
    "4.1.3-freeze": [
        ("only the first layer", _freeze_first_layer, r"still trainable.*nested"),
        ("requires_grad set on the module", _freeze_attribute, r"module\.requires_grad = False.*each parameter"),
        ("eval() instead", _freeze_eval, r"eval\(\).*trainable"),
        ("a frozen copy", _freeze_copy, r"same object"),
        ("weights zeroed", _freeze_zero, r"must not change the weights"),
    ],
    "4.1.4-l2-penalty": [
        ("biases penalized", _l2_with(torch.square, skip_bias=False), r"biases"),
        ("absolute values (L1)", _l2_with(torch.abs), r"L1"),
        ("lam left out", lambda model, lam: _l2_with(torch.square)(model, 1.0), r"multiply the sum by lam"),
        ("half of it", _l2_with(torch.square, factor=0.5), r"lam / 2"),
        ("the norm (square root)", _l2_norm, r"square root"),
        ("a detached float tensor", _l2_float, r"attached to the graph"),
        ("a Python float", lambda model, lam: _l2_modules(model, lam).item(), r"single-number tensor"),
        ("plain sum, not squares", _l2_with(lambda p: p), r"value is off"),
    ],
    "4.2.1-ok-to-push": [
        ("only the mean checked", _push_mean_only, r"1\.2.*every value"),
        ("range without its ends (off by one)", _push_strict_range, r"exactly 0\.0 and 1\.0"),
        ("NaN let through by comparisons", _push_no_nan_check, r"NaN.*isfinite"),
        ("a drop of the mean ignored", _push_one_direction, r"dropped.*either direction"),
        ("everything accepted", lambda new, previous: True, r"accepted"),
    ],
    "4.2.2-progressive-accuracy": [
        ("0.5 threshold on logits", _progressive(lambda s, y: float(((s > 0.5).float() == y).float().mean())),
         r"logits.*> 0"),
        ("trained before scoring", _progressive(lambda s, y: float(((s > 0).float() == y).float().mean()),
                                                update_first=True), r"predict, then update"),
        ("counts, not accuracies", _progressive(lambda s, y: float(((s > 0).float() == y).sum())), r"counts"),
        ("error rates", _progressive(lambda s, y: float(((s > 0).float() != y).float().mean())), r"error rates"),
        ("running mean", _progressive_running, r"running means"),
    ],
    "4.2.3-precision-recall": [
        ("scikit-learn (forbidden)", _pr_sklearn, r"definitions.*switched off"),
        ("ZeroDivisionError when nothing is predicted positive", _pr_divides, r"no positive at all.*0\.0"),
        ("NaN when nothing is predicted positive", _pr_tensor_nan, r"no positive at all.*0\.0"),
        ("swapped", _pr_swapped, r"swapped"),
        ("precision over every example", _pr_over_len, r"precision is off.*call positive"),
    ],
    "4.3.1-label-columns": [
        ("class count from y.max()", _label_from_max, r"from num_classes, not from the labels"),
        ("two arguments, as before", _label_two_arguments, r"three arguments"),
        ("the label as one number", _label_as_number, r"one column per class"),
        ("label columns before X", _label_first, r"after X"),
        ("X alone", lambda X, y, num_classes: X, r"columns"),
    ],
    "4.3.2-psi": [
        ("no floor: an empty bin gives inf", _psi_no_floor, r"empty bin.*1e-4"),
        ("KL divergence one way", _psi_kl, r"KL divergence"),
        ("log ratio upside down", _psi_flipped, r"upside down"),
        ("counts, not shares", _psi_counts, r"counts where PSI needs shares"),
        ("floor applied to counts", _psi_floor_counts, r"after dividing"),
        ("total variation (the starter)", lambda e, a: float((e / e.sum() - a / a.sum()).abs().sum()),
         r"sum \(a - e\) \* log"),
    ],
    "4.3.3-mean-baseline-mse": [
        ("test mean (leak)", _mse_of(lambda tr, te: te.mean()), r"only learn from training data"),
        ("RMSE", _mse_of(_train_mean, root=True), r"square root"),
        ("MAE", _mse_of(_train_mean, power=1), r"absolute error"),
        ("off-by-one denominator", _mse_of(_train_mean, denominator=1), r"n, not n - 1"),
        ("median", _mse_of(lambda tr, te: tr.median()), r"not its median"),
        ("error on the training rows", _mse_train_rows, r"training rows"),
    ],
    "4.3.4-count-dead-units": [
        ("zero entries", _dead_zero_entries, r"not zero entries"),
        ("rows instead of columns (axis)", _dead_rows, r"examples \(rows\).*dim=0"),
        ("any zero instead of all", _dead_any_zero, r"0 on some example"),
        ("a small mean counted as dead", _dead_small_mean, r"small but positive"),
        ("alive units", _dead_alive, r"alive"),
    ],
    "4.3.5-integrated-gradients": [
        ("captum (forbidden)", _ig_captum, r"captum.*switched off"),
        ("summed, not averaged", _ig_rule(_mid, reduce="sum"), r"summed.*average"),
        ("sign flipped", _ig_rule(_mid, factor=lambda x, b: b - x), r"sign is flipped"),
        ("no (x - baseline) factor", _ig_rule(_mid, factor=lambda x, b: 1.0), r"multiply the averaged gradient"),
        ("gradient at x only", _ig_rule(_only_x), r"gradient at x only"),
        ("baseline ignored", _ig_rule(_mid, ignore_baseline=True, factor=lambda x, b: x), r"ignore the baseline"),
    ],
    "4.4.1-shard": [
        ("the whole batch", _shard_whole, r"two ranks"),
        ("blocks overlapping by one row", _shard_overlap, r"two ranks"),
        ("ranks counted from 1", _shard_one_based, r"first row.*from 0"),
        ("block size taken as world_size", _shard_block_is_world, r"len\(batch\) // world_size"),
        ("a list of rows", lambda batch, rank, world_size: batch[rank::world_size].tolist(), r"tensor"),
    ],
    "4.4.2-mlp-flops": [
        ("PyTorch's FLOP counter (forbidden)", _flops_counter, r"yourself.*switched off"),
        ("multiply-adds", _flops(lambda n, a, b: n * a * b), r"multiply-adds"),
        ("batch ignored", _flops(lambda n, a, b: 2 * a * b), r"batch_size"),
        ("bias additions counted", _flops(lambda n, a, b: 2 * n * a * b + n * b), r"bias"),
        ("last layer left out (off by one)",
         _flops(lambda n, a, b: 2 * n * a * b, pairs=lambda w: zip(w[:-2], w[1:-1], strict=True)), r"last layer"),
        ("weights counted", _flops(lambda n, a, b: a * b), r"number of weights"),
    ],
    "4.4.3-bias-sql": [
        ("sign flipped", _sql("AVG(label) - AVG(score)"), r"sign is flipped"),
        ("prediction instead of score", _sql("AVG(prediction) - AVG(label)"), r"score column"),
        ("sums", _sql("SUM(score) - SUM(label)"), r"sums.*AVG"),
        ("not sorted", _sql(order=""), r"ORDER BY"),
        ("sorted the wrong way", _sql(order="ORDER BY slice DESC"), r"ORDER BY"),
        ("n missing", "SELECT slice, AVG(score) - AVG(label) AS prediction_bias FROM preds GROUP BY slice",
         r"columns slice, n, prediction_bias"),
        ("syntax error", "SELEC slice FROM preds", r"could not run"),
    ],
}

RIGHT = {  # exercise -> correct answers other than the model solution
    "4.0-sgd-step": [_sgd_einsum, _sgd_rows],
    "4.0-sigmoid-grad": [_sigmoid_product, _sigmoid_stable_exp, lambda z: 0.25 / torch.cosh(z / 2) ** 2],
    "4.1.1-softmax": [_softmax_logsumexp, _softmax_rows],
    "4.1.2-expected-counts": [
        lambda c, b, X: torch.einsum("nf,f->n", X, c).add(b).exp(),
        lambda c, b, X: torch.exp(b) * torch.exp(X * c).prod(dim=1),  # each factor multiplies the rate
    ],
    "4.1.3-freeze": [_freeze_requires_grad_, _freeze_attribute_loop],
    "4.1.4-l2-penalty": [_l2_modules, _l2_by_ndim, _l2_with(torch.square)],
    "4.2.1-ok-to-push": [_push_min_max, _push_numpy],
    "4.2.2-progressive-accuracy": [
        _progressive(lambda s, y: ((s > 0) == y.bool()).float().mean().item()),
        _progressive(lambda s, y: float((torch.sigmoid(s).round() == y).float().mean())),
    ],
    "4.2.3-precision-recall": [_pr_max_one, _pr_confusion],
    "4.3.1-label-columns": [_label_eye, _label_scatter],
    "4.3.2-psi": [_psi_numpy, _psi_loop],
    "4.3.3-mean-baseline-mse": [_mse_loss, _mse_decomposed, _mse_of(_train_mean)],
    "4.3.4-count-dead-units": [_dead_max, _dead_all_zero],
    "4.3.5-integrated-gradients": [_ig_rule(_right), _ig_rule(_left), _ig_trapezoid],
    "4.4.1-shard": [_shard_blocks, _shard_chunk],
    "4.4.2-mlp-flops": [_flops_loop, _flops_factored],
    "4.4.3-bias-sql": [
        _sql("AVG(score - label)", n="COUNT(label)"),
        "WITH per AS (SELECT slice, COUNT(*) AS n, SUM(score) AS s, SUM(label) AS l FROM preds GROUP BY slice)\n"
        "SELECT slice, n, s / n - l / n AS prediction_bias FROM per ORDER BY slice ASC",
    ],
}


def _hint(exercise_id: str, answer, capsys) -> str:
    """Grade a wrong answer: check() must return False and print one ✗ line with a hint."""
    assert check(exercise_id, answer) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {exercise_id}: not yet. Hint: ") and out.count("\n") == 1, out
    return out


def test_every_exercise_has_wrong_and_right_answers():
    assert sorted(WRONG) == sorted(RIGHT)
    elsewhere = set(list_exercises()) - set(WRONG)
    for exercise_id in elsewhere:
        module = Path(__file__).parent / "exercises" / f"test_section_{exercise_id.split('-', 1)[0].replace('.', '_')}.py"
        assert module.exists(), f"{exercise_id} has no wrong and right answers here nor in {module.name}"
        assert f'"{exercise_id}"' in module.read_text(encoding="utf-8"), f"{module.name} never checks {exercise_id}"
    assert all(len(answers) >= 3 for answers in WRONG.values())
    assert all(len(answers) >= 2 for answers in RIGHT.values())


@pytest.mark.parametrize("exercise_id", list_exercises())
def test_every_solution_passes_its_grader(exercise_id, capsys):
    assert check(exercise_id, get_exercise(exercise_id).solution) is True
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("exercise_id", "answer"),
    [pytest.param(e, a, id=f"{e}-{i}") for e, answers in RIGHT.items() for i, a in enumerate(answers)],
)
def test_other_right_answers_pass(exercise_id, answer, capsys):
    assert check(exercise_id, answer) is True, capsys.readouterr().out


@pytest.mark.parametrize(
    ("exercise_id", "answer", "words"),
    [pytest.param(e, a, w, id=f"{e}-{what}") for e, cases in WRONG.items() for what, a, w in cases],
)
def test_wrong_answers_get_a_hint_about_their_mistake(exercise_id, answer, words, capsys):
    out = _hint(exercise_id, answer, capsys)
    assert re.search(words, out, flags=re.IGNORECASE | re.DOTALL), out


@pytest.mark.parametrize("exercise_id", list_exercises())
def test_a_wrong_answer_gets_a_hint_not_an_exception(exercise_id, capsys):
    assert check(exercise_id, None) is False
    assert check(exercise_id, lambda *args, **kwargs: None) is False
    out = capsys.readouterr().out
    assert out.count("✗") == 2 and "Hint:" in out


def test_solutions_survive_the_special_cases():
    precision_recall = get_exercise("4.2.3-precision-recall").solution
    assert precision_recall(torch.tensor([1, 0, 1]), torch.zeros(3, dtype=torch.long)) == (0.0, 0.0)
    assert precision_recall(torch.zeros(3, dtype=torch.long), torch.tensor([1, 0, 0])) == (0.0, 0.0)
    with_label_columns = get_exercise("4.3.1-label-columns").solution
    out = with_label_columns(torch.zeros(2, 1), torch.tensor([0, 0]), 3)  # classes 1 and 2 absent
    assert out.tolist() == [[0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]


def test_the_stable_softmax_is_finite_where_the_global_shift_is_not():
    z = torch.tensor([[1000.0, 999.0], [0.0, -1.0]])
    assert torch.isnan(_softmax_global_max(z)).any()
    assert torch.allclose(get_exercise("4.1.1-softmax").solution(z), torch.softmax(z, dim=1))


# ---------------------------------------------------------------- the shortcut switch


def test_forbidden_restores_every_shortcut_even_when_the_answer_fails():
    def fails(z):
        torch.softmax(z, dim=0)

    with pytest.raises(ZeroDivisionError), forbidden(SOFTMAX + AUTOGRAD):
        raise ZeroDivisionError("the answer failed")
    assert call_without(SOFTMAX, fails, torch.zeros(2)) == (None, ["torch.softmax"])
    assert call_without(AUTOGRAD, _sigmoid_backward, torch.zeros(2)) == (None, ["torch.Tensor.backward"])
    assert {path: _resolve(path) for path in _PRISTINE} == _PRISTINE
    assert set(vars(torch.Tensor)) == _TENSOR_NAMES
    z = torch.zeros(3, requires_grad=True)
    torch.sigmoid(z).sum().backward()  # autograd works again
    assert torch.allclose(z.grad, torch.full((3,), 0.25))
    for softmax in (torch.softmax, F.softmax, torch.Tensor.softmax, nn.Softmax(dim=0)):
        if isinstance(softmax, nn.Module):
            assert softmax(torch.zeros(2)).tolist() == [0.5, 0.5]
        else:
            assert softmax(torch.zeros(2), 0).tolist() == [0.5, 0.5]


def test_forbidden_catches_a_shortcut_imported_before_and_swallowed():
    from torch.autograd import grad  # bound before the switch: still caught, through the engine

    def swallows(z):
        z = z.clone().requires_grad_(True)
        try:
            return grad(torch.sigmoid(z).sum(), z)[0]
        except Exception:
            return torch.zeros_like(z)

    result, used = call_without(AUTOGRAD, swallows, torch.zeros(2))
    assert result is None and used
    with forbidden(["torch.softmax"]) as used, pytest.raises(ShortcutUsed):
        torch.softmax(torch.zeros(2), dim=0)
    assert used == ["torch.softmax"]


def _resolve(path: str):
    owner, name = _owner(path)
    return vars(owner).get(name, getattr(owner, name))


_PRISTINE = {path: _resolve(path) for path in SOFTMAX + AUTOGRAD}  # before any test switches them off
_TENSOR_NAMES = set(vars(torch.Tensor))


# ---------------------------------------------------------------- registry and quizzes


def test_unknown_ids_raise():
    with pytest.raises(KeyError, match="Expected `exercise_id` to be one of"):
        check("no-such-exercise", 1)
    with pytest.raises(KeyError, match="Expected `section_id` to be one of"):
        load_quiz("9.9")


def test_ids_are_unique():
    with pytest.raises(ValueError, match="an id not registered yet"):
        exercise("4.0-sgd-step", "again", solution=None)(lambda answer: None)


def test_quiz_renders_html(capsys, monkeypatch):
    shown = []
    monkeypatch.setattr("jupyterquiz.display_quiz", lambda ref, **kw: shown.append(ref))
    quiz("4.0")
    assert shown and shown[0] == load_quiz("4.0")
