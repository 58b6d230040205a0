"""The run summary: headline (mean test accuracy of the last 5 epochs) and the other summaries."""

from __future__ import annotations

from typing import Any

import numpy as np

LAST_K = 5
SCALAR_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "macro_auc",
    "fpr95",
    "ece",
    "qwk",
)


def _nanmean(values: list[Any]) -> float | None:
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    if arr.size == 0 or np.all(np.isnan(arr)):
        return None
    return float(np.nanmean(arr))


def summarize(
    rows: list[dict[str, Any]], headline_head: str, start_epoch: int = 0
) -> dict[str, Any]:
    """Summaries of per-epoch ``rows`` (methods.md §5).

    headline = mean test accuracy of the last 5 epochs of the headline head; best-val = test
    accuracy at the first epoch of maximal noisy-validation accuracy; final = last epoch. Only
    epochs from ``start_epoch`` count (T-Revision: its revision stage); times cover all epochs.
    """
    all_rows = sorted((r for r in rows if r["epoch"] >= 0), key=lambda r: r["epoch"])
    rows = [r for r in all_rows if r["epoch"] >= max(start_epoch, 0)]
    if not rows:
        raise ValueError("no epochs to summarise")
    last = rows[-LAST_K:]
    val = [r["val_headline_acc"] for r in rows]
    best = int(np.argmax(val))  # first maximum
    test = [r["test_headline_acc"] for r in rows]
    out: dict[str, Any] = {
        "headline": {
            "name": "test accuracy, mean of the last 5 epochs",
            "head": headline_head,
            "value": float(np.mean([r["test_headline_acc"] for r in last])),
        },
        "test_acc_last5": float(np.mean([r["test_headline_acc"] for r in last])),
        "test_acc_best_val": float(test[best]),
        "best_val_epoch": rows[best]["epoch"],
        "best_val_acc": float(val[best]),
        "test_acc_final": float(test[-1]),
        "test_acc_best_oracle": float(np.max(test)),
        "epochs_done": len(all_rows),
        "summary_start_epoch": start_epoch,
    }
    metrics = {}
    for m in SCALAR_METRICS:
        if m not in rows[-1]["test"]:
            continue
        metrics[m] = {
            "last5": _nanmean([r["test"].get(m) for r in last]),
            "best_val": rows[best]["test"].get(m),
            "final": rows[-1]["test"].get(m),
        }
    out["metrics"] = metrics
    out["per_class"] = {
        k: rows[-1]["test"][k]
        for k in ("per_class_sensitivity", "per_class_specificity")
        if k in rows[-1]["test"]
    }
    heads = rows[-1]["test_acc"].keys()
    out["heads"] = {
        h: {
            "last5": float(np.mean([r["test_acc"][h] for r in last])),
            "final": float(rows[-1]["test_acc"][h]),
        }
        for h in heads
    }
    out["diagnostics_final"] = rows[-1].get("diagnostics", {})
    times = [r["time"] for r in all_rows]
    out["time"] = {
        "train_s": float(sum(t["train_s"] for t in times)),
        "epoch_s": float(sum(t["epoch_s"] for t in times)),
        "data_s": float(sum(t["data_s"] for t in times)),
        "compute_s": float(sum(t["compute_s"] for t in times)),
        "train_images_per_s": float(
            sum(t["train_samples"] for t in times)
            / max(sum(t["data_s"] + t["compute_s"] for t in times), 1e-9)
        ),
    }
    return out
