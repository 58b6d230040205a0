"""Per-cell statistics: a (dataset, noise, rate) cell, one method, mean ± sample std over seeds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lnmbench.report.load import rate_label

CELL = ["dataset", "noise", "rate_key"]
KEYS = ["method", *CELL]


def seed_values(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Finished runs' values: columns method, dataset, noise, pattern, rate_key, seed, value.

    Runs of one (method, cell, seed) are averaged into one value: by then they share one
    configuration (replicas), since :func:`lnmbench.report.variants.split_variants` gave runs
    with differing configurations method labels of their own.
    """
    done = df[(df["status"] == "done") & df[column].notna()]
    cols = [*KEYS, "pattern", "seed"]
    out = (
        done.assign(value=done[column].astype(float))
        .groupby(cols, sort=True, dropna=False)["value"]
        .mean()
        .reset_index()
    )
    return out


def expected_seeds(df: pd.DataFrame) -> dict[tuple[str, str, float], int]:
    """Seeds planned per cell: the distinct seeds of any run folder of that cell (any status)."""
    return {
        (d, n, float(r)): int(g["seed"].nunique())
        for (d, n, r), g in df.groupby(CELL, sort=True, dropna=False)
    }


@dataclass
class CellTable:
    """Methods × cells of one metric.

    ``mean``, ``std``: (n_methods, n_cells) in display units, NaN where missing; ``n``: seeds
    done, ``expected``: (n_cells,) seeds planned; ``rank``: (n_methods, n_cells), 1 = best,
    NaN where missing (ties share the best rank).
    """

    methods: list[str]
    cells: list[tuple[str, str, float]]
    mean: np.ndarray
    std: np.ndarray
    n: np.ndarray
    expected: np.ndarray
    rank: np.ndarray

    @property
    def missing(self) -> np.ndarray:
        return self.n == 0

    @property
    def incomplete(self) -> np.ndarray:
        """Cells with some but not all planned seeds."""
        return (self.n > 0) & (self.n < self.expected[None, :])

    def column_labels(self) -> list[str]:
        return [f"{d} {n} {rate_label(r)}" for d, n, r in self.cells]

    def select(self, cells: list[int]) -> CellTable:
        """The table restricted to the given cell columns."""
        return CellTable(
            self.methods,
            [self.cells[i] for i in cells],
            self.mean[:, cells],
            self.std[:, cells],
            self.n[:, cells],
            self.expected[cells],
            self.rank[:, cells],
        )


def rank_columns(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Per column, rank 1 = best among non-NaN entries ("min" ties); NaN stays NaN."""
    ranks = np.full(values.shape, np.nan)
    for j in range(values.shape[1]):
        col = values[:, j]
        ok = ~np.isnan(col)
        if ok.any():
            ranks[ok, j] = (
                pd.Series(col[ok]).rank(method="min", ascending=not higher_is_better).to_numpy()
            )
    return ranks


def cell_table(
    values: pd.DataFrame,
    expected: dict[tuple[str, str, float], int],
    higher_is_better: bool,
    scale: float = 100.0,
    methods: list[str] | None = None,
) -> CellTable:
    """Aggregate :func:`seed_values` into a :class:`CellTable` (cells in sorted order)."""
    methods = methods or sorted(values["method"].unique())
    cells = sorted(expected)
    m_idx = {m: i for i, m in enumerate(methods)}
    c_idx = {c: j for j, c in enumerate(cells)}
    mean = np.full((len(methods), len(cells)), np.nan)
    std = np.full_like(mean, np.nan)
    n = np.zeros(mean.shape, dtype=int)
    for (m, d, nz, r), g in values.groupby(KEYS, sort=True):
        if m not in m_idx or (d, nz, float(r)) not in c_idx:
            continue
        i, j = m_idx[m], c_idx[(d, nz, float(r))]
        v = g["value"].to_numpy(float) * scale
        mean[i, j] = v.mean()
        std[i, j] = v.std(ddof=1) if len(v) > 1 else np.nan
        n[i, j] = len(v)
    exp = np.array([expected[c] for c in cells], dtype=int)
    return CellTable(methods, cells, mean, std, n, exp, rank_columns(mean, higher_is_better))
