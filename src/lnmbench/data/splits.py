"""In-memory dataset splits: uint8 image tensors plus labels, and the dataset's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lnmbench.errors import DatasetError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset."""

    name: str
    modality: str
    class_names: tuple[str, ...]
    in_chans: int
    ordinal: bool = False
    noise: str = "synthetic"  # "synthetic" or "real-world"
    source: str = ""
    license: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass
class ArraySplit:
    """One split: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,) (clean/reference labels).

    ``noisy_labels`` (N,) int64 is set only for real-world datasets with their own noisy column.
    """

    images: torch.Tensor
    labels: torch.Tensor
    noisy_labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DatasetError(
                "images must be uint8 (N, C, H, W), got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.ndim != 1 or len(self.labels) != len(self.images):
            raise DatasetError(
                f"labels must be (N,) with N={len(self.images)}, got {tuple(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> ArraySplit:
        nl = None if self.noisy_labels is None else self.noisy_labels.to(device)
        return ArraySplit(self.images.to(device), self.labels.to(device), nl)


@dataclass
class Dataset:
    """A dataset with its metadata and the three splits (keys ``train``, ``val``, ``test``)."""

    info: DatasetInfo
    splits: dict[str, ArraySplit]
    extra: dict = field(default_factory=dict)

    def __getitem__(self, split: str) -> ArraySplit:
        return self.splits[split]

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images in [0, 1] (≤20k-image subsample)."""
        x = self.splits["train"].images
        if len(x) > 20000:
            x = x[torch.linspace(0, len(x) - 1, 20000).long()]
        xf = x.float().div_(255.0)
        mean = xf.mean(dim=(0, 2, 3))
        std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return mean.tolist(), std.tolist()


def images_to_nchw(images: np.ndarray, where: str) -> torch.Tensor:
    """(N, H, W) or (N, H, W, C) uint8 numpy -> contiguous uint8 tensor (N, C, H, W)."""
    if images.dtype != np.uint8:
        raise DatasetError(f"{where}: images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4:
        images = images.transpose(0, 3, 1, 2)
    else:
        raise DatasetError(f"{where}: images must be (N, H, W) or (N, H, W, C), got {images.shape}")
    return torch.from_numpy(np.ascontiguousarray(images))


def labels_to_vector(labels: np.ndarray, where: str) -> np.ndarray:
    """(N,) or (N, 1) integer labels -> (N,) int64; multi-label arrays are refused."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DatasetError(
            f"{where}: labels must be (N,) or (N, 1) single-label class indices, got shape "
            f"{labels.shape} (multi-label data is not supported)"
        )
    if (
        labels.size
        and not np.issubdtype(labels.dtype, np.integer)
        and not np.all(np.equal(np.mod(labels, 1), 0))
    ):
        raise DatasetError(f"{where}: labels must be integer class indices")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise DatasetError(f"{where}: negative label {labels.min()} found")
    return labels
