"""T-Revision: anchor-point estimate of T, importance reweighting, then a learned slack ΔT
(Xia et al., 2019). methods.md §3.2.

The run's E epochs are split into three stages, all inside the engine's epoch loop:

1. *estimation* (E_est epochs): CE on ỹ, SGD without momentum. After each epoch whose noisy-val
   accuracy (argmax p) is a new maximum, the weights and the softmax of every training sample
   (eval mode, eval transform, fixed order) are kept. At the end of the stage the first best
   epoch's weights are restored and T̂ is estimated from its probabilities.
2. *reweighting* (E_rw epochs): L = mean β·CE with β = p_ỹ / (T̂ᵀp)_ỹ held constant; noisy-val
   uses argmax T̂ᵀp; the first best epoch's weights are restored at the end of the stage.
3. *revision* (E_rev epochs): ΔT (C×C, zeros) is learned with the net by Adam; T' = T̂ + ΔT is
   built once per batch and β keeps its gradient.

Stage lengths: ``est_epochs``, ``rw_epochs``, ``rev_epochs`` (each optional). Unset, E_est =
max(1, round(E·``est_fraction``)) (default 0.1) and the rest is split evenly between reweighting
and revision (revision gets the odd epoch); set ones must add up to the run's epochs. The
reference protocol is 5 / 50 / 50, i.e. a run of 105 epochs. Every epoch logs its stage under
``diagnostics``; run summaries should use the revision stage (``summary_start_epoch``).
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
from lnmbench.methods.hparams import TrainHparams, make_optimizer, make_scheduler

STAGES = ("estimation", "reweighting", "revision")
PROBABILITY_BATCH = 1024  # batch size of the full pass over the training split


@dataclass
class TRevisionHparams(TrainHparams):
    """The shared fields describe the *reweighting* stage (Ref: SGD lr 0.01 m 0.9 wd 1e-4,
    MultiStep [10, 20] at ``ref_epochs`` = 50, scaled to the reweighting stage's length).
    Estimation: SGD ``est_lr`` 0.01, ``est_momentum`` 0, wd 1e-4, constant. Revision: Adam
    ``rev_lr`` 5e-7, wd 1e-4 (also on ΔT), constant. Anchor filter: ``percentile`` 97,
    ``filter_outlier``."""

    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = (10, 20)
    est_epochs: int | None = None  # None: max(1, round(epochs · est_fraction))
    est_fraction: float = 0.1
    rw_epochs: int | None = None
    rev_epochs: int | None = None
    est_lr: float = 0.01
    est_momentum: float = 0.0  # Ref/Orig: none; a from-scratch net needs it in short runs
    est_weight_decay: float = 1e-4
    rev_lr: float = 5e-7
    rev_weight_decay: float = 1e-4
    percentile: float = 97.0
    filter_outlier: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.percentile <= 100.0:
            raise ConfigError(f"t-revision: percentile must be in (0, 100], got {self.percentile}")
        if not 0.0 < self.est_fraction < 1.0:
            raise ConfigError(
                f"t-revision: est_fraction must be in (0, 1), got {self.est_fraction}"
            )


# --------------------------------------------------------------------------- stages


def stage_lengths(
    epochs: int,
    est: int | None = None,
    rw: int | None = None,
    rev: int | None = None,
    est_fraction: float = 0.1,
) -> tuple[int, int, int]:
    """(E_est, E_rw, E_rev) for a run of ``epochs`` epochs; unset lengths are filled in.

    E_est defaults to max(1, round(E·est_fraction)); unset E_rw / E_rev share what is left (E_rev
    gets the odd epoch). Every stage needs at least one epoch and the three must add up to
    ``epochs``.
    """
    if est is None:
        est = max(1, round(epochs * est_fraction))
    rest = epochs - est
    if rw is None and rev is None:
        rw = rest // 2
        rev = rest - rw
    elif rw is None:
        rw = rest - rev
    elif rev is None:
        rev = rest - rw
    lengths = (est, rw, rev)
    if min(lengths) < 1 or sum(lengths) != epochs:
        raise ConfigError(
            f"t-revision: stage lengths est_epochs/rw_epochs/rev_epochs = {est}/{rw}/{rev} must "
            f"each be >= 1 and add up to the run's epochs ({epochs}); set them to fit, e.g. "
            "epochs: 105 with 5/50/50 for the reference protocol (a run needs >= 3 epochs)"
        )
    return lengths


def stage_of_epoch(epoch: int, lengths: tuple[int, int, int]) -> tuple[str, int]:
    """(stage name, 0-based epoch within the stage) of run epoch ``epoch``."""
    start = 0
    for name, length in zip(STAGES, lengths, strict=True):
        if epoch < start + length:
            return name, epoch - start
        start += length
    raise ConfigError(f"t-revision: epoch {epoch} is beyond the run's {sum(lengths)} epochs")


# --------------------------------------------------------------------------- pure functions


def anchor_transition_matrix(
    probs: np.ndarray, filter_outlier: bool = True, percentile: float = 97.0
) -> np.ndarray:
    """Anchor-point estimate of T from noisy posteriors ``probs`` (N, C); returns (C, C) float64.

    For each class i, on a *copy* of column i: if ``filter_outlier``, every entry ≥ its
    ``percentile``-th percentile (method "higher") is set to 0; the anchor a_i is the argmax of the
    filtered copy, and row i of T̂ is the unfiltered row probs[a_i]. Rows are normalised to sum 1.
    ``probs`` is not modified.
    """
    a = np.asarray(probs, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] < 2:
        raise ConfigError(f"probs must be a (N, C) matrix with N >= 1, C >= 2; got {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ConfigError("probs must hold finite, non-negative probabilities")
    if not 0.0 < percentile <= 100.0:
        raise ConfigError(f"percentile must be in (0, 100], got {percentile}")
    c = a.shape[1]
    t = np.empty((c, c), dtype=np.float64)
    for i in range(c):
        column = a[:, i].copy()
        if filter_outlier:
            threshold = np.percentile(column, percentile, method="higher")
            column[column >= threshold] = 0.0
        t[i] = a[int(np.argmax(column))]
    sums = t.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise ConfigError("an anchor row of probs sums to 0; cannot normalise T̂")
    return t / sums


def importance_weights(
    probs: torch.Tensor, labels: torch.Tensor, transition: torch.Tensor
) -> torch.Tensor:
    """β_i = p_ỹᵢ / (Tᵀp)_ỹᵢ with (Tᵀp)_j = Σ_k p_k T_kj.

    probs (B, C) clean posteriors, labels (B,) noisy labels, transition (C, C) -> (B,).
    Differentiable in both ``probs`` and ``transition``.
    """
    noisy = probs @ transition  # (B, C): row b is Tᵀ p_b
    index = labels[:, None]
    return probs.gather(1, index).squeeze(1) / noisy.gather(1, index).squeeze(1)


def reweighted_ce(
    logits: torch.Tensor, labels: torch.Tensor, transition: torch.Tensor, detach_weights: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean_i β_i·CE(f(x_i), ỹ_i), β (B,)); β constant when ``detach_weights``.

    logits (B, C), labels (B,), transition (C, C).
    """
    beta = importance_weights(logits.softmax(dim=1), labels, transition)
    if detach_weights:
        beta = beta.detach()
    ce = F.cross_entropy(logits, labels, reduction="none")
    return (beta * ce).mean(), beta


def revision_loss(
    logits: torch.Tensor, labels: torch.Tensor, t_hat: torch.Tensor, delta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Revision-stage loss: T' = T̂ + ΔT built once for the whole batch, β with gradient.

    logits (B, C), labels (B,), t_hat (C, C) constant, delta (C, C) learnable -> (loss, β (B,)).
    """
    return reweighted_ce(logits, labels, t_hat + delta, detach_weights=False)


class TransitionSlack(nn.Module):
    """The slack ΔT (C, C), initialised to zeros."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(num_classes, num_classes))


def _copy_state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


# --------------------------------------------------------------------------- method


@register_method("t-revision")
class TRevision(Method):
    """Three stages (estimation, reweighting, revision) in one run; test head is argmax p."""

    Hparams = TRevisionHparams
    cost_factor = 2.2
    val_head = "noisy"
    description = "anchor-point T estimate, importance reweighting, learned slack ΔT"

    hp: TRevisionHparams

    def setup(self) -> None:
        hp = self.hp
        self.lengths = stage_lengths(
            self.ctx.epochs, hp.est_epochs, hp.rw_epochs, hp.rev_epochs, hp.est_fraction
        )
        self.net = self.add_net("net")
        self.slack = TransitionSlack(self.ctx.num_classes).to(self.ctx.device)
        self.nets["slack"] = self.slack
        net_params = list(self.net.parameters())
        self.optimizers["estimation"] = make_optimizer(
            net_params,
            hp,
            optimizer="sgd",
            lr=hp.est_lr,
            momentum=hp.est_momentum,
            weight_decay=hp.est_weight_decay,
        )
        rw = make_optimizer(net_params, hp)
        self.optimizers["reweighting"] = rw
        self.schedulers["reweighting"] = make_scheduler(rw, hp, self.lengths[1])
        self.optimizers["revision"] = make_optimizer(
            [*net_params, self.slack.delta],
            hp,
            optimizer="adam",
            lr=hp.rev_lr,
            weight_decay=hp.rev_weight_decay,
        )
        self.stage, self.stage_epoch = stage_of_epoch(0, self.lengths)
        self.t_hat: np.ndarray | None = None  # (C, C) float64 once estimated
        self._t_hat_dev: torch.Tensor | None = None
        self.best: dict[str, dict[str, Any]] = {
            s: {"acc": -np.inf, "epoch": None, "state": None, "probs": None} for s in STAGES[:2]
        }

    # ----- stages -------------------------------------------------------------------------
    def summary_start_epoch(self) -> int:
        """First epoch of the revision stage: run summaries use the revision stage only."""
        return self.lengths[0] + self.lengths[1]

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self.stage, self.stage_epoch = stage_of_epoch(epoch, self.lengths)

    def _set_t_hat(self, t_hat: np.ndarray | None) -> None:
        self.t_hat = t_hat
        self._t_hat_dev = (
            None
            if t_hat is None
            else torch.as_tensor(t_hat, dtype=torch.float32, device=self.ctx.device)
        )

    def current_transition(self) -> torch.Tensor | None:
        """T̂ (reweighting), T̂ + ΔT (revision), None before T̂ exists; (C, C) on the device."""
        if self._t_hat_dev is None:
            return None
        if self.stage == "revision":
            return self._t_hat_dev + self.slack.delta
        return self._t_hat_dev

    @torch.no_grad()
    def train_probabilities(self) -> np.ndarray:
        """Softmax (N, C) float64 of every training sample, eval mode and transform, in order."""
        self.net.eval()
        (logits,) = self.train_set_logits([self.net], PROBABILITY_BATCH)
        return logits.softmax(dim=1).cpu().double().numpy()

    # ----- training -----------------------------------------------------------------------
    def train_step(self, batch: Batch) -> dict[str, Any]:
        logits = self.forward(self.net, batch.x)
        stats: dict[str, Any] = {}
        if self.stage == "estimation":
            loss = F.cross_entropy(logits, batch.labels)
        elif self.stage == "reweighting":
            loss, beta = reweighted_ce(logits, batch.labels, self._t_hat_dev, detach_weights=True)
            stats["beta_mean"] = beta.mean().detach()
        else:
            loss, beta = revision_loss(logits, batch.labels, self._t_hat_dev, self.slack.delta)
            stats["beta_mean"] = beta.mean().detach()
        self.backward_step(self.stage, loss, self.net)
        acc = (logits.argmax(1) == batch.labels).float().mean()
        return {"loss": loss.detach(), "acc_noisy": acc.detach(), **stats}

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        """Steps only the reweighting stage's schedule (the other stages use constant rates)."""
        if self.stage == "reweighting":
            self.schedulers["reweighting"].step()
        return {"t_revision_stage": self.stage, "t_revision_stage_epoch": self.stage_epoch}

    def after_evaluation(self, epoch: int, val_acc: dict[str, float]) -> dict[str, Any]:
        """Keep the first best epoch of stages 1 and 2; at a stage's end restore it (and
        estimate T̂ after stage 1)."""
        if self.stage == "revision":
            return {}
        best = self.best[self.stage]
        acc = val_acc["noisy"]
        if acc > best["acc"]:
            best.update(acc=acc, epoch=epoch, state=_copy_state(self.net))
            if self.stage == "estimation":
                best["probs"] = self.train_probabilities()
        out: dict[str, Any] = {}
        if self.stage_epoch == self.lengths[STAGES.index(self.stage)] - 1:
            self.net.load_state_dict(best["state"])
            out[f"t_revision_{self.stage}_best_epoch"] = best["epoch"]
            if self.stage == "estimation":
                self._set_t_hat(
                    anchor_transition_matrix(
                        best["probs"], self.hp.filter_outlier, self.hp.percentile
                    )
                )
            best.update(state=None, probs=None)  # no longer needed; keeps checkpoints small
        return out

    # ----- prediction ---------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Heads "net" (f(x), the test headline) and "noisy" (log T'ᵀp; f(x) in stage 1)."""
        logits = self.forward(self.net, x)
        t = self.current_transition()
        if t is None:
            return {"net": logits, "noisy": logits}
        return {"net": logits, "noisy": (logits.softmax(dim=1) @ t).clamp_min(1e-12).log()}

    @torch.no_grad()
    def transition_matrix(self) -> np.ndarray | None:
        """T̂ after estimation, T̂ + ΔT in the revision stage (C, C) float64; None before."""
        if self.t_hat is None:
            return None
        if self.stage == "revision":
            return self.t_hat + self.slack.delta.detach().double().cpu().numpy()
        return self.t_hat

    def lr(self) -> float:
        return float(self.optimizers[self.stage].param_groups[0]["lr"])

    # ----- checkpointing ------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {"t_hat": self.t_hat, "best": self.best}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._set_t_hat(state["t_hat"])
        self.best = state["best"]
        self.stage, self.stage_epoch = stage_of_epoch(self.epoch, self.lengths)
