"""Confident learning (Northcutt et al., 2021) through cleanlab, an optional dependency.

The per-class noise rates and the transition-matrix estimate come from cleanlab's calibrated
confident joint on the out-of-fold probabilities; they are not re-implemented here. Without
cleanlab (``pip install -e '.[audit]'``) :func:`confident_joint_estimate` returns None and the
audit says the estimate was skipped.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

INSTALL_HINT = "pip install -e '.[audit]' (cleanlab>=2.6)"


def cleanlab_available() -> bool:
    """Whether cleanlab can be imported."""
    return importlib.util.find_spec("cleanlab") is not None


@dataclass
class ConfidentJoint:
    """cleanlab's estimate. C classes.

    joint: (C, C) float64 P(ỹ = i, y = j), rows = given label, columns = true label;
    transition: (C, C) float64 T[i, j] = P(ỹ = j | y = i), rows = (estimated) clean class, as
    lnmbench's empirical T; wrong_given: (C,) estimated fraction of wrong labels among the
    samples *given* class c, 1 − joint[c, c] / Σ_j joint[c, j]; flip_rate: (C,) 1 − T[c, c];
    num_issues: cleanlab's estimated number of label issues; issues: (N,) bool, cleanlab's
    ``find_label_issues`` (prune by noise rate); quality: (N,) float64 cleanlab label-quality
    score (self-confidence; lower = more likely wrong).
    """

    joint: np.ndarray
    transition: np.ndarray
    wrong_given: np.ndarray
    flip_rate: np.ndarray
    num_issues: int
    issues: np.ndarray
    quality: np.ndarray


def confident_joint_estimate(labels: np.ndarray, pred_probs: np.ndarray) -> ConfidentJoint | None:
    """cleanlab's confident-joint estimate for labels (N,) and out-of-fold pred_probs (N, C);
    None when cleanlab is not installed."""
    if not cleanlab_available():
        return None
    from cleanlab.count import estimate_joint, num_label_issues
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(pred_probs, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    joint = np.asarray(estimate_joint(y, p), dtype=np.float64)
    col = joint.sum(axis=0)  # P(y = j)
    noise = np.divide(joint, col[None, :], out=np.zeros_like(joint), where=col[None, :] > 0)
    transition = noise.T  # T[i, j] = P(ỹ = j | y = i)
    row = joint.sum(axis=1)
    diag = np.diag(joint)
    wrong_given = np.divide(row - diag, row, out=np.full_like(row, np.nan), where=row > 0)
    flip_rate = 1.0 - np.diag(transition)
    return ConfidentJoint(
        joint=joint,
        transition=transition,
        wrong_given=wrong_given,
        flip_rate=flip_rate,
        num_issues=int(num_label_issues(y, p)),
        issues=np.asarray(find_label_issues(y, p), dtype=bool),
        quality=np.asarray(get_label_quality_scores(y, p), dtype=np.float64),
    )
