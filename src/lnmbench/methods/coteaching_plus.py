"""Co-teaching+ (Yu et al., 2019): small-loss cross update inside the disagreement set.

For e < e_init a Co-teaching step. Afterwards, per batch: D = {i : argmax f₁(x_i) ≠ argmax f₂(x_i)}
(a boolean mask); inside D, ℓ_k = CE on the *logits*, r = ⌊(1 − R(e))·|D|⌋ (all of D if 0), net 1
minimises mean_{S₂} ℓ₁ and net 2 mean_{S₁} ℓ₂. If D = ∅: while the global step count (iterations
since the start of training, checkpointed) is below 5000 both nets minimise the batch-mean CE (the
whole batch counts as selected), afterwards the update is skipped. methods.md §3.7.

e_init = 5 is an epoch count at ``ref_epochs`` = 50 and is scaled to the run's length like the
milestones (2 at 20 epochs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from lnmbench.errors import ConfigError
from lnmbench.methods.base import Batch, register_method
from lnmbench.methods.common.two_net import num_kept, pair_noisy_accuracy, per_sample_ce
from lnmbench.methods.coteaching import CoTeaching, CoTeachingHparams
from lnmbench.methods.hparams import scaled_epoch


@dataclass
class CoTeachingPlusHparams(CoTeachingHparams):
    """Ref: e_init = 5 (of 50 epochs), full-batch fallback for the first 5000 steps."""

    init_epoch: int = 5
    fallback_steps: int = 5000
    fallback_fraction: float | None = None  # if set: the horizon is this fraction of the run's
    #     optimiser steps instead of ``fallback_steps`` (5000 of the original's 200 × 391 CIFAR-10
    #     steps = 0.064); a fixed 5000 is longer than a whole short run

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_epoch < 0:
            raise ConfigError(f"init_epoch must be >= 0, got {self.init_epoch}")
        if self.fallback_steps < 0:
            raise ConfigError(f"fallback_steps must be >= 0, got {self.fallback_steps}")
        if self.fallback_fraction is not None and not 0.0 <= self.fallback_fraction <= 1.0:
            raise ConfigError(
                f"fallback_fraction must be in [0, 1] or null, got {self.fallback_fraction}"
            )


def disagreement_mask(logits1: torch.Tensor, logits2: torch.Tensor) -> torch.Tensor:
    """D as a mask (B,) bool: the two nets' argmax predictions differ; logits (B, C)."""
    return logits1.argmax(1) != logits2.argmax(1)


def disagreement_remember_count(size: int, forget_rate: float) -> int:
    """r = ⌊(1 − R)·|D|⌋, or |D| when that is 0."""
    r = num_kept(size, forget_rate)
    return r if r > 0 else size


def fallback_horizon(hp: CoTeachingPlusHparams, total_steps: int) -> int:
    """Steps during which an empty disagreement set still trains on the whole batch:
    ``fallback_steps``, or ``round(fallback_fraction · total_steps)`` when a fraction is set."""
    if hp.fallback_fraction is None:
        return hp.fallback_steps
    return round(hp.fallback_fraction * total_steps)


def fallback_trains(global_step: int, fallback_steps: int) -> bool:
    """With D = ∅: True (train both nets on the whole batch) while step < threshold, else skip."""
    return global_step < fallback_steps


@register_method("coteaching-plus")
class CoTeachingPlus(CoTeaching):
    """Co-teaching warm-up, then cross update on the small-loss part of the disagreement set."""

    Hparams = CoTeachingPlusHparams
    description = "Co-teaching+: cross update inside the two nets' disagreement (noise rate)"

    hp: CoTeachingPlusHparams

    def setup(self) -> None:
        super().setup()
        self.init_epoch = scaled_epoch(self.hp.init_epoch, self.hp, self.ctx.epochs)
        self.global_step = 0  # iterations since the start of training
        self.fallback_steps = fallback_horizon(
            self.hp, self.ctx.epochs * math.ceil(self.ctx.train.num_samples / self.hp.batch_size)
        )

    def train_step(self, batch: Batch) -> dict[str, torch.Tensor | float]:
        logits1, logits2 = self.forward_pair(batch.x)
        d = disagreement_mask(logits1.detach(), logits2.detach())
        if self.epoch < self.init_epoch:
            stats: dict[str, torch.Tensor | float] = dict(
                self.co_teaching_step(batch, logits1, logits2)
            )
            stats["skipped_update"] = 0.0
        else:
            stats = self.disagreement_step(batch, logits1, logits2, d)
        stats["disagreement"] = d.float().mean()
        self.global_step += 1
        return stats

    def disagreement_step(
        self, batch: Batch, logits1: torch.Tensor, logits2: torch.Tensor, d: torch.Tensor
    ) -> dict[str, torch.Tensor | float]:
        """One step after e_init; logits (B, C), d (B,) bool."""
        y = batch.labels
        ce1 = per_sample_ce(logits1, y)
        ce2 = per_sample_ce(logits2, y)
        self.tracker.record_scores(batch.index, {"net1": -ce1, "net2": -ce2})
        acc = pair_noisy_accuracy(logits1, logits2, y)
        inside = d.nonzero().squeeze(1)
        if inside.numel() > 0:
            count = disagreement_remember_count(inside.numel(), self.current_forget_rate)
            self.tracker.record(batch.index, {})  # the whole batch is seen
            cs = self.cross_update(batch.index[inside], ce1[inside], ce2[inside], count)
            loss = (cs.loss1.detach() + cs.loss2.detach()) / 2
            return {"loss": loss, "acc_noisy": acc, "skipped_update": 0.0}
        if fallback_trains(self.global_step, self.fallback_steps):
            loss1, loss2 = ce1.mean(), ce2.mean()
            self.backward_step("net1", loss1, self.net1)
            self.backward_step("net2", loss2, self.net2)
            everything = torch.arange(len(batch), device=batch.index.device)
            self.tracker.record(batch.index, {"net1": everything, "net2": everything})
            loss = (loss1.detach() + loss2.detach()) / 2
            return {"loss": loss, "acc_noisy": acc, "skipped_update": 0.0}
        self.tracker.record(batch.index, {})
        return {
            "loss": (ce1.mean() + ce2.mean()).detach() / 2,
            "acc_noisy": acc,
            "skipped_update": 1.0,
        }

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        out = super().on_epoch_end(epoch)
        out["global_step"] = self.global_step
        out["fallback_steps"] = self.fallback_steps
        out["disagreement_phase"] = epoch >= self.init_epoch
        return out

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "global_step": self.global_step}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.global_step = int(state["global_step"])
