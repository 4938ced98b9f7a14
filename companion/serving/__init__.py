"""Serving a model: offline (batch predictions in a lookup table) and online (an HTTP endpoint).

Needs the ``serving`` extra: ``pip install 'companion[serving]'`` (FastAPI and uvicorn).
"""

from companion._validation import missing_extra

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ModuleNotFoundError as error:
    raise missing_extra("serving", error) from error

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
