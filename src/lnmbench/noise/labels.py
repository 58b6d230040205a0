"""Noisy labels of one split (:class:`NoisyLabels`, with the §4.9 report) and the validators
of label vectors, transition matrices and noise rates."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lnmbench.errors import ConfigError
from lnmbench.metrics.diagnostics import empirical_transition_matrix
from lnmbench.noise.cache import json_for_cache_key, labels_sha256


def check_labels(labels: Any, num_classes: int, what: str) -> np.ndarray:
    """Validate a label vector: 1-D, integer-valued, non-empty, in [0, C). Returns (N,) int64."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ConfigError(f"{what} labels must be a 1-D vector, got shape {arr.shape}")
    if arr.size == 0:
        raise ConfigError(f"{what} labels are empty")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ConfigError(f"{what} labels must be integers, got non-integer floats")
    elif arr.dtype.kind not in "iub":
        raise ConfigError(f"{what} labels must be integers, got dtype {arr.dtype}")
    bad = np.flatnonzero((arr < 0) | (arr >= num_classes))
    if bad.size:
        i = int(bad[0])
        raise ConfigError(
            f"{what} labels outside [0, {num_classes}): {bad.size} value(s), "
            f"first {arr[i].item()!r} at index {i}"
        )
    return arr.astype(np.int64)


def check_transition_matrix(matrix: Any, num_classes: int) -> np.ndarray:
    """Validate a transition matrix: (C, C), finite, non-negative, rows sum to 1 within 1e-6.

    Returns the (C, C) float64 matrix. Errors name the offending entry or row and its sum.
    """
    try:
        t = np.array(matrix, dtype=np.float64)  # a copy: callers may renormalise it
    except (TypeError, ValueError):
        raise ConfigError("transition matrix must be a (C, C) array of numbers") from None
    if t.shape != (num_classes, num_classes):
        raise ConfigError(
            f"transition matrix must have shape ({num_classes}, {num_classes}), got {t.shape}"
        )
    if not np.all(np.isfinite(t)):
        i, j = np.argwhere(~np.isfinite(t))[0]
        raise ConfigError(f"transition matrix entry [{i}, {j}] is not finite: {t[i, j]}")
    if np.any(t < 0):
        i, j = np.argwhere(t < 0)[0]
        raise ConfigError(f"transition matrix entry [{i}, {j}] is negative: {t[i, j]}")
    sums = t.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if bad.size:
        i = int(bad[0])
        raise ConfigError(
            f"transition matrix row {i} sums to {sums[i]:.8g}, not 1 (tolerance 1e-6)"
        )
    return t


def check_rate(rate: Any) -> float:
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ConfigError(f"noise rate must be a number in [0, 1), got {rate!r}") from None
    if not (math.isfinite(r) and 0.0 <= r < 1.0):
        raise ConfigError(f"noise rate must be in [0, 1), got {rate!r}")
    return r


@dataclass
class NoisyLabels:
    """Noisy labels of one split plus everything §4.9 asks to report.

    noisy, clean: (N,) int64 (clean None when unknown); params and extra are JSON-able.
    """

    noisy: np.ndarray
    clean: np.ndarray | None
    num_classes: int
    generator: str
    rate: float | None
    seed: int
    params: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    cache_key: str | None = None  # SHA-256 of the canonical cache-key JSON

    @property
    def realised_rate(self) -> float:
        """mean(ỹ ≠ y); nan when clean labels are unknown."""
        if self.clean is None:
            return math.nan
        return float(np.mean(self.noisy != self.clean))

    @property
    def transition_counts(self) -> np.ndarray | None:
        """(C, C) int64 counts #{y = i, ỹ = j}; rows = clean class. None without clean labels."""
        if self.clean is None:
            return None
        return empirical_transition_matrix(self.clean, self.noisy, self.num_classes)[1]

    @property
    def transition_matrix(self) -> np.ndarray | None:
        """(C, C) float64 row-normalised T̃; rows of absent classes all nan. None without clean."""
        if self.clean is None:
            return None
        return empirical_transition_matrix(self.clean, self.noisy, self.num_classes)[0]

    @property
    def per_class_flip_rate(self) -> np.ndarray | None:
        """(C,) 1 − T̃_ii (nan for absent classes). None without clean labels."""
        t = self.transition_matrix
        return None if t is None else 1.0 - np.diag(t)

    @property
    def unlearnable_classes(self) -> list[int] | None:
        """Present classes whose row has T̃_ii ≤ max_{j≠i} T̃_ij. None without clean labels."""
        t = self.transition_matrix
        if t is None:
            return None
        off = np.where(np.eye(self.num_classes, dtype=bool), -np.inf, t)
        present = ~np.isnan(t).all(axis=1)
        return [int(i) for i in np.flatnonzero(present & (np.diag(t) <= off.max(axis=1)))]

    @property
    def label_precision(self) -> np.ndarray | None:
        """(C,) P(y = c | ỹ = c): the share of the samples labelled c that are truly c (nan for a
        label no sample carries). None without clean labels."""
        counts = self.transition_counts
        if counts is None:
            return None
        given = counts.sum(axis=0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(given > 0, np.diag(counts) / given, np.nan)

    @property
    def dominated_labels(self) -> list[int] | None:
        """Noisy labels c whose most common clean class is another class (strictly more samples
        labelled c are truly j ≠ c than truly c), so the label's own majority is wrong. None
        without clean labels."""
        counts = self.transition_counts
        if counts is None:
            return None
        off = np.where(np.eye(self.num_classes, dtype=bool), -1, counts)
        given = counts.sum(axis=0) > 0
        return [int(c) for c in np.flatnonzero(given & (off.max(axis=0) > np.diag(counts)))]

    @property
    def sha256(self) -> str:
        """SHA-256 hex of the noisy label vector (int64 little-endian bytes)."""
        return labels_sha256(self.noisy)

    def report(self) -> dict:
        """JSON-serialisable §4.9 report (nan -> None; clean-label items None when unknown)."""
        c = self.num_classes
        counts = self.transition_counts
        flip = self.per_class_flip_rate
        t = self.transition_matrix
        precision = self.label_precision
        return json_for_cache_key(
            {
                "generator": self.generator,
                "rate": self.rate,
                "params": self.params,
                "seed": self.seed,
                "num_classes": c,
                "num_samples": int(self.noisy.size),
                "cache_key": self.cache_key,
                "realised_rate": self.realised_rate,
                "per_class_flip_rate": None if flip is None else flip.tolist(),
                "transition_matrix": None if t is None else t.tolist(),
                "transition_counts": None if counts is None else counts.tolist(),
                "clean_class_counts": None
                if self.clean is None
                else np.bincount(self.clean, minlength=c).tolist(),
                "noisy_class_counts": np.bincount(self.noisy, minlength=c).tolist(),
                "unlearnable_classes": self.unlearnable_classes,
                "label_precision": None if precision is None else precision.tolist(),
                "dominated_labels": self.dominated_labels,
                "sha256": self.sha256,
                "extra": self.extra,
            }
        )
