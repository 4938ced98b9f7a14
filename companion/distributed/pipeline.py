"""Pipeline (model) parallelism: a model split into stages, one per process, fed micro-batches.

When a model does not fit one device, its layers are split into ``S`` consecutive
**stages**, each on its own device. A batch then flows through the stages one after
the other, so while one stage works the others wait. **GPipe** cuts the batch into
``M`` micro-batches: stage 2 works on micro-batch 1 while stage 1 works on
micro-batch 2. All forwards run, then all backwards; the gradients add up over the
micro-batches, so the step equals that of the whole model on the whole batch. The
idle share left (the **bubble**) is ``(S - 1) / (M + S - 1)`` when every stage takes
the same time (:func:`gpipe_bubble`).

:func:`run_pipeline` runs GPipe with ``torch.distributed.pipelining`` (``PipelineStage``
and ``ScheduleGPipe``) on every rank of a job (:func:`~companion.distributed.launch.launch`),
and records when each stage worked; :func:`bubble_fraction` and :func:`measured_bubble`
turn those records into the idle share. :func:`gpipe_timeline` draws the ideal
schedule on a fake clock.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

from companion._validation import (
    check_callable,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)

__all__ = [
    "Interval",
    "PipelineRankResult",
    "StepTiming",
    "bubble_fraction",
    "gpipe_bubble",
    "gpipe_timeline",
    "measured_bubble",
    "run_pipeline",
]

Interval = tuple[float, float, str]
"""``(start, end, kind)``: seconds on a clock, and ``"forward"`` or ``"backward"``."""


def gpipe_bubble(stages: int, micro_batches: int) -> float:
    """The idle share of a GPipe step with equal stages: ``(S - 1) / (M + S - 1)``.

    Each stage works ``M`` slots of the ``M + S - 1`` the forward (and the backward)
    pass lasts: it waits ``S - 1`` slots for the first micro-batch to reach it, or
    after its last one for the others to finish.

    Args:
        stages: number of stages ``S``, an int >= 1.
        micro_batches: number of micro-batches ``M``, an int >= 1.

    Returns:
        A float in [0, 1).

    Example:
        >>> [round(gpipe_bubble(2, m), 3) for m in (1, 2, 4, 8)]
        [0.5, 0.333, 0.2, 0.111]
    """
    stages = check_int("stages", stages, low=1)
    micro_batches = check_int("micro_batches", micro_batches, low=1)
    return (stages - 1) / (micro_batches + stages - 1)


def gpipe_timeline(
    stages: int, micro_batches: int, *, forward_seconds: float, backward_seconds: float
) -> list[list[Interval]]:
    """When each stage works in an ideal GPipe step (a fake clock, no communication time).

    The forward of micro-batch ``m`` on stage ``s`` starts at ``(m + s) * f``; once the
    last stage has done every forward, the backwards run from the last stage to the
    first: micro-batch ``m`` on stage ``s`` starts at
    ``(M + S - 1) * f + (m + S - 1 - s) * b``. The step lasts ``(M + S - 1) * (f + b)``.

    Args:
        stages: number of stages ``S``, an int >= 1.
        micro_batches: number of micro-batches ``M``, an int >= 1.
        forward_seconds: one micro-batch's forward on one stage ``f``, a float >= 0.
        backward_seconds: one micro-batch's backward on one stage ``b``, a float >= 0.

    Returns:
        Per stage, its :data:`Interval` s in time order.

    Example:
        >>> timeline = gpipe_timeline(2, 2, forward_seconds=1.0, backward_seconds=2.0)
        >>> [(start, end, kind[0]) for start, end, kind in timeline[1]]
        [(1.0, 2.0, 'f'), (2.0, 3.0, 'f'), (3.0, 5.0, 'b'), (5.0, 7.0, 'b')]
        >>> round(bubble_fraction(timeline, start=0.0, end=9.0), 6)  # = gpipe_bubble(2, 2)
        0.333333
    """
    stages = check_int("stages", stages, low=1)
    micro_batches = check_int("micro_batches", micro_batches, low=1)
    f = check_float("forward_seconds", forward_seconds, low=0)
    b = check_float("backward_seconds", backward_seconds, low=0)
    backward_start = (micro_batches + stages - 1) * f
    timeline = []
    for s in range(stages):
        forwards = [((m + s) * f, (m + s + 1) * f, "forward") for m in range(micro_batches)]
        backwards = [(backward_start + (m + stages - 1 - s) * b, backward_start + (m + stages - s) * b, "backward")
                     for m in range(micro_batches)]
        timeline.append(forwards + backwards)
    return timeline


def bubble_fraction(intervals: Sequence[Sequence[Interval]], *, start: float, end: float) -> float:
    """The share of the ``[start, end]`` window the stages spent idle, averaged over the stages.

    ``1 - busy / (S * (end - start))``, where ``busy`` sums every stage's work intervals
    (clipped to the window). Overlapping intervals of one stage count once.

    Args:
        intervals: per stage, its ``(start, end, kind)`` work intervals; at least one stage.
        start: when the step began, a float.
        end: when it ended, a float > start.

    Returns:
        A float in [0, 1].

    Example:
        >>> bubble_fraction([[(0.0, 1.0, "forward")], [(1.0, 2.0, "forward")]], start=0.0, end=2.0)
        0.5
    """
    check_instance("intervals", intervals, Sequence, "a sequence of per-stage interval lists")
    if not intervals:
        raise ValueError(message("intervals", "a sequence with at least one stage", intervals))
    start = check_float("start", start)
    end = check_float("end", end, low=start, low_open=True)
    busy = 0.0
    for stage, stage_intervals in enumerate(intervals):
        covered = start  # merge: time already counted
        for i, interval in enumerate(sorted(stage_intervals, key=lambda item: item[0])):
            if not (isinstance(interval, tuple) and len(interval) == 3 and interval[1] >= interval[0]):
                raise ValueError(message(f"intervals[{stage}][{i}]", "a (start, end, kind) tuple with end >= start",
                                         interval))
            lo, hi = max(interval[0], covered), min(interval[1], end)
            if hi > lo:
                busy += hi - lo
                covered = hi
    return 1.0 - busy / (len(intervals) * (end - start))


@dataclass
class StepTiming:
    """When one pipeline step ran on one rank (``time.monotonic()`` seconds, shared by the processes of a machine).

    Attributes:
        start: when the step began (after a barrier every rank passed).
        intervals: this stage's work intervals, in order.
    """

    start: float
    intervals: list[Interval] = field(default_factory=list)


@dataclass
class PipelineRankResult:
    """What :func:`run_pipeline` returns on one rank (the rank runs stage ``rank``).

    Attributes:
        rank: this process's rank and stage index.
        timings: micro-batch count -> the timed steps, one per repeat.
        outputs: micro-batch count -> the model's output ``(N, ...)`` (last stage only).
        losses: micro-batch count -> the mean of the micro-batch losses (last stage only).
        grads: micro-batch count -> this stage's parameter gradients, by the parameter's
            name in the stage module.
    """

    rank: int
    timings: dict[int, list[StepTiming]] = field(default_factory=dict)
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)
    losses: dict[int, float] = field(default_factory=dict)
    grads: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


class _Work(torch.autograd.Function):
    """Identity whose backward stands for a stage's backward work: it sleeps and records the interval."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, record: Callable[[Interval], None], seconds: float) -> torch.Tensor:
        ctx.record, ctx.seconds = record, seconds
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        begin = time.monotonic()
        time.sleep(ctx.seconds)
        ctx.record((begin, time.monotonic(), "backward"))
        return grad, None, None


