"""SCE: symmetric cross-entropy (Wang et al., 2019)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lnmbench.methods.base import Batch, Method, register_method
from lnmbench.methods.hparams import TrainHparams


@dataclass
class SCEHparams(TrainHparams):
    alpha: float = 0.1
    beta: float = 1.0
    rce_floor: float = 1e-4  # A = log(rce_floor) replaces log 0 in the reverse CE
    nesterov: bool = True
    grad_clip: float | None = 5.0


def sce_loss(
    logits: torch.Tensor, labels: torch.Tensor, alpha: float, beta: float, floor: float
) -> torch.Tensor:
    """α·CE + β·RCE with RCE_i = -Σ_c p_c log max(e_ỹ,c, floor) = -log(floor)·(1 - p_ỹ).

    logits (B, C), labels (B,) -> scalar.
    """
    ce = F.cross_entropy(logits, labels)
    p = logits.softmax(dim=1).clamp(1e-7, 1.0)
    p_y = p.gather(1, labels[:, None]).squeeze(1)
    rce = -math.log(floor) * (p.sum(1) - p_y)  # Σ_{c≠ỹ} p_c · (-log floor)
    return alpha * ce + beta * rce.mean()


@register_method("sce")
class SCE(Method):
    """L = α·mean CE + β·mean RCE; global gradient norm clipped to 5 before each step."""

    Hparams = SCEHparams
    description = "symmetric cross-entropy (CE + reverse CE), gradient-norm clipping"

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, batch: Batch) -> torch.Tensor:
        return sce_loss(logits, labels, self.hp.alpha, self.hp.beta, self.hp.rce_floor)
