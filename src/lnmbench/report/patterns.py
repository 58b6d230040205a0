"""The paper's summary: per method, the unweighted mean over cells of each noise pattern
(symmetric / instance / real-world) and overall (the mean of the pattern averages)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lnmbench.report.cells import CellTable
from lnmbench.report.load import PATTERN_ORDER, PATTERNS


def cell_patterns(table: CellTable) -> list[str]:
    """The noise pattern of each cell of ``table``."""
    return [PATTERNS.get(noise, noise) for _, noise, _ in table.cells]


def pattern_names(table: CellTable) -> list[str]:
    """Patterns present, the paper's three first."""
    present = set(cell_patterns(table))
    return [p for p in PATTERN_ORDER if p in present] + sorted(present - set(PATTERN_ORDER))


def pattern_averages(table: CellTable, higher_is_better: bool = True) -> pd.DataFrame:
    """One row per method, ordered by overall average (best first).

    Columns: per pattern P, ``P`` (mean of the method's cell means of P) and ``P_cells``
    (cells it has of those planned, "3/4"); ``overall`` (mean of the pattern averages the method
    has) and ``complete`` (it has every planned cell).
    """
    pats = np.array(cell_patterns(table))
    names = pattern_names(table)
    rows = []
    for i, m in enumerate(table.methods):
        row: dict[str, object] = {"method": m}
        avgs = []
        complete = True
        for p in names:
            vals = table.mean[i, pats == p]
            have = int(np.sum(~np.isnan(vals)))
            row[p] = float(np.nanmean(vals)) if have else np.nan
            row[f"{p}_cells"] = f"{have}/{len(vals)}"
            complete &= have == len(vals)
            if have:
                avgs.append(row[p])
        row["overall"] = float(np.mean(avgs)) if avgs else np.nan
        row["complete"] = complete
        rows.append(row)
    df = pd.DataFrame(rows)
    order = df["overall"].fillna(-np.inf if higher_is_better else np.inf)
    df = df.iloc[
        np.argsort(-order.to_numpy() if higher_is_better else order.to_numpy(), kind="stable")
    ]
    return df.reset_index(drop=True)
