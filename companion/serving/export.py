"""A model exported to ONNX, run by ONNX Runtime, and quantized to int8.

Serving does not need PyTorch: :func:`export_onnx` writes a model's graph and weights
to one ``.onnx`` file with ``torch.onnx.export`` (the ``torch.export``-based exporter),
with a dynamic batch dimension so the server may send any number of rows;
:class:`OnnxModel` runs such a file with ONNX Runtime and behaves like the model (a
float tensor in, a float tensor out), so :func:`~companion.serving.online.create_app`
can serve it. :func:`quantize_int8` stores each weight matrix as 8-bit integers plus
a scale (ONNX Runtime's dynamic quantization): the file shrinks about fourfold, and on
a CPU the matrix products run in integer arithmetic, at a small cost in accuracy that
you measure before you ship.

Needs the ``export`` extra: ``pip install 'companion[export]'`` (onnx, onnxruntime,
onnxscript), besides the ``serving`` extra of :mod:`companion.serving`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from companion._validation import check_instance, check_int, check_tensor, message, missing_extra
from companion.utils import eval_mode

try:
    import onnx
    import onnxruntime
    import onnxscript  # noqa: F401 -- torch.onnx.export's exporter is written with it
    from onnxruntime.quantization import QuantType, quantize_dynamic
except ModuleNotFoundError as error:
    raise missing_extra("export", error) from error

__all__ = ["OnnxModel", "export_onnx", "quantize_int8"]

_INPUT, _OUTPUT = "x", "output"


def _path(name: str, value: str | os.PathLike) -> Path:
    check_instance(name, value, (str, os.PathLike), "a path (str or os.PathLike)")
    return Path(value)


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | os.PathLike) -> Path:
    """Export ``model`` to one ONNX file at ``path``, with a dynamic batch dimension.

    The model is traced on ``example`` in eval mode (dropout off, batch norm on its
    running statistics) on the CPU, and written with its weights inside the file (no
    separate ``.data`` file). Everything the forward pass does is in the graph, the
    input preprocessing too if it is part of ``model``: put it there, so that a server
    cannot forget it.

    Args:
        model: an ``nn.Module`` taking one float tensor ``(N, ...)``.
        example: an input of the shape the model expects, ``(N, ...)`` with N >= 2
            (a batch of 1 would be taken for a fixed size).
        path: where to write the file (its folder must exist).

    Returns:
        The path written. The graph's input is named ``"x"``, its output ``"output"``.

    Example:
        >>> import tempfile
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> path = export_onnx(model, torch.randn(2, 3), Path(tempfile.mkdtemp()) / "model.onnx")
        >>> OnnxModel(path)(torch.randn(5, 3)).shape
        torch.Size([5, 2])
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_tensor("example", example, floating=True)
    if example.ndim < 1 or len(example) < 2:
        raise ValueError(message("example", "a batch of at least 2 rows (its size is made dynamic)", example))
    path = _path("path", path)
    if not path.parent.is_dir():
        raise ValueError(message("path", "a path in an existing folder", path))
    batch = torch.export.Dim("batch", min=1)
    with eval_mode(model), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        program = torch.onnx.export(
            model, (example.detach().cpu(),), input_names=[_INPUT], output_names=[_OUTPUT],
            dynamic_shapes=({0: batch},), dynamo=True, verbose=False,
        )
    program.save(path, external_data=False)
    return path


def quantize_int8(source: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Write ``source``'s model with int8 weights to ``destination`` (dynamic quantization).

    ONNX Runtime's ``quantize_dynamic``: each weight matrix of a matrix product
    (``MatMul``, ``Gemm``) is stored as int8 with a scale; at run time each input batch
    gets its own scale, computed from its values (hence "dynamic": no calibration data
    needed), so the products run on 8-bit integers.

    Args:
        source: an ONNX file, e.g. from :func:`export_onnx`.
        destination: where to write the quantized model (not ``source`` itself).

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 3))
        >>> fp32 = export_onnx(model, torch.randn(2, 64), folder / "fp32.onnx")
        >>> int8 = quantize_int8(fp32, folder / "int8.onnx")
        >>> fp32.stat().st_size / int8.stat().st_size > 3   # the biases stay float32
        True
    """
    source, destination = _path("source", source), _path("destination", destination)
    if not source.is_file():
        raise ValueError(message("source", "the path of an existing ONNX file", source))
    if destination.resolve() == source.resolve():
        raise ValueError(message("destination", "a path other than `source`'s", destination))
    if not destination.parent.is_dir():
        raise ValueError(message("destination", "a path in an existing folder", destination))
    try:
        onnx.checker.check_model(str(source))
    except onnx.checker.ValidationError as error:  # also what a file that is no model at all raises
        raise ValueError(message("source", "a valid ONNX model file", source, found=str(error)[:200])) from None
    root = logging.getLogger()
    root.addFilter(_not_its_preprocessing_hint)
    try:
        quantize_dynamic(source, destination, weight_type=QuantType.QInt8)
    finally:
        root.removeFilter(_not_its_preprocessing_hint)
    return destination


def _not_its_preprocessing_hint(record: logging.LogRecord) -> bool:
    # quantize_dynamic logs a hint to run ONNX Runtime's shape-inference script first: it helps
    # models whose shapes the quantizer cannot infer, not an exported MLP's.
    return not record.getMessage().startswith("Please consider to run pre-processing")


class OnnxModel:
    """An ONNX file run by ONNX Runtime on the CPU, called like a model: ``X -> output``.

    Args:
        path: an ONNX file with one float input and one output (e.g. from
            :func:`export_onnx` or :func:`quantize_int8`).
        threads: threads ONNX Runtime may use for one call, an int >= 1 (1 by default:
            a server runs many calls side by side).

    Shapes:
        input ``(N, ...)`` float32 (other float dtypes are converted), output as the
        exported model's, as a float32 tensor on the CPU.

    Calls may come from several threads at once (ONNX Runtime's ``run`` is
    thread-safe), so the object can be served by
    :func:`~companion.serving.online.create_app` or a
    :class:`~companion.serving.batching.RequestBatcher`.

    Example:
        >>> import tempfile
        >>> model = nn.Linear(3, 1)
        >>> onnx_model = OnnxModel(export_onnx(model, torch.randn(2, 3), Path(tempfile.mkdtemp()) / "m.onnx"))
        >>> x = torch.randn(4, 3)
        >>> bool(torch.allclose(onnx_model(x), model(x).detach(), atol=1e-6))
        True
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 1) -> None:
        self.path = _path("path", path)
        if not self.path.is_file():
            raise ValueError(message("path", "the path of an existing ONNX file", self.path))
        threads = check_int("threads", threads, low=1)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: not its notes on the graph
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 -- onnxruntime raises its own types for a bad file
            raise ValueError(message("path", "a valid ONNX model file", self.path,
                                     found=str(error)[:200])) from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(message("path", "a model with one input", self.path,
                                     found=f"{len(inputs)} inputs"))
        self.input_name = inputs[0].name

    @property
    def size_bytes(self) -> int:
        """The size of the ONNX file, in bytes."""
        return self.path.stat().st_size

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        check_tensor("X", X, floating=True)
        array = np.ascontiguousarray(X.detach().cpu().to(torch.float32).numpy())
        (output, *_) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(output)

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.path)!r})"
