"""Benchmark of the sample-selection methods (Co-teaching family) against CE on BloodMNIST.

Full BloodMNIST (28 px, ``../shared/data/bloodmnist.npz`` relative to the repository root), the
fast preset (small CNN, 20 epochs, batch 128), symmetric 0.5 and instance (PDN) 0.5, seeds 0 and
1. For each method and noise: last-5 test accuracy (headline head; "mean" of the two nets for the
two-net methods) and the final epoch's selection precision ("clean ratio") and recall ("coverage
ratio"), averaged over the nets, as mean ± std over seeds. Prints a Markdown table and writes it
to ``<out>/selection_methods.md``.

Runs live under ``--out`` (default ``runs/bench_selection``); finished runs are skipped and
interrupted ones resume (``run_one``). ``--quick`` is a smoke test only: a 1500-sample subset of
the training split (and 500 validation and test images) written to a temporary .npz, the tiny CNN,
2 epochs, seed 0; its runs go to a temporary folder unless ``--out`` is given.

    python benchmarks/selection_methods.py                 # the full benchmark (hours on CPU)
    python benchmarks/selection_methods.py --quick         # a few minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from lnmbench.experiment.config import resolve_config
from lnmbench.experiment.run import run_one

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "bloodmnist.npz"
METHODS = ("ce", "coteaching", "coteaching-plus", "codis", "jocor")
NOISES = ("symmetric:0.5", "instance:0.5")
QUICK_TRAIN = 1500
QUICK_EVAL = 500
QUICK_MODEL = "cnn-tiny"


def parse_noise(text: str) -> tuple[str, float]:
    """ "name:rate" -> (name, rate)."""
    name, sep, rate = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(
            f"noise must be NAME:RATE (e.g. symmetric:0.5), got {text}"
        )
    try:
        return name, float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"noise rate must be a number, got {rate!r}") from None


def write_quick_subset(
    source: Path, folder: Path, n_train: int = QUICK_TRAIN, n_eval: int = QUICK_EVAL, seed: int = 0
) -> Path:
    """A copy of ``source`` with ``n_train`` seeded-random training samples and ``n_eval`` each of
    validation and test (a smoke-test dataset)."""
    with np.load(source) as data:
        arrays = {k: data[k] for k in data.files}
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_eval), ("test", n_eval)):
        pick = np.sort(rng.permutation(len(arrays[f"{split}_labels"]))[:n])
        arrays[f"{split}_images"] = arrays[f"{split}_images"][pick]
        arrays[f"{split}_labels"] = arrays[f"{split}_labels"][pick]
    path = folder / f"{source.stem}_quick{n_train}.npz"
    np.savez(path, **arrays)
    return path


def selection_means(summary: dict[str, Any]) -> tuple[float, float]:
    """Final-epoch selection (precision, recall) averaged over the method's sets; nan if none."""
    sets = [v for k, v in summary["diagnostics_final"].items() if k.startswith("selection/")]
    if not sets:
        return float("nan"), float("nan")

    def mean(key: str) -> float:
        vals = [s[key] for s in sets if s.get(key) is not None]
        return float(np.mean(vals)) if vals else float("nan")

    return mean("precision"), mean("recall")


def fmt(values: list[float]) -> str:
    """Percent mean ± sample std over seeds; "–" when undefined."""
    arr = np.array([v for v in values if np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return "–"
    if arr.size == 1:
        return f"{100 * arr[0]:.2f}"
    return f"{100 * arr.mean():.2f} ± {100 * arr.std(ddof=1):.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default: preset's 20)")
    ap.add_argument(
        "--preset",
        default="fast-augmented",
        help="preset of the committed tables (the old CPU protocol; validity.py runs fast)",
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 (quick: 0)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--noises", type=parse_noise, nargs="+", default=None, help="NAME:RATE ...")
    ap.add_argument("--out", type=Path, default=None, help="run root (runs/bench_selection)")
    ap.add_argument(
        "--quick", action="store_true", help="smoke test: 1500 train samples, tiny CNN, 2 epochs"
    )
    args = ap.parse_args(argv)

    if not DATA.exists():
        print(f"skipped: {DATA} not found (full BloodMNIST, the project's ../shared/data)")
        return 0
    noises = args.noises or [parse_noise(t) for t in NOISES]
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1])
    tmp = tempfile.TemporaryDirectory(prefix="bench_selection_") if args.quick else None
    dataset = write_quick_subset(DATA, Path(tmp.name)) if tmp else DATA
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else None)
    if args.out is not None:
        out = args.out
    elif tmp is not None:
        out = Path(tmp.name) / "runs"
    else:
        out = ROOT / "runs" / "bench_selection"

    rows: list[dict[str, Any]] = []
    used_epochs, used_model = epochs, ""
    try:
        for noise, rate in noises:
            for method in args.methods:
                acc, prec, rec, wall = [], [], [], 0.0
                for seed in seeds:
                    user: dict[str, Any] = {
                        "method": method,
                        "dataset": str(dataset),
                        "noise": {"name": noise, "rate": rate},
                        "seed": seed,
                        "progress": False,
                        "preset": args.preset,
                    }
                    if epochs is not None:
                        user["epochs"] = epochs
                    if args.quick:
                        user["model"] = QUICK_MODEL
                    cfg = resolve_config(user, "benchmark")
                    used_epochs, used_model = cfg.epochs, cfg.model
                    t0 = time.perf_counter()
                    summary = run_one(cfg, out)
                    wall += summary.get("wall_s", time.perf_counter() - t0)
                    acc.append(summary["headline"]["value"])
                    p, r = selection_means(summary)
                    prec.append(p)
                    rec.append(r)
                    print(
                        f"{method} {noise}{rate:g} seed {seed}: last-5 acc "
                        f"{100 * acc[-1]:.2f} %, precision {fmt([p])}, recall {fmt([r])}",
                        flush=True,
                    )
                rows.append(
                    {
                        "method": method,
                        "noise": f"{noise} {rate:g}",
                        "acc": fmt(acc),
                        "precision": fmt(prec),
                        "recall": fmt(rec),
                        "seeds": len(seeds),
                        "minutes": wall / 60,
                    }
                )
    finally:
        if tmp is not None:
            tmp.cleanup()

    header = (
        "| method | noise | last-5 test acc (%) | sel. precision (%) | sel. recall (%) "
        "| seeds | run time (min) |\n|---|---|---|---|---|---|---|"
    )
    lines = [header] + [
        f"| {r['method']} | {r['noise']} | {r['acc']} | {r['precision']} | {r['recall']} "
        f"| {r['seeds']} | {r['minutes']:.1f} |"
        for r in rows
    ]
    title = (
        f"Selection methods on {dataset.stem} (fast preset, model {used_model}, "
        f"{used_epochs} epochs, seeds {seeds}); precision and "
        "recall of the final epoch, mean over nets; mean ± std over seeds."
    )
    table = "\n".join([title, "", *lines])
    print("\n" + table)
    if tmp is None or args.out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "selection_methods.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
