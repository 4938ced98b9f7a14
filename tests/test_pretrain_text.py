"""Tests for companion.pretrain_text: masking, the pretraining loss, the shipped model and its script."""

from __future__ import annotations

from contextlib import nullcontext
from importlib import resources
from pathlib import Path

import pytest
import torch

import companion.pretrain_text as pretrain_text
from companion.data.reviews import MASK, VOCABULARY, make_reviews
from companion.models.tiny_transformer import MaskedLanguageModel, TinyTransformer
from companion.pretrain_text import (
    ARCHITECTURE,
    ENCODER_FILE,
    IGNORE,
    MaskedBatches,
    evaluate_masked_lm,
    load_pretrained_text_encoder,
    load_pretrained_text_model,
    mask_tokens,
    masked_lm_loss,
    pretrain_text_model,
)

ADJECTIVE_SLOTS = (4, 6)


def test_mask_tokens_hides_a_share_and_labels_only_the_hidden():
    tokens = make_reviews(2000, seed=3).X
    masked, labels = mask_tokens(tokens, rate=0.15, generator=torch.Generator().manual_seed(0))
    hidden = masked == MASK
    assert 0.13 < float(hidden.float().mean()) < 0.17
    assert torch.equal(labels[hidden], tokens[hidden])
    assert (labels[~hidden] == IGNORE).all() and torch.equal(masked[~hidden], tokens[~hidden])
    again, _ = mask_tokens(tokens, rate=0.15, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again, masked)


def test_masked_lm_loss_is_cross_entropy_over_the_masked_positions_only():
    g = torch.Generator().manual_seed(0)
    output = torch.randn(3, 5, 7, generator=g)
    labels = torch.full((3, 5), IGNORE)
    labels[0, 1], labels[2, 4] = 3, 6
    log_probs = torch.log_softmax(output, dim=-1)
    manual = -(log_probs[0, 1, 3] + log_probs[2, 4, 6]) / 2
    torch.testing.assert_close(masked_lm_loss(output, labels), manual)


def test_masked_batches_cover_every_row_with_new_masks_each_epoch():
    tokens = torch.arange(2, 42).reshape(10, 4)
    batches = MaskedBatches(tokens, batch_size=3, rate=0.5, seed=0)
    first = list(batches)
    second = list(batches)
    assert len(first) == len(batches) == 4
    rows = torch.cat([torch.where(labels == IGNORE, masked, labels) for masked, labels in first])
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, tokens.tolist()))  # every row once
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, second))


def test_shipped_model_is_small_loads_safely_and_scores_as_recorded():
    asset = resources.files("companion") / "assets" / ENCODER_FILE
    assert asset.is_file() and len(asset.read_bytes()) < 1024**2
    with resources.as_file(asset) as path:
        payload = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code
    assert payload["architecture"] == ARCHITECTURE
    model, info = load_pretrained_text_model()
    assert isinstance(model, MaskedLanguageModel) and not model.training
    scores = evaluate_masked_lm(model)
    assert scores["loss"] == pytest.approx(info["loss"], abs=1e-4)  # the file is what the script recorded
    assert scores["accuracy"] == pytest.approx(info["accuracy"], abs=1e-4)
    untrained = MaskedLanguageModel(TinyTransformer(**ARCHITECTURE))
    assert evaluate_masked_lm(untrained)["loss"] > 2.5 * scores["loss"]  # log(81) = 4.4 vs about 1.6
    assert "masked-word" in info["task"] and info["n_samples"] == 40_000
    assert load_pretrained_text_encoder()(make_reviews(2).X).shape == (2, 10, ARCHITECTURE["d_model"])


def test_shipped_model_learned_the_mood_from_the_other_adjective():
    # Hide the first adjective; the prediction must have the mood of the second one.
    model, _ = load_pretrained_text_model()
    X, mood = make_reviews(500, task="mood", seed=7)
    masked = X.clone()
    masked[:, ADJECTIVE_SLOTS[0]] = MASK
    with torch.no_grad():
        predicted = model(masked)[:, ADJECTIVE_SLOTS[0]].argmax(-1)
    positive = {VOCABULARY.index(w) for w in ("good", "great", "nice", "fresh", "clean", "fun", "lovely", "superb",
                                                "perfect", "pleasant", "tasty", "smooth", "bright", "cozy", "solid",
                                                "charming")}
    predicted_mood = torch.tensor([int(t) in positive for t in predicted.tolist()]).long()
    assert float((predicted_mood == mood).float().mean()) > 0.95


def test_pretraining_is_reproducible_and_learns():
    first, scores = pretrain_text_model(n_samples=1000, epochs=1, device="cpu")
    second, _ = pretrain_text_model(n_samples=1000, epochs=1, device="cpu")
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    untrained = MaskedLanguageModel(TinyTransformer(**ARCHITECTURE))
    assert scores["loss"] < evaluate_masked_lm(untrained)["loss"] - 1.0


def test_main_rewrites_the_model_file_atomically(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrain_text, "__file__", str(tmp_path / "pretrain_text.py"))  # write under tmp_path
    model = MaskedLanguageModel(TinyTransformer(**ARCHITECTURE))
    monkeypatch.setattr(pretrain_text, "pretrain_text_model",
                        lambda **settings: (model, {"loss": 9.0, "accuracy": 0.1}))
    path = pretrain_text.main()
    assert path == tmp_path / "assets" / ENCODER_FILE
    assert torch.load(path, weights_only=True)["info"]["loss"] == 9.0
    before = path.read_bytes()

    def save_that_dies_halfway(obj, file):
        with open(file, "wb") if isinstance(file, Path) else nullcontext(file) as out:
            out.write(before[:100])
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", save_that_dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        pretrain_text.main()
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]


def test_bad_input():
    tokens = make_reviews(4).X
    with pytest.raises(ValueError, match=r"Expected `rate` to be a float in \(0, 1\], but got 0\.0\."):
        mask_tokens(tokens, rate=0.0)
    with pytest.raises(ValueError, match=r"Expected `tokens` to be a tensor with 2 dimensions"):
        mask_tokens(tokens[0])
    with pytest.raises(TypeError, match=r"Expected `generator` to be a torch.Generator"):
        mask_tokens(tokens, generator=0)
    with pytest.raises(ValueError, match=r"Expected `output` and `labels` to have matching \(N, L\) dimensions"):
        masked_lm_loss(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"Expected `output` to be a floating-point tensor"):
        masked_lm_loss(torch.zeros(2, 3, 5, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"Expected `batch_size` to be an int >= 1, but got 0\."):
        MaskedBatches(tokens, batch_size=0)
    with pytest.raises(TypeError, match=r"Expected `model` to be a torch.nn.Module"):
        evaluate_masked_lm(lambda x: x)
    with pytest.raises(ValueError, match=r"Expected `epochs` to be an int >= 1, but got 0\."):
        pretrain_text_model(epochs=0)
