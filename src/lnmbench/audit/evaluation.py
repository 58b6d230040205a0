"""Scoring a suspicion ranking against known clean labels (benchmarks and tests only).

The audit itself never sees clean labels; these functions grade its output where they are known
(synthetic noise planted on a clean dataset, or a real-world set with an expert column).
"""

from __future__ import annotations

import math

import numpy as np

from lnmbench.errors import ConfigError
from lnmbench.metrics.diagnostics import noise_detection_auroc


def _check(suspicion: np.ndarray, is_noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(suspicion, dtype=np.float64).reshape(-1)
    y = np.asarray(is_noisy, dtype=bool).reshape(-1)
    if s.shape != y.shape:
        raise ConfigError(f"suspicion has {s.size} rows but is_noisy has {y.size}")
    if not np.all(np.isfinite(s)):
        raise ConfigError("suspicion contains NaN or inf")
    return s, y


def detection_auroc(suspicion: np.ndarray, is_noisy: np.ndarray) -> float:
    """Noise-detection AUROC (§6.2) of a suspicion (N,): the clean-ness score is −suspicion."""
    s, y = _check(suspicion, is_noisy)
    return noise_detection_auroc(-s, ~y)


def top_k(suspicion: np.ndarray, k: int) -> np.ndarray:
    """(N,) bool: the k most suspicious samples (ties: lower index first, deterministic)."""
    s = np.asarray(suspicion, dtype=np.float64)
    order = np.lexsort((np.arange(s.size), -s))
    flagged = np.zeros(s.size, dtype=bool)
    flagged[order[: max(int(k), 0)]] = True
    return flagged


def precision_at_k(suspicion: np.ndarray, is_noisy: np.ndarray, k: int | None = None) -> float:
    """Fraction of wrong labels among the top k (default k = the true number of wrong labels)."""
    s, y = _check(suspicion, is_noisy)
    k = int(y.sum()) if k is None else int(k)
    if k <= 0:
        return math.nan
    return float(y[top_k(s, k)].mean())


def flagged_f1(flagged: np.ndarray, is_noisy: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of a flagged set (N,) bool against the wrong labels (N,) bool."""
    f = np.asarray(flagged, dtype=bool).reshape(-1)
    y = np.asarray(is_noisy, dtype=bool).reshape(-1)
    if f.shape != y.shape:
        raise ConfigError(f"flagged has {f.size} rows but is_noisy has {y.size}")
    tp = float(np.sum(f & y))
    precision = tp / f.sum() if f.sum() else math.nan
    recall = tp / y.sum() if y.sum() else math.nan
    f1 = 2 * tp / (f.sum() + y.sum()) if (f.sum() + y.sum()) else math.nan
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "n_flagged": int(f.sum()),
    }


def grade(suspicion: np.ndarray, flagged: np.ndarray, is_noisy: np.ndarray) -> dict[str, float]:
    """AUROC, precision@k (k = true flips) and the flagged set's precision / recall / F1."""
    return {
        "auroc": detection_auroc(suspicion, is_noisy),
        "precision_at_k": precision_at_k(suspicion, is_noisy),
        **flagged_f1(flagged, is_noisy),
    }
