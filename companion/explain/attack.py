"""Attacking an explanation: small input changes that move the attributions but not the prediction.

Feature attributions can be manipulated like predictions (Ghorbani, Abid and Zou, "Interpretation of
Neural Networks is Fragile", AAAI 2019). :func:`attack_attributions` crafts such a change by signed
gradient steps on the share of attribution mass that stays on the originally top-ranked features,
with a penalty that holds the predicted probability in place. The objective differentiates through
integrated gradients, so it needs second derivatives of the model: use a smooth activation (tanh,
softplus, GELU). A ReLU network's second derivatives vanish almost everywhere, so the attack would see
only part of how its attributions move.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from companion._validation import check_float, check_int, check_tensor, message
from companion.explain._common import check_model
from companion.explain.integrated_gradients import integrated_gradients
from companion.utils import model_device

__all__ = ["AttackResult", "attack_attributions", "differentiable_integrated_gradients", "top_k_overlap"]


def differentiable_integrated_gradients(
    model: torch.nn.Module, inputs: torch.Tensor, *, target: int, n_steps: int = 16
) -> torch.Tensor:
    """Integrated gradients from a zero baseline, as a differentiable function of ``inputs``.

    The midpoint rule with ``n_steps`` points, computed with ``create_graph=True`` so that the
    attributions themselves can be differentiated (captum's do not keep that graph).

    Args:
        model: maps ``(N, F)`` to ``(N, C)`` logits.
        inputs: a float batch ``(N, F)``.
        target: the output column to explain, an int in ``[0, C)``.
        n_steps: path points, an int >= 1.

    Returns:
        Attributions ``(N, F)`` that carry a graph back to ``inputs``.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
        >>> x = torch.randn(5, 3, requires_grad=True)
        >>> a = differentiable_integrated_gradients(model, x, target=1)
        >>> a.shape, a.requires_grad
        (torch.Size([5, 3]), True)
    """
    model = check_model(model)
    inputs = check_tensor("inputs", inputs, ndim=2, floating=True, finite=True)
    n_steps = check_int("n_steps", n_steps, low=1)
    target = check_int("target", target, low=0)
    alphas = (torch.arange(n_steps, dtype=inputs.dtype, device=inputs.device) + 0.5) / n_steps
    path = alphas[:, None, None] * inputs  # (n_steps, N, F)
    outputs = model(path.reshape(-1, inputs.shape[1]))
    if outputs.ndim != 2 or target >= outputs.shape[1]:
        raise ValueError(message("target", f"a column of the model's (N, C) output, C = {outputs.shape[-1]}", target))
    (gradients,) = torch.autograd.grad(outputs[:, target].sum(), path, create_graph=True)
    return inputs * gradients.mean(0)


def top_k_overlap(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """Per row, the share of the ``k`` largest ``|a|`` features that are also among the ``k`` largest ``|b|``.

    Args:
        a, b: attributions of the same shape ``(N, F)``.
        k: how many top features to compare, an int in ``[1, F]``.

    Returns:
        ``(N,)`` shares in ``[0, 1]``: 1 when both rank the same ``k`` features on top.

    Example:
        >>> top_k_overlap(torch.tensor([[3., 2., 1.]]), torch.tensor([[1., 2., 3.]]), 2)
        tensor([0.5000])
    """
    a = check_tensor("a", a, ndim=2, floating=True, finite=True)
    b = check_tensor("b", b, ndim=2, floating=True, finite=True)
    if a.shape != b.shape:
        raise ValueError(message("b", f"a tensor of the shape of `a`, {tuple(a.shape)}", b))
    k = check_int("k", k, low=1, high=a.shape[1])
    top_a, top_b = a.abs().topk(k, dim=1).indices, b.abs().topk(k, dim=1).indices
    return (top_a[:, :, None] == top_b[:, None, :]).any(2).float().mean(1)


@dataclass(frozen=True)
class AttackResult:
    """What :func:`attack_attributions` found.

    Attributes:
        inputs: the attacked inputs ``(N, F)``; a row stays at its original value when no step
            lowered the overlap while keeping the prediction.
        overlap: ``(N,)`` top-``k`` overlap of the attacked explanation with the original one.
        probability_change: ``(N,)`` absolute change of the target's predicted probability.
        original: the original attributions ``(N, F)`` (captum's integrated gradients).
    """

    inputs: torch.Tensor
    overlap: torch.Tensor
    probability_change: torch.Tensor
    original: torch.Tensor


def attack_attributions(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    *,
    target: int,
    k: int = 5,
    epsilon: float = 0.25,
    tolerance: float = 0.05,
    steps: int = 30,
    penalty: float = 10.0,
    n_steps: int = 16,
    check_every: int = 5,
    reference_steps: int = 32,
) -> AttackResult:
    """Craft input changes within ``±epsilon`` that move the top-``k`` attributions, not the prediction.

    Each step moves every feature by ``epsilon / 10`` against the sign of the gradient of
    ``(share of |attribution| on the original top k) + penalty * (probability change)²``, then
    clips the change to the box ``[x - epsilon, x + epsilon]``. Every ``check_every`` steps the
    attributions are recomputed with captum (``reference_steps`` points), and each row keeps its
    best point so far among those whose probability moved less than ``tolerance`` and whose
    predicted class (probability above 0.5) did not change.

    Args:
        model: a smooth model (tanh, softplus, GELU) mapping ``(N, F)`` to ``(N, C)`` logits,
            in eval mode; its parameters are not changed.
        inputs: the examples to attack, a float batch ``(N, F)`` on the model's device.
        target: the class whose probability and attributions are used, an int in ``[0, C)``.
        k: top features whose attribution mass the attack pushes away, an int in ``[1, F]``.
        epsilon: the largest change of any feature, a float > 0 (in the inputs' units).
        tolerance: the largest allowed change of the target's probability, in (0, 1).
        steps: signed gradient steps, an int >= 1.
        penalty: weight of the squared probability change in the objective, a float >= 0.
        n_steps: path points of the differentiable integrated gradients, an int >= 1.
        check_every: steps between checks of the explanation, an int in ``[1, steps]``.
        reference_steps: integration steps of the reference attributions, an int >= 2.

    Returns:
        :class:`AttackResult`.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> result = attack_attributions(model, torch.randn(4, 6), target=1, k=2, steps=10)
        >>> bool((result.probability_change < 0.05).all()), tuple(result.inputs.shape)
        (True, (4, 6))
    """
    model = check_model(model)
    x0 = check_tensor("inputs", inputs, ndim=2, floating=True, finite=True).detach()
    target = check_int("target", target, low=0)
    k = check_int("k", k, low=1, high=x0.shape[1])
    epsilon = check_float("epsilon", epsilon, low=0, low_open=True)
    tolerance = check_float("tolerance", tolerance, low=0, high=1, low_open=True, high_open=True)
    steps = check_int("steps", steps, low=1)
    penalty = check_float("penalty", penalty, low=0)
    n_steps = check_int("n_steps", n_steps, low=1)
    check_every = check_int("check_every", check_every, low=1, high=steps)
    reference_steps = check_int("reference_steps", reference_steps, low=2)
    if x0.device != model_device(model):
        raise ValueError(message("inputs", f"a tensor on the model's device, {model_device(model)}", x0))

    def probability(x: torch.Tensor) -> torch.Tensor:
        return model(x).softmax(1)[:, target]

    def reference(x: torch.Tensor) -> torch.Tensor:
        return integrated_gradients(model, x, target=target, n_steps=reference_steps).attributions

    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:  # the attack differentiates with respect to the inputs only
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            outputs = model(x0)
        if outputs.ndim != 2 or target >= outputs.shape[1]:
            raise ValueError(message("target", f"a column of the model's (N, C) output, C = {outputs.shape[-1]}",
                                     target))
        p0 = outputs.softmax(1)[:, target]
        original = reference(x0)
        on_top = torch.zeros_like(x0).scatter_(1, original.abs().topk(k, dim=1).indices, 1.0)
        best_x, best_overlap, x = x0.clone(), torch.ones(len(x0), device=x0.device), x0.clone()
        for step in range(steps):
            x.requires_grad_(True)
            attributions = differentiable_integrated_gradients(model, x, target=target, n_steps=n_steps)
            mass_on_top = (attributions.abs() * on_top).sum(1) / attributions.abs().sum(1).clamp_min(1e-12)
            drift = (probability(x) - p0) ** 2
            (gradient,) = torch.autograd.grad((mass_on_top + penalty * drift).sum(), x)
            with torch.no_grad():
                x = x0 + (x - epsilon / 10 * gradient.sign() - x0).clamp(-epsilon, epsilon)
            if (step + 1) % check_every == 0:
                overlap = top_k_overlap(reference(x), original, k)
                with torch.no_grad():
                    p = probability(x)
                kept = ((p - p0).abs() < tolerance) & ((p > 0.5) == (p0 > 0.5))
                better = kept & (overlap < best_overlap)
                best_x[better], best_overlap[better] = x[better], overlap[better]
        with torch.no_grad():
            change = (probability(best_x) - p0).abs()
    finally:
        for p in trainable:
            p.requires_grad_(True)
    return AttackResult(inputs=best_x, overlap=best_overlap, probability_change=change, original=original)
