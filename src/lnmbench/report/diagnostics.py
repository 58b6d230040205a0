"""LNL diagnostics per epoch from metrics.jsonl: selection precision ("clean ratio") and recall
("coverage ratio"), averaged over a method's selections (e.g. both nets) and over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lnmbench.engine.run_folder import RunFolder
from lnmbench.report.cells import CELL
from lnmbench.report.load import has_folder

DIAGNOSTIC_TABLES = {
    "selection_precision": ("selection precision (clean ratio, %)", 100.0, True),
    "selection_recall": ("selection recall (coverage ratio, %)", 100.0, True),
    "detection_auroc": ("noise-detection AUROC (%)", 100.0, True),
    "purified_ratio": ("purified ratio (%)", 100.0, True),
    "transition_error": ("transition-matrix estimation error (relative L1)", 1.0, False),
}


def _selection_means(diag: dict) -> tuple[float, float]:
    sel = [v for k, v in diag.items() if k.startswith("selection/") and isinstance(v, dict)]
    p = [s.get("precision") for s in sel if s.get("precision") is not None]
    r = [s.get("recall") for s in sel if s.get("recall") is not None]
    return (float(np.mean(p)) if p else np.nan, float(np.mean(r)) if r else np.nan)


def selection_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Long table: method, dataset, noise, rate_key, epoch, precision, recall (percent; mean
    over seeds) for finished or unfinished runs whose final diagnostics include a selection."""
    runs = df[df["selection_precision"].notna() | df["selection_recall"].notna()]
    runs = runs[runs["run_folder"].map(has_folder)]
    rows = []
    for rec in runs.itertuples(index=False):
        for r in RunFolder(Path(rec.run_folder)).read_metrics():
            p, q = _selection_means(r.get("diagnostics") or {})
            rows.append(
                {
                    "method": rec.method,
                    "dataset": rec.dataset,
                    "noise": rec.noise,
                    "rate_key": rec.rate_key,
                    "seed": rec.seed,
                    "epoch": r.get("epoch"),
                    "precision": 100 * p,
                    "recall": 100 * q,
                }
            )
    cols = ["method", *CELL, "epoch", "precision", "recall"]
    if not rows:
        return pd.DataFrame(columns=cols)
    long = pd.DataFrame(rows)
    return (
        long.groupby(["method", *CELL, "epoch"], sort=True)[["precision", "recall"]]
        .mean()
        .reset_index()[cols]
    )
