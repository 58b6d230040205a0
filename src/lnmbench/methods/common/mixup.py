"""Mixup with every random draw from a seeded ``torch.Generator`` (DivideMix, DISC, medssl).

λ ~ Beta(α, α) is drawn by the inverse CDF of one uniform number from the generator (torch's own
Beta sampler takes no generator), then λ ← max(λ, 1 − λ) so the mixed sample stays closer to its
first input. Inputs are mixed with a random permutation of the rows: x' = λ·x + (1 − λ)·x[π],
and the soft targets likewise.
"""

from __future__ import annotations

import torch
from scipy.special import betaincinv

from lnmbench.errors import ConfigError

__all__ = ["mix", "mixup", "sample_mixup_lambda"]


def sample_mixup_lambda(alpha: float, generator: torch.Generator) -> float:
    """One λ ~ Beta(α, α) from ``generator`` (CPU), folded to max(λ, 1 − λ) ∈ [0.5, 1].

    α = 0 means no mixing (λ = 1), as in the reference implementations.
    """
    if alpha < 0:
        raise ConfigError(f"mixup alpha must be >= 0, got {alpha}")
    if alpha == 0:
        return 1.0
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    lam = float(betaincinv(alpha, alpha, u))
    return max(lam, 1.0 - lam)


def mix(
    x: torch.Tensor, targets: torch.Tensor, lam: float, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """x' = λ·x + (1 − λ)·x[perm], t' = λ·t + (1 − λ)·t[perm].

    x (M, ...) inputs, targets (M, C) soft targets, perm (M,) long permutation on x's device.
    """
    if len(x) != len(targets) or len(perm) != len(x):
        raise ValueError(
            f"mix needs equal row counts, got x {len(x)}, targets {len(targets)}, perm {len(perm)}"
        )
    return lam * x + (1.0 - lam) * x[perm], lam * targets + (1.0 - lam) * targets[perm]


def mixup(
    x: torch.Tensor, targets: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Draw λ (then one permutation of the M rows) from ``generator`` and mix.

    x (M, ...), targets (M, C) -> (x' (M, ...), t' (M, C), λ).
    """
    lam = sample_mixup_lambda(alpha, generator)
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    x_mixed, t_mixed = mix(x, targets, lam, perm)
    return x_mixed, t_mixed, lam
