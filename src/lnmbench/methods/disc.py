"""DISC (Li et al., 2023): dynamic instance-specific selection and correction.

methods.md §3.10. One network, a weak and a strong view per sample. Per-sample state: the softmax
of both views written during training (P_w, P_s, N×C) and EMA confidence thresholds (c_w, c_s).
At the end of every epoch the whole training set is split, vectorised over all N, into a clean
set C (confident in both views), a hard set H (one view) and a purified set P (confidently
predicted, unselected; relabelled); later epochs train C with CE, H with GCE and W = S ∪ P with
mixup on the (corrected) targets.

Length conventions (stated choices): the warm-up ``warmup_epochs`` (e_ws) is given at
``ref_epochs`` (50) and scaled to the run (rounded, at least 1 when > 0), as DivideMix's. The EMA
momentum m acts once per epoch, so a run of E epochs moves the thresholds by 1 − m^E: with
``ema_epochs`` = L the run uses m^(L/E), i.e. the thresholds follow the same curve over the run as
in an L-epoch run (L = 200: DISC's own CIFAR schedule; without it a 40-epoch run reaches
1 − 0.99^40 = 33 % of the confidences instead of the original's 87 %).
Not implemented: the Ref's grey-view option ``views: lnmbench_gray`` and its DermaMNIST Adam
schedule (a preset matter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from lnmbench.errors import ConfigError
from lnmbench.methods.base import Batch, Method, Selection, register_method
from lnmbench.methods.common.index_batches import covering_batches
from lnmbench.methods.common.mixup import mixup
from lnmbench.methods.common.ramps import scaled_warmup
from lnmbench.methods.common.soft_targets import one_hot, soft_cross_entropy
from lnmbench.methods.hparams import TrainHparams

HIGH_NOISE_RATES = (0.6, 0.8, 0.9)  # the Ref switches m -> 0.95 and λ_h -> 0.2 at these rates


@dataclass
class DISCHparams(TrainHparams):
    """Ref: batch 128, SGD lr 0.1, wd 1e-3, momentum 0, MultiStep [20, 40] of 50."""

    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 1e-3
    milestones: tuple[int, ...] = (20, 40)
    warmup_epochs: int = 5  # e_ws at ref_epochs; scaled to the run (>= 1 when > 0)
    ema_momentum: float | None = None  # m; None: Ref switch, 0.95 if n ∈ {0.6, 0.8, 0.9} else 0.99
    ema_epochs: int | None = None  # run length m is meant for: m_run = m^(ema_epochs / epochs)
    #                                (None: m per epoch as given; 200 = DISC's own CIFAR runs)
    sigma: float = 0.5  # correction margin σ
    correction_cap: float = 0.99  # ceiling of the correction threshold (Ref 0.99, Orig 0.90)
    lambda_ce: float = 1.0  # weight of the clean-set CE
    lambda_h: float | None = None  # hard-set GCE weight; None: 0.2 if n ∈ {0.6, 0.8, 0.9} else 1
    gce_q: float = 0.7  # GCE exponent q
    alpha: float = 5.0  # mixup Beta(α, α) on W

    def __post_init__(self) -> None:
        where = "disc"
        if self.ema_momentum is not None and not 0.0 <= self.ema_momentum <= 1.0:
            raise ConfigError(f"{where}: ema_momentum must be in [0, 1], got {self.ema_momentum}")
        if self.ema_epochs is not None and self.ema_epochs < 1:
            raise ConfigError(f"{where}: ema_epochs must be >= 1 or null, got {self.ema_epochs}")
        if not 0.0 < self.correction_cap <= 1.0:
            raise ConfigError(
                f"{where}: correction_cap must be in (0, 1], got {self.correction_cap}"
            )
        if not 0.0 < self.gce_q <= 1.0:
            raise ConfigError(f"{where}: gce_q must be in (0, 1], got {self.gce_q}")
        if self.alpha < 0 or self.sigma < 0 or self.lambda_ce < 0 or self.warmup_epochs < 0:
            raise ConfigError(
                f"{where}: alpha, sigma, lambda_ce and warmup_epochs must be >= 0, got "
                f"{self.alpha}, {self.sigma}, {self.lambda_ce}, {self.warmup_epochs}"
            )
        if self.lambda_h is not None and self.lambda_h < 0:
            raise ConfigError(f"{where}: lambda_h must be >= 0 or null (auto), got {self.lambda_h}")


def is_high_noise(rate: float | None) -> bool:
    """The Ref's switch: n ∈ {0.6, 0.8, 0.9}."""
    return rate is not None and any(math.isclose(rate, r) for r in HIGH_NOISE_RATES)


