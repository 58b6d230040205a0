"""The result store: run folders under a root -> status and one results table (derived, never
the source of truth).

A run folder is a folder holding ``config.yaml`` (the first file a run writes) or ``failed.txt``.
Status: ``done`` (``summary.json``), ``failed`` (``failed.txt`` with the traceback, no summary),
``running`` (a worker holds the folder's run lock now), ``interrupted`` (started, no summary, no
failure, nobody running it: the next grid run resumes it from its checkpoint). Planned runs
without a folder are ``pending``. The run lock is an advisory ``flock`` on ``.running.lock`` held
by the worker while it trains; the operating system releases it when the worker dies, so a killed
run is never mistaken for a running one (without ``fcntl``, i.e. not on POSIX, no lock is taken
and unfinished runs read as interrupted).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from lnmbench.engine.run_folder import RunFolder
from lnmbench.errors import ConfigError
from lnmbench.experiment.summary import SCALAR_METRICS

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

RunStatus = Literal["done", "failed", "running", "interrupted", "pending"]
STATUSES: tuple[RunStatus, ...] = ("done", "failed", "running", "interrupted", "pending")
LOCK_NAME = ".running.lock"
CONFIG_COLUMNS = (
    "run",
    "status",
    "method",
    "dataset",
    "noise",
    "rate",
    "noise_seed",
    "seed",
    "model",
    "size",
    "preset",
    "protocol",
    "epochs",
    "config_hash",
    "run_folder",
)
HEADLINE_COLUMNS = (
    "headline",
    "test_acc_last5",
    "test_acc_best_val",
    "test_acc_final",
    "test_acc_best_oracle",
    "best_val_epoch",
    "best_val_acc",
    "epochs_done",
)
METRIC_COLUMNS = tuple(f"{m}_{k}" for m in SCALAR_METRICS for k in ("last5", "best_val", "final"))
DIAGNOSTIC_COLUMNS = (
    "realised_noise_train",
    "realised_noise_val",
    "noise_rate_used",
    "noise_rate_source",
    "selection_precision",
    "selection_recall",
    "detection_auroc",
    "purified_ratio",
    "label_recovery",
    "transition_error",
)
TIME_COLUMNS = ("wall_s", "train_images_per_s", "error")
COLUMNS = CONFIG_COLUMNS + HEADLINE_COLUMNS + METRIC_COLUMNS + DIAGNOSTIC_COLUMNS + TIME_COLUMNS


@contextmanager
def run_lock(folder: str | Path) -> Iterator[bool]:
    """Hold the run lock of ``folder`` (created if needed) while the block runs.

    Yields True when this process got it, False when another process holds it.
    """
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield True
        return
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def is_locked(folder: str | Path) -> bool:
    """Whether some process holds the run lock of ``folder`` now."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None or not path.exists():
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def run_status(folder: str | Path) -> RunStatus:
    """Status of one run folder (``pending`` when it does not exist or holds nothing yet)."""
    f = RunFolder(folder)
    if f.summary.exists():
        return "done"
    if is_locked(f.path):
        return "running"
    if f.failed.exists():
        return "failed"
    if f.config.exists() or f.metrics.exists() or f.checkpoint.exists():
        return "interrupted"
    return "pending"


def statuses(root: str | Path, names: Iterable[str]) -> dict[str, RunStatus]:
    """Status of each named run folder under ``root``."""
    root = Path(root)
    return {n: run_status(root / n) for n in names}


def is_run_folder(path: Path) -> bool:
    return (path / "config.yaml").exists() or (path / "failed.txt").exists()


