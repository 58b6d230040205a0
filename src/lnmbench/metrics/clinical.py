"""Clinical metrics on the test split (``docs/methods.md`` §7).

All functions are pure functions of numpy arrays (torch tensors are accepted and converted with
``np.asarray(x.detach().cpu())``). Shapes: ``N`` samples, ``C`` classes.

- ``y_true``, ``y_pred``: ``(N,)`` integer labels in ``[0, C)``;
- ``y_prob``: ``(N, C)`` float probabilities, each row summing to 1 (within 1e-3).

``C'`` is the set of classes present in ``y_true``. Metrics that are undefined (for example the
AUC when only one class is present) are returned as ``float('nan')``, never 0 or 1. Bad input
(wrong shapes, length mismatch, labels outside ``[0, C)``, NaN/inf, empty arrays, probability rows
not summing to 1) raises :class:`lnmbench.errors.ConfigError`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

from lnmbench.errors import ConfigError
from lnmbench.metrics.validation import (
    ArrayInput,
    check_num_classes,
    label_pair,
    mask_array,
    same_length,
    score_array,
    true_prob_pair,
)

__all__ = [
    "accuracy",
    "balanced_accuracy",
    "classification_report",
    "confusion_matrix",
    "expected_calibration_error",
    "fpr_at_95_tpr",
    "fpr_at_tpr_binary",
    "macro_auc_ovr",
    "macro_f1",
    "quadratic_weighted_kappa",
    "sensitivity_specificity",
]

_TPR_EPS = 1e-9


def _nanmean(values: np.ndarray) -> float:
    """Mean of the non-nan entries; nan when there are none (no warning)."""
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


# --------------------------------------------------------------------------------------------------
# kernels on validated arrays
# --------------------------------------------------------------------------------------------------


def _confusion(yt: np.ndarray, yp: np.ndarray, c: int) -> np.ndarray:
    return np.bincount(yt * c + yp, minlength=c * c).reshape(c, c).astype(np.int64, copy=False)


def _sens_spec_from_cm(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cmf = cm.astype(np.float64)
    n = cmf.sum()
    tp = np.diag(cmf)
    fn = cmf.sum(axis=1) - tp
    fp = cmf.sum(axis=0) - tp
    tn = n - tp - fn - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        spec = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
    return sens, spec


def _balanced_from_cm(cm: np.ndarray) -> float:
    sens, _ = _sens_spec_from_cm(cm)
    present = cm.sum(axis=1) > 0
    return float(sens[present].mean())


def _macro_f1_from_cm(cm: np.ndarray) -> float:
    cmf = cm.astype(np.float64)
    tp = np.diag(cmf)
    fn = cmf.sum(axis=1) - tp
    fp = cmf.sum(axis=0) - tp
    present = (tp + fn) > 0
    # 2·PPV·sens/(PPV + sens) == 2TP/(2TP + FP + FN); for a present class the denominator is > 0,
    # and it gives 0 whenever PPV or sens is 0 or PPV is undefined (TP + FP = 0).
    f1 = 2 * tp[present] / (2 * tp[present] + fp[present] + fn[present])
    return float(f1.mean())


def _qwk_from_cm(cm: np.ndarray) -> float:
    c = cm.shape[0]
    if c < 2:
        return float("nan")
    obs = cm.astype(np.float64)
    n = obs.sum()
    expected = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / n
    idx = np.arange(c, dtype=np.float64)
    w = (idx[:, None] - idx[None, :]) ** 2 / (c - 1) ** 2
    den = float((w * expected).sum())
    if den == 0.0:
        return float("nan")
    return float(1.0 - (w * obs).sum() / den)


def mann_whitney(ranks: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """AUC from average ranks. ranks: (N,) or (N, K); pos: same shape, bool. Returns (K,) or ()."""
    n_pos = pos.sum(axis=0).astype(np.float64)
    n_neg = pos.shape[0] - n_pos
    rank_sum = np.where(pos, ranks, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _auc_ovr(yt: np.ndarray, prob: np.ndarray) -> float:
    c = prob.shape[1]
    onehot = yt[:, None] == np.arange(c)[None, :]
    ranks = rankdata(prob, axis=0)  # average ranks: ties count 1/2
    return _nanmean(mann_whitney(ranks, onehot))


def _fpr_at_tpr(pos_scores: np.ndarray, neg_scores: np.ndarray, tpr: float) -> float:
    n_pos = pos_scores.size
    if n_pos == 0 or neg_scores.size == 0:
        return float("nan")
    # t = largest threshold with #{pos >= t} >= k, k = ceil(tpr * n_pos): the k-th largest score.
    k = min(max(math.ceil(tpr * n_pos - _TPR_EPS), 1), n_pos)
    t = np.partition(pos_scores, n_pos - k)[n_pos - k]
    return float(np.mean(neg_scores >= t))


def _fpr_ovr(yt: np.ndarray, prob: np.ndarray, tpr: float) -> float:
    c = prob.shape[1]
    out = np.full(c, np.nan)
    for k in range(c):
        pos = yt == k
        out[k] = _fpr_at_tpr(prob[pos, k], prob[~pos, k], tpr)
    return _nanmean(out)


def _ece(yt: np.ndarray, prob: np.ndarray, n_bins: int) -> float:
    conf = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == yt).astype(np.float64)
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    # side="left": bin m holds conf in (edges[m-1], edges[m]]
    bins = np.clip(np.searchsorted(edges, conf, side="left"), 1, n_bins)
    sum_conf = np.bincount(bins, weights=conf, minlength=n_bins + 1)
    sum_acc = np.bincount(bins, weights=correct, minlength=n_bins + 1)
    # Σ_m |B_m|/N · |acc(B_m) − conf(B_m)| = Σ_m |Σ_B acc − Σ_B conf| / N
    return float(np.abs(sum_acc - sum_conf).sum() / yt.size)


def _check_tpr(tpr: float) -> float:
    if not (isinstance(tpr, int | float | np.floating) and 0.0 < float(tpr) <= 1.0):
        raise ConfigError(f"tpr must be a number in (0, 1], got {tpr!r}")
    return float(tpr)


# --------------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------------


def confusion_matrix(y_true: ArrayInput, y_pred: ArrayInput, num_classes: int) -> np.ndarray:
    """Confusion counts, shape (C, C) int64; rows are true classes, columns predicted classes.

    y_true, y_pred: (N,) int in [0, C).
    """
    yt, yp, c = label_pair(y_true, y_pred, check_num_classes(num_classes))
    return _confusion(yt, yp, c)


def accuracy(y_true: ArrayInput, y_pred: ArrayInput) -> float:
    """Sample-weighted accuracy (1/N) Σ 1[ŷ_i = y_i]. y_true, y_pred: (N,) int."""
    yt, yp, _ = label_pair(y_true, y_pred, None)
    return float(np.mean(yt == yp))


def balanced_accuracy(
    y_true: ArrayInput, y_pred: ArrayInput, num_classes: int | None = None
) -> float:
    """Mean sensitivity over the classes present in y_true. y_true, y_pred: (N,) int.

    ``num_classes`` defaults to max label + 1 and is used for range checking only.
    """
    yt, yp, c = label_pair(y_true, y_pred, num_classes)
    return _balanced_from_cm(_confusion(yt, yp, c))


def macro_f1(y_true: ArrayInput, y_pred: ArrayInput, num_classes: int | None = None) -> float:
    """Mean F1 over the classes present in y_true (C'); F1_c = 0 when undefined.

    y_true, y_pred: (N,) int. Unlike scikit-learn's default label set (union of true and predicted
    labels), classes that are only predicted are not averaged over; equals
    ``f1_score(..., labels=present, average=None, zero_division=0).mean()``.
    """
    yt, yp, c = label_pair(y_true, y_pred, num_classes)
    return _macro_f1_from_cm(_confusion(yt, yp, c))


def sensitivity_specificity(
    y_true: ArrayInput, y_pred: ArrayInput, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class one-vs-rest sensitivity TP/(TP+FN) and specificity TN/(TN+FP).

    y_true, y_pred: (N,) int. Returns two (C,) float64 arrays; nan where the denominator is 0.
    """
    yt, yp, c = label_pair(y_true, y_pred, check_num_classes(num_classes))
    return _sens_spec_from_cm(_confusion(yt, yp, c))


