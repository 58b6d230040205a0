"""medssl: DivideMix for class-imbalanced medical data (methods.md §8; this package's design).

The LNMBench paper proposes "a simple yet effective improvement" for semi-supervised LNL under
class imbalance but publishes no definition; this is the package's version of it. It is DivideMix
(§3.11, :class:`~lnmbench.methods.dividemix.DivideMix`, whose schedule, co-divide pass, MixMatch
step and forwards it shares) plus three switchable components. With every component off
(``divide: global, lx_loss: ce, imbalance: none, prior: uniform``) it *is* DivideMix: same
labelled sets, losses, weights and metrics for the same seed.

1. **Class-aware co-divide** (``divide``). n_c = number of training samples with noisy label c.
   - ``global``: DivideMix (one GMM over all normalised losses, one τ, top-1 % fallback).
   - ``adaptive``: the global GMM posterior w, per-class thresholds t_c and quotas q_c.
   - ``per_class`` (default): as ``adaptive``, but w of the samples of each class with n_c ≥ 20
     is the posterior of a GMM (§3.11 settings) fitted to that class's losses alone; classes with
     fewer samples or a degenerate fit (component means closer than 1e-3) keep the global w.
     Measured cost: at low noise a per-class GMM splits a mostly clean class in two (RetinaMNIST
     symmetric 0.2 seed 1: grade 1's selection recall 43 % against DivideMix's 90 %, balanced
     accuracy 30.8 against 37.6); ``adaptive`` recovers 35.1 there but is no better on the
     other cells measured (docs/benchmark_results.md, medssl decision).
   - ``rescue``: as ``adaptive`` (global w), except that a class with n_c ≥ min_class_size whose
     share of samples above t_c under the global w is below ``RESCUE_RATIO`` (0.5) × that share
     over all samples — a class the global division nearly empties — gets its own GMM posterior
     as in ``per_class``. Meant to keep DivideMix's global split of mostly clean classes at low
     noise and rescue the minority classes the global GMM drops at high noise. Measured (four
     imbalanced cells): level with ``adaptive`` (−0.04 points), +0.64 over ``per_class``; the
     switch flips from epoch to epoch at high noise and a rescued mostly-noisy class is labelled
     almost whole (RetinaMNIST symmetric 0.5: grade 1 175 of ~183 samples, 9 % precise), so it
     is not the default.
   - t_c = clamp(t_tail + (t_head − t_tail)·α_c, 0.2, 0.95), α_c = (log n_c − log n_min) /
     (log n_max − log n_min) over the classes present (α_c = 0.5 when all n_c are equal), t_head
     0.6, t_tail 0.4: head classes, whose noisy labels dominate the loss ranking, get the stricter
     threshold.
   - L_c = {i : ỹ_i = c, w_i > t_c}; if |L_c| < q_c = max(min(n_c, 8), ⌈0.05·n_c⌉), the
     highest-w samples of class c are added. No class is ever emptied (DivideMix's global GMM drops
     whole minority classes, e.g. RetinaMNIST grades 1, 3, 4, from the first co-divide on).
2. **Labelled loss** (``lx_loss``): ``ce`` (default) DivideMix's soft CE on the mixed soft
   targets Y' (B, C); ``sce_soft`` L_x = α·H(Y', p) + β·mean_rows(−Σ_c p_c log max(Y'_c, 1e-4)),
   α = β = 1 (§8's robust loss); ``sce_argmax``: SCE on argmax Y' (the reference's DR trace).
   The default was ``sce_soft`` until measured: on six imbalanced cells (fast preset) every other
   component with ``ce`` beat the same with ``sce_soft`` in five, by +3.2 balanced-accuracy points
   on average (soft SCE makes L_x 3-5× larger and shrinks the weight of L_u and the regulariser);
   docs/benchmark_results.md, medssl decision.
3. **Imbalance handling** (``imbalance``, ``prior``). π̂ (C,) = add-one-smoothed frequencies of the
   noisy labels of the labelled set the net is trained on (all N during warm-up).
   - ``logit_adjust`` (default; Menon et al., 2021): every training-time softmax (warm-up CE,
     co-refinement, co-guessing, L_x, L_u, regulariser) sees z + log π̂; predictions and the
     co-divide losses use the raw logits z, so the networks learn class-balanced scores (this
     favours balanced accuracy over plain accuracy; both are reported). In warm-up this is the
     logit-adjusted CE, i.e. a class-balanced warm-up.
   - ``balanced_sampler``: the labelled loader draws |L| samples with replacement, weights ∝
     1/|L_c|; ``none``: DivideMix's shuffle.
   - ``prior: labelled_freq`` (default): the regulariser Σ π log(π / p̄) uses π̂ instead of the
     uniform π (``uniform``: DivideMix), so it no longer pushes predictions towards balance that
     the labelled set does not have.

Per epoch the diagnostics add ``medssl``: t_c, q_c, and per net the classes fitted with their own
GMM and the classes whose labelled set was filled up to its quota.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from lnmbench.errors import ConfigError
from lnmbench.methods.base import register_method
from lnmbench.methods.common.gmm_divide import (
    EMPTY_UNLABELLED,
    Split,
    fit_clean_posterior,
    gmm_random_state,
)
from lnmbench.methods.common.soft_targets import soft_cross_entropy
from lnmbench.methods.dividemix import NETS, DivideMix, DivideMixHparams
from lnmbench.methods.sce import sce_loss

__all__ = [
    "MedSSL",
    "MedSSLHparams",
    "class_quotas",
    "class_thresholds",
    "quota_split",
    "smoothed_frequencies",
    "soft_sce_loss",
]

DIVIDES = ("per_class", "adaptive", "rescue", "global")
MEDSSL_LX_LOSSES = ("sce_soft", "ce", "sce_argmax")
IMBALANCES = ("logit_adjust", "balanced_sampler", "none")
PRIORS = ("labelled_freq", "uniform")
DEGENERATE_GAP = 1e-3  # per-class GMM whose component means are closer than this: use global w
# rescue: a class gets its own GMM when its share above t_c under the global w is below this
# fraction of the share over all samples (a constant, not an hparam: run hashes stay as they were)
RESCUE_RATIO = 0.5


@dataclass
class MedSSLHparams(DivideMixHparams):
    """DivideMix's hyperparameters plus the three components (defaults: all on)."""

    method_label: ClassVar[str] = "medssl"
    lx_losses: ClassVar[tuple[str, ...]] = MEDSSL_LX_LOSSES

    lx_loss: str = "ce"  # ce (DivideMix's soft CE) | sce_soft | sce_argmax
    divide: str = "per_class"  # per_class | adaptive | rescue | global (DivideMix)
    imbalance: str = "logit_adjust"  # logit_adjust | balanced_sampler | none
    prior: str = "labelled_freq"  # labelled_freq | uniform (DivideMix)
    t_head: float = 0.6  # t_c of the most frequent class
    t_tail: float = 0.4  # t_c of the least frequent class
    min_class_size: int = 20  # classes with fewer samples keep the global GMM posterior
    quota_min: int = 8  # q_c = max(min(n_c, quota_min), ⌈quota_fraction·n_c⌉)
    quota_fraction: float = 0.05
    sce_alpha: float = 1.0  # α of sce_soft (CE term)
    sce_beta: float = 1.0  # β of sce_soft (reverse-CE term)

    def __post_init__(self) -> None:
        super().__post_init__()
        for key, known in (
            ("divide", DIVIDES),
            ("imbalance", IMBALANCES),
            ("prior", PRIORS),
        ):
            value = getattr(self, key)
            if value not in known:
                raise ConfigError(f"medssl: unknown {key} {value!r}; known: {', '.join(known)}")
        if not (0.0 <= self.t_tail <= 1.0 and 0.0 <= self.t_head <= 1.0):
            raise ConfigError(
                f"medssl: t_head and t_tail must be in [0, 1], got {self.t_head}, {self.t_tail}"
            )
        if self.min_class_size < 2 or self.quota_min < 0 or not 0 <= self.quota_fraction <= 1:
            raise ConfigError(
                "medssl: min_class_size must be >= 2, quota_min >= 0 and quota_fraction in "
                f"[0, 1], got {self.min_class_size}, {self.quota_min}, {self.quota_fraction}"
            )
        if self.sce_alpha < 0 or self.sce_beta < 0:
            raise ConfigError(
                f"medssl: sce_alpha and sce_beta must be >= 0, got {self.sce_alpha}, "
                f"{self.sce_beta}"
            )


