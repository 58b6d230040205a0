"""Cross-fitted training for the audit: out-of-fold probabilities plus per-sample dynamics.

Stratified K folds (``StratifiedKFold(K, shuffle=True, random_state=seed)`` on the given labels,
as :func:`lnmbench.noise.cross_fit`); fold k's network (seeded ``seed + k``) trains with Adam and
cross-entropy on the given labels of the other folds. Every epoch it records, for each of its
training samples, from the training forward pass itself (train mode, augmented view, no extra
pass): the loss on the given label, the logit margin and the probability of the given label
and the top probability. After every epoch the held-out fold is scored in eval mode on the
un-augmented images (softmax probabilities). The last epoch's held-out probabilities are the
out-of-fold probabilities ``pred_probs``.

Each finished fold is written atomically to ``<fold_dir>/fold-<k>.npz`` together with a key (a
hash of the images, labels and settings); a later run with the same key loads it instead of
training (resume per fold).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import StratifiedKFold

from lnmbench import models
from lnmbench.data.augment import DeviceAugment, get_spec, to_float_normalised
from lnmbench.errors import ConfigError
from lnmbench.noise.cache import array_sha256, labels_sha256, save_npz_atomic
from lnmbench.noise.labels import check_labels

FOLD_FORMAT_VERSION = 1
MEAN_STD = 0.5  # inputs normalised as (x/255 - 0.5)/0.5, as the reference classifier (§4.6)

# (fold, epoch, epochs) after every epoch; used for the progress bar
EpochCallback = Callable[[int, int, int], None]


@dataclass(frozen=True)
class CrossFitSettings:
    """Training settings of the audit's cross-fit (all folds share them)."""

    folds: int = 5
    model: str = "cnn"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 5e-4
    augment: str = "standard"  # a preset of lnmbench.data.augment.AUGMENTATIONS
    seed: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (("folds", 2), ("epochs", 1), ("batch_size", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if not (self.lr > 0):
            raise ConfigError(f"lr must be positive, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        get_spec(self.augment)  # unknown name -> error listing the presets
        models.MODELS.get(self.model)  # unknown model -> error listing the known ones


@dataclass
class FoldRecord:
    """What one fold's training recorded. E epochs, n training and m held-out samples, C classes.

    train_idx (n,), test_idx (m,) int64 indices into the audited set;
    train_loss, train_margin, train_conf, train_maxp (E, n) float32: per epoch, from the training
    forward pass, CE on the given label, logit margin z_ỹ − max_{c≠ỹ} z_c, softmax p_ỹ and max_c p;
    heldout_probs (E, m, C) float32: eval-mode softmax of the held-out fold after each epoch.
    """

    train_idx: np.ndarray
    test_idx: np.ndarray
    train_loss: np.ndarray
    train_margin: np.ndarray
    train_conf: np.ndarray
    train_maxp: np.ndarray
    heldout_probs: np.ndarray


def fold_splits(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (train_idx, test_idx) pairs; a class rarer than ``folds`` is a clear error."""
    counts = np.bincount(labels)
    present = counts[counts > 0]
    if present.min() < folds:
        rare = [int(c) for c in np.flatnonzero((counts > 0) & (counts < folds))]
        raise ConfigError(
            f"cannot make {folds} stratified folds: class(es) {rare} have fewer than {folds} "
            f"samples (counts {counts.tolist()}); lower --folds"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(seed))
    return [
        (np.asarray(a, np.int64), np.asarray(b, np.int64))
        for a, b in splitter.split(np.zeros(labels.size), labels)
    ]


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, stop) of consecutive batches covering n rows, none of size 1 (BatchNorm needs 2):
    a lone last row joins the previous batch."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def _margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """z_ỹ − max_{c≠ỹ} z_c, (B,) from logits (B, C) and labels (B,)."""
    given = logits.gather(1, labels[:, None])[:, 0]
    other = logits.scatter(1, labels[:, None], float("-inf")).max(dim=1).values
    return given - other


def train_fold(
    images: torch.Tensor,
    labels: torch.Tensor,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    num_classes: int,
    settings: CrossFitSettings,
    fold: int,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
) -> FoldRecord:
    """Train fold ``fold``'s network and record its dynamics (see :class:`FoldRecord`).

    images: (N, C, H, W) uint8 (any device; batches are moved to ``device``); labels: (N,) int64
    given labels on the same device as images. The caller's torch RNG state is left untouched.
    """
    seed = int(settings.seed) + fold
    epochs = settings.epochs
    n, m = len(train_idx), len(test_idx)
    rec = {k: np.zeros((epochs, n), np.float32) for k in ("loss", "margin", "conf", "maxp")}
    held = np.zeros((epochs, m, num_classes), np.float32)
    aug = DeviceAugment(settings.augment, [MEAN_STD], [MEAN_STD])
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        net = models.create(settings.model, num_classes, in_chans=images.shape[1]).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        order = torch.Generator().manual_seed(seed)
        view_gen = torch.Generator(device=device).manual_seed(seed)
        tr = torch.as_tensor(train_idx, dtype=torch.long)
        te = torch.as_tensor(test_idx, dtype=torch.long)
        bounds = batch_bounds(n, settings.batch_size)
        for epoch in range(epochs):
            net.train()
            perm = torch.randperm(n, generator=order)
            for start, stop in bounds:
                pos = perm[start:stop]
                idx = tr[pos].to(images.device)
                x = aug(images[idx].to(device, non_blocking=True), view_gen)
                y = labels[idx].to(device)
                logits = net(x)
                loss = F.cross_entropy(logits, y, reduction="none")
                opt.zero_grad(set_to_none=True)
                loss.mean().backward()
                opt.step()
                with torch.no_grad():
                    z = logits.detach().float()
                    p = z.softmax(dim=1)
                    p_np = pos.numpy()
                    rec["loss"][epoch, p_np] = loss.detach().float().cpu().numpy()
                    rec["margin"][epoch, p_np] = _margin(z, y).cpu().numpy()
                    rec["conf"][epoch, p_np] = p.gather(1, y[:, None])[:, 0].cpu().numpy()
                    rec["maxp"][epoch, p_np] = p.max(dim=1).values.cpu().numpy()
            held[epoch] = predict_probs(net, images, te, settings.batch_size, device)
            if on_epoch is not None:
                on_epoch(fold, epoch, epochs)
    return FoldRecord(
        train_idx=np.asarray(train_idx, np.int64),
        test_idx=np.asarray(test_idx, np.int64),
        train_loss=rec["loss"],
        train_margin=rec["margin"],
        train_conf=rec["conf"],
        train_maxp=rec["maxp"],
        heldout_probs=held,
    )


@torch.no_grad()
def predict_probs(
    net: torch.nn.Module,
    images: torch.Tensor,
    idx: torch.Tensor,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """Eval-mode softmax (len(idx), C) float32 of ``net`` on the un-augmented ``images[idx]``."""
    net.eval()
    out = []
    for start in range(0, len(idx), 4 * batch_size):
        b = idx[start : start + 4 * batch_size].to(images.device)
        x = to_float_normalised(images[b].to(device), [MEAN_STD], [MEAN_STD])
        out.append(net(x).float().softmax(dim=1).cpu())
    return torch.cat(out).numpy()


def fold_key(images: np.ndarray, labels: np.ndarray, settings: CrossFitSettings) -> str:
    """The JSON key that identifies a fold file: data hashes, settings, format version."""
    key = {
        "version": FOLD_FORMAT_VERSION,
        "images_sha256": array_sha256(images),
        "labels_sha256": labels_sha256(labels),
        **asdict(settings),
    }
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def _load_fold(path: Path, key: str) -> FoldRecord | None:
    """A saved fold with this key, or None when absent, unreadable or for another key."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            return FoldRecord(**{f.name: np.asarray(z[f.name]) for f in fields(FoldRecord)})
    except (OSError, ValueError, KeyError):
        return None


def cross_fit_dynamics(
    images: torch.Tensor,
    labels: np.ndarray,
    num_classes: int,
    settings: CrossFitSettings,
    *,
    device: torch.device,
    fold_dir: Path | None = None,
    on_epoch: EpochCallback | None = None,
    on_fold_loaded: Callable[[int], None] | None = None,
) -> list[FoldRecord]:
    """Train (or load) all K folds. images: (N, C, H, W) uint8 tensor; labels: (N,) given labels.

    Returns one :class:`FoldRecord` per fold; with ``fold_dir`` each finished fold is saved
    atomically and a matching saved fold is loaded instead of trained.
    """
    y_np = check_labels(labels, num_classes, "given")
    if images.dtype != torch.uint8 or images.ndim != 4 or len(images) != y_np.size:
        raise ConfigError(
            f"images must be uint8 (N, C, H, W) with N = {y_np.size}, got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    splits = fold_splits(y_np, settings.folds, settings.seed)
    key = ""
    if fold_dir is not None:
        key = fold_key(images.cpu().numpy(), y_np, settings)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        fold_dir = Path(fold_dir) / digest
    x = images.to(device) if device.type == "cuda" else images
    y = torch.as_tensor(y_np).to(x.device)
    out = []
    for k, (train_idx, test_idx) in enumerate(splits):
        path = None if fold_dir is None else fold_dir / f"fold-{k}.npz"
        rec = None if path is None else _load_fold(path, key)
        if rec is not None:
            if on_fold_loaded is not None:
                on_fold_loaded(k)
            out.append(rec)
            continue
        rec = train_fold(
            x, y, train_idx, test_idx, num_classes, settings, k, device, on_epoch=on_epoch
        )
        if path is not None:
            save_npz_atomic(path, key=np.str_(key), **asdict(rec))
        out.append(rec)
    return out


def out_of_fold_probs(records: list[FoldRecord], n: int, epoch: int = -1) -> np.ndarray:
    """(N, C) float32 held-out softmax of each sample's own fold model after ``epoch``."""
    c = records[0].heldout_probs.shape[2]
    probs = np.zeros((n, c), np.float32)
    for r in records:
        probs[r.test_idx] = r.heldout_probs[epoch]
    return probs