def macro_auc_ovr(y_true: ArrayInput, y_prob: ArrayInput) -> float:
    """Macro one-vs-rest ROC-AUC: mean over present classes of ROC-AUC(1[y = c], p_c).

    y_true: (N,) int in [0, C); y_prob: (N, C) probabilities. Ties count 1/2. Classes without
    negatives are skipped; nan when fewer than 2 classes are present.
    """
    yt, prob = true_prob_pair(y_true, y_prob)
    return _auc_ovr(yt, prob)


def fpr_at_tpr_binary(is_positive: ArrayInput, score: ArrayInput, tpr: float = 0.95) -> float:
    """FPR at the given TPR for a binary problem (e.g. noise detection; §7 rule).

    is_positive: (N,) bool; score: (N,) float, higher = more positive. t = the largest threshold
    with at least ``tpr`` of the positives having score >= t; returns the fraction of negatives
    with score >= t, or nan when there are no positives or no negatives.
    """
    tpr = _check_tpr(tpr)
    pos = mask_array(is_positive, "is_positive")
    s = score_array(score, "score")
    same_length((pos, "is_positive"), (s, "score"))
    return _fpr_at_tpr(s[pos], s[~pos], tpr)


def fpr_at_95_tpr(y_true: ArrayInput, y_prob: ArrayInput) -> float:
    """Macro mean over present classes of the one-vs-rest FPR at 95 % TPR (§7).

    y_true: (N,) int; y_prob: (N, C). Per class c: t_c = the largest threshold such that >= 95 %
    of the positives have p_c >= t_c; FPR_c = fraction of negatives with p_c >= t_c. Classes
    without negatives are skipped; nan when fewer than 2 classes are present.
    """
    yt, prob = true_prob_pair(y_true, y_prob)
    return _fpr_ovr(yt, prob, 0.95)