# ----- the components as pure functions ---------------------------------------------------------
def class_thresholds(
    counts: np.ndarray, t_head: float = 0.6, t_tail: float = 0.4, lo: float = 0.2, hi: float = 0.95
) -> np.ndarray:
    """t_c (C,) = clamp(t_tail + (t_head − t_tail)·α_c, lo, hi) from class counts n_c (C,).

    α_c = (log n_c − log n_min) / (log n_max − log n_min) over the classes with n_c > 0; 0.5 when
    all those counts are equal; classes with n_c = 0 get t_tail (they have no samples).
    """
    n = np.asarray(counts, dtype=np.float64).reshape(-1)
    present = n > 0
    alpha = np.zeros_like(n)
    if present.any():
        log_n = np.log(n[present])
        span = log_n.max() - log_n.min()
        alpha[present] = (log_n - log_n.min()) / span if span > 0 else 0.5
    return np.clip(t_tail + (t_head - t_tail) * alpha, lo, hi)


def class_quotas(
    counts: np.ndarray, quota_min: int = 8, quota_fraction: float = 0.05
) -> np.ndarray:
    """q_c (C,) int = max(min(n_c, quota_min), ⌈quota_fraction·n_c⌉) from class counts (C,)."""
    n = np.asarray(counts, dtype=np.int64).reshape(-1)
    frac = np.array([math.ceil(quota_fraction * v - 1e-9) for v in n], dtype=np.int64)
    return np.maximum(np.minimum(n, quota_min), frac)


