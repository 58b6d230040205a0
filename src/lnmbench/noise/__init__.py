"""Label-noise generators by name -> :class:`NoisyLabels` (labels, realised rate, empirical T).

Usage: ``make_noisy_labels("symmetric", clean, num_classes, rate, seed, cache_dir=...)``.
"""

from lnmbench.noise import classifier, generators  # noqa: F401  (register the generators)
from lnmbench.noise.classifier import CrossFit, cross_fit, reference_logits
from lnmbench.noise.generators import (
    adjacent_matrix,
    draw_class_conditional,
    expected_flip_rate,
    pairflip_matrix,
    symmetric_matrix,
    truncnorm_flip_rates,
)
from lnmbench.noise.labels import NoisyLabels, check_labels, check_transition_matrix
from lnmbench.noise.make import make_noisy_labels
from lnmbench.noise.registry import NOISE, NoiseEntry, accepted_params, register_noise
from lnmbench.noise.report import plot_transition, report_table
from lnmbench.noise.splits import noise_splits

__all__ = [
    "NOISE",
    "CrossFit",
    "NoiseEntry",
    "NoisyLabels",
    "accepted_params",
    "adjacent_matrix",
    "check_labels",
    "check_transition_matrix",
    "cross_fit",
    "draw_class_conditional",
    "expected_flip_rate",
    "make_noisy_labels",
    "noise_splits",
    "pairflip_matrix",
    "plot_transition",
    "reference_logits",
    "register_noise",
    "report_table",
    "symmetric_matrix",
    "truncnorm_flip_rates",
]
