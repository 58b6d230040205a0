"""Benchmark: robust-regularisation and transition-matrix methods on BloodMNIST (fast preset).

For every (noise, seed, method) it trains one run with ``run_one`` (finished runs are skipped, so
an interrupted benchmark resumes) and prints a Markdown table: last-5 test accuracy, test
accuracy at the best noisy-val epoch, and for methods that estimate T the final estimation error
against the empirical T of the noisy training labels (and against the generating matrix), next
to the error of the identity matrix (the "no noise" guess).

    python benchmarks/transition_methods.py                # full: 20 epochs, seed 0
    python benchmarks/transition_methods.py --quick        # smoke test: 1500 samples, 3 epochs
    python benchmarks/transition_methods.py --seeds 0,5,10 --noises pairflip:0.4

Data: ../shared/data/bloodmnist.npz relative to the repository root (skipped when absent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lnmbench.experiment.config import resolve_config
from lnmbench.experiment.run import run_one
from lnmbench.metrics import transition_estimation_error

ROOT = Path(__file__).resolve().parents[1]
BLOODMNIST = ROOT.parent / "shared" / "data" / "bloodmnist.npz"
METHODS = ("ce", "sce", "cdr", "t-revision", "volminnet")
NOISES = ("pairflip:0.4", "symmetric:0.5")
QUICK_SIZES = {"train": 1500, "val": 300, "test": 500}


def parse_noise(text: str) -> tuple[str, float]:
    """'name:rate' -> (name, rate)."""
    name, sep, rate = text.partition(":")
    if not sep:
        raise SystemExit(f"--noises entries are name:rate (e.g. pairflip:0.4), got {text!r}")
    return name, float(rate)


def quick_subset(source: Path, out_dir: Path, seed: int = 0) -> Path:
    """A seeded random subset of ``source`` (QUICK_SIZES per split) in the MedMNIST layout."""
    path = out_dir / "bloodmnist_quick.npz"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    arrays = {}
    with np.load(source) as z:
        for split, n in QUICK_SIZES.items():
            labels = z[f"{split}_labels"]
            idx = np.sort(rng.choice(len(labels), size=min(n, len(labels)), replace=False))
            arrays[f"{split}_images"] = z[f"{split}_images"][idx]
            arrays[f"{split}_labels"] = labels[idx]
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def transition_errors(run_dir: Path) -> dict[str, float | None]:
    """Final T̂ error against the empirical and the generating T, and the identity's errors."""
    noise = json.loads((run_dir / "noise.json").read_text())["train"]
    t_emp = np.array(noise["transition_matrix"], dtype=float)
    generating = noise.get("extra", {}).get("generating_matrix")
    t_gen = None if generating is None else np.array(generating, dtype=float)
    eye = np.eye(len(t_emp))
    out: dict[str, float | None] = {
        "identity_error": transition_estimation_error(eye, t_emp),
        "identity_error_generating": None
        if t_gen is None
        else transition_estimation_error(eye, t_gen),
        "error": None,
        "error_generating": None,
    }
    est_path = run_dir / "transition_estimate.npy"
    if est_path.exists():
        t_hat = np.load(est_path)
        out["error"] = transition_estimation_error(t_hat, t_emp)
        if t_gen is not None:
            out["error_generating"] = transition_estimation_error(t_hat, t_gen)
    return out


def run_all(args: argparse.Namespace, dataset: Path) -> list[dict[str, Any]]:
    results = []
    for noise_text in args.noises.split(","):
        noise, rate = parse_noise(noise_text)
        for seed in (int(s) for s in args.seeds.split(",")):
            for method in args.methods.split(","):
                cfg = resolve_config(
                    {
                        "preset": args.preset,
                        "method": method,
                        "dataset": str(dataset),
                        "noise": {"name": noise, "rate": rate},
                        "epochs": args.epochs,
                        "seed": seed,
                        "device": args.device,
                        "progress": False,
                    },
                    where=f"benchmark {method} {noise_text} seed {seed}",
                )
                t0 = time.perf_counter()
                summary = run_one(cfg, args.out)
                errors = transition_errors(Path(args.out) / cfg.run_name())
                row = {
                    "method": method,
                    "noise": noise_text,
                    "seed": seed,
                    "last5": summary["headline"]["value"],
                    "best_val": summary["test_acc_best_val"],
                    "wall_s": summary.get("wall_s", time.perf_counter() - t0),
                    **errors,
                }
                results.append(row)
                print(
                    f"{method:>11} {noise_text:>14} seed {seed}: last-5 {row['last5']:.4f}"
                    f"  T error {row['error']}  ({row['wall_s']:.0f} s)",
                    flush=True,
                )
    return results


def _mean_std(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{100 * vals[0]:.2f}"
    return f"{100 * np.mean(vals):.2f} ± {100 * np.std(vals, ddof=1):.2f}"


def markdown_table(results: list[dict[str, Any]], epochs: int) -> str:
    """Mean ± sample std over seeds, in percent; T errors as percentages of Σ|T̃|."""
    lines = [
        f"BloodMNIST, fast preset, {epochs} epochs; accuracy and T-estimation error in %",
        "",
        "| noise | method | seeds | last-5 acc | test acc @ best val | T error (empirical) "
        "| T error (generating) |",
        "|---|---|---|---|---|---|---|",
    ]
    order = {m: i for i, m in enumerate(METHODS)}
    for noise in dict.fromkeys(r["noise"] for r in results):
        rows = [r for r in results if r["noise"] == noise]
        methods = sorted({r["method"] for r in rows}, key=lambda m: (order.get(m, len(order)), m))
        for method in methods:
            rs = [r for r in rows if r["method"] == method]
            lines.append(
                f"| {noise} | {method} | {len(rs)} | {_mean_std([r['last5'] for r in rs])} | "
                f"{_mean_std([r['best_val'] for r in rs])} | {_mean_std([r['error'] for r in rs])}"
                f" | {_mean_std([r['error_generating'] for r in rs])} |"
            )
        per_seed = list({r["seed"]: r for r in rows}.values())  # the noise depends on the seed
        lines.append(
            f"| {noise} | *identity T* | {len(per_seed)} | | | "
            f"{_mean_std([r['identity_error'] for r in per_seed])} | "
            f"{_mean_std([r['identity_error_generating'] for r in per_seed])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="default 20 (3 with --quick)")
    parser.add_argument(
        "--preset",
        default="fast-augmented",
        help="preset of the committed tables (the old CPU protocol; validity.py runs fast)",
    )
    parser.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,5,10")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--noises", default=",".join(NOISES), help="name:rate,...")
    parser.add_argument("--out", default="runs/bench_transition")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="1500-sample subset (smoke test)")
    args = parser.parse_args(argv)
    if not BLOODMNIST.exists():
        print(f"skipped: {BLOODMNIST} not found (the project's ../shared/data)")
        return 0
    if args.epochs is None:
        args.epochs = 3 if args.quick else 20  # t-revision needs >= 3 (one per stage)
    out = Path(args.out)
    if args.quick:
        out = out / "quick"
        args.out = str(out)
    dataset = quick_subset(BLOODMNIST, out) if args.quick else BLOODMNIST
    results = run_all(args, dataset)
    table = markdown_table(results, args.epochs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "transition_methods.md").write_text(table + "\n")
    (out / "transition_methods.json").write_text(json.dumps(results, indent=1))
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
