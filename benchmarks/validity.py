"""Validity table: does every method show its effect against CE in the CPU protocol (`fast`)?

Every registered method (or ``--methods``) on the demo set, RetinaMNIST, BreastMNIST and
BloodMNIST (``../shared/data/*.npz``), under symmetric 0.2 / 0.5 / 0.8, pair-flip 0.4 and PDN
instance 0.5, seeds 0 and 1 (``--seeds``), in the fast preset (methods.md §1a: no augmentation of
the training view, 40 epochs, at least 960 optimiser steps). Cells run in a fixed priority order
(the small sets first, seed by seed, then BloodMNIST), so that a partial table is the most
useful one.

Resumable twice over: a run that is interrupted resumes from its checkpoint (``run_one``), and a
finished run's row is written at once to ``benchmarks/results/validity.csv`` (one row per run,
keyed by its config hash) and its per-epoch curve to ``validity_curves.csv``; cells whose hash is
already in the committed table are skipped, so a later session continues where this one stopped.
Several processes may share the work (``--shard 0/2`` and ``--shard 1/2``); the tables are
updated under a file lock.

    python benchmarks/validity.py --shard 0/2 & python benchmarks/validity.py --shard 1/2
    python benchmarks/validity.py --table          # the Markdown table from the committed rows
    python benchmarks/validity.py --quick          # smoke test: tiny subset, cnn-tiny, 2 epochs

Each process uses one torch thread (``OMP_NUM_THREADS=1`` is set before torch is imported).
"""

from __future__ import annotations

import argparse
import fcntl
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from lnmbench.engine.run_folder import RunFolder
from lnmbench.experiment.config import resolve_config
from lnmbench.experiment.run import run_one
from lnmbench.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
TABLE = RESULTS / "validity.csv"
CURVES = RESULTS / "validity_curves.csv"
DATASETS = ("demo", "retinamnist", "breastmnist", "bloodmnist")
NOISES = ("symmetric:0.5", "symmetric:0.8", "pairflip:0.4", "instance:0.5", "symmetric:0.2")
SEEDS = (0, 1)
KEY = "config_hash"


def dataset_ref(name: str) -> str:
    """The dataset argument of a run: the bundled ``demo`` or a file of ../shared/data."""
    if name == "demo":
        return name
    path = SHARED / f"{name}.npz"
    if not path.exists():
        raise SystemExit(f"{path} not found: the real MedMNIST files live in ../shared/data")
    return str(path)


def cells(
    datasets: list[str], noises: list[str], seeds: list[int], methods: list[str]
) -> Iterator[tuple[str, str, float, int, str]]:
    """(dataset, noise, rate, seed, method) in priority order: the cheap small sets seed by seed,
    then BloodMNIST (four times the demo set's cost per run)."""
    small = [d for d in datasets if d != "bloodmnist"]
    groups = [small, [d for d in datasets if d == "bloodmnist"]]
    for group in groups:
        for seed in seeds:
            for noise in noises:
                name, _, rate = noise.partition(":")
                for dataset in group:
                    for method in methods:
                        yield dataset, name, float(rate), seed, method


def config(dataset: str, noise: str, rate: float, seed: int, method: str, quick: bool):
    user: dict[str, Any] = {
        "method": method,
        "dataset": dataset,
        "noise": {"name": noise, "rate": rate},
        "seed": seed,
        "preset": "fast",
        "progress": False,
    }
    if quick:
        user.update(epochs=2, model="cnn-tiny")
    return resolve_config(user, "validity benchmark")


def _nanmean(values: list[Any]) -> float:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(np.mean(vals)) if vals else float("nan")


def selection_means(diag: dict[str, Any]) -> dict[str, float]:
    """Selection precision / recall / detection AUROC averaged over a method's selected sets."""
    sets = [v for k, v in diag.items() if k.startswith("selection/") and isinstance(v, dict)]
    return {
        "sel_precision": _nanmean([s.get("precision") for s in sets]),
        "sel_recall": _nanmean([s.get("recall") for s in sets]),
        "detection_auroc": _nanmean([s.get("detection_auroc") for s in sets]),
    }


