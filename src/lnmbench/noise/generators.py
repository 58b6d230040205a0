"""Label-noise generators of §4.1–4.5 and §4.7, registered by name in ``NOISE``.

Class-conditional generators (symmetric, pairflip, transition, adjacent) draw like the LNMBench
reference: a legacy ``np.random.RandomState(seed)`` and, for each sample in index order, the
position of the 1 in ``multinomial(1, T[y_i])``. Instance generators (PDN, classifier-guided) use
one legacy ``RandomState(seed)`` consumed in the order q, (W,) ỹ, as the authors' PDN code does
with the global NumPy state; ỹ_i is drawn like ``RandomState.choice(C, p=p_i)`` (one uniform per
sample, inverse CDF), vectorised over samples.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from lnmbench.errors import ConfigError
from lnmbench.noise.labels import check_labels, check_transition_matrix
from lnmbench.noise.registry import register_noise

_PROJECTION_CHUNK = 4096  # rows of x converted to float64 at a time in the PDN projection
Q_QUANTILES = (5, 25, 50, 75, 95)

# --------------------------------------------------------------------------- matrices


def symmetric_matrix(num_classes: int, rate: float) -> np.ndarray:
    """(C, C) T = (1 − n)I + n/(C − 1)(𝟙𝟙ᵀ − I), built like the reference (§4.1)."""
    t = np.full((num_classes, num_classes), rate / (num_classes - 1), dtype=np.float64)
    np.fill_diagonal(t, 1.0 - rate)
    return t


def pairflip_matrix(num_classes: int, rate: float) -> np.ndarray:
    """(C, C) T with T_ii = 1 − n and T_{i,(i+1) mod C} = n (§4.3)."""
    t = np.eye(num_classes, dtype=np.float64) * (1.0 - rate)
    t[np.arange(num_classes), (np.arange(num_classes) + 1) % num_classes] = rate
    return t


def adjacent_matrix(num_classes: int, rate: float) -> np.ndarray:
    """(C, C) ordinal T: T_ii = 1 − n, T_{i,i±1} = n/2; the end classes give all n to their
    single neighbour (§4.4)."""
    t = np.eye(num_classes, dtype=np.float64) * (1.0 - rate)
    for i in range(num_classes):
        nbrs = [j for j in (i - 1, i + 1) if 0 <= j < num_classes]
        for j in nbrs:
            t[i, j] = rate / len(nbrs)
    return t


# --------------------------------------------------------------------------- draws


def draw_class_conditional(clean: np.ndarray, matrix: np.ndarray, seed: int) -> np.ndarray:
    """Reference draw (§4.1): ``RandomState(seed)``; ỹ_i = argmax multinomial(1, T[y_i]) in index
    order. clean: (N,) int64; matrix: (C, C) row-stochastic. Returns (N,) int64."""
    rows = [np.ascontiguousarray(r) for r in matrix]
    multinomial = np.random.RandomState(seed).multinomial
    return np.fromiter(
        (multinomial(1, rows[c]).argmax() for c in clean.tolist()),
        dtype=np.int64,
        count=clean.size,
    )


def truncnorm_flip_rates(
    rate: float, sigma: float, size: int, random_state: np.random.RandomState
) -> np.ndarray:
    """(size,) per-sample flip rates q_i ~ TruncNormal(mean n, sd σ, support [0, 1])."""
    dist = stats.truncnorm(-rate / sigma, (1.0 - rate) / sigma, loc=rate, scale=sigma)
    return np.asarray(dist.rvs(size=size, random_state=random_state), dtype=np.float64)


def expected_flip_rate(rate: float, sigma: float) -> float:
    """E[q] = n + σ(φ(a₀) − φ(b₀))/(Φ(b₀) − Φ(a₀)), a₀ = −n/σ, b₀ = (1 − n)/σ (§4.5)."""
    return float(stats.truncnorm.mean(-rate / sigma, (1.0 - rate) / sigma, loc=rate, scale=sigma))


def q_summary(q: np.ndarray) -> dict[str, Any]:
    """Mean, sd, min, max and the 5/25/50/75/95 % quantiles of the flip rates q (N,)."""
    qs = np.percentile(q, Q_QUANTILES)
    return {
        "mean": float(q.mean()),
        "std": float(q.std()),
        "min": float(q.min()),
        "max": float(q.max()),
        "quantiles": {str(p): float(v) for p, v in zip(Q_QUANTILES, qs, strict=True)},
    }


def instance_probabilities(clean: np.ndarray, scores: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p_i = q_i·softmax(s_i with s_{i,y_i} = −∞) + (1 − q_i)·e_{y_i}.

    clean: (N,) int64; scores: (N, C) finite (projections a or logits / t); q: (N,).
    Returns (N, C) float64 rows summing to 1.
    """
    n = clean.size
    rows = np.arange(n)
    z = np.array(scores, dtype=np.float64, copy=True)
    z[rows, clean] = -np.inf
    z -= z.max(axis=1, keepdims=True)
    b = np.exp(z)
    b /= b.sum(axis=1, keepdims=True)
    p = q[:, None] * b
    p[rows, clean] += 1.0 - q
    return p


