"""Read a result root into the per-run results table, fast: rows of finished runs are taken from
``ROOT/results.parquet`` when it is newer than their ``summary.json``; only the other run folders
are read (with a progress bar), and the refreshed table is written back."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lnmbench.errors import ConfigError
from lnmbench.experiment.store import (
    COLUMNS,
    apply_filters,
    find_run_folders,
    read_run,
    record_row,
    write_results,
)

TABLE_NAME = "results.parquet"
INT_COLUMNS = ("seed", "noise_seed", "size", "epochs", "best_val_epoch", "epochs_done")
# the paper's three noise patterns, by generator name; other generators form their own pattern
PATTERNS = {
    "symmetric": "symmetric",
    "symmetric_inclusive": "symmetric",
    "instance": "instance",
    "instance-classifier": "instance",
    "realworld": "real-world",
}
PATTERN_ORDER = ("symmetric", "instance", "real-world")
NO_RATE = -1.0  # the rate key of real-world noise (no nominal rate)

Progress = Callable[[int, int], None]


def _cached_rows(root: Path) -> tuple[dict[str, dict[str, Any]], float]:
    """Rows of ``ROOT/results.parquet`` by run name, and the table's mtime (0 when absent)."""
    path = root / TABLE_NAME
    try:
        mtime = path.stat().st_mtime
        df = pd.read_parquet(path)
    except (OSError, ValueError):
        return {}, 0.0
    if list(df.columns) != list(COLUMNS):
        return {}, 0.0  # written by another version of the store: rebuild
    return {r["run"]: r for r in df.to_dict("records")}, mtime


def _reusable(row: dict[str, Any] | None, folder: Path, table_mtime: float) -> bool:
    """A finished run's row is final once its summary is older than the table."""
    if row is None or row.get("status") != "done":
        return False
    try:
        return os.stat(folder / "summary.json").st_mtime < table_mtime
    except OSError:
        return False


def load_results(
    root: str | Path,
    filters: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    write_back: bool = True,
) -> tuple[pd.DataFrame, int]:
    """The results table of ``root`` (columns :data:`COLUMNS`) and how many folders were read.

    ``progress(done, total)`` is called while run folders are read. Raises ConfigError when
    ``root`` is not a folder or holds no run folder.
    """
    root = Path(root)
    folders = find_run_folders(root)
    if not folders:
        raise ConfigError(f"no run folders under {root} (run `lnmbench grid` or `lnmbench run`)")
    cached, mtime = _cached_rows(root)
    rows: list[dict[str, Any] | None] = []
    todo: list[tuple[int, Path]] = []
    for i, folder in enumerate(folders):
        row = cached.get(folder.name)
        if _reusable(row, folder, mtime):
            rows.append({**row, "run_folder": str(folder)})  # type: ignore[dict-item]
        else:
            rows.append(None)
            todo.append((i, folder))
    for n, (i, folder) in enumerate(todo, 1):
        rows[i] = record_row(read_run(folder))
        if progress is not None:
            progress(n, len(todo))
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    keys = ["method", "dataset", "noise", "rate", "seed", "run"]
    df = df.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)
    if write_back and todo:
        # a read-only result root: the report still works, only slower next time
        with contextlib.suppress(OSError):
            write_results(df, parquet=root / TABLE_NAME)
    return apply_filters(df, filters), len(todo)


def add_keys(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the report's keys: ``pattern`` (symmetric / instance / real-world / other
    generator) and ``rate_key`` (the nominal rate; :data:`NO_RATE` for real-world noise)."""
    out = df.copy()
    out["pattern"] = [PATTERNS.get(str(n), str(n)) for n in out["noise"]]
    rate = out["rate"].astype(float)
    out["rate_key"] = rate.where(rate.notna() & (out["noise"] != "realworld"), NO_RATE).round(6)
    return out


def rate_label(rate: float) -> str:
    return "—" if rate == NO_RATE else f"{rate:g}"
