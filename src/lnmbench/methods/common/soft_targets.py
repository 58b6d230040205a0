"""Soft targets and their losses: one-hot, temperature sharpening, soft cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["one_hot", "sharpen", "soft_cross_entropy"]


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """labels (B,) long -> float one-hot (B, C)."""
    return F.one_hot(labels, num_classes).float()


def sharpen(p: torch.Tensor, temperature: float) -> torch.Tensor:
    """p^{1/T} / Σ_c p_c^{1/T} row-wise; p (B, C) non-negative rows, T > 0 -> (B, C)."""
    if temperature <= 0:
        raise ValueError(f"sharpening temperature must be > 0, got {temperature}")
    q = p.pow(1.0 / temperature)
    return q / q.sum(dim=1, keepdim=True)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """mean_i H(t_i, softmax z_i) = −mean_i Σ_c t_ic log softmax(z_i)_c.

    logits (B, C), targets (B, C) rows summing to 1 -> scalar.
    """
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
