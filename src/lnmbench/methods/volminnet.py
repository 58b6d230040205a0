"""VolMinNet: end-to-end transition-matrix learning by volume minimisation (Li et al., 2021).

The clean posterior p = softmax f(x) and T are learned jointly: the noisy labels are fitted through
q = p·T while λ·log|det T| shrinks the simplex spanned by T's rows. methods.md §3.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lnmbench.errors import ConfigError
from lnmbench.methods.base import Batch, Method, register_method
from lnmbench.methods.hparams import TrainHparams

T_ON = ("logits", "probs")
T_OPTIMIZERS = ("adam", "sgd")


@dataclass
class VolMinNetHparams(TrainHparams):
    """Ref: batch 128, net SGD lr 0.01 m 0.9 wd 1e-4; T SGD lr 0.01 m 0.9 wd 0; both
    MultiStep [15, 30]; λ = 1e-4; W init −2. ``t_on: logits`` is the LNMBench reference code's
    variant (softmax-CE of f(x)·T)."""

    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = (15, 30)
    volume_weight: float = 1e-4  # λ
    w_init: float = -2.0
    t_optimizer: str = "sgd"  # sgd | adam (Orig for CIFAR-100)
    t_lr: float = 0.01
    t_momentum: float = 0.9
    t_weight_decay: float = 0.0
    t_on: str = "probs"  # probs | logits

    def __post_init__(self) -> None:
        if self.t_on not in T_ON:
            raise ConfigError(f"volminnet: unknown t_on {self.t_on!r}; known: {', '.join(T_ON)}")
        if self.t_optimizer not in T_OPTIMIZERS:
            raise ConfigError(
                f"volminnet: unknown t_optimizer {self.t_optimizer!r}; "
                f"known: {', '.join(T_OPTIMIZERS)}"
            )


class SigmoidTransition(nn.Module):
    """T = row-L1-normalise(I + sigmoid(W) ⊙ (11ᵀ − I)); W (C, C) is the only parameter.

    The diagonal is fixed to 1 before normalisation, so every off-diagonal entry of a row is
    smaller than its diagonal entry and each row sums to 1.
    """

    def __init__(self, num_classes: int, w_init: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.full((num_classes, num_classes), float(w_init)))
        self.register_buffer("off_diagonal", 1.0 - torch.eye(num_classes), persistent=False)

    def forward(self) -> torch.Tensor:
        """T (C, C), row-stochastic; rows = clean class."""
        t = torch.eye(len(self.w), device=self.w.device) + torch.sigmoid(self.w) * self.off_diagonal
        return t / t.sum(dim=1, keepdim=True)


def volminnet_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    transition: torch.Tensor,
    volume_weight: float,
    t_on: str = "probs",
) -> torch.Tensor:
    """Noisy-label fit plus λ·log|det T|.

    logits (B, C), labels (B,), transition (C, C). ``probs``: mean −log max((softmax f·T)_ỹ,
    1e-12); ``logits``: mean CE(f·T, ỹ) (the reference code). Returns a scalar.
    """
    volume = torch.linalg.slogdet(transition).logabsdet
    if t_on == "probs":
        q = logits.softmax(dim=1) @ transition
        fit = -q.gather(1, labels[:, None]).clamp_min(1e-12).log().mean()
    elif t_on == "logits":
        fit = F.cross_entropy(logits @ transition, labels)
    else:
        raise ConfigError(f"volminnet: unknown t_on {t_on!r}; known: {', '.join(T_ON)}")
    return fit + volume_weight * volume


@register_method("volminnet")
class VolMinNet(Method):
    """One net and a learned T, updated jointly each step by two optimisers."""

    Hparams = VolMinNetHparams
    cost_factor = 1.1
    val_head = "noisy"
    description = "end-to-end transition matrix with volume (log-det) minimisation"

    hp: VolMinNetHparams

    def setup(self) -> None:
        super().setup()
        self.transition = SigmoidTransition(self.ctx.num_classes, self.hp.w_init).to(
            self.ctx.device
        )
        self.nets["transition"] = self.transition
        self.add_optimizer(
            "transition",
            self.transition.parameters(),
            optimizer=self.hp.t_optimizer,
            lr=self.hp.t_lr,
            momentum=self.hp.t_momentum,
            weight_decay=self.hp.t_weight_decay,
        )

    def train_step(self, batch: Batch) -> dict[str, Any]:
        logits = self.forward(self.net, batch.x)
        t = self.transition()
        loss = volminnet_loss(logits, batch.labels, t, self.hp.volume_weight, self.hp.t_on)
        self.backward_step(("net", "transition"), loss, self.net)
        acc = (logits.argmax(1) == batch.labels).float().mean()
        return {"loss": loss.detach(), "acc_noisy": acc.detach()}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Heads "net" (f(x), the test headline) and "noisy" (log p·T, or f(x)·T for logits)."""
        logits = self.forward(self.net, x)
        t = self.transition()
        if self.hp.t_on == "logits":
            noisy = logits @ t
        else:
            noisy = (logits.softmax(dim=1) @ t).clamp_min(1e-12).log()
        return {"net": logits, "noisy": noisy}

    @torch.no_grad()
    def transition_matrix(self) -> np.ndarray:
        """The current T (C, C), float64."""
        return self.transition().double().cpu().numpy()
