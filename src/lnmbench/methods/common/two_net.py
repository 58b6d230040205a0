"""Shared machinery of the Co-teaching family (methods.md §3.6–3.9, §6.1, §6.5).

Two networks (net 1 built first, then net 2, from the seeded RNG), the family's Adam schedule
(linear LR decay from e_d with β₁ 0.9 → 0.1), the forget-rate schedule R(e), small-loss
selection, the cross update (net 1 learns from net 2's selection and vice versa), and the per-epoch
selected / seen sets and clean-ness scores that the engine turns into selection precision, recall
and detection AUROC. This module holds the hyperparameters and the base method; the schedules are
in ``forget_schedule``, the selection in ``small_loss``, the bookkeeping in ``selection_tracker``
(re-exported here, the family's one import).

Epoch counts (e_d, T_k, Co-teaching+'s e_init) are given at the reference length ``ref_epochs``
(50) and scaled to the run's epochs like the milestones of ``hparams.py``: at 20 epochs e_d = 8,
T_k = 4, e_init = 2; at 50 epochs they are the reference values 20, 10, 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lnmbench.errors import ConfigError
from lnmbench.methods.base import Method, Selection
from lnmbench.methods.common.forget_schedule import (
    LinearDecayBeta1Schedule,
    beta1_at,
    forget_rate_at,
    lr_factor_at,
)
from lnmbench.methods.common.selection_tracker import SelectionTracker
from lnmbench.methods.common.small_loss import (
    CrossSelection,
    cross_select,
    num_kept,
    remember_count,
    small_loss_indices,
)
from lnmbench.methods.hparams import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    TrainHparams,
    UnitFloat,
    scaled_epoch,
)

SCHEDULES = ("linear_decay", "multistep", "constant", "cosine")


@dataclass
class TwoNetHparams(TrainHparams):
    """Ref (all four methods): batch 128, Adam lr 1e-3 per net, linear decay from e_d = 20 of 50.

    ``forget_rate`` overrides τ; by default τ = ``forget_rate_scale`` · the run's noise rate (the
    nominal rate, or ``assumed_noise_rate`` on real-world data; JoCoR's authors use scale 0.5 for
    asymmetric noise). ``forget_ramp_epochs`` is T_k and ``decay_start_epoch`` is e_d, both at
    ``ref_epochs``. ``start_epoch: 1`` evaluates the forget-rate schedule at e + 1 (the reference
    code trains epochs 1…49, so its first trained epoch already forgets τ/(T_k − 1)).
    """

    optimizer: Literal["sgd", "adam"] = "adam"
    lr: PositiveFloat = 1e-3
    # linear_decay (the family's) | multistep | constant | cosine
    schedule: Literal["linear_decay", "multistep", "constant", "cosine"] = "linear_decay"
    decay_start_epoch: NonNegativeInt = 20
    beta1_decayed: UnitFloat = 0.1
    forget_rate: UnitFloat | None = None
    forget_rate_scale: NonNegativeFloat = 1.0
    forget_ramp_epochs: PositiveInt = 10
    forget_exponent: PositiveFloat = 1.0
    start_epoch: Literal[0, 1] = 0  # 0: R(0) = 0; 1: the reference schedule


# ----- the base method ---------------------------------------------------------------------
class TwoNetMethod(Method):
    """Base of the Co-teaching family: two nets, the family schedule, forget rate, selections.

    Heads: "net1", "net2", "ensemble" (logits (f₁ + f₂)/2, so probabilities softmax((f₁+f₂)/2));
    headline and validation head "mean" (accuracy averaged over net 1 and net 2).
    """

    Hparams: ClassVar[type[TrainHparams]] = TwoNetHparams
    headline = "mean"
    mean_heads = ("net1", "net2")
    val_head = "mean"
    uses_noise_rate = True
    noise_rate_alternative = ", or the hyperparameter forget_rate"
    selection_names: ClassVar[tuple[str, ...]] = ("net1", "net2")

    hp: TwoNetHparams

    @classmethod
    def needs_noise_rate(cls, hp: TrainHparams) -> bool:
        return cls.uses_noise_rate and getattr(hp, "forget_rate", None) is None

    def setup(self) -> None:
        self.net1 = self.add_net("net1")
        self.net2 = self.add_net("net2")
        self.build_optimizers()
        self.tau, self.forget_rate_source = self.resolve_tau()
        self.ramp_epochs = max(
            1, scaled_epoch(self.hp.forget_ramp_epochs, self.hp, self.ctx.epochs)
        )
        self.current_forget_rate = self.forget_rate_of_epoch(0)
        self.tracker = SelectionTracker(
            self.selection_names, self.ctx.train.num_samples, self.ctx.device
        )

    def build_optimizers(self) -> None:
        """One optimiser per net (JoCoR overrides: one over both)."""
        self.add_family_optimizer("net1", self.net1.parameters())
        self.add_family_optimizer("net2", self.net2.parameters())

    def add_family_optimizer(self, name: str, params) -> torch.optim.Optimizer:
        """The optimiser of ``hp`` with the family's schedule (or a generic one by ``schedule``)."""
        if self.hp.schedule != "linear_decay":
            return self.add_optimizer(name, params)
        opt = self.add_optimizer(name, params, with_scheduler=False)
        self.schedulers[name] = LinearDecayBeta1Schedule(
            opt,
            self.ctx.epochs,
            scaled_epoch(self.hp.decay_start_epoch, self.hp, self.ctx.epochs),
            beta1=self.hp.betas[0],
            beta1_decayed=self.hp.beta1_decayed,
        )
        return opt

    def resolve_tau(self) -> tuple[float, str]:
        """τ and where it came from: ("hparam") or the run's noise rate source."""
        if self.hp.forget_rate is not None:
            return float(self.hp.forget_rate), "hparam"
        tau = self.hp.forget_rate_scale * self.noise_rate()
        if not 0.0 <= tau < 1.0:
            raise ConfigError(
                f"forget rate τ = forget_rate_scale·noise_rate = {tau:g} must be in [0, 1)"
            )
        return tau, self.ctx.noise_rate_source

    def forget_rate_of_epoch(self, epoch: int) -> float:
        hp = self.hp
        return forget_rate_at(epoch, self.tau, self.ramp_epochs, hp.forget_exponent, hp.start_epoch)

    # ----- hooks ---------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self.current_forget_rate = self.forget_rate_of_epoch(epoch)
        self.tracker.start_epoch()

    def forward_pair(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, C) of net 1 and net 2, in float32."""
        return self.forward(self.net1, x), self.forward(self.net2, x)

    def cross_update(
        self, index: torch.Tensor, loss1: torch.Tensor, loss2: torch.Tensor, count: int
    ) -> CrossSelection:
        """Select r = ``count`` per net, step net 1 on S₂ and net 2 on S₁, record S₁ and S₂.

        index (B',) global sample indices of the rows of loss1 / loss2 (B',).
        """
        cs = cross_select(loss1, loss2, count)
        self.backward_step("net1", cs.loss1, self.net1)
        self.backward_step("net2", cs.loss2, self.net2)
        self.tracker.record(index, {"net1": cs.selected1, "net2": cs.selected2})
        return cs

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        opt = next(iter(self.optimizers.values()))
        out: dict[str, Any] = {
            "forget_rate": self.current_forget_rate,
            "forget_rate_tau": self.tau,
            "forget_rate_source": self.forget_rate_source,
            "selection_sizes": self.tracker.sizes(),
            "selection_sizes_per_class": self.tracker.sizes_per_class(
                self.ctx.train.noisy_labels, self.ctx.num_classes
            ),
        }
        if "betas" in opt.param_groups[0]:
            out["beta1"] = float(opt.param_groups[0]["betas"][0])
        out.update(super().on_epoch_end(epoch))
        return out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f1, f2 = self.forward_pair(x)
        return {"net1": f1, "net2": f2, "ensemble": (f1 + f2) / 2}

    def selection(self) -> dict[str, Selection]:
        return self.tracker.selections()

    def extra_state(self) -> dict[str, Any]:
        return {"scores": self.tracker.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.tracker.load_state_dict(state["scores"])


def per_sample_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CE(f(x_i), ỹ_i) per sample: logits (B, C), labels (B,) -> (B,)."""
    return F.cross_entropy(logits, labels, reduction="none")


def pair_noisy_accuracy(
    logits1: torch.Tensor, logits2: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Agreement of argmax predictions with the noisy labels, averaged over the two nets (0-d);
    logits (B, C), labels (B,)."""
    hits1 = (logits1.argmax(1) == labels).float().mean()
    hits2 = (logits2.argmax(1) == labels).float().mean()
    return (hits1 + hits2).detach() / 2


def both_nets(method: TwoNetMethod) -> nn.ModuleList:
    """The two nets as one module (for one optimiser or one gradient-norm clip over both)."""
    return nn.ModuleList([method.net1, method.net2])


__all__ = [
    "CrossSelection",
    "LinearDecayBeta1Schedule",
    "SelectionTracker",
    "TwoNetHparams",
    "TwoNetMethod",
    "beta1_at",
    "both_nets",
    "cross_select",
    "forget_rate_at",
    "lr_factor_at",
    "num_kept",
    "pair_noisy_accuracy",
    "per_sample_ce",
    "remember_count",
    "small_loss_indices",
]