def gce_loss(logits: torch.Tensor, labels: torch.Tensor, q: float) -> torch.Tensor:
    """Generalised CE mean_i (1 − p_{i,ỹ}^q) / q, p clamped to [1e-7, 1]; (B, C), (B,) -> scalar."""
    p = logits.softmax(dim=1).clamp(1e-7, 1.0).gather(1, labels[:, None]).squeeze(1)
    return ((1.0 - p.pow(q)) / q).mean()


@dataclass
class DiscSets:
    """The sets of one end-of-epoch update, all (N,) bool, plus targets ŷ (N,) long and the
    clean-ness score (N,) float min(P_w[i,ỹ] − c_w, P_s[i,ỹ] − c_s) (pre-update thresholds)."""

    clean: torch.Tensor  # C = m_w ∧ m_s
    selected: torch.Tensor  # S = m_w ∨ m_s
    hard: torch.Tensor  # H = S \ C
    hard_weak: torch.Tensor  # H_w = m_w \ C
    hard_strong: torch.Tensor  # H_s = m_s \ C
    purified: torch.Tensor  # P: unselected, max_c p̄ > min((c_w + c_s)/2 + σ, cap)
    mix: torch.Tensor  # W = S ∪ P
    targets: torch.Tensor  # ŷ: argmax p̄ on P, ỹ elsewhere
    score: torch.Tensor

    @classmethod
    def empty(cls, labels: torch.Tensor) -> DiscSets:
        none = torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
        score = torch.zeros(len(labels), device=labels.device)
        return cls(*(none.clone() for _ in range(7)), labels.clone(), score)

    def sizes(self) -> dict[str, int]:
        return {
            name: int(getattr(self, name).sum())
            for name in ("clean", "selected", "hard", "hard_weak", "hard_strong", "purified", "mix")
        }


def update_sets(
    p_weak: torch.Tensor,
    p_strong: torch.Tensor,
    labels: torch.Tensor,
    c_weak: torch.Tensor,
    c_strong: torch.Tensor,
    *,
    sigma: float,
    cap: float,
    momentum: float,
) -> tuple[DiscSets, torch.Tensor, torch.Tensor]:
    """DISC's end-of-epoch update over all N (§3.10, steps 1-5), vectorised.

    p_weak, p_strong (N, C) softmax of the views; labels (N,) noisy ỹ; c_weak, c_strong (N,)
    thresholds. Returns (sets, new c_weak, new c_strong); the thresholds are updated only after
    the sets, c ← m·c + (1 − m)·max_c P.
    """
    rows = torch.arange(len(labels), device=labels.device)
    conf_w = p_weak[rows, labels]
    conf_s = p_strong[rows, labels]
    m_w = conf_w > c_weak
    m_s = conf_s > c_strong
    clean = m_w & m_s
    selected = m_w | m_s
    p_mean = (p_weak + p_strong) / 2
    top, top_class = p_mean.max(dim=1)
    threshold = torch.clamp((c_weak + c_strong) / 2 + sigma, max=cap)
    purified = (top > threshold) & ~selected
    targets = torch.where(purified, top_class, labels)
    sets = DiscSets(
        clean=clean,
        selected=selected,
        hard=selected & ~clean,
        hard_weak=m_w & ~clean,
        hard_strong=m_s & ~clean,
        purified=purified,
        mix=selected | purified,
        targets=targets,
        score=torch.minimum(conf_w - c_weak, conf_s - c_strong),
    )
    new_c_weak = momentum * c_weak + (1 - momentum) * p_weak.max(dim=1).values
    new_c_strong = momentum * c_strong + (1 - momentum) * p_strong.max(dim=1).values
    return sets, new_c_weak, new_c_strong


