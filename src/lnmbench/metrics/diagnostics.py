"""Learning-with-noisy-labels diagnostics on the training split (``docs/methods.md`` §6).

These need the clean labels and so are computed by the framework, never by a method. Shapes:
``N`` samples, ``C`` classes; ``noisy`` (ỹ) and ``clean`` (y) are ``(N,)`` int labels in
``[0, C)``; K = {i : ỹ_i = y_i} is the clean set. Undefined ratios (empty denominators) are
returned as ``float('nan')`` ("n/a"), never 0 or 1. Torch tensors are accepted. Bad input raises
:class:`lnmbench.errors.ConfigError`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from lnmbench.errors import ConfigError
from lnmbench.metrics.clinical import mann_whitney
from lnmbench.metrics.validation import (
    ArrayInput,
    check_num_classes,
    label_array,
    mask_array,
    same_length,
    score_array,
    to_numpy,
)

__all__ = [
    "empirical_transition_matrix",
    "label_recovery_accuracy",
    "noise_detection_auroc",
    "purified_ratio",
    "selection_stats",
    "transition_estimation_error",
]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def selection_stats(
    selected: ArrayInput,
    noisy: ArrayInput,
    clean: ArrayInput,
    num_classes: int,
    seen: ArrayInput | None = None,
) -> dict[str, float | int | list[float] | list[int]]:
    """Selection precision ("clean ratio") and recall ("coverage ratio") of a selected set S (§6.1).

    selected: (N,) bool, S; noisy: (N,) int, ỹ; clean: (N,) int, y; seen: (N,) bool, the samples
    seen in the epoch (U_seen; default all). S must be a subset of U_seen.

    Returns a dict of plain Python values:
    - ``precision`` = |S ∩ K| / |S|; ``recall`` = |S ∩ K| / |K ∩ U_seen|;
    - ``n_selected`` = |S|;
    - ``per_class_precision`` (list of C): |S ∩ K ∩ {ỹ=c}| / |S ∩ {ỹ=c}|;
    - ``per_class_recall`` (list of C): |S ∩ K ∩ {ỹ=c}| / |K ∩ {ỹ=c} ∩ U_seen|;
    - ``per_class_selected`` (list of C ints): |S ∩ {ỹ=c}|.
    Per-class quantities are indexed by the noisy label. Empty denominators give nan.
    """
    c = check_num_classes(num_classes)
    sel = mask_array(selected, "selected")
    yn = label_array(noisy, "noisy", c)
    yc = label_array(clean, "clean", c)
    pairs = [(sel, "selected"), (yn, "noisy"), (yc, "clean")]
    if seen is None:
        seen_m = np.ones_like(sel)
    else:
        seen_m = mask_array(seen, "seen")
        pairs.append((seen_m, "seen"))
    same_length(*pairs)
    if np.any(sel & ~seen_m):
        raise ConfigError("selected contains samples that are not in seen; S must be within U_seen")

    is_clean = yn == yc
    sel_clean = sel & is_clean
    per_sel = np.bincount(yn[sel], minlength=c)
    per_sel_clean = np.bincount(yn[sel_clean], minlength=c)
    per_clean_seen = np.bincount(yn[is_clean & seen_m], minlength=c)
    n_sel = int(sel.sum())
    n_sel_clean = int(sel_clean.sum())
    return {
        "precision": _ratio(n_sel_clean, n_sel),
        "recall": _ratio(n_sel_clean, int(per_clean_seen.sum())),
        "n_selected": n_sel,
        "per_class_precision": [_ratio(a, b) for a, b in zip(per_sel_clean, per_sel, strict=True)],
        "per_class_recall": [
            _ratio(a, b) for a, b in zip(per_sel_clean, per_clean_seen, strict=True)
        ],
        "per_class_selected": [int(v) for v in per_sel],
    }


def noise_detection_auroc(clean_score: ArrayInput, is_clean: ArrayInput) -> float:
    """Noise-detection AUROC (§6.2): P(s_i > s_j) + ½·P(s_i = s_j), i ∈ K, j ∉ K.

    clean_score: (N,) float, higher = more likely clean; is_clean: (N,) bool (K).
    Mann-Whitney statistic from average ranks; nan when K or its complement is empty.
    """
    s = score_array(clean_score, "clean_score")
    pos = mask_array(is_clean, "is_clean")
    same_length((s, "clean_score"), (pos, "is_clean"))
    return float(mann_whitney(rankdata(s), pos))


def purified_ratio(
    corrected_mask: ArrayInput, corrected_labels: ArrayInput, clean: ArrayInput
) -> float:
    """Purified ratio (§6.3) = |{i ∈ P : r_i = y_i}| / |P|.

    corrected_mask: (N,) bool, the corrected set P; corrected_labels: (N,) int, r (only entries
    in P are used); clean: (N,) int, y. nan when P is empty.
    """
    p = mask_array(corrected_mask, "corrected_mask")
    r = label_array(corrected_labels, "corrected_labels")
    y = label_array(clean, "clean")
    same_length((p, "corrected_mask"), (r, "corrected_labels"), (y, "clean"))
    return _ratio(int(np.sum(r[p] == y[p])), int(p.sum()))


def label_recovery_accuracy(targets: ArrayInput, clean: ArrayInput) -> float:
    """Label-recovery accuracy (§6.3) = (1/N) Σ 1[t_i = y_i].

    targets: (N,) int, the current training targets t (r_i on P, ỹ_i elsewhere); clean: (N,) int.
    """
    t = label_array(targets, "targets")
    y = label_array(clean, "clean")
    same_length((t, "targets"), (y, "clean"))
    return float(np.mean(t == y))


def empirical_transition_matrix(
    clean: ArrayInput, noisy: ArrayInput, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Empirical transition matrix T̃_ij = #{y = i, ỹ = j} / #{y = i} (§4.9).

    clean, noisy: (N,) int in [0, C). Returns (T̃, counts): T̃ is (C, C) float64, row-stochastic,
    with rows of classes absent from ``clean`` all nan; counts is (C, C) int64.
    """
    c = check_num_classes(num_classes)
    y = label_array(clean, "clean", c)
    yn = label_array(noisy, "noisy", c)
    same_length((y, "clean"), (yn, "noisy"))
    counts = np.bincount(y * c + yn, minlength=c * c).reshape(c, c).astype(np.int64, copy=False)
    rows = counts.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(rows > 0, counts / rows, np.nan)
    return t, counts


