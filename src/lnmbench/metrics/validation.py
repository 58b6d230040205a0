"""Input validation of the metric functions (clinical metrics and LNL diagnostics).

Each validator converts its input to a numpy array (torch tensors via ``detach().cpu()``) and
raises :class:`lnmbench.errors.ConfigError` naming the argument on bad input: wrong shape, length
mismatch, labels outside ``[0, C)``, NaN/inf, empty arrays, probability rows not summing to 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lnmbench.errors import ConfigError

#: Anything convertible to a numpy array: ndarray, sequence, or torch tensor.
ArrayInput = Any

PROB_SUM_ATOL = 1e-3
_PROB_RANGE_TOL = 1e-6


def to_numpy(x: ArrayInput, name: str) -> np.ndarray:
    """Convert ``x`` (ndarray, sequence or torch tensor) to a numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu()
        if str(getattr(x, "dtype", "")) == "torch.bfloat16":
            x = x.float()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: cannot convert to a numpy array ({exc})") from exc


def check_1d(arr: np.ndarray, name: str) -> None:
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be a 1-D array of shape (N,), got shape {arr.shape}")
    if arr.size == 0:
        raise ConfigError(f"{name} is empty; metrics need at least one sample")


def label_array(x: ArrayInput, name: str, num_classes: int | None = None) -> np.ndarray:
    """Validate integer labels of shape (N,) and return them as int64."""
    arr = to_numpy(x, name)
    check_1d(arr, name)
    kind = arr.dtype.kind
    if kind in "iu":
        out = arr.astype(np.int64, copy=False)
    elif kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ConfigError(f"{name} contains NaN or inf; labels must be finite integers")
        if not np.all(arr == np.round(arr)):
            raise ConfigError(f"{name} contains non-integer values; labels must be integers")
        out = arr.astype(np.int64)
    else:
        raise ConfigError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    lo, hi = int(out.min()), int(out.max())
    if lo < 0:
        raise ConfigError(f"{name} has label {lo} < 0; labels must lie in [0, num_classes)")
    if num_classes is not None and hi >= num_classes:
        raise ConfigError(
            f"{name} has label {hi} outside [0, {num_classes}); labels must lie in "
            f"[0, num_classes) with num_classes={num_classes}"
        )
    return out


def mask_array(x: ArrayInput, name: str) -> np.ndarray:
    """Validate a boolean mask of shape (N,) (bool, or 0/1 numbers) and return it as bool."""
    arr = to_numpy(x, name)
    check_1d(arr, name)
    if arr.dtype.kind == "b":
        return arr
    if arr.dtype.kind in "iuf":
        if not np.all((arr == 0) | (arr == 1)):
            raise ConfigError(f"{name} must be a boolean mask (only 0/1 or True/False values)")
        return arr.astype(bool)
    raise ConfigError(f"{name} must be a boolean mask, got dtype {arr.dtype}")


def score_array(x: ArrayInput, name: str) -> np.ndarray:
    """Validate finite real scores of shape (N,) and return them as float64."""
    arr = to_numpy(x, name)
    check_1d(arr, name)
    if arr.dtype.kind not in "biuf":
        raise ConfigError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} contains NaN or inf; scores must be finite")
    return arr


def prob_array(x: ArrayInput, name: str, num_classes: int | None = None) -> np.ndarray:
    """Validate probabilities of shape (N, C) and return them as float64."""
    arr = to_numpy(x, name)
    if arr.ndim != 2:
        raise ConfigError(f"{name} must be a 2-D array of shape (N, C), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ConfigError(f"{name} is empty (shape {arr.shape}); need N >= 1 and C >= 1")
    if num_classes is not None and arr.shape[1] != num_classes:
        raise ConfigError(
            f"{name} has {arr.shape[1]} columns but num_classes={num_classes}; "
            f"expected shape (N, {num_classes})"
        )
    if arr.dtype.kind not in "iuf":
        raise ConfigError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} contains NaN or inf; probabilities must be finite")
    if arr.min() < -_PROB_RANGE_TOL or arr.max() > 1.0 + _PROB_RANGE_TOL:
        raise ConfigError(f"{name} has values outside [0, 1]; pass probabilities, not logits")
    sums = arr.sum(axis=1)
    bad = np.abs(sums - 1.0) > PROB_SUM_ATOL
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"{name} rows must sum to 1 (softmax probabilities); row {i} sums to {sums[i]:.6g}"
        )
    return arr


def same_length(*pairs: tuple[np.ndarray, str]) -> None:
    n0, name0 = len(pairs[0][0]), pairs[0][1]
    for arr, name in pairs[1:]:
        if len(arr) != n0:
            raise ConfigError(
                f"length mismatch: {name0} has {n0} samples but {name} has {len(arr)}"
            )


def check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ConfigError(f"num_classes must be an integer, got {num_classes!r}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
    return int(num_classes)


def label_pair(
    y_true: ArrayInput, y_pred: ArrayInput, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate (y_true, y_pred); infer C = max label + 1 when ``num_classes`` is None."""
    c = None if num_classes is None else check_num_classes(num_classes)
    yt = label_array(y_true, "y_true", c)
    yp = label_array(y_pred, "y_pred", c)
    same_length((yt, "y_true"), (yp, "y_pred"))
    if c is None:
        c = int(max(yt.max(), yp.max())) + 1
    return yt, yp, c


def true_prob_pair(
    y_true: ArrayInput, y_prob: ArrayInput, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    prob = prob_array(y_prob, "y_prob", num_classes)
    yt = label_array(y_true, "y_true", prob.shape[1])
    same_length((yt, "y_true"), (prob, "y_prob"))
    return yt, prob
