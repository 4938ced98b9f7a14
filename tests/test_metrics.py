"""companion.metrics against scikit-learn on random inputs, including ties and degenerate ones."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import metrics as skm

from companion import metrics as M
from companion.metrics import UndefinedMetricWarning

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def labels_and_scores(draw, *, min_size=2, both_classes=True):
    """Binary labels and scores; scores from a small set of values, so ties are frequent."""
    n = draw(st.integers(min_size, 60))
    y = draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    if both_classes and y.min() == y.max():
        y[0] = 1 - y[0]
    tie_heavy = draw(st.booleans())
    values = st.integers(0, 4).map(float) if tie_heavy else st.floats(-10, 10, allow_nan=False)
    s = draw(arrays(np.float64, n, elements=values))
    return y, s


@st.composite
def labels_and_predictions(draw, n_classes=2):
    n = draw(st.integers(1, 60))
    y = draw(arrays(np.int64, n, elements=st.integers(0, n_classes - 1)))
    p = draw(arrays(np.int64, n, elements=st.integers(0, n_classes - 1)))
    return y, p


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@SETTINGS
@given(labels_and_predictions(n_classes=4))
def test_accuracy_and_confusion_matrix_match_sklearn(pair):
    y, p = pair
    assert M.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p))
    expected = skm.confusion_matrix(y, p, labels=range(4))
    assert M.confusion_matrix(y, p, num_classes=4).tolist() == expected.tolist()


@SETTINGS
@given(labels_and_predictions())
def test_precision_recall_f1_match_sklearn_including_zero_division(pair):
    y, p = pair
    for ours, ref in [(M.precision, skm.precision_score), (M.recall, skm.recall_score),
                      (M.f1, skm.f1_score)]:
        assert _quiet(ours, y, p) == pytest.approx(_quiet(ref, y, p)), ours.__name__


@SETTINGS
@given(labels_and_scores())
def test_roc_curve_and_auc_match_sklearn_with_ties(pair):
    y, s = pair
    fpr, tpr, thr = M.roc_curve(y, s)
    ref_fpr, ref_tpr, ref_thr = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr.numpy(), ref_fpr)
    np.testing.assert_allclose(tpr.numpy(), ref_tpr)
    np.testing.assert_array_equal(thr.numpy(), ref_thr)
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@SETTINGS
@given(labels_and_scores(min_size=1, both_classes=False))
def test_pr_curve_and_average_precision_match_sklearn(pair):
    y, s = pair
    if y.sum() == 0:  # degenerate case tested separately
        y[0] = 1
    p, r, t = M.pr_curve(y, s)
    ref_p, ref_r, ref_t = skm.precision_recall_curve(y, s)
    np.testing.assert_allclose(p.numpy(), ref_p)
    np.testing.assert_allclose(r.numpy(), ref_r)
    np.testing.assert_array_equal(t.numpy(), ref_t)
    assert M.pr_auc(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


@SETTINGS
@given(labels_and_scores(), st.floats(0.05, 1.0))
def test_threshold_for_meets_target_and_is_the_best_such_threshold(pair, target):
    y, s = pair
    choice = M.threshold_for(y, s, target_recall=target)
    pred = (s >= choice.threshold).astype(int)
    assert skm.recall_score(y, pred) >= target - 1e-12
    assert choice.precision == pytest.approx(skm.precision_score(y, pred))
    higher = s[s > choice.threshold]
    if len(higher):  # the next threshold up misses the target
        assert skm.recall_score(y, (s >= higher.min()).astype(int)) < target
    try:
        choice = M.threshold_for(y, s, target_precision=target)
    except ValueError:
        _, _, t = skm.precision_recall_curve(y, s)
        assert all(_quiet(skm.precision_score, y, (s >= x).astype(int)) < target for x in t)
        return
    pred = (s >= choice.threshold).astype(int)
    assert skm.precision_score(y, pred) >= target - 1e-12
    assert choice.recall == pytest.approx(skm.recall_score(y, pred))
    lower = s[s < choice.threshold]
    if len(lower):  # any lower threshold misses the target
        for x in np.unique(lower):
            assert skm.precision_score(y, (s >= x).astype(int)) < target


def test_inputs_may_be_tensors_arrays_or_lists_and_bool():
    y, s = [0, 1, 1, 0], [0.2, 0.9, 0.3, 0.1]
    expected = skm.roc_auc_score(y, s)
    assert M.roc_auc(torch.tensor(y), torch.tensor(s)) == pytest.approx(expected)
    assert M.roc_auc(np.array(y), np.array(s, dtype=np.float32)) == pytest.approx(expected)
    assert M.precision(torch.tensor([False, True]), torch.tensor([True, True])) == 0.5


def test_accuracy_takes_logits_by_argmax():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.1, 3.0], [0.0, 5.0, 1.0]])
    assert M.accuracy(torch.tensor([0, 2, 2]), logits) == pytest.approx(2 / 3)


def test_accuracy_refuses_a_single_logit_column_whose_argmax_is_always_class_0():
    # (N, 1) binary logits: argmax over one column said class 0 for every row (0.4 here, truly 1.0)
    logits = torch.tensor([[2.0], [-1.0], [3.0], [-2.0], [1.0]])
    y = torch.tensor([1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="accuracy_from_logits"):
        M.accuracy(y, logits)


def test_one_class_gives_nan_auc_with_a_warning_like_sklearn():
    y, s = np.ones(5, dtype=int), np.linspace(0, 1, 5)
    with pytest.warns(UndefinedMetricWarning, match="one class"):
        assert np.isnan(M.roc_auc(y, s))
    with pytest.warns(UndefinedMetricWarning, match="No negative"):
        fpr, tpr, _ = M.roc_curve(y, s)
    assert torch.isnan(fpr).all() and not torch.isnan(tpr).any()
    with pytest.warns(UndefinedMetricWarning, match="No positive"):
        assert np.isnan(M.pr_auc(1 - y, s))
    with pytest.warns(UndefinedMetricWarning, match="No positive"):
        _, r, _ = M.pr_curve(1 - y, s)
    assert torch.isnan(r[:-1]).all()
    assert M.pr_auc(y, s) == pytest.approx(skm.average_precision_score(y, s))


def test_zero_division_warns_and_gives_zero():
    with pytest.warns(UndefinedMetricWarning, match="Precision"):
        assert M.precision([0, 1], [0, 0]) == 0.0
    with pytest.warns(UndefinedMetricWarning, match="Recall"):
        assert M.recall([0, 0], [0, 1]) == 0.0


@pytest.mark.parametrize(
    "fn", [M.accuracy, M.confusion_matrix, M.precision, M.recall, M.f1, M.roc_curve, M.roc_auc,
           M.pr_curve, M.pr_auc, M.prediction_bias],
)
def test_mismatched_lengths_raise_the_template_error(fn):
    with pytest.raises(ValueError, match=r"Expected `y_true` and `y_\w+` to have the same length, but got 3 and 2"):
        fn([0, 1, 1], [1, 0])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"Expected `y_true` to be binary labels in \{0, 1\}"):
        M.roc_auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"Expected `y_score` to be a tensor of finite values"):
        M.roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match=r"Expected `y_score` to be a tensor with 1 dimensions"):
        M.pr_auc([0, 1], [[0.1], [0.2]])
    with pytest.raises(ValueError, match=r"Expected `y_true` to be a non-empty tensor"):
        M.accuracy([], [])
    with pytest.raises(TypeError, match=r"Expected `y_true` to be a tensor, array or sequence"):
        M.accuracy(["a", None], [0, 1])
    with pytest.raises(ValueError, match=r"Expected `num_classes` to be an int >= 3"):
        M.confusion_matrix([0, 2], [1, 1], num_classes=2)
    with pytest.raises(ValueError, match=r"Expected `y_pred` to be integer class labels"):
        M.confusion_matrix([0, 1], [0.5, 1.0])
    with pytest.raises(ValueError, match="exactly one target"):
        M.threshold_for([0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"Expected `target_recall` to be a float in \(0, 1\]"):
        M.threshold_for([0, 1], [0.1, 0.2], target_recall=1.5)
    with pytest.raises(ValueError, match=r"Expected `target_precision` to be reachable"):
        M.threshold_for([1, 0], [0.1, 0.9], target_precision=0.9)


def test_prediction_bias_is_mean_prediction_minus_mean_label():
    y = torch.tensor([0.0, 1.0, 1.0, 1.0])
    p = np.array([0.5, 0.5, 0.5, 0.5])
    assert M.prediction_bias(y, p) == pytest.approx(0.5 - 0.75)
    assert M.prediction_bias(y, y) == 0.0


def test_planted_fault_swapped_arguments_change_the_answer():
    # The argument order is sklearn's: swapping labels and predictions changes precision/recall.
    y, p = [1, 1, 1, 0], [1, 0, 0, 0]
    assert M.precision(y, p) == 1.0 and M.recall(y, p) == pytest.approx(1 / 3)
    assert M.precision(p, y) == pytest.approx(1 / 3)


def test_curves_are_float64_and_exact_on_many_tied_scores():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(20_000, generator=g) < 0.1).long()
    s = torch.randint(0, 50, (20_000,), generator=g).float()
    assert M.roc_curve(y, s)[0].dtype == torch.float64
    assert M.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y.numpy(), s.numpy()), abs=1e-12)
    assert M.pr_auc(y, s) == pytest.approx(skm.average_precision_score(y.numpy(), s.numpy()), abs=1e-12)


# --- a margin for precision targets: Wilson's lower bound -------------------------------


@pytest.mark.parametrize("confidence", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_wilson_lower_bound_matches_scipy(confidence):
    from scipy.stats import binomtest

    ks, ns = [0, 1, 5, 8, 37, 100], [1, 4, 8, 8, 90, 100]
    bound = M.wilson_lower_bound(ks, ns, confidence=confidence)
    for k, n, b in zip(ks, ns, bound.tolist(), strict=True):
        # a one-sided bound at confidence c is the low end of the two-sided interval at 2c - 1
        low = k / n if confidence == 0.5 else binomtest(k, n).proportion_ci(
            confidence_level=2 * confidence - 1, method="wilson").low
        assert b == pytest.approx(max(low, 0.0), abs=1e-12)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("n", [20, 100])
def test_wilson_lower_bound_covers_the_true_proportion_at_its_confidence(p, n):
    # exact over every outcome k: the bound lies above the true p with probability near 1 - confidence
    from scipy.stats import binom

    k = torch.arange(n + 1)
    above = M.wilson_lower_bound(k, torch.full_like(k, n), confidence=0.9) > p
    miss = float(binom.pmf(k.numpy(), n, p)[above.numpy()].sum())
    assert miss <= 0.1 + 0.04


def test_wilson_lower_bound_edge_cases_and_bad_input():
    assert M.wilson_lower_bound(0, 0).item() == 0.0  # no evidence
    assert M.wilson_lower_bound(3, 3, confidence=0.5).item() == 1.0
    assert M.wilson_lower_bound(50, 100).item() < M.wilson_lower_bound(500, 1000).item() < 0.5
    with pytest.raises(ValueError, match=r"Expected `confidence` to be a float in \[0.5, 1\)"):
        M.wilson_lower_bound(1, 2, confidence=1.0)
    with pytest.raises(ValueError, match=r"Expected `trials` to be integer counts >= `successes`"):
        M.wilson_lower_bound([3, 1], [2, 2])
    with pytest.raises(ValueError, match=r"Expected `successes` to be integer counts >= 0"):
        M.wilson_lower_bound(0.5, 2)
    with pytest.raises(ValueError, match=r"Expected `trials` to be a tensor of shape \(2,\)"):
        M.wilson_lower_bound([1, 1], [2, 2, 2])


@SETTINGS
@given(labels_and_scores(), st.floats(0.05, 1.0), st.sampled_from([0.5, 0.8, 0.95]))
def test_threshold_for_with_confidence_is_the_lowest_threshold_whose_bound_meets_target(
        pair, target, confidence):
    y, s = pair
    try:
        choice = M.threshold_for(y, s, target_precision=target, confidence=confidence)
    except ValueError:
        return
    plain = M.threshold_for(y, s, target_precision=target)  # reachable whenever the bound is
    assert choice.threshold >= plain.threshold
    if confidence == 0.5:
        assert choice == plain

    def bound(x):
        pred = s >= x
        return M.wilson_lower_bound(int((pred & (y == 1)).sum()), int(pred.sum()),
                                    confidence=confidence).item()

    assert bound(choice.threshold) >= target - 1e-12
    assert all(bound(x) < target for x in np.unique(s[s < choice.threshold]))


def test_threshold_with_a_margin_meets_the_target_on_new_data_more_often_than_the_plain_rule():
    # Scores with a known precision curve: a positive's score ~ N(2, 1), a negative's ~ N(0, 1),
    # 2% positives. Validation sets of 3,000 (60 positives) are resampled; each chosen threshold
    # is judged by its true precision. The plain rule sits on the noisy edge and misses 0.5 often.
    # (Fails if `confidence` is ignored.)
    from scipy.stats import norm

    def true_precision(t):
        tp, fp = 0.02 * norm.sf(t - 2), 0.98 * norm.sf(t)
        return tp / (tp + fp)

    g = torch.Generator().manual_seed(0)
    misses = {"plain": 0, "wilson": 0}
    for _ in range(200):
        y = (torch.rand(3000, generator=g) < 0.02).long()
        s = torch.randn(3000, generator=g, dtype=torch.float64) + 2 * y
        for name, confidence in (("plain", None), ("wilson", 0.9)):
            try:
                t = M.threshold_for(y, s, target_precision=0.5, confidence=confidence).threshold
            except ValueError:  # the target cannot be shown on this sample: no threshold, no miss
                continue
            misses[name] += true_precision(t) < 0.5
    # measured: plain 114 of 200, Wilson at 0.9 26 of 200 (it scans many thresholds, so a bit
    # more than 1 - confidence); a plain rule posing as the margin would miss as often as plain
    assert misses["wilson"] <= 0.2 * 200 < 0.4 * 200 <= misses["plain"]


def test_threshold_for_confidence_validation():
    with pytest.raises(ValueError, match=r"Expected `confidence` to be None when `target_recall`"):
        M.threshold_for([0, 1], [0.1, 0.2], target_recall=0.5, confidence=0.9)
    with pytest.raises(ValueError, match=r"Expected `confidence` to be a float in \[0.5, 1\)"):
        M.threshold_for([0, 1], [0.1, 0.2], target_precision=0.5, confidence=0.3)
    with pytest.raises(ValueError, match=r"reachable on these data \(best 0.9 lower bound"):
        M.threshold_for([0, 1], [0.1, 0.2], target_precision=0.9, confidence=0.9)
