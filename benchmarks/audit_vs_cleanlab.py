"""Benchmark: ``lnmbench audit``'s signals and combined score against cleanlab, same training.

Datasets: BloodMNIST, RetinaMNIST, BreastMNIST (28 px, ``../shared/data/*.npz`` relative to the
repository root), training split (BloodMNIST: a stratified random subset of 2000 of its 11959
training images, the same in every cell, to fit a shared 2-core CPU). Noise (lnmbench's own
generators, noise seed = cell seed): symmetric 0.2, symmetric 0.4, instance (PDN) 0.4. Seeds 0
and 1. One cross-fit per cell (``lnmbench.audit.crossfit``: K = 5 folds, small CNN ``cnn``,
Adam 1e-3, batch 128, the ``standard`` flip + pad-crop augmentation; epochs per dataset in
``EPOCHS``) gives the out-of-fold probabilities *and* the training dynamics, so every detector
below costs the same training:

- ``cleanlab``: ``cleanlab.rank.get_label_quality_scores`` (self-confidence, its default) on the
  out-of-fold probabilities ranks; ``cleanlab.filter.find_label_issues`` (prune by noise rate)
  flags; ``cleanlab_margin``: the same with ``method="normalized_margin"``, flagging as many;
  ``cleanlab_ens`` / ``cleanlab_ens_margin``: both rankings on the audit's temporal ensemble of
  the out-of-fold probabilities (an ablation: how much of the gain is that ensemble);
- each audit signal alone, the audit's combined score (``lnmbench.audit.scoring``, default
  signals) and ``combined_all`` (the rank average of every signal), which
  flag their top n̂ samples, n̂ = the number cleanlab flags (``lnmbench.audit.scoring.flag_count``:
  confident learning estimates *how many*, the ranking decides *which*).

Scores (clean labels known, used only here): noise-detection AUROC, precision@k with k = the
true number of flipped labels, precision / recall / F1 of the flagged set. Wall time: the
cross-fit (shared) and each detector's scoring time.

Resumable: each fold is saved under ``--cache`` (default ``runs/audit_bench``), each finished
cell's scores under ``benchmarks/results/audit_vs_cleanlab/<cell>.json``; the table
``benchmarks/results/audit_vs_cleanlab.md`` is rewritten after every cell. Run with
``OMP_NUM_THREADS=1`` (one torch thread). ``--rescore`` recomputes the scores of the finished
cells from their saved folds (after a change to the scoring) and trains nothing; its wall times
are those recorded when the cell was trained.

    OMP_NUM_THREADS=1 python benchmarks/audit_vs_cleanlab.py
    python benchmarks/audit_vs_cleanlab.py --quick       # smoke test: 1 tiny cell, 2 epochs
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cleanlab.rank import get_label_quality_scores
from sklearn.model_selection import train_test_split

from lnmbench.atomic_files import atomic_write_text
from lnmbench.audit.confident_joint import confident_joint_estimate
from lnmbench.audit.crossfit import CrossFitSettings, cross_fit_dynamics, out_of_fold_probs
from lnmbench.audit.evaluation import grade, top_k
from lnmbench.audit.scoring import flag_count, score_records
from lnmbench.audit.signals import combine, heldout_ensemble
from lnmbench.data import load_dataset
from lnmbench.noise import make_noisy_labels

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
DATASETS = ("retinamnist", "breastmnist", "bloodmnist")  # cells run seed by seed, in this order
NOISES = (("symmetric", 0.2), ("symmetric", 0.4), ("instance", 0.4))
SEEDS = (0, 1)
EPOCHS = {"bloodmnist": 6, "retinamnist": 20, "breastmnist": 20}
# BloodMNIST: a stratified random 2000 of its 11959 training images (the same subset for every
# cell; seed 0), to fit the 2-core CPU budget shared with other jobs
SUBSET = {"bloodmnist": 2000}


def cell_name(dataset: str, noise: str, rate: float, seed: int) -> str:
    return f"{dataset}_{noise}{rate:g}_s{seed}"


def run_cell(
    dataset: str, noise: str, rate: float, seed: int, epochs: int, cache: Path, quick: bool
) -> dict[str, Any]:
    """Noise, cross-fit (or load), score every detector; returns the cell's result dict."""
    ds = load_dataset(str(DATA / f"{dataset}.npz"))
    part = ds["train"]
    images, clean = part.images, part.labels.numpy()
    if quick:
        images, clean = images[:400], clean[:400]
    elif dataset in SUBSET:
        keep, _ = train_test_split(
            np.arange(clean.size), train_size=SUBSET[dataset], stratify=clean, random_state=0
        )
        keep = np.sort(keep)
        images, clean = images[torch.as_tensor(keep)], clean[keep]
    c = ds.info.num_classes
    noisy = make_noisy_labels(
        noise,
        clean,
        c,
        rate,
        seed,
        images=images.numpy(),
        cache_dir=cache / "noise",
        cache_key={
            "dataset": dataset,
            "split": "train",
            "quick": quick,
            "subset": SUBSET.get(dataset),
        },
    ).noisy
    is_noisy = noisy != clean
    settings = CrossFitSettings(
        folds=5, model="cnn-tiny" if quick else "cnn", epochs=epochs, seed=seed
    )
    name = cell_name(dataset, noise, rate, seed)
    timing_path = cache / "timing" / f"{name}.json"
    t0 = time.perf_counter()
    records = cross_fit_dynamics(
        images, noisy, c, settings, device=torch.device("cpu"), fold_dir=cache / "folds"
    )
    train_s = time.perf_counter() - t0
    if timing_path.is_file():  # trained earlier (maybe over several resumed sessions)
        train_s = json.loads(timing_path.read_text())["train_s"]
    else:
        atomic_write_text(timing_path, json.dumps({"train_s": train_s}))
    pred_probs = out_of_fold_probs(records, noisy.size)

    out: dict[str, Any] = {
        "dataset": dataset,
        "noise": noise,
        "rate": rate,
        "seed": seed,
        "n": int(noisy.size),
        "true_flips": int(is_noisy.sum()),
        "realised_rate": float(is_noisy.mean()),
        "oof_accuracy_vs_clean": float(np.mean(pred_probs.argmax(1) == clean)),
        "epochs": epochs,
        "train_s": train_s,
        "detectors": {},
    }
    t = time.perf_counter()
    cj = confident_joint_estimate(noisy, pred_probs)
    cl_s = time.perf_counter() - t
    assert cj is not None, "the benchmark needs cleanlab: pip install -e '.[audit]'"
    out["detectors"]["cleanlab"] = {
        **grade(-cj.quality, cj.issues, is_noisy),
        "score_s": cl_s,
    }
    # cleanlab's other ranking, the normalised margin, on the same probabilities and flag set
    margin = get_label_quality_scores(
        noisy, pred_probs / pred_probs.sum(1, keepdims=True), method="normalized_margin"
    )
    out["detectors"]["cleanlab_margin"] = {
        **grade(-margin, top_k(-margin, int(cj.issues.sum())), is_noisy),
        "score_s": math.nan,
    }
    # ablation: cleanlab (both rankings) on the audit's temporal ensemble of the OOF probabilities
    ens = heldout_ensemble(records, noisy.size)
    ens /= ens.sum(1, keepdims=True)
    for method, det in (
        ("self_confidence", "cleanlab_ens"),
        ("normalized_margin", "cleanlab_ens_margin"),
    ):
        q = get_label_quality_scores(noisy, ens, method=method)
        out["detectors"][det] = {
            **grade(-q, top_k(-q, int(cj.issues.sum())), is_noisy),
            "score_s": math.nan,
        }
    t = time.perf_counter()
    scored = score_records(records, noisy, seed=seed)
    ours_s = time.perf_counter() - t
    n_hat, _ = flag_count(scored, cj.issues)
    out["estimated_issues"] = n_hat
    out["argmax_disagreements"] = scored.estimated_issues
    out["cleanlab_num_issues"] = cj.num_issues
    for sig, s in scored.signals.items():
        out["detectors"][sig] = {**grade(s, top_k(s, n_hat), is_noisy), "score_s": math.nan}
    out["detectors"]["combined"] = {
        **grade(scored.combined, top_k(scored.combined, n_hat), is_noisy),
        "score_s": ours_s,
    }
    every = combine(scored.signals)  # the a-priori design: rank average of every signal
    out["detectors"]["combined_all"] = {
        **grade(every, top_k(every, n_hat), is_noisy),
        "score_s": math.nan,
    }
    return out


