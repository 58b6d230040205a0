"""medssl against DivideMix and DISC on imbalanced MedMNIST (methods.md §8), fast preset.

Variants: ``ce``, ``dividemix``, ``disc``, ``medssl`` (all components on) and each medssl component
alone (the others at their DivideMix values), on RetinaMNIST, BreastMNIST, BloodMNIST
(``../shared/data/*.npz``) and the demo set, symmetric 0.2 / 0.5 and instance 0.5, seeds 0, 1, 2.
Cells run in a fixed priority order: the small sets (RetinaMNIST ~1080, BreastMNIST 546 training
images) at symmetric 0.5, seed 0, the deciding variants (dividemix, medssl, disc) first, then the
single components, then the other settings and seeds, the demo set (the balanced-case accuracy
check) and last BloodMNIST (12k images, four times the demo set's cost).

Endpoints per run (last-5 means of the ensemble / headline head): balanced accuracy (primary),
accuracy, macro-F1, smallest-class test sensitivity, QWK (RetinaMNIST), per-class selection
recall of the three smallest training classes (mean of both nets' divisions) and purified ratio.

Resumable: an interrupted run resumes from its checkpoint; a finished run's row is written at once
to ``benchmarks/results/medssl.csv`` (keyed by config hash) and skipped later.

    python benchmarks/medssl.py                        # the whole grid, in priority order
    python benchmarks/medssl.py --datasets retinamnist breastmnist --noises symmetric:0.5 \\
        --seeds 0 --variants dividemix medssl          # a subset
    python benchmarks/medssl.py --table                # per-cell table and the decision
    python benchmarks/medssl.py --quick                # smoke test: tiny subset, cnn-tiny, 2 epochs

Each process uses one torch thread (``OMP_NUM_THREADS=1`` is set before torch is imported).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from lnmbench.engine.run_folder import RunFolder
from lnmbench.experiment.config import resolve_config
from lnmbench.report.baseline import bootstrap_ci
from result_table import (
    CELL,
    KEY,
    RESULTS,
    ROOT,
    append_rows,
    cell_key,
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

TABLE = RESULTS / "medssl.csv"
CURVES = RESULTS / "medssl_curves.csv"  # per-epoch curves of the runs --interim compares
LAST_K = 5
# the decision needs this many matched imbalanced cells (e.g. 2 datasets x 3 seeds would be 6)
MIN_DECISION_CELLS = 5
BASES = ("dividemix", "disc")  # the two semi-supervised baselines medssl must beat

DATASETS = ("retinamnist", "breastmnist", "demo", "bloodmnist")
NOISES = ("symmetric:0.5", "instance:0.5", "symmetric:0.2")
SEEDS = (0, 1, 2)
# every component at its DivideMix value: medssl is then dividemix exactly (tested)
OFF = {"divide": "global", "lx_loss": "ce", "imbalance": "none", "prior": "uniform"}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dividemix": ("dividemix", {}),
    "medssl": ("medssl", {}),
    "disc": ("disc", {}),
    "ce": ("ce", {}),
    "medssl:per_class": ("medssl", {**OFF, "divide": "per_class"}),
    "medssl:logit_adjust": ("medssl", {**OFF, "imbalance": "logit_adjust"}),
    "medssl:sce_soft": ("medssl", {**OFF, "lx_loss": "sce_soft"}),
    "medssl:adaptive": ("medssl", {**OFF, "divide": "adaptive"}),
    "medssl:labelled_freq": ("medssl", {**OFF, "prior": "labelled_freq"}),
    "medssl:balanced_sampler": ("medssl", {**OFF, "imbalance": "balanced_sampler"}),
    # every component on with soft SCE as L_x: medssl's default until measured (ce won 5 of 6)
    "medssl:with_sce": ("medssl", {"lx_loss": "sce_soft"}),
    # every component on, the global GMM's posterior with per-class thresholds and quotas: the
    # per-class GMM halves the minority grades' labelled sets at symmetric 0.2 (RetinaMNIST)
    "medssl:with_adaptive": ("medssl", {"divide": "adaptive"}),
    # every component on, the global posterior except for the classes it nearly empties, which
    # get their own GMM: adaptive at low noise, per_class for the dropped minority classes
    "medssl:with_rescue": ("medssl", {"divide": "rescue"}),
}
# priority: the deciding pair, then DISC, then the single components, then CE
STAGES = (("dividemix", "medssl"), ("disc",), tuple(v for v in VARIANTS if v.startswith("medssl:")))
CLASSES_OF_INTEREST = 3  # selection recall of the three smallest training classes


def cells(
    datasets: list[str], noises: list[str], seeds: list[int], variants: list[str]
) -> Iterator[tuple[str, str, float, int, str]]:
    """(dataset, noise, rate, seed, variant) in priority order (see the module docstring)."""
    small = [d for d in datasets if d in ("retinamnist", "breastmnist")]
    rest = [d for d in datasets if d not in small]
    stages = [[v for v in variants if v in stage] for stage in STAGES]
    stages.append([v for v in variants if not any(v in stage for stage in STAGES)])
    seen: set[tuple] = set()

    def emit(group, noise_list, seed_list, variant_list):
        for seed in seed_list:
            for noise in noise_list:
                name, _, rate = noise.partition(":")
                for dataset in group:
                    for variant in variant_list:
                        cell = (dataset, name, float(rate), seed, variant)
                        if cell not in seen and informative(dataset, name, float(rate)):
                            seen.add(cell)
                            yield cell

    for stage in stages:  # the small sets, first setting and seed: the deciding pair first
        yield from emit(small, noises[:1], seeds[:1], stage)
    for stage in stages:
        yield from emit(small, noises, seeds, stage)
    for dataset in rest:
        yield from emit([dataset], noises, seeds, [v for stage in stages for v in stage])


def current_table(path: Path, quick: bool = False) -> pd.DataFrame:
    """The table at ``path`` without rows superseded by a config change."""
    return current_rows(read_table(path), "variant", lambda *cell: config(*cell, quick))


def config(dataset: str, noise: str, rate: float, seed: int, variant: str, quick: bool):
    method, hparams = VARIANTS[variant]
    user: dict[str, Any] = {
        "method": method,
        "dataset": dataset,
        "noise": {"name": noise, "rate": rate},
        "seed": seed,
        "preset": "fast",
        "progress": False,
    }
    if hparams:
        user["hparams"] = dict(hparams)
    if quick:
        user.update(epochs=2, model="cnn-tiny")
    return resolve_config(user, "medssl benchmark")


def run_row(folder: RunFolder, summary: dict[str, Any], cell: tuple) -> dict[str, Any]:
    """The table row of a finished run (last-5 means)."""
    dataset, noise, rate, seed, variant = cell
    rows = [r for r in folder.read_metrics() if r["epoch"] >= 0][-LAST_K:]
    metrics = summary["metrics"]
    # classes ordered by their clean training count (the three smallest are the ones at risk)
    report = json.loads((folder.path / "noise.json").read_text())["train"]
    counts = np.asarray(report["clean_class_counts"], dtype=float)
    smallest = np.argsort(counts, kind="stable")
    sens = np.array([r["test"]["per_class_sensitivity"] for r in rows], dtype=float)
    recalls, purified_ratios = [], []
    for r in rows:
        d = r.get("diagnostics", {})
        sets = selection_sets(d)
        per_class = [s["per_class_recall"] for s in sets if s.get("per_class_recall")]
        if per_class:
            recalls.append(np.nanmean(np.array(per_class, dtype=float), axis=0))
        purified_ratios.append(purified(d))
    row = {
        "dataset": dataset,
        "noise": noise,
        "rate": rate,
        "seed": seed,
        "variant": variant,
        KEY: summary["config_hash"],
        "epochs": summary["epochs_done"],
        "bal_acc": metrics["balanced_accuracy"]["last5"],
        "acc": summary["test_acc_last5"],
        "macro_f1": metrics["macro_f1"]["last5"],
        "smallest_class": int(smallest[0]),
        "smallest_sens": float(np.nanmean(sens[:, smallest[0]])),
        "qwk": (metrics.get("qwk") or {}).get("last5") if dataset == "retinamnist" else None,
        "purified_ratio": nanmean(purified_ratios),
        "wall_s": summary["wall_s"],
    }
    if recalls:
        rec = np.nanmean(np.array(recalls), axis=0)
        for j, c in enumerate(smallest[:CLASSES_OF_INTEREST]):
            row[f"sel_recall_small{j + 1}"] = float(rec[c])
    return row


def borrowed_folder(roots: list[Path], cfg) -> RunFolder | None:
    """A finished run folder of ``cfg`` (same config hash) under one of ``roots``, or None.

    Identical configs (e.g. ``dividemix`` / ``disc`` / ``ce`` of ``benchmarks/validity.py``) need
    not be trained twice; such folders are only read, never written."""
    for root in roots:
        folder = RunFolder(root / cfg.run_name())
        if folder.is_done():
            summary = json.loads(folder.summary.read_text())
            if summary.get("config_hash") == cfg.config_hash():
                return folder
    return None


def run_cells(args: argparse.Namespace) -> int:
    table = args.results / TABLE.name
    todo = list(cells(args.datasets, args.noises, args.seeds, args.variants))
    for i, cell in enumerate(todo):
        dataset, noise, rate, seed, variant = cell
        cfg = config(dataset_ref(dataset), noise, rate, seed, variant, args.quick)
        if cfg.config_hash() in done_hashes(table):
            continue
        label = f"[{i + 1}/{len(todo)}] {variant} {dataset} {noise} {rate:g} seed {seed}"
        borrowed = borrowed_folder(args.borrow, cfg)
        if borrowed is not None:  # a finished run of the same config elsewhere: read only
            summary = json.loads(borrowed.summary.read_text())
            row = {**run_row(borrowed, summary, cell), "source": str(borrowed.path)}
            append_rows(table, [row], [KEY])
            print(f"{label}: read from {borrowed.path}", flush=True)
            continue
        if args.borrow_only:
            continue
        print(f"{label} ({cfg.epochs} epochs) ...", flush=True)
        t0 = time.perf_counter()
        summary = train(cfg, args.out)
        if summary is None:  # another process trains it
            continue
        row = run_row(RunFolder(args.out / cfg.run_name()), summary, cell)
        append_rows(table, [row], [KEY])
        print(
            f"{label}: balanced acc {100 * row['bal_acc']:.2f} %, acc {100 * row['acc']:.2f} % "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return 0


# ----- the decision -----------------------------------------------------------------------------
# the cells whose results chose medssl's defaults (lx_loss ce over sce_soft, after the six
# imbalanced cells and the two demo ones): the decision is also given without them, since a
# default picked on a cell is optimistic there
CHOSEN_ON = {
    ("breastmnist", "symmetric", 0.2, 0),
    ("breastmnist", "symmetric", 0.2, 1),
    ("breastmnist", "instance", 0.5, 0),
    ("retinamnist", "symmetric", 0.2, 0),
    ("retinamnist", "symmetric", 0.5, 0),
    ("retinamnist", "symmetric", 0.5, 1),
    ("demo", "symmetric", 0.5, 0),
    ("demo", "symmetric", 0.5, 1),
}


def paired(table: pd.DataFrame, a: str, b: str, metric: str, datasets=None) -> pd.Series:
    """a − b of ``metric`` over the (dataset, noise, rate, seed) cells both have."""
    part = table if datasets is None else table[table.dataset.isin(datasets)]
    x = part[part.variant == a].set_index(CELL)[metric]
    y = part[part.variant == b].set_index(CELL)[metric]
    common = x.index.intersection(y.index)
    return (x[common] - y[common]).astype(float)


def pct(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def kappa(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def markdown(table: pd.DataFrame, unlearnable: dict[tuple, list[int]] | None = None) -> str:
    """Per-cell table (one row per run) and the paired decision (``unlearnable``: see
    :func:`decision`)."""
    if not len(table):
        return "no finished runs yet"
    cols = ["bal_acc", "acc", "macro_f1", "smallest_sens"]
    sel = [c for c in ("sel_recall_small1", "sel_recall_small2", "sel_recall_small3") if c in table]
    lines = [
        "| dataset | noise | seed | variant | bal. acc | acc | macro-F1 | smallest-class sens. "
        "| QWK | sel. recall, 3 smallest classes | purified | wall (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {v: i for i, v in enumerate(VARIANTS)}
    table = table.assign(_o=table.variant.map(order)).sort_values([*CELL, "_o"])
    for _, r in table.iterrows():
        recalls = " / ".join(pct(r[c]) for c in sel) if sel else "–"
        lines.append(
            f"| {r.dataset} | {r.noise} {r.rate:g} | {r.seed} | {r.variant} | "
            + " | ".join(pct(r[c]) for c in cols)
            + f" | {kappa(r.get('qwk'))} | {recalls} | {pct(r.purified_ratio)} "
            + f"| {r.wall_s / 60:.1f} |"
        )
    lines += ["", decision(table, unlearnable)]
    return "\n".join(lines)


def mean_ci(diffs: np.ndarray) -> tuple[float, float, float]:
    """(mean, lower, upper): the report's percentile bootstrap of the mean (NaN bounds, n < 2)."""
    d = np.asarray(diffs, dtype=float)
    lo, hi = bootstrap_ci(d)
    return (float(d.mean()) if len(d) else float("nan")), lo, hi


