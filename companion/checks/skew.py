"""Training-serving skew: do the features a model is served match those it was trained on?

:func:`training_serving_skew` compares the two feature tables column by column
(schema: presence, type, missing values, categorical domain; distribution: PSI and
the Kolmogorov-Smirnov or L-infinity distance) and returns a :class:`SkewReport`,
whose ``check()`` raises :class:`~companion.checks.ModelCheckError` on skew.
:func:`population_stability_index` is the PSI of two histograms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from companion._tables import as_frame
from companion._validation import check_float, check_int, message
from companion.checks._report import failure

__all__ = ["population_stability_index", "SkewReport", "training_serving_skew"]


def _histogram(name: str, counts: Sequence[float] | np.ndarray, bins: int | None = None) -> np.ndarray:
    values = np.asarray(counts, dtype=float)
    requirement = "a histogram: non-negative counts or shares per bin, with a positive sum"
    if bins is not None:
        requirement += f", over {bins} bins like `expected`"
    if values.ndim != 1 or (bins is not None and len(values) != bins) or not np.isfinite(values).all() \
            or (values < 0).any() or values.sum() <= 0:
        raise ValueError(message(name, requirement, values))
    return values / values.sum()


def population_stability_index(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, *, eps: float = 1e-4
) -> float:
    """PSI between two histograms: ``sum((a - e) * ln(a / e))`` over bins.

    Both inputs are counts or shares per bin (normalised here). Shares are floored
    at ``eps`` so an empty bin does not give an infinite value. Rules of thumb:
    below 0.1 no real shift, 0.1–0.2 a moderate shift, above 0.2 a significant one.

    Args:
        expected: the reference histogram (training data), ``(B,)``.
        actual: the histogram to compare (serving data), ``(B,)``.
        eps: the floor of a bin's share, a float > 0.

    Example:
        >>> round(population_stability_index([50, 50], [50, 50]), 6)
        0.0
        >>> round(population_stability_index([50, 50], [80, 20]), 4)
        0.4159
    """
    eps = check_float("eps", eps, low=0, low_open=True)
    e = _histogram("expected", expected)
    a = _histogram("actual", actual, len(e))
    e, a = np.clip(e, eps, None), np.clip(a, eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class SkewReport:
    """Per-feature result of :func:`training_serving_skew`.

    Attributes:
        table: one row per feature: ``kind`` (numeric/categorical), ``schema`` (the
            schema problem or ""), ``psi``, ``distance`` (KS statistic for numeric
            features, L-infinity distance of category shares for categorical ones),
            ``p_value`` (of the KS test), ``skewed`` and ``reason``.
        psi_threshold: PSI above which a feature counts as skewed.
        distance_threshold: KS / L-infinity distance above which it counts as skewed.
        alpha: KS p-value below which a numeric feature's distance counts.
    """

    table: pd.DataFrame
    psi_threshold: float
    distance_threshold: float
    alpha: float

    @property
    def skewed(self) -> list[str]:
        """Names of the features with a schema or distribution problem."""
        return self.table.index[self.table["skewed"]].tolist()

    @property
    def ok(self) -> bool:
        """True when no feature is skewed."""
        return not self.skewed

    def check(self) -> None:
        """Raise :class:`ModelCheckError` listing every skewed feature with its reason."""
        if self.ok:
            return
        reasons = "; ".join(f"`{f}`: {self.table.loc[f, 'reason']}" for f in self.skewed)
        raise failure("training_serving_skew", f"{len(self.skewed)} feature(s) differ between "
                      f"training and serving: {reasons}", f"features {self.skewed}",
                      "compare the serving transform with the training one for these features "
                      "(same code, same fitted statistics, same units and encodings); if the world "
                      "changed instead, retrain on recent data")

    def __str__(self) -> str:
        head = "no skew" if self.ok else f"skewed features: {self.skewed}"
        return f"SkewReport({head})\n{self.table.to_string()}"

    def _repr_html_(self) -> str:
        return self.table.to_html(float_format=lambda v: f"{v:.3g}")


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _compare_feature(
    train: pd.Series, serving: pd.Series, bins: int, missing_tolerance: float,
    unseen_tolerance: float,
) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": "numeric" if _numeric(train) else "categorical", "schema": "",
                           "psi": math.nan, "distance": math.nan, "p_value": math.nan}
    if _numeric(train) != _numeric(serving):
        row["schema"] = f"type: {train.dtype} in training, {serving.dtype} in serving"
        return row
    extra_missing = serving.isna().mean() - train.isna().mean()
    if extra_missing > missing_tolerance:
        row["schema"] = f"missing values: {extra_missing:.1%} more in serving"
    t, s = train.dropna(), serving.dropna()
    if len(t) == 0 or len(s) == 0:
        row["schema"] = row["schema"] or "no non-missing values to compare"
        return row
    if row["kind"] == "numeric":
        t, s = t.to_numpy(float), s.to_numpy(float)
        edges = np.unique(np.quantile(t, np.linspace(0, 1, bins + 1)[1:-1]))
        cuts = np.concatenate([[-np.inf], edges, [np.inf]])
        e_counts = np.histogram(t, cuts)[0]
        a_counts = np.histogram(s, cuts)[0]
        row["psi"] = population_stability_index(e_counts, a_counts)
        result = ks_2samp(t, s)
        row["distance"], row["p_value"] = float(result.statistic), float(result.pvalue)
    else:
        t_share = t.astype(str).value_counts(normalize=True)
        s_share = s.astype(str).value_counts(normalize=True)
        unseen = float(s_share.drop(t_share.index, errors="ignore").sum())
        if unseen > unseen_tolerance and not row["schema"]:
            row["schema"] = f"domain: {unseen:.1%} of serving values never seen in training"
        shares = pd.concat([t_share, s_share], axis=1).fillna(0.0).to_numpy()
        row["psi"] = population_stability_index(shares[:, 0], shares[:, 1])
        row["distance"] = float(np.abs(shares[:, 0] - shares[:, 1]).max())
    return row


def training_serving_skew(
    train: Any,
    serving: Any,
    *,
    feature_names: Sequence[str] | None = None,
    psi_threshold: float = 0.2,
    distance_threshold: float = 0.1,
    alpha: float = 0.01,
    bins: int = 10,
    missing_tolerance: float = 0.01,
    unseen_tolerance: float = 0.01,
) -> SkewReport:
    """Compare the features a model was trained on with the features it is served.

    Schema checks, per feature: present in both (a training feature missing from
    serving, or a serving column training never had, is skew); same kind (numeric
    vs categorical); no more than ``missing_tolerance`` extra share of missing
    values; for categorical features no more than ``unseen_tolerance`` of serving
    values outside the training domain.

    Distribution checks, per feature present in both:

    - PSI (population stability index) over ``bins`` training-quantile bins for
      numeric features, over categories for categorical ones. Flagged above
      ``psi_threshold``: the usual reading is < 0.1 stable, 0.1–0.2 moderate
      shift, > 0.2 significant shift.
    - numeric: the two-sample Kolmogorov–Smirnov statistic (largest gap between
      the two empirical CDFs, from :func:`scipy.stats.ks_2samp`, whose p-value is
      reported too); categorical: the L-infinity distance between category
      shares (the largest change of any category's share; TFDV's skew measure).
      Flagged above ``distance_threshold`` (0.1: some value range or category
      gained or lost 10 % of the traffic). A numeric feature is flagged by KS
      only when the p-value is also below ``alpha``: the distance alone
      flags sampling noise in small serving windows, the p-value alone flags
      tiny, harmless shifts in large ones.

    Args:
        train: training features: a DataFrame, a mapping of columns, or a 2-D
            array/tensor (named by ``feature_names``).
        serving: serving features, in the same form.
        feature_names: column names for array/tensor inputs.
        psi_threshold: a float > 0.
        distance_threshold: a float in (0, 1].
        alpha: significance level of the KS test, a float in (0, 1).
        bins: quantile bins for numeric PSI, an int >= 2.
        missing_tolerance: allowed increase of the missing-value share, in [0, 1].
        unseen_tolerance: allowed share of unseen categories, in [0, 1].

    Returns:
        A :class:`SkewReport`; call ``.check()`` to raise on skew.

    Example:
        >>> g = np.random.default_rng(0)
        >>> train = {"age": g.normal(40, 10, 2000), "country": g.choice(["fr", "de"], 2000)}
        >>> serving = {"age": g.normal(40, 10, 500) / 10, "country": g.choice(["fr", "de"], 500)}
        >>> training_serving_skew(train, serving).skewed
        ['age']
    """
    psi_threshold = check_float("psi_threshold", psi_threshold, low=0, low_open=True)
    distance_threshold = check_float("distance_threshold", distance_threshold, low=0, high=1, low_open=True)
    alpha = check_float("alpha", alpha, low=0, high=1, low_open=True, high_open=True)
    bins = check_int("bins", bins, low=2)
    missing_tolerance = check_float("missing_tolerance", missing_tolerance, low=0, high=1)
    unseen_tolerance = check_float("unseen_tolerance", unseen_tolerance, low=0, high=1)
    t_frame = as_frame("train", train, feature_names=feature_names)
    s_frame = as_frame("serving", serving, feature_names=feature_names)
    rows = {}
    for feature in list(t_frame.columns) + [c for c in s_frame.columns if c not in t_frame.columns]:
        if feature not in s_frame.columns or feature not in t_frame.columns:
            where = "serving" if feature not in s_frame.columns else "training"
            frame = t_frame if feature in t_frame.columns else s_frame
            rows[feature] = {"kind": "numeric" if _numeric(frame[feature]) else "categorical",
                             "schema": f"presence: missing in {where}", "psi": math.nan,
                             "distance": math.nan, "p_value": math.nan}
            continue
        rows[feature] = _compare_feature(t_frame[feature], s_frame[feature], bins,
                                         missing_tolerance, unseen_tolerance)
    table = pd.DataFrame.from_dict(rows, orient="index")
    reasons = []
    for _, row in table.iterrows():
        parts = [row["schema"]] if row["schema"] else []
        if row["psi"] > psi_threshold:
            parts.append(f"PSI {row['psi']:.3g} > {psi_threshold:g}")
        significant = row["kind"] == "categorical" or row["p_value"] < alpha
        if row["distance"] > distance_threshold and significant:
            label = "KS" if row["kind"] == "numeric" else "L-inf"
            parts.append(f"{label} distance {row['distance']:.3g} > {distance_threshold:g}")
        reasons.append("; ".join(parts))
    table["reason"] = reasons
    table["skewed"] = table["reason"] != ""
    table.index.name = "feature"
    return SkewReport(table[["kind", "schema", "psi", "distance", "p_value", "skewed", "reason"]],
                      psi_threshold, distance_threshold, alpha)
