"""Adapting a pretrained model: linear probe, LoRA adapters, full fine-tuning, and what each costs.

Three ways to adapt a pretrained network to a new task with few labels, from the
cheapest to the most expensive:

* :func:`linear_probe`: freeze the whole pretrained model, train only the new head.
* :func:`add_lora`: freeze the pretrained weights and add trainable low-rank
  matrices ``B @ A`` beside the named ``nn.Linear`` layers (LoRA, through the
  ``peft`` library, on any ``nn.Module``); the new head trains too.
* :func:`full_finetune`: train every weight.

Each returns the model ready for :func:`companion.training.fit`; hand the optimizer
``trainable_parameters(model)``. :func:`parameter_counts` and
:func:`training_state_bytes` measure what each choice trains and holds in memory.
(Distillation, which makes a *smaller* model from an adapted one, is in
:mod:`companion.distillation`.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from companion._validation import check_float, check_instance, check_int, message, missing_extra

try:
    from peft import LoraConfig, PeftModel, get_peft_model
except ModuleNotFoundError as error:
    raise missing_extra("adapt", error) from error

__all__ = [
    "add_lora",
    "full_finetune",
    "linear_probe",
    "parameter_counts",
    "trainable_parameters",
    "training_state_bytes",
]


def _check_head(model: nn.Module, head: str) -> nn.Module:
    check_instance("head", head, str, "the name of a submodule, e.g. 'head'")
    names = dict(model.named_modules())
    if not head or head not in names:
        children = [name for name, _ in model.named_children()]
        raise ValueError(message("head", f"the name of a submodule of the model (its children: {children})",
                                 head))
    return names[head]


def linear_probe(model: nn.Module, *, head: str = "head") -> nn.Module:
    """Freeze every parameter of ``model`` except those of its submodule ``head``; return ``model``.

    The cheapest adaptation: only the head's weights get gradients and optimizer
    state, and since the frozen features never change they can even be computed
    once and the head trained on them alone.

    Args:
        model: a pretrained network with a new head, e.g. a
            :class:`~companion.models.tiny_transformer.SequenceClassifier`.
        head: the head's name in ``model.named_modules()``.

    Example:
        >>> model = linear_probe(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)), head="1")
        >>> parameter_counts(model)
        {'trainable': 18, 'total': 58, 'fraction': 0.3103...}
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    module = _check_head(model, head)
    model.requires_grad_(False)
    module.requires_grad_(True)
    return model