def interval(lo: float, hi: float, missing: str = "n/a") -> str:
    """A bootstrap interval in points, e.g. "[-1.12, +2.83]"; ``missing`` when it is NaN."""
    return missing if math.isnan(lo) else f"[{100 * lo:+.2f}, {100 * hi:+.2f}]"


def decision(table: pd.DataFrame, unlearnable: dict[tuple, list[int]] | None = None) -> str:
    """Paired differences of medssl (and its components) vs dividemix and disc with 95 % CIs,
    over the cells whose noisy labels carry class information (the others are named).

    ``unlearnable`` (cell -> classes whose realised noise moves most of them to one same wrong
    class) adds a reading-only line without those cells: there the better method follows the
    noise further from the truth, so they measure the noise draw as much as the method."""
    blind = pd.Series(
        [not informative(r.dataset, r.noise, r.rate) for r in table.itertuples()],
        index=table.index,
        dtype=bool,
    )
    left = sorted({f"{r.dataset} {r.noise} {r.rate:g}" for _, r in table[blind].iterrows()})
    table = table[~blind]
    imbalanced = [d for d in table.dataset.unique() if d != "demo"]
    lines = [
        "| comparison (balanced accuracy, imbalanced sets) | cells | mean Δ (points) | 95 % CI |",
        "|---|---|---|---|",
    ]
    for a in [v for v in VARIANTS if v.startswith("medssl")]:
        for b in ("dividemix", "disc"):
            d = paired(table, a, b, "bal_acc", imbalanced)
            if not len(d):
                continue
            m, lo, hi = mean_ci(d.to_numpy())
            ci = interval(lo, hi, "n/a (< 2 cells)")
            lines.append(f"| {a} − {b} | {len(d)} | {100 * m:+.2f} | {ci} |")
    # the goal: medssl − max(dividemix, disc) per cell; the variants' rows are for reading only
    # (picking the best of several variants afterwards is not a pre-registered test)
    x = table[table.dataset.isin(imbalanced)]
    base = x[x.variant.isin(BASES)].groupby(CELL)["bal_acc"]
    best = base.max()[base.count() == 2]
    verdict = "not decidable (no cell with medssl, dividemix and disc)"
    for variant in [v for v in VARIANTS if v.startswith("medssl")]:
        ours = x[x.variant == variant].set_index(CELL)["bal_acc"]
        common = ours.index.intersection(best.index)
        if not len(common):
            continue
        m, lo, hi = mean_ci((ours[common] - best[common]).to_numpy())
        ci = interval(lo, hi)
        n = len(common)
        lines.append(f"| {variant} − max(dividemix, disc) | {n} | {100 * m:+.2f} | {ci} |")
        if variant != "medssl":
            continue
        # the reading: the better of the two *methods* (higher mean over these cells);
        # the per-cell max above is stricter (an oracle that picks the winner cell by cell)
        means = {b: x[x.variant == b].set_index(CELL)["bal_acc"][common].mean() for b in BASES}
        better = max(BASES, key=lambda b: means[b])
        theirs = x[x.variant == better].set_index(CELL)["bal_acc"][common]
        m1, lo1, hi1 = mean_ci((ours[common] - theirs).to_numpy())
        lines.append(
            f"| medssl − the better of the two on these cells ({better}: mean "
            f"{100 * means[better]:.2f} vs {100 * min(means.values()):.2f}) | {n} "
            f"| {100 * m1:+.2f} | {interval(lo1, hi1)} |"
        )
        fresh = [c for c in common if (c[0], c[1], float(c[2]), int(c[3])) not in CHOSEN_ON]
        if fresh:
            m2, lo2, hi2 = mean_ci((ours[fresh] - best[fresh]).to_numpy())
            ci2 = interval(lo2, hi2)
            lines.append(
                f"| medssl − max(dividemix, disc), only cells not used to choose its defaults "
                f"| {len(fresh)} | {100 * m2:+.2f} | {ci2} |"
            )
        if unlearnable is not None:
            clean = [c for c in common if not unlearnable.get(cell_key(c))]
            if clean and len(clean) < len(common):
                m3, lo3, hi3 = mean_ci((ours[clean] - best[clean]).to_numpy())
                lines.append(
                    "| medssl − max(dividemix, disc), only cells where every class is learnable "
                    f"(post hoc, for reading) | {len(clean)} | {100 * m3:+.2f} "
                    f"| {interval(lo3, hi3)} |"
                )
        if math.isnan(lo):
            verdict = "not decidable (fewer than 2 matched cells)"
        elif len(common) < MIN_DECISION_CELLS:
            verdict = (
                f"not decidable ({len(common)} matched cells: with fewer than "
                f"{MIN_DECISION_CELLS} the percentile bootstrap of the mean is little more than "
                "the range of the cells)"
            )
        elif lo > 0:
            verdict = "improvement: the 95 % interval excludes 0"
        else:
            verdict = "no improvement shown: the 95 % interval includes 0 or lies below it"
    demo = paired(table, "medssl", "dividemix", "acc", ["demo"])
    demo_line = "balanced case (demo): no matched medssl / dividemix cells"
    if len(demo):
        m, lo, hi = mean_ci(demo.to_numpy())
        ci = "" if math.isnan(lo) else f", 95 % CI {interval(lo, hi)}"
        ok = "within" if m >= -0.01 else "outside"
        demo_line = (
            f"balanced case (demo): accuracy Δ medssl − dividemix {100 * m:+.2f} points over "
            f"{len(demo)} cells{ci} ({ok} the 1-point tolerance)"
        )
    note = unlearnable_note(unlearnable or {})
    if note:
        demo_line += "\n" + note
    if left:
        demo_line += (
            "\nleft out (symmetric noise at or above (C − 1)/C: the noisy label carries no "
            f"class information): {', '.join(left)}"
        )
    return "\n".join([*lines, "", f"goal: {verdict}", demo_line])


