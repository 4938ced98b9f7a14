"""Exercise of notebook 4.4.3 (scalable model analysis): a sliced metric in SQL."""

from __future__ import annotations

import duckdb
import pandas as pd

from companion.exercises._registry import exercise

_SOLUTION = """
SELECT slice, COUNT(*) AS n, AVG(score) - AVG(label) AS prediction_bias
FROM preds
GROUP BY slice
ORDER BY slice
"""


@exercise(
    "4.4.3-bias-sql",
    "Write an SQL query over the table `preds` (columns slice, label, prediction, score) that returns, "
    "per slice and sorted by slice, the columns slice, n (rows) and prediction_bias "
    "(average score minus average label).",
    solution=_SOLUTION,
)
def _grade_bias_sql(answer: str) -> str | None:
    if not isinstance(answer, str):
        return "give the query as a string."
    preds = pd.DataFrame({
        "slice": ["web", "web", "ios", "ios", "ios", "android"],
        "label": [1, 0, 1, 1, 0, 0],
        "prediction": [1, 0, 1, 0, 0, 1],
        "score": [0.9, 0.2, 0.8, 0.4, 0.3, 0.7],
    })
    with duckdb.connect(":memory:") as con:
        con.register("preds", preds)
        expected = con.execute(_SOLUTION).df()
        got = con.execute(answer).df()
    if list(got.columns) != ["slice", "n", "prediction_bias"]:
        return f"return the columns slice, n, prediction_bias (in that order); you returned {list(got.columns)}."
    if list(got["slice"]) != list(expected["slice"]):
        return "return one row per slice, sorted by slice (GROUP BY and ORDER BY)."
    if list(got["n"]) != list(expected["n"]):
        return "n should count the rows of each slice."
    if not ((got["prediction_bias"] - expected["prediction_bias"]).abs() < 1e-9).all():
        return "prediction bias is the average score minus the average label, within each slice."
    return None
