"""DivideMix's co-divide: per-sample losses -> 2-component GMM -> clean probability -> split.

methods.md §3.11 step 2. Losses are min-max normalised, optionally averaged over the last few
epochs, and modelled by a two-component 1-D Gaussian mixture (sklearn ``GaussianMixture`` with
max_iter 10, tol 1e-2, reg_covar 5e-4 and a seeded ``random_state``). The clean probability w_i
is the posterior of the lower-mean component; the labelled set is {w > τ}. If that set is empty,
the top ⌈0.01·N⌉ samples by w are labelled instead (ties: lower index first).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from lnmbench.errors import ConfigError

__all__ = [
    "CleanPosterior",
    "LossHistory",
    "Split",
    "fit_clean_posterior",
    "gmm_random_state",
    "normalise_losses",
    "split_by_threshold",
]

GMM_MAX_ITER = 10
GMM_TOL = 1e-2
GMM_REG_COVAR = 5e-4

EMPTY_LABELLED = "empty_labelled"  # no w > τ: top ⌈min_fraction·N⌉ by w labelled instead
EMPTY_UNLABELLED = "empty_unlabelled"  # every w > τ: L_u = 0, mixup on labelled rows only


def normalise_losses(losses: np.ndarray, what: str = "losses") -> np.ndarray:
    """(ℓ − min ℓ) / (max ℓ − min ℓ) as float64 (N,); all zeros when every loss is equal.

    Raises ConfigError on non-finite losses (a diverged network).
    """
    x = np.asarray(losses, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ConfigError(f"{what}: cannot divide an empty training set")
    if not np.all(np.isfinite(x)):
        raise ConfigError(
            f"{what}: per-sample losses contain NaN/inf (training diverged); lower the learning "
            "rate or check the data"
        )
    lo, span = x.min(), x.max() - x.min()
    return (x - lo) / span if span > 0 else np.zeros_like(x)


@dataclass
class CleanPosterior:
    """Posterior of the lower-mean GMM component.

    ``prob`` (N,) float64 clean probability w; ``means`` (2,) component means (low, high);
    ``degenerate``: no mixture could be fitted (fewer than 2 samples or all losses equal), and
    w = 0.5 for every sample (undecidable).
    """

    prob: np.ndarray
    means: np.ndarray
    degenerate: bool = False


def gmm_random_state(seed: int, *keys: int) -> int:
    """A 31-bit ``random_state`` derived from the run seed and e.g. (epoch, net index)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0] >> 1)


def fit_clean_posterior(losses: np.ndarray, random_state: int) -> CleanPosterior:
    """Fit the 2-component GMM to ``losses`` (N,) (already normalised) and return w (N,)."""
    x = np.asarray(losses, dtype=np.float64).reshape(-1, 1)
    if len(x) < 2 or np.ptp(x) == 0:
        mean = float(x.mean()) if len(x) else 0.0
        return CleanPosterior(np.full(len(x), 0.5), np.array([mean, mean]), degenerate=True)
    gmm = GaussianMixture(
        n_components=2,
        max_iter=GMM_MAX_ITER,
        tol=GMM_TOL,
        reg_covar=GMM_REG_COVAR,
        random_state=random_state,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(x)
    means = gmm.means_.reshape(-1)
    low = int(means.argmin())
    prob = gmm.predict_proba(x)[:, low]
    return CleanPosterior(prob.astype(np.float64), np.sort(means))


@dataclass
class Split:
    """A co-divide result: ``labelled`` (N,) bool, ``clean_prob`` (N,) float64 w, ``fallback``
    (None, ``"empty_labelled"`` or ``"empty_unlabelled"``)."""

    labelled: np.ndarray
    clean_prob: np.ndarray
    fallback: str | None = None

    @property
    def unlabelled(self) -> np.ndarray:
        return ~self.labelled


def split_by_threshold(w: np.ndarray, threshold: float, min_fraction: float = 0.01) -> Split:
    """L = {i : w_i > τ}; if L is empty, the top ⌈min_fraction·N⌉ samples by w (stable order).

    w (N,) clean probabilities -> :class:`Split`. ``fallback`` records an empty L (replaced) or
    an empty U (kept: the unlabelled loss is then 0).
    """
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    labelled = w > threshold
    fallback = None
    if not labelled.any():
        k = min(len(w), max(1, math.ceil(min_fraction * len(w))))
        labelled = np.zeros(len(w), dtype=bool)
        labelled[np.argsort(-w, kind="stable")[:k]] = True
        fallback = EMPTY_LABELLED
    elif labelled.all():
        fallback = EMPTY_UNLABELLED
    return Split(labelled, w, fallback)


class LossHistory:
    """The last ``length`` normalised loss vectors; ``push`` returns their mean (N,).

    With ``length`` 1 this is the current vector (DivideMix without history).
    """

    def __init__(self, length: int) -> None:
        if length < 1:
            raise ConfigError(f"loss history length must be >= 1, got {length}")
        self.length = length
        self.vectors: list[np.ndarray] = []

    def push(self, losses: np.ndarray) -> np.ndarray:
        self.vectors = [*self.vectors, np.asarray(losses, dtype=np.float64)][-self.length :]
        return np.mean(self.vectors, axis=0)

    def state_dict(self) -> list[np.ndarray]:
        return [v.copy() for v in self.vectors]

    def load_state_dict(self, vectors: list[np.ndarray]) -> None:
        self.vectors = [np.asarray(v, dtype=np.float64) for v in vectors][-self.length :]
