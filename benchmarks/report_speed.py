"""Time `lnmbench report` on a paper-sized synthetic result store (1,353 finished runs in the
real run-folder format, 50 epochs each; no training): reading the runs the first time (every
folder), the second time (from ROOT/results.parquet), and the whole report.

    python benchmarks/report_speed.py [--quick] [--out runs/report_speed] [--run-pages none|all]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from lnmbench.report import ReportOptions, build_report
from lnmbench.report.example_store import PAPER_METHODS, write_paper_sized_store
from lnmbench.report.load import load_results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/report_speed"))
    ap.add_argument("--run-pages", default="none", choices=("none", "all"))
    ap.add_argument("--quick", action="store_true", help="2 methods (246 runs), a smoke test")
    args = ap.parse_args()
    root = args.out / "store"
    if root.exists():
        shutil.rmtree(root)
    t = time.perf_counter()
    n = write_paper_sized_store(root, methods=PAPER_METHODS[:2] if args.quick else PAPER_METHODS)
    print(f"wrote {n} run folders in {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    _, read = load_results(root)
    print(f"first read: {read} run folders in {time.perf_counter() - t:.2f} s", flush=True)
    t = time.perf_counter()
    _, read = load_results(root)
    print(
        f"second read: {read} folders read, the rest from results.parquet, "
        f"{time.perf_counter() - t:.2f} s"
    )
    opts = ReportOptions(run_pages=args.run_pages)
    for attempt in ("first", "second"):
        t = time.perf_counter()
        res = build_report(root, args.out / "report", opts)
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in res.seconds.items())
        took = time.perf_counter() - t
        print(f"{attempt} report of {res.n_runs} runs: {took:.1f} s ({parts})", flush=True)


if __name__ == "__main__":
    main()