STATE_TENSORS = ("p_weak", "p_strong", "c_weak", "c_strong")


@register_method("disc")
class DISC(Method):
    """Per-sample EMA thresholds on two views -> clean (CE) / hard (GCE) / purified+mix sets."""

    Hparams = DISCHparams
    views: ClassVar[tuple[str, ...]] = ("weak", "strong")
    description = "dynamic instance-specific selection and correction (weak/strong views)"
    hp: DISCHparams

    def setup(self) -> None:
        super().setup()
        ctx, hp = self.ctx, self.hp
        n, c, dev = ctx.train.num_samples, ctx.num_classes, ctx.device
        self.noisy = ctx.train.noisy_labels
        self.warmup_epochs = scaled_warmup(hp.warmup_epochs, hp, ctx.epochs)
        high = is_high_noise(ctx.noise_rate)
        m = hp.ema_momentum if hp.ema_momentum is not None else (0.95 if high else 0.99)
        self.ema_momentum = m ** (hp.ema_epochs / ctx.epochs) if hp.ema_epochs else m
        self.lambda_h = hp.lambda_h if hp.lambda_h is not None else (0.2 if high else 1.0)
        self.p_weak = torch.zeros(n, c, device=dev)
        self.p_strong = torch.zeros(n, c, device=dev)
        self.c_weak = torch.full((n,), 1.0 / n, device=dev)
        self.c_strong = torch.full((n,), 1.0 / n, device=dev)
        self.sets = DiscSets.empty(self.noisy)
        self.has_sets = False  # True after the first end-of-epoch update

    def epoch_batches(self, epoch: int):
        """A seeded shuffle of all N; every sample is visited (a last batch of one joins)."""
        order = torch.randperm(self.ctx.train.num_samples, generator=self.ctx.generator)
        yield from covering_batches(order, self.hp.batch_size)

    def train_step(self, batch: Batch) -> dict[str, Any]:
        x_w, x_s = batch.views["weak"], batch.views["strong"]
        y, idx, b = batch.labels, batch.index, len(batch)
        with self.ctx.autocast():
            logits = self.net(torch.cat([x_w, x_s])).float()
        z_w, z_s = logits[:b], logits[b:]
        if self.epoch < self.warmup_epochs:
            loss: torch.Tensor | None = F.cross_entropy(z_w, y) + F.cross_entropy(z_s, y)
        else:
            loss = self.subset_loss(batch, z_w, z_s)
        with torch.no_grad():
            self.p_weak[idx] = z_w.softmax(dim=1)
            self.p_strong[idx] = z_s.softmax(dim=1)
        stats: dict[str, Any] = {"acc_noisy": (z_w.argmax(1) == y).float().mean()}
        if loss is None:  # no sample of the batch is in C, H or W: no step (L = 0)
            stats["loss"] = 0.0
            return stats
        self.backward_step("net", loss, self.net)
        stats["loss"] = loss.detach()
        return stats

    def subset_loss(
        self, batch: Batch, z_w: torch.Tensor, z_s: torch.Tensor
    ) -> torch.Tensor | None:
        """λ_ce·|C_b|/B·[CE_w + CE_s]_C + λ_h·|H_b|/B·[GCE_w + GCE_s]_H + Mix(x_w) + Mix(x_s).

        z_w, z_s (B, C) logits of the two views; None when C_b, H_b and W_b are all empty.
        """
        y, idx, b = batch.labels, batch.index, len(batch)
        clean, hard, mixed = self.sets.clean[idx], self.sets.hard[idx], self.sets.mix[idx]
        n_clean, n_hard, n_mix = int(clean.sum()), int(hard.sum()), int(mixed.sum())
        terms: list[torch.Tensor] = []
        if n_clean:
            ce = F.cross_entropy(z_w[clean], y[clean]) + F.cross_entropy(z_s[clean], y[clean])
            terms.append(self.hp.lambda_ce * (n_clean / b) * ce)
        if n_hard:
            q = self.hp.gce_q
            gce = gce_loss(z_w[hard], y[hard], q) + gce_loss(z_s[hard], y[hard], q)
            terms.append(self.lambda_h * (n_hard / b) * gce)
        if n_mix:
            targets = one_hot(self.sets.targets[idx][mixed], self.ctx.num_classes)
            for view in ("weak", "strong"):
                terms.append(self.mixup_loss(batch.views[view][mixed], targets))
        return torch.stack(terms).sum() if terms else None

    def mixup_loss(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Soft CE of the net on mixup of x (m, ...) with one-hot targets (m, C) (own forward)."""
        x_mixed, t_mixed, _ = mixup(x, targets, self.hp.alpha, self.ctx.generator)
        with self.ctx.autocast():
            logits = self.net(x_mixed).float()
        return soft_cross_entropy(logits, t_mixed)

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        """Steps the schedule, then updates the sets and thresholds from P_w, P_s (all N)."""
        out = super().on_epoch_end(epoch)
        self.sets, self.c_weak, self.c_strong = update_sets(
            self.p_weak,
            self.p_strong,
            self.noisy,
            self.c_weak,
            self.c_strong,
            sigma=self.hp.sigma,
            cap=self.hp.correction_cap,
            momentum=self.ema_momentum,
        )
        self.has_sets = True
        out["phase"] = "warmup" if epoch < self.warmup_epochs else "selection"
        out["set_sizes"] = self.sets.sizes()
        out["ema_momentum"] = self.ema_momentum
        out["lambda_h"] = self.lambda_h
        out["mean_threshold"] = {
            "weak": float(self.c_weak.mean()),
            "strong": float(self.c_strong.mean()),
        }
        return out

    # ----- diagnostics --------------------------------------------------------------------
    def selection(self) -> dict[str, Selection] | None:
        """C as "clean", score min(P_w[i,ỹ] − c_w, P_s[i,ỹ] − c_s) with the thresholds that
        defined C; every sample is seen."""
        if not self.has_sets:
            return None
        s = self.sets
        return {"clean": Selection(s.clean.cpu().numpy(), None, s.score.cpu().numpy())}

    def corrected_labels(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(P (N,) bool, ŷ (N,) int: argmax p̄ on P, ỹ elsewhere)."""
        if not self.has_sets:
            return None
        return self.sets.purified.cpu().numpy(), self.sets.targets.cpu().numpy()

    def train_predictions(self) -> np.ndarray | None:
        """argmax P_w (N,): the Ref's "prediction recovery" is its accuracy against the clean
        labels (computed by the engine; see the report)."""
        return self.p_weak.argmax(dim=1).cpu().numpy() if self.has_sets else None

    # ----- checkpointing ------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {k: getattr(self, k).cpu() for k in STATE_TENSORS}
        state["sets"] = {k: v.cpu() for k, v in vars(self.sets).items()}
        state["has_sets"] = self.has_sets
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        dev = self.ctx.device
        for k in STATE_TENSORS:
            setattr(self, k, state[k].to(dev))
        self.sets = DiscSets(**{k: v.to(dev) for k, v in state["sets"].items()})
        self.has_sets = bool(state["has_sets"])
