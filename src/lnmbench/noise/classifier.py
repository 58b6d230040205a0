"""Classifier-guided instance noise (§4.6, LNMBench "instance") with a leakage-free reference.

The reference classifier g is cross-fitted on the split it noises: stratified K folds (seeded);
model g_k, trained on the other folds with the clean labels, gives the out-of-fold (OOF) logits of
fold k. Held-out images (the validation split) get the mean logits of the K models. Inputs are
normalised as (x/255 − 0.5)/0.5 with no augmentation. Logits are cached, since training is slow
and GPU training is not bit-reproducible.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedKFold
from torch import nn

from lnmbench import models
from lnmbench.errors import ConfigError
from lnmbench.noise.cache import array_sha256, labels_sha256, save_npz_atomic
from lnmbench.noise.generators import (
    b_max_mean,
    check_sigma,
    draw_from_probabilities,
    expected_flip_rate,
    instance_probabilities,
    q_summary,
    truncnorm_flip_rates,
)
from lnmbench.noise.labels import check_labels
from lnmbench.noise.registry import register_noise

LOGITS_CACHE_VERSION = 1


@dataclass
class CrossFit:
    """Result of cross-fitting the reference classifier.

    oof_logits: (N, C) float32, row i from the fold model that did not train on sample i.
    confusion: (C, C) int64, rows = clean class, columns = argmax of the OOF logits.
    heldout_logits: (M, C) float32 mean of the K fold models on held-out images, or None.
    """

    oof_logits: np.ndarray
    oof_accuracy: float
    confusion: np.ndarray
    heldout_logits: np.ndarray | None
    config: dict


def _check_images(images: Any, what: str) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.dtype != np.uint8:
        raise ConfigError(
            f"{what} must be uint8 (N, C, H, W), got dtype {arr.dtype} shape {arr.shape}"
        )
    return arr


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive_float(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return v


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float (x/255 − 0.5)/0.5 in [−1, 1]."""
    return (x.float() / 255.0 - 0.5) / 0.5


def _rng_devices(device: torch.device) -> list[torch.device]:
    return [device] if device.type == "cuda" else []


def _train_fold(
    images: torch.Tensor,
    labels: torch.Tensor,
    train_idx: np.ndarray,
    num_classes: int,
    *,
    model: str,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
) -> nn.Module:
    """Train a fresh ``model`` with Adam + CE on ``images[train_idx]`` for ``epochs`` epochs.

    images: (N, C, H, W) uint8 on ``device``; labels: (N,) int64 on ``device``; train_idx: (n,).
    The caller's torch RNG state is left untouched.
    """
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(seed)
        net = models.create(model, num_classes, in_chans=images.shape[1]).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        order = torch.Generator().manual_seed(seed)
        idx = torch.as_tensor(train_idx, dtype=torch.long)
        net.train()
        for _ in range(epochs):
            perm = idx[torch.randperm(idx.numel(), generator=order)].to(device)
            for start in range(0, perm.numel(), batch_size):
                batch = perm[start : start + batch_size]
                if batch.numel() < 2:  # BatchNorm cannot train on one sample
                    continue
                loss = F.cross_entropy(net(_normalise(images[batch])), labels[batch])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return net


