"""Open a prepared cache (``manifest.json`` + memory-mapped ``<split>_images.npy``) as a Dataset.

:func:`open_prepared` maps the cache with ``np.load(mmap_mode="c")`` (copy-on-write, so the tensor
is writable without touching the file) and ``torch.from_numpy`` (no copy). ``extra["memmap"]`` is
True when the cache's images exceed :data:`MEMMAP_THRESHOLD_BYTES` (4 GiB): the engine then keeps
them on the CPU and streams batches to the device; smaller caches are copied to the device whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lnmbench.data.splits import SPLITS, ArraySplit, Dataset, DatasetInfo
from lnmbench.errors import DatasetError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MEMMAP_THRESHOLD_BYTES = 4 * 1024**3


def prepared_dir(data_dir: str | Path, name: str, size: int) -> Path:
    """The cache folder of ``name`` at ``size`` px: ``<data_dir>/prepared/<name>/<size>px``."""
    return Path(data_dir) / "prepared" / name / f"{size}px"


def read_manifest(cache_dir: Path) -> dict | None:
    path = Path(cache_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"{path} is unreadable ({exc}); delete the folder and prepare again"
        ) from None


@dataclass
class PreparedDataset(Dataset):
    """A dataset opened from a prepared cache; channel statistics come from the manifest."""

    stored_channel_stats: tuple[list[float], list[float]] | None = None

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of all training images in [0, 1] (computed when prepared)."""
        if self.stored_channel_stats is not None:
            return self.stored_channel_stats
        return super().channel_stats()


def open_prepared(cache_dir: str | Path, memmap: bool | None = None) -> PreparedDataset:
    """Open a prepared cache (a folder with ``manifest.json``, or that file) as a Dataset.

    ``memmap`` None: decided by size (:data:`MEMMAP_THRESHOLD_BYTES`), see the module docstring.
    Splits without clean labels carry their noisy labels as ``labels`` and
    ``extra["clean_known"][split]`` False.
    """
    cache_dir = Path(cache_dir)
    if cache_dir.name == MANIFEST:
        cache_dir = cache_dir.parent
    manifest = read_manifest(cache_dir)
    if manifest is None:
        raise DatasetError(f"{cache_dir} holds no prepared dataset ({MANIFEST} not found)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{cache_dir} was prepared by an incompatible version (format "
            f"{manifest.get('format_version')}, expected {FORMAT_VERSION}); prepare it again"
        )
    shape = tuple(manifest["image_shape"])
    try:
        labels = dict(np.load(cache_dir / "labels.npz"))
        splits = {}
        for s in SPLITS:
            images = np.load(cache_dir / f"{s}_images.npy", mmap_mode="c")
            n = manifest["splits"][s]["count"]
            if images.shape != (n, *shape) or images.dtype != np.uint8:
                raise ValueError(f"{s}_images.npy has {images.dtype} {images.shape}")
            noisy = labels.get(f"{s}_noisy")
            splits[s] = ArraySplit(
                torch.from_numpy(images),
                torch.from_numpy(labels[f"{s}_labels"].astype(np.int64)),
                None if noisy is None else torch.from_numpy(noisy.astype(np.int64)),
            )
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(
            f"the prepared cache {cache_dir} is incomplete or corrupt ({type(exc).__name__}: "
            f"{exc}); prepare it again with --force"
        ) from None
    info = DatasetInfo(
        **{**manifest["info"], "class_names": tuple(manifest["info"]["class_names"])}
    )
    big = manifest["image_bytes"] > MEMMAP_THRESHOLD_BYTES
    stats = manifest["channel_stats"]
    extra = {
        "path": str(cache_dir),
        "manifest": str(cache_dir / MANIFEST),
        "clean_known": {s: manifest["splits"][s]["clean_known"] for s in SPLITS},
        "memmap": big if memmap is None else memmap,
        "notes": manifest.get("notes", {}),
        "names": {s: labels[f"{s}_names"] for s in SPLITS},
    }
    return PreparedDataset(info, splits, extra, (stats["mean"], stats["std"]))
