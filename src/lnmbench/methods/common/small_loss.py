"""Small-loss selection: how many samples a net keeps of a batch, which ones, and the cross
update of two nets (each trains on the other's small-loss samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_FLOOR_TOLERANCE = 1e-9  # ⌊(1 − R)·B⌋ must not lose a sample to float rounding (0.3·10 = 2.999…)


def num_kept(n: int, forget_rate: float) -> int:
    """⌊(1 − R)·n⌋ (may be 0)."""
    return max(0, math.floor((1.0 - forget_rate) * n + _FLOOR_TOLERANCE))


def remember_count(n: int, forget_rate: float) -> int:
    """The family's remember count r = max(1, ⌊(1 − R)·n⌋)."""
    return max(1, num_kept(n, forget_rate))


def small_loss_indices(losses: torch.Tensor, count: int) -> torch.Tensor:
    """Positions (count,) long of the ``count`` smallest entries of ``losses`` (B,), ascending.

    Ties are broken by position (stable sort), so the result is deterministic.
    """
    return torch.argsort(losses.detach(), stable=True)[:count]


@dataclass
class CrossSelection:
    """One cross update: ``selected1`` / ``selected2`` (r,) are the positions net 1 / net 2
    selected; ``loss1`` = mean of net 1's losses on net 2's selection, ``loss2`` vice versa."""

    selected1: torch.Tensor
    selected2: torch.Tensor
    loss1: torch.Tensor
    loss2: torch.Tensor


def cross_select(loss1: torch.Tensor, loss2: torch.Tensor, count: int) -> CrossSelection:
    """Small-loss selection per net and the cross losses: L₁ = mean_{S₂} ℓ₁, L₂ = mean_{S₁} ℓ₂.

    loss1, loss2: per-sample losses (B,) of net 1 / net 2 (with their graphs); count: r.
    """
    sel1 = small_loss_indices(loss1, count)
    sel2 = small_loss_indices(loss2, count)
    return CrossSelection(sel1, sel2, loss1[sel2].mean(), loss2[sel1].mean())