class _TimedStage(nn.Module):
    """A stage that also works ``seconds_per_row * rows`` seconds (a sleep) per pass, and records when it works."""

    def __init__(self, module: nn.Module, seconds_per_row: float) -> None:
        super().__init__()
        self.module = module
        self.seconds_per_row = seconds_per_row
        self.intervals: list[Interval] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        begin = time.monotonic()
        out = self.module(x)
        seconds = self.seconds_per_row * len(x)
        time.sleep(seconds)
        self.intervals.append((begin, time.monotonic(), "forward"))
        return _Work.apply(out, self.intervals.append, seconds)


def run_pipeline(
    stages: Sequence[nn.Module],
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    micro_batches: Sequence[int],
    work_seconds: float = 0.0,
    repeats: int = 1,
) -> PipelineRankResult:
    """One GPipe training step per micro-batch count, timed; run on every rank (see :func:`launch`).

    Rank ``r`` holds ``stages[r]`` (a copy) and only it: the world size must equal the
    number of stages. For each count ``M`` in ``micro_batches`` the rank builds a
    ``PipelineStage`` and a ``ScheduleGPipe`` (``torch.distributed.pipelining``): the
    schedule cuts ``X`` into ``M`` micro-batches, sends activations forward and
    gradients back between neighbouring stages, and averages the micro-batches'
    gradients (the ``loss_fn`` is a mean), so the gradients equal those of the whole
    model on the whole batch. No optimizer step is taken: every step starts from the
    same weights.

    The real arithmetic of a small model takes microseconds, which no clock on a busy
    machine resolves. So each stage also *works* ``work_seconds`` per pass over the
    whole batch (a sleep, in proportion to the micro-batch's rows, in the forward and
    again in the backward), as a large layer would. A first untimed round builds the
    pipeline (it sends the shapes once); then ``repeats`` rounds each time one step per
    count, all ranks starting together (a barrier).

    Args:
        stages: the model's consecutive parts, one per rank; ``stages[0]`` takes ``X``.
        X: the batch ``(N, ...)``, a float tensor.
        y: the targets ``(N, ...)``.
        loss_fn: ``loss_fn(output, y)`` returns a scalar mean loss.
        micro_batches: the micro-batch counts to run, ints >= 1 that divide ``N``.
        work_seconds: seconds of stand-in work per stage per pass over the whole
            batch, a float >= 0.
        repeats: timed steps per count, an int >= 1.

    Returns:
        This rank's :class:`PipelineRankResult` (outputs and losses on the last stage).

    Raises:
        RuntimeError: no ``torch.distributed`` process group is running here.

    Example:
        >>> from companion.distributed.launch import launch
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        >>> X, y = torch.randn(8, 4), torch.randn(8, 2)
        >>> job = launch(run_pipeline, nprocs=2, args=([model[:2], model[2:]], X, y),
        ...              kwargs=dict(loss_fn=nn.MSELoss(), micro_batches=[1, 4]))
        >>> torch.allclose(job.results[1].outputs[4], model(X), atol=1e-6)  # the last stage's output
        True
    """
    if not dist.is_initialized():
        raise RuntimeError(
            "Expected a torch.distributed process group, but got none: run run_pipeline "
            "with companion.distributed.launch(...) or under torchrun."
        )
    rank, world_size = dist.get_rank(), dist.get_world_size()
    check_instance("stages", stages, Sequence, "a sequence of torch.nn.Module stages")
    if len(stages) != world_size:
        raise ValueError(message("stages", f"one stage per rank ({world_size})", f"{len(stages)} stages"))
    for i, stage in enumerate(stages):
        check_instance(f"stages[{i}]", stage, nn.Module, "a torch.nn.Module")
    check_tensor("X", X, floating=True)
    check_tensor("y", y)
    check_same_length("X", X, "y", y)
    check_callable("loss_fn", loss_fn)
    check_instance("micro_batches", micro_batches, Sequence, "a sequence of ints")
    if not micro_batches:
        raise ValueError(message("micro_batches", "a sequence of at least one count", micro_batches))
    counts = [check_int(f"micro_batches[{i}]", m, low=1) for i, m in enumerate(micro_batches)]
    for m in counts:
        if len(X) % m:
            raise ValueError(message("micro_batches", f"counts that divide the {len(X)} rows", list(micro_batches),
                                     found=f"{m} does not"))
    work_seconds = check_float("work_seconds", work_seconds, low=0)
    repeats = check_int("repeats", repeats, low=1)

    timed = _TimedStage(copy.deepcopy(stages[rank]), work_seconds / len(X))
    first, last = rank == 0, rank == world_size - 1
    schedules = {m: ScheduleGPipe(PipelineStage(timed, rank, world_size, torch.device("cpu")),
                                  n_microbatches=m, loss_fn=loss_fn) for m in counts}
    result = PipelineRankResult(rank)
    for round_ in range(repeats + 1):
        timed.seconds_per_row = work_seconds / len(X) if round_ else 0.0  # the first round builds, untimed
        for m in counts:
            timed.zero_grad(set_to_none=True)
            timed.intervals = []
            losses: list[torch.Tensor] = []
            dist.barrier()
            start = time.monotonic()
            output = schedules[m].step(*((X,) if first else ()), **({"target": y, "losses": losses} if last else {}))
            if round_ == 0:  # the untimed round: what the step computed
                result.grads[m] = {name: p.grad.detach().clone() for name, p in timed.module.named_parameters()}
                if last:
                    result.outputs[m] = output.detach().clone()
                    result.losses[m] = float(torch.stack([loss.detach() for loss in losses]).mean())
            else:
                result.timings.setdefault(m, []).append(StepTiming(start, list(timed.intervals)))
    return result