def quota_split(
    w: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, quotas: np.ndarray
) -> tuple[Split, list[int]]:
    """L = ∪_c {ỹ = c, w > t_c}, each class filled up to q_c with its highest-w samples.

    w (N,) clean probabilities, labels (N,) noisy labels, thresholds (C,), quotas (C,) ->
    (:class:`Split`, the classes that were filled up). Ties: lower index first.
    """
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    labelled = w > np.asarray(thresholds)[labels]
    filled = []
    for c, q in enumerate(np.asarray(quotas)):
        members = np.flatnonzero(labels == c)
        if q <= 0 or int(labelled[members].sum()) >= q:
            continue
        best = members[np.argsort(-w[members], kind="stable")[: int(q)]]
        labelled[best] = True
        filled.append(c)
    fallback = EMPTY_UNLABELLED if labelled.all() else None
    return Split(labelled, w, fallback), filled


def smoothed_frequencies(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """π̂ (C,) = (count_c + 1) / (M + C) of the labels (M,): add-one-smoothed frequencies."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    return (counts + 1.0) / (counts.sum() + num_classes)


def soft_sce_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float, beta: float, floor: float = 1e-4
) -> torch.Tensor:
    """α·H(Y', p) + β·mean_rows(−Σ_c p_c log max(Y'_c, floor)); logits, targets (B, C) -> scalar."""
    p = logits.softmax(dim=1)
    rce = -(p * targets.clamp_min(floor).log()).sum(dim=1).mean()
    return alpha * soft_cross_entropy(logits, targets) + beta * rce


# ----- the method -------------------------------------------------------------------------------
@register_method("medssl")
class MedSSL(DivideMix):
    """DivideMix + class-aware co-divide, robust L_x, logit adjustment / balanced sampling."""

    Hparams = MedSSLHparams
    description = (
        "DivideMix + per-class GMM co-divide with class quotas, logit adjustment, "
        "labelled-frequency prior (imbalanced medical data)"
    )
    hp: MedSSLHparams

    def setup(self) -> None:
        super().setup()
        hp, c = self.hp, self.ctx.num_classes
        counts = np.bincount(self.noisy_np, minlength=c)
        self.class_counts = counts
        self.thresholds = class_thresholds(counts, hp.t_head, hp.t_tail)
        self.quotas = class_quotas(counts, hp.quota_min, hp.quota_fraction)
        self.class_info: dict[str, dict[str, list[int]]] = {}
        self.set_class_prior(self.noisy_np)

    def set_class_prior(self, labels: np.ndarray) -> None:
        """π̂ and log π̂ (C,) on the device from the labels (M,) of the set being trained on."""
        pi = smoothed_frequencies(labels, self.ctx.num_classes)
        self.class_prior = torch.from_numpy(pi).float().to(self.ctx.device)
        self.log_class_prior = self.class_prior.log()

    # ----- co-divide ----------------------------------------------------------------------
    def clean_probability(self, name: str, losses: np.ndarray, epoch: int) -> np.ndarray:
        """Global w (N,) (DivideMix); ``per_class``: each class with n_c ≥ min_class_size and a
        non-degenerate fit gets the posterior of its own GMM; ``rescue``: only those classes whose
        share above t_c under the global w is below RESCUE_RATIO × the share of all samples."""
        w = super().clean_probability(name, losses, epoch)
        fitted: list[int] = []
        if self.hp.divide in ("per_class", "rescue"):
            kept = w > self.thresholds[self.noisy_np]  # (N,) the global division's labelled set
            emptied = kept.mean() * RESCUE_RATIO
            w = w.copy()
            k = NETS.index(name)
            for c in range(self.ctx.num_classes):
                members = np.flatnonzero(self.noisy_np == c)
                if len(members) < self.hp.min_class_size:
                    continue
                if self.hp.divide == "rescue" and kept[members].mean() >= emptied:
                    continue
                rs = gmm_random_state(self.ctx.seed, epoch, k, 1 + c)
                post = fit_clean_posterior(losses[members], rs)
                if post.degenerate or post.means[1] - post.means[0] < DEGENERATE_GAP:
                    continue
                w[members] = post.prob
                fitted.append(c)
        self.class_info.setdefault(name, {})["gmm_classes"] = fitted
        return w

    def split(self, name: str, w: np.ndarray) -> Split:
        """``global``: DivideMix's {w > τ}; otherwise {w > t_ỹ} with per-class quotas."""
        if self.hp.divide == "global":
            self.class_info.setdefault(name, {})["quota_filled"] = []
            return super().split(name, w)
        split, filled = quota_split(w, self.noisy_np, self.thresholds, self.quotas)
        self.class_info.setdefault(name, {})["quota_filled"] = filled
        return split

    # ----- training -----------------------------------------------------------------------
    def begin_phase(self, name: str, division: Split | None) -> None:
        """π̂ from the noisy labels of the labelled set net ``name`` trains on (all in warm-up)."""
        labels = self.noisy_np if division is None else self.noisy_np[division.labelled]
        self.set_class_prior(labels)

    def labelled_order(self, labelled: torch.Tensor) -> torch.Tensor:
        """``balanced_sampler``: |L| draws with replacement, weights ∝ 1/|L_c|; else DivideMix's."""
        if self.hp.imbalance != "balanced_sampler" or len(labelled) == 0:
            return super().labelled_order(labelled)
        labels = torch.from_numpy(self.noisy_np[labelled.numpy()])
        per_class = torch.bincount(labels, minlength=self.ctx.num_classes).double()
        weights = 1.0 / per_class[labels]
        draws = torch.multinomial(
            weights, len(labelled), replacement=True, generator=self.ctx.generator
        )
        return labelled[draws]

    def train_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """z + log π̂ with ``logit_adjust`` (training-time softmaxes only); z otherwise."""
        if self.hp.imbalance == "logit_adjust":
            return logits + self.log_class_prior
        return logits

    def labelled_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """L_x on the labelled mixed rows (B, C): soft SCE, DivideMix's soft CE or SCE on argmax."""
        if self.hp.lx_loss == "sce_soft":
            return soft_sce_loss(logits, targets, self.hp.sce_alpha, self.hp.sce_beta)
        if self.hp.lx_loss == "sce_argmax":
            return sce_loss(logits, targets.argmax(dim=1), 1.0, 1.0, 1e-4)
        return soft_cross_entropy(logits, targets)

    def prior(self, name: str) -> torch.Tensor:
        """π (C,): π̂ of the labelled set (``labelled_freq``) or uniform (DivideMix)."""
        if self.hp.prior == "labelled_freq":
            return self.class_prior
        return super().prior(name)

    # ----- diagnostics, checkpointing -----------------------------------------------------
    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        out = super().on_epoch_end(epoch)
        out["medssl"] = {
            "thresholds": [float(t) for t in self.thresholds],
            "quotas": [int(q) for q in self.quotas],
            "by_net": {k: dict(v) for k, v in self.class_info.items()},
        }
        return out

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "class_info": dict(self.class_info)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.class_info = {k: dict(v) for k, v in state.get("class_info", {}).items()}
