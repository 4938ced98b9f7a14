"""Generated text as token ids: topic documents, and short sentences whose word order matters.

* :func:`make_topic_documents`: bag-of-words count vectors of documents about one topic each;
  a few topic words are frequent and most are rare (Zipf-like), so a handful of labelled
  documents leaves most topic words unseen.
* :func:`make_negation_sentences`: fixed-length sentences with one sentiment word ("good" or
  "bad") and one "not"; with ``label="order"`` the "not" flips the sentiment only when it
  comes right before the sentiment word, so the label is in the order; with
  ``label="words"`` the label is the sentiment word alone.
"""

from __future__ import annotations

import numpy as np
import torch

from companion._validation import check_choice, check_float, check_int
from companion.data._common import numbered
from companion.data.tensors import TensorData

__all__ = ["NEGATION_WORDS", "make_negation_sentences", "make_topic_documents"]

NEGATION_WORDS = ("good", "bad", "not")
"""The first three token ids of :func:`make_negation_sentences`; ids from 3 on are filler words."""


def make_topic_documents(
    n_samples: int = 1000,
    *,
    n_topics: int = 4,
    words_per_topic: int = 50,
    n_common: int = 50,
    length: int = 10,
    topic_share: float = 0.5,
    seed: int = 0,
) -> TensorData:
    """Documents as word counts, each about one topic (its label).

    Each document has ``length`` words: each is, with probability ``topic_share``, one of its
    topic's ``words_per_topic`` words (word ``k`` of a topic drawn with probability
    proportional to ``1 / (k + 1)``), and otherwise one of ``n_common`` words shared by all
    topics, drawn uniformly. Columns: the topics' words in topic order, then the common words.

    Args:
        n_samples: number of documents, an int >= 1.
        n_topics: number of topics (classes), an int >= 2.
        words_per_topic: words that belong to each topic, an int >= 1.
        n_common: words shared by every topic, an int >= 1.
        length: words per document, an int >= 1.
        topic_share: chance that a word is a topic word, a float in ``[0, 1]``.
        seed: random seed, an int >= 0.

    Returns:
        ``TensorData`` with float32 counts ``(N, n_topics * words_per_topic + n_common)`` and
        int64 topics ``(N,)``.

    Example:
        >>> X, y = make_topic_documents(5, n_topics=2, words_per_topic=3, n_common=2, length=4)
        >>> tuple(X.shape), X.sum(dim=1).tolist()
        ((5, 8), [4.0, 4.0, 4.0, 4.0, 4.0])
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    n_topics = check_int("n_topics", n_topics, low=2)
    words_per_topic = check_int("words_per_topic", words_per_topic, low=1)
    n_common = check_int("n_common", n_common, low=1)
    length = check_int("length", length, low=1)
    topic_share = check_float("topic_share", topic_share, low=0, high=1)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    zipf = 1.0 / np.arange(1, words_per_topic + 1)
    zipf /= zipf.sum()
    y = rng.integers(0, n_topics, n_samples)
    is_topic = rng.random((n_samples, length)) < topic_share
    topic_word = y[:, None] * words_per_topic + rng.choice(words_per_topic, size=(n_samples, length), p=zipf)
    common_word = n_topics * words_per_topic + rng.integers(0, n_common, (n_samples, length))
    words = np.where(is_topic, topic_word, common_word)
    X = np.zeros((n_samples, n_topics * words_per_topic + n_common), dtype=np.float32)
    np.add.at(X, (np.repeat(np.arange(n_samples), length), words.ravel()), 1.0)
    names = [f"topic{t}_word{k}" for t in range(n_topics) for k in range(words_per_topic)]
    return TensorData(torch.from_numpy(X), torch.from_numpy(y).long(),
                      names + numbered("common_word", n_common), numbered("topic", n_topics))


def make_negation_sentences(
    n_samples: int = 1000,
    *,
    length: int = 8,
    vocab_size: int = 20,
    label: str = "order",
    seed: int = 0,
) -> TensorData:
    """Sentences of token ids with one sentiment word and one "not"; the label may depend on order.

    Token 0 is "good", 1 is "bad", 2 is "not" (:data:`NEGATION_WORDS`), and 3 to
    ``vocab_size - 1`` are filler words. Every sentence holds exactly one "good" or "bad"
    (half each) and exactly one "not": in half of the sentences the "not" stands right before
    the sentiment word, in the other half somewhere else, never right before it. The rest are
    filler words drawn uniformly.

    * ``label="order"``: positive (1) for "good" without "not" right before it, or "not bad";
      negative (0) for "not good", or "bad" on its own. The same words decide both labels;
      only their order tells which.
    * ``label="words"``: positive for "good", negative for "bad"; the "not" means nothing.

    Args:
        n_samples: number of sentences, an int >= 1.
        length: tokens per sentence, an int >= 3.
        vocab_size: number of distinct tokens, an int >= 4.
        label: ``"order"`` or ``"words"``.
        seed: random seed, an int >= 0.

    Returns:
        ``TensorData`` with int64 token ids ``(N, length)`` and int64 labels ``(N,)``.

    Example:
        >>> X, y = make_negation_sentences(4, length=5, seed=0)
        >>> tuple(X.shape), bool(((X == 2).sum(dim=1) == 1).all())  # one "not" each
        ((4, 5), True)
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    length = check_int("length", length, low=3)
    vocab_size = check_int("vocab_size", vocab_size, low=4)
    label = check_choice("label", label, ("order", "words"))
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    X = rng.integers(3, vocab_size, (n_samples, length))
    good = rng.random(n_samples) < 0.5
    negated = rng.random(n_samples) < 0.5
    for i in range(n_samples):
        position = rng.integers(1, length) if negated[i] else rng.integers(0, length)
        X[i, position] = 0 if good[i] else 1
        if negated[i]:
            X[i, position - 1] = 2
        else:  # anywhere but the sentiment word itself or the slot right before it
            allowed = [p for p in range(length) if p not in (position, position - 1)]
            X[i, rng.choice(allowed)] = 2
    y = good ^ negated if label == "order" else good
    return TensorData(torch.from_numpy(X).long(), torch.from_numpy(y.astype(np.int64)),
                      numbered("token", length), ["negative", "positive"])
