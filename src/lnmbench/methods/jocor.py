"""JoCoR (Wei et al., 2020): joint training with co-regularisation.

Per sample: ℓ_i = (1 − λ)[CE(f₁(x_i), ỹ_i) + CE(f₂(x_i), ỹ_i)] + λ[KL(p₁‖p₂) + KL(p₂‖p₁)]_i;
S = the r smallest ℓ_i; L = mean_{i∈S} ℓ_i minimised by one Adam over both nets, with gradients
through both arguments of both KL terms (no detach). One joint selection "joint", score −ℓ_i.
``ce_reduction: batch_mean`` reproduces the reference code (its CE term is the batch mean, so the
ranking depends only on the KL term). methods.md §3.9.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lnmbench.errors import ConfigError
from lnmbench.methods.base import Batch, register_method
from lnmbench.methods.common.two_net import (
    TwoNetHparams,
    TwoNetMethod,
    both_nets,
    pair_noisy_accuracy,
    per_sample_ce,
    remember_count,
    small_loss_indices,
)

CE_REDUCTIONS = ("none", "batch_mean")


@dataclass
class JoCoRHparams(TwoNetHparams):
    """Ref: λ = 0.1 (authors recommend 0.5–0.9), one Adam lr 1e-3 over both nets."""

    co_lambda: float = 0.1
    ce_reduction: str = "none"  # none (per sample, correct) | batch_mean (the Ref)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ce_reduction not in CE_REDUCTIONS:
            raise ConfigError(
                f"unknown ce_reduction {self.ce_reduction!r}; known: {', '.join(CE_REDUCTIONS)}"
            )
        if not 0.0 <= self.co_lambda <= 1.0:
            raise ConfigError(f"co_lambda must be in [0, 1], got {self.co_lambda}")


def symmetric_kl(logits1: torch.Tensor, logits2: torch.Tensor) -> torch.Tensor:
    """KL(p₁‖p₂) + KL(p₂‖p₁) per sample (B,) for logits (B, C); gradients reach both."""
    log_p1, log_p2 = logits1.log_softmax(1), logits2.log_softmax(1)
    kl12 = (log_p1.exp() * (log_p1 - log_p2)).sum(1)
    kl21 = (log_p2.exp() * (log_p2 - log_p1)).sum(1)
    return kl12 + kl21


def joint_loss(
    logits1: torch.Tensor,
    logits2: torch.Tensor,
    labels: torch.Tensor,
    co_lambda: float,
    ce_reduction: str = "none",
) -> torch.Tensor:
    """ℓ (B,): (1 − λ)(CE₁ + CE₂) + λ·(KL(p₁‖p₂) + KL(p₂‖p₁)); logits (B, C), labels (B,).

    ``batch_mean``: CE₁ and CE₂ are replaced by their batch means (the same for every sample).
    """
    ce = per_sample_ce(logits1, labels) + per_sample_ce(logits2, labels)
    if ce_reduction == "batch_mean":
        ce = ce.mean().expand_as(ce)
    elif ce_reduction != "none":
        raise ConfigError(
            f"unknown ce_reduction {ce_reduction!r}; known: {', '.join(CE_REDUCTIONS)}"
        )
    return (1.0 - co_lambda) * ce + co_lambda * symmetric_kl(logits1, logits2)


@register_method("jocor")
class JoCoR(TwoNetMethod):
    """Small-loss selection on the joint loss; one optimiser updates both nets."""

    Hparams = JoCoRHparams
    cost_factor = 2.0
    description = "JoCoR: joint loss with agreement term, one optimiser (uses the noise rate)"
    selection_names = ("joint",)

    hp: JoCoRHparams

    def build_optimizers(self) -> None:
        self.pair = both_nets(self)
        self.add_family_optimizer("joint", self.pair.parameters())

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits1, logits2 = self.forward_pair(batch.x)
        y = batch.labels
        losses = joint_loss(logits1, logits2, y, self.hp.co_lambda, self.hp.ce_reduction)
        self.tracker.record_scores(batch.index, {"joint": -losses})
        selected = small_loss_indices(losses, remember_count(len(batch), self.current_forget_rate))
        loss = losses[selected].mean()
        self.backward_step("joint", loss, self.pair)
        self.tracker.record(batch.index, {"joint": selected})
        return {
            "loss": loss.detach(),
            "acc_noisy": pair_noisy_accuracy(logits1, logits2, y),
        }
