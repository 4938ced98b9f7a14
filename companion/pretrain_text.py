"""Pretraining a tiny text encoder by masked-word prediction: the course's stand-in for a foundation model.

A foundation model learns from a large unlabelled corpus by predicting hidden parts
of it; it is then adapted to tasks with few labels. This module does the first half
at toy scale, offline and reproducibly:

* **Corpus**: 40,000 reviews of the toy language of :mod:`companion.data.reviews`
  (``seed=0``), generated from its grammar; no label is used.
* **Task**: masked-word prediction (as BERT): 15% of the tokens are replaced by
  ``[MASK]`` (drawn anew in every epoch) and the model predicts the hidden words.
* **Model**: a :class:`~companion.models.tiny_transformer.MaskedLanguageModel` on a
  :class:`~companion.models.tiny_transformer.TinyTransformer` with the settings
  in :data:`ARCHITECTURE` (about 65,000 parameters).

``python -m companion.pretrain_text`` retrains it from scratch (seeded, on the CPU,
a few minutes) and rewrites ``companion/assets/review_encoder.pt`` (about 250 kB),
which :func:`load_pretrained_text_model` reads.

To predict a hidden adjective the model has to work out the review's mood from the
other adjective; to predict a hidden noun, its topic from the other noun. So its
hidden states come to encode topic and mood. Nothing in the corpus makes ``not``
matter, and nothing teaches the model what it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion._validation import check_float, check_instance, check_int, check_tensor, message
from companion.data._common import seeded_generator
from companion.data.reviews import MASK, REVIEW_LENGTH, VOCABULARY, make_reviews
from companion.models.tiny_transformer import MaskedLanguageModel, TinyTransformer
from companion.training import fit
from companion.utils import atomic_write, eval_mode, get_device, model_device, seed_everything

__all__ = [
    "ARCHITECTURE",
    "ENCODER_FILE",
    "IGNORE",
    "MaskedBatches",
    "evaluate_masked_lm",
    "load_pretrained_text_encoder",
    "load_pretrained_text_model",
    "mask_tokens",
    "masked_lm_loss",
    "pretrain_text_model",
]

ENCODER_FILE = "review_encoder.pt"
"""File name of the shipped pretrained model in ``companion/assets/``."""

ARCHITECTURE: dict[str, int] = {
    "vocab_size": len(VOCABULARY), "max_length": REVIEW_LENGTH,
    "d_model": 48, "n_heads": 4, "n_layers": 2, "d_ff": 192,
}
"""Settings of the shipped :class:`~companion.models.tiny_transformer.TinyTransformer`."""

IGNORE = -100
"""Label of the positions that are not masked (``cross_entropy``'s ``ignore_index``)."""


def mask_tokens(
    tokens: torch.Tensor, *, rate: float = 0.15, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide a random ``rate`` of the tokens behind ``[MASK]``: the input and the labels of masked-word prediction.

    Args:
        tokens: token ids, ``(N, L)``.
        rate: chance that each token is masked, a float in ``(0, 1]``.
        generator: the random source (``None``: torch's global one).

    Returns:
        ``(masked, labels)``, both ``(N, L)``: the tokens with the chosen positions
        replaced by ``MASK``, and the original token at those positions,
        :data:`IGNORE` (-100) elsewhere.

    Example:
        >>> masked, labels = mask_tokens(torch.tensor([[5, 6, 7]]), rate=1.0)
        >>> masked.tolist(), labels.tolist()
        ([[1, 1, 1]], [[5, 6, 7]])
    """
    check_tensor("tokens", tokens, ndim=2)
    rate = check_float("rate", rate, low=0, high=1, low_open=True)
    if generator is not None:
        check_instance("generator", generator, torch.Generator, "a torch.Generator")
    hidden = torch.rand(tokens.shape, generator=generator) < rate
    return torch.where(hidden, MASK, tokens), torch.where(hidden, tokens, IGNORE)


def masked_lm_loss(output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the masked positions: the pretraining loss.

    Args:
        output: logits ``(N, L, V)``.
        labels: ``(N, L)``, the hidden token at masked positions and :data:`IGNORE` elsewhere.

    Example:
        >>> logits = torch.zeros(1, 2, 4)  # uniform over 4 tokens
        >>> round(float(masked_lm_loss(logits, torch.tensor([[3, IGNORE]]))), 4)  # log(4)
        1.3863
    """
    check_tensor("output", output, ndim=3, floating=True)
    check_tensor("labels", labels, ndim=2)
    if output.shape[:2] != labels.shape:
        raise ValueError(message(("output", "labels"), "matching (N, L) dimensions",
                                 (output, labels), verb="have"))
    return nn.functional.cross_entropy(output.reshape(-1, output.shape[-1]), labels.reshape(-1),
                                       ignore_index=IGNORE)


class MaskedBatches:
    """Batches ``(masked, labels)`` of a token corpus for :func:`companion.training.fit`, masked anew each epoch.

    Every pass shuffles the rows and draws new masks from one seeded generator, so
    a run repeats exactly and the model never sees the same masks twice.

    Args:
        tokens: the corpus, ``(N, L)`` token ids.
        batch_size: rows per batch, an int >= 1.
        rate: share of tokens masked, a float in ``(0, 1]``.
        seed: seeds the order and the masks, an int >= 0.

    Example:
        >>> batches = MaskedBatches(torch.randint(2, 9, (10, 4)), batch_size=4)
        >>> [tuple(x.shape) for x, _ in batches], len(batches)
        ([(4, 4), (4, 4), (2, 4)], 3)
    """

    def __init__(self, tokens: torch.Tensor, *, batch_size: int = 128, rate: float = 0.15, seed: int = 0) -> None:
        self.tokens = check_tensor("tokens", tokens, ndim=2)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.rate = check_float("rate", rate, low=0, high=1, low_open=True)
        self.generator = seeded_generator(seed)

    def __len__(self) -> int:
        return -(-len(self.tokens) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.tokens), generator=self.generator)
        for rows in order.split(self.batch_size):
            yield mask_tokens(self.tokens[rows], rate=self.rate, generator=self.generator)


def evaluate_masked_lm(
    model: nn.Module, tokens: torch.Tensor | None = None, *, rate: float = 0.15, seed: int = 1
) -> dict[str, float]:
    """Score ``model`` on the pretraining task: masked-word loss and accuracy on held-out reviews.

    The masks are drawn from ``seed``, so two models (or one model before and after
    fine-tuning) are scored on exactly the same hidden words.

    Args:
        model: maps token ids ``(N, L)`` to logits ``(N, L, V)``, e.g. a
            :class:`~companion.models.tiny_transformer.MaskedLanguageModel`.
        tokens: reviews to score, ``(N, L)``; ``None`` uses 2,000 fresh reviews
            (``make_reviews(2000, seed=1)``, which pretraining never saw).
        rate: share of tokens masked, a float in ``(0, 1]``.
        seed: seeds the masks, an int >= 0.

    Returns:
        A dict with ``"loss"``, the mean cross-entropy over masked words, and
        ``"accuracy"``, the share of them predicted exactly. Most words have synonyms that the grammar picks
        at random, so even a perfect model's accuracy stays near 0.45; the loss is the
        measure to watch (about 1.55 for the shipped model).
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    tokens = make_reviews(2000, seed=1).X if tokens is None else check_tensor("tokens", tokens, ndim=2)
    masked, labels = mask_tokens(tokens, rate=rate, generator=seeded_generator(seed))
    device = model_device(model)
    with torch.no_grad(), eval_mode(model):
        output = model(masked.to(device)).cpu()
    chosen = labels != IGNORE
    return {"loss": float(masked_lm_loss(output, labels)),
            "accuracy": float((output.argmax(-1)[chosen] == labels[chosen]).float().mean())}


def pretrain_text_model(
    *,
    n_samples: int = 40_000,
    epochs: int = 3,
    lr: float = 2e-3,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[MaskedLanguageModel, dict[str, float]]:
    """Pretrain the model that is shipped (see the module docstring) by masked-word prediction.

    Args:
        n_samples: reviews in the corpus, an int >= 1.
        epochs: passes over the corpus, an int >= 1.
        lr: AdamW's learning rate, a float > 0.
        batch_size: reviews per batch, an int >= 1.
        seed: seeds the corpus, the initial weights, the order and the masks.
        device: where to train; ``None`` picks :func:`companion.utils.get_device`.

    Returns:
        ``(model, scores)``: the model (on the CPU, in eval mode) and
        :func:`evaluate_masked_lm` on held-out reviews.
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    epochs = check_int("epochs", epochs, low=1)
    lr = check_float("lr", lr, low=0, low_open=True)
    corpus = make_reviews(n_samples, seed=seed).X
    seed_everything(seed)
    model = MaskedLanguageModel(TinyTransformer(**ARCHITECTURE))
    fit(model, MaskedBatches(corpus, batch_size=batch_size, seed=seed), loss_fn=masked_lm_loss,
        optimizer=torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01), epochs=epochs,
        progress=False, device=get_device(device))
    model.cpu().eval()
    return model, evaluate_masked_lm(model)


def _asset(name: str) -> Any:
    return resources.files("companion") / "assets" / name


def load_pretrained_text_model() -> tuple[MaskedLanguageModel, dict[str, Any]]:
    """The shipped pretrained model (encoder and masked-word head) and facts about its pretraining.

    The file is read with ``torch.load(weights_only=True)``, which refuses to run
    pickled code.

    Returns:
        ``(model, info)``: the :class:`~companion.models.tiny_transformer.MaskedLanguageModel`
        in eval mode, and a dict with the corpus, the task, the held-out ``loss`` and
        ``accuracy`` of :func:`evaluate_masked_lm`, and the training settings.

    Example:
        >>> model, info = load_pretrained_text_model()
        >>> info["task"], sum(p.numel() for p in model.parameters())
        ('masked-word prediction, 15% of tokens', 64977)
    """
    with resources.as_file(_asset(ENCODER_FILE)) as path:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    model = MaskedLanguageModel(TinyTransformer(**payload["architecture"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), dict(payload["info"])


def load_pretrained_text_encoder() -> TinyTransformer:
    """The shipped pretrained encoder alone: token ids ``(N, 10)`` to hidden states ``(N, 10, 48)``.

    Put a head on it with :class:`~companion.models.tiny_transformer.SequenceClassifier`.

    Example:
        >>> encoder = load_pretrained_text_encoder()
        >>> encoder(make_reviews(3).X).shape
        torch.Size([3, 10, 48])
    """
    model, _ = load_pretrained_text_model()
    return model.encoder


def main() -> Path:
    """Pretrain the shipped model and write it to ``companion/assets/`` (``python -m companion.pretrain_text``)."""
    settings = {"n_samples": 40_000, "epochs": 3, "lr": 2e-3, "batch_size": 128, "seed": 0}
    model, scores = pretrain_text_model(**settings, device="cpu")
    info = {"corpus": "make_reviews(40_000, seed=0): the toy review language, no labels",
            "task": "masked-word prediction, 15% of tokens", **scores, **settings}
    payload = {"state_dict": model.state_dict(), "architecture": dict(ARCHITECTURE), "info": info}
    path = atomic_write(Path(__file__).resolve().parent / "assets" / ENCODER_FILE,
                        lambda file: torch.save(payload, file))
    print(f"Held-out masked-word loss {scores['loss']:.3f}, accuracy {scores['accuracy']:.3f}. "
          f"Wrote {path} ({path.stat().st_size / 1024:.1f} kB).")
    return path


if __name__ == "__main__":
    main()
