"""Schedules of the Co-teaching family: the forget-rate ramp R(e) and the linear decay of the
learning rate with Adam's β1 from epoch e_d (per epoch, or per optimiser step).
"""

from __future__ import annotations

from typing import Any

import torch


def forget_rate_at(
    epoch: int, tau: float, ramp_epochs: int, exponent: float = 1.0, start_epoch: int = 0
) -> float:
    """R(e) = τ·min(e/(T_k − 1), 1)^c evaluated at e = ``epoch`` + ``start_epoch``.

    T_k = ``ramp_epochs`` (T_k = 1: τ from the start). τ = 0.5, T_k = 10: R(0) = 0, R(3) = 1/6,
    R(9) = R(20) = 0.5.
    """
    e = epoch + start_epoch
    progress = 1.0 if ramp_epochs <= 1 else min(e / (ramp_epochs - 1), 1.0)
    return tau * progress**exponent


def lr_factor_at(epoch: int, epochs: int, decay_start: int) -> float:
    """1 for e < e_d, then (E − e)/(E − e_d): linear decay to 1/(E − e_d) at the last epoch."""
    if epoch < decay_start or decay_start >= epochs:
        return 1.0
    return (epochs - epoch) / (epochs - decay_start)


def beta1_at(epoch: int, decay_start: int, beta1: float = 0.9, beta1_decayed: float = 0.1) -> float:
    """Adam's β₁: ``beta1`` before e_d, ``beta1_decayed`` from e_d on."""
    return beta1 if epoch < decay_start else beta1_decayed


class LinearDecayBeta1Schedule:
    """Per-epoch schedule of the Co-teaching family on an (Adam) optimiser.

    Epoch e uses lr·``lr_factor_at(e)`` and β₁ = ``beta1_at(e)`` (β₂ unchanged). ``step()`` after
    each epoch, like a torch LR scheduler; ``state_dict`` / ``load_state_dict`` for resume.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        epochs: int,
        decay_start: int,
        beta1: float = 0.9,
        beta1_decayed: float = 0.1,
    ) -> None:
        self.optimizer = optimizer
        self.epochs = epochs
        self.decay_start = decay_start
        self.beta1 = beta1
        self.beta1_decayed = beta1_decayed
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def _apply(self) -> None:
        e = self.last_epoch
        factor = lr_factor_at(e, self.epochs, self.decay_start)
        b1 = beta1_at(e, self.decay_start, self.beta1, self.beta1_decayed)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor
            if "betas" in group:
                group["betas"] = (b1, group["betas"][1])

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_epoch = int(state["last_epoch"])
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        self._apply()
