"""Serving a model: offline (batch predictions in a lookup table) and online (an HTTP endpoint).

Needs the ``serving`` extra: ``pip install 'companion[serving]'`` (FastAPI and uvicorn).
Online serving adds request batching (:mod:`~companion.serving.batching`), canary
rollouts (:mod:`~companion.serving.canary`) and a load generator
(:mod:`~companion.serving.load`). ONNX export and int8 quantization live in
:mod:`companion.serving.export`, which needs the ``export`` extra as well and is not
imported here: ``from companion.serving.export import export_onnx``.
"""

from companion._validation import missing_extra

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ModuleNotFoundError as error:
    raise missing_extra("serving", error) from error

from companion.serving.batching import BatchFailed, RequestBatcher
from companion.serving.canary import (
    CanaryPolicy,
    CanaryRouter,
    LiveMetric,
    canary_decision,
    create_canary_app,
    misclassified,
)
from companion.serving.load import LoadResult, send_concurrently
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
    "BatchFailed",
    "BatchRejected",
    "BatchReport",
    "CanaryPolicy",
    "CanaryRouter",
    "LiveMetric",
    "LoadResult",
    "Prediction",
    "PredictionTable",
    "RequestBatcher",
    "RunningServer",
    "batch_predict",
    "canary_decision",
    "create_app",
    "create_canary_app",
    "misclassified",
    "send_concurrently",
    "serve",
    "verify_predictions",
]
