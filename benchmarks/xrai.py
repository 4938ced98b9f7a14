"""companion.explain.xrai vs PAIR's saliency.core.XRAI at equal accuracy, on three CNNs.

Run: .venv/bin/python benchmarks/xrai.py [--models small,medium,resnet18] [--repeats 2]
     [--pair-steps 100] [--max-error pair] [--gl-steps 65] [--reference-steps 1000]
     [--scan-gl 9,17,33,65,129] [--scan-pair 25,50] [--cache DIR] [--threads N] [--device cpu]

Each model explains its predicted class on one 224x224 photograph (scikit-image's
astronaut), from a black and a white baseline, in this process, ``batch_size=32``:

- **PAIR**: ``GetMaskWithDetails`` with its rule (evenly spaced points, equal weights),
  ``--pair-steps`` points per baseline (PAIR's default, 100);
- **ours, PAIR's rule**: ``xrai(..., integration="pair", steps=--pair-steps)``: the same
  rule and so the same accuracy; the gain is our segmentation and ranking;
- **ours, Gauss-Legendre auto**: ``xrai(..., integration="gauss-legendre", steps="auto",
  max_error=...)``: 17, 33, 65, ... points until the completeness error is under
  ``--max-error``; by default PAIR's own completeness error on that model, so that ours
  stops at equal or better completeness ("equal accuracy" by the sum rule);
- **ours, Gauss-Legendre 65**: ``steps=--gl-steps``, a fixed order (65: about PAIR's error
  per pixel on the two small models).

Accuracy is measured against a reference: integrated gradients by the midpoint rule with
``--reference-steps`` points per baseline, ranked by our XRAI on the same segments:

- completeness: ``sum_b |sum(attr_b) - (F(x) - F(b))| / sum_b |F(x) - F(b)|``;
- top-10% IoU: of the XRAI map's top 10% with the reference map's top 10%;
- pixel error: ``||A - A_ref|| / ||A_ref||`` of the channel-max attribution XRAI ranks by.

Times are the best of ``--repeats`` end-to-end calls; the stage times (integrated
gradients with the baselines' scores, segmentation, ranking) come from the same call, by
timing the functions each implementation calls. ``--scan-gl``/``--scan-pair`` also print
the accuracy of fixed orders (untimed). Models (``MODELS``), random weights: ``small`` =
``SmallCNN(3, 10, channels=(4, 8))``; ``medium`` = ``SmallCNN(3, 10, channels=(16, 32,
64))``, three conv layers of a few tens of channels; ``resnet18`` = torchvision's
``resnet18(weights=None, num_classes=10)``, its batch-norm statistics set from five other
scikit-image photographs (with the initial statistics the random network is positively
homogeneous, so the path from black is a straight line: too easy); ``resnet18-silu``: the
same with SiLU for ReLU (smooth activations, as in EfficientNet).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from saliency.core import INPUT_OUTPUT_GRADIENTS
from saliency.core import xrai as pair
from skimage import data
from skimage.transform import resize

from companion.explain import top_fraction_mask, xrai
from companion.explain.xrai import _captum_rule, _integrate_paths, _make_baselines
from companion.models import SmallCNN
from companion.utils import get_device

ours_module = importlib.import_module("companion.explain.xrai")  # the module (the package's `xrai` is the function)

BATCH = 32


def photo(name: str) -> np.ndarray:
    """A scikit-image photograph as a float32 (224, 224, 3) array in [0, 1]."""
    return resize(getattr(data, name)(), (224, 224), anti_aliasing=True).astype(np.float32)


def chw(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).contiguous().to(device)


MODELS = ("small", "medium", "resnet18", "resnet18-silu")


def make_model(name: str, device: torch.device) -> torch.nn.Module:
    """One of ``MODELS``, random weights (seed 0), in eval mode."""
    torch.manual_seed(0)
    if name == "small":
        return SmallCNN(3, 10, channels=(4, 8)).eval().to(device)
    if name == "medium":
        return SmallCNN(3, 10, channels=(16, 32, 64)).eval().to(device)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    if name == "resnet18-silu":
        swap_relu_for_silu(model)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a plain average over the calibration batch
    calibration = torch.stack([chw(photo(n), torch.device("cpu")) for n in
                               ("coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")])
    with torch.no_grad():
        model.train()(calibration)
    return model.eval().to(device)


def swap_relu_for_silu(module: torch.nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, torch.nn.SiLU())
        else:
            swap_relu_for_silu(child)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Stages:
    """Wall time spent in named functions during one call (set as attributes of their modules)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times = device, {}

    @contextmanager
    def timing(self, patches: dict[str, tuple[Any, str]]) -> Iterator[None]:
        saved = {}
        for stage, (owner, attribute) in patches.items():
            saved[stage] = inspect.getattr_static(owner, attribute)  # a staticmethod stays one
            timed = self._timed(stage, getattr(owner, attribute))
            setattr(owner, attribute, staticmethod(timed) if isinstance(saved[stage], staticmethod) else timed)
        try:
            yield
        finally:
            for stage, (owner, attribute) in patches.items():
                setattr(owner, attribute, saved[stage])

    def _timed(self, stage: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            sync(self.device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            sync(self.device)
            self.times[stage] = self.times.get(stage, 0.0) + time.perf_counter() - start
            return out

        return timed


def best_call(fn: Callable[[], Any], patches: dict, repeats: int, device: torch.device) -> tuple[float, dict, Any]:
    """Best of ``repeats`` end-to-end times, with that call's stage times and output."""
    best = (float("inf"), {}, None)
    for _ in range(repeats):
        stages = Stages(device)
        with stages.timing(patches):
            sync(device)
            start = time.perf_counter()
            out = fn()
            sync(device)
            elapsed = time.perf_counter() - start
        if elapsed < best[0]:
            best = (elapsed, stages.times, out)
    return best


def pair_call_model(model: torch.nn.Module, target: int, device: torch.device):
    def call(batch, call_model_args=None, expected_keys=None):
        x = torch.tensor(np.asarray(batch), dtype=torch.float32, device=device).permute(0, 3, 1, 2)
        x.requires_grad_(True)
        (grads,) = torch.autograd.grad(model(x)[:, target].sum(), x)
        return {INPUT_OUTPUT_GRADIENTS: grads.permute(0, 2, 3, 1).cpu().numpy()}

    return call


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum())


def run_model(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    model = make_model(name, device)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    image_np = photo("astronaut")
    image = chw(image_np, device)
    with torch.no_grad():
        target = int(model(image[None]).argmax())
    starts = _make_baselines(("black", "white"), image)
    with torch.no_grad():
        scores = model(torch.cat([image[None], starts]))[:, target].double().cpu()
    changes = scores[0] - scores[1:]

    def completeness(per_baseline: torch.Tensor) -> float:
        leaks = per_baseline.double().flatten(1).sum(1).cpu() - changes
        return float(leaks.abs().sum() / changes.abs().sum())

    def channel_max(per_baseline: torch.Tensor) -> torch.Tensor:
        return per_baseline.double().mean(0).max(0).values.cpu()

    # the reference, and its XRAI map on the same segments
    start = time.perf_counter()
    cached = None if args.cache is None else Path(args.cache) / f"xrai-reference-{name}-{args.reference_steps}.pt"
    if cached is not None and cached.exists():
        reference = torch.load(cached).to(device)
    else:
        images = image.expand(2, *image.shape)
        reference = _captum_rule(model, images, starts, target, "riemann_middle", args.reference_steps, BATCH)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.save(reference.cpu(), cached)
    t_reference = time.perf_counter() - start
    ref_map = xrai(model, image, target=target, base_attribution=reference.mean(0))
    ref_top, ref_pixels = ref_map.top_mask(0.1).cpu(), channel_max(reference)

    def accuracy(per_baseline: torch.Tensor, top: torch.Tensor) -> tuple[float, float, float]:
        pixels = channel_max(per_baseline)
        return (completeness(per_baseline), iou(top.cpu(), ref_top),
                float((pixels - ref_pixels).norm() / ref_pixels.norm()))

    # PAIR, end to end; stages timed inside the same call
    call = pair_call_model(model, target, device)
    params = pair.XRAIParameters(steps=args.pair_steps, return_ig_attributions=True)
    pair_patches = {"IG": (pair.XRAI, "_get_integrated_gradients"),
                    "segmentation": (pair, "_get_segments_felzenszwalb"), "ranking": (pair.XRAI, "_xrai")}
    t_pair, stages_pair, theirs = best_call(
        lambda: pair.XRAI().GetMaskWithDetails(image_np, call, batch_size=BATCH, extra_parameters=params),
        pair_patches, args.repeats, device,
    )
    pair_attr = torch.from_numpy(np.stack(theirs.ig_attribution)).permute(0, 3, 1, 2)
    pair_top = top_fraction_mask(torch.from_numpy(theirs.attribution_mask), 0.1)

    # ours, end to end: PAIR's rule (the same accuracy), and Gauss-Legendre with steps="auto"
    our_patches = {"IG": (ours_module, "_integrate_paths"),
                   "segmentation": (ours_module, "felzenszwalb_membership"), "ranking": (ours_module, "_rank_full")}
    per_baseline: list[torch.Tensor] = []
    original = ours_module._integrate_paths

    def keeping(*a, **k):  # keeps the per-baseline attributions, for their completeness error
        out = original(*a, **k)
        per_baseline.append(out[0])
        return out

    ours_module._integrate_paths = keeping
    rows = {"PAIR": (t_pair, stages_pair, args.pair_steps, accuracy(pair_attr, pair_top))}
    max_error = rows["PAIR"][3][0] if args.max_error == "pair" else float(args.max_error)
    try:
        for label, options in (("ours, PAIR's rule", {"integration": "pair", "steps": args.pair_steps}),
                               ("ours, Gauss-Legendre auto", {"integration": "gauss-legendre", "steps": "auto",
                                                              "max_error": max_error}),
                               (f"ours, Gauss-Legendre {args.gl_steps}", {"integration": "gauss-legendre",
                                                                         "steps": args.gl_steps})):
            elapsed, stages, result = best_call(
                lambda options=options: xrai(model, image, target=target, batch_size=BATCH, **options),
                our_patches, args.repeats, device,
            )
            rows[label] = (elapsed, stages, result.steps, accuracy(per_baseline[-1], result.top_mask(0.1)))
    finally:
        ours_module._integrate_paths = original
    scan = []
    for integration, orders in (("pair", args.scan_pair), ("gauss-legendre", args.scan_gl)):
        for n in orders:
            attributions = _integrate_paths(model, image, starts, target, integration=integration, steps=n,
                                            max_error=1.0, max_steps=n, batch_size=BATCH)[0]
            top = xrai(model, image, target=target, base_attribution=attributions.mean(0)).top_mask(0.1)
            scan.append((integration, n, accuracy(attributions, top)))
    return {"name": name, "params": sum(p.numel() for p in model.parameters()), "target": target,
            "t_reference": t_reference, "rows": rows, "scan": scan}


def orders(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="small,medium,resnet18", help=f"some of {', '.join(MODELS)}")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pair-steps", type=int, default=100)
    parser.add_argument("--max-error", default="pair",
                        help="completeness error for steps='auto': a number, or 'pair' for PAIR's on that model")
    parser.add_argument("--gl-steps", type=int, default=65, help="a fixed Gauss-Legendre order, timed")
    parser.add_argument("--reference-steps", type=int, default=1000)
    parser.add_argument("--scan-gl", type=orders, default=[], help="e.g. 17,33,65: accuracy of these orders")
    parser.add_argument("--scan-pair", type=orders, default=[], help="e.g. 25,50: accuracy of PAIR's rule")
    parser.add_argument("--cache", default=None, help="a folder to keep the references in, for reruns")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    results = [run_model(name, args, device) for name in args.models.split(",")]

    print(f"224x224 astronaut, black + white baselines, predicted class; device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of {args.repeats}; "
          f"reference: midpoint rule, {args.reference_steps} points per baseline; Gauss-Legendre auto stops under "
          + ("PAIR's completeness error" if args.max_error == "pair" else f"a completeness error of {args.max_error}"))
    print(f"\n{'model':<14}{'params':>11}  {'method':<27}{'steps':>6}{'time (s)':>10}{'vs PAIR':>9}"
          f"{'completeness':>14}{'top-10% IoU':>13}{'pixel error':>13}")
    for result in results:
        t_pair = result["rows"]["PAIR"][0]
        for i, (label, (elapsed, _, steps, (complete, overlap, pixel))) in enumerate(result["rows"].items()):
            name, params = (result["name"], f"{result['params']:,}") if i == 0 else ("", "")
            print(f"{name:<14}{params:>11}  {label:<27}{steps:>6}{elapsed:>10.2f}{t_pair / elapsed:>8.1f}x"
                  f"{complete:>14.1e}{overlap:>13.2f}{pixel:>13.3f}")
    print(f"\n{'model':<14}{'stage':<14}" + "".join(f"{label:>27}" for label in results[0]["rows"]))
    for result in results:
        rows = result["rows"]
        t_pair = rows["PAIR"][0]
        for stage in ("IG", "segmentation", "ranking", "end to end"):
            pair_time = rows["PAIR"][1].get(stage, t_pair)
            cells = []
            for elapsed, stages, _, _ in rows.values():
                t = stages.get(stage, elapsed)
                cells.append(f"{t:>18.3f} s{pair_time / t:>6.1f}x")
            print(f"{result['name']:<14}{stage:<14}" + "".join(cells))
        print(f"{'':<14}(the reference took {result['t_reference']:.0f} s (0: cached); "
              "IG includes the baselines' scores)")
    if any(result["scan"] for result in results):
        print(f"\n{'model':<14}{'rule':<16}{'steps':>6}{'completeness':>14}{'top-10% IoU':>13}{'pixel error':>13}")
        for result in results:
            for integration, n, (complete, overlap, pixel) in result["scan"]:
                print(f"{result['name']:<14}{integration:<16}{n:>6}{complete:>14.1e}{overlap:>13.2f}{pixel:>13.3f}")


if __name__ == "__main__":
    main()