def measured_bubble(results: Sequence[PipelineRankResult]) -> dict[int, float]:
    """The idle share of each micro-batch count's steps, from every rank's :class:`PipelineRankResult`.

    A step's window runs from the earliest rank's start to the end of the last work
    interval of any stage; its bubble is :func:`bubble_fraction` over all stages. The
    ranks share one clock (one machine). Returns the median over the repeats.

    Example:
        >>> timeline = gpipe_timeline(2, 4, forward_seconds=1.0, backward_seconds=1.0)
        >>> ranks = [PipelineRankResult(r, timings={4: [StepTiming(0.0, timeline[r])]}) for r in range(2)]
        >>> {m: round(bubble, 6) for m, bubble in measured_bubble(ranks).items()}
        {4: 0.2}
    """
    check_instance("results", results, Sequence, "a sequence of PipelineRankResult, one per rank")
    if not results or not all(isinstance(r, PipelineRankResult) for r in results):
        raise ValueError(message("results", "a non-empty sequence of PipelineRankResult, one per rank", results))
    counts = list(results[0].timings)
    if any(list(r.timings) != counts or [len(r.timings[m]) for m in counts] != [len(results[0].timings[m])
                                                                                 for m in counts] for r in results):
        raise ValueError(message("results", "the results of one job (the same counts and repeats on every rank)",
                                 results))
    bubbles = {}
    for m in counts:
        fractions = []
        for steps in zip(*(r.timings[m] for r in results), strict=True):
            start = min(step.start for step in steps)
            end = max((interval[1] for step in steps for interval in step.intervals), default=start)
            if end <= start:
                raise ValueError(message("results", "steps with work recorded", results,
                                         found=f"no work in a step of {m} micro-batches"))
            fractions.append(bubble_fraction([step.intervals for step in steps], start=start, end=end))
        bubbles[m] = statistics.median(fractions)
    return bubbles