def purified(diag: dict[str, Any]) -> float:
    """Purified ratio (DISC) or its mean over the nets (DivideMix); nan if none."""
    keys = [k for k in diag if k == "purified_ratio" or k.startswith("purified_ratio/")]
    return _nanmean([diag[k] for k in keys])


def run_rows(folder: RunFolder, summary: dict[str, Any], cell: tuple) -> tuple[dict, list[dict]]:
    """The table row of a finished run and its per-epoch curve rows."""
    dataset, noise, rate, seed, method = cell
    metrics = folder.read_metrics()
    last = metrics[-1]
    diag = summary.get("diagnostics_final", {})
    base = {"dataset": dataset, "noise": noise, "rate": rate, "seed": seed, "method": method}
    row = {
        **base,
        KEY: summary["config_hash"],
        "epochs": summary["epochs_done"],
        "acc_last5": summary["test_acc_last5"],
        "acc_best_val": summary["test_acc_best_val"],
        "acc_final": summary["test_acc_final"],
        "acc_peak": summary["test_acc_best_oracle"],
        "bal_acc_last5": summary["metrics"]["balanced_accuracy"]["last5"],
        "train_acc_noisy_final": last["train"].get("acc_noisy", float("nan")),
        **selection_means(diag),
        "purified_ratio": purified(diag),
        "t_error": diag.get("transition_error", float("nan")),
        "realised_rate": summary["realised_noise_rate"]["train"],
        "wall_s": summary["wall_s"],
    }
    curve = [
        {
            **base,
            KEY: summary["config_hash"],
            "epoch": r["epoch"],
            "train_acc_noisy": r["train"].get("acc_noisy", float("nan")),
            "val_acc": r["val_headline_acc"],
            "test_acc": r["test_headline_acc"],
            **selection_means(r.get("diagnostics", {})),
        }
        for r in metrics
        if r["epoch"] >= 0
    ]
    return row, curve


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``.lock while the tables are read and rewritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def append_rows(path: Path, rows: list[dict], key: list[str]) -> None:
    """Add ``rows`` to the CSV at ``path`` (replacing rows with the same ``key``), atomically."""
    old = read_table(path)
    new = pd.DataFrame(rows)
    table = pd.concat([old, new], ignore_index=True) if len(old) else new
    table = table.drop_duplicates(subset=key, keep="last")
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    table.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)


def done_hashes(path: Path) -> set[str]:
    table = read_table(path)
    return set(table[KEY]) if len(table) else set()


