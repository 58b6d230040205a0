"""The one training loop: epochs, batched views, per-epoch evaluation, metrics, checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lnmbench.engine.checkpoint import load_checkpoint, save_checkpoint
from lnmbench.engine.evaluation import (
    clinical_metrics,
    head_accuracies,
    headline_value,
    predict_split,
)
from lnmbench.engine.image_transform import ImageTransform
from lnmbench.engine.run_folder import RunFolder
from lnmbench.engine.step_timer import StepTimer
from lnmbench.engine.train_view import TrainView
from lnmbench.methods.base import Batch, Method
from lnmbench.metrics import (
    empirical_transition_matrix,
    label_recovery_accuracy,
    noise_detection_auroc,
    purified_ratio,
    selection_stats,
    transition_estimation_error,
)


@dataclass
class EvalSplit:
    """uint8 images (N, C, H, W) on the device and labels (N,) as numpy (noisy for val)."""

    images: torch.Tensor
    labels: np.ndarray


@dataclass
class LoopSettings:
    epochs: int
    num_classes: int
    ordinal: bool
    eval_batch_size: int
    transform: ImageTransform
    keep_checkpoint: bool


def train_diagnostics(
    method: Method,
    noisy: np.ndarray,
    clean: np.ndarray | None,
    num_classes: int,
    generating: np.ndarray | None = None,
) -> dict[str, Any]:
    """Selection precision/recall, detection AUROC, purified ratio, T̂ error (clean labels known)."""
    out: dict[str, Any] = {}
    selection = method.selection()
    corrected = method.corrected_labels()
    t_hat = method.transition_matrix()
    if t_hat is not None:
        out["transition_estimate"] = np.asarray(t_hat).tolist()
    if clean is None:
        if selection or corrected is not None or t_hat is not None:
            out["clean_label_diagnostics"] = "not available (no clean training labels)"
        return out
    is_clean = noisy == clean
    for name, sel in (selection or {}).items():
        stats = selection_stats(sel.selected, noisy, clean, num_classes, sel.seen)
        if sel.score is not None:
            keep = np.ones_like(is_clean) if sel.seen is None else np.asarray(sel.seen, bool)
            score = np.asarray(sel.score)[keep]
            stats["detection_auroc"] = noise_detection_auroc(score, is_clean[keep])
        out[f"selection/{name}"] = stats
    if corrected is not None:
        mask, targets = corrected
        out["purified_ratio"] = purified_ratio(mask, targets, clean)
        out["label_recovery"] = label_recovery_accuracy(targets, clean)
        out["n_corrected"] = int(np.asarray(mask).sum())
    for name, (mask, targets) in (method.corrected_labels_by_net() or {}).items():
        out[f"purified_ratio/{name}"] = purified_ratio(mask, targets, clean)
        out[f"label_recovery/{name}"] = label_recovery_accuracy(targets, clean)
    pred = method.train_predictions()
    if pred is not None:
        out["prediction_recovery"] = float(np.mean(np.asarray(pred) == clean))
    if t_hat is not None:
        t_emp, _ = empirical_transition_matrix(clean, noisy, num_classes)
        out["transition_error"] = transition_estimation_error(np.asarray(t_hat), t_emp)
        if generating is not None:
            out["transition_error_generating"] = transition_estimation_error(
                np.asarray(t_hat), generating
            )
    return out


def fit(
    method: Method,
    train: TrainView,
    val: EvalSplit,
    test: EvalSplit,
    folder: RunFolder,
    settings: LoopSettings,
    *,
    clean_train: np.ndarray | None,
    generators: dict[str, torch.Generator],
    generating_matrix: np.ndarray | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``settings.epochs`` epochs (resuming from a checkpoint if any); return metric rows."""
    device = train.device
    start = load_checkpoint(folder, method, generators)
    rows = [r for r in folder.read_metrics() if r.get("epoch", -1) < start]
    folder.rewrite_metrics(rows)
    noisy_train = train.noisy_labels.cpu().numpy()
    eval_kw = dict(transform=settings.transform, batch_size=settings.eval_batch_size, device=device)
    for epoch in range(start, settings.epochs):
        t0 = time.perf_counter()
        method.train_mode()
        method.on_epoch_start(epoch)
        sums: dict[str, torch.Tensor | float] = {}
        n_seen = 0
        timer = StepTimer(device)
        for step, idx in enumerate(method.epoch_batches(epoch), start=1):
            timer.begin()
            idx_dev = idx.to(device)
            views = {kind: train.view(idx_dev, kind) for kind in method.views}
            batch = Batch(idx_dev, train.noisy_labels[idx_dev], views)
            timer.between()
            stats = method.train_step(batch)
            timer.end()
            b = len(idx)
            n_seen += b
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v) * b
            if on_step is not None:
                on_step(epoch, step)
        train_stats = {k: float(v) / max(n_seen, 1) for k, v in sums.items()}
        data_s, compute_s = timer.totals()
        lr = method.lr()
        extra = method.on_epoch_end(epoch) or {}
        train_s = time.perf_counter() - t0

        val_probs = predict_split(method, val.images, **eval_kw)
        test_probs = predict_split(method, test.images, **eval_kw)
        val_acc = head_accuracies(val_probs, val.labels)
        test_acc = head_accuracies(test_probs, test.labels)
        cls = type(method)
        extra.update(method.after_evaluation(epoch, val_acc) or {})
        row: dict[str, Any] = {
            "epoch": epoch,
            "lr": lr,
            "train": train_stats,
            "val_acc": val_acc,
            "val_headline_acc": headline_value(val_acc, cls.val_head, cls.mean_heads),
            "test_acc": test_acc,
            "test_headline_acc": headline_value(test_acc, cls.headline, cls.mean_heads),
            "test": clinical_metrics(
                test_probs,
                test.labels,
                settings.num_classes,
                cls.headline,
                cls.mean_heads,
                settings.ordinal,
            ),
            "diagnostics": {
                **extra,
                **train_diagnostics(
                    method, noisy_train, clean_train, settings.num_classes, generating_matrix
                ),
            },
            "time": {
                "epoch_s": time.perf_counter() - t0,
                "train_s": train_s,
                "data_s": data_s,
                "compute_s": compute_s,
                "train_images_per_s": n_seen / max(data_s + compute_s, 1e-9),
                "train_samples": n_seen,
            },
        }
        folder.append_metrics(row)
        rows.append(row)
        save_checkpoint(folder, epoch, method, generators)
        final_probs = {"val": val_probs, "test": test_probs}
    if start >= settings.epochs or settings.epochs == 0:  # resumed after the last epoch
        final_probs = {
            "val": predict_split(method, val.images, **eval_kw),
            "test": predict_split(method, test.images, **eval_kw),
        }
    save_outputs(folder, method, final_probs, val, test, noisy_train, clean_train)
    return rows


