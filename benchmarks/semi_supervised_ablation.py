"""Where do DivideMix and DISC lose to CE in the fast preset? An ablation on the bundled demo set.

The bundled ``demo`` set (3000 BloodMNIST training images), symmetric 0.5, seed 0, fast preset
(the 73k-parameter ``cnn``, 20 epochs). Each row changes one thing:

- DivideMix as in the preset (warm-up 4 epochs, constant LR), then with a LR step (÷10 at
  epochs 10 and 16), without mixup (α = 0), without the unlabelled loss (λ_u = 0);
- a long warm-up (10 of 20 epochs, LR ÷10 at 8 and 16) so the division is made by a converged
  network, with and without the MixMatch terms;
- the same with an **oracle division** (w = 1 for the truly clean samples, 0 otherwise; the
  clean labels are read by this script, never by the package), which removes every selection
  error: what is left is the cost or gain of the training step itself;
- DISC as in the preset, with CE's optimiser (SGD 0.05, momentum 0.9), and without mixup.

The rows above are measured in the old CPU protocol (the ``fast-augmented`` preset). With
``--schedules`` it runs the current ``fast`` preset (the paper's regime) against the schedule each
of its choices replaced: DivideMix's LR step, warm-up / λ_u ramp and separate forwards, DISC's
scaled EMA momentum, Co-teaching's forget ramp and Co-teaching+'s scaled fallback horizon.

With ``--memorisation`` it runs the regime where CE memorises the noisy labels instead: CE,
DivideMix, DISC, Co-teaching and CoDis as in the preset but 60 epochs and no augmentation of the
training view (the methods' own weak/strong views are still random), which shows whether the
methods do what they are for when there is memorisation to prevent.

For every row: last-5 test accuracy, test accuracy at the last epoch, and the training accuracy
against the noisy labels in the last epoch (a network that predicted every true class exactly
would score 50 % here: symmetric noise never keeps the true class).

    python benchmarks/semi_supervised_ablation.py [--out runs/bench_semi_ablation] [--rows N ...]
    python benchmarks/semi_supervised_ablation.py --quick   # smoke test: cnn-tiny, 2 epochs

About 5 min per DivideMix row and 3 min per DISC row on one CPU core; runs resume.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lnmbench.data import load_dataset
from lnmbench.data.catalog import default_data_dir
from lnmbench.engine.run_folder import RunFolder
from lnmbench.experiment.config import load_preset, method_block, resolve_config
from lnmbench.experiment.run import run_one, split_noise
from lnmbench.methods.base import register_method
from lnmbench.methods.disc import DISC, DiscSets
from lnmbench.methods.dividemix import DivideMix
from lnmbench.methods.medssl import class_quotas

ROOT = Path(__file__).resolve().parents[1]
NOISE = {"name": "symmetric", "rate": 0.5}
LONG_WARMUP = {"schedule": "multistep", "milestones": [20, 40], "warmup_epochs": 25}
STEP = {"schedule": "multistep", "milestones": [25, 40]}
NO_MIX = {"alpha": 0, "lambda_u": 0}

# (label, method, hparams overrides)
ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("CE", "ce", {}),
    ("DivideMix, preset", "dividemix", {}),
    ("DivideMix, LR step", "dividemix", STEP),
    ("DivideMix, LR step, no mixup (α=0)", "dividemix", {**STEP, "alpha": 0}),
    ("DivideMix, LR step, no L_u (λ_u=0)", "dividemix", {**STEP, "lambda_u": 0}),
    ("DivideMix, long warm-up", "dividemix", LONG_WARMUP),
    ("DivideMix, long warm-up, no mixup, no L_u", "dividemix", {**LONG_WARMUP, **NO_MIX}),
    ("DivideMix, long warm-up, oracle division", "dividemix-oracle", LONG_WARMUP),
    (
        "DivideMix, long warm-up, oracle division, no mixup, no L_u",
        "dividemix-oracle",
        {**LONG_WARMUP, **NO_MIX},
    ),
    ("DISC, preset", "disc", {}),
    ("DISC, CE's optimiser", "disc", {"lr": 0.05, "momentum": 0.9, "milestones": [25, 40]}),
    ("DISC, no mixup (α=0)", "disc", {"alpha": 0}),
]

MEMORISATION_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("CE, 60 epochs, no augmentation", "ce", {}),
    ("DivideMix, 60 epochs, no augmentation", "dividemix", {}),
    ("DISC, 60 epochs, no augmentation", "disc", {}),
    ("Co-teaching, 60 epochs, no augmentation", "coteaching", {}),
    ("CoDis, 60 epochs, no augmentation", "codis", {}),
]
MEMORISATION = {"epochs": 60, "augment": "none"}


# --schedules: the current fast preset (the paper's regime) against the schedule it replaced, one
# change per row; rows 1, 5, 7 and 9 are cells of benchmarks/validity.py (demo, symmetric 0.5,
# seed 0): with --out runs/validity they are read from there instead of trained again
FAST_DIVIDEMIX = load_preset("fast")["methods"]["dividemix"]
SCHEDULE_ROWS: list[tuple[str, str, dict[str, Any]]] = [
    ("DivideMix, fast preset", "dividemix", {}),
    ("DivideMix, constant LR (the reference)", "dividemix", {"schedule": "constant"}),
    (
        "DivideMix, the reference's warm-up 5/50 and λ_u ramp 16/50",
        "dividemix",
        {"warmup_epochs": 5, "rampup_epochs": 16.0},
    ),
    (
        "DivideMix, concatenated co-guess / co-refine forwards",
        "dividemix",
        {"forwards": "concatenated"},
    ),
    ("DISC, fast preset", "disc", {}),
    ("DISC, EMA momentum per epoch, not scaled to 200 epochs", "disc", {"ema_epochs": None}),
    ("Co-teaching, fast preset", "coteaching", {}),
    (
        "Co-teaching, the reference's forget ramp T_k = 10/50",
        "coteaching",
        {"forget_ramp_epochs": 10},
    ),
    ("Co-teaching+, fast preset", "coteaching-plus", {}),
    ("Co-teaching+, a fixed 5000-step fallback", "coteaching-plus", {"fallback_fraction": None}),
    # the oracle method has no preset block of its own: it gets DivideMix's from the fast preset
    ("DivideMix, fast preset, oracle division", "dividemix-oracle", dict(FAST_DIVIDEMIX)),
    # DISC with medssl's class quotas on its clean set (q_c = max(min(n_c, 8), ⌈5 % · n_c⌉)):
    # does a per-class floor stop the class-by-class emptying of C at symmetric 0.8?
    ("DISC, fast preset, per-class floor on the clean set", "disc-class-floor", {}),
]

_ORACLE_W: dict[str, np.ndarray] = {}


@register_method("dividemix-oracle")
class OracleDivideMix(DivideMix):
    """DivideMix whose co-divide returns the true clean indicator (diagnostic only)."""

    description = "DivideMix with an oracle division (ablation script only)"

    def clean_probability(self, name: str, losses: np.ndarray, epoch: int) -> np.ndarray:
        self.gmm_means[name] = [0.0, 1.0]
        return _ORACLE_W["w"]


def floor_sets(sets: DiscSets, labels: torch.Tensor, quotas: torch.Tensor) -> DiscSets:
    """``sets`` with at least quotas[c] samples of each noisy class c in the clean set C: the
    best-scored samples of c outside C join C (and S, W; they leave H and P, their target is ỹ).

    labels (N,) long, quotas (C,) long; sets.score (N,) is DISC's clean-ness score.
    """
    add = torch.zeros_like(sets.clean)
    for c, q in enumerate(quotas.tolist()):
        members = (labels == c).nonzero().squeeze(1)
        missing = q - int(sets.clean[members].sum())
        if missing <= 0:
            continue
        outside = members[~sets.clean[members]]
        best = outside[sets.score[outside].argsort(descending=True)[:missing]]
        add[best] = True
    clean = sets.clean | add
    selected = sets.selected | add
    purified = sets.purified & ~add
    return DiscSets(
        clean=clean,
        selected=selected,
        hard=selected & ~clean,
        hard_weak=sets.hard_weak & ~add,
        hard_strong=sets.hard_strong & ~add,
        purified=purified,
        mix=selected | purified,
        targets=torch.where(add, labels, sets.targets),
        score=sets.score,
    )


@register_method("disc-class-floor")
class ClassFloorDISC(DISC):
    """DISC whose clean set keeps medssl's per-class quota of each noisy class (ablation only)."""

    description = "DISC with a per-class floor on its clean set (ablation script only)"

    def setup(self) -> None:
        super().setup()
        counts = np.bincount(self.noisy.cpu().numpy(), minlength=self.ctx.num_classes)
        self.quotas = torch.as_tensor(class_quotas(counts), device=self.noisy.device)

    def on_epoch_end(self, epoch: int) -> dict[str, Any]:
        out = super().on_epoch_end(epoch)
        self.sets = floor_sets(self.sets, self.noisy, self.quotas)
        out["set_sizes"] = self.sets.sizes()
        return out


