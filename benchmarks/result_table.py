"""What the resumable benchmark scripts (validity.py, medssl.py) share: where the datasets are,
the committed CSV result tables (locked, atomic, keyed by config hash), and training a run under
its run lock so that two shards never train the same config and reports see it as running."""

from __future__ import annotations

import fcntl
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lnmbench.data import DATASETS, default_data_dir, load_dataset
from lnmbench.errors import RunBusyError
from lnmbench.experiment.config import RunConfig
from lnmbench.experiment.run import run_exclusive, split_noise

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
KEY = "config_hash"


def dataset_ref(name: str) -> str:
    """The dataset argument of a run: the bundled ``demo`` or a file of ../shared/data."""
    if name == "demo":
        return name
    path = SHARED / f"{name}.npz"
    if not path.exists():
        raise SystemExit(f"{path} not found: the real MedMNIST files live in ../shared/data")
    return str(path)


def informative(dataset: str, noise: str, rate: float) -> bool:
    """Whether a cell's noisy labels carry class information: symmetric noise (which never keeps
    the true class) at rate r leaves P(ỹ = y) = 1 − r against r / (C − 1) for each other class,
    so it needs r < (C − 1) / C (BreastMNIST, C = 2: r < 0.5). The benchmarks
    neither run nor judge such cells."""
    if noise != "symmetric":
        return True
    c = DATASETS.get(dataset).info.num_classes
    return float(rate) < (c - 1) / c - 1e-9


def unlearnable_classes(cfg: RunConfig) -> list[int]:
    """The classes that the realised training-split noise of ``cfg`` makes unlearnable
    (T̃_ii ≤ max_j≠i T̃_ij: most of the class carries one same wrong label), from the same noisy
    labels its run trained on (the noise cache; regenerated, identically, when absent)."""
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    ds = load_dataset(cfg.dataset, size=cfg.size, data_dir=cfg.data_dir)
    return split_noise(cfg, ds, data_dir)["train"].unlearnable_classes or []


CELL = ["dataset", "noise", "rate", "seed"]


def cell_key(cell: tuple) -> tuple[str, str, float, int]:
    """A (dataset, noise, rate, seed) cell with canonical types (CSV rates and seeds vary)."""
    return (str(cell[0]), str(cell[1]), float(cell[2]), int(cell[3]))


def unlearnable_by_cell(
    table: pd.DataFrame, config_of: Callable[..., RunConfig]
) -> dict[tuple[str, str, float, int], list[int]]:
    """cell -> the classes its realised training noise makes unlearnable; ``config_of(dataset
    path, noise, rate, seed)`` is any of the cell's run configs (the noise does not depend on
    the method, so each cell's noisy labels are read once)."""
    cells = sorted({cell_key(c) for c in table[CELL].itertuples(index=False)})
    return {c: unlearnable_classes(config_of(dataset_ref(c[0]), *c[1:])) for c in cells}


def unlearnable_note(unlearnable: dict[tuple, list[int]], dataset: str | None = None) -> str:
    """One line naming the cells (of ``dataset``, or all) whose noise makes a class unlearnable;
    empty when there are none."""
    marked = [c for c, classes in sorted(unlearnable.items()) if classes]
    marked = [c for c in marked if dataset is None or c[0] == dataset]
    if not marked:
        return ""
    return "cells whose realised noise makes a class unlearnable (noise.json): " + ", ".join(
        f"{'' if dataset else d + ' '}{n} {r:g} seed {s} "
        f"(class {', '.join(map(str, unlearnable[(d, n, r, s)]))})"
        for d, n, r, s in marked
    )


