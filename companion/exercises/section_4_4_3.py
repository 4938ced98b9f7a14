"""Exercise of notebook 4.4.3 (scalable model analysis): a sliced metric in SQL."""

from __future__ import annotations

import pandas as pd

from companion._validation import missing_extra
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
    try:  # the warehouse extra: only notebook 4.4.3 installs it, and every notebook loads the graders
        import duckdb
    except ModuleNotFoundError as error:
        raise missing_extra("warehouse", error) from error
    if not isinstance(answer, str):
        return "give the query as a string."
    preds = pd.DataFrame({
        "slice": ["web", "web", "ios", "ios", "ios", "android", "web"],
        "label": [1, 0, 1, 1, 0, 0, 0],
        "prediction": [1, 0, 1, 0, 0, 1, 1],
        "score": [0.9, 0.2, 0.8, 0.4, 0.3, 0.7, 0.6],
    })
    mistakes = {  # the bias column some plausible wrong queries compute, and the hint for each
        "AVG(label) - AVG(score)": "the sign is flipped: prediction bias is the average score minus "
        "the average label (positive when the model over-predicts).",
        "AVG(prediction) - AVG(label)": "use the score column (the model's probability), not prediction "
        "(its 0/1 decision).",
        "SUM(score) - SUM(label)": "these are sums; prediction bias compares averages (AVG), so slices "
        "of different sizes are comparable.",
        "(SELECT AVG(score) - AVG(label) FROM preds)": "that is the bias of the whole table; compute it "
        "within each slice (aggregate per group).",
    }
    with duckdb.connect(":memory:") as con:
        con.register("preds", preds)
        expected = con.execute(_SOLUTION).df()
        try:
            got = con.execute(answer).df()
        except duckdb.Error as error:
            return f"DuckDB could not run your query: {str(error).splitlines()[0]}"
        wrong = {
            hint: con.execute(_SOLUTION.replace("AVG(score) - AVG(label)", column)).df()["prediction_bias"]
            for column, hint in mistakes.items()
        }
    if list(got.columns) != ["slice", "n", "prediction_bias"]:
        return f"return the columns slice, n, prediction_bias (in that order); you returned {list(got.columns)}."
    if sorted(map(str, got["slice"])) != list(expected["slice"]):
        return "return exactly one row per slice (GROUP BY slice)."
    if list(got["slice"]) != list(expected["slice"]):
        return "sort the rows by slice, in ascending order (ORDER BY slice)."
    if list(got["n"]) != list(expected["n"]):
        return "n should count the rows of each slice (COUNT(*))."

    def same(column: pd.Series) -> bool:
        return bool(((got["prediction_bias"] - column).abs() < 1e-9).all())

    if same(expected["prediction_bias"]):
        return None
    for hint, column in wrong.items():
        if same(column):
            return hint
    return "prediction bias is the average score minus the average label, within each slice."