def transition_estimation_error(estimate: ArrayInput, truth: ArrayInput) -> float:
    """Transition-matrix estimation error (§6.4) = Σ_ij |T̂_ij − T̃_ij| / Σ_ij |T̃_ij|.

    estimate: (C, C) T̂; truth: (C, C) T̃ (e.g. from :func:`empirical_transition_matrix`). Rows
    of ``truth`` that are all nan (classes absent from the split) are dropped from both sums; the
    kept rows must be finite in both matrices. nan when no row is kept.
    """
    est = to_numpy(estimate, "estimate")
    tru = to_numpy(truth, "truth")
    for arr, name in ((est, "estimate"), (tru, "truth")):
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
            raise ConfigError(f"{name} must be a non-empty square (C, C) matrix, got {arr.shape}")
        if arr.dtype.kind not in "iuf":
            raise ConfigError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if est.shape != tru.shape:
        raise ConfigError(f"shape mismatch: estimate is {est.shape} but truth is {tru.shape}")
    est = est.astype(np.float64, copy=False)
    tru = tru.astype(np.float64, copy=False)
    absent = np.isnan(tru).all(axis=1)
    kept_t, kept_e = tru[~absent], est[~absent]
    if not np.all(np.isfinite(kept_t)):
        raise ConfigError("truth has NaN/inf in a row that is not entirely nan (absent class)")
    if not np.all(np.isfinite(kept_e)):
        raise ConfigError("estimate has NaN/inf in a row of a class present in truth")
    den = float(np.abs(kept_t).sum())
    return _ratio(float(np.abs(kept_e - kept_t).sum()), den)