def full_finetune(model: nn.Module) -> nn.Module:
    """Make every parameter of ``model`` trainable; return ``model``.

    Example:
        >>> parameter_counts(full_finetune(nn.Linear(4, 2).requires_grad_(False)))["trainable"]
        10
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    return model.requires_grad_(True)


def add_lora(
    model: nn.Module,
    *,
    rank: int,
    target_modules: Sequence[str],
    alpha: float | None = None,
    dropout: float = 0.0,
    head: str | None = "head",
) -> PeftModel:
    """Wrap ``model`` with LoRA adapters (``peft``): frozen weights, trainable low-rank updates.

    Every ``nn.Linear`` whose name ends in one of ``target_modules`` computes
    ``W x + (alpha / rank) * B A x`` with ``A`` of shape ``(rank, in)`` (random) and
    ``B`` of shape ``(out, rank)`` (zeros), so at first the model computes exactly
    what it did before. Only ``A``, ``B`` and the ``head`` train: a layer of shape
    ``(out, in)`` gets ``rank * (in + out)`` trainable values instead of ``in * out``.

    ``peft`` changes ``model`` in place (its layers now hold the adapters) and
    returns a :class:`peft.PeftModel` around it, called like ``model``.

    Args:
        model: any network whose adapted layers are ``nn.Linear`` modules.
        rank: rank of the update ``B A``, an int >= 1.
        target_modules: ends of the names of the layers to adapt, e.g.
            ``["query", "value"]`` (the attention projections of
            :class:`~companion.models.tiny_transformer.TinyTransformer`).
        alpha: scale of the update is ``alpha / rank``, a float > 0; ``None`` means
            ``alpha = rank`` (scale 1).
        dropout: dropout on the adapters' input, a float in ``[0, 1)``.
        head: name of a submodule trained in full beside the adapters (the new task's
            head; ``peft``'s ``modules_to_save``), or ``None``.

    Returns:
        The :class:`peft.PeftModel`.

    Example:
        >>> base = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> lora = add_lora(base, rank=1, target_modules=["0"], head="2")
        >>> parameter_counts(lora)["trainable"]  # A (1 x 8) + B (8 x 1) + the head (8 * 2 + 2)
        34
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    if isinstance(model, PeftModel):
        raise TypeError(message("model", "a model without adapters (this one is a PeftModel already)", model))
    rank = check_int("rank", rank, low=1)
    if isinstance(target_modules, str) or not isinstance(target_modules, Sequence) or not target_modules:
        raise TypeError(message("target_modules", "a non-empty list of layer names such as ['query', 'value']",
                                target_modules))
    linear_names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    for target in target_modules:
        check_instance("target_modules", target, str, "a list of strings")
        if not any(name == target or name.endswith(f".{target}") for name in linear_names):
            raise ValueError(message("target_modules", f"names of nn.Linear layers of the model, such as "
                                     f"{sorted({n.rsplit('.', 1)[-1] for n in linear_names})}", target))
    alpha = float(rank) if alpha is None else check_float("alpha", alpha, low=0, low_open=True)
    dropout = check_float("dropout", dropout, low=0, high=1, high_open=True)
    if head is not None:
        _check_head(model, head)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                        modules_to_save=[head] if head is not None else None, bias="none")
    return get_peft_model(model, config)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``model`` that require gradients: hand these to the optimizer.

    An optimizer that holds only them keeps no state (Adam's two moments) for the
    frozen weights.

    Example:
        >>> len(trainable_parameters(linear_probe(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)), head="1")))
        2
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    return [p for p in model.parameters() if p.requires_grad]


def parameter_counts(model: nn.Module) -> dict[str, float]:
    """Trainable and total parameter values of ``model`` (each shared tensor counted once).

    Returns:
        ``{"trainable": int, "total": int, "fraction": trainable / total}``.

    Example:
        >>> parameter_counts(nn.Linear(3, 2))
        {'trainable': 8, 'total': 8, 'fraction': 1.0}
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    params = list(model.parameters())  # .parameters() yields each tensor once
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return {"trainable": trainable, "total": total, "fraction": trainable / total if total else 0.0}


def training_state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes that training holds beyond the inputs: weights, gradients and optimizer state.

    Measured from the tensors themselves, after training (or at least one step):
    gradients exist only for trainable parameters, and Adam keeps two moments per
    trainable value, so the last two entries grow with what is trained, not with
    the model's size. (Activations saved for the backward pass are not counted.)

    Args:
        model: the model being trained.
        optimizer: its optimizer, after at least one ``step``.

    Returns:
        ``{"weights": ..., "gradients": ..., "optimizer": ..., "total": ...}`` in bytes.

    Example:
        >>> layer = nn.Linear(3, 2)
        >>> adam = torch.optim.Adam(layer.parameters())
        >>> layer(torch.ones(1, 3)).sum().backward(); adam.step()
        >>> training_state_bytes(layer, adam)  # 8 float32 values: 32 bytes each for weights and grads
        {'weights': 32, 'gradients': 32, 'optimizer': 72, 'total': 136}
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")

    def size(tensor: torch.Tensor) -> int:
        return tensor.numel() * tensor.element_size()

    weights = sum(size(p) for p in model.parameters()) + sum(size(b) for b in model.buffers())
    gradients = sum(size(p.grad) for p in model.parameters() if p.grad is not None)
    state = sum(size(value) for per_param in optimizer.state.values() for value in per_param.values()
                if isinstance(value, torch.Tensor))
    return {"weights": weights, "gradients": gradients, "optimizer": state,
            "total": weights + gradients + state}
