"""Data layer: dataset registry, in-memory uint8 splits, device-side augmentation."""

from __future__ import annotations

from pathlib import Path

from lnmbench.data import demo, medmnist, real_world  # noqa: F401  (register datasets)
from lnmbench.data.catalog import DATASETS, DatasetEntry, default_data_dir, is_present
from lnmbench.data.splits import SPLITS, ArraySplit, Dataset, DatasetInfo
from lnmbench.data.user_npz import load_user_npz


def is_path_like(name: str) -> bool:
    """A dataset given as a file path rather than a registered name."""
    return name.endswith(".npz") or "/" in name or "\\" in name


def with_registered_info(ds: Dataset) -> Dataset:
    """A local copy of a registered MedMNIST file (e.g. ``shared/bloodmnist.npz``) keeps the
    registered metadata (class names, modality, ordinal grades) when its classes agree."""
    name = ds.info.name
    if name in DATASETS and name != "demo":
        info = DATASETS.get(name).info
        if info.num_classes == ds.info.num_classes and info.in_chans == ds.info.in_chans:
            return Dataset(info, ds.splits, ds.extra)
    return ds


def load_dataset(
    name: str,
    *,
    size: int = 28,
    data_dir: str | Path | None = None,
    download: bool = True,
) -> Dataset:
    """Load a registered dataset by name, or a MedMNIST-layout ``.npz`` by path."""
    if is_path_like(name):
        path = Path(name)
        if path.name == "manifest.json" or (path / "manifest.json").is_file():
            from lnmbench.data.prepare import open_prepared

            return open_prepared(path)
        return with_registered_info(load_user_npz(path))
    entry = DATASETS.get(name)
    return entry.load(Path(data_dir) if data_dir else default_data_dir(), size, download)


def train_split_size(name: str, *, data_dir: str | Path | None = None) -> int | None:
    """Number of training samples of a dataset without loading its images, or None when it
    cannot be told cheaply (a CSV spec, a missing file).

    Registered datasets: from their metadata; a MedMNIST-layout ``.npz``: from its
    ``train_labels`` member; a prepared cache: from its manifest.
    """
    if not is_path_like(name):
        return DATASETS.get(name).split_sizes[0] if name in DATASETS else None
    path = Path(name)
    manifest = path if path.name == "manifest.json" else path / "manifest.json"
    try:
        if manifest.is_file():
            import json

            return int(json.loads(manifest.read_text())["splits"]["train"]["count"])
        if path.suffix == ".npz" and path.is_file():
            import numpy as np

            with np.load(path) as data:
                return len(data["train_labels"])
    except (OSError, KeyError, ValueError):
        return None
    return None


__all__ = [
    "DATASETS",
    "SPLITS",
    "ArraySplit",
    "Dataset",
    "DatasetEntry",
    "DatasetInfo",
    "default_data_dir",
    "is_present",
    "load_dataset",
    "load_user_npz",
    "train_split_size",
]
