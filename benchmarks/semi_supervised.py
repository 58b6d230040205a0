"""Semi-supervised LNL vs CE: DivideMix and DISC on BloodMNIST and RetinaMNIST (fast preset).

1. Full BloodMNIST, symmetric 0.5 and instance (PDN) 0.5: last-5 test accuracy of ``ce``,
   ``dividemix`` and ``disc``, with selection precision / recall, noise-detection AUROC, purified
   ratio and label recovery (each the mean over the last 5 epochs; DivideMix: mean of its two
   nets' divisions; DISC: its clean set C).
2. RetinaMNIST (5 imbalanced DR grades), symmetric 0.2: per-class test sensitivity (final epoch)
   and per-class selection recall (last 5 epochs), to see whether minority grades are dropped.

Markdown tables on stdout (mean ± sample std over seeds).

    python benchmarks/semi_supervised.py [--epochs 20] [--seeds 0 5 10] [--out runs/bench_semi]
    python benchmarks/semi_supervised.py --quick      # smoke test: data subsets, 3 epochs, cnn-tiny
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BLOOD = DATA / "bloodmnist.npz"
RETINA = DATA / "retinamnist.npz"

METHODS = ("ce", "dividemix", "disc")
BLOOD_SETTINGS = (("symmetric", 0.5), ("instance", 0.5))
RETINA_SETTING = ("symmetric", 0.2)
LAST_K = 5
QUICK_SIZES = {"train": 400, "val": 100, "test": 100}


def subset_npz(src: Path, dst: Path, sizes: dict[str, int]) -> Path:
    """The first ``sizes[split]`` samples of every split of ``src``, saved to ``dst``."""
    if dst.exists():
        return dst
    data = np.load(src)
    out = {}
    for split, n in sizes.items():
        out[f"{split}_images"] = data[f"{split}_images"][:n]
        out[f"{split}_labels"] = data[f"{split}_labels"][:n]
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, **out)
    return dst


def selections(diag: dict[str, Any]) -> list[dict[str, Any]]:
    """The selection statistics of one epoch (one per net for DivideMix, C for DISC)."""
    return [v for k, v in diag.items() if k.startswith("selection/") and isinstance(v, dict)]


def nanmean(values: list[Any]) -> float:
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    return float(np.nanmean(arr)) if arr.size and not np.all(np.isnan(arr)) else float("nan")


def run_stats(folder: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers of one finished run, diagnostics averaged over the last 5 epochs."""
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if r["epoch"] >= 0][-LAST_K:]
    sel = [s for r in last for s in selections(r["diagnostics"])]
    out: dict[str, Any] = {
        "acc": summary["headline"]["value"],
        "bal_acc": summary["metrics"]["balanced_accuracy"]["last5"],
        "precision": nanmean([s.get("precision") for s in sel]),
        "recall": nanmean([s.get("recall") for s in sel]),
        "auroc": nanmean([s.get("detection_auroc") for s in sel]),
        "purified": nanmean([r["diagnostics"].get("purified_ratio") for r in last]),
        "recovery": nanmean([r["diagnostics"].get("label_recovery") for r in last]),
        "epoch_s": float(np.mean([r["time"]["epoch_s"] for r in rows])),
        "sensitivity": summary["per_class"].get("per_class_sensitivity"),
    }
    per_class = [s["per_class_recall"] for s in sel if "per_class_recall" in s]
    out["sel_recall_per_class"] = (
        np.nanmean(np.array(per_class, dtype=float), axis=0).tolist() if per_class else None
    )
    return out


