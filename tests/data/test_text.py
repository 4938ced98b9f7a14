"""Tests for companion.data.text: what the generated documents and sentences guarantee; bad input."""

from __future__ import annotations

import pytest
import torch

from companion.data.text import NEGATION_WORDS, make_negation_sentences, make_topic_documents

GOOD, BAD, NOT = range(3)


def test_topic_documents_have_their_length_and_words_of_their_topic_or_common():
    X, y = data = make_topic_documents(400, n_topics=3, words_per_topic=10, n_common=5, length=7, seed=1)
    assert X.shape == (400, 35) and X.dtype == torch.float32 and y.dtype == torch.long
    assert torch.equal(X.sum(dim=1), torch.full((400,), 7.0))
    topic_columns = X[:, :30].reshape(400, 3, 10).sum(dim=2)  # (N, topics): topic words per document
    other = topic_columns.clone()
    other[torch.arange(400), y] = 0
    assert float(other.sum()) == 0  # never a word of another topic
    assert set(y.tolist()) == {0, 1, 2}
    assert len(data.feature_names) == 35 and data.target_names == ["topic0", "topic1", "topic2"]


def test_topic_share_and_zipf_frequencies():
    X, _ = make_topic_documents(3000, words_per_topic=20, length=10, topic_share=0.3, seed=0)
    share = float(X[:, :80].sum() / X.sum())
    assert abs(share - 0.3) < 0.02
    first, last = X[:, 0:80:20].sum(), X[:, 19:80:20].sum()  # word 0 vs word 19 of each topic: 20 : 1
    assert 12 < float(first / last) < 30
    assert torch.equal(make_topic_documents(50, seed=4).X, make_topic_documents(50, seed=4).X)
    assert not torch.equal(make_topic_documents(50, seed=4).X, make_topic_documents(50, seed=5).X)


@pytest.mark.parametrize("label", ["order", "words"])
def test_sentences_hold_one_sentiment_word_and_one_not(label):
    X, y = make_negation_sentences(500, length=6, vocab_size=12, label=label, seed=2)
    assert X.shape == (500, 6) and X.dtype == torch.long and int(X.min()) >= 0 and int(X.max()) < 12
    assert bool(((X == NOT).sum(dim=1) == 1).all())
    assert bool((((X == GOOD) | (X == BAD)).sum(dim=1) == 1).all())
    assert NEGATION_WORDS == ("good", "bad", "not")


def _read(sentence):
    position = next(i for i, t in enumerate(sentence) if t in (GOOD, BAD))
    good = sentence[position] == GOOD
    negated = position > 0 and sentence[position - 1] == NOT
    return good, negated


def test_the_order_label_flips_with_a_not_right_before_and_the_words_label_does_not():
    X_order, y_order = make_negation_sentences(600, label="order", seed=3)
    X_words, y_words = make_negation_sentences(600, label="words", seed=3)
    assert torch.equal(X_order, X_words)  # the same sentences, two labellings
    read = [_read(s) for s in X_order.tolist()]
    assert y_order.tolist() == [int(good != negated) for good, negated in read]
    assert y_words.tolist() == [int(good) for good, _ in read]
    negated_share = sum(n for _, n in read) / len(read)
    assert 0.4 < negated_share < 0.6
    # the words alone say nothing about the order label: word counts are the same for both classes
    counts = torch.nn.functional.one_hot(X_order, 20).sum(dim=1).float()
    gap = (counts[y_order == 1].mean(dim=0) - counts[y_order == 0].mean(dim=0)).abs()
    assert float(gap[:3].max()) < 0.1


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda: make_topic_documents(0), ValueError, "`n_samples`"),
        (lambda: make_topic_documents(10, n_topics=1), ValueError, "`n_topics` to be an int >= 2"),
        (lambda: make_topic_documents(10, words_per_topic=0), ValueError, "`words_per_topic`"),
        (lambda: make_topic_documents(10, n_common=0), ValueError, "`n_common`"),
        (lambda: make_topic_documents(10, length=0), ValueError, "`length`"),
        (lambda: make_topic_documents(10, topic_share=1.5), ValueError, "`topic_share`"),
        (lambda: make_topic_documents(10, seed=-1), ValueError, "`seed`"),
        (lambda: make_negation_sentences(10, length=2), ValueError, "`length` to be an int >= 3"),
        (lambda: make_negation_sentences(10, vocab_size=3), ValueError, "`vocab_size` to be an int >= 4"),
        (lambda: make_negation_sentences(10, label="sentiment"), ValueError, "`label`"),
        (lambda: make_negation_sentences(2.5), TypeError, "`n_samples`"),
    ],
)
def test_bad_input_raises(make, error, words):
    with pytest.raises(error, match=words):
        make()
