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
    python benchmarks/validity.py --quick          # smoke test: tiny subset, cnn-tiny, 3 epochs

Each process uses one torch thread (``OMP_NUM_THREADS=1`` is set before torch is imported).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd

from lnmbench.engine.run_folder import RunFolder
from lnmbench.experiment.config import resolve_config
from lnmbench.methods import METHODS
from result_table import (
    KEY,
    RESULTS,
    ROOT,
    append_rows,
    current_rows,
    dataset_ref,
    done_hashes,
    export_store_table,
    informative,
    nanmean,
    purified,
    read_table,
    selection_sets,
    store_table,
    train,
    unlearnable_by_cell,
    unlearnable_note,
)

TABLE = RESULTS / "validity.csv"
CURVES = RESULTS / "validity_curves.csv"
DATASETS = ("demo", "retinamnist", "breastmnist", "bloodmnist")
NOISES = ("symmetric:0.5", "symmetric:0.8", "pairflip:0.4", "instance:0.5", "symmetric:0.2")
SEEDS = (0, 1)


def cells(
    datasets: list[str], noises: list[str], seeds: list[int], methods: list[str]
) -> Iterator[tuple[str, str, float, int, str]]:
    """(dataset, noise, rate, seed, method) in priority order: the cheap small sets seed by seed,
    then BloodMNIST (four times the demo set's cost per run); cells whose noisy labels carry no
    class information (BreastMNIST at symmetric 0.5 and 0.8) are left out."""
    small = [d for d in datasets if d != "bloodmnist"]
    groups = [small, [d for d in datasets if d == "bloodmnist"]]
    for group in groups:
        for seed in seeds:
            for noise in noises:
                name, _, rate = noise.partition(":")
                for dataset in group:
                    if not informative(dataset, name, float(rate)):
                        continue
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
        user.update(epochs=3, model="cnn-tiny")  # t-revision needs >= 3 (its three stages)
    return resolve_config(user, "validity benchmark")