def fmt(x: float, pct: bool = True) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.1f}" if pct else f"{x:.3f}"


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per cell and detector, plus a summary of wins."""
    if not results:
        return "(no finished cells)\n"
    dets = list(results[0]["detectors"])
    lines = [
        "| cell | flips | detector | AUROC | P@k | F1 | flagged | train s | score s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cell = cell_name(r["dataset"], r["noise"], r["rate"], r["seed"])
        for d in dets:
            m = r["detectors"][d]
            score_s = "" if math.isnan(m["score_s"]) else f"{m['score_s']:.2f}"
            lines.append(
                f"| {cell} | {r['true_flips']} | {d} | {fmt(m['auroc'])} | "
                f"{fmt(m['precision_at_k'])} | {fmt(m['f1'])} | {m['n_flagged']} | "
                f"{r['train_s']:.0f} | {score_s} |"
            )
    lines += [
        "",
        summary(results),
        "",
        "Compact (AUROC / P@k / F1, %):",
        "",
        compact_table(results),
    ]
    return "\n".join(lines) + "\n"


COMPACT = ("cleanlab", "cleanlab_margin", "cleanlab_ens_margin", "combined", "combined_all")


def compact_table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per cell, AUROC / precision@k / F1 (%) of the main detectors, times."""
    head = " | ".join(COMPACT)
    lines = [
        f"| cell | flips | {head} | cross-fit s | cleanlab s | audit scoring s |",
        "|---|---:|" + "---|" * len(COMPACT) + "---:|---:|---:|",
    ]
    for r in results:
        cells = []
        for d in COMPACT:
            m = r["detectors"][d]
            cells.append(f"{fmt(m['auroc'])} / {fmt(m['precision_at_k'])} / {fmt(m['f1'])}")
        lines.append(
            f"| {cell_name(r['dataset'], r['noise'], r['rate'], r['seed'])} | {r['true_flips']} | "
            + " | ".join(cells)
            + f" | {r['train_s']:.0f} | {r['detectors']['cleanlab']['score_s']:.2f} | "
            f"{r['detectors']['combined']['score_s']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def summary(results: list[dict[str, Any]]) -> str:
    """Mean over cells per detector, and in how many cells 'combined' beats cleanlab."""
    dets = list(results[0]["detectors"])
    lines = [
        f"Mean over {len(results)} cells:",
        "",
        "| detector | AUROC | P@k | F1 |",
        "|---|---:|---:|---:|",
    ]
    for d in dets:
        vals = {
            k: float(np.nanmean([r["detectors"][d][k] for r in results]))
            for k in ("auroc", "precision_at_k", "f1")
        }
        lines.append(
            f"| {d} | {fmt(vals['auroc'])} | {fmt(vals['precision_at_k'])} | {fmt(vals['f1'])} |"
        )
    lines.append("")
    for ref in ("cleanlab", "cleanlab_margin"):
        wins = {
            k: sum(r["detectors"]["combined"][k] > r["detectors"][ref][k] for r in results)
            for k in ("auroc", "precision_at_k", "f1")
        }
        lines.append(
            f"combined > {ref}: AUROC in {wins['auroc']}/{len(results)} cells, precision@k in "
            f"{wins['precision_at_k']}/{len(results)}, F1 in {wins['f1']}/{len(results)}."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "audit_bench")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument(
        "--rescore", action="store_true", help="re-score the finished cells only (no training)"
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: one 400-sample cell")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if not DATA.is_dir():
        print(f"skipped: {DATA} (the MedMNIST files) is not there", file=sys.stderr)
        return 0
    if args.quick:
        r = run_cell("breastmnist", "symmetric", 0.4, 0, 2, args.cache / "quick", True)
        print(table([r]))
        return 0
    out_dir = RESULTS / "audit_vs_cleanlab"
    seeds = [int(s) for s in args.seeds.split(",")]
    cells = [(d, n, r, s) for s in seeds for d in args.datasets.split(",") for n, r in NOISES]
    results = []
    for d, n, r, s in cells:
        path = out_dir / f"{cell_name(d, n, r, s)}.json"
        if path.is_file() and not args.rescore:
            results.append(json.loads(path.read_text()))
            continue
        if args.rescore and not path.is_file():
            continue  # --rescore: finished cells only, nothing is trained
        t = time.perf_counter()
        res = run_cell(d, n, r, s, EPOCHS[d], args.cache, False)
        atomic_write_text(path, json.dumps(res, indent=1))
        results.append(res)
        print(f"{path.stem}: {time.perf_counter() - t:.0f} s", flush=True)
        atomic_write_text(RESULTS / "audit_vs_cleanlab.md", table(results))
    atomic_write_text(RESULTS / "audit_vs_cleanlab.md", table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
