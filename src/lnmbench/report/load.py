"""Read a result root into the per-run results table, fast: rows of finished runs are taken from
``ROOT/results.parquet`` when it is newer than their ``summary.json``; only the other run folders
are read (with a progress bar), and the refreshed table is written back.

The root may also be a results table itself (``.parquet`` or ``.csv`` with the store's columns,
as ``lnmbench results`` writes it or a benchmark exports it): the report is then built from the
table alone, and the parts that need run folders (per-epoch curves, per-class sensitivity,
run pages) are left out."""

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
TABLE_SUFFIXES = (".parquet", ".csv")
# the columns a results table must have to be reported; the others default to empty
REQUIRED_COLUMNS = ("method", "dataset", "noise", "rate", "seed")


def has_folder(value: Any) -> bool:
    """Whether a row's ``run_folder`` names a folder (rows read from a table have none)."""
    return isinstance(value, str | os.PathLike) and str(value) != ""


def is_results_table(root: str | Path) -> bool:
    return Path(root).suffix.lower() in TABLE_SUFFIXES and not Path(root).is_dir()


def read_results_table(path: str | Path) -> pd.DataFrame:
    """A results table file as a frame with every column of :data:`COLUMNS`.

    Rows without ``status`` count as done; rows without ``run`` are named from their cell. Raises
    ConfigError naming the file when it is missing, unreadable or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"results table {path} not found (write one with `lnmbench results ROOT --parquet "
            f"{path.name}` or pass a folder of run folders)"
        )
    try:
        raw = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ConfigError(f"results table {path} cannot be read ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ConfigError(
            f"results table {path} lacks the column(s) {', '.join(missing)}; a results table "
            f"has one row per run with at least {', '.join(REQUIRED_COLUMNS)} and a metric "
            "column such as accuracy_last5 (the columns `lnmbench results` writes)"
        )
    if raw.empty:
        raise ConfigError(f"results table {path} has no rows")
    unknown = [c for c in raw.columns if c not in COLUMNS]
    df = raw.reindex(columns=list(COLUMNS))
    if unknown:  # kept after the store's columns, so a filter can still use them
        df = pd.concat([df, raw[unknown]], axis=1)
    df["status"] = df["status"].astype(object).where(df["status"].notna(), "done")
    df["run_folder"] = None
    names = [
        f"{r.method}_{r.dataset}_{r.noise}{r.rate:g}_s{r.seed}_{i}"
        for i, r in enumerate(df[list(REQUIRED_COLUMNS)].itertuples(index=False))
    ]
    df["run"] = df["run"].astype(object).where(df["run"].notna(), pd.Series(names, index=df.index))
    return df


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

    ``root`` is a folder of run folders or a results table file (:func:`read_results_table`).
    ``progress(done, total)`` is called while run folders are read. Raises ConfigError when
    ``root`` is not a folder or holds no run folder.
    """
    root = Path(root)
    if is_results_table(root):
        return _typed(read_results_table(root), filters), 0
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
    df = _typed(pd.DataFrame(rows, columns=list(COLUMNS)), None)
    if write_back and todo:
        # a read-only result root: the report still works, only slower next time
        with contextlib.suppress(OSError):
            write_results(df, parquet=root / TABLE_NAME)
    return apply_filters(df, filters), len(todo)


def _typed(df: pd.DataFrame, filters: Mapping[str, Any] | None) -> pd.DataFrame:
    """Integer columns as nullable integers, rows in (method, cell, seed, run) order, filtered."""
    for col in INT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    df["rate"] = pd.to_numeric(df["rate"], errors="coerce")
    keys = ["method", "dataset", "noise", "rate", "seed", "run"]
    df = df.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)
    return apply_filters(df, filters)


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
