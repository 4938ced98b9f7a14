"""Transfer learning: freeze a pretrained backbone, add a new head, train only the head.

The workflow the exam expects: take layers from a model trained on a source task,
:func:`freeze` them so training cannot destroy what they learned, put a
:func:`new_head` on top, and train the head on the (small) target data set.

The package ships one small pretrained backbone (``companion/assets/``, about
20 kB) so that this runs offline:

* **Source task**: :func:`companion.data.make_related_tasks` with ``task="source"``,
  10 classes, 20,000 rows.
* **Target task**: the same generator with ``task="target"``: 4 other classes that
  depend on the same hidden factors of the inputs.

``python -m companion.transfer`` retrains it from scratch (seeded) and rewrites the
file. For images, :func:`torchvision_backbone` loads a torchvision model (with
pretrained ImageNet weights when you are online) with its classifier removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from companion._validation import check_float, check_instance, check_int, message
from companion.data import make_loader, make_related_tasks
from companion.inference import accuracy_from_logits, predict_logits
from companion.models import MLP
from companion.training import fit
from companion.utils import atomic_write, get_device, seed_everything

__all__ = [
    "freeze",
    "unfreeze",
    "count_trainable",
    "new_head",
    "pretrain_backbone",
    "load_pretrained_model",
    "load_pretrained_backbone",
    "torchvision_backbone",
    "BACKBONE_FILE",
]

BACKBONE_FILE = "related_tasks_backbone.pt"
"""File name of the shipped backbone in ``companion/assets/``."""

_ARCHITECTURE = {"in_features": 32, "hidden": (64, 32), "out_features": 10}


def freeze(module: nn.Module) -> nn.Module:
    """Make every parameter of ``module`` untrainable (``requires_grad = False``); return it.

    Frozen parameters get no gradient, so no optimizer changes them. (Layers that
    keep running statistics, such as ``BatchNorm``, still update those buffers in
    training mode; call ``module.eval()`` after ``fit`` switches modes, or use a
    backbone without them, like the shipped one.)

    Example:
        >>> layer = freeze(nn.Linear(3, 2))
        >>> count_trainable(layer)
        0
    """
    check_instance("module", module, nn.Module, "a torch.nn.Module")
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def unfreeze(module: nn.Module) -> nn.Module:
    """Make every parameter of ``module`` trainable again (for fine-tuning); return it.

    Example:
        >>> count_trainable(unfreeze(freeze(nn.Linear(3, 2))))
        8
    """
    check_instance("module", module, nn.Module, "a torch.nn.Module")
    for parameter in module.parameters():
        parameter.requires_grad_(True)
    return module


def count_trainable(module: nn.Module) -> int:
    """Number of trainable parameter values (elements with ``requires_grad``).

    Example:
        >>> count_trainable(nn.Linear(3, 2))  # 3 * 2 weights + 2 biases
        8
    """
    check_instance("module", module, nn.Module, "a torch.nn.Module")
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def new_head(
    in_features: int, out_features: int, *, hidden: Sequence[int] = (), dropout: float = 0.0
) -> MLP:
    """A freshly initialized head to put on top of a backbone's features.

    With ``hidden=()`` it is one linear layer (the usual choice when the target
    data set is small); otherwise a :class:`companion.models.MLP`.

    Args:
        in_features: the backbone's feature width, an int >= 1.
        out_features: outputs of the new task (e.g. its number of classes), an int >= 1.
        hidden: widths of hidden layers in the head.
        dropout: dropout after each hidden layer, a float in ``[0, 1)``.

    Returns:
        A trainable :class:`~companion.models.MLP`, input ``(N, in_features)``,
        output ``(N, out_features)``.

    Example:
        >>> head = new_head(32, 4)
        >>> head(torch.zeros(5, 32)).shape, count_trainable(head)
        (torch.Size([5, 4]), 132)
    """
    return MLP(in_features, hidden, out_features, dropout=dropout)


def pretrain_backbone(
    *,
    n_samples: int = 20_000,
    epochs: int = 20,
    lr: float = 3e-3,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[MLP, float]:
    """Train the source model the shipped backbone comes from (see the module docstring).

    An :class:`~companion.models.MLP` ``32 -> 64 -> 32 -> 10`` is trained with Adam
    on ``make_related_tasks(n_samples, task="source", seed=seed)`` and scored on
    5,000 fresh source rows (``seed + 1``).

    Args:
        n_samples: source training rows, an int >= 10.
        epochs: training epochs, an int >= 1.
        lr: Adam's learning rate, a float > 0.
        seed: seed of the data, the initial weights and the batches.
        device: where to train; ``None`` picks :func:`companion.utils.get_device`.

    Returns:
        ``(model, accuracy)``: the trained source model (on the CPU, in eval mode)
        and its accuracy on held-out source rows.
    """
    n_samples = check_int("n_samples", n_samples, low=10)
    epochs = check_int("epochs", epochs, low=1)
    lr = check_float("lr", lr, low=0, low_open=True)
    X, y = make_related_tasks(n_samples, task="source", seed=seed)
    X_val, y_val = make_related_tasks(5_000, task="source", seed=seed + 1)
    seed_everything(seed)
    model = MLP(_ARCHITECTURE["in_features"], _ARCHITECTURE["hidden"], _ARCHITECTURE["out_features"])
    fit(model, make_loader(X, y, batch_size=256, seed=seed), loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=lr), epochs=epochs, progress=False,
        device=get_device(device))
    model.cpu().eval()
    return model, accuracy_from_logits(y_val, predict_logits(model, X_val))


def _asset(name: str) -> Any:
    return resources.files("companion") / "assets" / name


def load_pretrained_model() -> tuple[MLP, dict[str, Any]]:
    """The whole shipped source model (backbone and source head), and facts about its training.

    The file is read with ``torch.load(weights_only=True)``, which refuses to run
    pickled code.

    Returns:
        ``(model, info)``: the :class:`~companion.models.MLP` in eval mode, and a
        dict with ``source_task``, ``target_task``, ``source_accuracy`` (on
        held-out source rows) and the training settings.
    """
    with resources.as_file(_asset(BACKBONE_FILE)) as path:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    model = MLP(_ARCHITECTURE["in_features"], _ARCHITECTURE["hidden"], _ARCHITECTURE["out_features"])
    model.load_state_dict(payload["state_dict"])
    return model.eval(), dict(payload["info"])


def load_pretrained_backbone() -> nn.Sequential:
    """The shipped pretrained backbone: ``(N, 32)`` inputs to ``(N, 32)`` features.

    It is the source model of :func:`load_pretrained_model` without its last
    layer (the source task's 10-class head); put a :func:`new_head` on it.

    Example:
        >>> backbone = freeze(load_pretrained_backbone())
        >>> model = nn.Sequential(backbone, new_head(32, 4))
        >>> model(torch.zeros(2, 32)).shape, count_trainable(model)
        (torch.Size([2, 4]), 132)
    """
    model, _ = load_pretrained_model()
    return model.layers[:-1]


def torchvision_backbone(name: str, *, weights: Any = None) -> tuple[nn.Module, int]:
    """A torchvision image model with its classifier replaced by ``nn.Identity``.

    The last ``nn.Linear`` of the model (``fc`` of a ResNet, the last layer of
    ``classifier`` of a MobileNet or EfficientNet, ``heads.head`` of a ViT) is
    removed, so the model returns feature vectors; put a :func:`new_head` on them.

    Args:
        name: a model name that :func:`torchvision.models.get_model` knows, e.g.
            ``"resnet18"`` or ``"mobilenet_v3_small"``.
        weights: ``None`` for random weights (offline), or pretrained weights:
            ``"DEFAULT"`` or a name such as ``"IMAGENET1K_V1"``, or a torchvision
            ``WeightsEnum``. Pretrained weights are downloaded on first use (online
            only) and cached by torch.

    Returns:
        ``(backbone, num_features)``: the model, mapping ``(N, 3, H, W)`` images to
        ``(N, num_features)`` features, and that width.

    Example:
        >>> backbone, width = torchvision_backbone("resnet18")  # random weights: offline
        >>> width, backbone(torch.zeros(1, 3, 64, 64)).shape
        (512, torch.Size([1, 512]))
    """
    check_instance("name", name, str, "a string")
    available = torchvision.models.list_models()
    if name not in available:
        raise ValueError(message("name", "a torchvision model name such as 'resnet18'", name))
    model = torchvision.models.get_model(name, weights=weights)
    last = None
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = module_name, module
    if last is None:
        raise ValueError(message("name", "a model that ends in an nn.Linear classifier", name))
    module_name, linear = last
    parent_name, _, child = module_name.rpartition(".")
    setattr(model.get_submodule(parent_name), child, nn.Identity())
    return model, linear.in_features


def main() -> Path:
    """Retrain the shipped backbone and write it to ``companion/assets/`` (``python -m companion.transfer``)."""
    settings = {"n_samples": 20_000, "epochs": 20, "lr": 3e-3, "seed": 0}
    model, accuracy = pretrain_backbone(**settings, device="cpu")
    info = {
        "source_task": "make_related_tasks(task='source'): 10 classes",
        "target_task": "make_related_tasks(task='target'): 4 classes",
        "source_accuracy": accuracy,
        **settings,
    }
    payload = {"state_dict": model.state_dict(), "info": info}
    path = atomic_write(Path(__file__).resolve().parent / "assets" / BACKBONE_FILE,
                        lambda file: torch.save(payload, file))
    print(f"Source accuracy on held-out rows: {accuracy:.3f}. Wrote {path} "
          f"({path.stat().st_size / 1024:.1f} kB).")
    return path


if __name__ == "__main__":
    main()
