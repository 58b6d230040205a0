"""Rankings with significance: mean rank per method over blocks, the Friedman test and a
post-hoc test (Nemenyi or Conover, from scikit-posthocs)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats

from lnmbench.errors import ConfigError
from lnmbench.report.cells import CELL

POSTHOC = {"nemenyi": sp.posthoc_nemenyi_friedman, "conover": sp.posthoc_conover_friedman}


@dataclass
class Ranking:
    """Ranks of ``methods`` over blocks.

    ``blocks``: (n_blocks, n_methods) values, every method present in every block;
    ``block_kind``: "cell × seed" (seeds pair) or "cell" (means over seeds);
    ``mean_rank``: per method (1 = best), sorted best first; Friedman statistic and p-value
    (NaN with fewer than 3 methods or 2 blocks); ``pvalues``: post-hoc p-values (methods ×
    methods) or None; ``cd``: the Nemenyi critical difference at alpha 0.05 (NaN if undefined).
    """

    methods: list[str]
    blocks: np.ndarray
    block_kind: str
    mean_rank: pd.Series
    friedman_stat: float
    friedman_p: float
    posthoc: str
    pvalues: pd.DataFrame | None
    cd: float
    dropped_methods: list[str]

    @property
    def n_blocks(self) -> int:
        return int(self.blocks.shape[0])


def block_matrix(values: pd.DataFrame, methods: list[str]) -> tuple[np.ndarray, str]:
    """Blocks × methods: (dataset, noise, rate, seed) blocks where every method ran that seed,
    when there are at least two such blocks; else (dataset, noise, rate) cell means."""
    wide = values.pivot_table(index=[*CELL, "seed"], columns="method", values="value")
    wide = wide.reindex(columns=methods).dropna()
    if len(wide) >= 2:
        return wide.to_numpy(float), "cell × seed"
    means = values.groupby([*CELL, "method"])["value"].mean().unstack("method")
    means = means.reindex(columns=methods).dropna()
    return means.to_numpy(float), "cell"


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Critical difference of mean ranks, Demšar (2006): q_alpha sqrt(k(k+1) / (6 n))."""
    if k < 2 or n < 1:
        return float("nan")
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6.0 * n)))


def rank_methods(
    values: pd.DataFrame, higher_is_better: bool = True, posthoc: str = "nemenyi"
) -> Ranking:
    """Rank the methods of :func:`lnmbench.report.cells.seed_values` output.

    Methods are dropped (listed in ``dropped_methods``), those with the fewest cells first,
    until every remaining method is in at least one common block — and, while more than three
    methods remain and some have more cells than others, in at least two, so that an ablation
    variant or a method run on one cell does not reduce the Friedman test to a single block
    (a grid of one cell keeps all its methods).
    """
    if posthoc not in POSTHOC:
        raise ConfigError(f"unknown post-hoc test {posthoc!r}; known: {', '.join(POSTHOC)}")
    methods = sorted(values["method"].unique())
    dropped: list[str] = []
    blocks, kind = block_matrix(values, methods)
    # drop the method with the fewest cells until the remaining ones share a block (two blocks
    # while more than three methods are left)
    counts = values.groupby("method")[CELL].apply(lambda g: len(g.drop_duplicates()))
    while (len(blocks) == 0 and len(methods) > 1) or (
        len(blocks) == 1
        and len(methods) > 3
        and min(counts[m] for m in methods) < max(counts[m] for m in methods)
    ):
        worst = min(methods, key=lambda m: (counts.get(m, 0), m))
        methods.remove(worst)
        dropped.append(worst)
        blocks, kind = block_matrix(values[values["method"].isin(methods)], methods)
    if len(blocks) == 0:
        empty = pd.Series(dtype=float)
        return Ranking(methods, blocks, kind, empty, np.nan, np.nan, posthoc, None, np.nan, dropped)
    signed = -blocks if higher_is_better else blocks
    ranks = np.apply_along_axis(stats.rankdata, 1, signed)  # 1 = best, ties averaged
    mean_rank = pd.Series(ranks.mean(axis=0), index=methods).sort_values(kind="stable")
    k, n = len(methods), len(blocks)
    stat = p = np.nan
    pvalues = None
    if k >= 3 and n >= 2:
        stat, p = stats.friedmanchisquare(*blocks.T)
        pvalues = POSTHOC[posthoc](signed)
        pvalues.index = pvalues.columns = methods
    return Ranking(
        methods,
        blocks,
        kind,
        mean_rank,
        float(stat),
        float(p),
        posthoc,
        pvalues,
        nemenyi_cd(k, n),
        dropped,
    )
