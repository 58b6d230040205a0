"""Write result stores with known numbers in the real on-disk run-folder format (config.yaml,
noise.json, metrics.jsonl, summary.json): for tests and for timing the report on a paper-sized
grid without training anything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import yaml

from lnmbench.experiment.summary import SCALAR_METRICS

PAPER_METHODS = (
    "ce",
    "sce",
    "cdr",
    "t-revision",
    "volminnet",
    "coteaching",
    "coteaching-plus",
    "codis",
    "jocor",
    "disc",
    "dividemix",
)
SELECTING = {"coteaching", "coteaching-plus", "codis", "jocor", "disc", "dividemix"}


def write_run(
    root: str | Path,
    method: str,
    dataset: str,
    noise: str,
    rate: float | None,
    seed: int,
    value: float | None,
    *,
    epochs: int = 5,
    num_classes: int = 4,
    class_counts: list[int] | None = None,
    per_class: list[float] | None = None,
    selection: bool | None = None,
    failed: bool = False,
    hparams: dict | None = None,
) -> Path:
    """One run folder whose summary gives every test metric (every summary) the ``value`` (a
    fraction); ``value=None`` leaves it unfinished (interrupted), ``failed`` writes failed.txt.

    Per-epoch rows ramp linearly up to ``value``; methods that select samples log selection
    diagnostics unless ``selection`` says otherwise. ``hparams`` go into config.yaml (and the
    folder name), for stores holding configuration variants of a method.
    """
    ident = (method, dataset, noise, rate, seed) + ((sorted(hparams.items()),) if hparams else ())
    key = hashlib.sha256(repr(ident).encode()).hexdigest()[:12]
    name = f"{method}_{dataset}_{noise}{rate}_s{seed}_{key}"
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "method": method,
        "dataset": dataset,
        "size": 28,
        "noise": {"name": noise, "rate": rate, "seed": None, "params": {}},
        "seed": seed,
        "model": "cnn",
        "epochs": epochs,
        "preset": "fast",
        "protocol": "uniform",
    }
    if hparams:
        cfg["hparams"] = hparams
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    counts = class_counts or [100 * (k + 1) for k in range(num_classes)]
    t = np.full((num_classes, num_classes), (rate or 0.2) / max(num_classes - 1, 1))
    np.fill_diagonal(t, 1 - (rate or 0.2))
    noise_rep = {
        "train": {
            "generator": noise,
            "rate": rate,
            "num_samples": sum(counts),
            "realised_rate": rate,
            "transition_matrix": t.tolist(),
            "clean_class_counts": counts,
            "noisy_class_counts": counts,
        }
    }
    (folder / "noise.json").write_text(json.dumps(noise_rep))
    if failed:
        (folder / "failed.txt").write_text("Traceback ...\nRuntimeError: synthetic failure\n")
        return folder
    v = 0.5 if value is None else value
    sel = method in SELECTING if selection is None else selection
    rows = []
    for e in range(epochs):
        acc = v * (e + 1) / epochs
        diag = {}
        if sel:
            diag = {
                "selection/net1": {
                    "precision": 0.5 + 0.4 * (e + 1) / epochs,
                    "recall": 0.9 - 0.2 * (e + 1) / epochs,
                }
            }
        rows.append(
            {
                "epoch": e,
                "train": {"loss": 2.0 / (e + 1)},
                "val_headline_acc": acc,
                "test_headline_acc": acc,
                "diagnostics": diag,
            }
        )
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if value is None:
        return folder
    pc = per_class or [v] * num_classes
    summary = {
        "headline": {"name": "test accuracy, mean of the last 5 epochs", "head": "net", "value": v},
        "test_acc_last5": v,
        "test_acc_best_val": v,
        "test_acc_final": v,
        "test_acc_best_oracle": v,
        "best_val_epoch": epochs - 1,
        "best_val_acc": v,
        "epochs_done": epochs,
        "metrics": {m: {"last5": v, "best_val": v, "final": v} for m in SCALAR_METRICS},
        "per_class": {"per_class_sensitivity": pc},
        "diagnostics_final": rows[-1]["diagnostics"],
        "realised_noise_rate": {"train": rate, "val": rate},
        "noise_rate_used": {"value": rate, "source": "nominal"},
        "wall_s": 1.0,
        "time": {"train_images_per_s": 1000.0},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def write_paper_sized_store(
    root: str | Path, epochs: int = 50, seed: int = 0, methods: tuple[str, ...] = PAPER_METHODS
) -> int:
    """A paper-sized grid of finished runs with made-up accuracies: 11 methods × (4 MedMNIST
    sets × symmetric/instance × rates 0.2/0.5/0.8/0.9 + 3 real-world sets × realworld and
    instance 0.2/0.4) × 3 seeds = 1,353 runs (123 per method). Returns the number written."""
    rng = np.random.default_rng(seed)
    settings = [
        (d, noise, rate, 8)
        for d in ("pathmnist", "dermamnist", "bloodmnist", "organcmnist")
        for noise in ("symmetric", "instance")
        for rate in (0.2, 0.5, 0.8, 0.9)
    ]
    for d in ("drtid", "kaggledr+", "chexpert"):
        settings += [(d, "realworld", None, 5), (d, "instance", 0.2, 5), (d, "instance", 0.4, 5)]
    n = 0
    for m in methods:
        for d, noise, rate, classes in settings:
            for s in (0, 5, 10):
                acc = float(np.clip(0.9 - 0.6 * (rate or 0.4) + rng.normal(0, 0.03), 0, 1))
                write_run(root, m, d, noise, rate, s, acc, epochs=epochs, num_classes=classes)
                n += 1
    return n