def save_outputs(
    folder: RunFolder,
    method: Method,
    probs: dict[str, dict[str, np.ndarray]],
    val: EvalSplit,
    test: EvalSplit,
    noisy_train: np.ndarray,
    clean_train: np.ndarray | None,
) -> None:
    """Final-epoch outputs: ``predictions.npz`` (val/test probabilities per head, labels) and,
    for methods that select samples, ``selection.npz`` (per-sample decisions and scores)."""
    arrays: dict[str, np.ndarray] = {"val_labels_noisy": val.labels, "test_labels": test.labels}
    for split, by_head in probs.items():
        for head, p in by_head.items():
            arrays[f"{split}_probs_{head}"] = p.astype(np.float32)
    np.savez_compressed(folder.path / "predictions.npz", **arrays)
    selection = method.selection()
    if selection:
        sel: dict[str, np.ndarray] = {"noisy_labels": noisy_train}
        if clean_train is not None:
            sel["clean_labels"] = clean_train
        for name, s in selection.items():
            sel[f"selected_{name}"] = np.asarray(s.selected, dtype=bool)
            if s.seen is not None:
                sel[f"seen_{name}"] = np.asarray(s.seen, dtype=bool)
            if s.score is not None:
                sel[f"score_{name}"] = np.asarray(s.score, dtype=np.float32)
        corrected = method.corrected_labels()
        if corrected is not None:
            sel["corrected"] = np.asarray(corrected[0], dtype=bool)
            sel["targets"] = np.asarray(corrected[1])
        np.savez_compressed(folder.path / "selection.npz", **sel)