def run_cells(args: argparse.Namespace) -> int:
    table, curves = (args.results / TABLE.name, args.results / CURVES.name)
    k, n = (int(x) for x in args.shard.split("/"))
    todo = list(cells(args.datasets, args.noises, args.seeds, args.methods))
    for i, cell in enumerate(todo):
        if i % n != k:
            continue
        dataset, noise, rate, seed, method = cell
        cfg = config(dataset_ref(dataset), noise, rate, seed, method, args.quick)
        if cfg.config_hash() in done_hashes(table):
            continue
        label = f"[{i + 1}/{len(todo)}] {method} {dataset} {noise} {rate:g} seed {seed}"
        print(f"{label} ({cfg.epochs} epochs) ...", flush=True)
        t0 = time.perf_counter()
        summary = run_one(cfg, args.out)
        row, curve = run_rows(RunFolder(args.out / cfg.run_name()), summary, cell)
        with locked(table):
            append_rows(table, [row], [KEY])
            append_rows(curves, curve, [KEY, "epoch"])
        print(
            f"{label}: last-5 {100 * row['acc_last5']:.2f} %, peak {100 * row['acc_peak']:.2f} %, "
            f"train acc on noisy labels {100 * row['train_acc_noisy_final']:.1f} % "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return 0


def fmt(values: pd.Series) -> str:
    vals = 100 * values.dropna()
    if not len(vals):
        return "–"
    if len(vals) == 1:
        return f"{vals.iloc[0]:.2f} (1)"
    return f"{vals.mean():.2f} ± {vals.std(ddof=1):.2f} ({len(vals)})"


def markdown(table: pd.DataFrame, metric: str = "acc_last5") -> str:
    """Per (dataset, noise, rate): each method's mean ± std over seeds (n) and Δ to CE on the
    seeds both have."""
    lines = []
    for (dataset, noise, rate), part in table.groupby(["dataset", "noise", "rate"], sort=False):
        ce = part[part.method == "ce"].set_index("seed")[metric]
        lines += [
            f"\n**{dataset}, {noise} {rate:g}**\n",
            "| method | last-5 acc (%) | Δ vs CE (points) | peak (%) | train acc on noisy (%) "
            "| sel. precision (%) | sel. recall (%) |",
            "|---|---|---|---|---|---|---|",
        ]
        for method, rows in part.groupby("method", sort=False):
            by_seed = rows.set_index("seed")[metric]
            common = by_seed.index.intersection(ce.index)
            delta = (by_seed[common] - ce[common]) if method != "ce" and len(common) else None
            lines.append(
                f"| {method} | {fmt(rows[metric])} | "
                f"{'–' if delta is None else f'{100 * delta.mean():+.2f}'} | {fmt(rows.acc_peak)} "
                f"| {fmt(rows.train_acc_noisy_final)} | {fmt(rows.sel_precision)} "
                f"| {fmt(rows.sel_recall)} |"
            )
    return "\n".join(lines)


def curves_markdown(curves: pd.DataFrame, epochs: tuple[int, ...] = (0, 3, 6, 10, 20, 30)) -> str:
    """Per (dataset, noise, rate, seed): CE's training accuracy on the noisy labels and test
    accuracy, and each selecting method's selection precision / recall, at a few epochs (and the
    last one) — the evidence that a cell is in the memorisation regime."""
    lines = []
    cells = curves.groupby(["dataset", "noise", "rate", "seed"], sort=False)
    for (dataset, noise, rate, seed), part in cells:
        last = int(part.epoch.max())
        shown = [e for e in epochs if e < last] + [last]
        lines += [
            f"\n**{dataset}, {noise} {rate:g}, seed {seed}**\n",
            "| method | quantity | " + " | ".join(f"e{e}" for e in shown) + " |",
            "|---|---|" + "---|" * len(shown),
        ]
        for method, rows in part.groupby("method", sort=False):
            rows = rows.set_index("epoch")
            quantities = [("test acc", "test_acc")]
            if method == "ce":
                quantities.insert(0, ("train acc on noisy labels", "train_acc_noisy"))
            if rows.sel_precision.notna().any():
                quantities += [("sel. precision", "sel_precision"), ("sel. recall", "sel_recall")]
            for label, col in quantities:
                vals = [rows[col].get(e, float("nan")) for e in shown]
                cells_txt = " | ".join("–" if pd.isna(v) else f"{100 * v:.1f}" for v in vals)
                lines.append(f"| {method} | {label} | {cells_txt} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "validity")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--noises", nargs="+", default=list(NOISES))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    # medssl is left out: it is not one of the paper's methods whose effect against CE this table
    # checks, and it has its own benchmark (benchmarks/medssl.py, against DivideMix and DISC)
    ap.add_argument("--methods", nargs="+", default=[m for m in METHODS.names() if m != "medssl"])
    ap.add_argument("--shard", default="0/1", help="K/N: run every N-th cell starting at K")
    ap.add_argument("--table", action="store_true", help="print the Markdown table and exit")
    ap.add_argument("--curves", action="store_true", help="print the per-epoch regime evidence")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 epochs, cnn-tiny, temp dir")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.methods) - set(METHODS.names()))
    if unknown:
        ap.error(f"unknown method(s) {unknown}; known: {', '.join(METHODS.names())}")
    if args.table:
        print(markdown(read_table(args.results / TABLE.name)))
        return 0
    if args.curves:
        print(curves_markdown(read_table(args.results / CURVES.name)))
        return 0
    if args.quick:
        tmp = Path(tempfile.mkdtemp(prefix="validity_quick_"))
        args.out, args.results = tmp / "runs", tmp / "results"
        args.datasets, args.noises, args.seeds = ["demo"], ["symmetric:0.5"], [0]
        run_cells(args)
        print(markdown(read_table(args.results / TABLE.name)))
        return 0
    return run_cells(args)


if __name__ == "__main__":
    sys.exit(main())
