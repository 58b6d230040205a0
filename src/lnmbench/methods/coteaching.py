"""Co-teaching (Han et al., 2018): two nets teach each other their small-loss samples.

Per batch: ℓ_k,i = CE(f_k(x_i), ỹ_i); S_k = the r = max(1, ⌊(1 − R(e))·B⌋) smallest ℓ_k; net 1
minimises mean_{S₂} ℓ₁, net 2 minimises mean_{S₁} ℓ₂, each with its own Adam. Selections "net1"
(S₁) and "net2" (S₂), scores −CE_k. methods.md §3.6.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lnmbench.methods.base import Batch, register_method
from lnmbench.methods.common.two_net import (
    TwoNetHparams,
    TwoNetMethod,
    pair_noisy_accuracy,
    per_sample_ce,
    remember_count,
)


@dataclass
class CoTeachingHparams(TwoNetHparams):
    """Ref = Orig (CIFAR): batch 128, Adam lr 1e-3 per net, τ = n, T_k = 10, e_d = 20 of 50."""


@register_method("coteaching")
class CoTeaching(TwoNetMethod):
    """Cross update on small-loss selections; headline = mean of the two nets' accuracies."""

    Hparams = CoTeachingHparams
    cost_factor = 2.0
    description = "Co-teaching: two nets exchange their small-loss samples (uses the noise rate)"

    def co_teaching_step(
        self, batch: Batch, logits1: torch.Tensor, logits2: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The Co-teaching update on logits (B, C) of both nets (also Co-teaching+'s warm-up)."""
        ce1 = per_sample_ce(logits1, batch.labels)
        ce2 = per_sample_ce(logits2, batch.labels)
        self.tracker.record_scores(batch.index, {"net1": -ce1, "net2": -ce2})
        count = remember_count(len(batch), self.current_forget_rate)
        cs = self.cross_update(batch.index, ce1, ce2, count)
        return {
            "loss": (cs.loss1.detach() + cs.loss2.detach()) / 2,
            "acc_noisy": pair_noisy_accuracy(logits1, logits2, batch.labels),
        }

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits1, logits2 = self.forward_pair(batch.x)
        return self.co_teaching_step(batch, logits1, logits2)