def find_run_folders(root: str | Path) -> list[Path]:
    """Run folders anywhere under ``root`` (a run folder's own subfolders are not searched)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"result root {root} does not exist or is not a folder")
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        path = Path(dirpath)
        if path != root and is_run_folder(path):
            found.append(path)
            dirnames.clear()
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


# libyaml's safe loader where PyYAML has it (about 10x faster on 1,000s of config.yaml files)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict[str, Any] | None:
    try:
        data = yaml.load(path.read_text(), Loader=_SAFE_LOADER)
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def failure_message(text: str) -> str:
    """The exception line of a traceback (its last non-empty line)."""
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else "failed (no message)"


def dataset_label(dataset: str) -> str:
    """A registered name as is; a file path by its stem (as in the run folder name)."""
    from lnmbench.data import is_path_like

    return Path(dataset).stem if is_path_like(dataset) else dataset


@dataclass(frozen=True)
class RunRecord:
    """One run folder as read from disk."""

    path: Path
    status: RunStatus
    config: dict[str, Any] | None
    summary: dict[str, Any] | None
    error: str | None


def read_run(path: str | Path) -> RunRecord:
    f = RunFolder(path)
    status = run_status(f.path)
    summary = _read_json(f.summary) if status == "done" else None
    error = failure_message(f.failed.read_text()) if status == "failed" else None
    return RunRecord(f.path, status, _read_yaml(f.config), summary, error)


def _num(x: Any) -> float:
    """A JSON scalar as float; None (JSON for NaN) and non-numbers become NaN."""
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else float("nan")


def _mean_of(values: list[Any]) -> float:
    arr = np.array([_num(v) for v in values], dtype=float)
    return float(np.nanmean(arr)) if arr.size and not np.all(np.isnan(arr)) else float("nan")


def diagnostic_columns(diagnostics: Mapping[str, Any]) -> dict[str, float]:
    """Final-epoch diagnostics as scalars.

    Selection precision/recall/AUROC are the mean over the method's selections (e.g. both nets of
    a co-teaching pair); absent diagnostics are NaN.
    """
    sel = [v for k, v in diagnostics.items() if k.startswith("selection/") and isinstance(v, dict)]
    return {
        "selection_precision": _mean_of([s.get("precision") for s in sel]),
        "selection_recall": _mean_of([s.get("recall") for s in sel]),
        "detection_auroc": _mean_of([s.get("detection_auroc") for s in sel]),
        "purified_ratio": _num(diagnostics.get("purified_ratio")),
        "label_recovery": _num(diagnostics.get("label_recovery")),
        "transition_error": _num(diagnostics.get("transition_error")),
    }


def record_row(rec: RunRecord) -> dict[str, Any]:
    """One table row: config columns from config.yaml, result columns from summary.json."""
    cfg = rec.config or {}
    noise = cfg.get("noise") or {}
    noise_seed = noise.get("seed") if noise.get("seed") is not None else cfg.get("seed")
    row: dict[str, Any] = dict.fromkeys(COLUMNS, float("nan"))
    row.update(
        {
            "run": rec.path.name,
            "status": rec.status,
            "method": cfg.get("method"),
            "dataset": dataset_label(cfg["dataset"]) if cfg.get("dataset") else None,
            "noise": noise.get("name"),
            "rate": _num(noise.get("rate")),
            "noise_seed": _num(noise_seed),
            "seed": cfg.get("seed"),
            "model": cfg.get("model"),
            "size": cfg.get("size"),
            "preset": cfg.get("preset"),
            "protocol": cfg.get("protocol"),
            "epochs": cfg.get("epochs"),
            "config_hash": None,
            "run_folder": str(rec.path),
            "noise_rate_source": None,
            "error": rec.error,
        }
    )
    if rec.config is not None:
        from lnmbench.experiment.config import RunConfig

        try:
            row["config_hash"] = RunConfig.model_validate(rec.config).config_hash()
        except ValueError:
            row["config_hash"] = None
    s = rec.summary
    if s is None:
        return row
    row["config_hash"] = s.get("config_hash", row["config_hash"])
    row["headline"] = _num((s.get("headline") or {}).get("value"))
    for k in ("test_acc_last5", "test_acc_best_val", "test_acc_final", "test_acc_best_oracle"):
        row[k] = _num(s.get(k))
    row["best_val_epoch"] = s.get("best_val_epoch")
    row["best_val_acc"] = _num(s.get("best_val_acc"))
    row["epochs_done"] = s.get("epochs_done")
    for m, vals in (s.get("metrics") or {}).items():
        for k in ("last5", "best_val", "final"):
            if f"{m}_{k}" in row:
                row[f"{m}_{k}"] = _num(vals.get(k))
    rr = s.get("realised_noise_rate") or {}
    row["realised_noise_train"] = _num(rr.get("train"))
    row["realised_noise_val"] = _num(rr.get("val"))
    used = s.get("noise_rate_used") or {}
    row["noise_rate_used"] = _num(used.get("value"))
    row["noise_rate_source"] = used.get("source")
    row.update(diagnostic_columns(s.get("diagnostics_final") or {}))
    row["wall_s"] = _num(s.get("wall_s"))
    row["train_images_per_s"] = _num((s.get("time") or {}).get("train_images_per_s"))
    return row


def parse_filters(items: Iterable[str]) -> dict[str, list[str]]:
    """``["method=ce,sce", "rate=0.5"]`` -> {"method": ["ce", "sce"], "rate": ["0.5"]}."""
    out: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--filter expects COLUMN=VALUE[,VALUE...], got {item!r}")
        key, value = item.split("=", 1)
        out.setdefault(key.strip(), []).extend(v.strip() for v in value.split(","))
    return out


def apply_filters(df: pd.DataFrame, filters: Mapping[str, Any] | None) -> pd.DataFrame:
    """Keep rows whose column equals one of the given values (strings are converted to the
    column's type; numbers compare with a 1e-9 tolerance)."""
    for col, wanted in (filters or {}).items():
        if col not in df.columns:
            raise ConfigError(f"unknown filter column {col!r}; columns: {', '.join(df.columns)}")
        values = wanted if isinstance(wanted, list | tuple | set) else [wanted]
        series = df[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            try:
                nums = [float(v) for v in values]
            except (TypeError, ValueError):
                raise ConfigError(f"filter {col}: {values} are not numbers") from None
            column = series.astype("float64").to_numpy(na_value=np.nan)
            keep = np.zeros(len(df), dtype=bool)
            for v in nums:
                keep |= np.isclose(column, v, rtol=0, atol=1e-9)
        else:
            keep = series.astype(str).isin([str(v) for v in values]).to_numpy()
        df = df[keep]
    return df.reset_index(drop=True)


def results_table(root: str | Path, filters: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per run folder under ``root`` (every status), columns :data:`COLUMNS`.

    ``filters`` maps a column to a value or list of values, e.g. {"method": "ce", "rate": 0.5,
    "status": "done"}. Rows are sorted by method, dataset, noise, rate, seed, run.
    """
    rows = [record_row(read_run(p)) for p in find_run_folders(root)]
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("seed", "noise_seed", "size", "epochs", "best_val_epoch", "epochs_done"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    df = apply_filters(df, filters)
    keys = ["method", "dataset", "noise", "rate", "seed", "run"]
    return df.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)


def _atomic_replace(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results(
    df: pd.DataFrame, parquet: str | Path | None = None, csv: str | Path | None = None
) -> None:
    """Write the table as Parquet and/or CSV (each atomically)."""
    if parquet is not None:
        _atomic_replace(Path(parquet), lambda p: df.to_parquet(p, index=False))
    if csv is not None:
        _atomic_replace(Path(csv), lambda p: df.to_csv(p, index=False))


# the columns varied within a results table that also split the seed groups
VARIANT_COLUMNS = ("model", "size", "preset", "protocol", "epochs")


def mean_std_over_seeds(df: pd.DataFrame, metrics: Iterable[str] = ("headline",)) -> pd.DataFrame:
    """Mean and sample std (ddof 1; NaN for one seed) over the finished runs of each group.

    Groups: method, dataset, noise, rate, plus any of model/size/preset/protocol/epochs that take
    more than one value in ``df``. Columns: the keys, ``n_seeds`` (distinct seeds), ``n_runs``
    (finished runs; more than n_seeds when a group mixes configurations) and ``<metric>_mean`` /
    ``<metric>_std`` per metric.
    """
    metrics = list(metrics)
    done = df[df["status"] == "done"]
    keys = ["method", "dataset", "noise", "rate"]
    keys += [c for c in VARIANT_COLUMNS if c in done.columns and done[c].nunique(dropna=True) > 1]
    columns = [*keys, "n_seeds", "n_runs"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    if done.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, grp in done.groupby(keys, sort=True, dropna=False):
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["n_seeds"] = int(grp["seed"].nunique())
        row["n_runs"] = len(grp)
        for m in metrics:
            vals = grp[m].astype(float).dropna()
            row[f"{m}_mean"] = float(vals.mean()) if len(vals) else float("nan")
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
