"""Per-sample suspicion signals from the cross-fit records, and how they are combined.

Every signal is an (N,) float64 **suspicion** (higher = the given label is more likely wrong),
computed from :class:`~lnmbench.audit.crossfit.FoldRecord` s without any clean label. With K
folds each sample is a training sample of K − 1 fold networks (in-sample dynamics, recorded
during their training passes) and the held-out sample of one (out-of-fold probabilities).

- ``oof``: 1 − p̂_ỹ, p̂ = the out-of-fold softmax of the last epoch (confident learning's
  self-confidence on the same probabilities).
- ``oof_ens``: 1 − mean over the last half of the epochs of the held-out p_ỹ (a temporal
  ensemble of the out-of-fold predictions).
- ``oof_margin``: −(p̄_ỹ − max_{c≠ỹ} p̄_c) with p̄ that temporal ensemble (the out-of-fold
  normalised margin: it asks whether another class beats the given one, not only how low p_ỹ is).
- ``small_loss``: mean in-sample cross-entropy on the given label over all epochs and the K − 1
  networks that trained on the sample (the small-loss criterion of Co-teaching, integrated over
  training).
- ``aum``: −(area under the margin, Pleiss et al. 2020): minus the mean in-sample logit margin
  z_ỹ − max_{c≠ỹ} z_c over epochs and networks.
- ``gmm``: 1 − DivideMix's clean probability: per network and epoch, a 2-component GMM on the
  min-max normalised in-sample losses (``methods.common.gmm_divide``); the posterior of the
  low-loss component averaged over epochs and networks.
- ``disc``: DISC's per-sample dynamic threshold (§3.10): per network an EMA threshold
  c_i ← m·c_i + (1 − m)·max_c p_i (start 1/C) updated after each epoch, and the clean-ness
  p_ỹ − c_i (pre-update threshold); suspicion = −its mean over epochs and networks.

``combine`` ranks each chosen signal (average ranks scaled to (0, 1]) and averages the ranks:
a rank average, parameter-free, fitted to nothing. By default it combines ``oof_margin`` (what
the held-out networks say) and ``aum`` (how hard the label was to fit for the networks that
trained on it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

from lnmbench.audit.crossfit import FoldRecord, out_of_fold_probs
from lnmbench.errors import ConfigError
from lnmbench.methods.common.gmm_divide import (
    fit_clean_posterior,
    gmm_random_state,
    normalise_losses,
)

SignalFn = Callable[[list[FoldRecord], np.ndarray, int], np.ndarray]


def _rows(n: int) -> np.ndarray:
    return np.arange(n)


def _in_sample_mean(records: list[FoldRecord], n: int, field: str) -> np.ndarray:
    """Mean over folds (that trained on i) and epochs of an in-sample (E, n_k) array -> (N,)."""
    total = np.zeros(n, np.float64)
    count = np.zeros(n, np.float64)
    for r in records:
        arr = getattr(r, field).astype(np.float64)
        total[r.train_idx] += arr.sum(axis=0)
        count[r.train_idx] += arr.shape[0]
    return total / np.maximum(count, 1)


def signal_oof(records: list[FoldRecord], labels: np.ndarray, seed: int) -> np.ndarray:
    p = out_of_fold_probs(records, labels.size)
    return 1.0 - p[_rows(labels.size), labels].astype(np.float64)


def heldout_ensemble(records: list[FoldRecord], n: int) -> np.ndarray:
    """(N, C) float64: mean held-out softmax over the last half of the epochs (e ≥ ⌊E/2⌋)."""
    epochs, _, c = records[0].heldout_probs.shape
    probs = np.zeros((n, c), np.float64)
    for r in records:
        probs[r.test_idx] = r.heldout_probs[epochs // 2 :].astype(np.float64).mean(axis=0)
    return probs


def signal_oof_ens(records: list[FoldRecord], labels: np.ndarray, seed: int) -> np.ndarray:
    p = heldout_ensemble(records, labels.size)
    return 1.0 - p[_rows(labels.size), labels]


def signal_oof_margin(records: list[FoldRecord], labels: np.ndarray, seed: int) -> np.ndarray:
    p = heldout_ensemble(records, labels.size)
    rows = _rows(labels.size)
    given = p[rows, labels]
    p[rows, labels] = -np.inf
    return -(given - p.max(axis=1))


def signal_small_loss(records: list[FoldRecord], labels: np.ndarray, seed: int) -> np.ndarray:
    return _in_sample_mean(records, labels.size, "train_loss")


def signal_aum(records: list[FoldRecord], labels: np.ndarray, seed: int) -> np.ndarray:
    return -_in_sample_mean(records, labels.size, "train_margin")


def signal_gmm(records: list[FoldRecord], labels: np.ndarray, seed: int) -> np.ndarray:
    total = np.zeros(labels.size, np.float64)
    count = np.zeros(labels.size, np.float64)
    for k, r in enumerate(records):
        for e in range(r.train_loss.shape[0]):
            w = fit_clean_posterior(
                normalise_losses(r.train_loss[e], "audit losses"), gmm_random_state(seed, k, e)
            ).prob
            total[r.train_idx] += w
            count[r.train_idx] += 1
    return 1.0 - total / np.maximum(count, 1)


DISC_MOMENTUM = 0.9


def signal_disc(records: list[FoldRecord], labels: np.ndarray, seed: int) -> np.ndarray:
    total = np.zeros(labels.size, np.float64)
    count = np.zeros(labels.size, np.float64)
    c = records[0].heldout_probs.shape[2]
    for r in records:
        thr = np.full(len(r.train_idx), 1.0 / c)
        for e in range(r.train_conf.shape[0]):
            total[r.train_idx] += r.train_conf[e] - thr
            count[r.train_idx] += 1
            thr = DISC_MOMENTUM * thr + (1 - DISC_MOMENTUM) * r.train_maxp[e]
    return -(total / np.maximum(count, 1))


SIGNALS: dict[str, SignalFn] = {
    "oof": signal_oof,
    "oof_ens": signal_oof_ens,
    "oof_margin": signal_oof_margin,
    "small_loss": signal_small_loss,
    "aum": signal_aum,
    "gmm": signal_gmm,
    "disc": signal_disc,
}
DEFAULT_SIGNALS = tuple(SIGNALS)
# The score's default signals: chosen on the RetinaMNIST cells of benchmarks/audit_vs_cleanlab.py
# (BreastMNIST and BloodMNIST held out); see docs/benchmark_results.md.
DEFAULT_COMBINED = ("oof_margin", "aum")


def parse_signals(names: str | Sequence[str] | None) -> tuple[str, ...]:
    """'oof,aum' or a list -> validated tuple of signal names (unknown names list the known);
    None -> the default combined set."""
    if names is None:
        return DEFAULT_COMBINED
    items = names.split(",") if isinstance(names, str) else list(names)
    items = [s.strip() for s in items if s.strip()]
    if not items:
        raise ConfigError(f"no signals given; known: {', '.join(SIGNALS)}")
    unknown = [s for s in items if s not in SIGNALS]
    if unknown:
        raise ConfigError(f"unknown signal(s) {', '.join(unknown)}; known: {', '.join(SIGNALS)}")
    return tuple(dict.fromkeys(items))


def compute_signals(
    records: list[FoldRecord], labels: np.ndarray, names: Sequence[str], seed: int = 0
) -> dict[str, np.ndarray]:
    """{name: (N,) float64 suspicion} for the named signals."""
    y = np.asarray(labels, dtype=np.int64)
    return {name: SIGNALS[name](records, y, seed) for name in names}


def rank01(score: np.ndarray) -> np.ndarray:
    """Average ranks scaled to (0, 1]: (N,) float64, ties share their mean rank."""
    return rankdata(score) / max(len(score), 1)


def combine(signals: dict[str, np.ndarray], names: Sequence[str] | None = None) -> np.ndarray:
    """Combined suspicion (N,) float64: the mean of the signals' scaled ranks."""
    use = list(signals) if names is None else list(names)
    if not use:
        raise ConfigError("cannot combine zero signals")
    return np.mean([rank01(signals[s]) for s in use], axis=0)
