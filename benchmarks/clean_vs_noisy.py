"""CE on the full BloodMNIST: clean vs symmetric 0.5 vs instance (PDN) 0.5, fast preset.

Prints last-5 test accuracy and training throughput, with the time spent gathering/augmenting
batches (data) separated from the forward/backward/step time (compute).

    python benchmarks/clean_vs_noisy.py [--epochs 20] [--seed 0] [--out runs/bench_clean_vs_noisy]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOOD = ROOT.parent / "shared" / "data" / "bloodmnist.npz"

SETTINGS = [
    ("clean", "symmetric", 0.0),
    ("symmetric 0.5", "symmetric", 0.5),
    ("instance 0.5", "instance", 0.5),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="default: the fast preset's")
    ap.add_argument(
        "--preset",
        default="fast-augmented",
        help="preset of the committed tables (the old CPU protocol; validity.py runs fast)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_clean_vs_noisy"))
    args = ap.parse_args()
    if not BLOOD.exists():
        sys.exit(f"skipped: {BLOOD} not found (the project's ../shared/data/bloodmnist.npz)")

    from lnmbench.experiment.config import resolve_config
    from lnmbench.experiment.run import run_one

    rows = []
    for label, noise, rate in SETTINGS:
        user = {
            "method": "ce",
            "dataset": str(BLOOD),
            "noise": {"name": noise, "rate": rate},
            "seed": args.seed,
            "device": args.device,
            "progress": False,
            "preset": args.preset,
        }
        if args.epochs:
            user["epochs"] = args.epochs
        s = run_one(resolve_config(user, where="benchmark"), args.out)
        t = s["time"]
        rows.append(
            (
                label,
                s["realised_noise_rate"]["train"],
                s["headline"]["value"],
                s["metrics"]["balanced_accuracy"]["last5"],
                t["train_images_per_s"],
                t["data_s"],
                t["compute_s"],
                s["epochs_done"],
                s["device"],
            )
        )
        print(f"done: {label}", flush=True)

    print(
        "\n| setting | realised rate | last-5 acc | last-5 bal. acc | train img/s | "
        "data s | compute s | epochs | device |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, rr, acc, bacc, ips, ds, cs, ep, dev in rows:
        print(
            f"| {label} | {100 * rr:.1f}% | {100 * acc:.2f} | {100 * bacc:.2f} | {ips:.0f} | "
            f"{ds:.1f} | {cs:.1f} | {ep} | {dev} |"
        )


if __name__ == "__main__":
    main()
