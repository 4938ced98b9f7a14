"""Tests for companion.data.reviews: the toy review language and its labelled tasks."""

from __future__ import annotations

import pytest
import torch

from companion.data.reviews import (
    MASK,
    PAD,
    REVIEW_LENGTH,
    REVIEW_TASKS,
    VOCABULARY,
    decode_reviews,
    make_reviews,
)

POSITIVE = {"good", "great", "nice", "fresh", "clean", "fun", "lovely", "superb", "perfect", "pleasant", "tasty",
            "smooth", "bright", "cozy", "solid", "charming"}


def test_reviews_follow_the_grammar_and_repeat_with_the_seed():
    X, y = make_reviews(300, seed=4)
    assert X.shape == (300, REVIEW_LENGTH) and X.dtype == torch.long and y.shape == (300,)
    assert int(X.min()) > MASK and int(X.max()) < len(VOCABULARY)  # never PAD or MASK
    assert len(set(VOCABULARY)) == len(VOCABULARY) and VOCABULARY[PAD] == "[PAD]"
    for text in decode_reviews(X[:20]):
        words = text.split()
        assert words[2] == "was" and words[5] == "and" and words[7] == "for"
        assert (words[4] in POSITIVE) == (words[6] in POSITIVE)  # one mood picks both adjectives
    assert torch.equal(make_reviews(300, seed=4).X, X)
    assert not torch.equal(make_reviews(300, seed=5).X, X)


def test_the_tasks_label_the_same_reviews_and_agree_with_the_words():
    data = {task: make_reviews(400, task=task, seed=2) for task in REVIEW_TASKS}
    X = data["topic"].X
    assert all(torch.equal(d.X, X) for d in data.values())  # the task changes the labels only
    for task, d in data.items():
        assert set(d.y.tolist()) == set(range(REVIEW_TASKS[task])) and len(d.target_names) == REVIEW_TASKS[task]
    words = [text.split() for text in decode_reviews(X)]
    mood = torch.tensor([w[4] in POSITIVE for w in words]).long()
    negated = torch.tensor([w[3] == "not" for w in words]).long()
    assert torch.equal(data["mood"].y, mood)
    assert torch.equal(data["sentiment"].y, mood ^ negated)  # "not" flips what the review says
    assert torch.equal(data["topic_sentiment"].y, 2 * data["topic"].y + data["sentiment"].y)
    assert 0.4 < float(negated.float().mean()) < 0.6
    food = {"pizza", "soup", "cake", "pasta", "salad", "bread", "curry", "coffee"}
    is_food = [w[1] in food or w[9] in food for w in words]
    assert all(t == 0 for t, f in zip(data["topic"].y.tolist(), is_food) if f)


def test_bad_input():
    with pytest.raises(ValueError, match=r"Expected `task` to be one of \('topic', 'mood'"):
        make_reviews(10, task="spam")
    with pytest.raises(ValueError, match=r"Expected `n_samples` to be an int >= 1, but got 0\."):
        make_reviews(0)
    with pytest.raises(ValueError, match=r"Expected `seed` to be an int >= 0, but got -1\."):
        make_reviews(5, seed=-1)
    with pytest.raises(ValueError, match=r"Expected `tokens` to be token ids in \[0, 80\].*found ids from 0 to 81"):
        decode_reviews(torch.tensor([0, 81]))
    with pytest.raises(TypeError, match=r"Expected `tokens` to be a tensor of integer token ids"):
        decode_reviews(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"Expected `tokens` to be a tensor with 1 or 2 dimensions"):
        decode_reviews(torch.zeros(1, 2, 3, dtype=torch.long))
