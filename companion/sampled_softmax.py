"""Candidate sampling: a softmax loss over the true class and a random sample of the others.

A full softmax over ``C`` classes computes all ``C`` logits for every example,
which costs ``O(N * D * C)`` per step. :class:`SampledSoftmaxLoss` computes the
logit of each example's true class plus those of a small random set of
*candidate* negative classes shared by the batch, and corrects each negative
logit by the log of its probability of being in the sample (the "logQ
correction"), so that the loss still estimates the full softmax. Both losses
read the same output layer (an ``nn.Linear(D, C)``): train with the sampled
loss, evaluate with the full softmax (:func:`full_softmax_loss` or just
``output_layer(hidden)``).

How the estimate works. ``num_sampled`` classes are drawn with replacement from
the sampler's distribution ``q``; the distinct ones form the candidate set, and
class ``j`` is in it with probability ``pi_j = 1 - (1 - q_j) ** num_sampled``.
The sampled denominator ``exp(z_y) + sum_{j in sample, j != y} exp(z_j) / pi_j``
is then an *unbiased* (Horvitz-Thompson) estimate of the full denominator
``sum_j exp(z_j)`` for any ``num_sampled``. The loss and its gradient take a log
and a ratio of it, so they are biased for small samples and become exact as
``num_sampled`` grows: when every ``pi_j`` rounds to 1 the sampled loss *is*
the full cross-entropy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from companion._validation import (
    check_choice,
    check_float,
    check_instance,
    check_int,
    check_same_length,
    check_tensor,
    message,
)
from companion.utils import Timer, get_device, interleaved_medians

__all__ = ["SampledSoftmaxLoss", "full_softmax_loss", "step_times", "SAMPLERS"]

SAMPLERS = ("log_uniform", "uniform")
"""Candidate distributions: ``"log_uniform"`` (Zipfian: class ``k`` has probability
``log((k + 2) / (k + 1)) / log(C + 1)``, for classes numbered by decreasing frequency)
and ``"uniform"`` (``1 / C`` each)."""


def _check_inputs(hidden: torch.Tensor, target: torch.Tensor, output_layer: nn.Linear) -> None:
    check_instance("output_layer", output_layer, nn.Linear, "a torch.nn.Linear")
    check_tensor("hidden", hidden, ndim=2, floating=True)
    check_tensor("target", target, ndim=1)
    check_same_length("hidden", hidden, "target", target)
    if hidden.shape[1] != output_layer.in_features:
        raise ValueError(
            message("hidden", f"a tensor with {output_layer.in_features} columns", hidden)
        )
    if target.dtype != torch.int64:
        raise TypeError(message("target", "an int64 tensor of class indices", target))


def full_softmax_loss(
    hidden: torch.Tensor, target: torch.Tensor, output_layer: nn.Linear
) -> torch.Tensor:
    """Cross-entropy over every class: the full-softmax twin of :class:`SampledSoftmaxLoss`.

    Args:
        hidden: the last hidden layer's activations ``(N, D)``.
        target: class indices ``(N,)``, int64 in ``[0, C)``.
        output_layer: the shared ``nn.Linear(D, C)``.

    Returns:
        The mean cross-entropy, a scalar tensor.

    Example:
        >>> layer = nn.Linear(4, 10)
        >>> h, y = torch.randn(3, 4), torch.tensor([0, 5, 9])
        >>> bool(torch.isclose(full_softmax_loss(h, y, layer), F.cross_entropy(layer(h), y)))
        True
    """
    _check_inputs(hidden, target, output_layer)
    return F.cross_entropy(output_layer(hidden), target)


class SampledSoftmaxLoss(nn.Module):
    """Sampled softmax loss with the logQ correction, sharing the output layer with a full softmax.

    Each call draws ``num_sampled`` classes (with replacement) from ``sampler``,
    keeps the distinct ones as candidates for the whole batch, and computes
    cross-entropy over each example's true class plus the candidates (a candidate
    equal to the example's true class, an "accidental hit", is masked out). Each
    candidate's logit is lowered by ``log(pi_j)``, the log of its probability of
    being drawn at least once (see the module docstring for why this makes the
    denominator unbiased).

    Args:
        num_classes: ``C``, the number of classes (rows of the output layer), an int >= 2.
        num_sampled: draws per step, an int >= 1; the candidate set has at most this
            many distinct classes.
        sampler: ``"log_uniform"`` (suits labels numbered by decreasing frequency,
            as in word vocabularies) or ``"uniform"``.
        sparse_grad: make the output layer's weight gradient a sparse tensor holding
            only the rows used (true classes and candidates; the bias gradient stays
            dense, it is only ``C`` numbers); pair it with an optimizer
            that accepts sparse gradients (``torch.optim.SGD`` without momentum,
            ``torch.optim.SparseAdam``). With ``False`` the gradient is dense with
            zeros in every other row.
        generator: a ``torch.Generator`` (CPU) for the draws; ``None`` uses the global one.

    Shapes:
        ``hidden`` ``(N, D)``, ``target`` ``(N,)`` int64; ``output_layer`` an
        ``nn.Linear(D, C)``; output a scalar.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> layer = nn.Linear(8, 1000)
        >>> loss_fn = SampledSoftmaxLoss(1000, 50)
        >>> h, y = torch.randn(4, 8), torch.tensor([0, 3, 10, 999])
        >>> logits = loss_fn.sampled_logits(h, y, layer)
        >>> logits.shape[0], logits.shape[1] <= 1 + 50
        (4, True)
        >>> loss_fn(h, y, layer).ndim
        0
    """

    def __init__(
        self,
        num_classes: int,
        num_sampled: int,
        *,
        sampler: str = "log_uniform",
        sparse_grad: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, low=2)
        self.num_sampled = check_int("num_sampled", num_sampled, low=1)
        self.sampler = check_choice("sampler", sampler, SAMPLERS)
        self.sparse_grad = check_instance("sparse_grad", sparse_grad, bool, "a bool")
        if generator is not None:
            check_instance("generator", generator, torch.Generator, "a torch.Generator or None")
        self.generator = generator

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, num_sampled={self.num_sampled}, sampler={self.sampler!r}"

    def class_probabilities(self, classes: torch.Tensor | None = None) -> torch.Tensor:
        """The sampler's probability ``q`` of drawing each class in one draw (float64).

        Args:
            classes: int64 class indices; ``None`` means all ``C`` classes.

        Returns:
            ``q`` for those classes, same shape as ``classes`` (or ``(C,)``); sums to 1
            over all classes.
        """
        k = torch.arange(self.num_classes) if classes is None else classes
        k = k.to(torch.float64)
        if self.sampler == "uniform":
            return torch.full_like(k, 1.0 / self.num_classes)
        return torch.log1p(1.0 / (k + 1.0)) / math.log(self.num_classes + 1.0)

    def inclusion_log_probabilities(self, classes: torch.Tensor) -> torch.Tensor:
        """``log(pi_j)``: log-probability that class ``j`` is drawn at least once in ``num_sampled`` draws."""
        q = self.class_probabilities(classes)
        return torch.log(-torch.expm1(self.num_sampled * torch.log1p(-q)))

    def sample(self) -> torch.Tensor:
        """Draw ``num_sampled`` classes with replacement; return the distinct ones, sorted (int64, CPU)."""
        if self.sampler == "uniform":
            draws = torch.randint(self.num_classes, (self.num_sampled,), generator=self.generator)
        else:  # inverse CDF of the log-uniform: P(class <= k) = log(k + 2) / log(C + 1)
            u = torch.rand(self.num_sampled, dtype=torch.float64, generator=self.generator)
            draws = (torch.exp(u * math.log(self.num_classes + 1.0)) - 1.0).long()
            draws = draws.clamp_(0, self.num_classes - 1)
        return torch.unique(draws)

    def sampled_logits(
        self,
        hidden: torch.Tensor,
        target: torch.Tensor,
        output_layer: nn.Linear,
        candidates: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Corrected logits of each example's true class (column 0) and of the candidates.

        Only the rows of ``output_layer`` for the true classes and the candidates are
        read, so this costs ``O(N * D * (1 + U))`` for ``U`` candidates instead of
        ``O(N * D * C)``.

        Args:
            hidden: ``(N, D)`` activations.
            target: ``(N,)`` int64 class indices.
            output_layer: the shared ``nn.Linear(D, C)``.
            candidates: distinct int64 class indices ``(U,)``; ``None`` draws them
                with :meth:`sample`.

        Returns:
            ``(N, 1 + U)`` logits: column 0 is ``z_y``, column ``1 + i`` is
            ``z_{c_i} - log(pi_{c_i})``, or ``-inf`` where ``c_i`` is the example's
            own class.
        """
        _check_inputs(hidden, target, output_layer)
        if output_layer.out_features != self.num_classes:
            raise ValueError(
                message(
                    "output_layer", f"an nn.Linear with {self.num_classes} outputs", output_layer
                )
            )
        if output_layer.bias is None:
            raise ValueError(message("output_layer", "an nn.Linear with a bias", output_layer))
        low, high = int(target.min()), int(target.max())
        if low < 0 or high >= self.num_classes:
            raise ValueError(
                message("target", f"class indices in [0, {self.num_classes - 1}]", target,
                        found=f"values from {low} to {high}")
            )
        if candidates is None:
            candidates = self.sample()
        device = hidden.device
        candidates = candidates.to(device)
        rows = torch.cat([target, candidates])  # one gather for true classes and candidates
        w = F.embedding(rows, output_layer.weight, sparse=self.sparse_grad)  # (N + U, D)
        b = output_layer.bias[rows]  # (N + U,)
        n = len(target)
        true_logit = (hidden * w[:n]).sum(dim=1) + b[:n]  # (N,)
        correction = self.inclusion_log_probabilities(candidates.cpu()).to(device, hidden.dtype)
        neg_logits = hidden @ w[n:].T + (b[n:] - correction)  # (N, U)
        hit = candidates.unsqueeze(0) == target.unsqueeze(1)  # accidental hits
        neg_logits = neg_logits.masked_fill(hit, float("-inf"))
        return torch.cat([true_logit.unsqueeze(1), neg_logits], dim=1)

    def forward(
        self, hidden: torch.Tensor, target: torch.Tensor, output_layer: nn.Linear
    ) -> torch.Tensor:
        """Mean sampled-softmax cross-entropy (a scalar); see :meth:`sampled_logits`."""
        logits = self.sampled_logits(hidden, target, output_layer)
        return F.cross_entropy(logits, torch.zeros_like(target))


