"""A toy language of short product reviews, generated from a grammar: text that exists offline.

Every review has the same ten slots::

    the   pizza  was  very  good  and  fresh  for  a  dinner
    DET   NOUN   was  INT   ADJ   and  ADJ    for  DET NOUN

Three hidden attributes decide the words:

* the **topic** (food, film, trip, tech) picks the two nouns (each is one of the
  topic's own nouns with probability 0.8, else a noun every topic shares);
* the **mood** (positive or negative) picks both adjectives;
* ``negated`` puts ``not`` in the intensifier slot (with probability 1/2; otherwise
  ``very``, ``really`` or ``so``). In the generated text, ``not`` changes no other
  word: a model that learns the language by predicting hidden words never needs
  to know what it means.

The labelled tasks read these attributes. ``"topic"`` (4 classes) and ``"mood"`` (2)
need what predicting words teaches; ``"sentiment"`` (2) is what the review
*says*, the mood flipped by ``not``, and ``"topic_sentiment"`` (8) is the topic and
that sentiment: both need to combine ``not`` with the mood, which predicting
words never asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from companion._validation import check_choice, check_int, check_tensor, message
from companion.data._common import seeded_generator
from companion.data.tensors import TensorData

__all__ = ["PAD", "MASK", "REVIEW_LENGTH", "REVIEW_TASKS", "VOCABULARY", "decode_reviews", "make_reviews"]

PAD, MASK = 0, 1
"""Token ids of the padding and mask tokens (the generator never emits either)."""

TOPICS = ("food", "film", "trip", "tech")
_TOPIC_NOUNS = {
    "food": ("pizza", "soup", "cake", "pasta", "salad", "bread", "curry", "coffee"),
    "film": ("movie", "actor", "plot", "scene", "script", "ending", "cast", "sequel"),
    "trip": ("hotel", "beach", "flight", "city", "room", "tour", "resort", "cruise"),
    "tech": ("phone", "laptop", "screen", "app", "camera", "battery", "charger", "tablet"),
}
_SHARED_NOUNS = ("thing", "place", "day", "price")
_DETERMINERS = ("the", "a", "this", "my")
_ADJECTIVES = {
    1: ("good", "great", "nice", "fresh", "clean", "fun", "lovely", "superb",
        "perfect", "pleasant", "tasty", "smooth", "bright", "cozy", "solid", "charming"),
    0: ("bad", "awful", "poor", "stale", "dirty", "dull", "terrible", "horrible",
        "boring", "noisy", "bland", "broken", "cheap", "ugly", "slow", "rude"),
}
_INTENSIFIERS = ("very", "really", "so")
_NOT = "not"

VOCABULARY: tuple[str, ...] = (
    "[PAD]", "[MASK]", "was", "and", "for", _NOT, *_INTENSIFIERS, *_DETERMINERS,
    *(noun for topic in TOPICS for noun in _TOPIC_NOUNS[topic]), *_SHARED_NOUNS,
    *_ADJECTIVES[1], *_ADJECTIVES[0],
)
"""Every token, in id order (45 tokens)."""

REVIEW_LENGTH = 10
"""Tokens per review."""

REVIEW_TASKS = {"topic": 4, "mood": 2, "sentiment": 2, "topic_sentiment": 8}
"""Task name -> number of classes."""

_TARGET_NAMES = {
    "topic": list(TOPICS),
    "mood": ["negative", "positive"],
    "sentiment": ["negative", "positive"],
    "topic_sentiment": [f"{topic} {side}" for topic in TOPICS for side in ("negative", "positive")],
}
_ID = {token: i for i, token in enumerate(VOCABULARY)}


def _ids(words: Sequence[str]) -> torch.Tensor:
    return torch.tensor([_ID[word] for word in words])


def make_reviews(n_samples: int = 1000, *, task: str = "topic", seed: int = 0) -> TensorData:
    """``n_samples`` generated reviews as token ids, labelled for one task (see the module docstring).

    Args:
        n_samples: number of reviews, an int >= 1.
        task: the label: ``"topic"`` (4 classes), ``"mood"`` (2), ``"sentiment"``
            (2: the mood, flipped by ``not``) or ``"topic_sentiment"`` (8: ``2 * topic +
            sentiment``).
        seed: random seed, an int >= 0. The reviews depend only on it and
            ``n_samples``, not on ``task``.

    Returns:
        ``TensorData`` with ``X`` of shape ``(n_samples, 10)`` (int64 token ids into
        :data:`VOCABULARY`), ``y`` of shape ``(n_samples,)`` (int64 class ids) and the
        class names in ``target_names``.

    Example:
        >>> X, y = make_reviews(2, task="sentiment", seed=3)
        >>> decode_reviews(X)
        ['a flight was not superb and bright for the beach', 'my pasta was not lovely and cozy for this cake']
        >>> y.tolist()  # positive words, negated: negative
        [0, 0]
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    check_choice("task", task, REVIEW_TASKS)
    g = seeded_generator(seed)
    n = n_samples

    def pick(options: Sequence[str], size: int | None = None) -> torch.Tensor:
        return _ids(options)[torch.randint(len(options), (size or n,), generator=g)]

    topic = torch.randint(len(TOPICS), (n,), generator=g)
    mood = torch.randint(2, (n,), generator=g)
    negated = torch.rand(n, generator=g) < 0.5
    topic_nouns = torch.stack([_ids(_TOPIC_NOUNS[t]) for t in TOPICS])  # (4, 8)

    def noun() -> torch.Tensor:
        own = topic_nouns[topic, torch.randint(topic_nouns.shape[1], (n,), generator=g)]
        return torch.where(torch.rand(n, generator=g) < 0.8, own, pick(_SHARED_NOUNS))

    def adjective() -> torch.Tensor:
        return torch.where(mood == 1, pick(_ADJECTIVES[1]), pick(_ADJECTIVES[0]))

    intensifier = torch.where(negated, _ID[_NOT], pick(_INTENSIFIERS))
    constant = {word: torch.full((n,), _ID[word]) for word in ("was", "and", "for")}
    X = torch.stack([pick(_DETERMINERS), noun(), constant["was"], intensifier, adjective(),
                     constant["and"], adjective(), constant["for"], pick(_DETERMINERS), noun()], dim=1)
    sentiment = mood ^ negated.long()
    y = {"topic": topic, "mood": mood, "sentiment": sentiment, "topic_sentiment": 2 * topic + sentiment}[task]
    return TensorData(X, y, target_names=list(_TARGET_NAMES[task]))


def decode_reviews(tokens: torch.Tensor) -> list[str]:
    """Token ids ``(N, L)`` (or one review, ``(L,)``) back to text, one string per review.

    Example:
        >>> decode_reviews(torch.tensor([2, 5, 1]))
        ['was not [MASK]']
    """
    check_tensor("tokens", tokens, ndim=(1, 2))
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise TypeError(message("tokens", "a tensor of integer token ids", tokens))
    if tokens.min() < 0 or tokens.max() >= len(VOCABULARY):
        raise ValueError(message("tokens", f"token ids in [0, {len(VOCABULARY) - 1}]", tokens,
                                 found=f"ids from {int(tokens.min())} to {int(tokens.max())}"))
    rows = tokens.reshape(-1, tokens.shape[-1]).tolist()
    return [" ".join(VOCABULARY[i] for i in row) for row in rows]