@torch.no_grad()
def _predict_logits(
    net: nn.Module, images: torch.Tensor, idx: np.ndarray, batch_size: int
) -> np.ndarray:
    """Logits (len(idx), C) float32 of ``net`` in eval mode on ``images[idx]`` (uint8 tensor)."""
    net.eval()
    device = images.device
    out = []
    for start in range(0, len(idx), batch_size):
        batch = torch.as_tensor(idx[start : start + batch_size], dtype=torch.long, device=device)
        out.append(net(_normalise(images[batch])).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def cross_fit(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    seed: int,
    folds: int = 5,
    model: str = "cnn",
    epochs: int = 8,
    batch_size: int = 128,
    lr: float = 1e-3,
    device: str = "cpu",
    heldout: np.ndarray | None = None,
    cache_dir: Path | str | None = None,
) -> CrossFit:
    """Cross-fit the reference classifier on (images, labels); optionally score ``heldout``.

    images: (N, C, H, W) uint8; labels: (N,) clean labels in [0, C); heldout: (M, C, H, W) uint8.
    Folds: ``StratifiedKFold(folds, shuffle=True, random_state=seed)``; fold k's model is seeded
    with ``seed + k``. With ``cache_dir`` the result is cached under a hash of the inputs and the
    training configuration (``reference-logits-<hash16>.npz``).
    """
    x_np = _check_images(images, "images")
    y_np = check_labels(labels, num_classes, "clean")
    if x_np.shape[0] != y_np.size:
        raise ConfigError(f"images have {x_np.shape[0]} rows but there are {y_np.size} labels")
    h_np = None if heldout is None else _check_images(heldout, "heldout images")
    if h_np is not None and h_np.shape[1:] != x_np.shape[1:]:
        raise ConfigError(f"heldout images are {h_np.shape[1:]}, train images {x_np.shape[1:]}")
    folds = _check_positive_int(folds, "folds", minimum=2)
    if folds > y_np.size:
        raise ConfigError(f"folds ({folds}) exceeds the number of samples ({y_np.size})")
    epochs = _check_positive_int(epochs, "epochs")
    batch_size = _check_positive_int(batch_size, "batch_size")
    lr = _check_positive_float(lr, "lr")
    models.MODELS.get(model)  # unknown model -> error listing the known ones
    config = {
        "model": model,
        "folds": folds,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": int(seed),
        "device": str(device),
        "input_normalisation": "(x/255 - 0.5)/0.5",
    }

    path = None
    key_json = ""
    if cache_dir is not None:
        key = {
            "version": LOGITS_CACHE_VERSION,
            "num_classes": num_classes,
            "images_sha256": array_sha256(x_np),
            "labels_sha256": labels_sha256(y_np),
            "heldout_sha256": None if h_np is None else array_sha256(h_np),
            **config,
        }
        key_json = json.dumps(key, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(key_json.encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"reference-logits-{digest}.npz"
        cached = _load_cached(path, key_json, config)
        if cached is not None:
            return cached

    dev = torch.device(device)
    x = torch.from_numpy(np.ascontiguousarray(x_np)).to(dev)
    y = torch.from_numpy(y_np).to(dev)
    xh = None if h_np is None else torch.from_numpy(np.ascontiguousarray(h_np)).to(dev)
    oof = np.zeros((y_np.size, num_classes), dtype=np.float32)
    held_sum = None if h_np is None else np.zeros((h_np.shape[0], num_classes), np.float64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(seed))
    try:
        splits = list(splitter.split(np.zeros(y_np.size), y_np))
    except ValueError as exc:
        raise ConfigError(f"cannot make {folds} stratified folds: {exc}") from None
    for k, (train_idx, test_idx) in enumerate(splits):
        net = _train_fold(
            x,
            y,
            train_idx,
            num_classes,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=int(seed) + k,
            device=dev,
        )
        oof[test_idx] = _predict_logits(net, x, test_idx, batch_size)
        if held_sum is not None and xh is not None:
            held_sum += _predict_logits(net, xh, np.arange(xh.shape[0]), batch_size)
    pred = oof.argmax(axis=1)
    result = CrossFit(
        oof_logits=oof,
        oof_accuracy=float(np.mean(pred == y_np)),
        confusion=confusion_matrix(y_np, pred, labels=np.arange(num_classes)).astype(np.int64),
        heldout_logits=None if held_sum is None else (held_sum / folds).astype(np.float32),
        config=config,
    )
    if path is not None:
        arrays: dict[str, Any] = {
            "oof_logits": result.oof_logits,
            "oof_accuracy": np.float64(result.oof_accuracy),
            "confusion": result.confusion,
            "key": np.str_(key_json),
        }
        if result.heldout_logits is not None:
            arrays["heldout_logits"] = result.heldout_logits
        save_npz_atomic(path, **arrays)
    return result


def _load_cached(path: Path, key_json: str, config: dict) -> CrossFit | None:
    """A cached :class:`CrossFit`, or None when absent, unreadable or for another key."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key_json:
                return None
            return CrossFit(
                oof_logits=np.asarray(z["oof_logits"], dtype=np.float32),
                oof_accuracy=float(z["oof_accuracy"]),
                confusion=np.asarray(z["confusion"], dtype=np.int64),
                heldout_logits=np.asarray(z["heldout_logits"], dtype=np.float32)
                if "heldout_logits" in z.files
                else None,
                config=config,
            )
    except (OSError, ValueError, KeyError):
        return None


def reference_logits(
    images: np.ndarray, labels: np.ndarray, num_classes: int, *, seed: int, **settings: Any
) -> tuple[np.ndarray, float, np.ndarray]:
    """Out-of-fold reference logits: (oof_logits (N, C) float32, oof_accuracy, confusion (C, C)).

    See :func:`cross_fit` (which also scores held-out images for validation-split noising).
    """
    fit = cross_fit(images, labels, num_classes, seed=seed, **settings)
    return fit.oof_logits, fit.oof_accuracy, fit.confusion


CROSS_FIT_PARAMS = ("folds", "model", "epochs", "batch_size", "lr", "device")


def classifier_split_params(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    num_classes: int,
    val_images: np.ndarray,
    params: dict[str, Any],
    seed: int,
    cache_dir: Path | None,
) -> dict[str, dict[str, Any]]:
    """One cross-fit on the train split: out-of-fold logits for train, fold-mean logits for val.

    train_images, val_images: (N, C, H, W) uint8; train_labels: (N,) clean labels. Returns the
    generator parameters of each split (``logits`` given, the cross-fit settings consumed).
    """
    if "logits" in params:
        return {"train": dict(params), "val": dict(params)}
    fit = cross_fit(
        train_images,
        train_labels,
        num_classes,
        seed=int(params.get("classifier_seed", seed)),
        heldout=val_images,
        cache_dir=cache_dir,
        **{k: params[k] for k in CROSS_FIT_PARAMS if k in params},
    )
    out = {}
    for split, logits in (("train", fit.oof_logits), ("val", fit.heldout_logits)):
        p = {"sigma": 0.1, **params, "logits": logits}
        for k in (*CROSS_FIT_PARAMS, "classifier_seed"):
            p.pop(k, None)
        out[split] = p
    return out


@register_noise(
    "instance-classifier",
    uses_images=True,
    takes_cache_dir=True,
    split_params=classifier_split_params,
)
def instance_classifier(
    clean: np.ndarray,
    num_classes: int,
    rate: float,
    seed: int,
    *,
    images: np.ndarray | None = None,
    cache_dir: Path | None = None,
    sigma: float = 0.1,
    temperature: float = 1.0,
    folds: int = 5,
    model: str = "cnn",
    epochs: int = 8,
    batch_size: int = 128,
    lr: float = 1e-3,
    device: str = "cpu",
    classifier_seed: int | None = None,
    logits: Any = None,
) -> tuple[np.ndarray, dict]:
    """Classifier-guided instance noise (§4.6).

    q_i ~ TruncNormal(n, σ, [0, 1]); z = g(x_i) with z_{y_i} = −∞; b_i = softmax(z / t);
    p_i = q_i·b_i + (1 − q_i)·e_{y_i}; ỹ_i ~ p_i. RandomState(seed) draws q then ỹ.
    ``logits`` (N, C) skips training (e.g. validation logits from :func:`cross_fit`); otherwise
    the OOF logits of a reference classifier cross-fitted on (images, clean) are used, with
    ``classifier_seed`` (default: the noise seed) for its folds and initialisation.
    """
    sigma = check_sigma(sigma)
    temperature = _check_positive_float(temperature, "temperature")
    if logits is not None:
        z = np.asarray(logits, dtype=np.float64)
        if z.shape != (clean.size, num_classes):
            raise ConfigError(
                f"instance-classifier: logits must have shape ({clean.size}, {num_classes}), "
                f"got {z.shape}"
            )
        if not np.all(np.isfinite(z)):
            raise ConfigError("instance-classifier: logits contain NaN or inf")
        reference: dict[str, Any] = {"source": "given logits", "logits_sha256": array_sha256(z)}
    else:
        if images is None:
            raise ConfigError(
                "noise generator 'instance-classifier' needs the images (N, C, H, W) of the "
                "split, or params.logits"
            )
        fit = cross_fit(
            images,
            clean,
            num_classes,
            seed=seed if classifier_seed is None else int(classifier_seed),
            folds=folds,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            device=device,
            cache_dir=cache_dir,
        )
        z = fit.oof_logits.astype(np.float64)
        reference = {
            "source": "cross-fit (out-of-fold)",
            "logits_sha256": array_sha256(fit.oof_logits),
            **fit.config,
        }
    pred = z.argmax(axis=1)
    reference["accuracy"] = float(np.mean(pred == clean))
    reference["confusion"] = confusion_matrix(clean, pred, labels=np.arange(num_classes)).tolist()

    rs = np.random.RandomState(seed)
    q = truncnorm_flip_rates(rate, sigma, clean.size, rs)
    p = instance_probabilities(clean, z / temperature, q)
    noisy = draw_from_probabilities(p, rs)
    extra = {
        "rng": "legacy RandomState(seed) consumed in order q, noisy labels",
        "expected_rate": expected_flip_rate(rate, sigma),
        "q": q_summary(q),
        "b_max_mean": b_max_mean(p, clean, q),
        "reference": reference,
    }
    return noisy, extra
