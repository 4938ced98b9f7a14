"""Tests for companion.distributed.pipeline: GPipe on processes, checked against autograd on the whole model."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch import nn

from companion.distributed.launch import JobFailedError, launch
from companion.distributed.pipeline import (
    PipelineRankResult,
    StepTiming,
    bubble_fraction,
    gpipe_bubble,
    gpipe_timeline,
    measured_bubble,
    run_pipeline,
)

# --- the bookkeeping, on a fake clock ---------------------------------------------------


def test_gpipe_bubble_formula():
    assert gpipe_bubble(2, 1) == 0.5 and gpipe_bubble(4, 12) == pytest.approx(0.2)
    assert gpipe_bubble(1, 7) == 0.0  # one stage never waits
    assert [gpipe_bubble(3, m) for m in (1, 2, 4)] == pytest.approx([2 / 3, 2 / 4, 2 / 6])


@pytest.mark.parametrize(("stages", "micro_batches"), [(1, 1), (2, 1), (2, 3), (3, 4), (4, 8)])
def test_the_ideal_timeline_has_the_formulas_bubble_and_respects_every_dependency(stages, micro_batches):
    f, b = 0.25, 0.5
    timeline = gpipe_timeline(stages, micro_batches, forward_seconds=f, backward_seconds=b)
    end = (micro_batches + stages - 1) * (f + b)
    assert max(interval[1] for stage in timeline for interval in stage) == pytest.approx(end)
    assert bubble_fraction(timeline, start=0.0, end=end) == pytest.approx(gpipe_bubble(stages, micro_batches))
    for s, stage in enumerate(timeline):
        forwards, backwards = stage[:micro_batches], stage[micro_batches:]
        assert {k for *_, k in forwards} == {"forward"} and {k for *_, k in backwards} == {"backward"}
        for m in range(micro_batches):
            if s > 0:  # a forward needs the previous stage's activations
                assert forwards[m][0] >= timeline[s - 1][m][1]
            if s < stages - 1:  # a backward needs the next stage's gradient
                assert backwards[m][0] >= timeline[s + 1][micro_batches + m][1]
        starts = [interval[0] for interval in stage]
        assert starts == sorted(starts) and all(a[1] <= b_[0] + 1e-12 for a, b_ in zip(stage, stage[1:]))


def test_bubble_fraction_clips_to_the_window_and_counts_overlaps_once():
    intervals = [[(-1.0, 1.0, "forward"), (0.5, 2.0, "backward")], [(3.0, 5.0, "forward")]]
    # stage 0 busy [0, 2] in the window [0, 4], stage 1 busy [3, 4]: 3 of 8 stage-seconds
    assert bubble_fraction(intervals, start=0.0, end=4.0) == pytest.approx(1 - 3 / 8)
    assert bubble_fraction([[]], start=0.0, end=1.0) == 1.0
    assert bubble_fraction([[(0.0, 1.0, "forward")]], start=0.0, end=1.0) == 0.0


def test_measured_bubble_takes_the_window_across_ranks_and_the_median_of_repeats():
    def ranks(offsets):
        timelines = [gpipe_timeline(2, 2, forward_seconds=1.0, backward_seconds=1.0) for _ in offsets]
        return [PipelineRankResult(r, timings={2: [StepTiming(o, [(a + o, b + o, k) for a, b, k in t[r]])
                                                   for o, t in zip(offsets, timelines, strict=True)]})
                for r in range(2)]

    assert measured_bubble(ranks([0.0])) == {2: pytest.approx(1 / 3)}
    assert measured_bubble(ranks([0.0, 10.0, 20.0])) == {2: pytest.approx(1 / 3)}
    late = ranks([0.0])
    late[0].timings[2][0].start = -6.0  # rank 0 started 6 s before the work: the window is 12 s, not 6
    assert measured_bubble(late) == {2: pytest.approx(1 - 8 / 24)}


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda: gpipe_bubble(0, 1), ValueError, "Expected `stages` to be an int >= 1, but got 0."),
        (lambda: gpipe_bubble(2, 1.5), TypeError, "`micro_batches` to be an int >= 1"),
        (lambda: gpipe_timeline(2, 2, forward_seconds=-1.0, backward_seconds=1.0), ValueError,
         "`forward_seconds` to be a float >= 0"),
        (lambda: gpipe_timeline(2, 0, forward_seconds=1.0, backward_seconds=1.0), ValueError, "`micro_batches`"),
        (lambda: bubble_fraction([], start=0.0, end=1.0), ValueError, "`intervals` to be a sequence with at least one"),
        (lambda: bubble_fraction("abc", start=0.0, end=1.0), ValueError, "`intervals[0][0]` to be a (start, end, kind)"),
        (lambda: bubble_fraction(None, start=0.0, end=1.0), TypeError, "`intervals` to be a sequence"),
        (lambda: bubble_fraction([[(0.0, 1.0, "forward")]], start=1.0, end=1.0), ValueError,
         "Expected `end` to be a float > 1.0, but got 1.0."),
        (lambda: bubble_fraction([[(2.0, 1.0, "forward")]], start=0.0, end=3.0), ValueError,
         "Expected `intervals[0][0]` to be a (start, end, kind) tuple with end >= start, but got (2.0, 1.0, 'forward')."),
        (lambda: measured_bubble([]), ValueError, "`results` to be a non-empty sequence of PipelineRankResult"),
        (lambda: measured_bubble([PipelineRankResult(0, timings={1: []}), PipelineRankResult(1, timings={2: []})]),
         ValueError, "the results of one job"),
        (lambda: measured_bubble([PipelineRankResult(0, timings={1: [StepTiming(0.0, [])]})]), ValueError,
         "found no work in a step of 1 micro-batches"),
    ],
)
def test_bad_input_of_the_bookkeeping(call, error, text):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)


# --- the pipeline on processes ----------------------------------------------------------------


def _model(stages: int) -> nn.Sequential:
    """Two layers per stage but the last, which has the output layer: cut at 2, 4, ... (see _stages)."""
    torch.manual_seed(0)
    layers = [nn.Linear(6, 12), nn.Tanh()]
    for _ in range(stages - 2):
        layers += [nn.Linear(12, 12), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(12, 3))


def _stages(model: nn.Sequential, n_stages: int) -> list[nn.Module]:
    cuts = [2 * i for i in range(n_stages)] + [len(model)]
    return [model[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


@pytest.mark.parametrize("n_stages", [2, 3])
def test_the_pipeline_gives_the_whole_models_output_and_gradients(n_stages):
    model = _model(n_stages)
    stages = _stages(model, n_stages)
    assert len(stages) == n_stages and all(len(list(stage.parameters())) == 2 for stage in stages)
    X, y = torch.randn(12, 6), torch.randint(0, 3, (12,))
    job = launch(run_pipeline, nprocs=n_stages, args=(stages, X, y), timeout=60,
                 kwargs=dict(loss_fn=nn.CrossEntropyLoss(), micro_batches=[1, 3, 4]))
    out = model(X)
    loss = nn.CrossEntropyLoss()(out, y)
    model.zero_grad()
    loss.backward()  # the oracle: autograd on the whole model and the whole batch
    params = dict(model.named_parameters())
    last = job.results[-1]
    for m in (1, 3, 4):
        torch.testing.assert_close(last.outputs[m], out.detach())
        assert last.losses[m] == pytest.approx(float(loss.detach()))
        for rank, stage in enumerate(stages):
            grads = job.results[rank].grads[m]
            assert set(grads) == {name for name, _ in stage.named_parameters()}  # its own stage only
            for name, grad in grads.items():
                torch.testing.assert_close(grad, params[name].grad)
    assert all(r.outputs == {} for r in job.results[:-1])


def test_the_pipeline_records_a_forward_and_a_backward_per_micro_batch_in_gpipe_order():
    model = _model(2)
    X, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    work = 0.02  # seconds per pass over the whole batch: 5 ms per micro-batch of 2 rows
    job = launch(run_pipeline, nprocs=2, args=([model[:2], model[2:]], X, y), timeout=60,
                 kwargs=dict(loss_fn=nn.CrossEntropyLoss(), micro_batches=[4], work_seconds=work, repeats=2))
    for rank_result in job.results:
        assert len(rank_result.timings[4]) == 2
        for step in rank_result.timings[4]:
            kinds = [kind for *_, kind in step.intervals]
            assert kinds == ["forward"] * 4 + ["backward"] * 4  # GPipe: all forwards, then all backwards
            assert all(end - start >= work / 4 for start, end, _ in step.intervals)  # each did its work
            assert step.intervals[0][0] >= step.start
    for first, second in zip(job.results[0].timings[4], job.results[1].timings[4], strict=True):
        for m in range(4):  # one clock: stage 1's forward of a micro-batch follows stage 0's, its backward precedes
            assert second.intervals[m][0] >= first.intervals[m][1]
            assert first.intervals[4 + m][0] >= second.intervals[4 + m][1]
    bubble = measured_bubble(job.results)[4]
    assert 0.0 < bubble < 1.0


def _bad_calls():
    model = _model(1)
    X, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    good = dict(stages=[model], X=X, y=y, loss_fn=nn.CrossEntropyLoss(), micro_batches=[1])
    changes = [
        dict(stages=[model, model]), dict(stages=model), dict(stages=["layer"]), dict(X=X.long()),
        dict(y=y[:3]), dict(loss_fn=3), dict(micro_batches=[]), dict(micro_batches=[3]), dict(micro_batches=[0]),
        dict(micro_batches=2), dict(work_seconds=-1.0), dict(repeats=0),
    ]
    messages = []
    for change in changes:
        kwargs = {**good, **change}
        try:
            run_pipeline(kwargs.pop("stages"), kwargs.pop("X"), kwargs.pop("y"), **kwargs)
        except (TypeError, ValueError) as error:
            messages.append(f"{type(error).__name__}: {error}")
        else:
            messages.append("no error")
    dist.barrier()
    return messages


def test_bad_input_of_run_pipeline():
    with pytest.raises(RuntimeError, match="Expected a torch.distributed process group"):
        run_pipeline([nn.Linear(2, 2)], torch.randn(2, 2), torch.randn(2, 2), loss_fn=nn.MSELoss(), micro_batches=[1])
    messages = launch(_bad_calls, nprocs=1, timeout=60).results[0]
    expected = [
        "ValueError: Expected `stages` to be one stage per rank (1), but got '2 stages'.",
        "TypeError: Expected `stages` to be a sequence of torch.nn.Module stages",
        "TypeError: Expected `stages[0]` to be a torch.nn.Module, but got 'layer'.",
        "TypeError: Expected `X` to be a floating-point tensor",
        "ValueError: Expected `X` and `y` to have the same length, but got 8 and 3.",
        "TypeError: Expected `loss_fn` to be callable, but got 3.",
        "ValueError: Expected `micro_batches` to be a sequence of at least one count, but got [].",
        "ValueError: Expected `micro_batches` to be counts that divide the 8 rows, but got [3]: found 3 does not.",
        "ValueError: Expected `micro_batches[0]` to be an int >= 1, but got 0.",
        "TypeError: Expected `micro_batches` to be a sequence of ints, but got 2.",
        "ValueError: Expected `work_seconds` to be a float >= 0, but got -1.0.",
        "ValueError: Expected `repeats` to be an int >= 1, but got 0.",
    ]
    assert len(messages) == len(expected)
    for got, want in zip(messages, expected, strict=True):
        assert got.startswith(want), (got, want)


def test_a_failing_stage_fails_the_job():
    with pytest.raises(JobFailedError, match="one stage per rank"):
        launch(run_pipeline, nprocs=2, args=([nn.Linear(2, 2)], torch.randn(2, 2), torch.randn(2, 2)),
               kwargs=dict(loss_fn=nn.MSELoss(), micro_batches=[1]), timeout=30)