def selection_means(diag: dict[str, Any]) -> dict[str, float]:
    """Selection precision / recall / detection AUROC averaged over a method's selected sets."""
    sets = selection_sets(diag)
    return {
        "sel_precision": nanmean([s.get("precision") for s in sets]),
        "sel_recall": nanmean([s.get("recall") for s in sets]),
        "detection_auroc": nanmean([s.get("detection_auroc") for s in sets]),
    }


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
        summary = train(cfg, args.out)
        if summary is None:  # another shard trains it
            continue
        row, curve = run_rows(RunFolder(args.out / cfg.run_name()), summary, cell)
        append_rows(curves, curve, [KEY, "epoch"])
        append_rows(table, [row], [KEY])  # last: a row means its curve is there
        print(
            f"{label}: last-5 {100 * row['acc_last5']:.2f} %, peak {100 * row['acc_peak']:.2f} %, "
            f"train acc on noisy labels {100 * row['train_acc_noisy_final']:.1f} % "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return 0


def current_table(path: Path, quick: bool = False) -> pd.DataFrame:
    """The table (or curves) at ``path`` without rows superseded by a config change."""
    return current_rows(read_table(path), "method", lambda *cell: config(*cell, quick))


def fmt(values: pd.Series) -> str:
    vals = 100 * values.dropna()
    if not len(vals):
        return "–"
    if len(vals) == 1:
        return f"{vals.iloc[0]:.2f} (1)"
    return f"{vals.mean():.2f} ± {vals.std(ddof=1):.2f} ({len(vals)})"


# the LNMBench paper's order: baseline, robust losses, transition matrices, selection, SSL
ORDER = (
    "ce", "ce-ls", "sce", "cdr", "t-revision", "volminnet",
    "coteaching", "coteaching-plus", "codis", "jocor", "disc", "dividemix",
)  # fmt: skip


def delta_vs_ce(own: pd.Series, ce: pd.Series) -> pd.Series:
    """A method's metric minus CE's, by seed, on the seeds both have (both indexed by seed)."""
    common = own.index.intersection(ce.index)
    return own[common] - ce[common]


def markdown(table: pd.DataFrame, metric: str = "acc_last5") -> str:
    """Per (dataset, noise, rate): each method's mean ± std over seeds (n) and Δ to CE on the
    seeds both have; methods in the paper's order."""
    lines = []
    rank = {m: i for i, m in enumerate(ORDER)}
    for (dataset, noise, rate), part in table.groupby(["dataset", "noise", "rate"], sort=False):
        ce = part[part.method == "ce"].set_index("seed")[metric]
        blind = (
            ""
            if informative(dataset, noise, rate)
            else (" — the noisy labels carry no class information here: no method can be judged")
        )
        lines += [
            f"\n**{dataset}, {noise} {rate:g}**{blind}\n",
            "| method | last-5 acc (%) | Δ vs CE (points) | peak (%) | train acc on noisy (%) "
            "| sel. precision (%) | sel. recall (%) | T̂ error (%) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        groups = sorted(part.groupby("method"), key=lambda g: (rank.get(g[0], len(rank)), g[0]))
        for method, rows in groups:
            delta = None if method == "ce" else delta_vs_ce(rows.set_index("seed")[metric], ce)
            delta = delta if delta is not None and len(delta) else None
            lines.append(
                f"| {method} | {fmt(rows[metric])} | "
                f"{'–' if delta is None else f'{100 * delta.mean():+.2f}'} | {fmt(rows.acc_peak)} "
                f"| {fmt(rows.train_acc_noisy_final)} | {fmt(rows.sel_precision)} "
                f"| {fmt(rows.sel_recall)} | {fmt(rows.t_error)} |"
            )
    return "\n".join(lines)


def summary_markdown(
    table: pd.DataFrame,
    dataset: str,
    metric: str = "acc_last5",
    unlearnable: dict[tuple, list[int]] | None = None,
) -> str:
    """One row per method on ``dataset``: Δ ``metric`` against CE (points) per setting, as the
    mean over the seeds both have, then each seed's Δ (``mean (s0 / s1)``); CE's own row gives
    its own value. The columns are the settings in NOISES order whose noisy labels carry class
    information (:func:`informative`); ``unlearnable`` (cell -> classes) adds a line naming the
    cells whose realised noise makes a class unlearnable."""
    part = table[table.dataset == dataset]
    settings = [
        (name, float(rate))
        for name, _, rate in (n.partition(":") for n in NOISES)
        if ((part.noise == name) & (part.rate == float(rate))).any()
        and informative(dataset, name, float(rate))
    ]
    head = " | ".join(f"{name} {rate:g}" for name, rate in settings)
    lines = [f"| method | {head} |", "|---|" + "---|" * len(settings)]
    rank = {m: i for i, m in enumerate(ORDER)}
    for method in sorted(set(part.method), key=lambda m: (rank.get(m, len(rank)), m)):
        cells = []
        for name, rate in settings:
            here = part[(part.noise == name) & (part.rate == rate)]
            ce = here[here.method == "ce"].set_index("seed")[metric]
            own = here[here.method == method].set_index("seed")[metric].sort_index()
            vals = 100 * (own if method == "ce" else delta_vs_ce(own, ce))
            if not len(vals):
                cells.append("–")
                continue
            sign = "" if method == "ce" else "+"
            mean = f"{vals.mean():{sign}.1f}"
            seeds = " / ".join(f"{v:{sign}.1f}" for v in vals)
            cells.append(mean if len(vals) == 1 else f"{mean} ({seeds})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    note = unlearnable_note(unlearnable or {}, dataset)
    return "\n".join(lines + (["", note] if note else []))


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
    ap.add_argument(
        "--summary",
        metavar="DATASET",
        help="print one row per method: Δ last-5 vs CE per setting, mean (seed by seed)",
    )
    ap.add_argument(
        "--metric",
        default="acc_last5",
        choices=["acc_last5", "bal_acc_last5"],
        help="what --summary compares (balanced accuracy for the imbalanced sets)",
    )
    ap.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write the current table as a results table (.parquet/.csv) for `lnmbench report`",
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: 3 epochs, cnn-tiny, temp dir")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.methods) - set(METHODS.names()))
    if unknown:
        ap.error(f"unknown method(s) {unknown}; known: {', '.join(METHODS.names())}")
    if args.table:
        print(markdown(current_table(args.results / TABLE.name)))
        return 0
    if args.summary:
        table = current_table(args.results / TABLE.name)
        table = table[table.dataset == args.summary]
        unlearnable = unlearnable_by_cell(table, lambda *c: config(*c, "ce", False))
        print(summary_markdown(table, args.summary, args.metric, unlearnable))
        return 0
    if args.export:
        table = current_table(args.results / TABLE.name)
        export_store_table(store_table(table, "method", lambda *c: config(*c, False)), args.export)
        return 0
    if args.curves:
        print(curves_markdown(current_table(args.results / CURVES.name)))
        return 0
    if args.quick:
        tmp = Path(tempfile.mkdtemp(prefix="validity_quick_"))
        args.out, args.results = tmp / "runs", tmp / "results"
        args.datasets, args.noises, args.seeds = ["demo"], ["symmetric:0.5"], [0]
        run_cells(args)
        print(markdown(current_table(args.results / TABLE.name, quick=True)))
        return 0
    return run_cells(args)


if __name__ == "__main__":
    sys.exit(main())
