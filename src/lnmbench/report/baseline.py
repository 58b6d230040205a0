"""Each method against a baseline over matched (dataset, noise, rate, seed) runs: mean paired
difference, a 95 % bootstrap interval (scipy.stats.bootstrap) and the Wilcoxon signed-rank test."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from lnmbench.errors import ConfigError
from lnmbench.report.cells import CELL

N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def paired_differences(values: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Long table: method, dataset, noise, rate_key, seed, diff (method − baseline), for every
    (cell, seed) that both finished. Raises ConfigError when the baseline has no run."""
    known = sorted(values["method"].unique())
    if baseline not in known:
        raise ConfigError(f"baseline {baseline!r} has no finished run; methods: {', '.join(known)}")
    keys = [*CELL, "seed"]
    base = values[values["method"] == baseline].set_index(keys)["value"]
    others = values[values["method"] != baseline]
    joined = others.join(base.rename("base"), on=keys, how="inner")
    joined["diff"] = joined["value"] - joined["base"]
    return joined[["method", *keys, "diff"]].reset_index(drop=True)


def bootstrap_ci(diffs: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (n,); NaN for n < 2."""
    d = np.asarray(diffs, float)
    if len(d) < 2:
        return float("nan"), float("nan")
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    res = stats.bootstrap(
        (d,),
        np.mean,
        confidence_level=level,
        n_resamples=N_RESAMPLES,
        method="percentile",
        random_state=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def wilcoxon_p(diffs: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; NaN when every difference is 0 or none exist."""
    d = np.asarray(diffs, float)
    if len(d) == 0 or np.all(d == 0):
        return float("nan")
    return float(stats.wilcoxon(d).pvalue)


def against_baseline(values: pd.DataFrame, baseline: str, scale: float = 100.0) -> pd.DataFrame:
    """Per method: n pairs, mean difference, its 95 % bootstrap interval and the Wilcoxon
    p-value, in display units (``scale``), ordered by mean difference (largest first)."""
    diffs = paired_differences(values, baseline)
    rows = []
    for m, g in diffs.groupby("method", sort=True):
        d = g["diff"].to_numpy(float) * scale
        lo, hi = bootstrap_ci(d)
        rows.append(
            {
                "method": m,
                "n_pairs": len(d),
                "mean_diff": float(d.mean()),
                "ci_low": lo,
                "ci_high": hi,
                "wilcoxon_p": wilcoxon_p(d),
                "wins": int(np.sum(d > 0)),
                "losses": int(np.sum(d < 0)),
            }
        )
    cols = ["method", "n_pairs", "mean_diff", "ci_low", "ci_high", "wilcoxon_p", "wins", "losses"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values("mean_diff", ascending=False, kind="stable").reset_index(drop=True)