def expected_calibration_error(y_true: ArrayInput, y_prob: ArrayInput, n_bins: int = 15) -> float:
    """ECE with confidence max_c p_c and equal-width bins ((m−1)/n_bins, m/n_bins], m = 1…n_bins.

    y_true: (N,) int; y_prob: (N, C). ECE = Σ_m (|B_m|/N)·|acc(B_m) − conf(B_m)|, with the
    prediction argmax_c p_c (first maximum on ties).
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ConfigError(f"n_bins must be a positive integer, got {n_bins!r}")
    yt, prob = true_prob_pair(y_true, y_prob)
    return _ece(yt, prob, int(n_bins))


def quadratic_weighted_kappa(y_true: ArrayInput, y_pred: ArrayInput, num_classes: int) -> float:
    """Quadratic weighted kappa κ = 1 − Σ w_ij O_ij / Σ w_ij E_ij (§7), for ordinal grades.

    y_true, y_pred: (N,) int in [0, C). w_ij = (i − j)²/(C − 1)², O = confusion counts, E = outer
    product of row and column totals / N. nan when C < 2 or Σ w E = 0 (a single grade everywhere).
    """
    yt, yp, c = label_pair(y_true, y_pred, check_num_classes(num_classes))
    return _qwk_from_cm(_confusion(yt, yp, c))


def classification_report(
    y_true: ArrayInput, y_prob: ArrayInput, num_classes: int, ordinal: bool = False
) -> dict[str, float | list[float]]:
    """All clinical metrics of §7 in one JSON-serialisable dict (plain Python floats).

    y_true: (N,) int in [0, C); y_prob: (N, C) probabilities; y_pred = argmax y_prob.
    Keys: accuracy, balanced_accuracy, macro_f1, macro_auc, fpr95, ece, per_class_sensitivity
    (list of C), per_class_specificity (list of C), and qwk when ``ordinal`` is true.
    Undefined values (scalars and list entries) are ``float('nan')``; ``json.dumps`` writes them
    as ``NaN`` (its default ``allow_nan=True``).
    """
    c = check_num_classes(num_classes)
    yt, prob = true_prob_pair(y_true, y_prob, c)
    yp = prob.argmax(axis=1)
    cm = _confusion(yt, yp, c)
    sens, spec = _sens_spec_from_cm(cm)
    report: dict[str, float | list[float]] = {
        "accuracy": float(np.mean(yt == yp)),
        "balanced_accuracy": _balanced_from_cm(cm),
        "macro_f1": _macro_f1_from_cm(cm),
        "macro_auc": _auc_ovr(yt, prob),
        "fpr95": _fpr_ovr(yt, prob, 0.95),
        "ece": _ece(yt, prob, 15),
        "per_class_sensitivity": [float(v) for v in sens],
        "per_class_specificity": [float(v) for v in spec],
    }
    if ordinal:
        report["qwk"] = _qwk_from_cm(cm)
    return report
