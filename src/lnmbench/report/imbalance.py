"""Class imbalance: per-class test sensitivity (final epoch, from each run's summary.json) by
method, classes ordered by training count (from a run's noise.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lnmbench.report.cells import CELL
from lnmbench.report.load import has_folder


@dataclass
class ClassSensitivity:
    """One (dataset, noise, rate) cell: ``sens`` (n_methods, n_classes) mean per-class
    sensitivity in percent over seeds (NaN where absent), classes in training-count order."""

    cell: tuple[str, str, float]
    methods: list[str]
    classes: list[int]
    counts: list[int] | None
    sens: np.ndarray

    @property
    def smallest(self) -> np.ndarray:
        """(n_methods,) sensitivity of the class with the fewest training images."""
        return self.sens[:, 0]


def _json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def train_counts(run_folder: str | Path) -> list[int] | None:
    """Clean (else noisy) training-label counts per class from the run's noise.json."""
    rep = (_json(Path(run_folder) / "noise.json") or {}).get("train") or {}
    counts = rep.get("clean_class_counts") or rep.get("noisy_class_counts")
    return [int(c) for c in counts] if counts else None


def per_class_sensitivity(df: pd.DataFrame) -> list[ClassSensitivity]:
    """Per cell of the finished runs in ``df`` (reads their summary.json files)."""
    done = df[(df["status"] == "done") & df["run_folder"].map(has_folder)]
    out = []
    counts_by_dataset: dict[str, list[int] | None] = {}
    for cell, g in done.groupby(CELL, sort=True):
        methods = sorted(g["method"].unique())
        per_method: dict[str, list[np.ndarray]] = {m: [] for m in methods}
        for m, folder in zip(g["method"], g["run_folder"], strict=True):
            pc = ((_json(Path(folder) / "summary.json") or {}).get("per_class") or {}).get(
                "per_class_sensitivity"
            )
            if pc:
                per_method[m].append(np.array([np.nan if v is None else v for v in pc], float))
        n_cls = max((len(v) for vs in per_method.values() for v in vs), default=0)
        if n_cls == 0:
            continue
        dataset = cell[0]
        if dataset not in counts_by_dataset:
            counts_by_dataset[dataset] = train_counts(g["run_folder"].iloc[0])
        counts = counts_by_dataset[dataset]
        if counts is not None and len(counts) != n_cls:
            counts = None
        order = list(np.argsort(counts, kind="stable")) if counts else list(range(n_cls))
        sens = np.full((len(methods), n_cls), np.nan)
        for i, m in enumerate(methods):
            vs = [v for v in per_method[m] if len(v) == n_cls]
            if vs:
                sens[i] = 100 * np.nanmean(np.vstack(vs), axis=0)
        out.append(
            ClassSensitivity(
                (cell[0], cell[1], float(cell[2])),
                methods,
                [int(c) for c in order],
                [counts[c] for c in order] if counts else None,
                sens[:, order],
            )
        )
    return out
