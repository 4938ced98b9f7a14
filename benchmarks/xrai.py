"""companion.explain.xrai vs PAIR's saliency.core.XRAI on one 224x224 photograph.

Run: .venv/bin/python benchmarks/xrai.py [--steps 50] [--repeats 3] [--threads N] [--device cpu]

Both run in this process on the same image (scikit-image's astronaut), the same small
CNN and the same number of integrated-gradients steps per baseline (black and white).
PAIR is given ``batch_size = steps``; one more end-to-end row uses PAIR's default
``batch_size=1``. Stages:

- segmentation: Felzenszwalb at six scales (the same scikit-image calls) + mask dilation
  (+ for ours, building the pixel/mask index the ranking uses; like the ranking, on one
  CPU thread, as ``xrai()`` runs it);
- attribution: integrated gradients from both baselines, averaged;
- ranking: XRAI's region ranking given segments and attribution, full and fast modes.

Each stage is the best of ``--repeats`` runs; end to end is ``GetMaskWithDetails`` vs
``xrai()`` in full mode (PAIR's default), best of ``--repeats`` too (PAIR with
``batch_size=1``: one run). The script also checks that both give the same
ranks from the same segments and attribution.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from saliency.core import INPUT_OUTPUT_GRADIENTS
from saliency.core import xrai as pair
from skimage import data
from skimage.transform import resize

from companion.explain import top_fraction_mask, xrai
from companion.explain._segments import felzenszwalb_membership
from companion.explain.xrai import (
    _assemble,
    _make_baselines,
    _one_cpu_thread,
    _pair_integrated_gradients,
    _rank_fast,
    _rank_full,
)
from companion.models import SmallCNN
from companion.utils import get_device


def best_of(fn, repeats: int, device: torch.device) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times), out


def pair_call_model(model: torch.nn.Module, target: int, device: torch.device):
    def call(batch, call_model_args=None, expected_keys=None):
        x = torch.tensor(np.asarray(batch), dtype=torch.float32, device=device).permute(0, 3, 1, 2)
        x.requires_grad_(True)
        (grads,) = torch.autograd.grad(model(x)[:, target].sum(), x)
        return {INPUT_OUTPUT_GRADIENTS: grads.permute(0, 2, 3, 1).cpu().numpy()}

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    torch.manual_seed(0)
    model = SmallCNN(3, 10, channels=(4, 8)).eval().to(device)
    target, steps, repeats = 3, args.steps, args.repeats
    photo = resize(data.astronaut(), (224, 224), anti_aliasing=True).astype(np.float32)  # (H, W, 3)
    image = torch.from_numpy(photo).permute(2, 0, 1).contiguous().to(device)
    call = pair_call_model(model, target, device)

    # segmentation
    t_seg_pair, segments = best_of(lambda: pair._get_segments_felzenszwalb(photo), repeats, device)
    with _one_cpu_thread(device):  # as xrai() runs it
        t_seg_ours, membership = best_of(lambda: felzenszwalb_membership(image), repeats, device)
    # attribution
    pair_baselines = pair.XRAI()._make_baselines(photo, None)
    t_ig_pair, attrs = best_of(
        lambda: pair.XRAI()._get_integrated_gradients(photo, call, None, pair_baselines, steps, steps),
        repeats, device,
    )
    starts = _make_baselines(("black", "white"), image)
    t_ig_ours, base = best_of(
        lambda: _pair_integrated_gradients(model, image, starts, target, steps, steps).mean(dim=0),
        repeats, device,
    )
    attr_np = np.mean(attrs, axis=0).max(axis=-1)
    # ranking, from the same segments and the same (PAIR's) attribution
    same_attr = torch.from_numpy(attr_np.astype(np.float64)).flatten().to(device)
    rows = []
    for mode, pair_rank, ours_rank in (("full", pair.XRAI._xrai, _rank_full), ("fast", pair.XRAI._xrai_fast, _rank_fast)):
        t_pair, (_, ranks_pair) = best_of(
            lambda rank=pair_rank: rank(attr_np.astype(np.float64), segments), repeats, device
        )

        def ours(rank=ours_rank) -> torch.Tensor:
            order, gains = rank(membership, same_attr, area_threshold=1.0, min_pixel_diff=50)
            return _assemble(order, gains, same_attr)[1]

        with _one_cpu_thread(device):
            t_ours, ranks_ours = best_of(ours, repeats, device)
        same = np.array_equal(ranks_ours.reshape(224, 224).cpu().numpy(), ranks_pair)
        rows.append((f"ranking ({mode})", t_pair, t_ours, f"ranks equal: {same}"))
    # end to end, full mode
    params = pair.XRAIParameters(steps=steps)
    t_e2e_pair, theirs = best_of(
        lambda: pair.XRAI().GetMaskWithDetails(photo, call, batch_size=steps, extra_parameters=params),
        repeats, device,
    )
    t_e2e_pair1, _ = best_of(lambda: pair.XRAI().GetMaskWithDetails(photo, call, extra_parameters=params), 1, device)
    t_e2e_ours, result = best_of(
        lambda: xrai(model, image, target=target, steps=steps, batch_size=steps), repeats, device
    )
    top_pair = top_fraction_mask(torch.from_numpy(theirs.attribution_mask), 0.1)
    top_ours = result.top_mask(0.1).cpu()
    iou = float((top_pair & top_ours).sum() / (top_pair | top_ours).sum())
    ig_gap = float(np.abs(base.cpu().numpy().transpose(1, 2, 0) - np.mean(attrs, axis=0)).max() / np.abs(attr_np).max())

    print(f"224x224 astronaut, SmallCNN(3, 10, channels=(4, 8)), {steps} IG steps x 2 baselines; "
          f"{len(segments)} masks; device {device}; torch threads {torch.get_num_threads()}; best of {repeats}")
    print(f"{'stage':<22}{'PAIR (s)':>10}{'ours (s)':>10}{'ratio':>8}  check")
    table = [
        ("segmentation", t_seg_pair, t_seg_ours, "same masks (tests/test_explain_xrai.py)"),
        ("attribution (IG)", t_ig_pair, t_ig_ours, f"max diff {ig_gap:.1e} of max |attr|"),
        *rows,
        ("end to end (full)", t_e2e_pair, t_e2e_ours, f"top-10% IoU {iou:.3f}"),
        ("  PAIR batch_size=1", t_e2e_pair1, t_e2e_ours, "PAIR's default batch size"),
    ]
    for name, a, b, note in table:
        print(f"{name:<22}{a:>10.3f}{b:>10.4f}{a / b:>7.1f}x  {note}")
    print(f"end to end without IG: PAIR {t_e2e_pair - t_ig_pair:.3f} s, ours {t_e2e_ours - t_ig_ours:.3f} s")


if __name__ == "__main__":
    main()
