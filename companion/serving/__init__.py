"""Serving a model: offline (batch predictions in a lookup table) and online (an HTTP endpoint)."""

from companion.serving.offline import (
    BatchRejected,
    BatchReport,
    Prediction,
    PredictionTable,
    batch_predict,
    verify_predictions,
)
from companion.serving.online import RunningServer, create_app, serve

__all__ = [
    "BatchRejected",
    "BatchReport",
    "Prediction",
    "PredictionTable",
    "RunningServer",
    "batch_predict",
    "create_app",
    "serve",
    "verify_predictions",
]
