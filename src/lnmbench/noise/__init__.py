"""Label-noise generators by name -> :class:`NoisyLabels` (labels, realised rate, empirical T).

Usage: ``make_noisy_labels("symmetric", clean, num_classes, rate, seed, cache_dir=...)``.
"""

from lnmbench.noise import classifier, generators  # noqa: F401  (register the generators)
from lnmbench.noise.base import (
    GENERATOR_INFO,
    NOISE,
    GeneratorInfo,
    NoisyLabels,
    accepted_params,
    check_labels,
    check_transition_matrix,
    make_noisy_labels,
    register_noise,
)
from lnmbench.noise.classifier import CrossFit, cross_fit, reference_logits
from lnmbench.noise.generators import (
    adjacent_matrix,
    draw_class_conditional,
    expected_flip_rate,
    pairflip_matrix,
    symmetric_matrix,
    truncnorm_flip_rates,
)
from lnmbench.noise.report import plot_transition, report_table

__all__ = [
    "GENERATOR_INFO",
    "NOISE",
    "CrossFit",
    "GeneratorInfo",
    "NoisyLabels",
    "accepted_params",
    "adjacent_matrix",
    "check_labels",
    "check_transition_matrix",
    "cross_fit",
    "draw_class_conditional",
    "expected_flip_rate",
    "make_noisy_labels",
    "pairflip_matrix",
    "plot_transition",
    "reference_logits",
    "register_noise",
    "report_table",
    "symmetric_matrix",
    "truncnorm_flip_rates",
]