def step_times(
    class_counts: Sequence[int],
    *,
    num_sampled: int = 64,
    batch_size: int = 128,
    hidden_dim: int = 64,
    sampler: str = "log_uniform",
    repeats: int = 5,
    min_time: float = 0.01,
    num_threads: int | None = None,
    lr: float = 0.1,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Seconds per training step with the full softmax and with candidate sampling, per class count.

    For each class count ``C`` it builds a two-layer model, ``Linear(D, D) -> ReLU ->
    Linear(D, C)``, once to train with :func:`full_softmax_loss` and once with
    :class:`SampledSoftmaxLoss` (``sparse_grad=True``, so SGD updates only the rows
    used), and times one optimizer step (forward, loss, backward, plain SGD update)
    on a random batch. All the settings are timed *interleaved*, by
    :func:`companion.utils.interleaved_medians`: one timed call of every (class
    count, loss) pair in turn, ``repeats`` rounds after one warm-up round, and each
    figure is the median over its rounds. A timed call runs as many steps as last
    about ``min_time`` seconds (counted from the fastest of three single steps), so
    that one time slice lost to another process is a small part of any sample.
    Load from other processes then falls on all contenders alike, and the *ratios*
    of the figures stay meaningful on a busy machine; compare ratios, not seconds.
    On a busy machine also pass ``num_threads=1``: an operation split over several
    threads waits for the slowest of them, and when other processes hold the cores
    that wait, not the arithmetic, decides the time.

    Args:
        class_counts: the ``C`` values, each an int >= 2.
        num_sampled: draws per sampled step, an int >= 1.
        batch_size: examples per step, an int >= 1.
        hidden_dim: ``D``, an int >= 1.
        sampler: ``"log_uniform"`` or ``"uniform"``.
        repeats: timed calls per setting, an int >= 1 (odd numbers give a true median).
        min_time: seconds one timed call should last at least, a float >= 0 (0 times
            single steps).
        num_threads: CPU threads for PyTorch while timing (restored afterwards), an
            int >= 1; ``None`` keeps the current setting.
        lr: SGD learning rate, a float > 0.
        device: where to run; ``None`` picks :func:`companion.utils.get_device`.
        seed: seeds the weights, the batch and the draws.

    Returns:
        ``{"classes": [...], "full": [...], "sampled": [...]}``: median seconds per step.

    Example:
        >>> times = step_times([10, 1000], repeats=1, device="cpu")
        >>> sorted(times), len(times["full"])
        (['classes', 'full', 'sampled'], 2)
    """
    counts = [check_int(f"class_counts[{i}]", c, low=2) for i, c in enumerate(class_counts)]
    num_sampled = check_int("num_sampled", num_sampled, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    hidden_dim = check_int("hidden_dim", hidden_dim, low=1)
    sampler = check_choice("sampler", sampler, SAMPLERS)
    repeats = check_int("repeats", repeats, low=1)
    min_time = check_float("min_time", min_time, low=0)
    if num_threads is not None:
        num_threads = check_int("num_threads", num_threads, low=1)
    lr = check_float("lr", lr, low=0, low_open=True)
    device = get_device(device)
    threads_before = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _interleaved_step_times(
            counts,
            num_sampled,
            batch_size,
            hidden_dim,
            sampler,
            repeats,
            min_time,
            lr,
            device,
            seed,
        )
    finally:
        torch.set_num_threads(threads_before)


def _interleaved_step_times(
    counts: list[int],
    num_sampled: int,
    batch_size: int,
    hidden_dim: int,
    sampler: str,
    repeats: int,
    min_time: float,
    lr: float,
    device: torch.device,
    seed: int,
) -> dict[str, list[float]]:
    """:func:`step_times` after validation: build every setting, then time them interleaved."""
    steps: dict[str, Callable[[], None]] = {}
    loops: dict[str, int] = {}
    for i, num_classes in enumerate(counts):
        sampled = SampledSoftmaxLoss(
            num_classes,
            num_sampled,
            sampler=sampler,
            sparse_grad=True,
            generator=torch.Generator().manual_seed(seed),
        )
        losses = {"full": full_softmax_loss, "sampled": sampled}
        for name, loss_fn in losses.items():
            torch.manual_seed(seed)
            body = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.ReLU()).to(device)
            head = nn.Linear(hidden_dim, num_classes).to(device)
            optimizer = torch.optim.SGD([*body.parameters(), *head.parameters()], lr=lr)
            x = torch.randn(batch_size, hidden_dim, device=device)
            y = torch.randint(num_classes, (batch_size,), device=device)
            key = f"{i} {name}"
            steps[key], loops[key] = _training_steps(
                body, head, optimizer, loss_fn, x, y, min_time=min_time, device=device
            )
    medians = interleaved_medians(steps, repeats=repeats, warmup=1, device=device)
    per_step = {key: seconds / loops[key] for key, seconds in medians.items()}
    return {
        "classes": counts,
        "full": [per_step[f"{i} full"] for i in range(len(counts))],
        "sampled": [per_step[f"{i} sampled"] for i in range(len(counts))],
    }


def _training_steps(
    body: nn.Module,
    head: nn.Linear,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor, nn.Linear], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    min_time: float,
    device: torch.device,
) -> tuple[Callable[[], None], int]:
    """A function of no arguments that runs ``n`` SGD steps lasting about ``min_time``, and ``n``."""

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(body(x), y, head).backward()
        optimizer.step()

    step()  # the first step allocates; time the next ones
    fastest = math.inf
    for _ in range(3):
        with Timer(device) as timer:
            step()
        fastest = min(fastest, timer.seconds)
    n = max(1, min(10_000, math.ceil(min_time / max(fastest, 1e-9))))

    def steps() -> None:
        for _ in range(n):
            step()

    return steps, n