def nanmean(values: list[Any]) -> float:
    """Mean of the values that are neither None nor NaN; NaN when none are."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(vals)) if vals else float("nan")


def selection_sets(diag: dict[str, Any]) -> list[dict[str, Any]]:
    """The selection diagnostics of one epoch (``selection/<set>`` entries: net1, net2, clean)."""
    return [v for k, v in diag.items() if k.startswith("selection/") and isinstance(v, dict)]


def purified(diag: dict[str, Any]) -> float:
    """Purified ratio (DISC) or its mean over the nets (DivideMix) of one epoch; nan if none."""
    keys = [k for k in diag if k == "purified_ratio" or k.startswith("purified_ratio/")]
    return nanmean([diag[k] for k in keys])


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``.lock while a table is read and rewritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def current_rows(
    table: pd.DataFrame, name: str, config_of: Callable[..., RunConfig]
) -> pd.DataFrame:
    """The rows whose config hash is the one the current code and presets give their cell.

    ``config_of(dataset_ref, noise, rate, seed, <name column>)`` builds a cell's config. A row
    made before a preset or method change (e.g. DISC's optimiser above 0.6) is superseded: it is
    left in the CSV (the history) but out of the tables, and a line on stderr says how many.
    """
    if not len(table):
        return table
    cells = ["dataset", "noise", "rate", "seed", name]
    hashes = {
        cell: config_of(
            dataset_ref(cell[0]), cell[1], float(cell[2]), int(cell[3]), cell[4]
        ).config_hash()
        for cell in table[cells].drop_duplicates().itertuples(index=False, name=None)
    }
    keep = [
        hashes[c] == h
        for c, h in zip(table[cells].itertuples(index=False, name=None), table[KEY], strict=True)
    ]
    keep = pd.Series(keep, index=table.index)
    stale = table[~keep].drop_duplicates(KEY)
    if len(stale):
        what = ", ".join(sorted({f"{r[name]} {r.noise} {r.rate:g}" for _, r in stale.iterrows()}))
        print(
            f"{len(stale)} superseded run(s) left out (config changed since): {what}",
            file=sys.stderr,
        )
    return table[keep]


def done_hashes(path: Path) -> set[str]:
    """Config hashes that already have a row in the table at ``path``."""
    table = read_table(path)
    return set(table[KEY]) if len(table) else set()


def append_rows(path: Path, rows: list[dict], key: list[str]) -> None:
    """Add ``rows`` to the CSV at ``path`` (replacing rows with the same ``key``), atomically,
    under the table's lock (several shards append to one table)."""
    with locked(path):
        old = read_table(path)
        new = pd.DataFrame(rows)
        table = pd.concat([old, new], ignore_index=True) if len(old) else new
        table = table.drop_duplicates(subset=key, keep="last")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        table.to_csv(tmp, index=False, float_format="%.6g")
        os.replace(tmp, path)


def train(cfg: RunConfig, out: Path) -> dict[str, Any] | None:
    """Train (or resume, or read) ``cfg`` under ``out`` holding its run lock; the summary, or
    None when another process is training this config now (the caller skips it)."""
    try:
        return run_exclusive(cfg, out)
    except RunBusyError as exc:
        print(f"skipped: {exc}", flush=True)
        return None


# a benchmark table's column -> the results-table columns it fills (lnmbench.experiment.store)
STORE_COLUMNS: dict[str, tuple[str, ...]] = {
    "acc_last5": ("headline", "test_acc_last5", "accuracy_last5"),  # validity.py
    "acc": ("headline", "test_acc_last5", "accuracy_last5"),  # medssl.py
    "acc_best_val": ("test_acc_best_val", "accuracy_best_val"),
    "acc_final": ("test_acc_final", "accuracy_final"),
    "acc_peak": ("test_acc_best_oracle",),
    "bal_acc_last5": ("balanced_accuracy_last5",),
    "bal_acc": ("balanced_accuracy_last5",),
    "macro_f1": ("macro_f1_last5",),
    "qwk": ("qwk_last5",),
    "sel_precision": ("selection_precision",),
    "sel_recall": ("selection_recall",),
    "detection_auroc": ("detection_auroc",),
    "purified_ratio": ("purified_ratio",),
    "t_error": ("transition_error",),
    "realised_rate": ("realised_noise_train",),
    "wall_s": ("wall_s",),
    "epochs": ("epochs_done",),
}


def store_table(
    table: pd.DataFrame, name: str, config_of: Callable[..., RunConfig]
) -> pd.DataFrame:
    """A benchmark table (one row per finished run) in the schema of ``lnmbench results``.

    ``name`` is the column that becomes ``method`` (``variant`` for medssl.py, so each variant is
    its own method in the report); the config columns (model, size, preset, epochs, run name)
    come from ``config_of(dataset_ref, noise, rate, seed, <name>)``, the run's resolved config.
    ``lnmbench report`` reads the result from the file alone, without run folders. Rows of
    cells whose labels carry no class information (:func:`informative`) are left out.
    """
    from lnmbench.experiment.store import COLUMNS

    rows = []
    for rec in table.to_dict("records"):
        if not informative(rec["dataset"], rec["noise"], float(rec["rate"])):
            continue  # labels without class information: neither run nor judged (above)
        cfg = config_of(
            dataset_ref(rec["dataset"]),
            rec["noise"],
            float(rec["rate"]),
            int(rec["seed"]),
            rec[name],
        )
        if cfg.config_hash() != rec[KEY]:
            raise ValueError(f"row {rec[name]} {rec['dataset']} is not the current config")
        row: dict[str, Any] = dict.fromkeys(COLUMNS, float("nan"))
        row.update(
            run=cfg.run_name(),
            status="done",
            method=rec[name],
            dataset=rec["dataset"],
            noise=rec["noise"],
            rate=float(rec["rate"]),
            noise_seed=cfg.noise.seed if cfg.noise.seed is not None else cfg.seed,
            seed=int(rec["seed"]),
            model=cfg.model,
            size=cfg.size,
            preset=cfg.preset,
            protocol=cfg.protocol,
            epochs=cfg.epochs,
            config_hash=rec[KEY],
            run_folder=None,
            noise_rate_source=None,
            error=None,
        )
        for src, dests in STORE_COLUMNS.items():
            if src in rec:
                row.update(dict.fromkeys(dests, rec[src]))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def export_store_table(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` (:func:`store_table`) as Parquet or CSV, by ``path``'s suffix."""
    from lnmbench.experiment.store import write_results

    if path.suffix.lower() not in (".parquet", ".csv"):
        raise SystemExit(f"--export {path}: the file must end in .parquet or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        write_results(frame, parquet=path)
    else:
        write_results(frame, csv=path)
    print(f"wrote {path}: {len(frame)} runs (report it with `lnmbench report {path}`)")