def fmt(values: list[float], pct: bool = True) -> str:
    arr = np.array([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    if arr.size == 0:
        return "–"
    scale = 100.0 if pct else 1.0
    if arr.size == 1:
        return f"{scale * arr[0]:.2f}"
    return f"{scale * arr.mean():.2f} ± {scale * arr.std(ddof=1):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="default: the fast preset's (20)")
    ap.add_argument(
        "--preset",
        default="fast-augmented",
        help="preset of the committed tables (the old CPU protocol; validity.py runs fast)",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_semi"))
    ap.add_argument("--quick", action="store_true", help="smoke test: subsets, 3 epochs, cnn-tiny")
    ap.add_argument(
        "--parts",
        nargs="+",
        choices=["blood", "retina"],
        default=["blood", "retina"],
        help="which tables to compute (default both)",
    )
    args = ap.parse_args()
    missing = [p for p in (BLOOD, RETINA) if not p.exists()]
    if missing:
        names = ", ".join(map(str, missing))
        sys.exit(f"skipped: {names} not found (the project's ../shared/data)")

    from lnmbench.experiment.config import resolve_config
    from lnmbench.experiment.run import run_one

    out = Path(args.out)
    blood, retina, epochs = BLOOD, RETINA, args.epochs
    extra: dict[str, Any] = {}
    if args.quick:
        out = out / "quick"
        tag = "-".join(str(n) for n in QUICK_SIZES.values())
        blood = subset_npz(BLOOD, out / "data" / f"bloodmnist_{tag}.npz", QUICK_SIZES)
        retina = subset_npz(RETINA, out / "data" / f"retinamnist_{tag}.npz", QUICK_SIZES)
        epochs = epochs or 3
        extra = {"model": "cnn-tiny"}

    def run(method: str, dataset: Path, noise: str, rate: float, seed: int) -> dict[str, Any]:
        user = {
            "method": method,
            "dataset": str(dataset),
            "noise": {"name": noise, "rate": rate},
            "seed": seed,
            "device": args.device,
            "progress": False,
            "preset": args.preset,
            **extra,
        }
        if epochs:
            user["epochs"] = epochs
        cfg = resolve_config(user, where="benchmark")
        summary = run_one(cfg, out)
        print(f"done: {method} {dataset.stem} {noise} {rate} seed {seed}", flush=True)
        return run_stats(out / cfg.run_name(), summary)

    blood_rows = []
    for noise, rate in BLOOD_SETTINGS if "blood" in args.parts else []:
        for method in METHODS:
            stats = [run(method, blood, noise, rate, s) for s in args.seeds]
            blood_rows.append((f"{noise} {rate:g}", method, stats))
    noise, rate = RETINA_SETTING
    retina_rows = [
        (m, [run(m, retina, noise, rate, s) for s in args.seeds])
        for m in (METHODS if "retina" in args.parts else [])
    ]

    if not retina_rows:
        print_blood(blood, blood_rows, args.seeds)
        return
    if blood_rows:
        print_blood(blood, blood_rows, args.seeds)
    print_retina(retina, retina_rows, noise, rate)


def print_blood(blood: Path, blood_rows: list, seeds: list[int]) -> None:
    print(f"\n### {blood.stem}: last-{LAST_K} means, seeds {seeds}\n")
    print(
        "| noise | method | test acc | bal. acc | sel. precision | sel. recall | "
        "detection AUROC | purified ratio | label recovery | s/epoch |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for setting, method, stats in blood_rows:
        cells = [fmt([s[k] for s in stats]) for k in ("acc", "bal_acc", "precision", "recall")]
        cells += [fmt([s["auroc"] for s in stats], pct=False)]
        cells += [fmt([s[k] for s in stats]) for k in ("purified", "recovery")]
        cells += [fmt([s["epoch_s"] for s in stats], pct=False)]
        print(f"| {setting} | {method} | " + " | ".join(cells) + " |")


def print_retina(retina: Path, retina_rows: list, noise: str, rate: float) -> None:
    counts = np.bincount(np.load(retina)["train_labels"].ravel())
    grades = range(len(counts))
    header = " | ".join(f"grade {c} (n={n})" for c, n in zip(grades, counts, strict=True))
    print(f"\n### {retina.stem}, {noise} {rate:g}: per-class test sensitivity (final epoch)\n")
    print(f"| method | test acc | bal. acc | {header} |")
    print("|---|---|---|" + "---|" * len(counts))
    for method, stats in retina_rows:
        sens = [fmt([s["sensitivity"][c] for s in stats if s["sensitivity"]]) for c in grades]
        acc = fmt([s["acc"] for s in stats])
        bal = fmt([s["bal_acc"] for s in stats])
        print(f"| {method} | {acc} | {bal} | " + " | ".join(sens) + " |")
    print(f"\n### {retina.stem}, {noise} {rate:g}: per-class selection recall (last {LAST_K})\n")
    print(f"| method | overall | {header} |")
    print("|---|---|" + "---|" * len(counts))
    for method, stats in retina_rows:
        if method == "ce":
            continue
        rec = [
            fmt([s["sel_recall_per_class"][c] for s in stats if s["sel_recall_per_class"]])
            for c in grades
        ]
        print(f"| {method} | {fmt([s['recall'] for s in stats])} | " + " | ".join(rec) + " |")


if __name__ == "__main__":
    main()