def draw_from_probabilities(p: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
    """One label per row of p (N, C), exactly like ``random_state.choice(C, p=p_i)`` in a loop
    over i: one uniform per row, normalised CDF, ``searchsorted(side="right")``. (N,) int64."""
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    u = random_state.random_sample(p.shape[0])
    idx = (cdf <= u[:, None]).sum(axis=1)
    return np.minimum(idx, p.shape[1] - 1).astype(np.int64)


def _class_conditional_extra(clean: np.ndarray, matrix: np.ndarray, convention: str) -> dict:
    prior = np.bincount(clean, minlength=matrix.shape[0]) / clean.size
    return {
        "convention": convention,
        "rng": "legacy RandomState(seed), multinomial per sample in index order",
        "generating_matrix": matrix.tolist(),
        "expected_rate": float(np.sum(prior * (1.0 - np.diag(matrix)))),
    }


def check_sigma(sigma: Any) -> float:
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise ConfigError(f"sigma must be a positive number, got {sigma!r}") from None
    if not (math.isfinite(s) and s > 0):
        raise ConfigError(f"sigma must be a positive number, got {sigma!r}")
    return s


# --------------------------------------------------------------------------- generators


def _inclusive_draw(clean: np.ndarray, num_classes: int, rate: float, seed: int) -> np.ndarray:
    """§4.2: M = ⌊nN⌋ indices without replacement, each relabelled uniformly over all C."""
    rng = np.random.default_rng(seed)
    m = math.floor(rate * clean.size + 1e-9)  # guard against 0.29 * 100 = 28.999…
    idx = rng.choice(clean.size, size=m, replace=False)
    noisy = clean.copy()
    noisy[idx] = rng.integers(0, num_classes, size=m)
    return noisy


@register_noise("symmetric")
def symmetric(
    clean: np.ndarray,
    num_classes: int,
    rate: float,
    seed: int,
    *,
    images: np.ndarray | None = None,
    inclusive: bool = False,
) -> tuple[np.ndarray, dict]:
    """Symmetric noise, true class excluded (§4.1; LNMBench); ``inclusive=True`` gives §4.2."""
    if not isinstance(inclusive, bool | np.bool_):
        raise ConfigError(f"symmetric: 'inclusive' must be true or false, got {inclusive!r}")
    if inclusive:
        return symmetric_inclusive(clean, num_classes, rate, seed)
    t = symmetric_matrix(num_classes, rate)
    return draw_class_conditional(clean, t, seed), _class_conditional_extra(clean, t, "exclusive")


@register_noise("symmetric_inclusive")
def symmetric_inclusive(
    clean: np.ndarray,
    num_classes: int,
    rate: float,
    seed: int,
    *,
    images: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """Symmetric noise, true class included (§4.2; DivideMix): expected flip rate n(C − 1)/C."""
    noisy = _inclusive_draw(clean, num_classes, rate, seed)
    extra = {
        "convention": "inclusive",
        "rng": "default_rng(seed): indices without replacement, then uniform labels",
        "num_resampled": math.floor(rate * clean.size + 1e-9),
        "expected_rate": rate * (num_classes - 1) / num_classes,
    }
    return noisy, extra


@register_noise("pairflip")
def pairflip(
    clean: np.ndarray,
    num_classes: int,
    rate: float,
    seed: int,
    *,
    images: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """Pair-flip noise (§4.3): y → (y + 1) mod C with probability n."""
    t = pairflip_matrix(num_classes, rate)
    return draw_class_conditional(clean, t, seed), _class_conditional_extra(clean, t, "pairflip")


@register_noise("adjacent")
def adjacent(
    clean: np.ndarray,
    num_classes: int,
    rate: float,
    seed: int,
    *,
    images: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """Ordinal-grade noise (§4.4): y → y ± 1 with n/2 each (all n at the two ends)."""
    t = adjacent_matrix(num_classes, rate)
    return draw_class_conditional(clean, t, seed), _class_conditional_extra(clean, t, "adjacent")


@register_noise("transition", rate="optional")
def transition(
    clean: np.ndarray,
    num_classes: int,
    rate: float | None,
    seed: int,
    *,
    images: np.ndarray | None = None,
    matrix: Any = None,
) -> tuple[np.ndarray, dict]:
    """Class-conditional noise from a user matrix (§4.4), validated; ``rate`` is only a label."""
    if matrix is None:
        raise ConfigError("noise generator 'transition' needs params.matrix, a (C, C) list")
    t = check_transition_matrix(matrix, num_classes)
    sums = t.sum(axis=1)
    off = sums != 1.0  # renormalise rows within tolerance so multinomial accepts them
    t[off] /= sums[off, None]
    return draw_class_conditional(clean, t, seed), _class_conditional_extra(clean, t, "matrix")


def _pdn_projection(
    features: np.ndarray, clean: np.ndarray, weights: np.ndarray, unit: bool
) -> np.ndarray:
    """a_i = x_iᵀ W_{y_i} in float64, one matmul per clean class and row chunk.

    features: (N, d) any numeric dtype; weights: (C, d, C). Returns (N, C) float64.
    """
    a = np.empty((features.shape[0], weights.shape[2]), dtype=np.float64)
    for c in range(weights.shape[0]):
        idx = np.flatnonzero(clean == c)
        for start in range(0, idx.size, _PROJECTION_CHUNK):
            rows = idx[start : start + _PROJECTION_CHUNK]
            x = features[rows].astype(np.float64)
            if unit:
                norm = np.linalg.norm(x, axis=1, keepdims=True)
                x = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
            a[rows] = x @ weights[c]
    return a


@register_noise("instance", uses_images=True)
def instance(
    clean: np.ndarray,
    num_classes: int,
    rate: float,
    seed: int,
    *,
    images: np.ndarray | None = None,
    sigma: float = 0.1,
    pdn_input: str = "raw",
) -> tuple[np.ndarray, dict]:
    """PDN instance-dependent noise (§4.5, Xia et al. 2020).

    images: (N, ...) stored images (uint8) or features, flattened to x_i ∈ ℝ^d; ``pdn_input``
    "raw" uses the pixel values, "unit" divides each x_i by its L2 norm. RandomState(seed) draws
    q (N,), then W (C, d, C), then ỹ.
    """
    if images is None:
        raise ConfigError("noise generator 'instance' needs the images (N, C, H, W) of the split")
    if pdn_input not in ("raw", "unit"):
        raise ConfigError(f"instance: pdn_input must be 'raw' or 'unit', got {pdn_input!r}")
    sigma = check_sigma(sigma)
    features = np.asarray(images).reshape(len(images), -1)
    if features.dtype.kind not in "iubf":
        raise ConfigError(f"instance: images must be numeric, got dtype {features.dtype}")
    rs = np.random.RandomState(seed)
    q = truncnorm_flip_rates(rate, sigma, clean.size, rs)
    weights = rs.standard_normal((num_classes, features.shape[1], num_classes))
    a = _pdn_projection(features, clean, weights, unit=pdn_input == "unit")
    p = instance_probabilities(clean, a, q)
    noisy = draw_from_probabilities(p, rs)
    extra = {
        "rng": "legacy RandomState(seed) consumed in order q, W, noisy labels",
        "feature_dim": int(features.shape[1]),
        "expected_rate": expected_flip_rate(rate, sigma),
        "q": q_summary(q),
        "b_max_mean": b_max_mean(p, clean, q),
    }
    return noisy, extra


def b_max_mean(p: np.ndarray, clean: np.ndarray, q: np.ndarray) -> float:
    """Mean over samples of max_j b_ij (1 = each sample flips to one sample-specific class)."""
    p_off = p.copy()
    p_off[np.arange(clean.size), clean] = 0.0
    keep = q > 0
    if not keep.any():
        return math.nan
    return float(np.mean(p_off[keep].max(axis=1) / q[keep]))


@register_noise("realworld", rate="ignored", needs_clean=False, cacheable=False)
def realworld(
    clean: np.ndarray | None,
    num_classes: int,
    rate: float | None,
    seed: int,
    *,
    images: np.ndarray | None = None,
    noisy: Any = None,
) -> tuple[np.ndarray, dict]:
    """Real-world noise (§4.7): the dataset's noisy column ``params.noisy`` (N,), validated;
    ``clean`` is the reference column or None."""
    if noisy is None:
        raise ConfigError("noise generator 'realworld' needs params.noisy, the noisy label column")
    labels = check_labels(noisy, num_classes, "noisy")
    if clean is not None and clean.size != labels.size:
        raise ConfigError(f"realworld: {labels.size} noisy labels but {clean.size} clean labels")
    return labels, {"clean_available": clean is not None}