def config(
    method: str,
    hparams: dict[str, Any],
    quick: bool = False,
    memorisation: bool = False,
    preset: str = "fast-augmented",
    rate: float = NOISE["rate"],
) -> Any:
    user: dict[str, Any] = {
        "method": method,
        "dataset": "demo",
        "noise": {**NOISE, "rate": rate},
        "seed": 0,
        "preset": preset,
        "progress": False,
    }
    if method == "disc-class-floor":  # no preset block of its own: DISC's, at this rate
        hparams = {**method_block(load_preset("fast")["methods"], "disc", rate, "fast"), **hparams}
    if hparams:
        user["hparams"] = hparams
    if memorisation:
        user.update(MEMORISATION)
    if quick:
        user.update(epochs=2, model="cnn-tiny")
    return resolve_config(user, "ablation")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_semi_ablation")
    ap.add_argument("--rows", type=int, nargs="+", default=None, help="row numbers (1-based)")
    ap.add_argument(
        "--memorisation", action="store_true", help="the regime where CE memorises (60 epochs)"
    )
    ap.add_argument(
        "--schedules",
        action="store_true",
        help="the current fast preset against the schedules it replaced",
    )
    ap.add_argument("--rate", type=float, default=NOISE["rate"], help="symmetric noise rate")
    ap.add_argument("--quick", action="store_true", help="smoke test: cnn-tiny, 2 epochs, temp dir")
    args = ap.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="bench_semi_ablation_") if args.quick else None
    out = Path(tmp.name) if tmp else args.out

    cfg0 = config("ce", {}, rate=args.rate)
    ds = load_dataset(cfg0.dataset, size=cfg0.size)
    noise = split_noise(cfg0, ds, default_data_dir())["train"]
    _ORACLE_W["w"] = (noise.noisy == noise.clean).astype(np.float64)

    table = SCHEDULE_ROWS if args.schedules else MEMORISATION_ROWS if args.memorisation else ROWS
    preset = "fast" if args.schedules else "fast-augmented"
    numbers = args.rows or range(1, len(table) + 1)
    lines = [
        "| # | variant | last-5 test acc | final test acc | final train acc (noisy labels) |",
        "|---|---|---|---|---|",
    ]
    try:
        for number in numbers:
            label, method, hparams = table[number - 1]
            cfg = config(method, hparams, args.quick, args.memorisation, preset, args.rate)
            t0 = time.perf_counter()
            summary = run_one(cfg, out)
            final = RunFolder(out / cfg.run_name()).read_metrics()[-1]
            acc_noisy = final["train"].get("acc_noisy")
            train_acc = "–" if acc_noisy is None else f"{100 * acc_noisy:.1f}"
            line = (
                f"| {number} | {label} | {100 * summary['headline']['value']:.2f} "
                f"| {100 * final['test_headline_acc']:.2f} | {train_acc} |"
            )
            print(f"{line}   ({time.perf_counter() - t0:.0f} s)", flush=True)
            lines.append(line)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
