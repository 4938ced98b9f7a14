"""Feature attributions: integrated gradients, sampled Shapley and XRAI, and their summaries.

Needs the ``explain`` extra: ``pip install 'companion[explain]'`` (captum and scikit-image).

Example:
    >>> from companion.explain import integrated_gradients
    >>> model = torch.nn.Linear(2, 1)
    >>> result = integrated_gradients(model, torch.ones(4, 2), target=None)
    >>> tuple(result.attributions.shape), bool((result.error < 1e-4).all())
    ((4, 2), True)
"""

import torch  # noqa: F401  (for the doctest above)

from companion._validation import missing_extra

try:
    import captum  # noqa: F401
    import skimage  # noqa: F401
except ModuleNotFoundError as error:
    raise missing_extra("explain", error) from error

from companion.explain._common import Attributions, top_fraction_mask
from companion.explain._segments import felzenszwalb_masks
from companion.explain.aggregate import aggregate_attributions, fraction_inside
from companion.explain.attack import (
    AttackResult,
    attack_attributions,
    differentiable_integrated_gradients,
    top_k_overlap,
)
from companion.explain.integrated_gradients import integrated_gradients
from companion.explain.sampled_shapley import sampled_shapley
from companion.explain.xrai import XRAIResult, xrai

__all__ = [
    "AttackResult",
    "Attributions",
    "XRAIResult",
    "aggregate_attributions",
    "attack_attributions",
    "differentiable_integrated_gradients",
    "felzenszwalb_masks",
    "fraction_inside",
    "integrated_gradients",
    "sampled_shapley",
    "top_fraction_mask",
    "top_k_overlap",
    "xrai",
]