def curve_row(cell: tuple, config_hash: str, r: dict[str, Any]) -> dict[str, Any]:
    """One epoch of a run: test balanced accuracy / accuracy / QWK, labelled-set size, precision
    and per-class size of net 1's division (empty in warm-up)."""
    dataset, noise, rate, seed, variant = cell
    d = r.get("diagnostics", {})
    sel = d.get("selection/net1", {})
    return {
        "dataset": dataset,
        "noise": noise,
        "rate": rate,
        "seed": seed,
        "variant": variant,
        KEY: config_hash,
        "epoch": r["epoch"],
        "bal_acc": r["test"].get("balanced_accuracy"),
        "acc": r["test_headline_acc"],
        "qwk": r["test"].get("qwk"),
        "n_labelled_net1": sel.get("n_selected"),
        "sel_precision_net1": sel.get("precision"),
        "per_class_labelled_net1": " ".join(map(str, sel.get("per_class_selected") or [])),
        "per_class_sensitivity": " ".join(
            f"{v:.3f}" for v in r["test"].get("per_class_sensitivity") or []
        ),
    }


def interim(args: argparse.Namespace) -> str:
    """Unfinished runs of the selected cells against the finished or running runs of the same
    (dataset, noise, rate, seed): balanced accuracy and accuracy over the same epochs (the last 5
    epochs both have); not an endpoint. Writes every epoch of those runs to medssl_curves.csv."""
    curves: dict[tuple, dict[str, list[dict]]] = {}
    flat = []
    for cell in cells(args.datasets, args.noises, args.seeds, args.variants):
        dataset, noise, rate, seed, variant = cell
        cfg = config(dataset_ref(dataset), noise, rate, seed, variant, False)
        folder = RunFolder(args.out / cfg.run_name())
        rows = [r for r in folder.read_metrics() if r.get("epoch", -1) >= 0]
        if rows:
            curves.setdefault(cell[:4], {})[variant] = rows
            flat += [curve_row(cell, cfg.config_hash(), r) for r in rows]
    if flat:  # the per-epoch evidence, committed with the table
        path = args.results / CURVES.name
        table = pd.DataFrame(flat)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False, float_format="%.6g")
    lines = [
        "| dataset | noise | seed | variant | epochs done | epochs compared | bal. acc | acc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, noise, rate, seed), by_variant in curves.items():
        if len(by_variant) < 2:
            continue
        common = min(len(rows) for rows in by_variant.values())
        for variant, rows in by_variant.items():
            window = rows[max(0, common - LAST_K) : common]
            bal = np.mean([r["test"]["balanced_accuracy"] for r in window])
            acc = np.mean([r["test_headline_acc"] for r in window])
            lines.append(
                f"| {dataset} | {noise} {rate:g} | {seed} | {variant} | {len(rows)} | "
                f"{window[0]['epoch']}-{window[-1]['epoch']} | {100 * bal:.2f} | {100 * acc:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "medssl")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--noises", nargs="+", default=list(NOISES))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument(
        "--borrow",
        nargs="*",
        type=Path,
        default=[],
        help="run roots to read finished runs of identical configs from (never written)",
    )
    ap.add_argument(
        "--borrow-only", action="store_true", help="only collect borrowed runs, train nothing"
    )
    ap.add_argument("--table", action="store_true", help="print the tables and the decision")
    ap.add_argument(
        "--interim", action="store_true", help="compare unfinished runs over the epochs done"
    )
    ap.add_argument(
        "--export",
        type=Path,
        metavar="FILE",
        help="write the current table as a results table (.parquet/.csv) for `lnmbench report`",
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 epochs, cnn-tiny, temp dir")
    args = ap.parse_args(argv)
    if args.table:
        table = current_table(args.results / TABLE.name, args.quick)
        unlearnable = unlearnable_by_cell(table, lambda *c: config(*c, "ce", args.quick))
        print(markdown(table, unlearnable))
        return 0
    if args.interim:
        print(interim(args))
        return 0
    if args.export:
        table = current_table(args.results / TABLE.name)
        export_store_table(store_table(table, "variant", lambda *c: config(*c, False)), args.export)
        return 0
    if args.quick:
        tmp = Path(tempfile.mkdtemp(prefix="medssl_quick_"))
        args.out, args.results = tmp / "runs", tmp / "results"
        args.datasets, args.noises, args.seeds = ["breastmnist"], ["symmetric:0.5"], [0]
        args.variants = ["dividemix", "medssl"]
        run_cells(args)
        print(markdown(current_table(args.results / TABLE.name, args.quick)))
        return 0
    return run_cells(args)


if __name__ == "__main__":
    sys.exit(main())
