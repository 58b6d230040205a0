"""Per-epoch evaluation: probabilities of every head on a split, and their metrics."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lnmbench.engine.image_transform import ImageTransform
from lnmbench.methods.base import Method
from lnmbench.metrics import classification_report

# On a CPU the forward runs in chunks of at most this many images, whatever the eval batch size:
# 1.3-1.8x faster than chunks of 1024 for the CNNs and ResNet-18 at 28 px (cache-sized
# activations) and bitwise identical logits (measured; tests/test_engine.py checks identity).
CPU_EVAL_CHUNK = 128


@torch.inference_mode()
def predict_split(
    method: Method,
    images: torch.Tensor,
    *,
    transform: ImageTransform,
    batch_size: int,
    device: torch.device | None = None,
) -> dict[str, np.ndarray]:
    """Softmax probabilities (N, C) float64 per head for uint8 ``images`` (N, C, H, W).

    ``images`` may be on the CPU (memory-mapped); each chunk is moved to ``device``. On a CPU
    chunks hold at most :data:`CPU_EVAL_CHUNK` images.
    """
    method.eval_mode()
    device = device or images.device
    if device.type == "cpu":
        batch_size = min(batch_size, CPU_EVAL_CHUNK)
    chunks: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size].to(device, non_blocking=True)
        for head, logits in method.predict(transform(chunk)).items():
            chunks.setdefault(head, []).append(logits.float().softmax(1).cpu())
    return {h: torch.cat(v).double().numpy() for h, v in chunks.items()}


def head_accuracies(probs: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """Accuracy of every head against ``labels`` (N,)."""
    return {h: float((p.argmax(1) == labels).mean()) for h, p in probs.items()}


def headline_value(accs: dict[str, float], head: str, mean_heads: Sequence[str]) -> float:
    """Accuracy of ``head``; "mean" is the unweighted mean over ``mean_heads``."""
    if head == "mean":
        return float(np.mean([accs[h] for h in mean_heads]))
    return accs[head]


def clinical_metrics(
    probs: dict[str, np.ndarray],
    labels: np.ndarray,
    num_classes: int,
    head: str,
    mean_heads: Sequence[str],
    ordinal: bool,
) -> dict[str, Any]:
    """Clinical report of the headline head; for "mean", each metric is averaged over the nets."""
    heads = list(mean_heads) if head == "mean" else [head]
    reports = [classification_report(labels, probs[h], num_classes, ordinal=ordinal) for h in heads]
    if len(reports) == 1:
        return reports[0]
    out: dict[str, Any] = {}
    for key, value in reports[0].items():
        values = [r[key] for r in reports]
        if isinstance(value, list):
            arr = np.array([[np.nan if x is None else x for x in v] for v in values], dtype=float)
            with warnings.catch_warnings():  # a class absent from the split: nan, as intended
                warnings.simplefilter("ignore", RuntimeWarning)
                out[key] = np.nanmean(arr, axis=0).tolist() if arr.size else []
        else:
            out[key] = float(np.mean([np.nan if v is None else v for v in values]))
    return out
