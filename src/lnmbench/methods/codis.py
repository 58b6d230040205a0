"""CoDis (Xia et al., 2023): small-loss selection that favours high-discrepancy samples.

Per batch: JS_i = ½KL(p₁‖m) + ½KL(p₂‖m), m = ½(p₁ + p₂) clamped at 1e-8 and renormalised;
ℓ_k,i = CE(f_k(x_i), ỹ_i) − λ·JS_i; S_k = r smallest ℓ_k; L₁ = mean_{S₂} ℓ₁, L₂ = mean_{S₁} ℓ₂.
Net k is updated with ∂L_k/∂θ_k only: inside ℓ_k the peer's distribution is a constant, and each
net has its own Adam (the reference code's single backward of L₁ + L₂ is not kept).
``js_form: official`` uses the official code's ½KL(m‖p₁) + ½KL(m‖p₂). Scores −ℓ_k.
methods.md §3.8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lnmbench.errors import ConfigError
from lnmbench.methods.base import Batch, register_method
from lnmbench.methods.common.two_net import (
    TwoNetHparams,
    TwoNetMethod,
    pair_noisy_accuracy,
    per_sample_ce,
    remember_count,
)

JS_FORMS = ("true", "official")
MIXTURE_FLOOR = 1e-8


@dataclass
class CoDisHparams(TwoNetHparams):
    """Ref: batch 16 (Orig 128), λ = 0.15, otherwise as Co-teaching."""

    batch_size: int = 16
    co_lambda: float = 0.15
    js_form: str = "true"  # true | official

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.js_form not in JS_FORMS:
            raise ConfigError(f"unknown js_form {self.js_form!r}; known: {', '.join(JS_FORMS)}")


def js_divergence(logits1: torch.Tensor, logits2: torch.Tensor, form: str = "true") -> torch.Tensor:
    """Per-sample discrepancy (B,) between softmax(logits1) and softmax(logits2), logits (B, C).

    "true": ½KL(p₁‖m) + ½KL(p₂‖m); "official": ½KL(m‖p₁) + ½KL(m‖p₂); m = ½(p₁ + p₂) clamped
    at 1e-8 and renormalised. Detach one argument to make it a constant.
    """
    log_p1, log_p2 = logits1.log_softmax(1), logits2.log_softmax(1)
    p1, p2 = log_p1.exp(), log_p2.exp()
    m = ((p1 + p2) / 2).clamp_min(MIXTURE_FLOOR)
    m = m / m.sum(1, keepdim=True)
    log_m = m.log()
    if form == "true":
        return 0.5 * (p1 * (log_p1 - log_m)).sum(1) + 0.5 * (p2 * (log_p2 - log_m)).sum(1)
    if form == "official":
        return 0.5 * (m * (log_m - log_p1)).sum(1) + 0.5 * (m * (log_m - log_p2)).sum(1)
    raise ConfigError(f"unknown js_form {form!r}; known: {', '.join(JS_FORMS)}")


def codis_losses(
    logits1: torch.Tensor, logits2: torch.Tensor, labels: torch.Tensor, co_lambda: float, form: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ℓ₁, ℓ₂), each (B,): ℓ_k = CE_k − λ·JS with the peer's logits detached inside ℓ_k."""
    loss1 = per_sample_ce(logits1, labels) - co_lambda * js_divergence(
        logits1, logits2.detach(), form
    )
    loss2 = per_sample_ce(logits2, labels) - co_lambda * js_divergence(
        logits1.detach(), logits2, form
    )
    return loss1, loss2


@register_method("codis")
class CoDis(TwoNetMethod):
    """Cross update on the small-loss-minus-discrepancy selections, per-net gradients."""

    Hparams = CoDisHparams
    cost_factor = 2.0
    description = "CoDis: small-loss selection of high-discrepancy samples (uses the noise rate)"

    hp: CoDisHparams

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits1, logits2 = self.forward_pair(batch.x)
        y = batch.labels
        loss1, loss2 = codis_losses(logits1, logits2, y, self.hp.co_lambda, self.hp.js_form)
        self.tracker.record_scores(batch.index, {"net1": -loss1, "net2": -loss2})
        count = remember_count(len(batch), self.current_forget_rate)
        cs = self.cross_update(batch.index, loss1, loss2, count)
        return {
            "loss": (cs.loss1.detach() + cs.loss2.detach()) / 2,
            "acc_noisy": pair_noisy_accuracy(logits1, logits2, y),
        }
