"""From cross-fit records to the audit's per-sample result: signals, combined score, suggestion.

Nothing here sees a clean label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lnmbench.audit.crossfit import FoldRecord, out_of_fold_probs
from lnmbench.audit.signals import DEFAULT_COMBINED, DEFAULT_SIGNALS, combine, compute_signals
from lnmbench.errors import ConfigError


@dataclass
class Scored:
    """The audit's scores. N samples, C classes.

    signals: {name: (N,) float64 suspicion}; combined: (N,) float64 combined suspicion in (0, 1];
    combined_from: the signals it combines; pred_probs: (N, C) float32 out-of-fold probabilities;
    suggested: (N,) int64 argmax of pred_probs; estimated_issues: the number of samples whose
    out-of-fold argmax differs from the given label (the count used without cleanlab, see
    :func:`flag_count`).
    """

    signals: dict[str, np.ndarray]
    combined: np.ndarray
    combined_from: tuple[str, ...]
    pred_probs: np.ndarray
    suggested: np.ndarray
    estimated_issues: int


def estimate_issues(pred_probs: np.ndarray, labels: np.ndarray) -> int:
    """Number of samples whose out-of-fold argmax is not the given label (N,) -> int."""
    return int(np.sum(pred_probs.argmax(axis=1) != labels))


def flag_count(scored: Scored, cleanlab_issues: np.ndarray | None) -> tuple[int, str]:
    """How many of the most suspect samples the audit flags, and the rule that says so.

    With cleanlab: as many as confident learning finds (``find_label_issues``, an estimate of
    the *number* of wrong labels from the confident joint); the audit's own ranking decides
    *which* ones. Without cleanlab: the samples whose out-of-fold argmax is not the given label.
    """
    if cleanlab_issues is not None:
        return int(np.sum(cleanlab_issues)), "as many as cleanlab's find_label_issues"
    return scored.estimated_issues, "out-of-fold argmax differs from the given label"


def score_records(
    records: list[FoldRecord],
    labels: np.ndarray,
    *,
    seed: int = 0,
    signals: Sequence[str] = DEFAULT_SIGNALS,
    combined_from: Sequence[str] | None = None,
) -> Scored:
    """Signals, combined score and suggested labels for the given labels (N,)."""
    y = np.asarray(labels, dtype=np.int64)
    use = tuple(DEFAULT_COMBINED if combined_from is None else combined_from)
    names = tuple(dict.fromkeys([*signals, *use]))
    missing = [s for s in use if s not in names]
    if missing:
        raise ConfigError(f"combined signals {missing} are not computed")
    values = compute_signals(records, y, names, seed=seed)
    p = out_of_fold_probs(records, y.size)
    return Scored(
        signals={k: values[k] for k in signals},
        combined=combine(values, use),
        combined_from=use,
        pred_probs=p,
        suggested=p.argmax(axis=1).astype(np.int64),
        estimated_issues=estimate_issues(p, y),
    )
