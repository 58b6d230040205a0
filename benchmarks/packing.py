"""Packing: N concurrent runs of the CPU protocol on one device, total throughput and runs per hour.

Starts N processes at once, each a CE run of the ``fast`` preset (the small CNN at 28 px) on the
bundled demo set for ``--epochs`` epochs (different seeds, a temporary run root), and measures
from the runs' own ``metrics.jsonl``, after the first (warm-up) epoch: the total training
images/s of all N runs, the image-passes/s of the grid cost model (training + evaluation, what
``lnmbench grid --dry-run`` divides by), and full 40-epoch runs per hour. On a CPU each run gets
``cores / N`` torch threads; on a GPU all N share it. From the best N it prints the estimated time
of the paper's synthetic grid at 28 px (``grids/lnmbench-fast.yaml``, 1152 runs) on that device.

    python benchmarks/packing.py                          # CPU: N = 1, 2
    python benchmarks/packing.py --device cuda --n 1 4 8 16
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "grids" / "lnmbench-fast.yaml"


def one_run(seed: int, epochs: int, device: str, threads: int, out: str) -> str:
    """A CE run of the fast preset on demo (in a fresh process); returns its run folder."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    from lnmbench.experiment.config import resolve_config
    from lnmbench.experiment.run import run_one

    cfg = resolve_config(
        {"seed": seed, "epochs": epochs, "device": device, "progress": False}, "packing"
    )
    run_one(cfg, out)
    return str(Path(out) / cfg.run_name())


def measure(n: int, epochs: int, device: str, out: Path) -> dict[str, float]:
    """Run ``n`` runs at once; steady-state throughput from their epochs 1 … E−1."""
    from lnmbench.engine.run_folder import RunFolder
    from lnmbench.experiment.config import resolve_config
    from lnmbench.experiment.grid import CostSettings, run_cost

    threads = max(1, (os.cpu_count() or 1) // n) if device == "cpu" else 1
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(n) as pool:
        folders = pool.starmap(
            one_run, [(seed, epochs, device, threads, str(out / f"n{n}")) for seed in range(n)]
        )
    wall = time.perf_counter() - t0
    epoch_s, train_img_s = [], 0.0
    for folder in folders:
        rows = RunFolder(Path(folder)).read_metrics()[1:]  # the first epoch warms up
        epoch_s.append(np.mean([r["time"]["epoch_s"] for r in rows]))
        train_img_s += np.mean([r["time"]["train_images_per_s"] for r in rows])
    full = resolve_config({}, "packing")  # the fast preset's full run (40 epochs of CE on demo)
    passes_per_epoch = run_cost(full, CostSettings()) / full.epochs
    mean_epoch_s = float(np.mean(epoch_s))
    return {
        "n": n,
        "threads": threads,
        "wall_s": wall,
        "train_images_per_s": train_img_s,
        "image_passes_per_s": n * passes_per_epoch / mean_epoch_s,
        "runs_per_hour": n * 3600 / (full.epochs * mean_epoch_s),
    }


def grid_hours(image_passes_per_s: float) -> tuple[int, float]:
    """(runs, hours) of ``grids/lnmbench-fast.yaml`` at the given packed throughput."""
    from lnmbench.experiment.grid import estimate_seconds, expand_grid, load_grid_spec

    spec = load_grid_spec(GRID)
    plan = expand_grid(spec)
    cost = spec.cost.model_copy(update={"images_per_s": image_passes_per_s})
    return len(plan.runs), estimate_seconds(plan.runs, cost) / 3600


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (all runs share one device)")
    ap.add_argument("--n", type=int, nargs="+", default=None, help="default: 1 2 (CPU)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is warm-up)")
    args = ap.parse_args(argv)
    ns = args.n or ([1, 2] if args.device == "cpu" else [1, 4, 8, 16])
    if args.epochs < 2:
        ap.error("--epochs must be >= 2 (the first epoch is not timed)")
    print(
        "| N | threads/run | wall (s) | train img/s (total) | image-passes/s | runs/hour |\n"
        "|---|---|---|---|---|---|"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="packing_") as tmp:
        for n in ns:
            r = measure(n, args.epochs, args.device, Path(tmp))
            results.append(r)
            print(
                f"| {n} | {r['threads']} | {r['wall_s']:.0f} | {r['train_images_per_s']:.0f} "
                f"| {r['image_passes_per_s']:.0f} | {r['runs_per_hour']:.1f} |",
                flush=True,
            )
    best = max(results, key=lambda r: r["image_passes_per_s"])
    runs, hours = grid_hours(best["image_passes_per_s"])
    print(
        f"\nbest N = {best['n']}: {best['image_passes_per_s']:.0f} image-passes/s; the paper's "
        f"synthetic grid at 28 px ({runs} runs, {GRID.relative_to(ROOT)}) ≈ {hours:.1f} h on "
        f"this device (lnmbench grid {GRID.relative_to(ROOT)} --dry-run --images-per-s "
        f"{best['image_passes_per_s']:.0f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
