#!/usr/bin/env bash
# One prepared GPU check (< 10 min on one GPU): every registered method for 2 epochs on the demo
# set with --device cuda (must finish, no NaN, bf16 autocast on), throughput.py for the three
# model/size pairs, packing.py for N = 1, 4, 8, 16. Prints one table per part; exits non-zero if
# any method fails. Needs torch with CUDA and lnmbench's dependencies installed; runs from the
# repository root:   bash benchmarks/gpu_check.sh [DEVICE]      (DEVICE default cuda; cpu = dry run)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
DEVICE="${1:-cuda}"
OUT_DIR="$(mktemp -d)"
status=0
python - "$DEVICE" "$OUT_DIR" <<'PY' || status=1
"""Every registered method, 2 epochs on demo on the device: finished, finite, bf16 on."""
import json, math, sys, time
from lnmbench.experiment.config import resolve_config
from lnmbench.experiment.run import run_one
from lnmbench.methods import METHODS

device, out = sys.argv[1], sys.argv[2]
print("| method | finished | finite | bf16 | last-5 acc (%) | wall (s) |\n|---|---|---|---|---|---|")
failed = []
for name in METHODS.names():
    t0 = time.perf_counter()
    try:
        cfg = resolve_config({"method": name, "epochs": 3 if name == "t-revision" else 2,
                              "device": device, "progress": False}, "gpu check")
        summary = run_one(cfg, out)
        rows = [json.loads(l) for l in open(f"{out}/{cfg.run_name()}/metrics.jsonl")]
        values = [summary["headline"]["value"]] + [
            v for r in rows for v in r["train"].values() if isinstance(v, float)]
        finite = all(math.isfinite(v) for v in values)
        amp = cfg.amp and device.startswith("cuda")
        print(f"| {name} | yes | {'yes' if finite else 'NO'} | {'on' if amp else 'off'} "
              f"| {100 * summary['headline']['value']:.2f} | {time.perf_counter() - t0:.0f} |")
        if not finite:
            failed.append(name)
    except Exception as exc:  # report and go on: the table must show every method
        print(f"| {name} | NO: {type(exc).__name__}: {str(exc)[:80]} | | | | |")
        failed.append(name)
print(f"\nmethods failed: {', '.join(failed) or 'none'}")
sys.exit(1 if failed else 0)
PY
echo
python benchmarks/throughput.py --device "$DEVICE" --steps 100 || status=1
echo
if [ "$DEVICE" = cpu ]; then ns="1 2"; else ns="1 4 8 16"; fi
python benchmarks/packing.py --device "$DEVICE" --n $ns --epochs 3 || status=1
rm -rf "$OUT_DIR"
exit $status
